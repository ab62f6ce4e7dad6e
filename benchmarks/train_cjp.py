#!/usr/bin/env python
"""Quality benchmark: train configs/ppo_cjp.yaml, then evaluate it on 10,000 held-out episodes.

Usage::

    python benchmarks/train_cjp.py [--config configs/ppo_cjp.yaml] [--set key=value ...]
        [--run-dir runs/bench_ppo_cjp] [--episodes 10000] [--seed 100000] [--model final|best]
        [--no-train] [--plot docs/learning_curve.png] [--seeds 0 1 2]

Prints the agent's objective against the exact optimum (%), against the Avellaneda-Stoikov
baseline for every gamma in {0.01, 0.1, 0.5, 1} and GLFT (paired differences on common random
numbers, 95% CI), the training wall time, env-steps/s, the share of wall time spent stepping the
env, and the machine's load average (the CPU may be shared: wall-clock figures are noisy).
The evaluation seeds (``--seed``, episode e uses seed + e) are disjoint from the training run's
periodic evaluation seeds, so selecting ``--model best`` does not bias the result.
Writes ``benchmark.json`` into the run directory; ``--plot`` renders the run's learning curve
from its TensorBoard event files (tbparse + matplotlib).

Targets (issue 4): PPO >= 99 % of optimal and above every AS gamma within 10 minutes on 2 cores;
SAC (``--config configs/sac_cjp.yaml``) >= 97 % within 20 minutes.

``--seeds 0 1 2`` (issue 13) trains one run per training seed, one after the other, into
``RUN_DIR/seed<k>`` (``--no-train``: evaluate those runs), then evaluates every seed's final and
best model on the same held-out episodes with ``optimal``, ``glft``, ``as_tuned`` and AS for every
gamma above. Per seed: training wall time, env-steps/s, env share, 1-min load average at the start
and end of its training, % of optimal (final, best). Over seeds: % of optimal, mean and min-max;
the objective's t-interval over the per-seed means; paired differences against ``as_tuned`` (else
the best AS gamma), every AS gamma and GLFT, with 95 % CIs from
:func:`mmgym.evaluation.paired_across_seeds` (training and episode noise). ``--plot`` then draws
every seed's curve. Writes ``benchmark.json`` into RUN_DIR.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mmgym.cli import check_seeds  # noqa: E402
from mmgym.config import BaselinesConfig, ConfigError, load_config  # noqa: E402

AS_GAMMAS = (0.01, 0.1, 0.5, 1.0)


def plot_learning_curve(run_dir: Path | list[Path], out: Path, title: str = "") -> Path:
    """Render the eval/ curves of ``run_dir/tb`` (TensorBoard event files) into a PNG; several run
    directories (training seeds) draw one agent curve each, the baselines from the first."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from tbparse import SummaryReader

    run_dirs = run_dir if isinstance(run_dir, list) else [run_dir]
    scalars = [SummaryReader(str(d / "tb")).scalars for d in run_dirs]
    s = scalars[0]

    def curve(tag, frame=None):
        f = s if frame is None else frame
        c = f[f.tag == tag].sort_values("step").drop_duplicates("step", keep="last")
        return c.step.to_numpy(), c.value.to_numpy()

    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(12, 4.5))
    ys, rs = [], []
    for i, (d, frame) in enumerate(zip(run_dirs, scalars)):
        x, y = curve("eval/objective_mean", frame)
        single = len(run_dirs) == 1
        color = f"C{0 if i == 0 else i + 3}"  # C1-C3: the 99 % line, glft, as
        ax0.plot(x, y, "o-", color=color, ms=3, label="agent (deterministic, eval)" if single else f"agent {d.name}")
        ys.append(y)
        x, r = curve("eval/optimality_ratio", frame)
        ax1.plot(x, 100 * r, "o-", color=color, ms=3, label=None if single else d.name)
        rs.append(r)
    y = np.concatenate(ys)
    r = np.concatenate(rs)
    styles = {"optimal": ("k", "--"), "glft": ("C2", ":"), "as": ("C3", "-.")}
    for name, (color, ls) in styles.items():
        xb, yb = curve(f"eval/baseline/{name}/objective_mean")
        if len(xb):
            ax0.plot(xb, yb, color=color, ls=ls, label=f"{name} (eval)")
    lo = min(y.min(), *(curve(f"eval/baseline/{n}/objective_mean")[1].min()
                        for n in styles if len(curve(f"eval/baseline/{n}/objective_mean")[1])))
    ax0.set_ylim(lo - 1.0, y.max() + 1.0)
    ax0.set_xlabel("environment steps")
    ax0.set_ylabel("objective per episode")
    ax0.set_title("eval/objective_mean vs eval/baseline/*")
    ax0.legend(fontsize=8, loc="lower right")
    ax1.axhline(100, color="k", ls="--", lw=1)
    ax1.axhline(99, color="C1", ls=":", lw=1, label="99 %")
    ax1.set_ylim(max(90, 100 * r.min() - 0.5), 100.5)
    ax1.set_xlabel("environment steps")
    ax1.set_ylabel("% of optimal")
    ax1.set_title("eval/optimality_ratio")
    ax1.legend(fontsize=8, loc="lower right")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def _train_info(summary: dict) -> dict:
    return {"wall_seconds": summary["wall_seconds"], "steps": summary["num_timesteps"],
            "steps_per_second": summary["steps_per_second"], "env_seconds": summary["env_seconds"],
            "env_share": summary["env_seconds"] / summary["wall_seconds"]}


def over_seeds(args: argparse.Namespace, cfg, overrides: list[str], run_dir: Path) -> int:
    """``--seeds``: train (unless --no-train) and evaluate one run per training seed (module docstring)."""
    from mmgym.agents.policies import load_sb3_policy
    from mmgym.agents.train import plan_seeds, train

    from mmgym.evaluation import aggregate_seeds, get_baseline, paired_across_seeds, run_evaluation

    plans = plan_seeds(cfg, args.seeds, overwrite=True)
    per_seed: dict[int, dict] = {}
    for plan in plans:
        info: dict = {"run_dir": str(plan.run_dir)}
        if not args.no_train:
            info["load_avg_start"] = os.getloadavg()
            try:
                res = train(plan.cfg, overwrite=True, source=args.config)
            except KeyboardInterrupt:
                res = None
            info["load_avg_end"] = os.getloadavg()
            if res is None or res.interrupted:
                print(f"train_cjp.py: interrupted in seed {plan.seed} ({plan.run_dir}); stopping", file=sys.stderr)
                return 130
            print(f"trained seed {plan.seed}: {res.summary_line()}")
        summary = plan.run_dir / "summary.json"
        if not summary.is_file():
            print(f"train_cjp.py: error: {plan.run_dir}: no finished run (summary.json)", file=sys.stderr)
            return 2
        info.update(_train_info(json.loads(summary.read_text())))
        per_seed[plan.seed] = info

    agents: dict = {}
    for which, name in (("final", "model.zip"), ("best", "best/model.zip")):
        for plan in plans:
            agents[f"{which}/seed{plan.seed}"] = load_sb3_policy(plan.run_dir / name, cfg.env)
    agents.update({"optimal": "optimal", "glft": "glft"})
    comparator = "as_tuned"
    try:
        agents["as_tuned"] = get_baseline("as_tuned", cfg.env, cfg.baselines)
    except ConfigError as exc:
        comparator = None
        print(f"  as_tuned not available here ({exc}); comparing with the best AS gamma")
    for g in AS_GAMMAS:
        agents[f"as(gamma={g:g})"] = get_baseline("as", cfg.env, BaselinesConfig(gamma=g))
    load_eval = os.getloadavg()
    t0 = time.perf_counter()
    result = run_evaluation(cfg.env, agents, episodes=args.episodes, seed=args.seed,
                            baselines_config=cfg.baselines, reference="optimal")
    eval_s = time.perf_counter() - t0
    m, b = result.metrics, result.batches
    opt = m["optimal"]["objective_mean"]
    v0 = m["optimal"].get("v0", float("nan"))
    as_names = [f"as(gamma={g:g})" for g in AS_GAMMAS]
    if comparator is None:
        comparator = max(as_names, key=lambda n: m[n]["objective_mean"])
    seeds = [plan.seed for plan in plans]
    print(f"\n{args.config} over {len(seeds)} training seeds ({', '.join(map(str, seeds))}), "
          f"{args.episodes:,} held-out episodes (seed {args.seed}); optimal {opt:.4f} (exact V0 {v0:.4f}):")
    print("  seed  wall s   env-steps/s  env share  load 1-min start/end  final %   best %")
    for k in seeds:
        info = per_seed[k]
        for which in ("final", "best"):
            info[f"{which}_objective"] = m[f"{which}/seed{k}"]["objective_mean"]
            info[f"{which}_pct"] = 100 * info[f"{which}_objective"] / opt
        load = (f"{info['load_avg_start'][0]:.2f} / {info['load_avg_end'][0]:.2f}"
                if "load_avg_start" in info else "(not trained now)")
        print(f"  {k:<5d} {info['wall_seconds']:7.1f}  {info['steps_per_second']:11,.0f}  "
              f"{100 * info['env_share']:8.1f} %  {load:>20s}  {info['final_pct']:6.2f}   {info['best_pct']:6.2f}")
    if len(seeds) < 2:
        # one seed (e.g. seeds trained in parallel, one process each): its row above is the result;
        # the over-seed statistics and benchmark.json come from `--no-train --seeds ...` over all
        print(f"  one training seed: statistics over seeds need >= 2; once every seed is trained run "
              f"--no-train --seeds <all> --run-dir {run_dir} (benchmark.json not written)")
        return 0
    summary_out: dict = {}
    for which in ("final", "best"):
        members = [f"{which}/seed{k}" for k in seeds]
        agg = aggregate_seeds(result, members)
        pct = [per_seed[k][f"{which}_pct"] for k in seeds]
        lo, hi = agg["objective_seeds_ci95"]
        dlo, dhi = agg["objective_diff_ci95"]
        print(f"  {which} model: {np.mean(pct):.2f} % of optimal, mean over seeds (min {min(pct):.2f}, "
              f"max {max(pct):.2f}); objective {agg['objective_mean']:.4f} ± {agg['objective_se']:.4f} "
              f"(episodes' SE), 95% CI over seeds [{lo:.4f}, {hi:.4f}]; - optimal {agg['objective_diff_mean']:+.4f} "
              f"[{dlo:+.4f}, {dhi:+.4f}]")
        x = np.stack([b[n].objective for n in members])
        diffs = {}
        for name in [comparator, "glft"] + [n for n in as_names if n != comparator]:
            d = paired_across_seeds(x, b[name].objective)
            diffs[name] = d
            print(f"    {which} - {name:14s} = {d['mean']:+.4f} [95% CI {d['ci95'][0]:+.4f}, {d['ci95'][1]:+.4f}]"
                  f" (t, {d['dof']:.1f} d.f.; SE seeds {d['se_seeds']:.4f}, episodes {d['se_episodes']:.4f})")
        summary_out[which] = {
            "pct_mean": float(np.mean(pct)), "pct_min": min(pct), "pct_max": max(pct), "pct": pct,
            "objective_mean": agg["objective_mean"], "objective_se_episodes": agg["objective_se"],
            "objective_seeds_ci95": agg["objective_seeds_ci95"],
            "diff_vs": {n: {k: d[k] for k in ("mean", "ci95", "dof", "se_seeds", "se_episodes")}
                        for n, d in diffs.items()},
            "above_every_as_gamma": all(diffs[n]["ci95"][0] > 0 for n in as_names),
            f"above_{comparator}": diffs[comparator]["ci95"][0] > 0,
        }
    print("  baselines: " + "; ".join(f"{n} {m[n]['objective_mean']:.4f}"
                                      for n in ["glft", comparator] + [n for n in as_names if n != comparator]))
    print(f"  load average (1 min) at evaluation: {load_eval[0]:.2f} on {os.cpu_count()} CPUs; "
          f"evaluation took {eval_s:.1f} s")
    out = {"config": args.config, "overrides": overrides, "episodes": args.episodes, "seed": args.seed,
           "seeds": seeds, "per_seed": {str(k): v for k, v in per_seed.items()},
           "objective": {k: v["objective_mean"] for k, v in m.items()}, "optimal_v0": v0,
           "comparator": comparator, "load_avg_eval": load_eval, **summary_out}
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "benchmark.json").write_text(json.dumps(out, indent=2))
    print(f"  wrote {run_dir / 'benchmark.json'}")
    if args.plot:
        f = summary_out["final"]
        title = (f"{Path(args.config).name}, {len(seeds)} training seeds: final {f['pct_mean']:.2f} % of optimal "
                 f"(min {f['pct_min']:.2f}, max {f['pct_max']:.2f}) on {args.episodes:,} held-out episodes")
        print(f"  wrote {plot_learning_curve([plan.run_dir for plan in plans], Path(args.plot), title)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default=str(ROOT / "configs" / "ppo_cjp.yaml"))
    p.add_argument("--set", dest="overrides", nargs="+", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--run-dir", default=None, help="default: runs/bench_<config stem>")
    p.add_argument("--episodes", type=int, default=10_000)
    p.add_argument("--seed", type=int, default=100_000, help="evaluation scenarios: episode e uses seed + e")
    p.add_argument("--model", choices=("final", "best"), default="final")
    p.add_argument("--no-train", action="store_true", help="evaluate an existing run directory")
    p.add_argument("--plot", default=None, help="also render the learning curve PNG here")
    p.add_argument("--seeds", nargs="+", type=int, default=None, metavar="SEED",
                   help="one run per training seed into RUN_DIR/seed<k>, evaluated over seeds")
    args = p.parse_args(argv)
    overrides = [x for g in args.overrides for x in g]
    run_dir = Path(args.run_dir or f"runs/bench_{Path(args.config).stem}")
    overrides += [f"train.run_dir={run_dir}"]
    try:
        if args.seeds is not None:
            check_seeds(args.seeds)
        cfg = load_config(args.config, overrides)
    except ConfigError as exc:
        print(f"train_cjp.py: error: {exc}", file=sys.stderr)
        return 2
    if args.seeds is not None:
        return over_seeds(args, cfg, overrides, run_dir)

    load0 = os.getloadavg()
    train_info: dict = {}
    if not args.no_train:
        from mmgym.agents.train import train

        res = train(cfg, overwrite=True, source=args.config)
        print(f"trained: {res.summary_line()}")
        train_info = {"wall_seconds": res.wall_seconds, "steps": res.num_timesteps,
                      "steps_per_second": res.steps_per_second, "env_seconds": res.env_seconds,
                      "env_share": res.env_seconds / res.wall_seconds}
    elif (run_dir / "summary.json").is_file():
        s = json.loads((run_dir / "summary.json").read_text())
        train_info = {"wall_seconds": s["wall_seconds"], "steps": s["num_timesteps"],
                      "steps_per_second": s["steps_per_second"], "env_seconds": s["env_seconds"],
                      "env_share": s["env_seconds"] / s["wall_seconds"]}
    load1 = os.getloadavg()

    from mmgym.agents.policies import load_sb3_policy

    from mmgym.evaluation import get_baseline, run_evaluation

    model_path = run_dir / ("model.zip" if args.model == "final" else "best/model.zip")
    agents = {"agent": load_sb3_policy(model_path, cfg.env), "optimal": "optimal", "glft": "glft"}
    other = run_dir / ("best/model.zip" if args.model == "final" else "model.zip")
    other_name = "best" if args.model == "final" else "final"
    if other.is_file():
        agents[f"{other_name} model"] = load_sb3_policy(other, cfg.env)
    for g in AS_GAMMAS:
        agents[f"as(gamma={g:g})"] = get_baseline("as", cfg.env, BaselinesConfig(gamma=g))
    t0 = time.perf_counter()
    result = run_evaluation(cfg.env, agents, episodes=args.episodes, seed=args.seed,
                            baselines_config=cfg.baselines, reference="agent")
    eval_s = time.perf_counter() - t0
    m = result.metrics
    agent = m["agent"]["objective_mean"]
    opt = m["optimal"]["objective_mean"]
    v0 = m["optimal"].get("v0", float("nan"))
    print(f"\n{args.config} ({args.model} model, {run_dir}), {args.episodes:,} episodes, seed {args.seed}:")
    print(f"  agent    objective {agent:8.4f} ± {m['agent']['objective_se']:.4f}")
    print(f"  optimal  objective {opt:8.4f} (exact V0 {v0:.4f});  agent/optimal = {100 * agent / opt:.2f} %"
          f"  (agent/V0 = {100 * agent / v0:.2f} %)")
    if f"{other_name} model" in m:
        o = m[f"{other_name} model"]["objective_mean"]
        print(f"  ({other_name} model: objective {o:8.4f} = {100 * o / opt:.2f} % of optimal)")
    beats_all = True
    for name in ["glft"] + [f"as(gamma={g:g})" for g in AS_GAMMAS]:
        d = -m[name]["objective_diff_mean"]
        lo, hi = (-x for x in reversed(m[name]["objective_diff_ci95"]))
        if name.startswith("as"):
            beats_all &= lo > 0
        print(f"  {name:15s} objective {m[name]['objective_mean']:8.4f};  agent - {name} = {d:+.4f} "
              f"[95% CI {lo:+.4f}, {hi:+.4f}]")
    if train_info:
        print(f"  training: {train_info['steps']:,} steps in {train_info['wall_seconds']:.1f} s wall, "
              f"{train_info['steps_per_second']:,.0f} env-steps/s, env share of wall time "
              f"{100 * train_info['env_share']:.1f} %")
    when = "now" if args.no_train else "before/after training"
    print(f"  load average (1 min) {when}: {load0[0]:.2f} / {load1[0]:.2f} on {os.cpu_count()} CPUs;"
          f" evaluation took {eval_s:.1f} s")
    verdict = {"ratio_pct": 100 * agent / opt, "beats_every_as_gamma": bool(beats_all)}
    print(f"  => {verdict['ratio_pct']:.2f} % of optimal; better than every AS gamma (CI above 0): "
          f"{verdict['beats_every_as_gamma']}")
    out = {"config": args.config, "overrides": overrides, "model": args.model, "episodes": args.episodes,
           "seed": args.seed, "train": train_info, "load_avg_before": load0, "load_avg_after": load1,
           "objective": {k: v["objective_mean"] for k, v in m.items()},
           "objective_se": {k: v["objective_se"] for k, v in m.items()},
           "optimal_v0": v0, **verdict}
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "benchmark.json").write_text(json.dumps(out, indent=2))
    if args.plot:
        wall = f", {train_info['wall_seconds']:.0f} s wall" if train_info else ""
        title = (f"{Path(args.config).name}: final {100 * agent / opt:.2f} % of optimal on {args.episodes:,} "
                 f"held-out episodes{wall}")
        print(f"  wrote {plot_learning_curve(run_dir, Path(args.plot), title)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

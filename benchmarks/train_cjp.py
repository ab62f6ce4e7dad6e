#!/usr/bin/env python
"""Quality benchmark: train configs/ppo_cjp.yaml, then evaluate it on 10,000 held-out episodes.

Usage::

    python benchmarks/train_cjp.py [--config configs/ppo_cjp.yaml] [--set key=value ...]
        [--run-dir runs/bench_ppo_cjp] [--episodes 10000] [--seed 100000] [--model final|best]
        [--no-train] [--plot docs/learning_curve.png]

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
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mmgym.config import BaselinesConfig, ConfigError, load_config  # noqa: E402

AS_GAMMAS = (0.01, 0.1, 0.5, 1.0)


def plot_learning_curve(run_dir: Path, out: Path, title: str = "") -> Path:
    """Render eval/ and mm/ curves of ``run_dir/tb`` (TensorBoard event files) into a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from tbparse import SummaryReader

    s = SummaryReader(str(run_dir / "tb")).scalars

    def curve(tag):
        c = s[s.tag == tag].sort_values("step").drop_duplicates("step", keep="last")
        return c.step.to_numpy(), c.value.to_numpy()

    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(12, 4.5))
    x, y = curve("eval/objective_mean")
    ax0.plot(x, y, "o-", color="C0", label="agent (deterministic, eval)")
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
    x, r = curve("eval/optimality_ratio")
    ax1.plot(x, 100 * r, "o-", color="C0")
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
    args = p.parse_args(argv)
    overrides = [x for g in args.overrides for x in g]
    run_dir = Path(args.run_dir or f"runs/bench_{Path(args.config).stem}")
    overrides += [f"train.run_dir={run_dir}"]
    try:
        cfg = load_config(args.config, overrides)
    except ConfigError as exc:
        print(f"train_cjp.py: error: {exc}", file=sys.stderr)
        return 2

    load0 = os.getloadavg()
    train_info: dict = {}
    if not args.no_train:
        from agents.train import train

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

    from agents.policies import load_sb3_policy
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

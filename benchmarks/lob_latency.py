#!/usr/bin/env python
"""The cost of a stale view on the order book: objective against order-entry latency (issue 10).

Usage::

    python benchmarks/lob_latency.py [--config configs/ppo_lob.yaml] [--latencies 0 1 2 4 8]
        [--steps 3000000] [--seeds 0] [--episodes 2000] [--seed 100000] [--run-dir runs/lob_latency]
        [--plot docs/lob_latency.png] [--set key=value ...]

For each latency L (``book.entry_latency_events``: our orders of a step reach the book only after L
more background events; docs/LOB.md, step 1 of the env) it

1. trains PPO on the config with that latency, ``--steps`` environment steps per training seed
   (``python train.py CONFIG --run-dir RUN_DIR/lat<L> --seeds ...``: a finished run is kept, an
   interrupted one resumes with ``--resume``);
2. evaluates ``as``, ``as_tuned`` (re-tuned for that latency: the best static AS *at* that latency)
   and the PPO runs on the same ``--episodes`` held-out episodes (``python evaluate.py ... --seed``),
   paired against ``as_tuned``.

It writes ``RUN_DIR/latency.json`` (per latency: each agent's objective and SE, PPO - as_tuned with
its 95 % CI, the mean inter-event time) and the figure: objective against latency, in events and in
milliseconds of book time. The figure measures technological adverse selection (the quotes are
placed on a view of the book that is L events old by the time they arrive): how fast each policy's
objective falls, and whether what PPO adds over as_tuned survives latency.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _run(cmd: list[str]) -> None:
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, cwd=ROOT)


def events_per_time(config: str, overrides: list[str], envs: int = 64, steps: int = 300) -> float:
    """Background events per time unit of the book (limit orders, cancels and market orders: the
    env's ``events`` info column), measured over ``envs`` episodes of ``steps`` steps at zero action:
    the conversion of latency in events into book time."""
    import gymnasium as gym
    import numpy as np

    import mmgym  # noqa: F401 - registers the env ids
    from mmgym.config import load_config

    cfg = load_config(config, overrides)
    env = gym.make_vec(cfg.env.id, num_envs=envs, vectorization_mode="vector_entry_point", config=cfg.env)
    env.reset(seed=12345)
    events = 0.0
    for _ in range(steps):
        *_, info = env.step(np.zeros(env.action_space.shape))
        events += float(np.mean(info["events"]))
    env.close()
    return events / (steps * cfg.env.market.dt)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default="configs/ppo_lob.yaml")
    ap.add_argument("--latencies", type=int, nargs="+", default=[0, 1, 2, 4, 8])
    ap.add_argument("--steps", type=int, default=3_000_000)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--episodes", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=100_000)
    ap.add_argument("--run-dir", default="runs/lob_latency")
    ap.add_argument("--plot", default="docs/lob_latency.png")
    ap.add_argument("--set", nargs="+", default=[], dest="overrides", metavar="KEY=VALUE")
    ap.add_argument("--no-train", action="store_true", help="evaluate existing runs only")
    args = ap.parse_args(argv)
    run_dir = ROOT / args.run_dir
    rows = []
    for lat in args.latencies:
        sets = [*args.overrides, f"book.entry_latency_events={lat}", f"train.total_timesteps={args.steps}"]
        lat_dir = run_dir / f"lat{lat}"
        if not args.no_train:
            done = all((lat_dir / f"seed{s}" / "model.zip").exists() for s in args.seeds)
            if not done:
                resume = ["--resume"] if lat_dir.exists() else []
                _run([sys.executable, "train.py", args.config, "--run-dir", str(lat_dir), "--seeds",
                      *map(str, args.seeds), *resume, "--set", *sets])
        out = lat_dir / "eval"
        models = (f"ppo={lat_dir}/seed*/model.zip" if len(args.seeds) > 1
                  else f"ppo={lat_dir}/seed{args.seeds[0]}/model.zip")
        if not (out / "results.json").exists():
            _run([sys.executable, "evaluate.py", args.config, "--agents", "as", "as_tuned", models,
                  "--episodes", str(args.episodes), "--seed", str(args.seed), "--reference", "as_tuned",
                  "--out", str(out), "--no-plots", "--set", *sets])
        res = json.loads((out / "results.json").read_text())["agents"]
        row = {"latency_events": lat}
        for name, r in res.items():
            row[name] = {k: r.get(k) for k in ("objective_mean", "objective_se", "objective_diff_mean",
                                              "objective_diff_ci95", "params")}
        rows.append(row)
        ppo = res["ppo"]
        print(f"latency {lat} events: as {res['as']['objective_mean']:.3f}, as_tuned "
              f"{res['as_tuned']['objective_mean']:.3f} ± {res['as_tuned']['objective_se']:.3f}, ppo "
              f"{ppo['objective_mean']:.3f}; ppo - as_tuned {ppo['objective_diff_mean']:+.3f} "
              f"[{ppo['objective_diff_ci95'][0]:+.3f}, {ppo['objective_diff_ci95'][1]:+.3f}]", flush=True)
    rate = events_per_time(args.config, args.overrides)
    summary = {"config": args.config, "overrides": args.overrides, "steps": args.steps, "seeds": args.seeds,
               "episodes": args.episodes, "seed": args.seed, "events_per_time_unit": rate, "rows": rows}
    (run_dir / "latency.json").write_text(json.dumps(summary, indent=1))
    if args.plot:
        plot(summary, ROOT / args.plot)
    return 0


def plot(summary: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = summary["rows"]
    lat = [r["latency_events"] for r in rows]
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for name, style in (("ppo", "C0o-"), ("as_tuned", "C1s-"), ("as", "C3^--")):
        y = [r[name]["objective_mean"] for r in rows]
        e = [1.96 * r[name]["objective_se"] for r in rows]
        ax.errorbar(lat, y, yerr=e, fmt=style, capsize=3, label=name)
    ax.set_xlabel("order-entry latency (background events)")
    ax.set_ylabel("objective per episode (mean ± 1.96 SE)")
    ms = 1000.0 / summary["events_per_time_unit"]
    sec = ax.secondary_xaxis("top", functions=(lambda x: x * ms, lambda m: m / ms))
    sec.set_xlabel("milliseconds of book time (mean inter-event time %.1f ms)" % ms)
    ax.set_title(f"{Path(summary['config']).name}: {summary['episodes']:,} held-out episodes", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    print(f"wrote {out}")


if __name__ == "__main__":
    sys.exit(main())

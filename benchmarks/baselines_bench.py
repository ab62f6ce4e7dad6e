"""Time the exact DP and the evaluation throughput of every baseline.

    python benchmarks/baselines_bench.py [--episodes 1000] [--repeat 20]

Prints (and returns) the DP solve time for 200 steps x 51 inventories (linear and poisson fills,
with and without the hedge action) and episodes/s per agent on configs/cjp.yaml, each episode
200 steps, all episodes of an agent batched into one kernel call per step.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np

from mmgym.baselines import make_baseline, solve_optimal
from mmgym.config import load_config
from mmgym.evaluation import clear_cache, run_policy

ROOT = Path(__file__).resolve().parents[1]


def time_dp(cfg, repeat: int) -> tuple[float, float]:
    solve_optimal(cfg.env)  # compile / load the numba cache
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        solve_optimal(cfg.env)
        times.append(time.perf_counter() - t0)
    return float(np.median(times)), float(np.min(times))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--episodes", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=20)
    args = ap.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"python {platform.python_version()}")
    base = ROOT / "configs" / "cjp.yaml"
    cases = {
        "linear": [],
        "poisson": ["market.fill_rule=poisson"],
        "linear+hedge(5 lots)": ["action.hedge=true", "impact.half_spread=0.02", "impact.eta=0.01"],
    }
    print("\nDP solve, 200 steps x 51 inventories (median / min over repeats):")
    for name, ov in cases.items():
        med, best = time_dp(load_config(base, ov), args.repeat)
        print(f"  {name:22s} {med * 1e3:8.2f} ms  / {best * 1e3:8.2f} ms")
    cfg = load_config(base)
    print(f"\nEvaluation throughput, {args.episodes} episodes x 200 steps (configs/cjp.yaml):")
    for name in ("as", "symmetric", "fixed", "glft", "cjp", "optimal"):
        t0 = time.perf_counter()
        pol = make_baseline(name, cfg.env, cfg.baselines)
        build = time.perf_counter() - t0
        run_policy(cfg.env, pol, 16, seed=0, cache=False)  # warm-up
        t0 = time.perf_counter()
        run_policy(cfg.env, pol, args.episodes, seed=0, cache=False)
        dt = time.perf_counter() - t0
        print(f"  {name:10s} build {build * 1e3:8.1f} ms   run {dt:6.3f} s   "
              f"{args.episodes / dt:10.0f} episodes/s  {args.episodes * 200 / dt / 1e6:6.2f} M env-steps/s")
    clear_cache()


if __name__ == "__main__":
    main()

"""Speed of the portfolio kernel (issue 11): asset-steps/s of ``mmgym/PortfolioMarketMaking-v0`` at
K = 8, N = 1000 against the single-asset intensity kernel (``mmgym/MarketMaking-v0``) at N = 1000, in
the same run.

Usage::

    python benchmarks/portfolio_speed.py [--repeats 7] [--steps 2000] [--assets 8] [--envs 1000]

Both markets are bare :class:`~mmgym.envs.market.BatchMarket` with raw depths (the baselines' path;
no Gymnasium wrapper), stepped with one constant action array (depth 0.7 on every side), serial
kernel, episodes of 200 steps (autoresets included). A repeat times ``--steps`` kernel calls after
a warm-up; the figure is the median over repeats. One intensity env-step is one asset-step; one
portfolio env-step is K asset-steps. The ratio is portfolio asset-steps/s over intensity
env-steps/s (issue 11's target: >= 0.5).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import mmgym  # noqa: E402, F401
from mmgym.config import load_env_config  # noqa: E402
from mmgym.envs.market import BatchMarket  # noqa: E402


def rate(market: BatchMarket, steps: int, repeats: int) -> float:
    """Median env-steps/s of ``market.step`` over ``repeats`` timings of ``steps`` calls."""
    actions = np.full((market.num_envs, market.action_dim), 0.7)
    market.seed_rows(list(range(market.num_envs)))
    market.reset()
    for _ in range(200):  # warm-up (compile or cache load, caches)
        market.step(actions)
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(steps):
            market.step(actions)
        out.append(market.num_envs * steps / (time.perf_counter() - t0))
    return statistics.median(out)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--assets", type=int, default=8)
    p.add_argument("--envs", type=int, default=1000)
    args = p.parse_args(argv)
    k = args.assets
    rng = np.random.default_rng(0)
    b = rng.normal(0.0, 1.0, (k, 2))
    single = BatchMarket(load_env_config({"market": {"max_inventory": 10}}), args.envs, raw_depths=True)
    port = BatchMarket(load_env_config({
        "id": "mmgym/PortfolioMarketMaking-v0",
        "reward": {"inventory_penalty": 0.05},
        "portfolio": {"assets": k, "loadings": b.tolist(), "idio_vols": 1.0, "max_inventory": 10}}),
        args.envs, raw_depths=True)
    # interleave the two so that machine load affects both alike
    r1, rk = [], []
    for _ in range(3):
        r1.append(rate(single, args.steps, args.repeats))
        rk.append(rate(port, args.steps, args.repeats))
    s1, sk = statistics.median(r1), statistics.median(rk)
    print(f"intensity kernel, N={args.envs}: {s1:,.0f} env-steps/s (= asset-steps/s)")
    print(f"portfolio kernel, K={k}, N={args.envs}: {sk:,.0f} env-steps/s = {sk * k:,.0f} asset-steps/s")
    print(f"ratio (portfolio asset-steps/s / intensity env-steps/s): {sk * k / s1:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

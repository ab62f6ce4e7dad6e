"""A posteriori check of the K = 2 DP's per-state maximisation (mmgym/baselines/portfolio.py) on a
config: at selected steps, every state's DP value against the best point of a grid over the four
fill probabilities (the one-step objective written out over the 16 fill outcomes).

Usage::

    python benchmarks/portfolio_dp_check.py configs/portfolio2.yaml [--grid 21] [--steps 0 50 100 150 199]

Prints, per step, the largest ``grid max - DP value`` over the states (<= 0 up to rounding: no grid
point beats the DP's maximum) and the largest ``DP value - grid max`` (the grid's resolution). A
grid point is an achievable quote (a depth per side), so a positive excess would show the
coordinate ascent stopping below the global maximum.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np
from numba import njit

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from mmgym.baselines.portfolio import PortfolioOptimal, _grid  # noqa: E402
from mmgym.config import load_config  # noqa: E402


@njit(cache=True)
def grid_max(w, c, k, fee, grid):
    n1, n2 = w.shape
    g = grid.shape[0]
    out = np.full((n1, n2), -np.inf)
    dep = np.empty((4, g))
    for j in range(4):
        for i in range(g):
            p = grid[i]
            dep[j, i] = (np.log(c[j // 2]) - np.log(p)) / k[j // 2] if p > 0 else 0.0
    wn = np.zeros((3, 3))
    for i1 in range(n1):
        for i2 in range(n2):
            for a in range(3):
                for b in range(3):
                    j1, j2 = i1 + a - 1, i2 + b - 1
                    wn[a, b] = w[j1, j2] if (0 <= j1 < n1 and 0 <= j2 < n2) else 0.0
            ob1, oa1, ob2, oa2 = i1 < n1 - 1, i1 > 0, i2 < n2 - 1, i2 > 0
            best = -np.inf
            for x0 in range(g if ob1 else 1):
                pb1 = grid[x0] if ob1 else 0.0
                for x1 in range(g if oa1 else 1):
                    pa1 = grid[x1] if oa1 else 0.0
                    q1 = ((1 - pb1) * pa1, pb1 * pa1 + (1 - pb1) * (1 - pa1), pb1 * (1 - pa1))
                    g1 = (pb1 * (dep[0, x0] - fee) if pb1 > 0 else 0.0) + (pa1 * (dep[1, x1] - fee) if pa1 > 0 else 0.0)
                    for x2 in range(g if ob2 else 1):
                        pb2 = grid[x2] if ob2 else 0.0
                        for x3 in range(g if oa2 else 1):
                            pa2 = grid[x3] if oa2 else 0.0
                            q2 = ((1 - pb2) * pa2, pb2 * pa2 + (1 - pb2) * (1 - pa2), pb2 * (1 - pa2))
                            v = g1 + (pb2 * (dep[2, x2] - fee) if pb2 > 0 else 0.0) \
                                + (pa2 * (dep[3, x3] - fee) if pa2 > 0 else 0.0)
                            for a in range(3):
                                for b in range(3):
                                    v += q1[a] * q2[b] * wn[a, b]
                            if v > best:
                                best = v
            out[i1, i2] = best
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("config")
    p.add_argument("--grid", type=int, default=21)
    p.add_argument("--steps", type=int, nargs="+", default=[0, 50, 100, 150, 199])
    args = p.parse_args(argv)
    cfg = load_config(args.config).env
    opt = PortfolioOptimal(cfg)
    c, k, _, risk, _, _ = _grid(cfg)
    m, r = cfg.market, cfg.reward
    n = m.n_steps
    grid = np.linspace(0.0, 1.0, args.grid)
    worst = -np.inf
    for t in args.steps:
        w = opt.value[t + 1] - r.inventory_penalty * risk * m.dt - (r.terminal_penalty * risk if t == n - 1 else 0.0)
        gm = grid_max(np.ascontiguousarray(w), c, k, float(r.maker_fee), grid)
        excess = gm - opt.value[t]
        worst = max(worst, float(excess.max()))
        print(f"step {t}: max(grid - DP) = {excess.max():.3e}, max(DP - grid) = {(-excess).max():.3e} "
              f"over {excess.size} states")
    print(f"worst excess of a grid point over the DP's maximum: {worst:.3e} ({args.grid}^4 grid)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

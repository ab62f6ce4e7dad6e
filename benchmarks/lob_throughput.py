"""Throughput of the numba limit order book: background events/s on one core, env steps/s.

Run: ``python benchmarks/lob_throughput.py [--seconds S]``. Compile time is excluded (one
warm-up call first). hftbacktest is not benchmarked here (see docs/LOB.md).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from mmgym.book import kernel as K
from mmgym.book.config import BookConfig
from mmgym.envs.lob import LOBMarket, default_lob_config


def events_per_second(sim_time: float) -> float:
    cfg = BookConfig()
    b = K.new_book_state(1, cfg.n_levels, cfg.max_orders)
    b.rng[0] = (12345, 678)
    lam, theta, fp = cfg.lam(), cfg.theta(), cfg.flow_params()
    K.init_book(b, 0, 10_000, lam, theta, 1)
    K.book_flow(b, np.array([10.0]), lam, theta, fp)
    t = time.perf_counter()
    n = K.book_flow(b, np.array([10.0 + sim_time]), lam, theta, fp)
    return n / (time.perf_counter() - t)


def steps_per_second(num_envs: int, steps: int) -> tuple[float, float]:
    m = LOBMarket(default_lob_config(), num_envs)
    m.seed_rows(list(range(num_envs)))
    m.reset()
    a = np.zeros((num_envs, 2))
    m.step(a)
    ev0 = m.book.counters[:, K.C_EVENTS].sum()
    t = time.perf_counter()
    for _ in range(steps):
        m.step(a)
    el = time.perf_counter() - t
    return num_envs * steps / el, m.buffers.aux[:, K.AUX_EVENTS].mean()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=200_000.0, help="simulated time for events/s")
    args = ap.parse_args()
    print(f"book events/s (1 core): {events_per_second(args.seconds) / 1e6:.2f} M")
    for n, steps in ((1, 3000), (64, 300), (1000, 30)):
        sps, ev = steps_per_second(n, steps)
        print(f"env steps/s N={n:5d}: {sps:10.0f}  (~{ev:.0f} events per step, dt = 1 s)")


if __name__ == "__main__":
    main()

"""Throughput of the numba limit order book: background events/s on one core, env steps/s.

Run: ``python benchmarks/lob_throughput.py [--seconds S] [--hftbacktest PATH.gz] [--informed F]``. Compile time
is excluded (one warm-up call first).

With hftbacktest installed (the ``bench`` extra), the same run also measures hftbacktest replaying
a Binance capture (default ``../shared/data/binance/usdm_btcusdt_20240808.gz`` beside the repository, the
collector's ``local_ns {json}`` lines) converted with its own
``hftbacktest.data.utils.binancefutures.convert``: feed events (one per depth-level update or
trade) per second of ``HashMapMarketDepthBacktest.elapse`` over the whole file, no orders. The two
are different work: ours *generates* each event (Gillespie draw + matching against FIFO queues),
theirs *replays* recorded ones into its depth map and exchange model; see docs/LOB.md.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

from mmgym.envs.market import BatchMarket
from mmgym.scenarios.lob import AUX_COLUMNS, BookConfig, default_lob_config
from mmgym.sim import book as K


def events_per_second(sim_time: float, informed: dict | None = None) -> float:
    """Background events/s of the default flow (``informed``: a ``book.informed`` section, in ticks)."""
    cfg = BookConfig() if informed is None else BookConfig(informed=informed)
    b = K.new_book_state(1, cfg.n_levels, cfg.max_orders)
    b.rng[0] = (12345, 678)
    lam, theta, fp = cfg.lam(), cfg.theta(), cfg.flow_record()
    fs = K.new_flow_state(1)
    K.init_book(b, 0, 10_000, lam, theta, 1, fs)
    K.book_flow(b, np.array([10.0]), lam, theta, fp, fs)
    t = time.perf_counter()
    n = K.book_flow(b, np.array([10.0 + sim_time]), lam, theta, fp, fs)
    return n / (time.perf_counter() - t)


def steps_per_second(num_envs: int, steps: int) -> tuple[float, float]:
    m = BatchMarket(default_lob_config(), num_envs)
    m.seed_rows(list(range(num_envs)))
    m.reset()
    a = np.zeros((num_envs, 2))
    m.step(a)
    t = time.perf_counter()
    for _ in range(steps):
        m.step(a)
    el = time.perf_counter() - t
    return num_envs * steps / el, m.buffers.aux[:, AUX_COLUMNS["events"]].mean()


HBT_DATA = str(Path(__file__).resolve().parents[2] / "shared" / "data" / "binance" / "usdm_btcusdt_20240808.gz")


def hftbacktest_events_per_second(path: str, tick_size: float = 0.1, lot_size: float = 0.001):
    """(events, replay events/s, conversion s) of hftbacktest over a Binance futures capture."""
    from hftbacktest import BacktestAsset, HashMapMarketDepthBacktest
    from hftbacktest.data.utils import binancefutures
    from numba import njit

    t = time.perf_counter()
    data = binancefutures.convert(path, combined_stream=True, buffer_size=20_000_000)
    convert_s = time.perf_counter() - t

    def backtest(rows):
        asset = (BacktestAsset().data([rows]).linear_asset(1.0).constant_order_latency(0, 0)
                 .risk_adverse_queue_model().no_partial_fill_exchange()
                 .trading_value_fee_model(0.0, 0.0).tick_size(tick_size).lot_size(lot_size))
        return HashMapMarketDepthBacktest([asset])

    @njit
    def replay(hbt):
        n = 0
        while hbt.elapse(1_000_000_000) == 0:  # 1 s of exchange time per call, to the end
            n += 1
        return n

    replay(backtest(data[:1000].copy()))  # compile
    hbt = backtest(data)
    t = time.perf_counter()
    replay(hbt)
    el = time.perf_counter() - t
    hbt.close()
    return len(data), len(data) / el, convert_s


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=200_000.0, help="simulated time for events/s")
    ap.add_argument("--hftbacktest", default=HBT_DATA, help="Binance futures capture for hftbacktest ('' skips)")
    ap.add_argument("--informed", type=float, default=0.0,
                    help="also measure events/s with this fraction of informed market orders (value "
                         "volatility 2 ticks per sqrt(time unit), configs/lob_toxic.yaml's)")
    args = ap.parse_args()
    ours = events_per_second(args.seconds)
    print(f"book events/s (1 core): {ours / 1e6:.2f} M")
    if args.informed > 0:
        inf = events_per_second(args.seconds, {"fraction": args.informed, "sigma": 2.0})
        print(f"book events/s (1 core), {args.informed:.0%} informed: {inf / 1e6:.2f} M")
    if args.hftbacktest:
        try:
            import hftbacktest  # noqa: F401
        except ImportError as exc:
            print(f"hftbacktest: not installed ({exc}); pip install -e .[bench]")
        else:
            if os.path.exists(args.hftbacktest):
                n, eps, conv = hftbacktest_events_per_second(args.hftbacktest)
                print(f"hftbacktest {hftbacktest.__version__} replay events/s: {eps / 1e6:.2f} M "
                      f"({n} events of {os.path.basename(args.hftbacktest)}, convert {conv:.1f} s); "
                      f"ours / theirs = {ours / eps:.2f}")
            else:
                print(f"hftbacktest: {args.hftbacktest} not found")
    for n, steps in ((1, 3000), (64, 300), (1000, 30)):
        sps, ev = steps_per_second(n, steps)
        print(f"env steps/s N={n:5d}: {sps:10.0f}  (~{ev:.0f} events per step, dt = 1 s)")


if __name__ == "__main__":
    main()

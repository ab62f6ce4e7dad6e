"""Replay speed: recorded events/s of mmgym/ReplayMarketMaking-v0 against hftbacktest's
``HashMapMarketDepthBacktest`` on the same Binance capture, in the same run.

Run: ``python benchmarks/replay_speed.py [--data PATH.gz] [--repeat R]`` (default: the USDⓈ-M
BTCUSDT capture in ``../shared/data/binance`` beside the repository). Compile time is excluded (one
warm-up call first); each figure is the best of ``--repeat`` runs.

- ours, no orders: the replay kernel (:func:`mmgym.scenarios.replay.replay_all`) over the whole
  recording (from the first moment the book is two-sided) in one env: events/s.
- ours, quoting: env steps of 1 s with the ``as`` baseline quoting both sides (our orders in the
  queues, fills, re-quotes), N = 1 and N = 64: recorded events/s inside the steps.
- hftbacktest 2.4.4 (a benchmark-only dependency; mmgym never imports it): the capture converted
  by its own ``binancefutures.convert`` (futures captures only: spot fails with ``KeyError: 'T'``),
  replayed with ``elapse(1 s)`` to the end, no orders: its feed rows per second.

The event counts differ a little: ours leaves out levels more than 10 % from the median trade
price (``outside_roi``) and bookTicker messages; hftbacktest's rows include its snapshot rows.
Each side is timed on its own count.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

DATA = str(Path(__file__).resolve().parents[2] / "shared" / "data" / "binance" / "usdm_btcusdt_20240808.gz")


def ours_no_orders(path: str, repeat: int) -> tuple[int, float, float]:
    """(events, events/s, load s) of the replay kernel over the whole recording, one env."""
    from mmgym.envs.market import BatchMarket
    from mmgym.scenarios import get
    from mmgym.scenarios.replay import recording, replay_all

    t = time.perf_counter()
    rec = recording(path)
    load_s = time.perf_counter() - t
    sc = get("mmgym/ReplayMarketMaking-v0")
    cfg = sc.config_class.model_validate({**sc.defaults, "id": sc.id, "replay": {"path": path, "start_mode": "sequential"},
                                          "market": {**sc.defaults["market"], "tick_size": rec.tick_size}})
    m = BatchMarket(cfg, 1)
    m.seed_rows([0])
    best = np.inf
    n = 0
    end = int(rec.t_ns[-1]) + 1
    for k in range(repeat + 1):
        m.state.episodes[:] = 0  # window 0 every time
        m.reset()
        st = m.state
        c0 = int(st.cursor[0])
        t = time.perf_counter()
        n = replay_all(st, 0, end, np.int64(0), 0.0, np.int64(cfg.replay.recentre_margin),
                       float(m.params[0]["replay"]["tox_decay"]))
        el = time.perf_counter() - t
        assert n == len(rec) - c0
        if k:  # the first call compiles or loads the cache
            best = min(best, el)
    return int(n), n / best, load_s


def ours_quoting(path: str, num_envs: int, steps: int, repeat: int) -> tuple[float, float]:
    """(env steps/s, recorded events/s) of 1-s steps with the ``as`` baseline quoting."""
    from mmgym.baselines import make_baseline
    from mmgym.envs.market import BatchMarket
    from mmgym.scenarios import get
    from mmgym.scenarios.replay import recording

    rec = recording(path)
    sc = get("mmgym/ReplayMarketMaking-v0")
    market = {**sc.defaults["market"], "tick_size": rec.tick_size, "horizon": float(steps)}
    cfg = sc.config_class.model_validate({**sc.defaults, "id": sc.id, "market": market,
                                          "replay": {"path": path, "stride": 5.0}})
    m = BatchMarket(cfg, num_envs, raw_depths=True)
    m.seed_rows(list(range(num_envs)))
    agent = make_baseline("as", cfg)
    best = (0.0, 0.0)
    for _ in range(repeat):
        m.reset()
        m.step(agent.act(m))  # warm
        ev = 0.0
        t = time.perf_counter()
        for _ in range(steps - 2):
            out = m.step(agent.act(m))
            ev += out.aux[:, list(m.aux_names).index("events")].sum()
        el = time.perf_counter() - t
        if ev / el > best[1]:
            best = (num_envs * (steps - 2) / el, ev / el)
    return best


def hftbacktest_events_per_second(path: str, tick_size: float, lot_size: float, repeat: int):
    """(rows, replay rows/s, conversion s) of hftbacktest over a Binance futures capture."""
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
        while hbt.elapse(1_000_000_000) == 0:  # 1 s per call, to the end of the data
            n += 1
        return n

    replay(backtest(data[:1000].copy()))  # compile
    best = np.inf
    for _ in range(repeat):
        hbt = backtest(data)
        t = time.perf_counter()
        replay(hbt)
        best = min(best, time.perf_counter() - t)
        hbt.close()
    return len(data), len(data) / best, convert_s


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=DATA, help="a Binance futures capture (.gz)")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    if not os.path.exists(args.data):
        raise SystemExit(f"replay_speed.py: {args.data}: no such file")
    print(f"load: {os.uname().nodename}, 1-min load {os.getloadavg()[0]:.2f}")
    n, eps, load_s = ours_no_orders(args.data, args.repeat)
    print(f"ours (replay kernel, no orders): {n} events, {eps / 1e6:.2f} M events/s (convert + index {load_s:.1f} s)")
    from mmgym.scenarios.replay import recording

    rec = recording(args.data)
    for num_envs in (1, 64):
        sps, evs = ours_quoting(args.data, num_envs, 60, args.repeat)
        print(f"ours (env steps of 1 s, 'as' quoting) N={num_envs}: {sps:.0f} steps/s, {evs / 1e6:.2f} M events/s")
    try:
        import hftbacktest
    except ImportError as exc:
        print(f"hftbacktest: not installed ({exc}); pip install hftbacktest==2.4.4")
        return
    rows, heps, conv = hftbacktest_events_per_second(args.data, rec.tick_size, rec.lot_size, args.repeat)
    print(f"hftbacktest {hftbacktest.__version__} HashMapMarketDepthBacktest: {rows} rows, {heps / 1e6:.2f} M "
          f"events/s (its convert {conv:.1f} s)")
    print(f"ours / hftbacktest (no orders): {eps / heps:.2f}")


if __name__ == "__main__":
    main()

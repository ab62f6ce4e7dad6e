"""Sim-to-real on a Binance capture: calibrate on its first part, evaluate baselines on the rest.

Run: ``python benchmarks/sim_to_real.py [--data PATH.gz] [--split 0.5] [--horizon 60] [--stride 10]``
(default: the USDⓈ-M BTCUSDT capture in ``../shared/data/binance`` beside the repository).

1. sigma and per-side A, k from the first ``--split`` of the recording
   (:func:`mmgym.calibrate.calibrate_recording`);
2. ``as_tuned`` tuned by simulation on replay windows of that same first part (the tuning set);
3. ``as``, ``glft`` (``--gamma``) and ``as_tuned`` evaluated on every ``--horizon``-s window
   (``--stride`` apart) of the *rest* of the recording, one env per window (out of sample);
4. per agent: objective (summed reward), PnL, fills, mean |q|, |q_T| and the mark-out of our passive
   fills after 1 s and 10 s: (mid(t + h) - price) for a bid fill, (price - mid(t + h)) for an ask
   fill, in ticks per lot, averaged over fills (t: the fill's recorded event time; fills whose
   t + h passes the recording's end are left out). Negative: adverse selection. And how the fills
   came: a trade through our price, a trade at our price, or the recorded touch moving through us.

PnL and objective are in price units x lots (USDT per 0.001-BTC lot on USDⓈ-M BTCUSDT). No PPO
here: a policy trained on the simulated book and run on the replay is left for later.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

DATA = str(Path(__file__).resolve().parents[2] / "shared" / "data" / "binance" / "usdm_btcusdt_20240808.gz")


def _head(rec, t_end_s: float):
    """The recording's events before ``t_end_s`` seconds (for calibration on the first part)."""
    from dataclasses import replace

    j = int(np.searchsorted(rec.t_ns, rec.t0_ns + int(t_end_s * 1e9)))
    cols = {k: getattr(rec, k)[:j] for k in ("t_ns", "exch_ns", "kind", "side", "px", "qty", "best_bid", "best_ask")}
    return replace(rec, **cols)


def run(cfg, agent, recd) -> dict:
    """One episode per window of ``cfg`` (sequential), the agent's depths; statistics and mark-outs."""
    from mmgym.envs.market import BatchMarket
    from mmgym.scenarios.replay import tape_of

    W = tape_of(cfg).win_ev.size
    m = BatchMarket(cfg, W, raw_depths=True)
    m.seed_rows(list(range(W)))
    m.reset()
    st = m.state
    ret = np.zeros(W)
    absq = np.zeros(W)
    fills = []
    for _ in range(cfg.market.n_steps):
        out = m.step(agent.act(m))
        ret += out.reward
        for i in range(W):
            n = int(st.fill_n[i])
            if n:
                fills.append(st.fills[i, :n].copy())
        st.fill_n[:] = 0
        if not out.done.all():
            absq += np.abs(m.inventory[:, 0])
    stats = dict(zip(m.stat_names, out.final_stats.T))
    f = np.concatenate(fills) if fills else np.zeros((0, 5), np.int64)
    res = {"windows": W, "objective": ret.mean(), "objective_se": ret.std(ddof=1) / np.sqrt(W),
           "pnl": stats["pnl"].mean(), "fills": stats["fills"].mean(), "mean_abs_q": absq.mean() / cfg.market.n_steps,
           "abs_q_T": np.abs(stats["final_inventory"]).mean(), "n_fills": int(f[:, 3].sum())}
    for how, name in enumerate(("through", "queue", "touch")):
        res[f"share_{name}"] = float(f[f[:, 4] == how, 3].sum() / max(f[:, 3].sum(), 1))
    mid2 = recd.best_bid + recd.best_ask
    for h in (1, 10):
        t = f[:, 0] + h * 10**9
        ok = t <= recd.t_ns[-1]
        j = np.searchsorted(recd.t_ns, t[ok], side="right") - 1
        sign = np.where(f[ok, 1] == 0, 1.0, -1.0)
        mo = sign * (0.5 * mid2[j] - f[ok, 2])  # ticks
        w = f[ok, 3]
        res[f"markout_{h}s"] = float((mo * w).sum() / max(w.sum(), 1))
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=DATA)
    ap.add_argument("--split", type=float, default=0.5, help="fraction of the recording used to calibrate and tune")
    ap.add_argument("--horizon", type=float, default=60.0)
    ap.add_argument("--stride", type=float, default=10.0)
    ap.add_argument("--gamma", type=float, default=1.0e-4, help="risk aversion of 'as' and 'glft'")
    ap.add_argument("--tuning-episodes", type=int, default=200)
    ap.add_argument("--queue-model", default="pessimistic", choices=["pessimistic", "power"])
    ap.add_argument("--latency", type=float, default=0.0, help="order-entry latency, seconds")
    args = ap.parse_args()
    from mmgym.baselines import make_baseline
    from mmgym.calibrate import calibrate_recording
    from mmgym.config import BaselinesConfig
    from mmgym.scenarios import get
    from mmgym.scenarios.replay import recording

    rec = recording(args.data)
    t_split = args.split * rec.duration
    t = time.perf_counter()
    rc = calibrate_recording(_head(rec, t_split))
    c = rc.cal
    print(f"# {os.path.basename(args.data)}: {rec.duration:.1f} s; calibrated on [0, {t_split:.1f}) s: sigma={c.sigma:.4g} "
          f"A_bid={c.A_bid:.4g} k_bid={c.k_bid:.4g} A_ask={c.A_ask:.4g} k_ask={c.k_ask:.4g} ({time.perf_counter() - t:.1f} s)")
    sc = get("mmgym/ReplayMarketMaking-v0")
    market = {**sc.defaults["market"], "tick_size": rec.tick_size, "horizon": args.horizon, "sigma": c.sigma,
              "A": c.A, "k": c.k, "A_bid": c.A_bid, "k_bid": c.k_bid, "A_ask": c.A_ask, "k_ask": c.k_ask}
    base = {**sc.defaults, "id": sc.id, "market": market, "reward": {"inventory_penalty": 0.01, "terminal_penalty": 0.1}}
    common = {"path": args.data, "stride": args.stride, "queue_model": args.queue_model, "entry_latency": args.latency}
    train = sc.config_class.model_validate({**base, "replay": {**common, "end": t_split}})
    test = sc.config_class.model_validate({**base, "replay": {**common, "start": t_split, "start_mode": "sequential",
                                                             "fill_log": 10_000}})
    bc = BaselinesConfig.model_validate({"gamma": args.gamma, "tuning": {"episodes": args.tuning_episodes,
                                         "gamma_min": 1e-7, "gamma_max": 1e-1, "method": "simulation"}})
    t = time.perf_counter()
    agents = {"as": make_baseline("as", test, bc), "glft": make_baseline("glft", test, bc),
              "as_tuned": make_baseline("as_tuned", train, bc)}
    tuned = agents["as_tuned"]
    print(f"# as_tuned tuned on {args.tuning_episodes} windows of the first part: {getattr(tuned, 'describe', lambda: '')()} "
          f"({time.perf_counter() - t:.1f} s)")
    print(f"# evaluation: every {args.horizon:g}-s window ({args.stride:g} s apart) of [{t_split:.1f}, {rec.duration:.1f}] s; "
          f"gamma={args.gamma:g} for as/glft; queue model {args.queue_model}, latency {args.latency:g} s; "
          f"mark-outs in ticks ({rec.tick_size:g}) per lot")
    print("| agent | objective ± se | PnL | fills/episode | mean abs q | abs q_T | mark-out 1 s | mark-out 10 s | "
          "fills: through / at price / touch |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, agent in agents.items():
        r = run(test, agent, rec)
        print(f"| {name} | {r['objective']:.3f} ± {r['objective_se']:.3f} | {r['pnl']:.3f} | {r['fills']:.1f} | "
              f"{r['mean_abs_q']:.2f} | {r['abs_q_T']:.2f} | {r['markout_1s']:+.2f} | {r['markout_10s']:+.2f} | "
              f"{r['share_through']:.0%} / {r['share_queue']:.0%} / {r['share_touch']:.0%} |")
    print(f"# windows: {r['windows']}")


if __name__ == "__main__":
    main()

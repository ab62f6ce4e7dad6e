"""The replay's toxicity features on a recording: how its trades group into market orders and what
observation columns 11-13 (``mo_flow``, ``mo_size``, ``mo_levels``) read (docs/REPLAY.md,
"Toxicity features on real data").

Run: ``python benchmarks/replay_toxicity.py [--data PATH] [--tick T] [--horizon S]`` (default: the shipped
USDⓈ-M BTCUSDT excerpt, tick 0.1).

- per market order (the env's rule, :func:`mmgym.scenarios.replay.tox_trade`: a run of trades
  consecutive in the recording with the same exchange time and aggressor side), over the whole
  recording: trades per order, levels walked, lots / the recorded lots resting at its first
  trade's tick before it (a dict book rebuilt here in Python, not the engine's), how often that
  depth is 0;
- per step: the observation columns of the env (1-s steps, every window of the default config in
  turn, no quotes), as an agent sees them.
"""

from __future__ import annotations

import argparse

import numpy as np


def market_orders(rec) -> dict[str, np.ndarray]:
    """Per market order of ``rec``: trades, signed lots, depth before it, first and last tick."""
    from mmgym.data.binance import CLEAR, TRADE

    book: tuple[dict, dict] = ({}, {})
    out: dict[str, list] = {k: [] for k in ("trades", "signed", "depth", "first", "last")}
    kind, side, px, qty, ex = (rec.kind.tolist(), rec.side.tolist(), rec.px.tolist(), rec.qty.tolist(),
                               rec.exch_ns.tolist())
    for j in range(len(kind)):
        k = kind[j]
        if k == CLEAR:
            book = ({}, {})
        elif k != TRADE:
            (book[side[j]].__setitem__(px[j], qty[j]) if qty[j] > 0 else book[side[j]].pop(px[j], None))
        elif j > 0 and kind[j - 1] == TRADE and ex[j - 1] == ex[j] and side[j - 1] == side[j]:
            out["trades"][-1] += 1
            out["signed"][-1] += qty[j] if side[j] == 0 else -qty[j]
            out["last"][-1] = px[j]
        else:
            out["trades"].append(1)
            out["signed"].append(qty[j] if side[j] == 0 else -qty[j])
            out["depth"].append(book[1 - side[j]].get(px[j], 0))
            out["first"].append(px[j])
            out["last"].append(px[j])
    return {k: np.asarray(v) for k, v in out.items()}


def main() -> None:
    from mmgym.envs.market import BatchMarket
    from mmgym.scenarios import get
    from mmgym.scenarios.replay import EXCERPT, recording

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=EXCERPT)
    ap.add_argument("--tick", type=float, default=None, help="market.tick_size (default: the recording's)")
    ap.add_argument("--horizon", type=float, default=None, help="market.horizon, s (default: the config's 30)")
    a = ap.parse_args()
    rec = recording(a.data)
    mo = market_orders(rec)
    n_tr = int(mo["trades"].sum())
    lv = np.abs(mo["last"] - mo["first"]) + 1
    ok = mo["depth"] > 0
    rel = np.abs(mo["signed"][ok]) / mo["depth"][ok]
    print(f"{rec.meta.get('source')}: {rec.duration:.1f} s, {n_tr} trades, {mo['trades'].size} market orders "
          f"({n_tr / max(1, mo['trades'].size):.2f} trades each)")
    print(f"  orders of > 1 trade: {np.mean(mo['trades'] > 1):.1%} (they hold {mo['trades'][mo['trades'] > 1].sum() / n_tr:.1%} "
          f"of the trades); walking > 1 level: {np.mean(lv > 1):.1%}; depth 0 before it: {np.mean(~ok):.1%}")
    print(f"  levels walked: mean {lv.mean():.2f}, median {np.median(lv):.0f}, p95 {np.percentile(lv, 95):.1f}, "
          f"max {lv.max()}")
    print(f"  lots / depth: mean {rel.mean():.3f}, median {np.median(rel):.4f}, p95 {np.percentile(rel, 95):.3f}, "
          f"> 1: {np.mean(rel > 1):.1%}")
    sc = get("mmgym/ReplayMarketMaking-v0")
    data = {**sc.defaults, "id": sc.id, "replay": {**sc.defaults["replay"], "path": a.data, "start_mode": "sequential"},
            "market": {**sc.defaults["market"], "tick_size": a.tick or rec.tick_size,
                       "horizon": a.horizon or sc.defaults["market"]["horizon"]}}
    cfg = sc.config_class.model_validate(data)
    W = int(BatchMarket(cfg, 1).state.tape.win_ev.size)
    m = BatchMarket(cfg, W, raw_depths=True)
    m.seed_rows(list(range(W)))
    m.reset()
    cols = []
    for _ in range(cfg.market.n_steps - 1):
        out = m.step(np.full((W, 2), 1e6))  # quotes far away: the columns do not depend on them
        cols.append(out.obs[:, 11:14].copy())
    c = np.concatenate(cols)
    print(f"  observation, {c.shape[0]} steps of {cfg.market.dt} s ({W} windows of {cfg.market.horizon} s):")
    for k, name in enumerate(("mo_flow", "mo_size", "mo_levels")):
        x = c[:, k]
        print(f"    {name:9s} mean {x.mean():+.3f}  mean |x| {np.abs(x).mean():.3f}  p5 {np.percentile(x, 5):+.3f}  "
              f"p95 {np.percentile(x, 95):+.3f}")


if __name__ == "__main__":
    main()

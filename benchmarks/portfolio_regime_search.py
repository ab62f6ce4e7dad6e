#!/usr/bin/env python
"""Headroom of a portfolio world with correlation regimes, before training (issue 11).

Usage::

    python benchmarks/portfolio_regime_search.py [--config configs/ppo_portfolio8.yaml] \
        [--episodes 2000] [--seed 200000] --world PHI CALM_FV STRESS_FV RATES [--world ...]

e.g. ``--world 0.5 '[1.0,2.0]' '[6.0,0.5]' '[[0,1],[2,0]]'``: phi = ``reward.inventory_penalty``
(``baselines.gamma`` = 2 phi), the calm regime's factor vols (also the nominal
``portfolio.factor_vols`` the static baselines quote with), the stressed regime's, and the
regimes' rates. Each world is scored on the same episodes (episode e: seed + e; 200000+ is
neither the evaluation's 100000.. nor training's) by:

* ``as`` (per asset), ``begv`` (nominal Sigma), ``begv_regime`` (begv for the current Sigma_r);
* ``static``: the best of a small grid of constant multipliers (the begv_tuned family, scored on
  these episodes: optimistic, a quick look, not the tuner);
* ``switch``: the best pair (calm multipliers, stressed multipliers) from the same grid, quoting
  begv's rule for the regime's pair (:class:`~mmgym.baselines.portfolio.BEGVRegime` with those
  penalties): what an agent of the portfolio_hybrid action set that reads the regime can reach at
  least; ``switch - static`` is the headroom a regime-aware agent has over the best static begv.

Prints one line per world with paired 95 % CIs (``begv_regime - begv``, ``begv - as``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

GRID = [(1, 1, 1), (3, 1, 1), (10, 1, 1), (3, 0.3, 1), (10, 0.3, 1), (16, 0.1, 1), (36, 0.06, 1),
        (10, 0.1, 1), (20, 0.03, 1), (36, 0.1, 1), (1, 0.3, 1), (3, 0.1, 1)]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default=str(ROOT / "configs" / "ppo_portfolio8.yaml"))
    p.add_argument("--episodes", type=int, default=2000)
    p.add_argument("--seed", type=int, default=200_000)
    p.add_argument("--world", nargs=4, action="append", required=True, metavar=("PHI", "CALM", "STRESS", "RATES"))
    args = p.parse_args(argv)

    from mmgym.baselines import make_baseline
    from mmgym.baselines.portfolio import BEGV, BEGVRegime
    from mmgym.config import load_config
    from mmgym.evaluation.runner import run_policy
    from mmgym.evaluation.stats import paired_difference
    from mmgym.scenarios.portfolio import hybrid_penalty, risk_components

    for phi, calm, stress, rates in args.world:
        phi = float(phi)
        calm, stress, rates = json.loads(calm), json.loads(stress), json.loads(rates)
        cfg = load_config(args.config, [
            f"env.reward.inventory_penalty={phi}", f"baselines.gamma={2 * phi}", f"env.portfolio.factor_vols={calm}",
            "env.portfolio.correlation_regimes=" + json.dumps({"factor_vols": [calm, stress], "rates": rates})])
        env = cfg.env
        comps = risk_components(env.portfolio)[0]

        def score(pol, env=env):
            return run_policy(env, pol, args.episodes, args.seed, cache=False).objective

        obj = {n: score(make_baseline(n, env, cfg.baselines)) for n in ("as", "begv", "begv_regime")}
        pens = {m: hybrid_penalty(comps, np.array(m, dtype=float)) for m in GRID}
        static = {m: score(BEGV(env, penalties=pens[m])).mean() for m in GRID}
        m_static = max(static, key=static.get)
        switch = {(a, b): score(BEGVRegime(env, penalties=np.stack([pens[a], pens[b]]))).mean()
                  for a in GRID for b in GRID}
        m_switch = max(switch, key=switch.get)
        d_reg = paired_difference(obj["begv_regime"], obj["begv"])
        d_as = paired_difference(obj["begv"], obj["as"])
        begv = obj["begv"].mean()
        print(f"phi {phi:g}, calm {calm}, stressed {stress}, rates {rates}: as {obj['as'].mean():.2f}, "
              f"begv {begv:.2f}, begv_regime {obj['begv_regime'].mean():.2f}; begv_regime - begv "
              f"{d_reg['mean']:+.2f} [{d_reg['ci95'][0]:+.2f}, {d_reg['ci95'][1]:+.2f}] ({100 * d_reg['mean'] / abs(begv):.1f} %), "
              f"begv - as {d_as['mean']:+.2f} [{d_as['ci95'][0]:+.2f}, {d_as['ci95'][1]:+.2f}]; static best {m_static} "
              f"{static[m_static]:.2f}; switch best {m_switch} {switch[m_switch]:.2f} "
              f"(switch - static {switch[m_switch] - static[m_static]:+.2f})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

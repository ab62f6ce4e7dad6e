#!/usr/bin/env python
"""Glass box of the portfolio's correlation regimes (issue 11): what a policy does in each regime.

Usage::

    python benchmarks/portfolio_regime_glass_box.py configs/ppo_portfolio8.yaml \
        --agents begv begv_tuned begv_regime 'ppo=runs/bench_ppo_portfolio8/seed*/model.zip' \
        [--episodes 2000] [--seed 100000]

Runs each agent on the same episodes (episode e: seed + e, as ``evaluate.py``) of a
``mmgym/PortfolioMarketMaking-v0`` config with ``portfolio.correlation_regimes`` and reports, per
regime r (read before each step, the regime that moves that step's mids), over all row-steps:

* ``share``: the fraction of row-steps in regime r;
* for a ``portfolio_hybrid`` agent, the multipliers it chose (aux ``risk_mult_*``): geometric mean
  and 10 % / 90 % quantiles, and the mean chosen skew (aux ``skew_a`` over the assets); the static
  baselines' multipliers are constants (``begv`` 1; ``begv_tuned`` its tuned ones; ``begv_regime``
  the regime's ``(fv_r / fv_nominal)^2`` with idio 1);
* ``|b1'q|``: the mean absolute exposure to the first factor (``b_1`` the first loadings column)
  before the step, and ``risk``: the mean ``sqrt(q' Sigma_r q)`` (the regime's risk-equivalent
  inventory).

Several model files for one agent (a glob) are pooled (every seed's row-steps).
"""

from __future__ import annotations

import argparse
import glob
import math
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def run(env_config, policy, episodes: int, seed: int, num_envs: int = 1000) -> dict[str, np.ndarray]:
    """Row-step records of ``policy`` (a DepthPolicy or a callable obs -> normalised actions)."""
    from mmgym.baselines import DepthPolicy
    from mmgym.make import make_market

    is_depth = isinstance(policy, DepthPolicy)
    n_steps = env_config.market.n_steps
    out: dict[str, list] = {"regime": [], "q": [], "mult": [], "skew": []}
    for start in range(0, episodes, num_envs):
        rows = min(num_envs, episodes - start)
        market = make_market(env_config, rows, raw_depths=is_depth)
        col = {c: j for j, c in enumerate(market.aux_names)}
        k = env_config.portfolio.assets
        mult_cols = [col[c] for c in market.aux_names if c.startswith("risk_mult_")]
        skew_cols = [col[f"skew_{a}"] for a in range(k)]
        actions = np.zeros((rows, market.action_dim))
        market.seed_rows([seed + start + i for i in range(rows)])
        obs = market.reset()
        for _ in range(n_steps):
            out["regime"].append(market.field("regime").copy())
            out["q"].append(np.asarray(market.inventory, dtype=np.float64).copy())
            if is_depth:
                act = policy.act(market, out=actions)
            else:
                act = np.asarray(policy(obs), dtype=np.float64).reshape(rows, market.action_dim)
            buf = market.step(act)
            # raw-depth baselines leave the hybrid's columns unused: NaN, their multipliers are constants
            out["mult"].append(buf.aux[:, mult_cols].copy() if not is_depth else np.full((rows, len(mult_cols)), np.nan))
            out["skew"].append(np.nanmean(buf.aux[:, skew_cols], axis=1) if not is_depth else np.full(rows, np.nan))
            obs = buf.obs
    return {k: np.concatenate(v) for k, v in out.items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("config")
    p.add_argument("--agents", nargs="+", required=True, help="baseline names, or name=model.zip (a glob pools seeds)")
    p.add_argument("--episodes", type=int, default=2000)
    p.add_argument("--seed", type=int, default=100_000)
    p.add_argument("--set", dest="overrides", nargs="+", default=[], metavar="KEY=VALUE")
    args = p.parse_args(argv)

    from mmgym.agents.policies import load_sb3_policy

    from mmgym.baselines import make_baseline
    from mmgym.config import load_config
    from mmgym.scenarios.portfolio import factor_loadings, risk_components

    cfg = load_config(args.config, [f"env.{o}" if not o.startswith(("env.", "baselines.")) else o
                                    for o in args.overrides])
    env = cfg.env
    pf = env.portfolio
    if pf.correlation_regimes is None:
        print(f"{args.config}: no portfolio.correlation_regimes", file=sys.stderr)
        return 2
    sig = pf.regime_sigmas()
    b1 = factor_loadings(pf)[0]
    names = risk_components(pf)[1]
    n_reg = sig.shape[0]
    for spec in args.agents:
        name, _, path = spec.partition("=")
        if path:
            files = sorted(glob.glob(path))
            if not files:
                print(f"{spec}: no model file", file=sys.stderr)
                return 2
            recs = [run(env, load_sb3_policy(f, env), args.episodes, args.seed) for f in files]
            rec = {k: np.concatenate([r[k] for r in recs]) for k in recs[0]}
            label = f"{name} ({len(files)} model{'s' if len(files) > 1 else ''})"
        else:
            pol = make_baseline(name, env, cfg.baselines)
            rec = run(env, pol, args.episodes, args.seed)
            label = name
            if hasattr(pol, "multipliers"):
                label += " [" + ", ".join(f"{k} {v:.3g}" for k, v in pol.multipliers.items()) + "]"
        print(f"{label}: {args.episodes} episodes, seed {args.seed}")
        for r in range(n_reg):
            sel = rec["regime"] == r
            q = rec["q"][sel]
            expo = np.abs(q @ b1).mean()
            risk = np.sqrt(np.maximum(np.einsum("ni,ij,nj->n", q, sig[r], q), 0.0)).mean()
            line = f"  regime {r}: share {sel.mean():.3f}, |b1'q| {expo:.3f}, risk {risk:.3f}"
            m = rec["mult"][sel]
            if m.shape[1] and np.isfinite(m).all():
                parts = []
                for j, n in enumerate(names):
                    lo, hi = np.quantile(m[:, j], [0.1, 0.9])
                    parts.append(f"m_{n} {math.exp(np.log(m[:, j]).mean()):.3g} [{lo:.3g}, {hi:.3g}]")
                line += "; " + ", ".join(parts) + f"; mean skew {np.nanmean(rec['skew'][sel]):+.4f}"
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())

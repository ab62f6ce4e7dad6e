"""The portfolio env's final mark and factor instrument (issue 11; mmgym/scenarios/portfolio.py):
the scripted end-of-episode impact exploit priced exactly (and unprofitable since the final mark
charges the liquidation's permanent impact), the factor instrument's step against a slow scalar
reference, the total-exposure penalty against a direct formula, and the factor hedger."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import mmgym  # noqa: F401
from mmgym.config import load_config, load_env_config
from mmgym.envs.market import BatchMarket

ID = "mmgym/PortfolioMarketMaking-v0"
ROOT = Path(__file__).resolve().parents[1]
P8 = ROOT / "configs" / "portfolio8.yaml"


def _p8_env(**over):
    data = load_config(str(P8)).env.model_dump()
    for key, val in over.items():
        data[key] = {**data.get(key, {}), **val}
    return load_env_config(data)


def _run_scripted(cfg, q0: int, v_last: int, n: int, seed: int):
    """No quotes (depth 1e3: fill probability 0), a market buy of ``q0`` lots in every asset on the
    first step, hold, and a buy of ``v_last`` lots in every asset on the last step. Returns the
    market and per row: episode return, the last step's reward terms and its ``revaluation_noise`` aux column."""
    market = BatchMarket(cfg, n, raw_depths=True)
    market.seed_rows([seed + i for i in range(n)])
    market.reset()
    k = cfg.portfolio.assets
    layout = market.action_layout
    act = np.zeros((n, market.action_dim))
    act[:, layout.bid] = 1e3
    act[:, layout.ask] = 1e3
    ret = np.zeros(n)
    steps = cfg.market.n_steps
    for t in range(steps):
        act[:, layout.hedge] = 0.0
        if t == 0:
            act[:, layout.hedge.start:layout.hedge.start + k] = q0
        if t == steps - 1:
            act[:, layout.hedge.start:layout.hedge.start + k] = v_last
        b = market.step(act)
        ret += b.reward
    assert b.done.all()
    noise = b.aux[:, market.aux_names.index("revaluation_noise")].copy()
    return ret, b.terms.copy(), noise, market


def test_last_step_buy_no_longer_pays_with_the_final_mark():
    """configs/portfolio8.yaml's G, h, eta: long q = 5 lots in every asset, a last-step buy of v = 1
    everywhere. Without the final mark it revalued the position by (q + v)^T G v = 2.238 for a cost
    of 8 (h + eta) = 1.2 (the exploit). With it, the paired difference of episode returns (same
    streams) is, row by row, (q+v)^T G v - cost - 1/2 [(q+v)^T G (q+v) - q^T G q] - (phi dt + alpha)
    [(q+v)^T Sigma (q+v) - q^T Sigma q] + v^T dS_T (the last mid move, read from the revaluation_noise column),
    and its deterministic part is negative."""
    cfg = _p8_env()
    g = np.asarray(cfg.portfolio.cross_impact)
    sig = cfg.portfolio.sigma_matrix()
    h, eta = cfg.impact.half_spread, cfg.impact.eta
    phi, alpha, dt = cfg.reward.inventory_penalty, cfg.reward.terminal_penalty, cfg.market.dt
    k = cfg.portfolio.assets
    q = np.full(k, 5.0)
    v = np.ones(k)
    x = q + v
    cost = np.abs(v).sum() * h + eta * (v * v).sum()
    reval = x @ g @ v
    assert reval == pytest.approx(2.238, abs=1e-3) and cost == pytest.approx(1.2)
    assert reval - cost > 1.0  # the exploit, as the env paid it before the final mark
    det = reval - cost - 0.5 * (x @ g @ x - q @ g @ q) - (phi * dt + alpha) * (x @ sig @ x - q @ sig @ q)
    assert det < -1.0
    n = 64
    r_hold, t_hold, n_hold, m = _run_scripted(cfg, 5, 0, n, 7)
    r_buy, t_buy, n_buy, _ = _run_scripted(cfg, 5, 1, n, 7)
    np.testing.assert_allclose(r_buy - r_hold - (n_buy - n_hold), det, rtol=0, atol=1e-8)
    # the impact term of the last step: the order's temporary cost plus the liquidation's 1/2 x^T G x
    imp = m.term_names.index("impact")
    np.testing.assert_allclose(-t_hold[:, imp], 0.5 * q @ g @ q, rtol=1e-12)
    np.testing.assert_allclose(-t_buy[:, imp], cost + 0.5 * x @ g @ x, rtol=1e-12)


def test_no_market_orders_no_final_mark_change():
    """portfolio2 (no market orders, G = 0): the last step's impact term is exactly 0 and the reward
    is the sum of pnl, fees and penalties (nothing charged at the final mark)."""
    cfg = load_config(str(ROOT / "configs" / "portfolio2.yaml")).env
    market = BatchMarket(cfg, 50, raw_depths=True)
    market.seed_rows(list(range(50)))
    market.reset()
    act = np.full((50, market.action_dim), 0.5)
    imp = market.term_names.index("impact")
    for _ in range(cfg.market.n_steps):
        b = market.step(act)
        assert (b.terms[:, imp] == 0.0).all()
    assert b.done.all()

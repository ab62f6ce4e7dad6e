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

from .portfolio_helpers import seeded_market

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


# ------------------------------------------------------------------ the factor instrument ---
def _p8_short(horizon=0.1, **reward):
    cfg = load_config(str(P8))
    data = cfg.env.model_dump()
    data["market"]["horizon"] = horizon
    data["reward"].update(reward)
    return load_env_config(data), cfg.baselines


def test_factor_instrument_defaults_are_the_documented_ones():
    """portfolio8: w = b_1 / sum(b_1), g_e = G w, exposure to factor 1 per unit b_1^T w; the
    observation gains one column (q_e / max_position) and the action one market-order column."""
    from mmgym.scenarios.portfolio import SCENARIO, factor_instrument

    env, _ = _p8_short()
    fi = factor_instrument(env)
    b1 = np.asarray(env.portfolio.loadings)[:, 0]
    np.testing.assert_allclose(fi.w, b1 / b1.sum(), rtol=1e-15)
    np.testing.assert_allclose(fi.g, np.asarray(env.portfolio.cross_impact) @ fi.w, rtol=1e-15)
    assert (fi.half_spread, fi.eta, fi.max_position) == (0.03, 0.01, 40)
    k = env.portfolio.assets
    cols = SCENARIO.obs_columns(env)
    assert len(cols) == 5 * k + 2 and cols.names[-1] == "factor_position"
    lay = SCENARIO.action_layout(env)
    assert lay.hedge == slice(2 * k, 3 * k + 1)


def test_total_exposure_penalty_and_wealth_by_direct_formula():
    """begv_factor_hedge on portfolio8 (20 steps, 64 envs, phi = 1 so that it trades): each step's
    inventory_penalty term is -phi x'^T Sigma x' dt with x' = q' + q_e' w from the state (a direct
    numpy formula), portfolio_variance is x'^T Sigma x', the factor exposure is b_1^T x', the
    observation's last column is q_e' / max_position, and the instrument's position moves by the
    executed orders only."""
    from mmgym.baselines import make_baseline
    from mmgym.scenarios.portfolio import factor_instrument

    env, bc = _p8_short(inventory_penalty=1.0, terminal_penalty=0.01)
    pol = make_baseline("begv_factor_hedge", env, bc)
    fi = factor_instrument(env)
    sig = env.portfolio.sigma_matrix()
    b1 = np.asarray(env.portfolio.loadings)[:, 0]
    n = 64
    m, col, term, act = seeded_market(env, n, raw_depths=True)
    traded = 0
    for _ in range(m.n_steps):
        qe0 = m.field("factor_position").copy()
        t = m.step_count.copy()
        x0 = m.inventory + qe0[:, None] * fi.w
        pol.act(m, out=act)
        want = np.clip(qe0 + np.rint(pol.target(t, x0)), -40, 40) - qe0
        b = m.step(act)
        ve = b.aux[:, col["hedge_factor"]]
        np.testing.assert_array_equal(ve, want)
        qe = b.aux[:, col["factor_position"]]
        np.testing.assert_array_equal(qe, qe0 + ve)
        q = b.aux[:, [col[f"inventory_{a}"] for a in range(8)]]
        x = q + qe[:, None] * fi.w
        var = np.einsum("ni,ij,nj->n", x, sig, x)
        np.testing.assert_allclose(b.aux[:, col["portfolio_variance"]], var, rtol=1e-12)
        np.testing.assert_allclose(b.terms[:, term["inventory_penalty"]], -1.0 * var * env.market.dt, rtol=1e-12)
        np.testing.assert_allclose(b.aux[:, col["factor_exposure"]], x @ b1, rtol=1e-12, atol=1e-12)
        if not b.done.any():
            np.testing.assert_allclose(b.obs[:, -1], qe / 40, rtol=1e-6)
        traded += np.abs(ve).sum()
    assert b.done.all() and traded > 0


def test_factor_hedge_is_the_restricted_qp():
    """begv_factor_hedge's v_e* minimises (x + v w)^T M (x + v w) + eta_e v^2 (a dense grid over v),
    and as eta_e -> 0 it trades to the minimum-variance hedge ratio y* - q_e, y* = -w^T Sigma q /
    (w^T Sigma w) (Johnson 1960, Ederington 1979)."""
    from mmgym.baselines import make_baseline

    env, bc = _p8_short()
    pol = make_baseline("begv_factor_hedge", env, bc)
    rng = np.random.default_rng(3)
    p = env.portfolio.sigma_matrix()
    phi, alpha = env.reward.inventory_penalty, env.reward.terminal_penalty
    grid = np.linspace(-60, 60, 240001)
    for t in (0, 7, 19):
        tau = (env.market.n_steps - t) * env.market.dt
        mm = (phi * tau + alpha) * p
        for _ in range(3):
            x = rng.integers(-10, 11, 8).astype(float)
            v = pol.target(np.array([t]), x[None])[0]
            xs = x[None, :] + grid[:, None] * pol.w
            obj = np.einsum("ni,ij,nj->n", xs, mm, xs) + pol.eta_e * grid ** 2
            assert v == pytest.approx(grid[np.argmin(obj)], abs=1e-3)
    data = env.model_dump()
    data["portfolio"]["factor_instrument"]["eta"] = 1e-12
    pol0 = make_baseline("begv_factor_hedge", load_env_config(data), bc)
    q = rng.integers(-10, 11, 8).astype(float)
    y = -pol.w @ p @ q / (pol.w @ p @ pol.w)
    assert pol0.target(np.array([0]), q[None])[0] == pytest.approx(y, rel=1e-8)


def test_factor_trades_in_the_audit_reconcile_with_the_env():
    """run_policy with audit on portfolio8 (10 steps, 12 episodes, begv_factor_hedge, phi = 1): the
    instrument's records (asset "factor") are the executed orders at factor_mid -+ (h_e + eta_e |v|),
    their signed sum per episode is the final q_e, and the cash after each step's last record is the
    env's cash after the step."""
    from mmgym.baselines import make_baseline
    from mmgym.evaluation import audit_columns, run_policy

    from .test_portfolio_limits import _direct_run

    env, bc = _p8_short(horizon=0.05, inventory_penalty=1.0, terminal_penalty=0.01)
    pol = make_baseline("begv_factor_hedge", env, bc)
    eps = 12
    batch = run_policy(env, pol, eps, seed=0, audit=True, cache=False)
    m, steps, _ = _direct_run(env, pol, eps)
    col = {name: j for j, name in enumerate(m.aux_names)}
    rows = [dict(zip(audit_columns(env), r)) for r in batch.audit]
    fac = [r for r in rows if r["asset"] == "factor"]
    assert fac
    signed = np.zeros(eps)
    last_cash = {}
    for r in rows:
        last_cash[(r["episode"], r["step"])] = r["cash_after"]
    for r in fac:
        aux = steps[r["step"]][2][r["episode"]]
        v = aux[col["hedge_factor"]]
        assert r["qty"] == abs(v) and r["side"] == ("market_buy" if v > 0 else "market_sell")
        assert r["mid"] == aux[col["factor_mid"]]
        assert r["price"] == pytest.approx(r["mid"] + np.sign(v) * (0.03 + 0.01 * abs(v)), abs=1e-12)
        signed[r["episode"]] += v
        assert r["inventory_after"] == signed[r["episode"]]
    np.testing.assert_array_equal(signed, steps[-1][2][:, col["factor_position"]])
    for (e, t), cash in last_cash.items():
        if not steps[t][3][e]:
            assert cash == pytest.approx(steps[t][4][e], abs=1e-9)


def test_factor_instrument_in_make_vec_and_refusals():
    """gym.make_vec with the instrument equals the batched market; a factor instrument without the
    market-order action, and wrong-length weights, are refused in one line."""
    import gymnasium as gym

    from mmgym.config import ConfigError

    env, _ = _p8_short(horizon=0.05)
    kw = env.model_dump(exclude={"id"})
    venv = gym.make_vec(ID, num_envs=3, vectorization_mode="vector_entry_point", **kw)
    obs, _ = venv.reset(seed=0)
    assert obs.shape == (3, 42)
    for _ in range(env.market.n_steps):
        obs, r, term, trunc, info = venv.step(venv.action_space.sample())
    assert term.all() and np.isfinite(r).all() and "hedge_factor" in info
    venv.close()
    data = env.model_dump()
    data["action"]["hedge"] = False
    data["impact"] = {}
    data["portfolio"]["cross_impact"] = None
    with pytest.raises(ConfigError, match="factor_instrument: needs the market-order action") as exc:
        BatchMarket(load_env_config(data), 1)
    assert "\n" not in str(exc.value)
    data = env.model_dump()
    data["portfolio"]["factor_instrument"]["weights"] = [1.0, 2.0]
    with pytest.raises(ConfigError, match="factor_instrument.weights has 2 entries, expected assets = 8") as exc:
        load_env_config(data)
    assert "\n" not in str(exc.value)

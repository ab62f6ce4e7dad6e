"""mmgym/OUMarketMaking-v0, the worked example of docs/SCENARIOS.md: the intensity market with an
Ornstein-Uhlenbeck mid. Checked against the scalar reference with the exact OU transition, against
the intensity market at kappa = 0, and by the moments of the transition (Monte Carlo)."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mmgym  # noqa: F401
from mmgym.config import load_env_config
from mmgym.envs.market import BatchMarket
from mmgym.evaluation import evaluate_agents

from .reference_intensity import RefRng, ref_reset, ref_step

ID = "mmgym/OUMarketMaking-v0"


def _ou_move(cfg):
    """The exact OU transition over one step (Gillespie 1996, eq. 1.3), written independently."""
    m, kappa = cfg.market, cfg.ou.kappa
    mean = m.s0 if cfg.ou.mean is None else cfg.ou.mean
    if kappa == 0.0:
        return lambda s, z: m.sigma * math.sqrt(m.dt) * z
    decay = math.exp(-kappa * m.dt)
    sd = m.sigma * math.sqrt((1.0 - math.exp(-2.0 * kappa * m.dt)) / (2.0 * kappa))
    return lambda s, z: mean + (s - mean) * decay + sd * z - s


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kappa=st.sampled_from([0.0, 0.5, 3.0, 40.0]), mean=st.sampled_from([None, 95.0, 103.5]),
       seed=st.integers(0, 2**32 - 1), noise=st.sampled_from(["gaussian", "binomial"]),
       hedge=st.booleans(), jump=st.sampled_from([0.0, 0.4]))
def test_kernel_matches_reference_with_exact_ou_transition(kappa, mean, seed, noise, hedge, jump):
    """30 random configs x 3 envs x 70 steps (an autoreset included): every output matches the
    scalar reference whose mid moves by the exact OU transition (then jumps on our fills when
    ``market.adverse_jump`` > 0)."""
    cfg = load_env_config({"id": ID, "market": {"horizon": 0.25, "mid_noise": noise, "sigma": 3.0,
                                                "adverse_jump": jump},
                           "ou": {"kappa": kappa, "mean": mean}, "action": {"hedge": hedge},
                           "impact": {"eta": 0.05, "nu": 0.01}})
    market = BatchMarket(cfg, 3)
    market.seed_rows([seed + i for i in range(3)])
    refs = [ref_reset(cfg, RefRng(int(market.rng[i, 0]), int(market.rng[i, 1]))) for i in range(3)]
    market.reset()
    move = _ou_move(cfg)
    m_mean = cfg.market.s0 if mean is None else mean
    scale = cfg.market.sigma / math.sqrt(2 * kappa) if kappa > 0 else cfg.market.sigma * math.sqrt(cfg.market.horizon)
    rng = np.random.default_rng(seed)
    for _ in range(70):
        actions = rng.uniform(-1.2, 1.2, size=(3, market.action_dim))
        b = market.step(actions)
        for i in range(3):
            out = ref_step(cfg, refs[i], actions[i].tolist(), mid_move=move)
            assert b.done[i] == out["done"]
            assert b.reward[i] == pytest.approx(out["reward"], rel=1e-9, abs=1e-9)
            np.testing.assert_allclose(b.obs[i, :6], out["obs"], rtol=1e-5, atol=1e-6)
            dev = max(-10.0, min(10.0, (refs[i].mid - m_mean) / scale))
            assert b.obs[i, 6] == pytest.approx(dev, rel=1e-5, abs=1e-6)
            assert market.mid[i, 0] == pytest.approx(refs[i].mid, rel=1e-12)
            assert market.inventory[i, 0] == refs[i].q


def test_kappa_zero_is_the_intensity_market_draw_for_draw():
    """With kappa = 0 the OU scenario is mmgym/MarketMaking-v0: same seed, same everything."""
    kw = dict(market={"horizon": 0.25}, action={"hedge": True}, impact={"eta": 0.1})
    ou = gym.make_vec(ID, num_envs=4, vectorization_mode="vector_entry_point", ou={"kappa": 0.0}, **kw)
    im = gym.make_vec("mmgym/MarketMaking-v0", num_envs=4, vectorization_mode="vector_entry_point", **kw)
    o1, _ = ou.reset(seed=5)
    o2, _ = im.reset(seed=5)
    np.testing.assert_array_equal(o1[:, :6], o2)
    rng = np.random.default_rng(0)
    for _ in range(120):
        a = rng.uniform(-1, 1, size=(4, 3)).astype(np.float32)
        o1, r1, d1, _, i1 = ou.step(a)
        o2, r2, d2, _, i2 = im.step(a)
        np.testing.assert_array_equal(o1[:, :6], o2)
        np.testing.assert_array_equal(r1, r2)
        np.testing.assert_array_equal(d1, d2)
        for key in ("pnl", "inventory_penalty", "bid_px", "ask_px", "hedge_lots", "fill_bid"):
            np.testing.assert_array_equal(i1[key], i2[key], err_msg=key)


def test_transition_moments_by_monte_carlo():
    """From s0 = 100 with m = 104, kappa = 2: after n steps the mid's mean and variance are the
    OU transition's, m + (s0 - m) e^{-kappa t} and sigma^2 (1 - e^{-2 kappa t}) / (2 kappa),
    within 4 standard errors over 20,000 paths (quotes kept far away: no fills, no hedge)."""
    n_env, n = 20_000, 60
    cfg = load_env_config({"id": ID, "market": {"horizon": 1.0, "dt": 0.005, "sigma": 2.0},
                           "ou": {"kappa": 2.0, "mean": 104.0}})
    market = BatchMarket(cfg, n_env, raw_depths=True)
    market.seed_rows(list(range(n_env)))
    market.reset()
    far = np.full((n_env, 2), 50.0)
    for _ in range(n):
        market.step(far)
    x = market.mid[:, 0]
    t = n * cfg.market.dt
    mean = 104.0 + (100.0 - 104.0) * math.exp(-2.0 * t)
    var = 4.0 * (1.0 - math.exp(-4.0 * t)) / 4.0
    se_mean = math.sqrt(var / n_env)
    assert abs(x.mean() - mean) < 4 * se_mean
    se_var = var * math.sqrt(2.0 / (n_env - 1))  # Gaussian sample variance
    assert abs(x.var(ddof=1) - var) < 4 * se_var
    assert market.inventory.max() == 0 and market.inventory.min() == 0


def test_baselines_run_and_say_what_their_model_is():
    """The analytic baselines run on the OU env; its scenario declares they are the Brownian
    model's policies (no exact values reported), through the evaluation's generic path."""
    from mmgym.evaluation import run_evaluation

    cfg = load_env_config({"id": ID, "market": {"horizon": 0.25}, "ou": {"kappa": 4.0}})
    res = run_evaluation(cfg, {"as": "as", "glft": "glft"}, episodes=50, seed=0)
    assert "Brownian mid" in res.metadata["baseline_model"]
    assert res.metrics["as"]["objective_exact"] is None
    assert res.metrics["as"]["objective_model"] is not None
    m = evaluate_agents(cfg, {"as": "as"}, episodes=20, seed=1)
    assert np.isfinite(m["as"]["objective_mean"])

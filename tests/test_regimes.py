"""mmgym/RegimeMarketMaking-v0: the intensity market with Markov regimes. The kernel against the
scalar reference with the regime's parameters and an independently computed transition matrix;
the config's refusals; the observation."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mmgym  # noqa: F401
from mmgym.config import ConfigError, load_env_config
from mmgym.envs.market import BatchMarket

from .reference_intensity import RefRng, ref_reset, ref_step

ID = "mmgym/RegimeMarketMaking-v0"


def uniformized_transition(rates, dt, terms=200):
    """P = expm(Q dt) by uniformization (Jensen 1953): with lam >= max_r |Q_rr| and
    B = I + Q / lam, P = sum_n e^{-lam dt} (lam dt)^n / n! B^n; written without scipy's expm."""
    q = np.array(rates, dtype=float)
    np.fill_diagonal(q, 0.0)
    np.fill_diagonal(q, -q.sum(axis=1))
    lam = max(1e-12, float(np.max(-np.diag(q))))
    b = np.eye(len(q)) + q / lam
    term = np.eye(len(q))
    weight = math.exp(-lam * dt)
    p = weight * term
    for n in range(1, terms):
        term = term @ b
        weight *= lam * dt / n
        p += weight * term
    return p


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), noise=st.sampled_from(["gaussian", "binomial"]),
       hedge=st.booleans(), mode=st.sampled_from(["as_hybrid", "offsets"]),
       n_reg=st.integers(1, 3), jumps=st.booleans(), observed=st.booleans(),
       rule=st.sampled_from(["linear", "poisson"]))
def test_kernel_matches_reference_with_regimes(seed, noise, hedge, mode, n_reg, jumps, observed, rule):
    """25 random configs x 3 envs x 90 steps (autoresets included): rewards, observations, mids,
    inventories and regimes match the scalar reference stepped with the current regime's sigma, A,
    k, xi, followed by one uniform per step choosing the next regime from P (uniformization)."""
    rng = np.random.default_rng(seed)
    sig = rng.uniform(0.5, 6.0, n_reg).round(3).tolist()
    a = rng.uniform(20.0, 200.0, n_reg).round(2).tolist()
    k = rng.uniform(0.5, 3.0, n_reg).round(3).tolist()
    xi = rng.uniform(0.0, 0.5, n_reg).round(3).tolist() if jumps else None
    rates = rng.uniform(0.0, 30.0, (n_reg, n_reg)).round(2).tolist()
    cfg = load_env_config({"id": ID, "market": {"horizon": 0.2, "mid_noise": noise, "fill_rule": rule},
                           "action": {"hedge": hedge, "mode": mode}, "impact": {"eta": 0.05, "nu": 0.01},
                           "regimes": {"sigma": sig, "A": a, "k": k, "adverse_jump": xi, "rates": rates,
                                       "initial": n_reg - 1, "observed": observed}})
    p = uniformized_transition(rates, cfg.market.dt)
    cum = np.cumsum(p, axis=1)
    market = BatchMarket(cfg, 3)
    market.seed_rows([seed + i for i in range(3)])
    refs = [ref_reset(cfg, RefRng(int(market.rng[i, 0]), int(market.rng[i, 1]))) for i in range(3)]
    regime = [n_reg - 1] * 3
    obs = market.reset()
    assert obs.shape == (3, 6 + (n_reg if observed else 0))
    seen = set()
    for _ in range(90):
        actions = rng.uniform(-1.2, 1.2, size=(3, market.action_dim))
        b = market.step(actions)
        for i in range(3):
            r = regime[i]
            dyn = {"sigma": sig[r], "A": a[r], "k": k[r], "xi": 0.0 if xi is None else xi[r]}
            out = ref_step(cfg, refs[i], actions[i].tolist(), dynamics=dyn)
            u = refs[i].rng.uniform()
            nxt = int(np.searchsorted(cum[r], u, side="right"))
            regime[i] = n_reg - 1 if out["done"] else min(nxt, n_reg - 1)
            seen.add((r, nxt))
            assert b.done[i] == out["done"]
            assert b.reward[i] == pytest.approx(out["reward"], rel=1e-9, abs=1e-9)
            np.testing.assert_allclose(b.obs[i, :6], out["obs"], rtol=1e-5, atol=1e-6)
            assert market.mid[i, 0] == pytest.approx(refs[i].mid, rel=1e-12)
            assert market.inventory[i, 0] == refs[i].q
            assert market.field("regime")[i] == regime[i]
            if observed:
                np.testing.assert_array_equal(b.obs[i, 6:], np.eye(n_reg)[regime[i]])
    if n_reg > 1:
        assert any(r != j for r, j in seen)  # the chain moved


def test_transition_matrix_is_expm_of_the_generator():
    """pack's P (scipy expm) equals uniformization, rows sum to one, P -> I as dt -> 0."""
    cfg = load_env_config({"id": ID, "regimes": {"sigma": [1, 2, 3], "A": [100, 80, 60], "k": [1.5, 1.2, 1.0],
                                                 "rates": [[0, 2, 1], [5, 0, 3], [0.5, 4, 0]]}})
    p = cfg.regimes.transition(cfg.market.dt)
    np.testing.assert_allclose(p, uniformized_transition(cfg.regimes.rates, cfg.market.dt), atol=1e-14)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-15)
    np.testing.assert_allclose(cfg.regimes.transition(1e-9), np.eye(3), atol=1e-8)


@pytest.mark.parametrize("regimes, message", [
    ({"rates": [[0, -1], [1, 0]]}, "rates[0][1] = -1 is negative"),
    ({"A": [1.0]}, "A has 1 entries, but regimes.sigma has 2"),
    ({"k": [1.0, 0.0]}, "k[1] = 0 must be > 0"),
    ({"sigma": [1.0, -2.0]}, "sigma[1] = -2 must be >= 0"),
    ({"rates": [[0, 1], [1]]}, "rates[1] has 1 entries, expected R = 2"),
    ({"initial": 3}, "initial = 3 is not a regime"),
    ({"sigma": [1] * 9, "A": [1] * 9, "k": [1] * 9, "rates": [[0] * 9] * 9}, "1 to 8 regimes"),
])
def test_config_refusals_are_one_line(regimes, message):
    with pytest.raises(ConfigError) as err:
        load_env_config({"id": ID, "regimes": regimes})
    assert message in str(err.value) and "\n" not in str(err.value)
    assert "regimes" in str(err.value)


def test_observation_spaces_and_hidden_obs():
    """observed: 6 + R features (one-hot); hidden: the intensity market's six."""
    seen = gym.make(ID)
    hidden = gym.make(ID, regimes={"observed": False})
    assert seen.observation_space.shape == (8,)
    assert hidden.observation_space.shape == (6,)
    o1, _ = seen.reset(seed=3)
    o2, _ = hidden.reset(seed=3)
    np.testing.assert_array_equal(o1[:6], o2)
    np.testing.assert_array_equal(o1[6:], [1.0, 0.0])
    for _ in range(50):
        a = seen.action_space.sample()
        o1, *_ = seen.step(a)
        o2, *_ = hidden.step(a)
        np.testing.assert_array_equal(o1[:6], o2)  # the same market, draw for draw
        assert seen.observation_space.contains(o1) and hidden.observation_space.contains(o2)

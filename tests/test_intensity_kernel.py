"""The batched numba kernel against the plain-Python reference, and the market's statistics."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats

from mmgym.config import load_env_config
from mmgym.envs.market import BatchMarket as IntensityMarket
from mmgym.sim import ledger as K

from .reference_intensity import RefRng, ref_reset, ref_step

configs = st.fixed_dictionaries(
    {
        "market": st.fixed_dictionaries(
            {
                "sigma": st.sampled_from([0.0, 0.5, 2.0]),
                "A": st.floats(5.0, 200.0),
                "k": st.floats(0.3, 3.0),
                "A_ask": st.one_of(st.none(), st.floats(5.0, 200.0)),
                "k_bid": st.one_of(st.none(), st.floats(0.3, 3.0)),
                "dt": st.sampled_from([0.005, 0.01, 0.1]),
                "horizon": st.just(0.2),
                "fill_rule": st.sampled_from(["linear", "poisson"]),
                "max_inventory": st.integers(1, 6),
                "tick_size": st.sampled_from([0.0, 0.01, 0.25]),
                "mid_noise": st.sampled_from(["gaussian", "binomial"]),
                "q0": st.integers(-1, 1),
            }
        ),
        "impact": st.fixed_dictionaries(
            {"half_spread": st.floats(0, 0.5), "eta": st.floats(0, 0.2), "nu": st.floats(0, 0.1)}
        ),
        "reward": st.fixed_dictionaries(
            {
                "inventory_penalty": st.floats(0, 1),
                "terminal_penalty": st.floats(0, 1),
                "maker_fee": st.floats(-0.05, 0.05),
                "taker_fee": st.floats(0, 0.05),
                "objective": st.sampled_from(["risk_neutral", "cara"]),
                "dampening": st.floats(0, 1),
            }
        ),
        "action": st.fixed_dictionaries(
            {
                "mode": st.sampled_from(["as_hybrid", "offsets"]),
                "hedge": st.booleans(),
                "hedge_max_lots": st.integers(1, 4),
            }
        ),
    }
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cfg_dict=configs, seed=st.integers(0, 2**32 - 1), raw=st.booleans())
def test_kernel_matches_python_reference(cfg_dict, seed, raw):
    """60 random configs x 4 envs x 60 steps (several episodes each): every output matches."""
    _check_against_reference(load_env_config(cfg_dict), seed, raw)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cfg_dict=configs, seed=st.integers(0, 2**32 - 1), raw=st.booleans(),
       lo=st.floats(-1.0, 0.5), span=st.floats(0.1, 3.0))
def test_kernel_matches_python_reference_with_extra_spread(cfg_dict, seed, raw, lo, span):
    """``action.spread`` (as_hybrid's third column, an extra half-spread on both sides): 20 random
    configs match the reference; the raw-depth mode (the baselines') has no such column."""
    act = {**cfg_dict["action"], "mode": "as_hybrid", "spread": True, "spread_min": lo,
           "spread_max": lo + span}
    cfg = load_env_config({**cfg_dict, "action": act})
    market = IntensityMarket(cfg, 1, raw_depths=raw)
    assert market.action_dim == 2 + (0 if raw else 1) + int(act["hedge"])
    _check_against_reference(cfg, seed, raw)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cfg_dict=configs, seed=st.integers(0, 2**32 - 1), raw=st.booleans(),
       jump=st.floats(0.01, 1.5))
def test_kernel_matches_python_reference_with_jump_on_fill(cfg_dict, seed, raw, jump):
    """Adverse selection (``market.adverse_jump`` = xi > 0, GLFT 2013 sec. 5): 40 random configs,
    every output (mid, cash, rewards, the realised-volatility and mid-return features that see the
    jumps) matches the reference step by step."""
    cfg_dict = {**cfg_dict, "market": {**cfg_dict["market"], "adverse_jump": jump}}
    _check_against_reference(load_env_config(cfg_dict), seed, raw)


def _check_against_reference(cfg, seed, raw):
    n_env, n_steps = 4, 60
    market = IntensityMarket(cfg, n_env, raw_depths=raw)
    market.seed_rows([seed + i for i in range(n_env)])
    refs = [ref_reset(cfg, RefRng(int(market.rng[i, 0]), int(market.rng[i, 1]))) for i in range(n_env)]
    market.reset()
    rng = np.random.default_rng(seed)
    dim = market.action_dim
    for _ in range(n_steps):
        if raw:
            actions = rng.uniform(-1.0, 3.0, size=(n_env, dim))
            if cfg.action.hedge:
                actions[:, -1] = rng.integers(-3, 4, size=n_env)
        else:
            actions = rng.uniform(-1.3, 1.3, size=(n_env, dim))  # outside [-1, 1] is clipped
        b = market.step(actions)
        for i in range(n_env):
            out = ref_step(cfg, refs[i], actions[i].tolist(), raw=raw)
            assert b.done[i] == out["done"]
            assert b.reward[i] == pytest.approx(out["reward"], rel=1e-9, abs=1e-9)
            for j, name in enumerate(K.TERM_NAMES):
                assert b.terms[i, j] == pytest.approx(out["terms"][name], rel=1e-9, abs=1e-9), name
            assert b.aux[i, K.AUX_HEDGE] == out["hedge"]
            np.testing.assert_allclose(b.obs[i], out["obs"], rtol=1e-5, atol=1e-6)
            if out["done"]:
                np.testing.assert_allclose(b.final_obs[i], out["final_obs"], rtol=1e-5, atol=1e-6)
            assert market.inventory[i] == refs[i].q
            assert market.mid[i] == pytest.approx(refs[i].mid, rel=1e-12)
            assert market.cash[i] == pytest.approx(refs[i].cash, rel=1e-9, abs=1e-9)


def _run(cfg, depths, n_env=4000, seed=0):
    market = IntensityMarket(cfg, n_env, raw_depths=True)
    market.seed_rows([seed + i for i in range(n_env)])
    market.reset()
    actions = np.tile(np.asarray(depths, dtype=float), (n_env, 1))
    fills = np.zeros(2)
    steps = 0
    for _ in range(cfg.market.n_steps):
        b = market.step(actions)
        fills += b.aux[:, [K.AUX_FILL_BID, K.AUX_FILL_ASK]].sum(axis=0)
        steps += n_env
    return fills, steps


@pytest.mark.parametrize("rule", ["linear", "poisson"])
def test_fill_frequency_matches_probability(rule):
    """Observed fill rates equal p(delta) within 4 binomial standard errors, per side."""
    cfg = load_env_config({"market": {"fill_rule": rule, "A_ask": 90.0, "k_bid": 2.0,
                                      "max_inventory": 10**6, "horizon": 0.25}})
    depths = (0.8, 0.3)
    fills, n = _run(cfg, depths)
    for side, (a, k, d) in enumerate([(140.0, 2.0, 0.8), (90.0, 1.5, 0.3)]):
        lam_dt = a * math.exp(-k * d) * cfg.market.dt
        p = min(1.0, lam_dt) if rule == "linear" else 1 - math.exp(-lam_dt)
        se = math.sqrt(p * (1 - p) / n)
        assert abs(fills[side] / n - p) < 4 * se, (side, fills[side] / n, p)


def test_linear_rule_saturates_at_one():
    cfg = load_env_config({"market": {"max_inventory": 10**6, "horizon": 0.05}})
    fills, n = _run(cfg, (-1.0, -1.0), n_env=100)  # A e^{k} dt > 1
    assert fills[0] == n and fills[1] == n


@pytest.mark.parametrize("noise", ["gaussian", "binomial"])
def test_mid_increments(noise):
    """Mid changes are sigma sqrt(dt) Z: normal (KS test) or exactly +-sigma sqrt(dt) w.p. 1/2."""
    cfg = load_env_config({"market": {"mid_noise": noise, "horizon": 0.5}})
    market = IntensityMarket(cfg, 2000, raw_depths=True)
    market.seed_rows(list(range(2000)))
    market.reset()
    acts = np.full((2000, 2), 1.0)
    incs = []
    for _ in range(50):
        before = market.mid.copy()
        market.step(acts)
        incs.append((market.mid - before) / (2.0 * math.sqrt(0.005)))
    z = np.concatenate(incs)
    if noise == "binomial":
        assert set(np.round(np.unique(z), 12)) == {-1.0, 1.0}
        assert abs(z.mean()) < 4 / math.sqrt(z.size)
    else:
        assert stats.kstest(z, "norm").pvalue > 1e-4
        assert abs(z.std() - 1) < 4 * math.sqrt(0.5 / z.size)


def test_inventory_never_exceeds_bound():
    """Aggressive crossing quotes plus random market orders: |q| <= Q on every step."""
    cfg = load_env_config({"market": {"max_inventory": 3}, "action": {"hedge": True, "hedge_max_lots": 5}})
    market = IntensityMarket(cfg, 500, raw_depths=True)
    market.seed_rows(list(range(500)))
    market.reset()
    rng = np.random.default_rng(1)
    for _ in range(400):
        a = np.column_stack([rng.uniform(-3, 1, 500), rng.uniform(-3, 1, 500), rng.integers(-5, 6, 500)])
        b = market.step(a)
        assert np.abs(market.inventory).max() <= 3
        assert np.all(np.abs(b.final_stats[b.done, K.ST_FINAL_INV]) <= 3)


def test_side_at_bound_does_not_quote():
    cfg = load_env_config({"market": {"max_inventory": 2, "q0": 2}})
    market = IntensityMarket(cfg, 10, raw_depths=True)
    market.reset()
    b = market.step(np.full((10, 2), 0.5))
    at_bound = np.flatnonzero(b.aux[:, K.AUX_FILL_ASK] == 0)  # rows that still hold q = 2
    assert np.isnan(b.aux[at_bound, K.AUX_BID_PX]).all()
    assert np.isfinite(b.aux[:, K.AUX_ASK_PX]).all()


def test_accounting_reward_sums_to_pnl_minus_penalties():
    """Summed reward = final marked-to-market PnL - penalties - dampening, to 1e-9, per episode."""
    cfg = load_env_config({
        "market": {"max_inventory": 8},
        "impact": {"half_spread": 0.1, "eta": 0.05, "nu": 0.01},
        "reward": {"inventory_penalty": 0.3, "terminal_penalty": 0.5, "maker_fee": -0.01,
                   "taker_fee": 0.02, "dampening": 0.4},
        "action": {"hedge": True},
    })
    n = 64
    market = IntensityMarket(cfg, n)
    market.seed_rows(list(range(n)))
    market.reset()
    rng = np.random.default_rng(0)
    total = np.zeros(n)
    pens = np.zeros(n)
    for _ in range(cfg.market.n_steps):
        b = market.step(rng.uniform(-1, 1, size=(n, 3)))
        total += b.reward
        t = b.terms
        pens += t[:, K.TERM_INVENTORY] + t[:, K.TERM_TERMINAL] + t[:, K.TERM_DAMPENING]
        np.testing.assert_allclose(t.sum(axis=1), b.reward, atol=1e-12)
    assert b.done.all()
    pnl = b.final_stats[:, K.ST_PNL]
    np.testing.assert_allclose(total, pnl + pens, atol=1e-9)
    np.testing.assert_allclose(b.final_stats[:, K.ST_RETURN], total, atol=1e-9)
    assert np.all(b.final_stats[:, K.ST_IMPACT] > 0)


def test_cara_terminal_utility():
    """With objective cara, the summed reward is U(W_T - W_0) minus penalties."""
    cfg = load_env_config({"reward": {"objective": "cara", "cara_gamma": 0.05, "inventory_penalty": 0.1}})
    n = 32
    market = IntensityMarket(cfg, n)
    market.seed_rows(list(range(n)))
    market.reset()
    total = np.zeros(n)
    pen = np.zeros(n)
    for _ in range(cfg.market.n_steps):
        b = market.step(np.zeros((n, 2)))
        total += b.reward
        pen += b.terms[:, K.TERM_INVENTORY]
    w = b.final_stats[:, K.ST_PNL]
    np.testing.assert_allclose(total, (1 - np.exp(-0.05 * w)) / 0.05 + pen, atol=1e-9)


def test_rng_streams_are_uniform_and_distinct():
    """Rows seeded s, s+1, ... draw different numbers; uniforms pass a KS test."""
    cfg = load_env_config({"market": {"sigma": 0.0, "max_inventory": 10**6}})
    market = IntensityMarket(cfg, 3, raw_depths=True)
    market.seed_rows([7, 8, 9])
    states = market.rng.copy()
    assert len({tuple(r) for r in states.tolist()}) == 3
    refs = [RefRng(int(a), int(b)) for a, b in states]
    u = np.array([[r.uniform() for _ in range(20000)] for r in refs])
    assert not np.any(u[0] == u[1])
    assert stats.kstest(u.ravel(), "uniform").pvalue > 1e-4


def test_ziggurat_variates_are_normal_and_exponential():
    """The kernel's ziggurat draws (Marsaglia & Tsang 2000) pass KS tests, tails included."""
    from numba import njit

    from mmgym.sim.rng import zig_exponential, zig_normal

    @njit
    def draw(n, s0, s1):
        z = np.empty(n)
        e = np.empty(n)
        for i in range(n):
            z[i], s0, s1 = zig_normal(s0, s1)
            e[i], s0, s1 = zig_exponential(s0, s1)
        return z, e

    z, e = draw(400_000, np.uint64(12345), np.uint64(67890))
    assert stats.kstest(z, "norm").pvalue > 1e-4
    assert stats.kstest(e, "expon").pvalue > 1e-4
    tail = 2 * stats.norm.sf(3.442619855899)  # beyond the ziggurat's base strip
    assert abs((np.abs(z) > 3.442619855899).mean() - tail) < 4 * np.sqrt(tail / z.size)
    assert abs((e > 7.697117470131487).mean() - np.exp(-7.697117470131487)) < 4 * np.sqrt(np.exp(-7.7) / e.size)


def test_parallel_kernel_equals_serial():
    cfg = load_env_config({"action": {"hedge": True}, "impact": {"eta": 0.1, "nu": 0.01}})
    a, b = IntensityMarket(cfg, 300), IntensityMarket(cfg, 300, parallel=True)
    for m in (a, b):
        m.seed_rows(list(range(300)))
        m.reset()
    rng = np.random.default_rng(0)
    for _ in range(250):
        acts = rng.uniform(-1, 1, size=(300, 3))
        ra, rb = a.step(acts), b.step(acts)
        np.testing.assert_array_equal(ra.reward, rb.reward)
        np.testing.assert_array_equal(ra.obs, rb.obs)
    np.testing.assert_array_equal(a.cash, b.cash)


def test_vectorised_exp_log_match_libm():
    """mmgym.sim.vecmath's exp and log agree with libm to a few ulp over the kernel's ranges."""
    from mmgym.sim.vecmath import exp_into, log_into

    rng = np.random.default_rng(0)
    x = np.concatenate([rng.uniform(-700, 700, 20000), rng.uniform(-10, 10, 20000), [0.0, -0.0]])
    out = np.empty_like(x)
    exp_into(x, out, np.empty(x.size, dtype=np.int64))
    np.testing.assert_allclose(out, np.exp(x), rtol=5e-16, atol=0)
    y = np.concatenate([np.exp(rng.uniform(-700, 700, 20000)), rng.uniform(0.5, 3.0, 20000),
                        [1.0, 2.0, np.sqrt(2.0), np.sqrt(0.5), 1.0 + 1e-12]])
    out = np.empty_like(y)
    log_into(y, out, np.empty(y.size, dtype=np.int64))
    np.testing.assert_allclose(out, np.log(y), rtol=5e-16, atol=5e-16)


def test_extra_spread_action_reproduces_as_tuned():
    """as_hybrid with ``action.spread`` and a constant action (gamma, skew 0, c) quotes exactly the
    depths of ``as_tuned``'s rule AS(gamma) + c (the glass box can express the strongest static
    baseline), at every step and inventory an episode visits."""
    from mmgym.baselines.tuned import TunedAS

    cfg = load_env_config({"market": {"horizon": 0.2, "A": 140.0, "k": 1.5, "sigma": 2.0},
                           "action": {"spread": True, "spread_min": -0.5, "spread_max": 1.5}})
    gamma, c = 0.07, 0.4
    a = cfg.action
    a0 = 2.0 * (math.log(gamma) - math.log(a.gamma_min)) / (math.log(a.gamma_max) - math.log(a.gamma_min)) - 1.0
    a2 = 2.0 * (c - a.spread_min) / (a.spread_max - a.spread_min) - 1.0
    market = IntensityMarket(cfg, 8)
    market.seed_rows(list(range(8)))
    market.reset()
    pol = TunedAS(cfg, gamma, c)
    col_b, col_a = market.aux_names.index("depth_bid"), market.aux_names.index("depth_ask")
    for _ in range(cfg.market.n_steps - 1):
        step = market.track.step.copy()
        q = market.inventory[:, 0].astype(np.float64)
        b = market.step(np.tile([a0, 0.0, a2], (8, 1)))
        want_b, want_a = pol._depths(step, q)
        np.testing.assert_allclose(b.aux[:, col_b], want_b, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(b.aux[:, col_a], want_a, rtol=1e-9, atol=1e-9)

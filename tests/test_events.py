"""mmgym/EventMarketMaking-v0: the intensity market with scheduled event windows. The kernel against
the scalar reference with step t's jump on fill and the event jump; the config's refusals; the
observation; the exact DP (brute force, Monte Carlo, no events = the intensity market)."""

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

ID = "mmgym/EventMarketMaking-v0"


def ref_schedule(times, window, dt, n_steps):
    """Written out: event steps floor(tau / dt); step t is in a window iff e - W <= t < e."""
    steps = sorted(int(math.floor(x / dt + 1e-9)) for x in times)
    w = int(round(window / dt))
    in_window = [any(e - w <= t < e for e in steps) for t in range(n_steps)]
    is_event = [t in steps for t in range(n_steps)]
    to_next = [min([(e - t) / n_steps for e in steps if e >= t], default=1.0) for t in range(n_steps + 1)]
    return in_window, is_event, to_next


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), noise=st.sampled_from(["gaussian", "binomial"]),
       hedge=st.booleans(), mode=st.sampled_from(["as_hybrid", "offsets"]),
       n_ev=st.integers(0, 4), rule=st.sampled_from(["linear", "poisson"]))
def test_kernel_matches_reference_with_events(seed, noise, hedge, mode, n_ev, rule):
    """20 random configs x 3 envs x 90 steps (autoresets included): rewards, observations, mids and
    inventories match the scalar reference stepped with step t's xi and, on event steps, one more
    normal after the mid's variate scaled by jump_std."""
    rng = np.random.default_rng(seed)
    horizon, dt = 0.2, 0.005
    n = 40
    times = sorted(rng.choice(n, n_ev, replace=False) * dt + rng.uniform(0, dt * 0.9, n_ev))
    xi0, xi_ev = float(rng.uniform(0, 0.1)), float(rng.uniform(0, 0.5))
    window, sd = float(rng.integers(0, 8) * dt), float(rng.uniform(0, 2.0))
    cfg = load_env_config({"id": ID, "market": {"horizon": horizon, "dt": dt, "mid_noise": noise,
                                                "fill_rule": rule, "adverse_jump": xi0},
                           "action": {"hedge": hedge, "mode": mode}, "impact": {"eta": 0.05, "nu": 0.01},
                           "events": {"times": [float(x) for x in times], "window": window,
                                      "jump_std": sd, "adverse_jump": xi_ev}})
    in_window, is_event, to_next = ref_schedule(times, window, dt, n)
    m = cfg.market
    a, _, k, _ = m.side_params()
    market = BatchMarket(cfg, 3)
    market.seed_rows([seed + i for i in range(3)])
    refs = [ref_reset(cfg, RefRng(int(market.rng[i, 0]), int(market.rng[i, 1]))) for i in range(3)]
    obs = market.reset()
    assert obs.shape == (3, 7)
    np.testing.assert_allclose(obs[:, 6], to_next[0], rtol=1e-6)
    for _ in range(90):
        actions = rng.uniform(-1.2, 1.2, size=(3, market.action_dim))
        b = market.step(actions)
        for i in range(3):
            ref = refs[i]
            t = ref.step

            def mid_move(s, z, ref=ref, t=t):
                ds = m.sigma * math.sqrt(dt) * z
                return ds + sd * ref.rng.normal() if is_event[t] else ds

            dyn = {"sigma": m.sigma, "A": a, "k": k, "xi": xi_ev if in_window[t] else xi0}
            out = ref_step(cfg, ref, actions[i].tolist(), mid_move=mid_move, dynamics=dyn)
            assert b.done[i] == out["done"]
            assert b.reward[i] == pytest.approx(out["reward"], rel=1e-9, abs=1e-9)
            np.testing.assert_allclose(b.obs[i, :6], out["obs"], rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(b.obs[i, 6], to_next[ref.step], rtol=1e-6)
            assert market.mid[i, 0] == pytest.approx(ref.mid, rel=1e-12)
            assert market.inventory[i, 0] == ref.q


def test_no_events_is_the_intensity_market():
    """Without events the kernel's rewards, observations and mids equal the intensity market's bit for
    bit (same draws), whatever events.window and events.adverse_jump are."""
    kw = dict(market=dict(horizon=0.1, adverse_jump=0.05), reward=dict(dampening=0.1))
    ev = load_env_config({"id": ID, **kw, "events": {"times": [], "window": 0.05, "adverse_jump": 0.3}})
    base = load_env_config(kw)
    rng = np.random.default_rng(3)
    m1, m0 = BatchMarket(ev, 4), BatchMarket(base, 4)
    for mk in (m1, m0):
        mk.seed_rows([11, 12, 13, 14])
    o1, o0 = m1.reset(), m0.reset()
    np.testing.assert_array_equal(o1[:, :6], o0)
    np.testing.assert_array_equal(o1[:, 6], 1.0)
    for _ in range(45):
        act = rng.uniform(-1, 1, (4, 2))
        b1, b0 = m1.step(act), m0.step(act)
        np.testing.assert_array_equal(b1.reward, b0.reward)
        np.testing.assert_array_equal(b1.obs[:, :6], b0.obs)
        np.testing.assert_array_equal(m1.mid, m0.mid)


@pytest.mark.parametrize("events, message", [
    ({"times": [0.3]}, "events.times[0] = 0.3 is not before the horizon 0.2"),
    ({"times": [0.05, 0.051]}, "events.times[1] = 0.051 falls on the step of events.times[0]"),
    ({"times": [-1.0]}, "times[0] = -1 must be >= 0"),
    ({"jump_std": -1.0}, "events.jump_std"),
    ({"window": -0.1}, "events.window"),
    ({"times": [0.001 * j for j in range(33)]}, "at most 32 events"),
])
def test_config_refusals_are_one_line(events, message):
    with pytest.raises(ConfigError) as err:
        load_env_config({"id": ID, "market": {"horizon": 0.2}, "events": events})
    assert message in str(err.value) and "\n" not in str(err.value)


def test_env_checker_and_observation_space():
    from gymnasium.utils.env_checker import check_env

    env = gym.make(ID, market={"horizon": 0.1}, events={"times": [0.02, 0.07]})
    check_env(env.unwrapped, skip_render_check=True)
    assert env.observation_space.shape == (7,)
    obs, _ = env.reset(seed=0)
    assert obs[6] == pytest.approx(4 / 20)

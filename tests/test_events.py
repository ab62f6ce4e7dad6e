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


def ref_window_features(times, window, dt, n_steps):
    """Features 7 and 8 written out: min(e - t, H) / H with H = max(2W, 2) for the first event step
    e >= t (1 when none), and the window flag, for t = 0 .. n_steps."""
    steps = sorted(int(math.floor(x / dt + 1e-9)) for x in times)
    w = int(round(window / dt))
    h = max(2 * w, 2)
    ramp = [min([min(e - t, h) / h for e in steps if e >= t], default=1.0) for t in range(n_steps + 1)]
    flag = [float(any(e - w <= t < e for e in steps)) for t in range(n_steps + 1)]
    return np.array([ramp, flag]).T


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), noise=st.sampled_from(["gaussian", "binomial"]),
       hedge=st.booleans(), mode=st.sampled_from(["as_hybrid", "offsets"]),
       n_ev=st.integers(0, 4), rule=st.sampled_from(["linear", "poisson"]), variance=st.booleans())
def test_kernel_matches_reference_with_events(seed, noise, hedge, mode, n_ev, rule, variance):
    """20 random configs x 3 envs x 90 steps (autoresets included): rewards, observations, mids and
    inventories match the scalar reference stepped with step t's xi and, on event steps, one more
    normal after the mid's variate scaled by jump_std; with ``risk_penalty: variance`` the running
    penalty on an event step is phi q^2 (dt + jump_std^2 / sigma^2)."""
    rng = np.random.default_rng(seed)
    horizon, dt = 0.2, 0.005
    n = 40
    times = sorted(rng.choice(n, n_ev, replace=False) * dt + rng.uniform(0, dt * 0.9, n_ev))
    xi0, xi_ev = float(rng.uniform(0, 0.1)), float(rng.uniform(0, 0.5))
    window, sd = float(rng.integers(0, 8) * dt), float(rng.uniform(0, 2.0))
    cfg = load_env_config({"id": ID, "market": {"horizon": horizon, "dt": dt, "mid_noise": noise,
                                                "fill_rule": rule, "adverse_jump": xi0},
                           "reward": {"inventory_penalty": float(rng.uniform(0.1, 3.0)),
                                      "risk_penalty": "variance" if variance else "time"},
                           "action": {"hedge": hedge, "mode": mode}, "impact": {"eta": 0.05, "nu": 0.01},
                           "events": {"times": [float(x) for x in times], "window": window,
                                      "jump_std": sd, "adverse_jump": xi_ev}})
    in_window, is_event, to_next = ref_schedule(times, window, dt, n)
    feats = ref_window_features(times, window, dt, n)
    m = cfg.market
    a, _, k, _ = m.side_params()
    market = BatchMarket(cfg, 3)
    market.seed_rows([seed + i for i in range(3)])
    refs = [ref_reset(cfg, RefRng(int(market.rng[i, 0]), int(market.rng[i, 1]))) for i in range(3)]
    obs = market.reset()
    assert obs.shape == (3, 9)
    np.testing.assert_allclose(obs[:, 6], to_next[0], rtol=1e-6)
    np.testing.assert_allclose(obs[:, 7:], np.tile(feats[0], (3, 1)), rtol=1e-6)
    for _ in range(90):
        actions = rng.uniform(-1.2, 1.2, size=(3, market.action_dim))
        b = market.step(actions)
        for i in range(3):
            ref = refs[i]
            t = ref.step

            def mid_move(s, z, ref=ref, t=t):
                ds = m.sigma * math.sqrt(dt) * z
                return ds + sd * ref.rng.normal() if is_event[t] else ds

            pen_dt = dt + (sd * sd / m.sigma ** 2 if variance and is_event[t] else 0.0)
            dyn = {"sigma": m.sigma, "A": a, "k": k, "xi": xi_ev if in_window[t] else xi0, "pen_dt": pen_dt}
            out = ref_step(cfg, ref, actions[i].tolist(), mid_move=mid_move, dynamics=dyn)
            assert b.done[i] == out["done"]
            assert b.reward[i] == pytest.approx(out["reward"], rel=1e-9, abs=1e-9)
            np.testing.assert_allclose(b.obs[i, :6], out["obs"], rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(b.obs[i, 6], to_next[ref.step], rtol=1e-6)
            np.testing.assert_allclose(b.obs[i, 7:], feats[ref.step], rtol=1e-6)
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
    assert env.observation_space.shape == (9,)
    obs, _ = env.reset(seed=0)
    assert obs[6] == pytest.approx(4 / 20)
    assert obs[7] == pytest.approx(4 / 20) and obs[8] == 1.0  # 4 steps ahead, window W = 10: H = 20


# ------------------------------------------------------------------------------ the exact DP ---
def _event_env(market=None, reward=None, action=None, impact=None, events=None):
    return load_env_config({"id": ID, "market": market or {}, "reward": reward or {},
                            "action": action or {}, "impact": impact or {}, "events": events or {}})


def brute_force_events(env, depth_grid):
    """Slow oracle over (t, q): V_t(q) = max over a depth grid of the expectation over the four fill
    outcomes of (step reward with step t's xi + V_{t+1}(q')), the schedule from :func:`ref_schedule`,
    written out literally; dampening's E[max(0, q'(X + J + xi (F_a - F_b)))] by quadrature
    (``tests/test_optimal.damped_mean``; gaussian noise: X + J has std sqrt(sigma^2 dt + s^2);
    binomial: the two outcomes of X, then quadrature over J)."""
    from .test_optimal import damped_mean

    m, rw, ev = env.market, env.reward, env.events
    n, q_max = m.n_steps, m.max_inventory
    in_window, is_event, _ = ref_schedule(ev.times, ev.window, m.dt, n)
    binom = m.mid_noise == "binomial"
    sd = m.sigma * math.sqrt(m.dt)
    a, _, k, _ = m.side_params()

    def prob(d):
        lam = a * np.exp(-k * d) * m.dt
        return -np.expm1(-lam) if m.fill_rule == "poisson" else np.minimum(1.0, lam)

    def damp(q1, jump, s):
        if s == 0.0:
            return damped_mean(q1, jump, sd, binom)
        if binom:
            return 0.5 * (damped_mean(q1, jump + sd, s, False) + damped_mean(q1, jump - sd, s, False))
        return damped_mean(q1, jump, math.hypot(sd, s), False)

    db = depth_grid[:, None]
    da = depth_grid[None, :]
    V = np.zeros(2 * q_max + 1)
    for t in range(n - 1, -1, -1):
        last = t == n - 1
        xi = ev.adverse_jump if in_window[t] else m.adverse_jump
        s = ev.jump_std if is_event[t] else 0.0
        # risk_penalty variance: Var_t(dS)/sigma^2 = dt + s^2/sigma^2 on an event step
        pen_dt = m.dt + (s * s / m.sigma ** 2 if rw.risk_penalty == "variance" else 0.0)
        new = np.empty_like(V)
        for j in range(2 * q_max + 1):
            q = j - q_max
            pb = prob(db) if q + 1 <= q_max else 0.0 * db
            pa = prob(da) if q - 1 >= -q_max else 0.0 * da
            total = 0.0
            for fb, fa, p in ((1, 1, pb * pa), (1, 0, pb * (1 - pa)), (0, 1, (1 - pb) * pa),
                              (0, 0, (1 - pb) * (1 - pa))):
                q1 = q + fb - fa
                if abs(q1) > q_max:
                    continue
                reward = (fb * db + fa * da - rw.maker_fee * (fb + fa)
                          - rw.inventory_penalty * q1 * q1 * pen_dt
                          - (rw.terminal_penalty * q1 * q1 if last else 0.0) + q1 * xi * (fa - fb)
                          - (rw.dampening * damp(q1, xi * (fa - fb), s) if rw.dampening else 0.0))
                total = total + p * (reward + V[q1 + q_max])
            new[j] = np.max(total)
        V = new
    return V


DP_CASES = {
    "linear": dict(market=dict(max_inventory=3, dt=0.05, horizon=0.35, A=30.0, k=1.5, sigma=2.0,
                               adverse_jump=0.05),
                   reward=dict(inventory_penalty=2.0, terminal_penalty=0.3),
                   events=dict(times=[0.1, 0.27], window=0.1, adverse_jump=0.4, jump_std=0.8)),
    "poisson_damp": dict(market=dict(max_inventory=2, dt=0.05, horizon=0.3, fill_rule="poisson", A=40.0,
                                     k=1.0, sigma=3.0),
                         reward=dict(inventory_penalty=3.0, terminal_penalty=0.2, dampening=0.5,
                                     maker_fee=0.01),
                         events=dict(times=[0.0, 0.2], window=0.05, adverse_jump=0.3, jump_std=1.0)),
    "binomial_damp": dict(market=dict(max_inventory=2, dt=0.05, horizon=0.3, mid_noise="binomial",
                                      A=40.0, k=1.0, sigma=3.0, adverse_jump=0.1),
                          reward=dict(inventory_penalty=1.0, terminal_penalty=0.2, dampening=0.7),
                          events=dict(times=[0.15], window=0.1, adverse_jump=0.5, jump_std=0.6)),
    "variance": dict(market=dict(max_inventory=3, dt=0.05, horizon=0.35, A=30.0, k=1.5, sigma=2.0,
                                 adverse_jump=0.05),
                     reward=dict(inventory_penalty=2.0, terminal_penalty=0.3, dampening=0.3,
                                 risk_penalty="variance"),
                     events=dict(times=[0.1, 0.27], window=0.1, adverse_jump=0.4, jump_std=1.5)),
}


@pytest.mark.parametrize("case", list(DP_CASES))
def test_event_dp_matches_brute_force(case):
    """The (t, q) DP with step t's xi and event jump against the literal brute force on a 0.005 depth
    grid (plus the linear rule's saturation kink): nothing on the grid beats it and the grid gets
    within 1e-4; the DP's tables are worth exactly its value under policy evaluation."""
    from mmgym.baselines import evaluate_tables, solve_optimal

    env = _event_env(**DP_CASES[case])
    sol = solve_optimal(env)
    assert sol.exact and sol.value.shape == (env.market.n_steps + 1, 2 * env.market.max_inventory + 1)
    grid = np.linspace(-2.0, 4.0, 1201)
    a, _, k, _ = env.market.side_params()
    grid = np.union1d(grid, [math.log(a * env.market.dt) / k])
    oracle = brute_force_events(env, grid)
    assert np.all(oracle <= sol.value[0] + 1e-9)
    assert np.all(sol.value[0] - oracle < 1e-4)
    np.testing.assert_allclose(evaluate_tables(env, sol.delta_b, sol.delta_a), sol.value, atol=1e-10)


def test_no_events_is_the_intensity_market_dp():
    """An events config without events gives the intensity market's DP values and tables bit for
    bit, and the same policy values for a static baseline."""
    from mmgym.baselines import evaluate_tables, make_baseline, solve_optimal

    kw = dict(market=dict(max_inventory=6, horizon=0.5, fill_rule="poisson", sigma=1.5, A=80.0, k=1.2,
                          adverse_jump=0.1),
              reward=dict(inventory_penalty=1.0, terminal_penalty=0.1, dampening=0.2),
              action=dict(hedge=True, hedge_max_lots=2), impact=dict(half_spread=0.02, eta=0.05, nu=0.01))
    ev = _event_env(**kw, events=dict(times=[], window=0.1, adverse_jump=0.5, jump_std=2.0))
    base = load_env_config(kw)
    s1, s0 = solve_optimal(ev), solve_optimal(base)
    for name in ("value", "delta_b", "delta_a", "hedge"):
        np.testing.assert_array_equal(getattr(s1, name), getattr(s0, name))
    pol = make_baseline("as", base)
    np.testing.assert_array_equal(evaluate_tables(ev, *pol.tables()), evaluate_tables(base, *pol.tables()))


MC_CASES = {
    "gaussian_damp": dict(market=dict(max_inventory=5, horizon=0.5, dt=0.01, adverse_jump=0.02),
                          reward=dict(inventory_penalty=1.0, terminal_penalty=0.1, dampening=0.3),
                          events=dict(times=[0.1, 0.3, 0.45], window=0.05, adverse_jump=0.3, jump_std=0.7)),
    "poisson_hedge": dict(market=dict(max_inventory=4, horizon=0.4, dt=0.01, fill_rule="poisson"),
                          reward=dict(inventory_penalty=2.0, terminal_penalty=0.2),
                          action=dict(hedge=True, hedge_max_lots=2), impact=dict(half_spread=0.05, eta=0.05),
                          events=dict(times=[0.2], window=0.1, adverse_jump=0.4, jump_std=1.0)),
    "variance": dict(market=dict(max_inventory=5, horizon=0.4, dt=0.01),
                     reward=dict(inventory_penalty=2.0, terminal_penalty=0.1, risk_penalty="variance"),
                     events=dict(times=[0.15, 0.3], window=0.05, adverse_jump=0.2, jump_std=2.0)),
}


@pytest.mark.parametrize("case", list(MC_CASES))
def test_event_v0_matches_monte_carlo_through_the_kernel(case):
    """The DP's V0 against 20,000 episodes of its policy through the kernel, within 4 standard
    errors; a static baseline's exact value (policy evaluation) too; the optimum beats it."""
    from mmgym.baselines import OptimalPolicy, make_baseline, policy_value
    from mmgym.evaluation import run_policy

    env = _event_env(**MC_CASES[case])
    pol = OptimalPolicy(env)
    assert pol.exact
    batch = run_policy(env, pol, 20000, seed=7, cache=False)
    se = batch.objective.std(ddof=1) / math.sqrt(batch.objective.size)
    assert abs(batch.objective.mean() - pol.v0) < 4 * se, (batch.objective.mean(), pol.v0, se)
    glft = make_baseline("glft", env)
    v_glft = policy_value(env, *glft.tables())
    b2 = run_policy(env, glft, 20000, seed=7, cache=False)
    se2 = b2.objective.std(ddof=1) / math.sqrt(b2.objective.size)
    assert abs(b2.objective.mean() - v_glft) < 4 * se2, (b2.objective.mean(), v_glft, se2)
    assert v_glft < pol.v0


def test_tick_with_event_jump_is_not_exact():
    """A gaussian event jump moves the mid off the tick grid: the DP says it is not exact."""
    from mmgym.baselines import inexact_reason

    env = _event_env(market=dict(tick_size=0.01, mid_noise="binomial", sigma=2.0, dt=0.0025, horizon=0.1),
                     events=dict(times=[0.05], jump_std=0.5, adverse_jump=0.0))
    assert "events.jump_std" in inexact_reason(env)
    assert inexact_reason(_event_env(market=dict(tick_size=0.01, mid_noise="binomial", sigma=2.0, dt=0.0025,
                                                 horizon=0.1),
                                     events=dict(times=[0.05], jump_std=0.0, adverse_jump=0.02))) is None

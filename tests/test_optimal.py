"""The exact DP optimum: against a brute-force oracle, against Monte Carlo through the real kernel,
and against every other baseline."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy import integrate

from mmgym.baselines import (
    BASELINES,
    OptimalPolicy,
    evaluate_tables,
    inexact_reason,
    make_baseline,
    solve_optimal,
)
from mmgym.config import ConfigError, load_config, load_env_config
from mmgym.evaluation import run_evaluation, run_policy


def _env(market=None, reward=None, action=None, impact=None):
    return load_env_config({"market": market or {}, "reward": reward or {}, "action": action or {},
                            "impact": impact or {}})


def damped_mean(q1, jump, sd, binomial):
    """E[max(0, q1 (sd Z + jump))] by brute force: the two outcomes of binomial noise, or numerical
    integration against the normal density over the side of the kink z0 = -jump/sd where it is
    positive."""
    if sd == 0.0 or q1 == 0:
        return max(0.0, q1 * jump)
    if binomial:
        return 0.5 * (max(0.0, q1 * (sd + jump)) + max(0.0, q1 * (-sd + jump)))
    z0 = -jump / sd

    def f(z):
        return q1 * (sd * z + jump) * math.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)

    lo, hi = (z0, math.inf) if q1 > 0 else (-math.inf, z0)
    return integrate.quad(f, lo, hi, epsabs=1e-14, epsrel=1e-13)[0]


def brute_force(env, depth_grid, hedge=False, kinks=True):
    """Slow oracle: V_t(q) = max over a depth grid (and market orders) of the expectation over the
    four fill outcomes of (step reward + V_{t+1}(q')), written out literally; with the jump on fill
    (``market.adverse_jump`` = xi) each outcome's mid move is sd Z + xi (F_a - F_b), revaluing q'."""
    m, r, im = env.market, env.reward, env.impact
    n, q_max = m.n_steps, m.max_inventory
    a_b, a_a, k_b, k_a = m.side_params()
    sq = m.sigma * math.sqrt(m.dt)
    xi = m.adverse_jump
    binom = m.mid_noise == "binomial"
    damp = {(q1, fa - fb): damped_mean(q1, xi * (fa - fb), sq, binom)
            for q1 in range(-q_max, q_max + 1) for fb in (0, 1) for fa in (0, 1)}

    def prob(a, k, d):
        lam = a * np.exp(-k * d) * m.dt
        return -np.expm1(-lam) if m.fill_rule == "poisson" else np.minimum(1.0, lam)

    # the kinks of the linear rule (saturation depths ln(A dt)/k) are where the max may sit
    if kinks:
        depth_grid = np.union1d(depth_grid, [math.log(a_b * m.dt) / k_b, math.log(a_a * m.dt) / k_a])
    db = depth_grid[:, None]
    da = depth_grid[None, :]
    V = np.zeros(2 * q_max + 1)
    for t in range(n - 1, -1, -1):
        last = t == n - 1
        quote = np.empty_like(V)
        for j in range(V.size):
            q = j - q_max
            pb = prob(a_b, k_b, db) if q + 1 <= q_max else 0.0 * db
            pa = prob(a_a, k_a, da) if q - 1 >= -q_max else 0.0 * da
            total = 0.0
            for fb, fa, p in ((1, 1, pb * pa), (1, 0, pb * (1 - pa)), (0, 1, (1 - pb) * pa),
                              (0, 0, (1 - pb) * (1 - pa))):
                q1 = q + fb - fa
                if abs(q1) > q_max:
                    continue  # probability zero there (pb or pa is 0)
                reward = (fb * db + fa * da - r.maker_fee * (fb + fa) - r.inventory_penalty * q1 * q1 * m.dt
                          - (r.terminal_penalty * q1 * q1 if last else 0.0) + q1 * xi * (fa - fb)
                          - r.dampening * damp[q1, fa - fb])
                total = total + p * (reward + V[q1 + q_max])
            quote[j] = np.max(total)
        if hedge:
            new = np.empty_like(V)
            for j in range(V.size):
                q = j - q_max
                best = -np.inf
                for v in range(-env.action.hedge_max_lots, env.action.hedge_max_lots + 1):
                    if abs(q + v) > q_max:
                        continue
                    cost = abs(v) * (im.half_spread + im.eta * abs(v) + r.taker_fee) - im.nu * v * (q + v)
                    best = max(best, quote[q + v + q_max] - cost)
                new[j] = best
            V = new
        else:
            V = quote
    return V


CASES = {
    "linear": dict(market=dict(max_inventory=3, dt=0.05, horizon=0.3, A=30.0, k=1.5),
                   reward=dict(inventory_penalty=2.0, terminal_penalty=0.3)),
    "linear_saturated": dict(market=dict(max_inventory=3, dt=0.05, horizon=0.3, A=140.0, k=1.5),
                             reward=dict(inventory_penalty=8.0, terminal_penalty=0.5, maker_fee=0.02)),
    "poisson_asym": dict(market=dict(max_inventory=3, dt=0.05, horizon=0.3, A_bid=40.0, A_ask=20.0,
                                     k_bid=1.0, k_ask=2.0, fill_rule="poisson"),
                         reward=dict(inventory_penalty=3.0, terminal_penalty=0.2, dampening=0.5)),
    # adverse selection: the jump on fill (GLFT 2013 sec. 5), alone and with every other term
    "linear_jump": dict(market=dict(max_inventory=3, dt=0.05, horizon=0.3, A=30.0, k=1.5,
                                    adverse_jump=0.4),
                        reward=dict(inventory_penalty=2.0, terminal_penalty=0.3)),
    "saturated_jump_fee": dict(market=dict(max_inventory=3, dt=0.05, horizon=0.3, A=140.0, k=1.5,
                                           adverse_jump=1.2),
                               reward=dict(inventory_penalty=8.0, terminal_penalty=0.5, maker_fee=0.02)),
    "poisson_asym_jump_damp": dict(market=dict(max_inventory=3, dt=0.05, horizon=0.3, A_bid=40.0,
                                               A_ask=20.0, k_bid=1.0, k_ask=2.0, fill_rule="poisson",
                                               adverse_jump=0.3),
                                   reward=dict(inventory_penalty=3.0, terminal_penalty=0.2, dampening=0.5)),
    "binomial_jump_damp": dict(market=dict(max_inventory=2, dt=0.05, horizon=0.25, A=12.0, k=2.0,
                                           sigma=1.0, mid_noise="binomial", adverse_jump=0.15),
                               reward=dict(inventory_penalty=1.0, terminal_penalty=0.1, dampening=1.0)),
}


@pytest.mark.parametrize("case", list(CASES))
def test_dp_matches_brute_force(case):
    env = _env(**CASES[case])
    sol = solve_optimal(env)
    grid = np.linspace(-2.0, 4.0, 1201)  # step 0.005
    oracle = brute_force(env, grid)
    v_dp = sol.value[0]
    assert np.all(oracle <= v_dp + 1e-9)  # nothing on the grid beats the DP
    assert np.all(v_dp - oracle < 1e-4)  # and the grid gets arbitrarily close
    # the DP's own tables are worth exactly its value (policy evaluation, no max)
    np.testing.assert_allclose(evaluate_tables(env, sol.delta_b, sol.delta_a), sol.value, atol=1e-10)


@pytest.mark.parametrize("xi", [0.0, 0.3])
def test_dp_tick_grid_is_exact(xi):
    """A mid that stays on the tick grid makes the depths multiples of the tick: exact DP there
    (a jump on fill that is a multiple of the tick keeps it there)."""
    env = _env(market=dict(max_inventory=3, dt=0.04, horizon=0.2, sigma=1.0, mid_noise="binomial",
                           tick_size=0.1, A=50.0, k=2.0, adverse_jump=xi),
               reward=dict(inventory_penalty=2.0, terminal_penalty=0.2))
    sol = solve_optimal(env)
    assert sol.exact
    grid = np.arange(-20, 41) * 0.1
    np.testing.assert_allclose(brute_force(env, grid, kinks=False), sol.value[0], atol=1e-12)
    ticks = sol.delta_b / 0.1
    np.testing.assert_allclose(ticks, np.round(ticks), atol=1e-9)


@pytest.mark.parametrize("xi", [0.0, 0.25])
def test_dp_with_hedge_matches_brute_force(xi):
    env = _env(market=dict(max_inventory=4, dt=0.05, horizon=0.25, A=30.0, k=1.5, adverse_jump=xi),
               reward=dict(inventory_penalty=20.0, terminal_penalty=1.0, taker_fee=0.01),
               action=dict(hedge=True, hedge_max_lots=2), impact=dict(half_spread=0.05, eta=0.02, nu=0.01))
    sol = solve_optimal(env)
    assert np.any(sol.hedge != 0)
    oracle = brute_force(env, np.linspace(-2.0, 4.0, 1201), hedge=True)
    assert np.all(oracle <= sol.value[0] + 1e-9)
    assert np.all(sol.value[0] - oracle < 1e-4)


MC_CASES = {
    "cjp_linear": dict(market=dict(max_inventory=25), reward=dict(inventory_penalty=0.2, terminal_penalty=1e-4)),
    "poisson_damp_fee": dict(market=dict(max_inventory=10, fill_rule="poisson", sigma=1.0, q0=3),
                             reward=dict(inventory_penalty=1.0, terminal_penalty=0.05, dampening=0.3,
                                         maker_fee=0.01)),
    "hedge_impact": dict(market=dict(max_inventory=8, mid_noise="binomial", q0=-2),
                         reward=dict(inventory_penalty=3.0, terminal_penalty=0.5, taker_fee=0.01),
                         action=dict(hedge=True, hedge_max_lots=3),
                         impact=dict(half_spread=0.05, eta=0.05, nu=0.02)),
}


#: adverse selection (market.adverse_jump): 20,000 episodes each (short horizons keep them cheap)
MC_JUMP_CASES = {
    "jump_linear": dict(market=dict(max_inventory=10, horizon=0.25, adverse_jump=0.3, q0=2),
                        reward=dict(inventory_penalty=0.5, terminal_penalty=0.05)),
    "jump_poisson_damp_fee": dict(market=dict(max_inventory=6, horizon=0.25, fill_rule="poisson",
                                              sigma=1.0, A_bid=100.0, k_ask=2.0, adverse_jump=0.5),
                                  reward=dict(inventory_penalty=1.0, terminal_penalty=0.1,
                                              dampening=0.5, maker_fee=0.01)),
    "jump_binomial_tick_hedge": dict(market=dict(max_inventory=6, horizon=0.25, mid_noise="binomial",
                                                 sigma=2.0, dt=0.0025, tick_size=0.1, adverse_jump=0.2,
                                                 q0=-1),
                                     reward=dict(inventory_penalty=3.0, terminal_penalty=0.5,
                                                 dampening=0.3, taker_fee=0.01),
                                     action=dict(hedge=True, hedge_max_lots=2),
                                     impact=dict(half_spread=0.05, eta=0.05, nu=0.1)),
}


@pytest.mark.parametrize("case", list(MC_JUMP_CASES))
def test_v0_with_jump_on_fill_matches_monte_carlo(case):
    """The DP's V0 with xi > 0 against 20,000 episodes of its own policy through the kernel (within 4
    standard errors); the kernel's jumps are real (the mid's mean move after a lone bid fill is
    -xi within 4 SE) and the DP's exact labelling holds (a tick-aligned mid and jump: exact)."""
    env = _env(**MC_JUMP_CASES[case])
    pol = OptimalPolicy(env)
    assert pol.exact
    batch = run_policy(env, pol, 20000, seed=3, cache=False)
    se = batch.objective.std(ddof=1) / math.sqrt(batch.objective.size)
    assert abs(batch.objective.mean() - pol.v0) < 4 * se, (batch.objective.mean(), pol.v0, se)
    # ignoring the jump is worth less, exactly (policy evaluation of the xi = 0 optimum here)
    blind = solve_optimal(_env(**{**MC_JUMP_CASES[case],
                                  "market": {**MC_JUMP_CASES[case]["market"], "adverse_jump": 0.0}}))
    j0 = env.market.q0 + env.market.max_inventory
    v_blind = evaluate_tables(env, blind.delta_b, blind.delta_a, blind.hedge)[0, j0]
    assert v_blind < pol.v0 - 1e-6


@pytest.mark.parametrize("case", list(MC_CASES))
def test_v0_matches_monte_carlo_through_the_kernel(case):
    env = _env(**MC_CASES[case])
    pol = OptimalPolicy(env)
    batch = run_policy(env, pol, 4000, seed=11, cache=False)
    se = batch.objective.std(ddof=1) / math.sqrt(batch.objective.size)
    assert abs(batch.objective.mean() - pol.v0) < 4 * se, (batch.objective.mean(), pol.v0, se)
    if env.action.hedge:
        assert batch.hedge_lots.mean() > 0


TOL = 0.1  # objective units (~0.15 % of V0); cjp and glft sit within 0.1 of the optimum here


def test_optimal_beats_every_baseline():
    """Paired-difference CIs of (agent - optimal) lie below +TOL for every agent, and the exact
    expectation of every baseline's objective is at most V0."""
    cfg = load_config("configs/cjp.yaml", ["market.max_inventory=12"])
    # boundary needs the hedge action (below); glft_drift needs a drift alpha (tests/test_alpha.py);
    # the begv family quotes several assets (tests/test_portfolio*.py); book_model is calibrated
    # on the order book (tests/test_calibrate.py)
    names = [n for n in BASELINES
             if n not in ("boundary", "glft_drift", "book_model") and not n.startswith("begv")]
    res = run_evaluation(cfg.env, {n: n for n in names}, episodes=3000, seed=5,
                         baselines_config=cfg.baselines)
    v0 = res.metadata["optimal_v0"]
    for name, m in res.metrics.items():
        assert m["objective_exact"] <= v0 + 1e-9, name  # exact expectations
        if name != "optimal":
            assert m["objective_diff_ci95"][1] < TOL, (name, m["objective_diff_ci95"])  # agent - optimal
    # boundary needs the hedge action: compare on that action set
    cfg = load_config("configs/cjp.yaml", ["market.max_inventory=12", "action.hedge=true",
                                           "impact.half_spread=0.02", "impact.eta=0.01"])
    res = run_evaluation(cfg.env, {"optimal": "optimal", "boundary": "boundary", "as": "as"},
                         episodes=3000, seed=5, baselines_config=cfg.baselines)
    for name, m in res.metrics.items():
        assert m["objective_exact"] <= res.metadata["optimal_v0"] + 1e-9
        assert m["objective_diff_ci95"][1] < TOL


def test_dp_refusals_and_tick_warning():
    with pytest.raises(ConfigError, match="risk_neutral"):
        make_baseline("optimal", _env(reward=dict(objective="cara")))
    env = _env(market=dict(tick_size=0.01, max_inventory=5))  # gaussian mid leaves the grid
    with pytest.warns(UserWarning, match="not exact"):
        sol = solve_optimal(env)
    assert not sol.exact
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert solve_optimal(_env(market=dict(max_inventory=5))).exact
    # a tick-aligned binomial mid that a jump on fill knocks off the grid
    aligned = dict(max_inventory=5, tick_size=0.1, mid_noise="binomial", dt=0.0025)
    assert inexact_reason(_env(market=dict(aligned, adverse_jump=0.2))) is None
    reason = inexact_reason(_env(market=dict(aligned, adverse_jump=0.25)))
    assert reason is not None and "market.adverse_jump=0.25" in reason


def test_dp_size_of_the_benchmark_problem():
    """200 steps x 51 inventories (the benchmark size) solves and is symmetric in q."""
    env = _env(market=dict(max_inventory=25), reward=dict(inventory_penalty=0.2, terminal_penalty=1e-4))
    sol = solve_optimal(env)
    assert sol.value.shape == (201, 51)
    np.testing.assert_allclose(sol.value[0], sol.value[0][::-1], rtol=1e-12)
    np.testing.assert_allclose(sol.delta_b[:, :-1], sol.delta_a[:, ::-1][:, :-1], atol=1e-10)


@pytest.mark.parametrize("poisson", [False, True])
def test_one_step_joint_maximum_random_cases(poisson):
    """The one-step quoting problem (both sides coupled through the product term) against a dense
    2-D grid, over random continuation values and jump-on-fill shifts of the one-fill gains: the
    best-response fixed point from the corners must be the joint maximum, also when W is strongly
    concave or convex (several fixed points)."""
    from mmgym.baselines.optimal import _quote_step

    rng = np.random.default_rng(7)
    grid = np.linspace(-6.0, 6.0, 801)
    for _ in range(100):
        w = rng.normal(0.0, rng.choice([0.1, 1.0, 5.0]), size=3)
        c_b, c_a = np.exp(rng.uniform(-3.0, 1.5, size=2))
        k_b, k_a = rng.uniform(0.5, 3.0, size=2)
        fee = rng.choice([0.0, 0.05])
        # the jump on fill's shifts of the one-fill gains (half of the cases; any real value)
        shift = rng.normal(0.0, rng.choice([0.1, 1.0, 5.0]), size=2) * rng.integers(0, 2)
        adj_b, adj_a = np.array([0.0, shift[0], 0.0]), np.array([0.0, shift[1], 0.0])
        val, db, da = np.empty(3), np.empty(3), np.empty(3)
        _quote_step(w, adj_b, adj_a, 1, c_b, c_a, k_b, k_a, poisson, fee, 0.0, val, db, da)

        def prob(c, k, d):
            lam = c * np.exp(-k * d)
            return -np.expm1(-lam) if poisson else np.minimum(1.0, lam)

        g_b = np.union1d(grid, [math.log(c_b) / k_b, db[1]])[:, None]
        g_a = np.union1d(grid, [math.log(c_a) / k_a, da[1]])[None, :]
        pb, pa = prob(c_b, k_b, g_b), prob(c_a, k_a, g_a)
        total = (pb * pa * (g_b + g_a - 2 * fee + w[1]) + pb * (1 - pa) * (g_b - fee + w[2] + shift[0])
                 + (1 - pb) * pa * (g_a - fee + w[0] + shift[1]) + (1 - pb) * (1 - pa) * w[1])
        assert total.max() <= val[1] + 1e-9 * (1 + abs(val[1]))
        assert val[1] - total.max() < 1e-9 * (1 + abs(val[1]))  # the DP's depths lie on the grid


def test_toxic_config_optimum_and_references():
    """configs/toxic.yaml (xi = 0.25): V0 bounds the exact value of every baseline, GLFT with and
    without the jump included, and 4000 episodes of the optimal policy are within 4 SE of it."""
    from mmgym.baselines import GLFT

    cfg = load_config("configs/toxic.yaml")
    assert cfg.env.market.adverse_jump > 0
    pol = OptimalPolicy(cfg.env)
    assert pol.exact
    j0 = cfg.env.market.max_inventory
    refs = [make_baseline(n, cfg.env, cfg.baselines) for n in ("as", "symmetric", "glft", "cjp")]
    refs.append(GLFT(cfg.env, cfg.baselines.gamma, adverse_jump=0.0))
    for ref in refs:
        assert evaluate_tables(cfg.env, *ref.tables())[0, j0] <= pol.v0 + 1e-9, ref
    batch = run_policy(cfg.env, pol, 4000, seed=7, cache=False)
    se = batch.objective.std(ddof=1) / math.sqrt(batch.objective.size)
    assert abs(batch.objective.mean() - pol.v0) < 4 * se, (batch.objective.mean(), pol.v0, se)

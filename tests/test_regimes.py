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


@settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), noise=st.sampled_from(["gaussian", "binomial"]),
       hedge=st.booleans(), mode=st.sampled_from(["as_hybrid", "offsets"]),
       n_reg=st.integers(1, 3), jumps=st.booleans(), observed=st.booleans(),
       rule=st.sampled_from(["linear", "poisson"]), variance=st.booleans())
def test_kernel_matches_reference_with_regimes(seed, noise, hedge, mode, n_reg, jumps, observed, rule,
                                               variance):
    """25 random configs x 3 envs x 90 steps (autoresets included): rewards, observations, mids,
    inventories and regimes match the scalar reference stepped with the current regime's sigma, A,
    k, xi, followed by one uniform per step choosing the next regime from P (uniformization); with
    ``risk_penalty: variance`` the running penalty is phi q^2 sigma_r^2 dt / sigma^2."""
    rng = np.random.default_rng(seed)
    sig = rng.uniform(0.5, 6.0, n_reg).round(3).tolist()
    a = rng.uniform(20.0, 200.0, n_reg).round(2).tolist()
    k = rng.uniform(0.5, 3.0, n_reg).round(3).tolist()
    xi = rng.uniform(0.0, 0.5, n_reg).round(3).tolist() if jumps else None
    # leave rates >= 20 per time unit: the chance that 270 row-steps never switch is < 1e-11, so
    # the "chain moved" check below cannot fail by chance (the transition matrix itself, small
    # rates included, is tested against uniformization separately)
    rates = rng.uniform(20.0, 60.0, (n_reg, n_reg)).round(2).tolist()
    cfg = load_env_config({"id": ID, "market": {"horizon": 0.2, "mid_noise": noise, "fill_rule": rule},
                           "reward": {"inventory_penalty": float(rng.uniform(0.1, 3.0)),
                                      "risk_penalty": "variance" if variance else "time"},
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
            dyn = {"sigma": sig[r], "A": a[r], "k": k[r], "xi": 0.0 if xi is None else xi[r],
                   "pen_dt": cfg.market.dt * (sig[r] / cfg.market.sigma) ** 2 if variance else cfg.market.dt}
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


# ------------------------------------------------------------------------------ the exact DP ---
def _regime_env(market=None, reward=None, action=None, impact=None, regimes=None):
    return load_env_config({"id": ID, "market": market or {}, "reward": reward or {},
                            "action": action or {}, "impact": impact or {}, "regimes": regimes or {}})


def brute_force_regimes(env, depth_grid):
    """Slow oracle over (t, q, r): V_t(q, r) = max over a depth grid of the expectation over the four
    fill outcomes of (step reward with regime r's A, k, xi and sigma + sum_r' P[r, r'] V_{t+1}(q', r')),
    written out literally; P by uniformization; dampening's E[max(0, q'(X + J))] by quadrature
    (``tests/test_optimal.damped_mean``)."""
    from .test_optimal import damped_mean

    m, rw, g = env.market, env.reward, env.regimes
    n, q_max, n_r = m.n_steps, m.max_inventory, g.n_regimes
    p_tr = uniformized_transition(g.rates, m.dt)
    xis = g.adverse_jump or [m.adverse_jump] * n_r
    binom = m.mid_noise == "binomial"
    db = depth_grid[:, None]
    da = depth_grid[None, :]
    V = np.zeros((n_r, 2 * q_max + 1))
    for t in range(n - 1, -1, -1):
        last = t == n - 1
        new = np.empty_like(V)
        for r in range(n_r):
            a, k, xi, sd = g.A[r], g.k[r], xis[r], g.sigma[r] * math.sqrt(m.dt)
            # risk_penalty variance: Var_t(dS)/sigma^2 = sigma_r^2 dt / sigma^2
            pen_dt = m.dt * g.sigma[r] ** 2 / m.sigma ** 2 if rw.risk_penalty == "variance" else m.dt

            def prob(d):
                lam = a * np.exp(-k * d) * m.dt
                return -np.expm1(-lam) if m.fill_rule == "poisson" else np.minimum(1.0, lam)

            cont = p_tr[r] @ V  # E[V_{t+1}(q', r')] given r
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
                              - (rw.dampening * damped_mean(q1, xi * (fa - fb), sd, binom)
                                 if rw.dampening else 0.0))
                    total = total + p * (reward + cont[q1 + q_max])
                new[r, j] = np.max(total)
        V = new
    return V


DP_CASES = {
    "linear": dict(market=dict(max_inventory=3, dt=0.05, horizon=0.3),
                   reward=dict(inventory_penalty=2.0, terminal_penalty=0.3),
                   regimes=dict(sigma=[1.0, 4.0], A=[30.0, 15.0], k=[1.5, 0.8], rates=[[0, 3.0], [6.0, 0]])),
    "poisson_jump_damp": dict(market=dict(max_inventory=2, dt=0.05, horizon=0.25, fill_rule="poisson"),
                              reward=dict(inventory_penalty=3.0, terminal_penalty=0.2, dampening=0.5,
                                          maker_fee=0.01),
                              regimes=dict(sigma=[2.0, 6.0], A=[40.0, 20.0], k=[1.0, 2.0],
                                           adverse_jump=[0.0, 0.3], rates=[[0, 5.0], [2.0, 0]], initial=1)),
    "variance": dict(market=dict(max_inventory=3, dt=0.05, horizon=0.3),
                     reward=dict(inventory_penalty=2.0, terminal_penalty=0.3, risk_penalty="variance"),
                     regimes=dict(sigma=[1.0, 4.0], A=[30.0, 15.0], k=[1.5, 0.8], rates=[[0, 3.0], [6.0, 0]])),
}


@pytest.mark.parametrize("case", list(DP_CASES))
def test_regime_dp_matches_brute_force(case):
    """The (t, r, q) DP against the literal brute force on a 0.005 depth grid (plus the linear rule's
    saturation kinks): nothing on the grid beats it and the grid gets within 1e-4; the DP's own
    tables are worth exactly its value under policy evaluation."""
    from mmgym.baselines import evaluate_tables, solve_optimal

    env = _regime_env(**DP_CASES[case])
    sol = solve_optimal(env)
    assert sol.value.shape == (env.market.n_steps + 1, 2, 2 * env.market.max_inventory + 1)
    grid = np.linspace(-2.0, 4.0, 1201)
    g = env.regimes
    grid = np.union1d(grid, [math.log(a * env.market.dt) / k for a, k in zip(g.A, g.k)])
    oracle = brute_force_regimes(env, grid)
    assert np.all(oracle <= sol.value[0] + 1e-9)
    assert np.all(sol.value[0] - oracle < 1e-4)
    np.testing.assert_allclose(evaluate_tables(env, sol.delta_b, sol.delta_a), sol.value, atol=1e-10)
    assert sol.v0(env.market.q0) == sol.value[0, g.initial, env.market.max_inventory + env.market.q0]


def test_one_regime_is_the_intensity_market_dp():
    """R = 1 (the market's sigma, A, k, xi as the one regime) gives the intensity market's DP values
    and tables bit for bit, and the same policy values for a static baseline."""
    from mmgym.baselines import evaluate_tables, make_baseline, solve_optimal

    kw = dict(market=dict(max_inventory=6, horizon=0.5, fill_rule="poisson", sigma=1.5, A=80.0, k=1.2,
                          adverse_jump=0.1),
              reward=dict(inventory_penalty=1.0, terminal_penalty=0.1, dampening=0.2),
              action=dict(hedge=True, hedge_max_lots=2), impact=dict(half_spread=0.02, eta=0.05, nu=0.01))
    one = _regime_env(**kw, regimes=dict(sigma=[1.5], A=[80.0], k=[1.2], rates=[[0.0]]))
    base = load_env_config(kw)
    s1, s0 = solve_optimal(one), solve_optimal(base)
    np.testing.assert_array_equal(s1.value[:, 0], s0.value)
    np.testing.assert_array_equal(s1.delta_b[:, 0], s0.delta_b)
    np.testing.assert_array_equal(s1.delta_a[:, 0], s0.delta_a)
    np.testing.assert_array_equal(s1.hedge[:, 0], s0.hedge)
    pol = make_baseline("as", base)
    np.testing.assert_array_equal(evaluate_tables(one, *pol.tables())[:, 0], evaluate_tables(base, *pol.tables()))


MC_REGIME_CASES = {
    "observed": dict(market=dict(max_inventory=5, horizon=0.5, dt=0.01),
                     reward=dict(inventory_penalty=1.0, terminal_penalty=0.1),
                     regimes=dict(sigma=[1.0, 4.0], A=[100.0, 50.0], k=[1.5, 0.8], adverse_jump=[0.0, 0.2],
                                  rates=[[0, 2.0], [4.0, 0]])),
    "hidden_hedge": dict(market=dict(max_inventory=4, horizon=0.4, dt=0.01, fill_rule="poisson"),
                         reward=dict(inventory_penalty=2.0, terminal_penalty=0.2, dampening=0.2),
                         action=dict(hedge=True, hedge_max_lots=2), impact=dict(half_spread=0.05, eta=0.05),
                         regimes=dict(sigma=[1.0, 3.0, 6.0], A=[120.0, 80.0, 40.0], k=[1.5, 1.2, 0.9],
                                      rates=[[0, 3.0, 0.5], [2.0, 0, 2.0], [1.0, 4.0, 0]], initial=1,
                                      observed=False)),
    "variance": dict(market=dict(max_inventory=5, horizon=0.4, dt=0.01),
                     reward=dict(inventory_penalty=1.0, terminal_penalty=0.1, risk_penalty="variance"),
                     regimes=dict(sigma=[1.0, 5.0], A=[100.0, 50.0], k=[1.5, 0.8], rates=[[0, 3.0], [4.0, 0]])),
}


@pytest.mark.parametrize("case", list(MC_REGIME_CASES))
def test_regime_v0_matches_monte_carlo_through_the_kernel(case):
    """The DP's V0 against 20,000 episodes of its policy (reading the market's regime) through the
    kernel, within 4 standard errors; a static baseline's exact value (policy evaluation over
    (t, r, q) of its (t, q) tables) too; the optimum beats it."""
    from mmgym.baselines import OptimalPolicy, make_baseline, policy_value
    from mmgym.evaluation import run_policy

    env = _regime_env(**MC_REGIME_CASES[case])
    pol = OptimalPolicy(env)
    assert pol.exact
    assert (pol.label is None) == env.regimes.observed
    batch = run_policy(env, pol, 20000, seed=7, cache=False)
    se = batch.objective.std(ddof=1) / math.sqrt(batch.objective.size)
    assert abs(batch.objective.mean() - pol.v0) < 4 * se, (batch.objective.mean(), pol.v0, se)
    glft = make_baseline("glft", env)
    v_glft = policy_value(env, *glft.tables())
    b2 = run_policy(env, glft, 20000, seed=7, cache=False)
    se2 = b2.objective.std(ddof=1) / math.sqrt(b2.objective.size)
    assert abs(b2.objective.mean() - v_glft) < 4 * se2, (b2.objective.mean(), v_glft, se2)
    assert v_glft < pol.v0


def test_hidden_regime_optimal_is_labelled_oracle():
    """With regimes.observed: false the evaluation labels optimal an oracle (metrics, metadata)."""
    from mmgym.evaluation import run_evaluation
    from mmgym.scenarios.regimes import ORACLE_LABEL

    env = _regime_env(market=dict(max_inventory=3, horizon=0.1), regimes=dict(observed=False))
    res = run_evaluation(env, {"optimal": "optimal", "as": "as"}, episodes=50)
    assert res.metadata["optimal_label"] == ORACLE_LABEL
    assert res.metrics["optimal"]["label"] == ORACLE_LABEL and "label" not in res.metrics["as"]
    assert res.metrics["optimal"]["objective_exact"] == pytest.approx(res.metrics["optimal"]["v0"], abs=1e-9)
    seen = run_evaluation(_regime_env(market=dict(max_inventory=3, horizon=0.1)), {"optimal": "optimal"},
                          episodes=50)
    assert "optimal_label" not in seen.metadata

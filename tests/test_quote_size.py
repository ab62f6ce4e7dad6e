"""Quote sizes (``action.quote_size``, issue 9 scenario 6): the kernel against the slow reference
step, the size-free env unchanged, the DP against a literal brute-force backward induction over
(depth, size) choices, and the optimum's Monte Carlo through the kernel."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mmgym  # noqa: F401  (registers the ids)
from mmgym.baselines import OptimalPolicy, evaluate_tables, make_baseline, policy_value, solve_optimal
from mmgym.config import ConfigError, load_env_config
from mmgym.envs.market import BatchMarket
from mmgym.evaluation import run_evaluation, run_policy
from mmgym.sim import ledger as K

from .reference_intensity import RefRng, ref_reset, ref_step
from .test_intensity_kernel import configs
from .test_optimal import damped_mean

AUX = ["size_bid", "size_ask"]


def _env(market=None, reward=None, action=None, impact=None, **extra):
    return load_env_config({"market": market or {}, "reward": reward or {}, "action": action or {},
                            "impact": impact or {}, **extra})


# ------------------------------------------------------------------------------- kernel ---
def _check_against_reference(cfg, seed, raw, n_env=4, n_steps=50):
    market = BatchMarket(cfg, n_env, raw_depths=raw)
    market.seed_rows([seed + i for i in range(n_env)])
    refs = [ref_reset(cfg, RefRng(int(market.rng[i, 0]), int(market.rng[i, 1]))) for i in range(n_env)]
    market.reset()
    rng = np.random.default_rng(seed)
    lay = market.action_layout
    col = {n: j for j, n in enumerate(market.aux_names)}
    m = cfg.action.quote_size
    for _ in range(n_steps):
        if raw:
            actions = rng.uniform(-1.0, 3.0, size=(n_env, market.action_dim))
            if cfg.action.hedge:
                actions[:, lay.hedge] = rng.integers(-3, 4, size=(n_env, 1))
            actions[:, lay.size_bid] = rng.integers(-1, m + 2, size=(n_env, 1))
            actions[:, lay.size_ask] = rng.integers(-1, m + 2, size=(n_env, 1))
        else:
            actions = rng.uniform(-1.3, 1.3, size=(n_env, market.action_dim))
        b = market.step(actions)
        for i in range(n_env):
            out = ref_step(cfg, refs[i], actions[i].tolist(), raw=raw)
            assert b.done[i] == out["done"]
            assert b.reward[i] == pytest.approx(out["reward"], rel=1e-9, abs=1e-9)
            for j, name in enumerate(K.TERM_NAMES):
                assert b.terms[i, j] == pytest.approx(out["terms"][name], rel=1e-9, abs=1e-9), name
            for name in ("size_bid", "size_ask", "fill_bid", "fill_ask"):
                assert b.aux[i, col[name]] == out[name], name
            assert (np.isnan(b.aux[i, col["bid_px"]])) == (out["size_bid"] == 0)
            np.testing.assert_allclose(b.obs[i], out["obs"], rtol=1e-5, atol=1e-6)
            if out["done"]:
                np.testing.assert_allclose(b.final_obs[i], out["final_obs"], rtol=1e-5, atol=1e-6)
            assert market.inventory[i] == refs[i].q
            assert abs(refs[i].q) <= cfg.market.max_inventory
            assert market.mid[i] == pytest.approx(refs[i].mid, rel=1e-12)
            assert market.cash[i] == pytest.approx(refs[i].cash, rel=1e-9, abs=1e-9)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cfg_dict=configs, seed=st.integers(0, 2**32 - 1), raw=st.booleans(),
       size=st.integers(1, 4), jump=st.sampled_from([0.0, 0.3]), spread=st.booleans())
def test_kernel_with_sizes_matches_python_reference(cfg_dict, seed, raw, size, jump, spread):
    """25 random configs (with and without the jump on fill, hedge, as_hybrid's extra half-spread
    column, ticks, fees, CARA) x 4 envs x 50 steps, random sizes (outside 0..m too): every reward,
    term, observation, quoted and filled lot count, mid, cash and inventory matches the reference on
    the same draws."""
    spread = spread and cfg_dict["action"]["mode"] == "as_hybrid"
    cfg_dict = {**cfg_dict, "market": {**cfg_dict["market"], "adverse_jump": jump},
                "action": {**cfg_dict["action"], "quote_size": size, "spread": spread}}
    _check_against_reference(load_env_config(cfg_dict), seed, raw)


def _trajectory(cfg, actions_fn, n_env=8, steps=90, seed=7):
    market = BatchMarket(cfg, n_env)
    market.seed_rows(list(range(seed, seed + n_env)))
    market.reset()
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(steps):
        a = actions_fn(rng, n_env)
        b = market.step(a)
        rows.append((b.obs.copy(), b.reward.copy(), market.inventory.copy(), market.cash.copy()))
    return rows


def test_one_lot_sizes_reproduce_the_size_free_env():
    """``quote_size = 1`` with both size actions at +1 (one lot) is the env without sizes, draw for
    draw; so is ``quote_size = 3`` with both size actions at -1/3 ((a + 1)/2 * 3 = 1 lot)."""
    base = _env(market=dict(max_inventory=3, horizon=0.5, adverse_jump=0.2), action=dict(mode="offsets"))
    plain = _trajectory(base, lambda rng, n: rng.uniform(-1, 1, size=(n, 2)))
    for m, a in ((1, 1.0), (3, -1.0 / 3.0)):
        sized = _env(market=dict(max_inventory=3, horizon=0.5, adverse_jump=0.2),
                     action=dict(mode="offsets", quote_size=m))
        traj = _trajectory(sized, lambda rng, n: np.column_stack([rng.uniform(-1, 1, size=(n, 2)),
                                                                  np.full((n, 2), a)]))
        for x, y in zip(plain, traj):
            for u, v in zip(x, y):
                np.testing.assert_array_equal(u, v)


def test_size_zero_does_not_quote_and_rounding():
    """Lots 0 on a side: NaN price, no fill, ever; the normalised size rounds to the nearest lot
    (halves up) and the raw mode takes integer lots clipped to 0..m."""
    cfg = _env(market=dict(A=1e6, horizon=0.2, max_inventory=50), action=dict(mode="offsets", quote_size=2))
    market = BatchMarket(cfg, 5)
    market.seed_rows(range(5))
    market.reset()
    col = {n: j for j, n in enumerate(market.aux_names)}
    size_actions = np.array([-1.0, -0.51, -0.5, 0.49, 0.5])  # -> 0, 0, 1, 1, 2 lots
    a = np.column_stack([np.full(5, -1.0), np.full(5, -1.0), size_actions, np.full(5, -1.0)])
    b = market.step(a)
    np.testing.assert_array_equal(b.aux[:, col["size_bid"]], [0, 0, 1, 1, 2])
    np.testing.assert_array_equal(b.aux[:, col["size_ask"]], 0)
    assert np.all(np.isnan(b.aux[:, col["ask_px"]])) and np.all(b.aux[:, col["fill_ask"]] == 0)
    # depth -1 (crossing) with A huge: every quoting side fills its whole size
    np.testing.assert_array_equal(b.aux[:, col["fill_bid"]], [0, 0, 1, 1, 2])
    np.testing.assert_array_equal(market.inventory[:, 0], [0, 0, 1, 1, 2])
    raw = BatchMarket(cfg, 4, raw_depths=True)
    raw.seed_rows(range(4))
    raw.reset()
    b = raw.step(np.column_stack([np.zeros(4), np.zeros(4), [-3.0, 0.4, 1.6, 9.0], np.ones(4)]))
    np.testing.assert_array_equal(b.aux[:, col["size_bid"]], [0, 0, 2, 2])


def test_sizes_are_clipped_to_the_bound():
    """The bound is never crossed: a bid of m lots shows min(m, Q - q), and the statistics count lots."""
    cfg = _env(market=dict(A=1e6, horizon=0.1, max_inventory=3), action=dict(mode="offsets", quote_size=2))
    market = BatchMarket(cfg, 1)
    market.seed_rows([0])
    market.reset()
    col = {n: j for j, n in enumerate(market.aux_names)}
    shown = []
    for _ in range(3):
        b = market.step(np.array([[-1.0, 3.0, 1.0, -1.0]]))  # bid 2 lots crossing, no ask
        shown.append(b.aux[0, col["size_bid"]])
    assert shown == [2, 1, 0] and market.inventory[0, 0] == 3


# ---------------------------------------------------------------------------------- DP ---
def brute_force_sized(env, depth_grid, xi_t=None, pen_t=None):
    """Literal backward induction: V_t(q) = max over (m_b, m_a) in {0..m}^2 (clipped to the room the
    bound leaves) and a depth grid of the expectation over the four fill outcomes of (step reward +
    V_{t+1}(q')), with q' = q + m_b F_b - m_a F_a, the fills' cash m (delta - fee) and the mid's jump
    xi (F_a - F_b) once per fill event revaluing q'. ``xi_t``: per-step xi (scheduled events);
    ``pen_t``: per-step time factor of the running penalty phi q'^2 pen_t (default dt)."""
    m, r = env.market, env.reward
    n, q_max, lots = m.n_steps, m.max_inventory, env.action.quote_size
    a_b, a_a, k_b, k_a = m.side_params()
    sq = m.sigma * math.sqrt(m.dt)
    binom = m.mid_noise == "binomial"
    xi_t = [m.adverse_jump] * n if xi_t is None else list(xi_t)
    pen_t = [m.dt] * n if pen_t is None else list(pen_t)

    def prob(a, k, d):
        lam = a * np.exp(-k * d) * m.dt
        return -np.expm1(-lam) if m.fill_rule == "poisson" else np.minimum(1.0, lam)

    depth_grid = np.union1d(depth_grid, [math.log(a_b * m.dt) / k_b, math.log(a_a * m.dt) / k_a])
    db = depth_grid[:, None]
    da = depth_grid[None, :]
    V = np.zeros(2 * q_max + 1)
    for t in range(n - 1, -1, -1):
        xi = xi_t[t]
        damp = {}
        last = t == n - 1
        new = np.empty_like(V)
        for j in range(V.size):
            q = j - q_max
            best = -np.inf
            for mb in range(min(lots, q_max - q) + 1):
                for ma in range(min(lots, q_max + q) + 1):
                    pb = prob(a_b, k_b, db) if mb > 0 else 0.0 * db
                    pa = prob(a_a, k_a, da) if ma > 0 else 0.0 * da
                    total = 0.0
                    for fb, fa, p in ((1, 1, pb * pa), (1, 0, pb * (1 - pa)), (0, 1, (1 - pb) * pa),
                                      (0, 0, (1 - pb) * (1 - pa))):
                        q1 = q + fb * mb - fa * ma
                        jump = xi * (fa - fb)
                        if (q1, jump) not in damp:
                            damp[q1, jump] = damped_mean(q1, jump, sq, binom) if r.dampening else 0.0
                        reward = (fb * mb * (db - r.maker_fee) + fa * ma * (da - r.maker_fee)
                                  - r.inventory_penalty * q1 * q1 * pen_t[t]
                                  - (r.terminal_penalty * q1 * q1 if last else 0.0) + q1 * jump
                                  - r.dampening * damp[q1, jump])
                        total = total + p * (reward + V[q1 + q_max])
                    best = max(best, float(np.max(total)))
            new[j] = best
        V = new
    return V


SIZED_CASES = {
    "linear": dict(market=dict(max_inventory=3, dt=0.05, horizon=0.25, A=30.0, k=1.5),
                   reward=dict(inventory_penalty=2.0, terminal_penalty=0.3), action=dict(quote_size=2)),
    "linear_jump_fee": dict(market=dict(max_inventory=3, dt=0.05, horizon=0.25, A=60.0, k=1.5,
                                        adverse_jump=0.4),
                            reward=dict(inventory_penalty=1.0, terminal_penalty=0.3, maker_fee=0.02),
                            action=dict(quote_size=3)),
    "poisson_jump_damp": dict(market=dict(max_inventory=3, dt=0.05, horizon=0.2, A_bid=40.0, A_ask=20.0,
                                          k_bid=1.0, k_ask=2.0, fill_rule="poisson", adverse_jump=0.3),
                              reward=dict(inventory_penalty=3.0, terminal_penalty=0.2, dampening=0.5),
                              action=dict(quote_size=2)),
    "binomial_jump_damp": dict(market=dict(max_inventory=2, dt=0.05, horizon=0.2, A=12.0, k=2.0, sigma=1.0,
                                           mid_noise="binomial", adverse_jump=0.15),
                               reward=dict(inventory_penalty=1.0, terminal_penalty=0.1, dampening=1.0),
                               action=dict(quote_size=2)),
}


@pytest.mark.parametrize("case", list(SIZED_CASES))
def test_sized_dp_matches_brute_force(case):
    env = _env(**SIZED_CASES[case])
    sol = solve_optimal(env)
    oracle = brute_force_sized(env, np.linspace(-2.0, 4.0, 601))
    v_dp = sol.value[0]
    assert np.all(oracle <= v_dp + 1e-9)  # nothing on the grid beats the DP
    assert np.all(v_dp - oracle < 5e-4)  # and a 0.01 grid gets close
    # the DP's own (depth, size) tables are worth exactly its value (the shared _step_gain rule)
    np.testing.assert_allclose(evaluate_tables(env, sol.delta_b, sol.delta_a, None, sol.lots_b, sol.lots_a),
                               sol.value, atol=1e-10)
    # sizes beyond one lot are used somewhere, and never cross the bound
    q = np.arange(-env.market.max_inventory, env.market.max_inventory + 1)
    assert sol.lots_b.max() > 1
    assert np.all(q + sol.lots_b <= env.market.max_inventory)
    assert np.all(q - sol.lots_a >= -env.market.max_inventory)


@pytest.mark.parametrize("risk", ["time", "variance"])
def test_sized_dp_with_event_windows_matches_brute_force(risk):
    """Scheduled events (a per-step xi in the window; with ``risk_penalty: variance`` the event
    step's penalty is phi q'^2 (dt + s^2/sigma^2)): the same brute force with step t's xi."""
    from mmgym.scenarios.events import schedule

    env = _env(id="mmgym/EventMarketMaking-v0",
               market=dict(max_inventory=3, dt=0.05, horizon=0.3, A=60.0, k=1.5, sigma=2.0),
               reward=dict(inventory_penalty=1.0, terminal_penalty=0.2, risk_penalty=risk),
               action=dict(quote_size=2),
               events=dict(times=[0.2], window=0.1, adverse_jump=0.8, jump_std=0.5))
    sol = solve_optimal(env)
    xi_t, sd_t = schedule(env)
    pen_t = env.market.dt + (sd_t / 2.0) ** 2 if risk == "variance" else None
    oracle = brute_force_sized(env, np.linspace(-2.0, 4.0, 601), xi_t=xi_t, pen_t=pen_t)
    assert np.all(oracle <= sol.value[0] + 1e-9)
    assert np.all(sol.value[0] - oracle < 5e-4)


def test_one_lot_dp_equals_the_size_free_dp():
    """``quote_size = 1`` only adds the option of showing 0 lots, which is never better than a deep
    quote: the same values, and the same depths wherever it shows a lot."""
    for case in ("linear_jump_fee", "poisson_jump_damp"):
        spec = SIZED_CASES[case]
        plain = solve_optimal(_env(**{**spec, "action": {}}))
        one = solve_optimal(_env(**{**spec, "action": {"quote_size": 1}}))
        np.testing.assert_allclose(one.value, plain.value, rtol=1e-11, atol=1e-11)
        shown = one.lots_b == 1
        np.testing.assert_allclose(one.delta_b[shown], plain.delta_b[shown], rtol=1e-9, atol=1e-9)
        np.testing.assert_array_equal(plain.lots_b[:, -1], 0)
        # evaluating the size-free tables in the one-lot env (default: one lot) gives the same values
        np.testing.assert_allclose(evaluate_tables(_env(**{**spec, "action": {"quote_size": 1}}),
                                                   plain.delta_b, plain.delta_a), plain.value, atol=1e-11)


def test_optimal_with_sizes_matches_monte_carlo_and_beats_one_lot():
    """V0 with sizes against 20,000 episodes of its own policy through the kernel (within 4 SE), and
    sizes are worth something here: V0(m = 2) > V0(one lot)."""
    spec = dict(market=dict(max_inventory=6, horizon=0.25, adverse_jump=0.3, q0=1),
                reward=dict(inventory_penalty=0.5, terminal_penalty=0.05, maker_fee=0.01))
    env = _env(**spec, action=dict(quote_size=2))
    pol = OptimalPolicy(env)
    batch = run_policy(env, pol, 20000, seed=3, cache=False)
    se = batch.objective.std(ddof=1) / math.sqrt(batch.objective.size)
    assert abs(batch.objective.mean() - pol.v0) < 4 * se, (batch.objective.mean(), pol.v0, se)
    assert pol.v0 > OptimalPolicy(_env(**spec)).v0 + 10 * se


def test_static_baselines_quote_one_lot():
    """``as`` with sizes on shows one lot per side: its exact value and its trajectories are those
    of the env without sizes."""
    spec = dict(market=dict(max_inventory=5, horizon=0.25, adverse_jump=0.2),
                reward=dict(inventory_penalty=0.5, terminal_penalty=0.05))
    plain, sized = _env(**spec), _env(**spec, action=dict(quote_size=3))
    as_plain, as_sized = make_baseline("as", plain), make_baseline("as", sized)
    assert policy_value(sized, *as_sized.tables(), *as_sized.size_tables()) == pytest.approx(
        policy_value(plain, *as_plain.tables()), abs=1e-12)
    a = run_policy(plain, as_plain, 200, seed=1, cache=False)
    b = run_policy(sized, as_sized, 200, seed=1, cache=False)
    np.testing.assert_array_equal(a.objective, b.objective)


# ------------------------------------------------------------------------ envs and CLI ---
@pytest.mark.parametrize("env_id", ["mmgym/MarketMaking-v0", "mmgym/RegimeMarketMaking-v0",
                                    "mmgym/EventMarketMaking-v0", "mmgym/OUMarketMaking-v0"])
def test_envs_with_sizes(env_id):
    env = gym.make(env_id, action={"quote_size": 2, "hedge": True})
    assert env.action_space.shape == (5,)
    env.reset(seed=0)
    for _ in range(20):
        _, _, _, _, info = env.step(env.action_space.sample())
        assert info["size_bid"] in (0, 1, 2) and info["fill_bid"] <= info["size_bid"]
    venv = gym.make_vec(env_id, num_envs=3, vectorization_mode="vector_entry_point", action={"quote_size": 2})
    assert venv.single_action_space.shape == (4,)
    venv.reset(seed=0)
    venv.step(venv.action_space.sample())
    plain = gym.make(env_id)
    plain.reset(seed=0)
    assert "size_bid" not in plain.step(plain.action_space.sample())[4]  # not in info without sizes


def test_refusals_are_one_line():
    # (the book takes sizes since issue 10: tests/test_lob_quote_size.py)
    with pytest.raises(ConfigError, match="action.quote_size"):  # no sized kernel there
        BatchMarket(_env(id="mmgym/AlphaMarketMaking-v0", action=dict(quote_size=2)), 1)
    with pytest.raises(ConfigError) as exc:
        load_env_config({"action": {"quote_size": -1}})
    assert "quote_size" in str(exc.value) and "\n" not in str(exc.value).strip()


def test_evaluation_with_sizes_reports_exact_values():
    env = _env(market=dict(max_inventory=4, horizon=0.2, adverse_jump=0.2),
               reward=dict(inventory_penalty=0.5), action=dict(quote_size=2))
    res = run_evaluation(env, {"as": "as", "optimal": "optimal"}, episodes=300, seed=0)
    m = res.metrics
    assert m["optimal"]["objective_exact"] == pytest.approx(m["optimal"]["v0"], abs=1e-9)
    assert m["as"]["objective_exact"] < m["optimal"]["objective_exact"]

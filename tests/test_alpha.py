"""mmgym/AlphaMarketMaking-v0: informed order flow and a short-term alpha (CJP 2015 sec. 10.4,
discretised). The kernel against a scalar plain-Python step on the same draws; the exact DP
against a literal brute-force backward induction over every outcome and against Monte Carlo
through the kernel; glft_drift against glft and the GLFT sec. 5 drift system; the observation,
the refusals, gym.make / make_vec and the evaluate CLI."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
from scipy.linalg import expm

import mmgym  # noqa: F401
from mmgym.config import ConfigError, load_env_config
from mmgym.envs.market import BatchMarket

from .reference_intensity import RefRng

ID = "mmgym/AlphaMarketMaking-v0"


def _env(market=None, reward=None, action=None, impact=None, alpha=None):
    return load_env_config({"id": ID, "market": market or {}, "reward": reward or {},
                            "action": action or {}, "impact": impact or {}, "alpha": alpha or {}})


# --------------------------------------------------------------------- slow reference ---
class RefAlpha:
    """One env of the alpha market in plain Python (module docstring of mmgym.scenarios.alpha,
    rules 0-6), with its own state and the project's reference xoroshiro128+/ziggurat."""

    def __init__(self, cfg, rng):
        self.cfg, self.rng = cfg, rng
        self.reset()

    def reset(self):
        m = self.cfg.market
        self.mid, self.cash, self.q, self.step_i = m.s0, 0.0, m.q0, 0
        self.vol_var, self.mid_ret, self.fills = m.sigma ** 2 * m.dt, 0.0, (0, 0)
        self.notch, self.flow = 0, 0

    def obs(self):
        m, g = self.cfg.market, self.cfg.alpha
        sd = m.sigma * math.sqrt(m.dt)
        out = [self.q / m.max_inventory, (m.n_steps - self.step_i) / m.n_steps,
               min(10.0, math.sqrt(self.vol_var) / sd), float(self.fills[0]), float(self.fills[1]),
               max(-10.0, min(10.0, self.mid_ret / sd)), float(self.flow)]
        if g.observe_alpha:
            out.append(self.notch / g.notches)
        return out

    def step(self, action):
        cfg = self.cfg
        m, r, a, im, g = cfg.market, cfg.reward, cfg.action, cfg.impact, cfg.alpha
        _, _, k_bid, k_ask = m.side_params()
        lam_buy = g.lambda_buy if g.lambda_buy is not None else m.side_params()[1]
        lam_sell = g.lambda_sell if g.lambda_sell is not None else m.side_params()[0]
        def clip(x):
            return max(-1.0, min(1.0, x))

        s, q = self.mid, self.q
        w_before = self.cash + q * s
        v, impact, taker = 0, 0.0, 0.0
        if a.hedge:
            v = int(round(clip(action[-1]) * a.hedge_max_lots))
            v = max(-m.max_inventory - q, min(m.max_inventory - q, v))
            if v:
                impact = abs(v) * (im.half_spread + im.eta * abs(v))
                taker = r.taker_fee * abs(v)
                self.cash -= v * s + impact + taker
                q += v
                s += im.nu * v
        tau = (m.n_steps - self.step_i) * m.dt
        if a.mode == "as_hybrid":
            lg0, lg1 = math.log(a.gamma_min), math.log(a.gamma_max)
            gamma = math.exp(lg0 + (clip(action[0]) + 1) / 2 * (lg1 - lg0))
            r_px = s - q * gamma * m.sigma ** 2 * tau + clip(action[1]) * a.skew_max
            half = 0.5 * gamma * m.sigma ** 2 * tau
            d_bid = s - (r_px - half - math.log(1 + gamma / k_bid) / gamma)
            d_ask = (r_px + half + math.log(1 + gamma / k_ask) / gamma) - s
        else:
            lo, hi = a.offset_min, a.offset_max
            d_bid = lo + (clip(action[0]) + 1) / 2 * (hi - lo)
            d_ask = lo + (clip(action[1]) + 1) / 2 * (hi - lo)
        bid, ask = s - d_bid, s + d_ask
        # 2. arrivals: a buy market order w.p. min(1, lambda_buy dt), a sell one likewise
        buy = self.rng.uniform() < min(1.0, lam_buy * m.dt)
        sell = self.rng.uniform() < min(1.0, lam_sell * m.dt)
        # each arriving order fills our quote on its side w.p. min(1, e^{-k delta}): E ~ Exp(1) > k delta
        e_b, e_a = self.rng.exponential(), self.rng.exponential()
        fb = sell and q + 1 <= m.max_inventory and e_b > k_bid * d_bid
        fa = buy and q - 1 >= -m.max_inventory and e_a > k_ask * d_ask
        if fb:
            self.cash -= bid
            q += 1
        if fa:
            self.cash += ask
            q -= 1
        maker = r.maker_fee * (int(fb) + int(fa))
        self.cash -= maker
        z = (1 if self.rng.uniform() < 0.5 else -1) if m.mid_noise == "binomial" else self.rng.normal()
        ds = self.notch * g.epsilon * m.dt + m.sigma * math.sqrt(m.dt) * z  # step-start alpha
        s_new = s + ds
        dw = self.cash + q * s_new - w_before
        last = self.step_i + 1 >= m.n_steps
        reward = (dw - r.inventory_penalty * q * q * m.dt - (r.terminal_penalty * q * q if last else 0.0)
                  - (max(0.0, r.dampening * q * ds) if r.dampening > 0 else 0.0))
        # 6. the notch: + B - S, clipped, then one notch towards 0 w.p. zeta dt
        n = max(-g.notches, min(g.notches, self.notch + int(buy) - int(sell)))
        if self.rng.uniform() < min(1.0, g.zeta * m.dt) and n != 0:
            n -= 1 if n > 0 else -1
        decay = 1 - 0.5 ** (1 / cfg.observation.vol_halflife)
        self.mid, self.q, self.step_i, self.mid_ret = s_new, q, self.step_i + 1, ds
        self.vol_var += decay * (ds * ds - self.vol_var)
        self.fills = (int(fb), int(fa))
        self.notch, self.flow = n, int(buy) - int(sell)
        final = self.obs()
        if last:
            self.reset()
        return {"reward": reward, "done": last, "final_obs": final, "obs": self.obs(), "mid": s_new, "q": q}


@pytest.mark.parametrize("seed", range(8))
def test_kernel_matches_reference(seed):
    """8 random configs x 3 envs x 70 steps (autoresets included): rewards, observations, mids,
    inventories, notches and flows match the plain-Python step on the same draws."""
    rng = np.random.default_rng(seed)
    dt = float(rng.choice([0.005, 0.01, 0.02]))
    lam_b, lam_s = rng.uniform(5.0, 1.0 / dt, 2)
    cfg = _env(market=dict(horizon=0.3, dt=dt, sigma=float(rng.uniform(0.5, 4.0)),
                           max_inventory=int(rng.integers(2, 8)), k=float(rng.uniform(0.5, 3.0)),
                           mid_noise=str(rng.choice(["gaussian", "binomial"]))),
               action=dict(hedge=bool(rng.integers(2)), mode=str(rng.choice(["as_hybrid", "offsets"]))),
               impact=dict(eta=0.05, nu=0.01),
               reward=dict(inventory_penalty=float(rng.uniform(0, 2)), terminal_penalty=0.1,
                           dampening=float(rng.choice([0.0, 0.3]))),
               alpha=dict(lambda_buy=float(lam_b), lambda_sell=float(lam_s),
                          notches=int(rng.integers(1, 5)),
                          epsilon=float(rng.uniform(0.0, 3.0)), zeta=float(rng.uniform(0.0, 1.0 / dt)),
                          observe_alpha=bool(rng.integers(2))))
    market = BatchMarket(cfg, 3)
    market.seed_rows([seed * 10 + i for i in range(3)])
    refs = [RefAlpha(cfg, RefRng(int(market.rng[i, 0]), int(market.rng[i, 1]))) for i in range(3)]
    obs = market.reset()
    assert obs.shape == (3, 8 if cfg.alpha.observe_alpha else 7)
    seen_notches = set()
    for _ in range(70):
        actions = rng.uniform(-1.2, 1.2, size=(3, market.action_dim))
        b = market.step(actions)
        for i in range(3):
            out = refs[i].step(actions[i].tolist())
            assert b.done[i] == out["done"]
            assert b.reward[i] == pytest.approx(out["reward"], rel=1e-9, abs=1e-9)
            np.testing.assert_allclose(b.obs[i], out["obs"], rtol=1e-5, atol=1e-6)
            assert market.mid[i, 0] == pytest.approx(refs[i].mid, rel=1e-12)
            assert market.inventory[i, 0] == refs[i].q
            assert market.field("notch")[i] == refs[i].notch
            assert market.field("flow")[i] == refs[i].flow
            seen_notches.add(refs[i].notch)
    assert len(seen_notches) > 1  # the drift moved


def test_observation_layout_and_hidden_alpha():
    """observed: 8 features (flow, then notch/m); hidden: the first 7, draw for draw the same."""
    seen = gym.make(ID, market={"horizon": 0.2})
    hidden = gym.make(ID, market={"horizon": 0.2}, alpha={"observe_alpha": False})
    assert seen.observation_space.shape == (8,) and hidden.observation_space.shape == (7,)
    o1, _ = seen.reset(seed=3)
    o2, _ = hidden.reset(seed=3)
    np.testing.assert_array_equal(o1[:7], o2)
    assert o1[6] == 0.0 and o1[7] == 0.0
    m = seen.unwrapped.config.alpha.notches
    flows = set()
    for _ in range(60):
        a = seen.action_space.sample()
        o1, *_ = seen.step(a)
        o2, *_ = hidden.step(a)
        np.testing.assert_array_equal(o1[:7], o2)
        assert seen.observation_space.contains(o1) and hidden.observation_space.contains(o2)
        flows.add(float(o1[6]))
        assert o1[7] * m == pytest.approx(round(o1[7] * m), abs=1e-5)  # a notch / m
    assert flows == {-1.0, 0.0, 1.0}


def test_env_checker_make_vec_and_sb3():
    from gymnasium.utils.env_checker import check_env

    env = gym.make(ID, market={"horizon": 0.1})
    check_env(env.unwrapped, skip_render_check=True)
    venv = gym.make_vec(ID, num_envs=4, vectorization_mode="vector_entry_point", market={"horizon": 0.1})
    obs, _ = venv.reset(seed=0)
    assert obs.shape == (4, 8)
    ended = np.zeros(4, dtype=bool)
    for _ in range(25):
        obs, _, term, _, _ = venv.step(venv.action_space.sample())
        ended |= term
    assert ended.all()  # 20-step episodes ended and autoreset
    from mmgym.agents import MMVecEnv

    sb = MMVecEnv(_env(market={"horizon": 0.1}), num_envs=3, seed=0)
    assert sb.reset().shape == (3, 8)
    sb.step(np.zeros((3, 2), dtype=np.float32))


def test_glass_box_driver_is_the_notch():
    """The glass box's driver reads the market's notch before the step, one bin per notch."""
    from mmgym.scenarios import get

    env = _env(market={"horizon": 0.1}, alpha={"notches": 2})
    drv = get(ID).driver(env)
    assert drv.labels == ("n-2", "n-1", "n0", "n1", "n2")
    np.testing.assert_array_equal(drv.bin_of(np.array([-2.0, 0.0, 2.0, 3.0])), [0, 2, 4, -1])
    market = BatchMarket(env, 4)
    market.seed_rows([0, 1, 2, 3])
    market.reset()
    for _ in range(5):
        market.step(np.zeros((4, market.action_dim)))
    np.testing.assert_array_equal(drv.values(market), market.field("notch"))


@pytest.mark.parametrize("kw, message", [
    (dict(alpha={"lambda_buy": 300.0}), "alpha.lambda_buy = 300 with market.dt = 0.005: lambda*dt = 1.5 > 1"),
    (dict(market={"A": 300.0}), "alpha.lambda_buy (default market.A_ask) = 300"),
    (dict(alpha={"zeta": 500.0}), "alpha.zeta = 500"),
    (dict(alpha={"notches": 0}), "alpha.notches"),
    (dict(alpha={"epsilon": -1.0}), "alpha.epsilon"),
    (dict(market={"fill_rule": "poisson"}), "market.fill_rule = 'poisson'"),
    (dict(market={"adverse_jump": 0.1}), "market.adverse_jump = 0.1"),
    (dict(market={"tick_size": 0.01}), "market.tick_size = 0.01"),
])
def test_config_refusals_are_one_line(kw, message):
    with pytest.raises(ConfigError) as err:
        _env(**kw)
    assert message in str(err.value) and "\n" not in str(err.value)


# ------------------------------------------------------------------------------ the exact DP ---
def brute_force_alpha(env, depth_grid, policy=None):
    """Literal backward induction over (t, notch, q): V_t(n, q) = max over a depth grid (or the
    given ``policy(t, n, q) -> (d_b, d_a)``) of the expectation, over every outcome (buy order B,
    sell order S, our ask fill given B, our bid fill given S, the notch's decay), of
    ``fills' spread + q' alpha_n dt - phi q'^2 dt - [last] alpha q'^2 + V_{t+1}(n', q')``
    (E[q' dS] = q' alpha_n dt: Z is independent of everything else)."""
    m, rw, g = env.market, env.reward, env.alpha
    n, q_max, mm = m.n_steps, m.max_inventory, g.notches
    _, _, k_b, k_a = m.side_params()
    lam_b = g.lambda_buy if g.lambda_buy is not None else m.side_params()[1]
    lam_s = g.lambda_sell if g.lambda_sell is not None else m.side_params()[0]
    p_buy, p_sell, p_z = min(1, lam_b * m.dt), min(1, lam_s * m.dt), min(1, g.zeta * m.dt)
    if policy is None:
        db, da = depth_grid[:, None], depth_grid[None, :]
    V = np.zeros((2 * mm + 1, 2 * q_max + 1))
    for t in range(n - 1, -1, -1):
        last = t == n - 1
        new = np.empty_like(V)
        for r in range(2 * mm + 1):
            notch = r - mm
            for j in range(2 * q_max + 1):
                q = j - q_max
                if policy is not None:
                    db, da = policy(t, r, j)
                fill_b = np.minimum(1.0, np.exp(-k_b * db)) if q + 1 <= q_max else 0.0 * db
                fill_a = np.minimum(1.0, np.exp(-k_a * da)) if q - 1 >= -q_max else 0.0 * da
                total = 0.0
                for buy, pb in ((1, p_buy), (0, 1 - p_buy)):
                    for sell, ps in ((1, p_sell), (0, 1 - p_sell)):
                        for dec, pz in ((1, p_z), (0, 1 - p_z)):
                            n1 = max(-mm, min(mm, notch + buy - sell))
                            if dec and n1 != 0:
                                n1 -= 1 if n1 > 0 else -1
                            for fb in (0, 1):
                                for fa in (0, 1):
                                    pf = ((fill_b if fb else 1 - fill_b) if sell else (1.0 - fb))
                                    pf = pf * ((fill_a if fa else 1 - fill_a) if buy else (1.0 - fa))
                                    q1 = q + fb - fa
                                    if abs(q1) > q_max:
                                        continue
                                    reward = (fb * db + fa * da - rw.maker_fee * (fb + fa)
                                              + q1 * notch * g.epsilon * m.dt
                                              - rw.inventory_penalty * q1 * q1 * m.dt
                                              - (rw.terminal_penalty * q1 * q1 if last else 0.0))
                                    cont = V[n1 + mm, q1 + q_max]
                                    total = total + pb * ps * pz * pf * (reward + cont)
                new[r, j] = np.max(total)
        V = new
    return V


DP_CASES = {
    "small": dict(market=dict(max_inventory=2, dt=0.05, horizon=0.25, k=1.5, sigma=1.0),
                  reward=dict(inventory_penalty=1.0, terminal_penalty=0.3),
                  alpha=dict(lambda_buy=12.0, lambda_sell=8.0, notches=2, epsilon=4.0, zeta=6.0)),
    "saturated_fee": dict(market=dict(max_inventory=3, dt=0.1, horizon=0.4, k_bid=2.0, k_ask=0.8),
                          reward=dict(inventory_penalty=0.5, terminal_penalty=0.5, maker_fee=0.02),
                          alpha=dict(lambda_buy=10.0, lambda_sell=6.0, notches=1, epsilon=6.0, zeta=3.0)),
}


@pytest.mark.parametrize("case", list(DP_CASES))
def test_alpha_dp_matches_brute_force(case):
    """The (t, notch, q) DP against the literal brute force on a depth grid (0.01 apart on
    [-0.5, 4], 0.05 on [4, 16]; 0, the saturation kink of min(1, e^{-k delta}), on it): nothing on the grid beats it, the grid gets within
    1e-4; the DP's own tables are worth exactly its value under policy evaluation, and the brute
    force scoring those tables agrees."""
    from mmgym.baselines import evaluate_tables, solve_optimal

    env = _env(**DP_CASES[case])
    sol = solve_optimal(env)
    mm, q_max = env.alpha.notches, env.market.max_inventory
    assert sol.exact and sol.value.shape == (env.market.n_steps + 1, 2 * mm + 1, 2 * q_max + 1)
    grid = np.union1d(np.linspace(-0.5, 4.0, 451), np.linspace(4.0, 16.0, 241))
    oracle = brute_force_alpha(env, grid)
    assert np.all(oracle <= sol.value[0] + 1e-9)
    assert np.all(sol.value[0] - oracle < 1e-4)
    np.testing.assert_allclose(evaluate_tables(env, sol.delta_b, sol.delta_a), sol.value, atol=1e-10)
    scored = brute_force_alpha(env, None, lambda t, r, j: (sol.delta_b[t, r, j], sol.delta_a[t, r, j]))
    np.testing.assert_allclose(scored, sol.value[0], atol=1e-10)
    assert sol.v0(env.market.q0) == sol.value[0, mm, q_max + env.market.q0]


def test_static_policy_value_matches_brute_force():
    """A (t, q) table (as_tuned's path) is scored exactly in every notch: policy evaluation equals
    the literal brute force with the policy held fixed."""
    from mmgym.baselines import evaluate_tables, make_baseline

    env = _env(**DP_CASES["small"])
    pol = make_baseline("as", env)
    d_b, d_a, _ = pol.tables()
    val = evaluate_tables(env, d_b, d_a)
    scored = brute_force_alpha(env, None, lambda t, r, j: (d_b[t, j], d_a[t, j]))
    np.testing.assert_allclose(val[0], scored, atol=1e-10)


MC_CASES = {
    "observed": dict(market=dict(max_inventory=5, horizon=0.3, dt=0.01, sigma=1.0),
                     reward=dict(inventory_penalty=0.5, terminal_penalty=0.1),
                     alpha=dict(lambda_buy=60.0, lambda_sell=50.0, notches=4, epsilon=3.0, zeta=20.0)),
    "hidden_hedge": dict(market=dict(max_inventory=4, horizon=0.3, dt=0.01, mid_noise="binomial", A=60.0),
                         reward=dict(inventory_penalty=1.0, terminal_penalty=0.2),
                         action=dict(hedge=True, hedge_max_lots=2), impact=dict(half_spread=0.05, eta=0.05),
                         alpha=dict(notches=3, epsilon=4.0, zeta=30.0, observe_alpha=False)),
}


@pytest.mark.parametrize("case", list(MC_CASES))
def test_alpha_v0_matches_monte_carlo_through_the_kernel(case):
    """The DP's V0 against 4000 episodes of its policy (reading the market's notch) through the
    kernel, within 4 standard errors; as_tuned's exact value too (a static table, every notch);
    glft_drift's (a per-notch table) when alpha is observed; the optimum beats them."""
    from mmgym.baselines import OptimalPolicy, make_baseline, policy_value
    from mmgym.evaluation import run_policy

    env = _env(**MC_CASES[case])
    pol = OptimalPolicy(env)
    assert pol.exact and (pol.label is None) == env.alpha.observe_alpha
    names = ["as_tuned"] + (["glft_drift"] if env.alpha.observe_alpha else [])
    for name, p in [("optimal", pol)] + [(nm, make_baseline(nm, env)) for nm in names]:
        exact = pol.v0 if name == "optimal" else policy_value(env, *p.tables())
        batch = run_policy(env, p, 4000, seed=7, cache=False)
        se = batch.objective.std(ddof=1) / math.sqrt(batch.objective.size)
        assert abs(batch.objective.mean() - exact) < 4 * se, (name, batch.objective.mean(), exact, se)
        assert exact <= pol.v0 + 1e-9


# ------------------------------------------------------------------------------ glft_drift ---
def test_glft_drift_at_zero_epsilon_is_glft():
    """epsilon = 0: glft_drift's tables are glft's in every notch, bit for bit."""
    from mmgym.baselines import make_baseline

    env = _env(market=dict(horizon=0.1, max_inventory=6), alpha=dict(epsilon=0.0, notches=3))
    drift = make_baseline("glft_drift", env).tables()
    plain = make_baseline("glft", env).tables()
    for x, y in zip(drift, plain):
        assert x.shape == (env.market.n_steps, 7, 13)
        for r in range(7):
            np.testing.assert_array_equal(x[:, r], y)


def test_glft_drift_refusals():
    from mmgym.baselines import make_baseline

    with pytest.raises(ConfigError, match="alpha.observe_alpha is false"):
        make_baseline("glft_drift", _env(alpha=dict(observe_alpha=False)))
    with pytest.raises(ConfigError, match="glft_drift: quotes on a drift alpha"):
        make_baseline("glft_drift", load_env_config({}))


def drift_ode_quotes(sigma, A, k, gamma, mu, q_max, tau):
    """GLFT 2013 sec. 5 with drift: v' = (a q^2 - k mu q) v - eta (v_{q-1} + v_{q+1}), v(T) = 1,
    solved by matrix exponential (shifted by the smallest eigenvalue); quotes as without drift."""
    a = k * gamma * sigma ** 2 / 2
    eta = A * (1 + gamma / k) ** (-(1 + k / gamma))
    q = np.arange(-q_max, q_max + 1.0)
    mat = np.diag(a * q ** 2 - k * mu * q) - eta * (np.eye(q.size, k=1) + np.eye(q.size, k=-1))
    lam = np.linalg.eigvalsh(mat)
    lv = np.log(expm(-(mat - lam[0] * np.eye(q.size)) * tau) @ np.ones(q.size))
    base = math.log1p(gamma / k) / gamma
    return q, (lv[:-1] - lv[1:]) / k + base, (lv[1:] - lv[:-1]) / k + base


def test_glft_drift_matches_the_sec5_drift_system():
    """Far from T, the drift system's quotes move with mu as the closed form says: the bid by
    -mu/(gamma sigma^2) w, the ask by +mu/(gamma sigma^2) w (the inventory shift), within 5 % of
    the shift for |q| <= 3; a drift of the wrong sign would miss by 200 %."""
    from mmgym.baselines import make_baseline

    sigma, A, k, gamma = 2.0, 140.0, 1.5, 0.1
    for mu in (-1.0, 0.5, 2.0):
        env = _env(market=dict(sigma=sigma, A=A, k=k, max_inventory=30),
                   alpha=dict(epsilon=abs(mu), notches=1))
        pol = make_baseline("glft_drift", env)
        d_b, d_a, _ = pol.tables()
        r = 2 if mu > 0 else 0
        _, ode_b, ode_a = drift_ode_quotes(sigma, A, k, gamma, mu, 30, 50.0)
        _, ref_b, ref_a = drift_ode_quotes(sigma, A, k, gamma, 0.0, 30, 50.0)
        for qq in range(-3, 4):
            j = qq + 30
            cf_shift_b = d_b[0, r, j] - d_b[0, 1, j]
            cf_shift_a = d_a[0, r, j] - d_a[0, 1, j]
            assert abs((ode_b[j] - ref_b[j]) - cf_shift_b) < 0.05 * abs(cf_shift_b)
            assert abs((ode_a[j - 1] - ref_a[j - 1]) - cf_shift_a) < 0.05 * abs(cf_shift_a)
            assert cf_shift_b * mu < 0 < cf_shift_a * mu


# --------------------------------------------------------------------------------- the CLI ---
def test_evaluate_cli_and_as_tuned_exact(tmp_path):
    """evaluate.py on a tiny alpha config: every default baseline runs, as_tuned is tuned exactly,
    the exact values are reported, optimal is the best exact value."""
    import json

    import yaml

    from mmgym.agents import cli_evaluate

    cfg = {"env": {"id": ID, "market": {"horizon": 0.1, "max_inventory": 4},
                   "alpha": {"notches": 3, "epsilon": 3.0, "zeta": 30.0}}}
    path = tmp_path / "alpha.yaml"
    path.write_text(yaml.safe_dump(cfg))
    out = tmp_path / "out"
    assert cli_evaluate.main([str(path), "--agents", "as", "as_tuned", "glft", "glft_drift", "optimal",
                              "--episodes", "200", "--seed", "0", "--out", str(out)]) == 0
    res = json.loads((out / "results.json").read_text())
    metrics = res["agents"]
    names = ("as", "as_tuned", "glft", "glft_drift", "optimal")
    exact = {name: metrics[name]["objective_exact"] for name in names}
    assert all(v is not None for v in exact.values())
    assert max(exact, key=exact.get) == "optimal"
    assert metrics["as_tuned"]["params"]["tuning"]["method"] == "exact"

"""mmgym/PortfolioMarketMaking-v0 (issue 11): the kernel against a scalar reference on the same
random streams, the simulated covariance, the K = 1 reduction to the intensity market, begv's
closed-form Riccati against scipy's ODE solver and Guéant (2017), the K = 2 DP against brute force
and its Monte Carlo, the refusals, gym.make / make_vec / the SB3 VecEnv."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest

import mmgym  # noqa: F401
from mmgym.config import ConfigError, load_env_config
from mmgym.envs.market import BatchMarket

from .reference_intensity import RefRng

ID = "mmgym/PortfolioMarketMaking-v0"


def _cfg(**sections):
    return load_env_config({"id": ID, **sections})


def _random_sigma(rng, k, singular=False):
    f = max(1, k - 1)
    b = rng.normal(0.0, 1.0, (k, f)).round(3)
    idio = [0.0] * k if singular else rng.uniform(0.3, 1.5, k).round(3).tolist()
    return {"loadings": b.tolist(), "factor_vols": rng.uniform(0.5, 2.0, f).round(3).tolist(),
            "idio_vols": idio}


# ------------------------------------------------------------------ slow reference ---
class RefPortfolio:
    """One env of the portfolio market, stepped in scalar Python (module docstring of
    mmgym/scenarios/portfolio.py, written again): per asset two exponentials (bid, ask), then K
    normals, dS = sqrt(dt) L z with L from numpy's Cholesky (or eigen square root)."""

    def __init__(self, cfg, rng: RefRng):
        pf = cfg.portfolio
        self.k = pf.assets
        self.a = pf.per_asset("A").tolist()
        self.kk = pf.per_asset("k").tolist()
        self.qmax = pf.per_asset("max_inventory").tolist()
        self.s0 = pf.per_asset("s0").tolist()
        sig = pf.sigma_matrix()
        try:
            chol = np.linalg.cholesky(sig)
        except np.linalg.LinAlgError:
            lam, v = np.linalg.eigh(sig)
            chol = (v * np.sqrt(np.clip(lam, 0, None))) @ v.T
        self.l = (chol * math.sqrt(cfg.market.dt)).tolist()
        self.p = sig if pf.penalty == "portfolio" else np.diag(np.diag(sig))
        self.sd = np.sqrt(np.diag(sig) * cfg.market.dt).tolist()
        self.dt = cfg.market.dt
        self.decay = 1.0 - 0.5 ** (1.0 / cfg.observation.vol_halflife)
        self.n = cfg.market.n_steps
        self.phi = cfg.reward.inventory_penalty
        self.alpha = cfg.reward.terminal_penalty
        self.fee = cfg.reward.maker_fee
        self.action = cfg.action
        self.sig2 = np.diag(sig).tolist()
        self.rng = rng
        self.reset()

    def reset(self):
        self.mid = list(self.s0)
        self.q = [0] * self.k
        self.cash = 0.0
        self.t = 0
        self.ret = [0.0] * self.k
        self.var = [sd * sd for sd in self.sd]
        self.fills = [(0, 0)] * self.k

    def obs(self):
        out = []
        for a in range(self.k):
            block = [self.q[a] / self.qmax[a], min(10.0, math.sqrt(self.var[a]) / self.sd[a]),
                     float(self.fills[a][0]), float(self.fills[a][1]),
                     max(-10.0, min(10.0, self.ret[a] / self.sd[a]))]
            if a == 0:
                block.insert(1, (self.n - self.t) / self.n)
            out += block
        return out

    def step(self, action, raw):
        k = self.k
        w0 = self.cash + sum(self.q[a] * self.mid[a] for a in range(k))
        for a in range(k):
            db, da = action[a], action[k + a]
            ac = self.action
            clip = lambda x: min(1.0, max(-1.0, x))  # noqa: E731
            if not raw and ac.mode == "offsets":
                db = ac.offset_min + (clip(db) + 1.0) / 2.0 * (ac.offset_max - ac.offset_min)
                da = ac.offset_min + (clip(da) + 1.0) / 2.0 * (ac.offset_max - ac.offset_min)
            elif not raw:  # as_hybrid: AS 2008 eqs. (29)-(30) with asset a's sigma^2 and k
                lg0, lg1 = math.log(ac.gamma_min), math.log(ac.gamma_max)
                g = math.exp(lg0 + (clip(db) + 1.0) / 2.0 * (lg1 - lg0))
                skew = clip(da) * ac.skew_max
                tau = (self.n - self.t) * self.dt
                r_shift = self.q[a] * g * self.sig2[a] * tau - skew
                half = 0.5 * g * self.sig2[a] * tau + math.log(1.0 + g / self.kk[a]) / g
                db, da = r_shift + half, -r_shift + half
                if ac.spread:
                    extra = ac.spread_min + (clip(action[2 * k + a]) + 1.0) / 2.0 * (ac.spread_max - ac.spread_min)
                    db, da = db + extra, da + extra
            eb, ea = self.rng.exponential(), self.rng.exponential()
            ln_c = math.log(self.a[a] * self.dt)
            fb = int(self.q[a] + 1 <= self.qmax[a] and eb > self.kk[a] * db - ln_c)
            fa = int(self.q[a] - 1 >= -self.qmax[a] and ea > self.kk[a] * da - ln_c)
            self.cash += fa * (self.mid[a] + da) - fb * (self.mid[a] - db) - self.fee * (fb + fa)
            self.q[a] += fb - fa
            self.fills[a] = (fb, fa)
        z = [self.rng.normal() for _ in range(k)]
        for a in range(k):
            self.ret[a] = sum(self.l[a][b] * z[b] for b in range(k))
            self.mid[a] += self.ret[a]
            self.var[a] += self.decay * (self.ret[a] ** 2 - self.var[a])
        w1 = self.cash + sum(self.q[a] * self.mid[a] for a in range(k))
        risk = sum(self.q[a] * self.p[a, b] * self.q[b] for a in range(k) for b in range(k))
        self.t += 1
        done = self.t >= self.n
        r = w1 - w0 - self.phi * risk * self.dt - (self.alpha * risk if done else 0.0)
        final = self.obs()
        if done:
            self.reset()
        return r, done, final


@pytest.mark.parametrize("case", range(6))
def test_kernel_matches_scalar_reference(case):
    """6 random configs (K = 1..4, factor models, a singular Sigma, both penalties, offsets, raw
    depths, as_hybrid with and without the extra half-spread, fees) x 3 envs x 45 steps with a 20-step
    horizon (autoresets included): rewards, observations (final ones on the last step), mids,
    inventories and cash match the reference."""
    rng = np.random.default_rng(100 + case)
    k = 1 + case % 4
    raw = case in (1, 3)
    mode = "as_hybrid" if case in (2, 4) else "offsets"
    cfg = _cfg(market={"horizon": 0.1, "dt": 0.005},
               reward={"inventory_penalty": float(rng.uniform(0.01, 0.5)),
                       "terminal_penalty": float(rng.uniform(0.0, 0.5)),
                       "maker_fee": 0.01 if case == 3 else 0.0},
               action={"mode": mode, "spread": case == 4},
               portfolio={"assets": k, "A": rng.uniform(50, 200, k).round(1).tolist(),
                          "k": rng.uniform(0.5, 3.0, k).round(2).tolist(),
                          "max_inventory": rng.integers(1, 4, k).tolist(),
                          "s0": rng.uniform(50, 150, k).round(1).tolist(),
                          "penalty": "per_asset" if case == 2 else "portfolio",
                          **_random_sigma(rng, k, singular=case == 5)})
    market = BatchMarket(cfg, 3, raw_depths=raw)
    market.seed_rows([case * 10 + i for i in range(3)])
    refs = [RefPortfolio(cfg, RefRng(int(market.rng[i, 0]), int(market.rng[i, 1]))) for i in range(3)]
    obs = market.reset()
    np.testing.assert_allclose(obs, [r.obs() for r in refs], rtol=0, atol=1e-6)
    for _ in range(45):
        lo, hi = (0.0, 1.2) if raw else (-1.1, 1.1)
        actions = rng.uniform(lo, hi, size=(3, market.action_dim))
        b = market.step(actions)
        for i, ref in enumerate(refs):
            r, done, final = ref.step(actions[i].tolist(), raw)
            assert b.reward[i] == pytest.approx(r, rel=1e-10, abs=1e-9)
            assert bool(b.done[i]) == done
            if done:
                np.testing.assert_allclose(b.final_obs[i], final, atol=1e-5)
            np.testing.assert_allclose(b.obs[i], ref.obs(), atol=1e-5)
            np.testing.assert_allclose(market.mid[i], ref.mid, rtol=1e-12)
            np.testing.assert_array_equal(market.inventory[i], ref.q)
            assert market.cash[i] == pytest.approx(ref.cash, rel=1e-12, abs=1e-9)
        terms = sum(b.terms[:, j] for j in range(b.terms.shape[1]))
        np.testing.assert_allclose(terms, b.reward, atol=1e-9)


@pytest.mark.parametrize("singular", [False, True])
def test_mid_moves_have_the_configured_covariance(singular):
    """The sample covariance of dS / sqrt(dt) over 2000 envs x 60 steps is Sigma within 4 standard
    errors per entry, se(S_ij) = sqrt((Sigma_ii Sigma_jj + Sigma_ij^2) / n) (gaussian moments)."""
    rng = np.random.default_rng(7)
    cfg = _cfg(market={"horizon": 1.0}, portfolio={"assets": 3, **_random_sigma(rng, 3, singular)})  # no reset within
    sig = cfg.portfolio.sigma_matrix()
    market = BatchMarket(cfg, 2000, raw_depths=True)
    market.seed_rows(list(range(2000)))
    market.reset()
    moves = []
    for _ in range(60):
        market.step(np.full((2000, 6), 50.0))  # deep quotes: no fills (the mids do not care anyway)
        moves.append(market.field("mid_ret").copy())
    x = np.concatenate(moves) / math.sqrt(cfg.market.dt)
    n = x.shape[0]
    s = x.T @ x / n
    se = np.sqrt((np.outer(np.diag(sig), np.diag(sig)) + sig**2) / n)
    assert np.all(np.abs(s - sig) < 4 * se), (s, sig)


def test_k1_is_the_intensity_market():
    """K = 1 with phi_p = phi / sigma^2 (and alpha likewise) is mmgym/MarketMaking-v0 on the same
    seeds and raw depths: the same rewards, mids, inventories (the kernels draw the same variates in
    the same order) and the same observations (asset 0's block is the intensity market's)."""
    base = load_env_config({"market": {"sigma": 2.0, "A": 140.0, "k": 1.5, "max_inventory": 3, "horizon": 0.25},
                            "reward": {"inventory_penalty": 0.2, "terminal_penalty": 0.5}})
    port = _cfg(market={"horizon": 0.25}, reward={"inventory_penalty": 0.05, "terminal_penalty": 0.125},
                portfolio={"assets": 1, "covariance": [[4.0]], "max_inventory": 3})
    m1, m2 = BatchMarket(base, 4, raw_depths=True), BatchMarket(port, 4, raw_depths=True)
    for m in (m1, m2):
        m.seed_rows([11, 12, 13, 14])
        m.reset()
    rng = np.random.default_rng(0)
    for _ in range(120):
        a = rng.uniform(0.0, 1.5, (4, 2))
        b1 = m1.step(a)
        r1 = b1.reward.copy()
        b2 = m2.step(a)
        np.testing.assert_allclose(b2.reward, r1, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(m2.mid, m1.mid, rtol=1e-14)
        np.testing.assert_allclose(b2.obs, b1.obs, atol=1e-6)
        np.testing.assert_array_equal(m2.inventory, m1.inventory)


def test_k1_as_hybrid_is_the_intensity_markets():
    """K = 1, ``action.mode: as_hybrid``: the same quotes, rewards and observations as the intensity
    market's as_hybrid action on the same seeds and actions (its vectorised exp/log pre-pass against
    numpy's: equal to ~1e-12)."""
    base = load_env_config({"market": {"sigma": 2.0, "max_inventory": 3, "horizon": 0.25},
                            "reward": {"inventory_penalty": 0.2}, "action": {"mode": "as_hybrid"}})
    port = _cfg(market={"horizon": 0.25}, reward={"inventory_penalty": 0.05},
                action={"mode": "as_hybrid"}, portfolio={"assets": 1, "covariance": [[4.0]], "max_inventory": 3})
    m1, m2 = BatchMarket(base, 4), BatchMarket(port, 4)
    for m in (m1, m2):
        m.seed_rows([1, 2, 3, 4])
        m.reset()
    rng = np.random.default_rng(1)
    for _ in range(120):
        a = rng.uniform(-1, 1, (4, 2))  # float64: the kernels compiled for the raw-depth test serve
        b1 = m1.step(a)
        r1, d1 = b1.reward.copy(), b1.aux[:, m1.aux_names.index("depth_bid")].copy()
        b2 = m2.step(a)
        np.testing.assert_allclose(b2.aux[:, m2.aux_names.index("depth_bid_0")], d1, rtol=1e-10)
        np.testing.assert_allclose(b2.reward, r1, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(b2.obs, b1.obs, atol=1e-6)


# ----------------------------------------------------------------------------- begv ---
def test_begv_riccati_matches_ode_solver():
    """begv's closed-form A(t) (tanh of a matrix, with the terminal condition A(T) = alpha P)
    against scipy's solve_ivp of A' = 2 A D_+ A - (gamma/2) P, backwards from T."""
    from scipy.integrate import solve_ivp

    from mmgym.baselines.portfolio import begv_A

    rng = np.random.default_rng(3)
    k = 3
    b = rng.normal(size=(k, 2))
    p = b @ b.T + np.diag(rng.uniform(0.1, 1.0, k))
    d_plus = rng.uniform(20.0, 200.0, k)
    gamma = 0.3
    for alpha in (0.0, 0.02):
        def rhs(t, y):
            a = y.reshape(k, k)
            return (2.0 * a @ np.diag(d_plus) @ a - 0.5 * gamma * p).ravel()

        big_t = 2.0
        taus = np.array([0.0, 0.1, 0.5, 1.3, 2.0])
        sol = solve_ivp(rhs, (big_t, 0.0), (alpha * p).ravel(), t_eval=big_t - taus, rtol=1e-11, atol=1e-13)
        closed = begv_A(taus, d_plus, p, gamma, alpha)
        for j in range(len(taus)):
            np.testing.assert_allclose(closed[j], sol.y[:, j].reshape(k, k), rtol=1e-7, atol=1e-10)


def test_begv_single_asset_is_gueant_2017():
    """K = 1, far from the horizon: begv's quotes are Guéant (2017) eq. (4.6) at Delta = 1, xi = 0,
    delta_b = 1/k + (2q + 1)/2 sqrt(gamma sigma^2 e / (2 A k))."""
    from mmgym.baselines.portfolio import BEGV

    cfg = _cfg(market={"horizon": 50.0, "dt": 0.01}, reward={"inventory_penalty": 0.05},
               portfolio={"assets": 1, "covariance": [[4.0]], "A": 140.0, "k": 1.5, "max_inventory": 5})
    pol = BEGV(cfg)
    q = np.arange(-4, 5)[:, None]
    d_b, d_a = pol.depths(np.zeros(9, dtype=np.int64), q)
    w = math.sqrt(0.1 * 4.0 * math.e / (2 * 140.0 * 1.5))
    np.testing.assert_allclose(d_b[:, 0], 1 / 1.5 + (2 * q[:, 0] + 1) / 2 * w, rtol=1e-10)
    np.testing.assert_allclose(d_a[:, 0], 1 / 1.5 - (2 * q[:, 0] - 1) / 2 * w, rtol=1e-10)


def test_begv_skew_sees_the_whole_inventory():
    """With rho = 0.8 a long position in asset 0 skews asset 1's quotes too (the naive per-asset
    rule does not); at rho = 0 it does not."""
    from mmgym.baselines import make_baseline

    for cov, moved in (([[4.0, 3.2], [3.2, 4.0]], True), ([[4.0, 0.0], [0.0, 4.0]], False)):
        cfg = _cfg(reward={"inventory_penalty": 0.05}, portfolio={"covariance": cov})
        begv = make_baseline("begv", cfg)
        naive = make_baseline("as", cfg)
        q = np.array([[0, 0], [3, 0]])
        d_b, d_a = begv.depths(np.zeros(2, dtype=np.int64), q)
        assert (abs(d_b[1, 1] - d_b[0, 1]) > 1e-3) == moved
        n_b, _ = naive.depths(np.zeros(2, dtype=np.int64), q)
        assert n_b[1, 1] == n_b[0, 1]


# ------------------------------------------------------------------------ K = 2 DP ---
def _brute_step(wn, c, k, fee, opens, n_grid=24):
    """max over a grid of the four fill probabilities, then a finer grid around the best point
    (three rounds): the one-step value by brute force (the 16 outcomes written out)."""
    from itertools import product

    def value(p):
        pb1, pa1, pb2, pa2 = p
        delta = [(math.log(c[j // 2]) - np.log(np.maximum(p[j], 1e-300))) / k[j // 2] for j in range(4)]
        v = 0.0
        for fb1, fa1, fb2, fa2 in product((0, 1), repeat=4):
            pr = ((pb1 if fb1 else 1 - pb1) * (pa1 if fa1 else 1 - pa1)
                  * (pb2 if fb2 else 1 - pb2) * (pa2 if fa2 else 1 - pa2))
            v = v + pr * wn[1 + fb1 - fa1][1 + fb2 - fa2]
        return v + sum(np.where(p[j] > 0, p[j] * (delta[j] - fee), 0.0) for j in range(4))

    cap = [1.0 if opens[j] else 0.0 for j in range(4)]  # p = 1 at the saturation depth ln(c)/k (< 0 if c < 1)
    lo = [0.0] * 4
    hi = list(cap)
    best, best_p = -np.inf, None
    for _ in range(4):
        axes = [np.linspace(lo[j], hi[j], n_grid) if hi[j] > lo[j] else np.array([lo[j]]) for j in range(4)]
        grids = np.meshgrid(*axes, indexing="ij")
        v = value(grids)
        i = np.unravel_index(np.argmax(v), v.shape)
        if v[i] > best:
            best = float(v[i])
            best_p = [float(g[i]) for g in grids]
        for j in range(4):
            step = (hi[j] - lo[j]) / (n_grid - 1) if hi[j] > lo[j] else 0.0
            lo[j], hi[j] = max(0.0, best_p[j] - 2 * step), min(cap[j], best_p[j] + 2 * step)
    return best


def test_dp_step_is_the_global_maximum_on_random_continuations():
    """The per-state maximisation (coordinate ascent from the 16 corners) against a brute-force
    search over the four fill probabilities, on random continuation values W around a state,
    including strongly convex and concave ones (several local maxima): never below it, and equal
    to it within the grid's resolution."""
    from mmgym.baselines.portfolio import _dp_step

    rng = np.random.default_rng(5)
    c = np.array([0.7, 1.4])  # asset 1 below saturation, asset 2 saturating at depth ln(1.4)/k
    k = np.array([1.5, 0.8])
    for trial in range(8):
        curv = rng.choice([-3.0, -0.5, 0.5, 3.0], size=3)
        g1, g2 = np.meshgrid(np.arange(-1, 2), np.arange(-1, 2), indexing="ij")
        w = curv[0] * g1**2 + curv[1] * g2**2 + curv[2] * g1 * g2 + rng.normal(0, 0.3, (3, 3))
        # embed in a 5x5 grid so that the centre state has all four sides open
        big = np.zeros((5, 5))
        big[1:4, 1:4] = w
        v = np.zeros((5, 5))
        d = np.zeros((4, 5, 5))
        p = np.zeros((4, 5, 5))
        _dp_step(big, c, k, 0.0, np.array([2, 2]), 1000, 1e-13, v, d, p)
        brute = _brute_step(w, c, k, 0.0, [True] * 4)
        assert v[2, 2] >= brute - 1e-9, (trial, v[2, 2], brute)
        assert v[2, 2] - brute < 2e-4 * max(1.0, abs(brute)), (trial, v[2, 2], brute)


def test_dp_against_brute_force_backward_induction():
    """The whole DP on a tiny market (|q_a| <= 1, 3 steps, rho = 0.8, terminal penalty) against a
    backward induction whose every per-state max is the brute-force search, and the exact policy
    evaluation of the DP's own tables against its V (the same numbers by the other recursion)."""
    from mmgym.baselines.portfolio import PortfolioOptimal, evaluate_portfolio_tables

    cfg = _cfg(market={"horizon": 0.015, "dt": 0.005}, reward={"inventory_penalty": 0.5, "terminal_penalty": 0.3},
               portfolio={"max_inventory": 1, "A": [140.0, 100.0], "k": [1.5, 1.0]})
    opt = PortfolioOptimal(cfg)
    sig = cfg.portfolio.sigma_matrix()
    c = np.array([140.0, 100.0]) * 0.005
    k = np.array([1.5, 1.0])
    v = np.zeros((3, 3))
    for t in (2, 1, 0):
        risk = np.array([[np.array([a, b]) @ sig @ np.array([a, b]) for b in (-1, 0, 1)] for a in (-1, 0, 1)])
        w = v - 0.5 * risk * 0.005 - (0.3 * risk if t == 2 else 0.0)
        new = np.zeros((3, 3))
        for i1 in range(3):
            for i2 in range(3):
                wn = [[w[i1 + a, i2 + b] if 0 <= i1 + a < 3 and 0 <= i2 + b < 3 else 0.0 for b in (-1, 0, 1)]
                      for a in (-1, 0, 1)]
                opens = [i1 < 2, i1 > 0, i2 < 2, i2 > 0]
                new[i1, i2] = _brute_step(wn, c, k, 0.0, opens)
        v = new
        np.testing.assert_allclose(opt.value[t], v, atol=2e-4)
        assert np.all(opt.value[t] >= v - 1e-9)
    d_b, d_a = opt.depth_tables()
    assert evaluate_portfolio_tables(cfg, d_b, d_a) == pytest.approx(opt.v0, rel=1e-12)


@pytest.mark.parametrize("rho, penalty", [(0.0, "portfolio"), (0.8, "per_asset")])
def test_dp_separates_without_cross_risk(rho, penalty):
    """Sigma diagonal, or any Sigma with ``penalty: per_asset`` (the risk-neutral objective sees the
    correlation only through the penalty): the K = 2 problem is two independent intensity markets
    (phi_1 = phi sigma_a^2), so V_0 is the sum of the single-asset DP's V_0
    (mmgym.baselines.optimal) and the quotes are the single-asset optimum's at every (t, q1, q2)."""
    from mmgym.baselines import make_baseline
    from mmgym.baselines.portfolio import PortfolioOptimal, asset_config

    c12 = rho * 2.0 * 1.5
    cfg = _cfg(market={"horizon": 0.25}, reward={"inventory_penalty": 0.05, "terminal_penalty": 0.01},
               portfolio={"covariance": [[4.0, c12], [c12, 2.25]], "A": [140.0, 90.0], "k": [1.5, 1.1],
                          "max_inventory": [4, 3], "penalty": penalty})
    opt = PortfolioOptimal(cfg)
    singles = [make_baseline("optimal", asset_config(cfg, a)) for a in range(2)]
    assert opt.v0 == pytest.approx(singles[0].v0 + singles[1].v0, rel=1e-10)
    steps = np.arange(cfg.market.n_steps)
    for q1 in range(-3, 4):
        for q2 in range(-2, 3):
            q = np.tile([q1, q2], (len(steps), 1))
            d_b, d_a = opt.depths(steps, q)
            for a, qa in ((0, q1), (1, q2)):
                sb, sa = singles[a].depths(steps, np.full(len(steps), qa))
                if qa < singles[a].mp.max_inventory:
                    np.testing.assert_allclose(d_b[:, a], sb, rtol=1e-8, atol=1e-10)
                if qa > -singles[a].mp.max_inventory:
                    np.testing.assert_allclose(d_a[:, a], sa, rtol=1e-8, atol=1e-10)


def test_monte_carlo_matches_exact_values():
    """optimal's Monte Carlo objective is within 4 SE of V_0; begv's and per-asset as's Monte Carlo
    within 4 SE of their exact policy values (5000 episodes, rho = 0.8)."""
    from mmgym.evaluation import run_evaluation

    cfg = _cfg(market={"horizon": 0.25}, reward={"inventory_penalty": 0.05, "terminal_penalty": 0.01},
               portfolio={"max_inventory": 5})
    res = run_evaluation(cfg, {"as": "as", "begv": "begv", "optimal": "optimal"}, episodes=5000, seed=0)
    v0 = res.metadata["optimal_v0"]
    assert res.metadata["optimal_exact"] is True
    for name in ("as", "begv", "optimal"):
        m = res.metrics[name]
        assert abs(m["objective_mean"] - m["objective_exact"]) < 4 * m["objective_se"], (name, m)
        assert m["objective_exact"] <= v0 + 1e-9
    assert res.metrics["optimal"]["objective_exact"] == pytest.approx(v0)


# ------------------------------------------------------------------ config, envs ---
@pytest.mark.parametrize("section, message", [
    ({"portfolio": {"A": [1.0, 2.0, 3.0]}}, "portfolio: A has 3 entries, expected assets = 2"),
    ({"portfolio": {"covariance": [[1.0, 2.0], [2.0, 1.0]]}}, "covariance is not positive semi-definite"),
    ({"portfolio": {"k": -1}}, "k = -1 must be > 0"),
    ({"portfolio": {"loadings": [[1.0], [1.0]], "covariance": [[1.0, 0.0], [0.0, 1.0]]}}, "not both"),
    ({"portfolio": {"loadings": [[1.0], [1.0]], "factor_vols": [1.0, 2.0]}}, "factor_vols has 2 entries"),
])
def test_bad_config_is_one_line(section, message):
    with pytest.raises(ConfigError) as exc:
        _cfg(**section)
    assert message in str(exc.value) and "\n" not in str(exc.value)


@pytest.mark.parametrize("section, key", [
    ({"action": {"quote_size": 2}}, "action.quote_size"),
    ({"impact": {"eta": 0.1}}, "impact.eta"),
    ({"market": {"fill_rule": "poisson"}}, "market.fill_rule"),
    ({"market": {"sigma": 3.0}}, "market.sigma"),
    ({"market": {"max_inventory": 5}}, "market.max_inventory"),
])
def test_unsupported_options_are_refused(section, key):
    with pytest.raises(ConfigError) as exc:
        BatchMarket(_cfg(**section), 1)
    assert str(exc.value).startswith(key) and "\n" not in str(exc.value)


def test_single_asset_baselines_refuse_nothing_silently():
    """begv on a single-asset env is refused in one line; optimal needs K = 2."""
    from mmgym.baselines import make_baseline

    with pytest.raises(ConfigError, match="begv"):
        make_baseline("begv", load_env_config({}))
    with pytest.raises(ConfigError, match="assets = 2"):
        make_baseline("optimal", _cfg(portfolio={"assets": 3}))


def test_gym_make_checkers_make_vec_and_sb3():
    from gymnasium.utils.env_checker import check_env
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    env = gym.make(ID, market={"horizon": 0.1}, portfolio={"assets": 3, "covariance": None})
    assert env.observation_space.shape == (16,) and env.action_space.shape == (6,)
    check_env(env.unwrapped, skip_render_check=True)
    sb3_check_env(gym.make(ID).unwrapped, warn=True)
    venv = gym.make_vec(ID, num_envs=4, vectorization_mode="vector_entry_point", market={"horizon": 0.1})
    obs, _ = venv.reset(seed=0)
    assert obs.shape == (4, 11)
    ended = np.zeros(4, dtype=bool)
    for _ in range(25):
        obs, _, term, _, info = venv.step(venv.action_space.sample())
        ended |= term
    assert ended.all()
    assert "fill_bid_1" in info and "portfolio_variance" in info
    from mmgym.agents import MMVecEnv

    sb = MMVecEnv(load_env_config({"id": ID, "market": {"horizon": 0.1}}), num_envs=3, seed=0)
    assert sb.reset().shape == (3, 11)
    sb.step(np.zeros((3, 4), dtype=np.float32))


def test_same_seed_same_episode_and_vector_equals_singles():
    a = gym.make(ID)
    b = gym.make_vec(ID, num_envs=2, vectorization_mode="vector_entry_point")
    oa, _ = a.reset(seed=5)
    ob, _ = b.reset(seed=4)
    np.testing.assert_array_equal(oa, ob[1])
    rng = np.random.default_rng(0)
    for _ in range(50):
        act = rng.uniform(-1, 1, (2, 4)).astype(np.float32)
        oa, ra, *_ = a.step(act[1])
        ob, rb, *_ = b.step(act)
        assert ra == rb[1]
        np.testing.assert_array_equal(oa, ob[1])


# ------------------------------------------------------ evaluation: the K-asset path ---
def _path_case(case):
    """(env config, policy, raw depths) of a K-asset evaluation-path case, 20 steps: portfolio2
    (Sigma given directly, offsets, a fixed state-dependent obs policy), ppo_portfolio8 (two factors,
    portfolio_hybrid, the same kind of policy), portfolio8 with its factor instrument (begv_factor_hedge
    at phi = 1, so that it trades the instrument)."""
    from pathlib import Path

    from mmgym.baselines import make_baseline
    from mmgym.config import load_config

    root = Path(__file__).resolve().parents[1] / "configs"
    name = {"p2": "portfolio2.yaml", "p8_hybrid": "ppo_portfolio8.yaml", "p8_factor": "portfolio8.yaml"}[case]
    cfg = load_config(str(root / name))
    data = cfg.env.model_dump()
    data["market"]["horizon"] = 0.1
    if case == "p8_factor":
        data["reward"]["inventory_penalty"] = 1.0
    env = load_env_config(data)
    if case == "p8_factor":
        return env, make_baseline("begv_factor_hedge", env, cfg.baselines), True
    probe = BatchMarket(env, 1)
    w = np.random.default_rng(3).normal(0.0, 1.0, (probe.obs_dim, probe.action_dim))

    def policy(obs):
        return np.tanh(np.asarray(obs, dtype=np.float64) @ w)

    return env, policy, False


@pytest.mark.parametrize("case", ["p2", "p8_hybrid", "p8_factor"])
def test_evaluation_path_is_the_env_stepped_by_hand(case):
    """run_policy's K-asset record (3 chunks: 7 episodes, 3 rows at a time) against the market stepped
    by hand (one batch of 7 rows, the same seeds): episode 0's per-asset inventories are the state's
    after each step (the last step, whose row resets, through the ledger's risk-equivalent final
    inventory sqrt(x^T P x), P = Sigma), its exposures are B^T x with B the config's loadings (or
    Sigma's top eigenvector, up to sign) and x = q + q_e w with a factor instrument; exposure 0 is the
    env's own ``factor_exposure``; the means over episodes of |e_f| are those of the stepped rows."""
    from mmgym.evaluation import run_policy
    from mmgym.scenarios.portfolio import factor_instrument

    env, policy, raw = _path_case(case)
    eps, seed, n = 7, 100000, env.market.n_steps
    batch = run_policy(env, policy, eps, seed=seed, num_envs=3, cache=False)
    k = env.portfolio.assets
    if env.portfolio.loadings is not None:
        b = np.asarray(env.portfolio.loadings, dtype=np.float64)
    else:
        lam, v = np.linalg.eigh(env.portfolio.sigma_matrix())
        b = v[:, [int(np.argmax(lam))]]
    fi = factor_instrument(env)
    m = BatchMarket(env, eps, raw_depths=raw)
    m.seed_rows([seed + e for e in range(eps)])
    obs = m.reset()
    act = np.zeros((eps, m.action_dim))
    col = {c: j for j, c in enumerate(m.aux_names)}
    p = batch.path
    assert p["inventory"].shape == (n, k) and p["factor_exposure"].shape == (n, b.shape[1])
    abs_sum = np.zeros((eps, b.shape[1]))
    for t in range(n):
        if raw:
            policy.act(m, out=act)
        else:
            act[:] = policy(obs)
        buf = m.step(act)
        obs = buf.obs
        x_aux = buf.aux[:, [col[f"inventory_{a}"] for a in range(k)]]
        if fi is not None:
            x_aux = x_aux + buf.aux[:, [col["factor_position"]]] * fi.w
        if t < n - 1:  # the state after the step (the last step's row resets)
            np.testing.assert_array_equal(p["inventory"][t], m.inventory[0])
            x = m.inventory[0] + (m.field("factor_position")[0] * fi.w if fi is not None else 0.0)
            np.testing.assert_allclose(x, x_aux[0], atol=1e-12)
        else:
            assert buf.done.all()
            x = p["inventory"][t] + (buf.aux[0, col["factor_position"]] * fi.w if fi is not None else 0.0)
            sig = env.portfolio.sigma_matrix()
            assert math.sqrt(x @ sig @ x) == pytest.approx(batch.final_inventory[0], rel=1e-9, abs=1e-9)
        e = p["factor_exposure"][t]
        np.testing.assert_allclose(np.abs(e), np.abs(x @ b), atol=1e-9)  # PC1: up to its sign
        assert e[0] == pytest.approx(buf.aux[0, col["factor_exposure"]], abs=1e-9)
        ae = np.abs(x_aux @ b)
        abs_sum += ae
        np.testing.assert_allclose(batch.factor_exposure_t[t], ae.mean(axis=0), atol=1e-9)
    np.testing.assert_allclose(batch.abs_factor_exposure, abs_sum / n, atol=1e-9)
    np.testing.assert_allclose(np.abs(batch.final_factor_exposure), np.abs(x_aux @ b), atol=1e-9)
    assert np.any(p["inventory"] != 0)
    if fi is not None:
        assert np.any(m.field("factor_position") != 0) or np.any(buf.aux[:, col["factor_position"]] != 0)


def test_factor_matrix_is_the_loadings_or_the_first_principal_component():
    """factor_matrix: the config's loadings B; with Sigma given directly its top eigenvector (F = 1);
    column 0 is factor_loadings' b_1 either way (the env's factor_exposure)."""
    from mmgym.scenarios.portfolio import factor_loadings, factor_matrix

    rng = np.random.default_rng(1)
    fm = _cfg(portfolio={"assets": 4, **_random_sigma(rng, 4)}).portfolio
    b, where = factor_matrix(fm)
    np.testing.assert_array_equal(b, np.asarray(fm.loadings))
    np.testing.assert_array_equal(b[:, 0], factor_loadings(fm)[0])
    cov = _cfg(portfolio={"assets": 2, "covariance": [[4.0, 3.2], [3.2, 4.0]]}).portfolio
    b, where = factor_matrix(cov)
    assert b.shape == (2, 1) and where == "top eigenvector of Sigma"
    np.testing.assert_allclose(b[:, 0], np.array([1.0, 1.0]) / math.sqrt(2.0), atol=1e-12)

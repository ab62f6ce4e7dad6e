"""``action.mode: portfolio_hybrid`` of mmgym/PortfolioMarketMaking-v0 (issue 11's glass box): at
multipliers 1 and skews 0 the quotes are begv's; at any multipliers they are begv's rule for the
penalty B S Sigma_f S B^T + m_idio diag(sigma_eps^2) (built here directly, solved by the baseline's
numpy begv_A) plus the skews; the in-kernel Jacobi eigendecomposition against numpy; the choices
in the aux columns; the env through gym.make, make_vec and the SB3 VecEnv."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

import mmgym  # noqa: F401
from mmgym.baselines import make_baseline
from mmgym.baselines.portfolio import begv_A
from mmgym.config import ConfigError, load_config, load_env_config
from mmgym.envs.market import BatchMarket

from .portfolio_helpers import seeded_market

ID = "mmgym/PortfolioMarketMaking-v0"
ROOT = Path(__file__).resolve().parents[1]


def _hybrid(name="portfolio8", horizon=None, **action):
    data = load_config(str(ROOT / "configs" / f"{name}.yaml")).env.model_dump()
    data["action"].update(mode="portfolio_hybrid", **action)
    if horizon is not None:
        data["market"]["horizon"] = horizon
    return load_env_config(data)


def _depths(b, col, k):
    return (b.aux[:, [col[f"depth_bid_{a}"] for a in range(k)]], b.aux[:, [col[f"depth_ask_{a}"] for a in range(k)]])


@pytest.mark.parametrize("name", ["portfolio8", "portfolio2"])
def test_unit_multipliers_and_zero_skews_are_begv(name):
    """Action 0 (m = 1, skew 0) on portfolio8 (factor model, factor instrument, K = 8) and
    portfolio2 (covariance given: one principal factor + residual): every quoted depth equals begv's
    at the same (t, q) to 1e-12, over 300 envs x 60 steps."""
    env = _hybrid(name, horizon=0.3)
    k = env.portfolio.assets
    begv = make_baseline("begv", env)
    n = 300
    m, col, _, act = seeded_market(env, n)
    checked = 0
    for _ in range(m.n_steps):
        want_b, want_a = begv.depths(m.step_count.copy(), m.inventory.copy())
        b = m.step(act)
        got_b, got_a = _depths(b, col, k)
        for got, want in ((got_b, want_b), (got_a, want_a)):
            ok = ~np.isnan(got)
            np.testing.assert_allclose(got[ok], want[ok], rtol=0, atol=1e-12)
            checked += ok.sum()
        assert (b.aux[:, [col[c] for c in m.aux_names if c.startswith("risk_mult_")]] == 1.0).all()
        assert (b.aux[:, [col[f"skew_{a}"] for a in range(k)]] == 0.0).all()
    assert checked > n * m.n_steps * k  # most sides quote


def test_multipliers_scale_the_factor_penalty():
    """Random actions on portfolio8 (120 envs x 40 steps, each row's multipliers and skews redrawn
    every 5 steps, so the per-row cache is both hit and refreshed): each quoted depth is
    1/k + A_aa + 2 (A x)_a -+ skew_a with A = begv_A(tau, D_+, P_m, 2 phi, alpha), P_m = B S Sigma_f
    S B^T + m_idio diag(sigma_eps^2), S = diag(sqrt(m_f)), m = 10^a, skew = a skew_max (all built
    here), x the inventory (no factor orders)."""
    env = _hybrid(horizon=0.2)
    pf = env.portfolio
    k = pf.assets
    bl = np.asarray(pf.loadings)
    sf = np.diag(np.asarray(pf.factor_vols) ** 2)
    eps2 = np.full(k, pf.idio_vols ** 2)
    kk = pf.per_asset("k")
    d_plus = 2.0 * kk * pf.per_asset("A") / math.e
    gamma, alpha = 2 * env.reward.inventory_penalty, env.reward.terminal_penalty
    n = 120
    m, col, _, act = seeded_market(env, n)
    lay = m.action_layout
    rng = np.random.default_rng(11)
    for t in range(m.n_steps):
        if t % 5 == 0:
            act[:, lay.bid] = rng.uniform(-1.2, 1.2, (n, 3))  # beyond +-1: clipped
            act[:, lay.ask] = rng.uniform(-1, 1, (n, k))
        q = m.inventory.astype(float)
        tau = (m.n_steps - t) * env.market.dt
        b = m.step(act)
        got_b, got_a = _depths(b, col, k)
        mult = 10.0 ** np.clip(act[:, lay.bid], -1, 1)
        skew = act[:, lay.ask] * env.action.skew_max
        np.testing.assert_allclose(b.aux[:, [col["risk_mult_factor_0"], col["risk_mult_factor_1"],
                                             col["risk_mult_idio"]]], mult, rtol=1e-14)
        np.testing.assert_allclose(b.aux[:, [col[f"skew_{a}"] for a in range(k)]], skew, rtol=1e-14)
        for i in range(0, n, 7):
            s = np.diag(np.sqrt(mult[i, :2]))
            p_m = bl @ s @ sf @ s @ bl.T + mult[i, 2] * np.diag(eps2)
            a_t = begv_A(tau, d_plus, p_m, gamma, alpha)
            ax = 2 * a_t @ q[i]
            want_b = 1 / kk + np.diag(a_t) + ax - skew[i]
            want_a = 1 / kk + np.diag(a_t) - ax + skew[i]
            ok_b, ok_a = ~np.isnan(got_b[i]), ~np.isnan(got_a[i])
            np.testing.assert_allclose(got_b[i][ok_b], want_b[ok_b], rtol=0, atol=1e-11)
            np.testing.assert_allclose(got_a[i][ok_a], want_a[ok_a], rtol=0, atol=1e-11)


def test_jacobi_eigh_against_numpy():
    """The kernel's in-place cyclic Jacobi: V diag(lambda) V^T = M, V orthogonal, the eigenvalues
    numpy's, on random symmetric PSD and indefinite matrices of size 1..12 and a diagonal one."""
    from mmgym.scenarios.portfolio import _jacobi_eigh

    rng = np.random.default_rng(5)
    mats = [np.diag([3.0, 1.0, 2.0])]
    for n in (1, 2, 3, 5, 8, 12):
        a = rng.normal(size=(n, n))
        mats += [a @ a.T, a + a.T]
    for a in mats:
        n = a.shape[0]
        mat, vec = a.ravel().copy(), np.zeros(n * n)
        _jacobi_eigh(mat, vec, n)
        v, lam = vec.reshape(n, n), np.diag(mat.reshape(n, n))
        np.testing.assert_allclose((v * lam) @ v.T, a, atol=1e-12 * max(1.0, np.abs(a).max()))
        np.testing.assert_allclose(v.T @ v, np.eye(n), atol=1e-13)
        np.testing.assert_allclose(np.sort(lam), np.linalg.eigvalsh(a), atol=1e-12 * max(1.0, np.abs(a).max()))


def test_risk_components_sum_to_sigma():
    """sum of the parts = Sigma (factor model, correlated factors, covariance given directly)."""
    from mmgym.scenarios.portfolio import risk_components

    for pf in (_hybrid().portfolio, _hybrid("portfolio2").portfolio,
               load_env_config({"id": ID, "portfolio": {"assets": 3, "loadings": [[1.0, 0.2], [0.5, -1.0], [0.8, 0.1]],
                                                        "factor_covariance": [[1.0, 0.3], [0.3, 0.5]],
                                                        "idio_vols": [0.5, 0.2, 0.7]}}).portfolio):
        comps, names = risk_components(pf)
        np.testing.assert_allclose(comps.sum(0), pf.sigma_matrix(), atol=1e-13)
        assert names[-1] == "idio" and len(comps) == (len(names) - 1) ** 2 + 1


def check_in_gym_and_sb3(env_cfg):
    """Gymnasium's and SB3's checkers on ``gym.make``, one step of ``gym.make_vec`` and an episode
    of the SB3 VecEnv (finite rewards, all done). Returns (the env, the vector env's first obs and
    info)."""
    import gymnasium as gym
    from gymnasium.utils.env_checker import check_env
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    from agents.vec_env import MMVecEnv

    kw = env_cfg.model_dump(exclude={"id"})
    env = gym.make(ID, **kw)
    check_env(env.unwrapped, skip_render_check=True)
    sb3_check_env(env.unwrapped)
    venv = gym.make_vec(ID, num_envs=2, vectorization_mode="vector_entry_point", **kw)
    venv.reset(seed=0)
    obs, _, _, _, info = venv.step(venv.action_space.sample())
    venv.close()
    sb = MMVecEnv(env_cfg, num_envs=3, seed=0)
    sb.reset()
    for _ in range(env_cfg.market.n_steps):
        _, r, done, _ = sb.step(np.tile(sb.action_space.sample(), (3, 1)))
    assert done.all() and np.isfinite(r).all()
    return env, obs, info


def test_portfolio_hybrid_in_gym_make_make_vec_and_sb3():
    """portfolio8 with portfolio_hybrid: 3 multipliers + 8 skews + 9 market orders = 20 columns;
    Gymnasium's and SB3's checkers, make_vec, the SB3 VecEnv; info carries the choices; a
    per_asset penalty is refused in one line."""
    env_cfg = _hybrid(horizon=0.05)
    env, _, info = check_in_gym_and_sb3(env_cfg)
    assert env.action_space.shape == (20,)
    assert {"risk_mult_factor_0", "risk_mult_idio", "skew_7"} <= set(info)
    data = env_cfg.model_dump()
    data["portfolio"]["penalty"] = "per_asset"
    with pytest.raises(ConfigError, match="portfolio_hybrid scales the begv penalty") as exc:
        BatchMarket(load_env_config(data), 1)
    assert "\n" not in str(exc.value)

"""Correlation regimes of mmgym/PortfolioMarketMaking-v0 (``portfolio.correlation_regimes``, issue
11): the regime chain's empirical one-step transition frequencies against expm(Q dt) (the chain and
rule of mmgym/scenarios/regimes.py) within 4 SE; each regime's realised covariance of the mid
changes against its configured Sigma_r within 4 SE, and the running penalty with the regime's
Sigma_r; the rolling-correlation feature against a slow scalar EWMA; the env in gym.make, make_vec
and the SB3 VecEnv; one-line refusals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import mmgym  # noqa: F401
from mmgym.config import ConfigError, load_config, load_env_config
from mmgym.envs.market import BatchMarket
from mmgym.scenarios.regimes import transition_matrix

ID = "mmgym/PortfolioMarketMaking-v0"
ROOT = Path(__file__).resolve().parents[1]
CALM = [[4.0, 1.0], [1.0, 4.0]]  # rho 0.25
STRESSED = [[6.0, 5.4], [5.4, 6.0]]  # rho 0.9
RATES = [[0.0, 2.0], [4.0, 0.0]]


def _cfg(horizon=1.0, **cr):
    data = load_config(str(ROOT / "configs" / "portfolio2.yaml")).env.model_dump()
    data["market"]["horizon"] = horizon
    data["portfolio"]["correlation_regimes"] = {"covariances": [CALM, STRESSED], "rates": RATES, **cr}
    return load_env_config(data)


def _run(cfg, n, steps, seed=0):
    """Quote depth 0.8 on every side; per step: regime before, regime after, mid changes, done,
    inventories after, the penalty term, the observation."""
    m = BatchMarket(cfg, n, raw_depths=True)
    m.seed_rows([seed + i for i in range(n)])
    m.reset()
    act = np.full((n, m.action_dim), 0.8)
    pen = m.term_names.index("inventory_penalty")
    out = []
    for _ in range(steps):
        r0 = m.field("regime").copy()
        b = m.step(act)
        out.append((r0, m.field("regime").copy(), m.field("mid_ret").copy(), b.done.copy(),
                    b.aux[:, [m.aux_names.index("inventory_0"), m.aux_names.index("inventory_1")]].copy(),
                    b.terms[:, pen].copy(), b.obs.copy(), b.final_obs.copy()))
    return m, out


def test_transition_frequencies_match_the_chain():
    """1000 envs x 200 steps: the counts of r -> r' over steps that do not end an episode give
    P_hat within 4 binomial SE of expm(Q dt); the stressed regime is visited."""
    cfg = _cfg()
    _, out = _run(cfg, 1000, 199)
    p = transition_matrix(RATES, cfg.market.dt)
    counts = np.zeros((2, 2))
    for r0, r1, _, done, *_ in out:
        keep = ~done
        np.add.at(counts, (r0[keep], r1[keep]), 1)
    for r in range(2):
        nr = counts[r].sum()
        assert nr > 10000
        p_hat = counts[r, 1 - r] / nr
        se = np.sqrt(p[r, 1 - r] * (1 - p[r, 1 - r]) / nr)
        assert abs(p_hat - p[r, 1 - r]) < 4 * se, (r, p_hat, p[r, 1 - r], se)


def test_per_regime_covariance_and_penalty():
    """Mid changes pooled by the regime at the start of their step: sample covariance of
    dS / sqrt(dt) within 4 SE of Sigma_r (Gaussian SE sqrt((S_aa S_bb + S_ab^2) / n)); the
    running penalty of each step is -phi q'^T Sigma_r q' dt with that regime's Sigma_r."""
    cfg = _cfg()
    dt, phi = cfg.market.dt, cfg.reward.inventory_penalty
    _, out = _run(cfg, 1000, 200, seed=50)
    sig = [np.asarray(CALM), np.asarray(STRESSED)]
    pooled = {0: [], 1: []}
    for r0, _, ds, _, q, pen, *_ in out:
        for r in (0, 1):
            pooled[r].append(ds[r0 == r])
        risk = np.einsum("ni,nij,nj->n", q, np.stack(sig)[r0], q)
        np.testing.assert_allclose(pen, -phi * risk * dt, rtol=1e-12, atol=1e-15)
    for r in (0, 1):
        x = np.concatenate(pooled[r]) / np.sqrt(dt)
        n = x.shape[0]
        assert n > 20000
        emp = x.T @ x / n  # mean zero by construction
        s = sig[r]
        for a in range(2):
            for b in range(2):
                se = np.sqrt((s[a, a] * s[b, b] + s[a, b] ** 2) / n)
                assert abs(emp[a, b] - s[a, b]) < 4 * se, (r, a, b, emp[a, b], s[a, b], se)


def test_correlation_feature_against_a_slow_ewma():
    """The observation's corr_01 column (and one-hot when observed) against a scalar EWMA over the
    recorded mid changes: v_a <- v_a + d (dS_a^2 - v_a), c <- c + d (dS_0 dS_1 - c), corr =
    c / sqrt(v_0 v_1), restarting at v_a = Sigma_aa dt, c = Sigma_01 dt (nominal Sigma) after each
    episode; d = 1 - 2^(-1 / vol_halflife)."""
    cfg = _cfg(horizon=0.1, observed=True)
    n = 8
    m, out = _run(cfg, n, 45)
    col = m.scenario.obs_columns(cfg).names
    jc = col.index("corr_01")
    assert col[jc + 1:] == ("regime_0", "regime_1")
    nominal = cfg.portfolio.sigma_matrix() * cfg.market.dt
    d = 1.0 - 0.5 ** (1.0 / cfg.observation.vol_halflife)
    sd = np.sqrt(np.diag(nominal))
    j0, j1 = col.index("mid_return"), col.index("mid_return_1")
    for i in range(n):
        v0, v1, c = nominal[0, 0], nominal[1, 1], nominal[0, 1]
        for _, r1, ds, done, *_, obs, final in out:
            row = final if done[i] else obs
            if not done[i]:  # the state's exact mid changes (reset zeroes them on a last step)
                x0, x1 = ds[i]
            else:  # the final observation's (float32) mid changes
                x0, x1 = row[i, j0] * sd[0], row[i, j1] * sd[1]
            v0 += d * (x0 ** 2 - v0)
            v1 += d * (x1 ** 2 - v1)
            c += d * (x0 * x1 - c)
            assert row[i, jc] == pytest.approx(c / np.sqrt(v0 * v1), rel=1e-5, abs=1e-6)
            if done[i]:
                v0, v1, c = nominal[0, 0], nominal[1, 1], nominal[0, 1]
                assert obs[i, jc] == pytest.approx(c / np.sqrt(v0 * v1), rel=1e-6)
                assert list(obs[i, jc + 1:]) == [1.0, 0.0]  # reset: regimes.initial = 0
            else:
                assert list(obs[i, jc + 1:]) == [float(r1[i] == 0), float(r1[i] == 1)]


def test_regimes_in_gym_make_make_vec_sb3_and_refusals():
    """Gymnasium's and SB3's checkers, make_vec and the SB3 VecEnv with factor-vol regimes on
    portfolio8 (and its factor instrument); the K = 2 DP, K = 1 and inconsistent regimes are
    refused in one line."""
    from mmgym.baselines import make_baseline

    from .test_portfolio_hybrid import check_in_gym_and_sb3

    data = load_config(str(ROOT / "configs" / "portfolio8.yaml")).env.model_dump()
    data["market"]["horizon"] = 0.05
    data["portfolio"]["correlation_regimes"] = {"factor_vols": [[1.5, 0.8], [3.0, 0.8]], "rates": RATES}
    env_cfg = load_env_config(data)
    np.testing.assert_allclose(env_cfg.portfolio.regime_sigmas()[0], env_cfg.portfolio.sigma_matrix())
    env, obs, _ = check_in_gym_and_sb3(env_cfg)
    assert env.observation_space.shape == (43,) and obs.shape == (2, 43)
    with pytest.raises(ConfigError, match="correlation_regimes is set") as exc:
        make_baseline("optimal", _cfg(horizon=0.05))
    assert "\n" not in str(exc.value)
    for pf, msg in (({"assets": 1, "correlation_regimes": {"covariances": [[[1.0]]], "rates": [[0.0]]}}, "assets >= 2"),
                    ({"assets": 2, "correlation_regimes": {"covariances": [CALM], "factor_vols": [[1.0]],
                                                           "rates": [[0.0]]}}, "either covariances or factor_vols"),
                    ({"assets": 2, "correlation_regimes": {"covariances": [CALM, STRESSED], "rates": [[0.0]]}},
                     "rates has 1 entries, expected R = 2")):
        with pytest.raises(ConfigError, match=msg) as exc:
            load_env_config({"id": ID, "portfolio": pf})
        assert "\n" not in str(exc.value)

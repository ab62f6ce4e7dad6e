"""The hedging baselines of the portfolio scenario (mmgym/baselines/portfolio_hedge.py) and
configs/portfolio8.yaml: each rule's orders against a hand computation on fixed states, the EOQ
size, the hedged policies run in the batched env without breaking its invariants, the config in
gym.make / SB3's VecEnv, one-line refusals."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

import mmgym  # noqa: F401
from mmgym.baselines import make_baseline
from mmgym.baselines.portfolio_hedge import eoq_size, threshold_lots
from mmgym.config import ConfigError, load_config, load_env_config

from .portfolio_helpers import seeded_market

ID = "mmgym/PortfolioMarketMaking-v0"
ROOT = Path(__file__).resolve().parents[1]
P8 = ROOT / "configs" / "portfolio8.yaml"
HEDGERS = ("begv_mv_hedge", "begv_threshold", "begv_eoq")


def _k2(**over):
    """K = 2 (Sigma [[4, 3.2], [3.2, 4]]), phi = 0.05, alpha = 0, market orders h = 0.1, eta = 0.05."""
    data = {"id": ID, "reward": {"inventory_penalty": 0.05, "terminal_penalty": 0.0},
            "action": {"hedge": True}, "impact": {"half_spread": 0.1, "eta": 0.05},
            "portfolio": {"assets": 2, "covariance": [[4.0, 3.2], [3.2, 4.0]]}}
    for key, val in over.items():
        data[key] = {**data.get(key, {}), **val}
    return load_env_config(data)


def _p8(horizon=None, **reward):
    cfg = load_config(str(P8))
    if horizon is None:
        return cfg
    data = cfg.env.model_dump()
    data["market"]["horizon"] = horizon
    data["reward"].update(reward)
    return load_env_config(data), cfg.baselines


# ------------------------------------------------------------------ rules by hand ---
def test_mv_hedge_orders_by_hand():
    """At t = 0 (tau = 1): M = 0.05 P; P's eigenvectors (1, 1)/sqrt2 (7.2) and (1, -1)/sqrt2 (0.8),
    M's 0.36 and 0.04; v* = -(M + 0.05 I)^{-1} M q shrinks each component by 36/41 and 4/9.
    q = (3, 1) = (2, 2) + (1, -1): v* = (-72/41 - 4/9, -72/41 + 4/9) = (-2.200, -1.312) -> (-2, -1)."""
    p = make_baseline("begv_mv_hedge", _k2())
    v = p.target(np.array([0]), np.array([[3, 1]]))
    assert v[0] == pytest.approx([-72 / 41 - 4 / 9, -72 / 41 + 4 / 9], abs=1e-12)
    assert p.orders(np.array([0]), np.array([[3, 1]])).tolist() == [[-2.0, -1.0]]
    # half-way (tau = 0.5): M = 0.025 P, eigenvalues 0.18 and 0.02 -> 18/23 and 2/7
    t = p.mp.n_steps // 2
    v = p.target(np.array([t]), np.array([[3, 1]]))
    assert v[0] == pytest.approx([-36 / 23 - 2 / 7, -36 / 23 + 2 / 7], abs=1e-12)
    assert p.orders(np.array([0]), np.array([[0, 0]])).tolist() == [[0.0, 0.0]]


def test_threshold_lots_by_hand_and_by_brute_force():
    """(Aq)_a = 0.3, (Gq)_a = 0.02, A_aa = 0.02, h = 0.1, eta = 0.05, G_aa = 0.01: s = -1,
    Delta_n = 0.6 - 0.02 - 0.1 - (2n - 1) 0.06 = 0.48 - 0.06 (2n - 1): > 0 for n <= 4, < 0 at n = 5."""
    assert threshold_lots(np.array([0.3]), np.array([0.02]), np.array([0.02]), 0.1, 0.05, np.array([0.01])) \
        .tolist() == [-4.0]
    assert threshold_lots(np.array([-0.3]), np.array([-0.02]), np.array([0.02]), 0.1, 0.05, np.array([0.01])) \
        .tolist() == [4.0]
    # inside the band 2|Aq| + s Gq <= h + A_aa + eta - G_aa: no order
    assert threshold_lots(np.array([0.08]), np.array([0.0]), np.array([0.02]), 0.1, 0.05, np.array([0.01])) \
        .tolist() == [0.0]
    assert threshold_lots(np.array([0.0]), np.array([0.0]), np.array([0.02]), 0.0, 0.05, np.array([0.0])).tolist() == [0.0]
    # the policy on a fixed state: each asset's order maximises the one-step objective of trading it
    # alone, -(q+v)^T A (q+v) - |v| (h + eta |v|) + (q+v)^T G v, over integers (brute force)
    cfg = _k2(portfolio={"cross_impact": [[0.01, 0.006], [0.002, 0.012]]})  # not symmetric
    p = make_baseline("begv_threshold", cfg)
    a, g = p.A[0], p.G
    sent = []
    for q in ([10, -3], [7, 7], [-9, 2], [1, 0], [0, 0], [-10, -10], [4, -8]):
        q = np.array(q, dtype=float)
        got = p.orders(np.array([0]), q[None])[0]
        for j in range(2):
            def obj(v):
                x = q.copy()
                x[j] += v
                e = np.zeros(2)
                e[j] = v
                return -x @ a @ x - abs(v) * (0.1 + 0.05 * abs(v)) + x @ g @ e
            best = max(range(-30, 31), key=obj)
            assert got[j] == best, (q, j, got, best)
            sent.append(got[j])
    assert sum(x != 0 for x in sent) >= 4  # the band is left on several of these states


def test_eoq_size_and_band():
    """sqrt(2 D S / H): D = 50, S = 0.15, H = 0.2 -> sqrt(75); the policy's D, S, H from the config
    (D = A e^{-k (1/k + A_aa(0))}, S = h + eta, H = phi P_aa) and its orders at the band."""
    assert eoq_size(50.0, 0.15, 0.2) == pytest.approx(math.sqrt(75.0))
    assert eoq_size(np.array([2.0, 8.0]), 1.0, 1.0).tolist() == [2.0, 4.0]
    p = make_baseline("begv_eoq", _k2())
    a00 = p.A[0][0, 0]
    assert p.D[0] == pytest.approx(140.0 * math.exp(-1.5 * (1 / 1.5 + a00)))
    assert p.S == pytest.approx(0.15)
    assert p.H.tolist() == pytest.approx([0.2, 0.2])
    b = round(math.sqrt(2 * p.D[0] * 0.15 / 0.2))
    assert p.band.tolist() == [b, b]
    q = np.array([[b, b - 1], [-b - 1, 0]])
    assert p.orders(np.array([3, 3]), q).tolist() == [[-b, 0], [b, 0]]


# ------------------------------------------------------------------ in the env ---
@pytest.mark.parametrize("name", HEDGERS)
def test_hedged_policies_run_in_the_env(name):
    """portfolio8 (20 steps, 64 envs; phi = 1, alpha = 0.01 so that every rule trades in 20 steps): the orders the env executes (``hedge_a``) are the policy's,
    clipped to the bound; |q_a| <= Q; the ``impact`` term is -sum |v| (h + eta |v|) (on the last
    step also the final mark's -1/2 q'^T G q'); no order in the factor instrument; the quotes are
    begv's; the episode return is the sum of the rewards."""
    env, bc = _p8(horizon=0.1, inventory_penalty=1.0, terminal_penalty=0.01)
    pol = make_baseline(name, env, bc)
    begv = make_baseline("begv", env, bc)
    n, k = 64, 8
    m, col, term, act = seeded_market(env, n, raw_depths=True)
    total = np.zeros(n)
    traded = 0.0
    for _ in range(m.n_steps):
        t, q = m.step_count.copy(), m.inventory.copy()
        pol.act(m, out=act)
        want = np.clip(q + pol.orders(t, q), -10, 10) - q
        d_b, d_a = begv.depths(t, q)
        assert np.allclose(act[:, :k], d_b) and np.allclose(act[:, k:2 * k], d_a)
        b = m.step(act)
        v = b.aux[:, [col[f"hedge_{a}"] for a in range(k)]]
        assert np.array_equal(v, want)
        assert (b.aux[:, col["hedge_factor"]] == 0).all()
        q_after = b.aux[:, [col[f"inventory_{a}"] for a in range(k)]]
        mark = np.where(b.done, 0.5 * np.einsum("ni,ij,nj->n", q_after, pol.G, q_after), 0.0)
        assert np.allclose(b.terms[:, term["impact"]], -(np.abs(v) * (0.1 + 0.05 * np.abs(v))).sum(1) - mark)
        assert np.abs(q_after).max() <= 10
        total += b.reward
        traded += np.abs(v).sum()
    assert b.done.all()
    assert np.allclose(b.final_stats[:, m.stat_names.index("return")], total)
    assert traded > 0  # each rule hedges on this config


def test_portfolio8_in_gym_make_and_the_sb3_vecenv():
    """configs/portfolio8.yaml (K = 8, two factors, cross-impact, the factor instrument: 25 action
    columns, 42 observation columns) passes
    Gymnasium's checker and steps in the SB3 VecEnv."""
    import gymnasium as gym
    from gymnasium.utils.env_checker import check_env

    from agents.vec_env import MMVecEnv

    env_cfg, _ = _p8(horizon=0.05)
    kw = env_cfg.model_dump(exclude={"id"})
    env = gym.make(ID, **kw)
    assert env.action_space.shape == (25,) and env.observation_space.shape == (42,)
    check_env(env.unwrapped, skip_render_check=True)
    venv = MMVecEnv(env_cfg, num_envs=4, seed=0)
    venv.reset()
    for _ in range(env_cfg.market.n_steps):
        _, r, done, infos = venv.step(np.tile(venv.action_space.sample(), (4, 1)))
    assert done.all() and np.isfinite(r).all()
    sig = _p8().env.portfolio.sigma_matrix()
    assert np.sqrt(np.diag(sig)) == pytest.approx([1.755, 1.861, 1.972, 2.089] * 2, abs=1e-3)


def test_hedgers_claim_no_exact_value_at_k2():
    """At K = 2 the exact recursion has no market orders: a hedger reports no exact value (it would
    be begv's), while begv keeps its own in the same evaluate run."""
    from mmgym.config import BaselinesConfig
    from mmgym.evaluation import evaluate_agents

    cfg = _k2(market={"horizon": 0.05})
    assert make_baseline("begv_threshold", cfg).exact_objective() is None
    metrics = evaluate_agents(cfg, {"begv_threshold": "begv_threshold", "begv": "begv"}, episodes=50, seed=0,
                              baselines_config=BaselinesConfig(gamma=0.1))
    assert metrics["begv_threshold"]["objective_exact"] is None
    assert metrics["begv"]["objective_exact"] is not None


def test_hedged_policy_drives_the_sb3_vecenv():
    """begv_threshold through the SB3 VecEnv's normalised actions (offsets mode: a = (delta -
    offset_min) / half_span - 1; orders a = v / hedge_max_lots): the env's info ``hedge_a`` is the
    policy's order (|v| <= hedge_max_lots here), clipped to the bound (the aux the infos are made
    from); |q_a| <= Q."""
    from agents.vec_env import MMVecEnv

    env_cfg, bc = _p8(horizon=0.1, inventory_penalty=1.0, terminal_penalty=0.01)
    data = env_cfg.model_dump()
    data["action"]["hedge_max_lots"] = 10
    env_cfg = load_env_config(data)
    pol = make_baseline("begv_threshold", env_cfg, bc)
    n, k = 16, 8
    venv = MMVecEnv(env_cfg, num_envs=n, seed=0)
    venv.reset()
    m = venv.market
    col = {c: j for j, c in enumerate(m.aux_names)}
    lo, half = env_cfg.action.offset_min, 0.5 * (env_cfg.action.offset_max - env_cfg.action.offset_min)
    traded = 0.0
    for _ in range(m.n_steps):
        t, q = m.step_count.copy(), m.inventory.copy()
        d_b, d_a = pol.depths(t, q)
        v = pol.orders(t, q)
        assert np.abs(v).max() <= 10
        act = np.concatenate([(d_b - lo) / half - 1.0, (d_a - lo) / half - 1.0, v / 10.0, np.zeros((n, 1))], axis=1)
        _, r, done, infos = venv.step(act.astype(np.float32))
        got = m.buffers.aux[:, [col[f"hedge_{a}"] for a in range(k)]]
        assert np.array_equal(got, np.clip(q + v, -10, 10) - q)
        assert np.abs(m.inventory).max() <= 10 and np.isfinite(r).all()
        traded += np.abs(got).sum()
    assert done.all() and traded > 0


# ------------------------------------------------------------------ refusals ---
@pytest.mark.parametrize("name", HEDGERS)
def test_hedgers_need_the_market_order_action(name):
    cfg = _k2(action={"hedge": False}, impact={"half_spread": 0.0, "eta": 0.0})
    with pytest.raises(ConfigError, match="action.hedge: true") as exc:
        make_baseline(name, cfg)
    assert "\n" not in str(exc.value)


def test_bad_hedge_configs_are_one_line():
    with pytest.raises(ConfigError, match="impact.eta > 0") as exc:
        make_baseline("begv_mv_hedge", _k2(impact={"eta": 0.0}))
    assert "\n" not in str(exc.value)
    with pytest.raises(ConfigError, match="permanent impact too large") as exc:
        make_baseline("begv_threshold", _k2(impact={"eta": 0.0}, portfolio={"cross_impact": [[0.5, 0.0], [0.0, 0.5]]}))
    assert "\n" not in str(exc.value)
    with pytest.raises(ConfigError, match="quotes several assets") as exc:
        make_baseline("begv_eoq", load_env_config({"id": "mmgym/MarketMaking-v0"}))
    assert "\n" not in str(exc.value)


def test_evaluate_cli_runs_the_hedgers(tmp_path):
    """evaluate.py on portfolio8 (10 steps, 50 episodes): the three hedgers and begv, paired against
    begv; begv pays only the final mark's 1/2 q^T G q (no orders), less than the mean-variance
    hedge's impact; the EOQ bands in results.json."""
    import json

    import agents.cli_evaluate as cli

    rc = cli.main([str(P8), "--agents", "begv", *HEDGERS, "--episodes", "50", "--seed", "0", "--reference",
                   "begv", "--no-plots", "--out", str(tmp_path), "--set", "market.horizon=0.05"])
    assert rc in (0, None)
    res = json.loads((tmp_path / "results.json").read_text())
    metrics = res["agents"]
    assert set(HEDGERS) <= set(metrics)
    assert 0.0 < metrics["begv"]["impact_cost_mean"] < metrics["begv_mv_hedge"]["impact_cost_mean"]
    assert metrics["begv_eoq"]["params"]["band"] == [10.0, 9.0, 9.0, 8.0] * 2

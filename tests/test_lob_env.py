"""mmgym/LOBMarketMaking-v0: Gymnasium and SB3 checkers, determinism, vector == N singles,
evaluation-tooling compatibility and accounting of the reward terms."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import mmgym  # noqa: F401
from mmgym.envs.market import BatchMarket
from mmgym.make import make_market
from mmgym.scenarios.lob import default_lob_config
from mmgym.sim import ledger as IK

ID = "mmgym/LOBMarketMaking-v0"
SHORT = {"market": {"horizon": 20.0}}


def test_gymnasium_check_env():
    from gymnasium.utils.env_checker import check_env

    check_env(gym.make(ID).unwrapped, skip_render_check=True)


def test_sb3_check_env():
    sb3 = pytest.importorskip("stable_baselines3.common.env_checker")
    sb3.check_env(gym.make(ID, **SHORT).unwrapped, warn=False)


def _rollout(env, seed, steps=45):
    obs, _ = env.reset(seed=seed)
    out = [obs]
    rng = np.random.default_rng(1)
    for _ in range(steps):
        obs, r, term, trunc, info = env.step(rng.uniform(-1, 1, size=env.action_space.shape))
        out.append(np.append(obs, r))
        if term:
            obs, _ = env.reset()
    return np.concatenate(out)


def test_determinism_same_seed():
    a = _rollout(gym.make(ID, **SHORT), 5)
    b = _rollout(gym.make(ID, **SHORT), 5)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, _rollout(gym.make(ID, **SHORT), 6))


def test_vector_equals_singles():
    n = 3
    venv = gym.make_vec(ID, num_envs=n, vectorization_mode="vector_entry_point", **SHORT)
    singles = [gym.make(ID, **SHORT) for _ in range(n)]
    vo, _ = venv.reset(seed=10)
    so = np.stack([e.reset(seed=10 + i)[0] for i, e in enumerate(singles)])
    np.testing.assert_array_equal(vo, so)
    rng = np.random.default_rng(0)
    for _ in range(30):  # crosses an episode end (20 steps): autoreset included
        a = rng.uniform(-1, 1, size=(n, 2)).astype(np.float32)
        vo, vr, vd, _, _ = venv.step(a)
        for i, e in enumerate(singles):
            o, r, d, _, _ = e.step(a[i])
            if d:
                o, _ = e.reset()
            np.testing.assert_array_equal(vo[i], o)
            assert vr[i] == r and vd[i] == d


def test_raw_depths_market_and_layouts():
    cfg = default_lob_config(action={"hedge": True}, reward={"taker_fee": 0.001, "maker_fee": -0.0005,
                                                             "inventory_penalty": 0.01})
    m = make_market(cfg, 8, raw_depths=True)
    assert isinstance(m, BatchMarket) and m.scenario.id == ID
    assert m.term_names == IK.TERM_NAMES and m.aux_names[: len(IK.AUX)] == IK.AUX_NAMES
    assert m.stat_names[: len(IK.STATS)] == IK.STAT_NAMES
    m.seed_rows(list(range(8)))
    m.reset()
    tick = cfg.market.tick_size
    rng = np.random.default_rng(0)
    for _ in range(cfg.market.n_steps + 5):
        acts = np.column_stack([rng.uniform(-0.01, 0.03, 8), rng.uniform(-0.01, 0.03, 8),
                                rng.integers(-2, 3, 8)])
        q0 = m.inventory[:, 0].copy()
        b = m.step(acts)
        np.testing.assert_allclose(b.terms.sum(axis=1), b.reward, atol=1e-9)
        assert (b.terms[:, IK.TERM_IMPACT] <= 1e-12).all()
        assert (np.abs(m.inventory[:, 0]) <= cfg.market.max_inventory).all()
        fills = b.aux[:, IK.AUX_FILL_BID] - b.aux[:, IK.AUX_FILL_ASK] + b.aux[:, IK.AUX_HEDGE]
        live = ~b.done
        # inventory changes by passive fills, the hedge and marketable quotes only
        taker = b.aux[:, -1]
        assert (np.abs(m.inventory[:, 0] - q0 - fills)[live] <= taker[live]).all()
        bid, ask = b.aux[:, IK.AUX_BID_PX], b.aux[:, IK.AUX_ASK_PX]
        ok = np.isfinite(bid) & np.isfinite(ask)
        assert (np.round(bid[ok] / tick) < np.round(ask[ok] / tick)).all()
    assert m.buffers.final_stats.shape[1] == len(m.stat_names)


def test_requote_same_price_keeps_queue_position():
    m = make_market(default_lob_config(book={"warmup": 5.0}), 1, raw_depths=True)
    m.seed_rows([3])
    m.reset()
    seq0 = None
    for _ in range(5):
        mid = m.mid[0, 0]
        # fixed absolute prices: depth relative to the (moving) mid chosen to hit the same ticks
        bid_px, ask_px = 99.90, 100.10
        m.step(np.array([[mid - bid_px, ask_px - mid]]))
        j = int(np.flatnonzero((m.state.book.ord_qty[0] > 0) & (m.state.book.ord_side[0] == 0))[0])
        if seq0 is None:
            seq0 = m.state.book.ord_seq[0, j]
        assert m.state.book.ord_seq[0, j] == seq0  # the same order: never re-entered


def test_flat_book_keys_in_gym_make():
    env = gym.make(ID, warmup=5.0, quote_lots=2, horizon=20.0)
    cfg = env.unwrapped.config
    assert cfg.book.warmup == 5.0 and cfg.book.quote_lots == 2 and cfg.market.horizon == 20.0
    assert cfg.market.sigma == default_lob_config().market.sigma  # the LOB defaults, not the intensity env's
    env.reset(seed=0)
    with pytest.raises(Exception, match="unknown keyword"):
        gym.make(ID, warmupp=5.0)


def test_book_refuses_the_jump_on_fill():
    """``market.adverse_jump`` is the intensity market's; the book says so instead of ignoring it."""
    from mmgym.config import ConfigError

    with pytest.raises(ConfigError, match=r"market\.adverse_jump.*0\.1"):
        gym.make(ID, market={"adverse_jump": 0.1})


@pytest.mark.slow
def test_sb3_adapter_over_the_book():
    """mmgym.agents.MMVecEnv over the LOB config: SAME_STEP autoreset infos, and a PPO learns a few
    hundred steps without error."""
    pytest.importorskip("stable_baselines3")
    from mmgym.agents import MMVecEnv
    from stable_baselines3 import PPO

    cfg = default_lob_config(market={"horizon": 20.0})
    venv = MMVecEnv(cfg, num_envs=4, seed=0)
    assert venv.market.scenario.id == ID
    obs = venv.reset()
    assert obs.shape == (4, 14) and obs.dtype == np.float32
    rng = np.random.default_rng(0)
    for t in range(cfg.market.n_steps):
        obs, rew, done, infos = venv.step(rng.uniform(-1, 1, size=(4, 2)))
        assert rew.shape == (4,) and np.isfinite(rew).all()
        if t < cfg.market.n_steps - 1:
            assert not done.any() and all("mm_episode" not in i for i in infos)
    assert done.all()
    for info in infos:
        assert info["terminal_observation"].shape == (14,) and info["TimeLimit.truncated"] is False
        assert info["mm_episode"]["l"] == cfg.market.n_steps and np.isfinite(info["mm_episode"]["r"])
    assert (obs[:, 1] == 1.0).all() and infos[0]["terminal_observation"][1] == 0.0  # already reset
    assert venv.get_attr("inventory") == list(venv.market.inventory)
    model = PPO("MlpPolicy", venv, n_steps=64, batch_size=64, n_epochs=1, seed=0, device="cpu")
    model.learn(total_timesteps=512)
    assert model.num_timesteps >= 512

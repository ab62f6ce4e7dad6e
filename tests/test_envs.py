"""Gymnasium single/vector envs and the stable-baselines3 VecEnv over the same kernel."""

from __future__ import annotations

import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from mmgym.agents import MMVecEnv
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import mmgym

MM_IDS = sorted(i for i in gym.registry if i.startswith("mmgym/"))
SHORT = {"market": {"horizon": 0.25}}  # 50 steps


def test_ids_registered():
    assert "mmgym/MarketMaking-v0" in MM_IDS


@pytest.mark.parametrize("env_id", MM_IDS)
def test_gymnasium_and_sb3_check_env(env_id):
    gym_check_env(gym.make(env_id).unwrapped, skip_render_check=False)
    sb3_check_env(gym.make(env_id).unwrapped, warn=True)


@pytest.mark.parametrize("mode", ["as_hybrid", "offsets"])
@pytest.mark.parametrize("hedge", [False, True])
def test_check_env_action_modes(mode, hedge):
    env = gym.make("mmgym/MarketMaking-v0", action={"mode": mode, "hedge": hedge})
    gym_check_env(env.unwrapped)
    assert env.action_space.shape == (3 if hedge else 2,)


def _rollout(env, seed, n, actions_seed=0):
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(actions_seed)
    out = [obs]
    rewards = []
    for _ in range(n):
        obs, r, term, trunc, info = env.step(rng.uniform(-1, 1, size=env.action_space.shape))
        out.append(obs)
        rewards.append(r)
        if term or trunc:
            obs, _ = env.reset()
            out.append(obs)
    return np.array(out), np.array(rewards)


def test_same_seed_same_trajectory():
    a = _rollout(gym.make("mmgym/MarketMaking-v0", config=SHORT), 3, 120)
    b = _rollout(gym.make("mmgym/MarketMaking-v0", config=SHORT), 3, 120)
    c = _rollout(gym.make("mmgym/MarketMaking-v0", config=SHORT), 4, 120)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[1], c[1])


def test_vector_env_equals_single_envs_step_by_step():
    """Env i of a vector env reset with seed s equals a single env reset with seed s + i,
    across autoresets (120 steps = 2.4 episodes)."""
    n = 5
    venv = gym.make_vec("mmgym/MarketMaking-v0", num_envs=n, vectorization_mode="vector_entry_point",
                        config=SHORT, action={"hedge": True}, impact={"eta": 0.1})
    singles = [gym.make("mmgym/MarketMaking-v0", config=SHORT, action={"hedge": True},
                        impact={"eta": 0.1}) for _ in range(n)]
    vobs, _ = venv.reset(seed=10)
    sobs = [e.reset(seed=10 + i)[0] for i, e in enumerate(singles)]
    np.testing.assert_array_equal(vobs, np.array(sobs))
    rng = np.random.default_rng(0)
    finished = 0
    for _ in range(120):
        acts = rng.uniform(-1, 1, size=(n, 3)).astype(np.float32)
        vobs, vr, vterm, vtrunc, vinfo = venv.step(acts)
        for i, e in enumerate(singles):
            o, r, term, trunc, info = e.step(acts[i])
            assert r == vr[i] and term == vterm[i] and not trunc and not vtrunc[i]
            assert info["pnl"] == vinfo["pnl"][i] and info["gamma"] == vinfo["gamma"][i]
            if term:
                finished += 1
                np.testing.assert_array_equal(o, vinfo["final_obs"][i])
                assert info["mm_episode"]["r"] == vinfo["final_info"]["mm_episode"]["r"][i]
                o, _ = e.reset()
            np.testing.assert_array_equal(o, vobs[i])
    assert finished == 2 * n


def test_vector_env_same_step_autoreset_metadata():
    venv = gym.make_vec("mmgym/MarketMaking-v0", num_envs=3, vectorization_mode="vector_entry_point",
                        config=SHORT)
    assert venv.metadata["autoreset_mode"] == gym.vector.AutoresetMode.SAME_STEP
    obs, _ = venv.reset(seed=0)
    for t in range(50):
        obs, r, term, trunc, info = venv.step(np.zeros((3, 2), np.float32))
    assert term.all() and info["_final_obs"].all()
    assert np.all(obs[:, 1] == 1.0)  # reset observation: all time remaining
    assert all(fo[1] == 0.0 for fo in info["final_obs"])  # final observation: no time left


def test_vector_env_reset_mask():
    venv = gym.make_vec("mmgym/MarketMaking-v0", num_envs=3, vectorization_mode="vector_entry_point")
    venv.reset(seed=0)
    for _ in range(5):
        venv.step(np.zeros((3, 2), np.float32))
    obs, _ = venv.reset(options={"reset_mask": np.array([True, False, True])})
    assert obs[0, 1] == 1.0 and obs[2, 1] == 1.0 and obs[1, 1] < 1.0


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_actions_raise(bad):
    env = gym.make("mmgym/MarketMaking-v0")
    env.reset(seed=0)
    with pytest.raises(ValueError, match="not finite"):
        env.step(np.array([0.0, bad], dtype=np.float32))
    venv = gym.make_vec("mmgym/MarketMaking-v0", num_envs=4, vectorization_mode="vector_entry_point")
    venv.reset(seed=0)
    acts = np.zeros((4, 2))
    acts[2, 0] = bad
    mid_before = venv.unwrapped.market.mid.copy() if hasattr(venv, "unwrapped") else None
    with pytest.raises(ValueError, match="env 2"):
        venv.step(acts)
    if mid_before is not None:  # nothing was stepped
        np.testing.assert_array_equal(venv.unwrapped.market.mid, mid_before)
    sb3 = MMVecEnv(None, 4, seed=0)
    sb3.reset()
    with pytest.raises(ValueError):
        sb3.step(acts)


def test_reward_never_nan_under_extreme_actions():
    env = gym.make("mmgym/MarketMaking-v0", action={"mode": "offsets", "offset_min": -50.0,
                                                    "offset_max": 50.0, "hedge": True},
                   reward={"objective": "cara", "cara_gamma": 5.0}, impact={"eta": 1.0})
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    for _ in range(600):
        a = rng.choice([-1.0, 1.0, 0.0, 1e6, -1e6], size=3).astype(np.float32)
        obs, r, term, trunc, info = env.step(a)
        assert np.isfinite(r) and np.all(np.isfinite(obs))
        if term:
            env.reset()


def test_bad_gym_make_keyword():
    with pytest.raises(mmgym.ConfigError, match="sigmaa"):
        gym.make("mmgym/MarketMaking-v0", sigmaa=2.0)
    with pytest.raises(mmgym.ConfigError, match="market.sigma"):
        gym.make("mmgym/MarketMaking-v0", market={"sigma": -1.0})


def test_make_env_from_yaml_and_dict(tmp_path):
    path = tmp_path / "env.yaml"
    path.write_text("env:\n  market:\n    sigma: 3.0\n    horizon: 0.5\n  reward:\n    inventory_penalty: 2.0e-1\n")
    env = mmgym.make_env(path)
    assert env.unwrapped.config.market.sigma == 3.0
    assert env.unwrapped.config.reward.inventory_penalty == pytest.approx(0.2)
    venv = mmgym.make_env({"market": {"sigma": 1.0}}, num_envs=7, overrides=["market.k=2.5"])
    assert venv.num_envs == 7 and venv.unwrapped.config.market.k == 2.5


# ----------------------------------------------------------------------------- SB3 VecEnv ---
def test_sb3_vec_env_infos_and_seed():
    venv = MMVecEnv(SHORT, num_envs=6)
    venv.seed(5)
    obs = venv.reset()
    assert obs.shape == (6, 6) and obs.dtype == np.float32
    single = gym.make("mmgym/MarketMaking-v0", config=SHORT)
    sobs, _ = single.reset(seed=5 + 3)
    np.testing.assert_array_equal(obs[3], sobs)
    rng = np.random.default_rng(0)
    for t in range(50):
        acts = rng.uniform(-1, 1, size=(6, 2)).astype(np.float32)
        obs, rew, done, infos = venv.step(acts)
        o, r, term, _, _ = single.step(acts[3])
        assert rew.dtype == np.float32 and rew[3] == np.float32(r)
    assert done.all()
    for info in infos:
        assert info["TimeLimit.truncated"] is False
        assert info["terminal_observation"].shape == (6,)
        assert info["mm_episode"]["l"] == 50 and np.isfinite(info["mm_episode"]["r"])
    np.testing.assert_array_equal(infos[3]["terminal_observation"], o)


def test_sb3_attr_methods():
    venv = MMVecEnv(None, num_envs=4, seed=0)
    venv.reset()
    venv.step(np.zeros((4, 2), np.float32))
    assert venv.get_attr("step") == [1, 1, 1, 1]
    before = venv.get_attr("inventory")
    venv.set_attr("inventory", 3, indices=[1, 2])
    assert venv.get_attr("inventory") == [before[0], 3, 3, before[3]]
    assert venv.get_attr("n_steps", indices=0) == [200]
    assert venv.env_method("state", indices=2)[0]["inventory"] == 3
    obs = venv.env_method("reset", indices=[1])[0]
    assert obs[0] == 0.0 and venv.get_attr("inventory") == [before[0], 0, 3, before[3]]
    assert venv.env_is_wrapped(gym.Wrapper) == [False] * 4
    with pytest.raises(AttributeError):
        venv.get_attr("no_such_thing")
    with pytest.raises(ValueError, match="shared"):
        venv.set_attr("n_steps", 10, indices=[0])


def test_sb3_evaluate_policy_and_learn():
    from stable_baselines3 import PPO
    from stable_baselines3.common.evaluation import evaluate_policy

    venv = MMVecEnv(SHORT, num_envs=8, seed=0)
    model = PPO("MlpPolicy", venv, n_steps=50, batch_size=200, n_epochs=1, device="cpu", seed=0)
    model.learn(800)
    mean, std = evaluate_policy(model, venv, n_eval_episodes=16, warn=False)
    assert np.isfinite(mean) and std >= 0
    rewards, lengths = evaluate_policy(model, venv, n_eval_episodes=8, return_episode_rewards=True, warn=False)
    assert lengths == [50] * 8


def test_import_mmgym_does_not_import_torch():
    code = "import sys, mmgym, gymnasium as gym; gym.make('mmgym/MarketMaking-v0'); print('torch' in sys.modules, 'stable_baselines3' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False False"


def test_vector_env_never_mutates_returned_arrays():
    """Returned obs/rewards/infos are fresh arrays: later steps and resets leave them alone."""
    venv = gym.make_vec("mmgym/MarketMaking-v0", num_envs=4, vectorization_mode="vector_entry_point",
                        config=SHORT)
    obs0, _ = venv.reset(seed=0)
    kept0 = obs0.copy()
    obs1, r1, term1, _, info1 = venv.step(np.zeros((4, 2), np.float32))
    kept = (obs1.copy(), r1.copy(), info1["pnl"].copy(), info1["gamma"].copy())
    for _ in range(60):  # across an autoreset
        venv.step(np.ones((4, 2), np.float32))
    venv.reset(options={"reset_mask": np.array([True, False, True, False])})
    np.testing.assert_array_equal(obs0, kept0)
    for a, b in zip((obs1, r1, info1["pnl"], info1["gamma"]), kept):
        np.testing.assert_array_equal(a, b)

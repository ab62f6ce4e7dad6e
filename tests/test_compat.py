"""Clients nobody here wrote, through their usual unpatched paths, on tiny budgets.

Gymnasium's wrappers and vector modes, stable-baselines3's standard entry points (env id strings,
``make_vec_env``, ``SubprocVecEnv``, ``VecNormalize``, ``evaluate_policy``), a CleanRL-style PPO
loop, pickling and ``gym.make(env.spec)``, for every registered env; RLlib when it is installed.
"""

from __future__ import annotations

import pickle

import gymnasium as gym
import numpy as np
import pytest

import mmgym
from mmgym.scenarios import get, ids

IDS = ids()


def short(env_id: str) -> dict:
    """``gym.make`` keyword arguments for 20-step episodes (short episodes keep the suite fast);
    section keywords are merged into the env's defaults."""
    dt = get(env_id).default_config().market.dt
    return {"market": {"horizon": 20 * dt}}


SHORT = short("mmgym/MarketMaking-v0")


def _short(env_id: str, **kw):
    return gym.make(env_id, **short(env_id), **kw)


def _zero(env) -> np.ndarray:
    return np.zeros(env.action_space.shape, dtype=env.action_space.dtype)


@pytest.mark.parametrize("env_id", IDS)
def test_record_episode_statistics(env_id):
    """``info["episode"]`` is Gymnasium's: our statistics live under ``info["mm_episode"]``."""
    env = gym.wrappers.RecordEpisodeStatistics(_short(env_id))
    env.reset(seed=0)
    total, done, info = 0.0, False, {}
    while not done:
        _, r, term, trunc, info = env.step(_zero(env))
        total += r
        done = term or trunc
    assert info["episode"]["l"] == 20
    assert info["episode"]["r"] == pytest.approx(total, rel=1e-6, abs=1e-6)
    assert info["mm_episode"]["length"] == 20
    assert info["mm_episode"]["return"] == pytest.approx(total, rel=1e-6, abs=1e-6)


@pytest.mark.parametrize("env_id", IDS)
def test_gymnasium_wrappers_stack(env_id):
    env = _short(env_id, max_episode_steps=7)  # TimeLimit shorter than the episode: truncates
    env = gym.wrappers.FlattenObservation(env)
    env = gym.wrappers.NormalizeObservation(env)
    env = gym.wrappers.NormalizeReward(env)
    env = gym.wrappers.ClipAction(env)
    obs, _ = env.reset(seed=1)
    steps, trunc, term = 0, False, False
    while not (term or trunc):
        obs, r, term, trunc, _ = env.step(env.action_space.sample())
        steps += 1
        assert np.all(np.isfinite(obs)) and np.isfinite(r)
    assert trunc and not term and steps == 7


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_make_vec_sync_and_async(mode):
    env_id = "mmgym/MarketMaking-v0"
    venv = gym.make_vec(env_id, num_envs=2, vectorization_mode=mode, **SHORT)
    try:
        obs, _ = venv.reset(seed=0)
        assert obs.shape == (2,) + venv.single_observation_space.shape
        ref = gym.make_vec(env_id, num_envs=2, vectorization_mode="vector_entry_point", **SHORT)
        ref_obs, _ = ref.reset(seed=0)
        np.testing.assert_array_equal(obs, ref_obs)  # env i seeded s + i in every mode
        for _ in range(25):  # crosses an episode end (autoreset)
            obs, r, term, trunc, info = venv.step(np.zeros((2,) + venv.single_action_space.shape, np.float32))
        assert np.all(np.isfinite(obs))
    finally:
        venv.close()


@pytest.mark.parametrize("env_id", IDS)
def test_pickle_and_make_from_spec(env_id):
    env = _short(env_id)
    env.reset(seed=3)
    a = _zero(env)
    clone = pickle.loads(pickle.dumps(env))
    for _ in range(5):
        o1, r1, *_ = env.step(a)
        o2, r2, *_ = clone.step(a)
        np.testing.assert_array_equal(o1, o2)
        assert r1 == r2
    again = gym.make(env.spec)
    o3, _ = again.reset(seed=3)
    o4, _ = _short(env_id).reset(seed=3)
    np.testing.assert_array_equal(o3, o4)


def test_assigning_np_random_reseeds_the_market():
    """Gymnasium's convention: the env's randomness is its np_random."""
    env_id = "mmgym/MarketMaking-v0"
    a, b = _short(env_id), _short(env_id)
    a.reset(seed=0)
    b.reset(seed=0)
    a.unwrapped.np_random = np.random.default_rng(7)
    b.unwrapped.np_random = np.random.default_rng(7)
    c = _short(env_id)
    c.reset(seed=0)
    c.unwrapped.np_random = np.random.default_rng(8)
    act = _zero(a)
    ra = [a.step(act)[1] for _ in range(10)]
    rb = [b.step(act)[1] for _ in range(10)]
    rc = [c.step(act)[1] for _ in range(10)]
    assert ra == rb and ra != rc


@pytest.mark.parametrize("env_id", IDS)
def test_rgb_array_frames(env_id):
    env = _short(env_id, render_mode="rgb_array")
    env.reset(seed=0)
    first = env.render()
    for _ in range(5):
        env.step(env.action_space.sample())
    frame = env.render()
    assert frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[2] == 3
    assert frame.shape == first.shape and not np.array_equal(frame, first)  # the episode was drawn
    assert frame.std() > 0
    env.close()
    text = _short(env_id, render_mode="ansi")
    text.reset(seed=0)
    assert isinstance(text.render(), str)


@pytest.mark.parametrize("env_id", IDS)
def test_record_video(env_id, tmp_path):
    """Gymnasium's RecordVideo over rgb_array frames (moviepy, the ``video`` extra)."""
    pytest.importorskip("moviepy")
    env = gym.wrappers.RecordVideo(_short(env_id, render_mode="rgb_array"), str(tmp_path),
                                   episode_trigger=lambda e: True, disable_logger=True)
    env.reset(seed=0)
    done = False
    while not done:
        _, _, term, trunc, _ = env.step(env.action_space.sample())
        done = term or trunc
    env.close()
    videos = list(tmp_path.glob("*.mp4"))
    assert len(videos) == 1 and videos[0].stat().st_size > 1000


def test_evaluation_video(tmp_path):
    """``evaluate.py --video``'s frames: one episode, evenly spaced frames, an animated GIF."""
    from PIL import Image

    from mmgym.baselines import make_baseline
    from mmgym.config import load_config
    from mmgym.evaluation.video import episode_frames, write_gif

    cfg = load_config("configs/cjp.yaml", ["market.horizon=0.1"])  # 20 steps
    frames = episode_frames(cfg.env, make_baseline("as", cfg.env, cfg.baselines), seed=0, max_frames=8)
    assert len(frames) == 7  # every 3rd step of 20, and the last
    path = write_gif(frames, tmp_path / "v.gif")
    with Image.open(path) as im:
        assert im.n_frames == 7 and im.size == (frames[0].shape[1], frames[0].shape[0])


def test_human_mode_steps_without_a_display():
    env = _short("mmgym/MarketMaking-v0", render_mode="human")  # draws every step
    env.reset(seed=0)
    for _ in range(3):
        env.step(env.action_space.sample())
    env.close()


def test_rendering_off_changes_nothing():
    """An env made with render_mode="rgb_array" (SB3's default) steps exactly like one without."""
    env_id = "mmgym/MarketMaking-v0"
    a, b = _short(env_id, render_mode="rgb_array"), _short(env_id)
    a.reset(seed=5)
    b.reset(seed=5)
    for _ in range(30):
        act = a.action_space.sample()
        oa, ra, *_ = a.step(act)
        ob, rb, *_ = b.step(act)
        np.testing.assert_array_equal(oa, ob)
        assert ra == rb


# ----------------------------------------------------------------- stable-baselines3 ---
@pytest.mark.parametrize("env_id", IDS)
def test_sb3_ppo_from_an_env_id(env_id):
    """``PPO("MlpPolicy", id)`` makes the env itself, with render_mode="rgb_array"."""
    from stable_baselines3 import PPO

    model = PPO("MlpPolicy", env_id, n_steps=64, batch_size=32, n_epochs=1, seed=0,
                policy_kwargs={"net_arch": [8]}, device="cpu")
    model.learn(128)
    assert model.num_timesteps == 128


def test_sb3_make_vec_env_vecnormalize_evaluate_policy():
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.evaluation import evaluate_policy
    from stable_baselines3.common.vec_env import VecNormalize

    venv = VecNormalize(make_vec_env("mmgym/MarketMaking-v0", n_envs=2, seed=0, env_kwargs=SHORT))
    model = PPO("MlpPolicy", venv, n_steps=32, batch_size=32, n_epochs=1, seed=0,
                policy_kwargs={"net_arch": [8]}, device="cpu").learn(64)
    venv.training = False
    mean, std = evaluate_policy(model, venv, n_eval_episodes=2, warn=False)
    assert np.isfinite(mean) and np.isfinite(std)


SUBPROC_SCRIPT = """
import numpy as np
import mmgym  # registers the ids; SubprocVecEnv's forkserver imports this __main__ first
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import SubprocVecEnv

if __name__ == "__main__":
    venv = make_vec_env("mmgym/MarketMaking-v0", n_envs=2, seed=0, vec_env_cls=SubprocVecEnv,
                        env_kwargs={SHORT!r})
    done_infos = []
    venv.reset()
    for _ in range(25):
        obs, r, done, infos = venv.step(np.zeros((2,) + venv.action_space.shape, np.float32))
        done_infos += [i for i in infos if "episode" in i]
    venv.close()
    assert np.all(np.isfinite(obs)) and len(done_infos) == 2, done_infos
    for i in done_infos:  # Monitor's episode info, ours alongside
        assert i["episode"]["l"] == 20 and i["mm_episode"]["length"] == 20, i
    print("ok")
"""


def test_sb3_subproc_vec_env(tmp_path):
    """SB3's SubprocVecEnv (forkserver workers) from a user's script, as a user runs it."""
    import subprocess
    import sys

    script = tmp_path / "user_script.py"
    script.write_text(SUBPROC_SCRIPT.replace("{SHORT!r}", repr(SHORT)))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-3000:]


# -------------------------------------------------------------- CleanRL-style loop ---
def test_cleanrl_style_ppo_loop():
    """What CleanRL's ppo_continuous_action.py does: SyncVectorEnv over gym.make thunks with its
    usual wrappers, a torch actor-critic, GAE, clipped updates; episodic returns read from
    ``infos["episode"]``."""
    import torch
    from torch import nn

    torch.set_num_threads(1)
    torch.manual_seed(0)

    def make_env(idx):
        def thunk():
            env = gym.make("mmgym/MarketMaking-v0", **SHORT)
            env = gym.wrappers.FlattenObservation(env)
            env = gym.wrappers.RecordEpisodeStatistics(env)
            env = gym.wrappers.ClipAction(env)
            env = gym.wrappers.NormalizeObservation(env)
            env = gym.wrappers.TransformObservation(env, lambda o: np.clip(o, -10, 10), env.observation_space)
            env = gym.wrappers.NormalizeReward(env, gamma=0.99)
            return gym.wrappers.TransformReward(env, lambda r: float(np.clip(r, -10, 10)))
        return thunk

    n_envs, n_steps = 2, 32
    envs = gym.vector.SyncVectorEnv([make_env(i) for i in range(n_envs)])
    obs_dim = int(np.prod(envs.single_observation_space.shape))
    act_dim = int(np.prod(envs.single_action_space.shape))
    actor = nn.Sequential(nn.Linear(obs_dim, 16), nn.Tanh(), nn.Linear(16, act_dim))
    critic = nn.Sequential(nn.Linear(obs_dim, 16), nn.Tanh(), nn.Linear(16, 1))
    logstd = nn.Parameter(torch.zeros(1, act_dim))
    opt = torch.optim.Adam([*actor.parameters(), *critic.parameters(), logstd], lr=3e-4)
    next_obs, _ = envs.reset(seed=0)
    next_obs = torch.tensor(next_obs, dtype=torch.float32)
    returns_seen = []
    for _ in range(2):
        obs_b, act_b, logp_b, rew_b, done_b, val_b = [], [], [], [], [], []
        for _ in range(n_steps):
            with torch.no_grad():
                dist = torch.distributions.Normal(actor(next_obs), logstd.exp())
                action = dist.sample()
                obs_b.append(next_obs)
                act_b.append(action)
                logp_b.append(dist.log_prob(action).sum(1))
                val_b.append(critic(next_obs).squeeze(1))
            o, r, term, trunc, infos = envs.step(action.numpy())
            rew_b.append(torch.tensor(r, dtype=torch.float32))
            done_b.append(torch.tensor(np.logical_or(term, trunc), dtype=torch.float32))
            next_obs = torch.tensor(o, dtype=torch.float32)
            if "episode" in infos:
                returns_seen += list(infos["episode"]["r"][infos["_episode"]])
        with torch.no_grad():
            adv = torch.zeros(n_steps, n_envs)
            last = torch.zeros(n_envs)
            nv = critic(next_obs).squeeze(1)
            for t in reversed(range(n_steps)):
                nxt = nv if t == n_steps - 1 else val_b[t + 1]
                delta = rew_b[t] + 0.99 * nxt * (1 - done_b[t]) - val_b[t]
                last = delta + 0.99 * 0.95 * (1 - done_b[t]) * last
                adv[t] = last
            ret = adv + torch.stack(val_b)
        b_obs, b_act = torch.cat(obs_b), torch.cat(act_b)
        dist = torch.distributions.Normal(actor(b_obs), logstd.exp())
        ratio = (dist.log_prob(b_act).sum(1) - torch.cat(logp_b)).exp()
        a = adv.reshape(-1)
        a = (a - a.mean()) / (a.std() + 1e-8)
        pg = torch.max(-a * ratio, -a * ratio.clamp(0.8, 1.2)).mean()
        v_loss = 0.5 * ((critic(b_obs).squeeze(1) - ret.reshape(-1)) ** 2).mean()
        opt.zero_grad()
        (pg + 0.5 * v_loss).backward()
        opt.step()
    envs.close()
    assert len(returns_seen) >= n_envs * 2 and np.all(np.isfinite(returns_seen))


# ------------------------------------------------------------------------- RLlib ---
def test_rllib_smoke():
    """Optional: RLlib's PPO builds and trains one iteration on a registered id."""
    pytest.importorskip("ray.rllib")
    import ray
    from ray.rllib.algorithms.ppo import PPOConfig
    from ray.tune.registry import register_env

    register_env("mmgym-short", lambda cfg: gym.make("mmgym/MarketMaking-v0", **SHORT))
    ray.init(num_cpus=1, include_dashboard=False, ignore_reinit_error=True)
    try:
        algo = (PPOConfig().environment("mmgym-short").env_runners(num_env_runners=0)
                .training(train_batch_size=64, minibatch_size=32, num_epochs=1).build())
        result = algo.train()
        algo.stop()
        assert result is not None
    finally:
        ray.shutdown()


def test_mmgym_import_registers_every_id():
    assert set(IDS) <= set(gym.registry)
    assert mmgym.__version__

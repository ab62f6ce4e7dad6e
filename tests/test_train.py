"""train.py end to end: run directory, TensorBoard tags, resume, Ctrl-C, determinism, clean errors.

Training runs use configs/smoke.yaml (a 40-step market, a few thousand steps: seconds each).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SMOKE = str(ROOT / "configs" / "smoke.yaml")
SAC_SET = ["agent.algo=sac",
           "agent.kwargs={learning_starts: 200, batch_size: 64, gamma: 1.0, policy_kwargs: {net_arch: [16, 16]}}"]

pytestmark = pytest.mark.slow


def _run(*args, timeout=300):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, str(ROOT / "train.py"), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def _scalars(run_dir: Path):
    from tbparse import SummaryReader

    return SummaryReader(str(run_dir / "tb")).scalars


def _num_timesteps(zip_path: Path) -> int:
    with zipfile.ZipFile(zip_path) as zf:
        return int(json.loads(zf.read("data"))["num_timesteps"])


def _check_run_dir(run_dir: Path, off_policy: bool) -> None:
    for name in ("config.yaml", "model.zip", "vecnormalize.pkl", "summary.json", "best/model.zip",
                 "best/vecnormalize.pkl", "checkpoints/step_1280/model.zip"):
        assert (run_dir / name).is_file(), name
    assert list((run_dir / "tb").glob("*_seed*/events.out.tfevents.*"))  # named by config and seed
    last = run_dir / "checkpoints" / "step_3200"
    assert (last / "replay_buffer.pkl").is_file() == off_policy
    assert not (run_dir / "checkpoints" / "step_1280" / "replay_buffer.pkl").exists()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["num_timesteps"] == 3200
    assert set(summary["final_eval"]) == {"agent", "as", "glft", "optimal"}
    tags = set(_scalars(run_dir).tag)
    for prefix in ("rollout/", "train/", "time/", "mm/", "reward/", "eval/baseline/"):
        assert any(t.startswith(prefix) for t in tags), (prefix, sorted(tags))
    for tag in ("mm/pnl", "mm/objective", "mm/abs_inventory", "mm/max_abs_inventory", "mm/spread",
                "mm/fills", "mm/impact_cost", "mm/gamma", "mm/skew", "reward/pnl",
                "reward/inventory_penalty", "reward/terminal_penalty", "eval/objective_mean",
                "eval/optimality_ratio", "eval/baseline/as/objective_mean",
                "eval/baseline/glft/objective_mean", "eval/baseline/optimal/objective_mean"):
        assert tag in tags, tag
    from tbparse import SummaryReader

    text = SummaryReader(str(run_dir / "tb")).text
    assert "hparams" in set(text.tag) and "agent.algo" in text.value.iloc[0]
    _check_tensorboard_views(run_dir, tags)


def _check_tensorboard_views(run_dir: Path, tags: set[str]) -> None:
    """The custom-scalars layout names only tags the run logs (every chart has data), and the
    HParams session lists the run's algorithm and metrics that were logged."""
    import re

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.custom_scalar import layout_pb2
    from tensorboard.plugins.hparams import plugin_data_pb2

    (run_tb,) = [p for p in (run_dir / "tb").iterdir() if p.is_dir()]
    acc = EventAccumulator(str(run_tb))
    acc.Reload()
    raw = acc.Tensors("custom_scalars__config__")[0].tensor_proto.string_val[0]  # the layout proto
    layout = layout_pb2.Layout.FromString(raw)
    charts = [c for cat in layout.category for c in cat.chart]
    assert len(charts) >= 4
    for chart in charts:
        for pattern in chart.multiline.tag:
            assert any(re.fullmatch(pattern, t) for t in tags), (chart.title, pattern)
    baselines = [t for t in tags if t.startswith("eval/baseline/")]
    agent_chart = charts[0].multiline.tag  # the agent and every baseline on one chart
    assert all(any(re.fullmatch(p, t) for p in agent_chart) for t in baselines + ["eval/objective_mean"])
    content = acc.PluginTagToContent("hparams")
    exp = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/experiment"]).experiment
    assert {m.name.tag for m in exp.metric_infos} <= tags
    start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"])
    assert start.session_start_info.hparams["agent.algo"].string_value in ("ppo", "sac")


@pytest.mark.parametrize("algo", ["ppo", "sac"])
def test_smoke_train_writes_run_dir_and_tensorboard(tmp_path, algo):
    run_dir = tmp_path / algo
    extra = ["--set", *SAC_SET] if algo == "sac" else []
    res = _run(SMOKE, "--run-dir", str(run_dir), *extra)
    assert res.returncode == 0, res.stderr
    assert "3,200 steps" in res.stdout and "optimal" in res.stdout and "ratio" in res.stdout
    _check_run_dir(run_dir, off_policy=algo == "sac")
    # evaluate.py loads the trained model (with its VecNormalize statistics)
    ev = subprocess.run([sys.executable, str(ROOT / "evaluate.py"), str(run_dir / "config.yaml"),
                         "--agents", "as", f"rl={run_dir / 'model.zip'}", "--episodes", "20",
                         "--no-plots", "--out", str(tmp_path / "eval")],
                        cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True, text=True)
    assert ev.returncode == 0, ev.stderr


def test_resume_continues_num_timesteps(tmp_path):
    from mmgym.agents.train import train

    from mmgym.config import load_config

    run_dir = tmp_path / "r"
    cfg = load_config(SMOKE, [f"train.run_dir={run_dir}", "train.total_timesteps=1920",
                              "train.checkpoint_freq=640", "train.eval_freq=640"])
    first = train(cfg, log=lambda *_: None)
    assert first.num_timesteps == 1920
    with pytest.raises(Exception, match="already holds a run"):
        train(cfg, log=lambda *_: None)
    cfg2 = load_config(SMOKE, [f"train.run_dir={run_dir}", "train.total_timesteps=3200",
                               "train.checkpoint_freq=640", "train.eval_freq=640"])
    second = train(cfg2, resume=True, log=lambda *_: None)
    assert second.num_timesteps == 3200 and second.trained_timesteps == 3200 - 1920
    assert _num_timesteps(run_dir / "model.zip") == 3200
    s = _scalars(run_dir)
    steps = sorted(set(s[s.tag == "rollout/ep_rew_mean"].step))
    assert steps[0] <= 640 and steps[-1] == 3200 and 1920 in steps and 2560 in steps
    ev = s[s.tag == "eval/objective_mean"].step.tolist()
    assert sorted(ev) == [0, 640, 1280, 1920, 2560, 3200]  # one curve, no duplicate at the resume
    events = list((run_dir / "tb").rglob("events.out.tfevents.*"))
    assert len(events) == 2 and len({e.parent for e in events}) == 1  # same folder
    # resuming with a different env or agent is refused, naming the key and both values
    cfg3 = load_config(SMOKE, [f"train.run_dir={run_dir}", "train.total_timesteps=3840",
                               "train.checkpoint_freq=640", "train.eval_freq=640", "market.sigma=5"])
    with pytest.raises(Exception, match=r"--resume: env\.market\.sigma differs .*run: 2\.0, now: 5\.0"):
        train(cfg3, resume=True, log=lambda *_: None)


def test_log_std_schedule_is_followed_and_continues_after_resume(tmp_path):
    """agent.log_std_schedule: before each rollout the policy's log std is exactly the line's
    value at that step (not learned in between), and a resumed run continues the same line."""
    from stable_baselines3 import PPO

    from mmgym.agents.train import train
    from mmgym.config import load_config

    run_dir = tmp_path / "r"
    base = [f"train.run_dir={run_dir}", "train.checkpoint_freq=640", "train.eval_freq=0",
            "agent.log_std_schedule=[-0.5, -2.5]"]
    line = lambda step: -0.5 + (-2.5 + 0.5) * step / 3200  # noqa: E731
    train(load_config(SMOKE, base + ["train.total_timesteps=1920"]), log=lambda *_: None)
    # learned SB3 would have moved log_std in the rollout's gradient steps; scheduled, it holds
    # the value set before the last rollout (at step 1920 - 640 = 1280 of a 1920-step line)
    saved = PPO.load(run_dir / "model.zip", device="cpu").policy.log_std.detach().numpy()
    assert saved == pytest.approx([-0.5 - 2.0 * 1280 / 1920] * 2, abs=1e-6)
    train(load_config(SMOKE, base + ["train.total_timesteps=3200"]), resume=True, log=lambda *_: None)
    s = _scalars(run_dir)
    rec = s[s.tag == "train/log_std_scheduled"]
    after = rec[rec.step > 1920]
    assert len(after) >= 1
    for step, value in zip(after.step, after.value):
        # logged at the dump after the rollout that started at step - 640
        assert value == pytest.approx(line(step - 640), abs=1e-6)
    final = PPO.load(run_dir / "model.zip", device="cpu").policy.log_std.detach().numpy()
    assert final == pytest.approx([line(3200 - 640)] * 2, abs=1e-6)


def test_log_std_schedule_piecewise_points():
    """A list of [progress, log std] points is the piecewise-linear line through them (held at the
    last value past the end), the same line as [start, end] when given its two ends."""
    from mmgym.agents.callbacks import LogStdScheduleCallback
    from mmgym.config import load_config

    pts = load_config(SMOKE, ["agent.log_std_schedule=[[0, -1.5], [0.5, -1.7], [1, -3]]"]).agent.log_std_points()
    cb = LogStdScheduleCallback(pts, 1000)
    assert [cb.value(n) for n in (0, 250, 500, 750, 1000, 5000)] == pytest.approx(
        [-1.5, -1.6, -1.7, -2.35, -3.0, -3.0])
    two = LogStdScheduleCallback(load_config(SMOKE, ["agent.log_std_schedule=[-1.5, -3]"]).agent.log_std_points(), 1000)
    assert [two.value(n) for n in (0, 400, 1000)] == pytest.approx([-1.5, -2.1, -3.0])


def test_features_policy_reads_only_its_columns_after_save_load_and_resume(tmp_path):
    """agent.features: the saved model's actions and values do not move when any unselected column
    changes and do when a selected one does (the extractor is the policy's first layer, saved in
    the zip); the env's observation space is the full one; a resumed run keeps the selection."""
    import numpy as np
    import torch
    from stable_baselines3 import PPO

    from mmgym.agents.features import ObservationColumns
    from mmgym.agents.train import train
    from mmgym.config import load_config

    run_dir = tmp_path / "f"
    base = [f"train.run_dir={run_dir}", "train.checkpoint_freq=640", "train.eval_freq=640",
            "agent.features=[time_left, inventory]"]
    train(load_config(SMOKE, base + ["train.total_timesteps=1280"]), log=lambda *_: None)
    train(load_config(SMOKE, base + ["train.total_timesteps=1920"]), resume=True, log=lambda *_: None)
    model = PPO.load(run_dir / "model.zip", device="cpu")
    ext = model.policy.features_extractor
    assert isinstance(ext, ObservationColumns) and ext.columns == [1, 0]
    dim = model.observation_space.shape[0]
    assert dim == 6  # the smoke market's full observation
    rng = np.random.default_rng(0)
    obs = rng.uniform(-1, 1, size=(64, dim)).astype(np.float32)
    noisy = obs.copy()
    noisy[:, 2:] = rng.uniform(-5, 5, size=(64, dim - 2))
    with torch.no_grad():
        for o2, same in ((noisy, True), (obs[:, [1, 0, 2, 3, 4, 5]], False)):
            a1, a2 = (model.predict(o, deterministic=True)[0] for o in (obs, o2))
            v1, v2 = (model.policy.predict_values(torch.as_tensor(o)).numpy() for o in (obs, o2))
            assert np.array_equal(a1, a2) == same and np.array_equal(v1, v2) == same


def test_resume_sac_restores_replay_buffer(tmp_path):
    from mmgym.agents.train import train

    from mmgym.config import load_config

    run_dir = tmp_path / "sac"
    base = [f"train.run_dir={run_dir}", "train.checkpoint_freq=640", "train.eval_freq=0", *SAC_SET]
    train(load_config(SMOKE, [*base, "train.total_timesteps=640"]), log=lambda *_: None)
    assert (run_dir / "checkpoints" / "step_640" / "replay_buffer.pkl").is_file()
    res = train(load_config(SMOKE, [*base, "train.total_timesteps=1280"]), resume=True, log=lambda *_: None)
    assert res.num_timesteps == 1280
    assert (run_dir / "checkpoints" / "step_1280" / "replay_buffer.pkl").is_file()
    assert not (run_dir / "checkpoints" / "step_640" / "replay_buffer.pkl").exists()


def test_same_seed_same_learning_curve(tmp_path):
    from mmgym.agents.train import train

    from mmgym.config import load_config

    curves = []
    for name in ("a", "b"):
        cfg = load_config(SMOKE, [f"train.run_dir={tmp_path / name}", "train.total_timesteps=1920"])
        train(cfg, log=lambda *_: None)
        s = _scalars(tmp_path / name)
        s = s[~s.tag.str.startswith("time/")].sort_values(["tag", "step"]).reset_index(drop=True)
        curves.append(s)
    a, b = curves
    assert len(a) > 50 and {"train/loss", "rollout/ep_rew_mean", "eval/objective_mean"} <= set(a.tag)
    assert a.tag.tolist() == b.tag.tolist() and a.step.tolist() == b.step.tolist()
    assert a.value.tolist() == b.value.tolist()


def test_ctrl_c_writes_checkpoint_then_resume(tmp_path):
    run_dir = tmp_path / "int"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, str(ROOT / "train.py"), SMOKE, "--run-dir", str(run_dir),
                             "--set", "train.total_timesteps=100000000", "train.checkpoint_freq=0"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not list((run_dir / "tb").rglob("events.out.tfevents.*")):
        time.sleep(0.2)
    time.sleep(2.0)  # some training steps
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    ckpts = list((run_dir / "checkpoints").glob("step_*"))
    assert len(ckpts) == 1 and (ckpts[0] / "model.zip").is_file()
    steps = int(ckpts[0].name.split("_")[1])
    assert steps > 0 and _num_timesteps(ckpts[0] / "model.zip") == steps
    res = _run(SMOKE, "--run-dir", str(run_dir), "--resume", "--set", f"train.total_timesteps={steps + 640}",
               "train.checkpoint_freq=0")
    assert res.returncode == 0, res.stderr
    assert _num_timesteps(run_dir / "model.zip") >= steps + 640


BAD = [
    # (YAML text or None, --set overrides, expected substrings of the one-line error)
    ("agent:\n  algo: ppo\n  kwargz: {}\n", [], ["agent.kwargz", "unknown key"]),
    ("train:\n  n_envs: many\n", [], ["train.n_envs", "many"]),
    ("train:\n  total_timesteps: -5\n", [], ["train.total_timesteps", "-5"]),
    ("agent:\n  algo: dqn2\n", [], ["agent.algo", "dqn2", "ppo"]),
    ("agent:\n  kwargs: {n_stepz: 64}\n", [], ["agent.kwargs.n_stepz", "unknown PPO argument"]),
    ("agent:\n  kwargs: {n_steps: lots}\n", [], ["agent.kwargs.n_steps", "lots"]),
    ("agent:\n  kwargs: {policy_kwargs: {activation_fn: swish3}}\n", [],
     ["agent.kwargs.policy_kwargs.activation_fn", "swish3"]),
    ("agent:\n  kwargs: {policy_kwargs: {net_arch: \"dict(pi=[64])\"}}\n", [],
     ["agent.kwargs.policy_kwargs.net_arch", "dict(pi=[64])"]),
    ("agent:\n  kwargs: {seed: 3}\n", [], ["agent.kwargs.seed", "train.seed"]),
    ("agent:\n  kwargs: {batch_size: 1}\n", [], ["agent.kwargs", "PPO"]),
    (None, ["train.eval_freqq=3"], ["eval_freqq", "unknown key"]),
    (None, ["agent.kwargs.learning_rat=0.1"], ["agent.kwargs.learning_rat", "unknown PPO argument"]),
    (None, ["market.sigma=abc"], ["--set market.sigma=abc", "env.market.sigma", "'abc'"]),
    (None, ["train.eval_baselines=[as,foo]"], ["train.eval_baselines.1", "'foo'"]),
    (None, ["env.id=mmgym/MarketMakin-v0"], ["env.id", "mmgym/MarketMakin-v0", "registered"]),
    (None, [*SAC_SET, "agent.log_std_schedule=[-1, -2]"], ["agent.log_std_schedule", "SAC"]),
    (None, ["agent.log_std_schedule=[-1]"], ["agent.log_std_schedule", "[-1]"]),
    (None, ["agent.log_std_schedule=[[0.1, -1], [1, -2]]"], ["agent.log_std_schedule", "from 0 to 1"]),
    (None, ["agent.features=[inventory, spread]"], ["agent.features[1]", "'spread'", "time_left"]),
    (None, ["agent.features=[inventory, inventory]"], ["agent.features[1]", "named twice"]),
    (None, ["agent.features=[]"], ["agent.features", "at least one"]),
    (None, ["agent.features=[inventory]", "agent.policy=MultiInputPolicy"], ["agent.features", "MlpPolicy"]),
    (None, ["agent.features=[inventory]", "agent.kwargs.policy_kwargs={features_extractor_class: x}"],
     ["features_extractor_class", "agent.features"]),
]


@pytest.mark.parametrize("text,overrides,expect", BAD, ids=[b[2][0] for b in BAD])
def test_bad_config_one_line_error(tmp_path, text, overrides, expect, capsys):
    """In process (an exception would fail the test); test_cli.py and the Ctrl-C tests run the
    script itself."""
    from mmgym.agents import cli_train

    path = tmp_path / "bad.yaml"
    if text is None:
        path.write_text(Path(SMOKE).read_text())
    else:
        path.write_text(Path(SMOKE).read_text().split("\nagent:")[0] + "\n"
                        + ("" if text.startswith("agent:") else "agent: {algo: ppo}\n") + text)
    args = [str(path), "--run-dir", str(tmp_path / "run")]
    if overrides:
        args += ["--set", *overrides]
    assert cli_train.main(args) == 2
    err = capsys.readouterr().err
    lines = [ln for ln in err.strip().splitlines() if not ln.startswith("train.py: note:")]
    assert len(lines) == 1, err
    assert lines[0].startswith("train.py: error: ")
    for s in expect:
        assert s in lines[0], (s, lines[0])
    if text is not None and overrides == []:
        assert str(path) in lines[0]
    assert not (tmp_path / "run" / "model.zip").exists()


def test_run_dir_that_cannot_be_created_is_clean(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    res = _run(SMOKE, "--run-dir", str(blocker / "run"))
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert "train.run_dir" in res.stderr and "Traceback" not in res.stderr


def test_resume_without_checkpoint_is_clean(tmp_path):
    res = _run(SMOKE, "--run-dir", str(tmp_path / "none"), "--resume")
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1
    assert "no checkpoint" in res.stderr


def test_training_scenarios_never_replay_evaluation_scenarios():
    """The trainer's streams (TRAINING_STREAMS) are disjoint from every evaluation seed's: with
    train.seed = eval.seed = 0 (configs/ppo_cjp.yaml's choice) no training row starts from the
    random state of any evaluation episode."""
    from mmgym.agents.vec_env import MMVecEnv

    from mmgym.config import load_config
    from mmgym.envs.market import TRAINING_STREAMS
    from mmgym.make import make_market

    cfg = load_config("configs/ppo_cjp.yaml")
    n_train, n_eval = 200, 2000
    train_env = MMVecEnv(cfg.env, num_envs=n_train, spawn_key=TRAINING_STREAMS)
    train_env.seed(0)
    train_env.reset()
    evaluation = make_market(cfg.env, n_eval)
    evaluation.seed_rows(list(range(n_eval)))  # episode e of eval seed 0 uses seed e
    train_states = {tuple(r) for r in train_env.market.rng.tolist()}
    eval_states = {tuple(r) for r in evaluation.rng.tolist()}
    assert len(train_states) == n_train and not train_states & eval_states
    # without the key, the same seeds ARE the evaluation's scenarios (what the key prevents)
    plain = MMVecEnv(cfg.env, num_envs=n_train)
    plain.seed(0)
    plain.reset()
    assert {tuple(r) for r in plain.market.rng.tolist()} <= eval_states


def test_training_seeds_learn_from_disjoint_markets():
    """Training seeds 0, 1, 2 draw their markets from disjoint streams: with SB3's plain seed + i,
    seed 1's env i would replay seed 0's env i + 1 (what training_env_seed prevents)."""
    from mmgym.agents.train import training_env_seed
    from mmgym.agents.vec_env import MMVecEnv

    from mmgym.config import load_config
    from mmgym.envs.market import TRAINING_STREAMS

    cfg = load_config("configs/ppo_cjp.yaml")

    def states(first_seed: int) -> set:
        env = MMVecEnv(cfg.env, num_envs=200, spawn_key=TRAINING_STREAMS)
        env.seed(first_seed)
        env.reset()
        return {tuple(r) for r in env.market.rng.tolist()}

    s0, s1, s2 = (states(training_env_seed(k)) for k in (0, 1, 2))
    assert len(s0) == len(s1) == len(s2) == 200
    assert not (s0 & s1 or s0 & s2 or s1 & s2)
    assert len(states(0) & states(1)) == 199  # the overlap the stride removes
    assert training_env_seed(0) == 0  # seed 0's streams are unchanged


def _curve(run_dir: Path, tag: str) -> list[float]:
    s = _scalars(run_dir)
    return s[s.tag == tag].sort_values("step").value.tolist()


def test_seeds_train_one_run_per_seed(tmp_path):
    """--seeds: one run directory per seed, the config identical but for train.seed and
    train.run_dir, distinct learning curves; a second call never clobbers them, --resume skips them."""
    import yaml

    base = tmp_path / "smoke"
    args = [SMOKE, "--run-dir", str(base), "--seeds", "0", "1",
            "--set", "train.total_timesteps=1280", "train.eval_freq=640", "train.checkpoint_freq=640"]
    res = _run(*args)
    assert res.returncode == 0, res.stderr
    configs = {}
    for k in (0, 1):
        run_dir = base / f"seed{k}"
        assert (run_dir / "model.zip").is_file() and _num_timesteps(run_dir / "model.zip") == 1280
        assert json.loads((run_dir / "summary.json").read_text())["num_timesteps"] == 1280
        configs[k] = yaml.safe_load((run_dir / "config.yaml").read_text())
        assert configs[k]["train"]["seed"] == k and configs[k]["train"]["run_dir"] == str(run_dir)
        assert f"train.py: {run_dir}: 1,280 steps" in res.stdout
    for c in configs.values():
        del c["train"]["seed"], c["train"]["run_dir"]
    assert configs[0] == configs[1]
    for tag in ("eval/objective_mean", "rollout/ep_rew_mean", "train/loss"):
        a, b = _curve(base / "seed0", tag), _curve(base / "seed1", tag)
        assert len(a) == len(b) > 0 and a != b, tag
    assert "2 seeds: objective mean" in res.stdout
    # nothing is clobbered: a second call is refused before anything trains, --resume skips both
    before = {k: (base / f"seed{k}" / "model.zip").read_bytes() for k in (0, 1)}
    again = _run(*args)
    assert again.returncode == 2 and len(again.stderr.strip().splitlines()) == 1, again.stderr
    assert "seed0 already holds a run" in again.stderr and "Traceback" not in again.stderr
    resumed = _run(*args, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.count("finished earlier (skipped)") == 2
    assert before == {k: (base / f"seed{k}" / "model.zip").read_bytes() for k in (0, 1)}
    # a changed agent is refused on --resume, even for a finished seed (it would be skipped)
    changed = _run(*args, "agent.kwargs.n_epochs=3", "--resume")
    assert changed.returncode == 2 and "agent.kwargs.n_epochs differs" in changed.stderr


def test_seeds_ctrl_c_checkpoints_the_current_seed_then_resume_continues(tmp_path):
    base = tmp_path / "int"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, str(ROOT / "train.py"), SMOKE, "--run-dir", str(base),
                             "--seeds", "3", "5", "--set", "train.total_timesteps=100000000",
                             "train.checkpoint_freq=0"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not list((base / "seed3" / "tb").rglob("events.out.tfevents.*")):
        time.sleep(0.2)
    time.sleep(2.0)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    ckpts = list((base / "seed3" / "checkpoints").glob("step_*"))
    assert len(ckpts) == 1 and not (base / "seed5").exists()
    assert f"{base / 'seed3'}: " in out and "interrupted" in out
    assert f"{base / 'seed5'}: not started (continue with --resume)" in out
    steps = int(ckpts[0].name.split("_")[1])
    total = steps + 640
    res = _run(SMOKE, "--run-dir", str(base), "--seeds", "3", "5", "--resume",
               "--set", f"train.total_timesteps={total}", "train.checkpoint_freq=0")
    assert res.returncode == 0, res.stderr
    assert "resuming from" in res.stdout
    assert _num_timesteps(base / "seed3" / "model.zip") >= total
    assert _num_timesteps(base / "seed5" / "model.zip") >= total

"""evaluate.py end to end and the mmgym.evaluation library API."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mmgym.agents.policies import load_sb3_policy

from mmgym.baselines import evaluate_tables, make_baseline
from mmgym.config import load_config
from mmgym.evaluation import evaluate_agents, run_evaluation, run_policy

ROOT = Path(__file__).resolve().parents[1]

TINY = """\
env:
  market: {dt: 0.02, horizon: 1.0, max_inventory: 8, sigma: 1.0}
  reward: {inventory_penalty: 0.5, terminal_penalty: 0.01}
baselines: {gamma: 0.2}
eval: {episodes: 40, seed: 3, num_envs: 16}
"""

REQUIRED = {
    "pnl_mean", "pnl_std", "objective_mean", "objective_se", "spread_mean", "final_inventory_mean",
    "final_inventory_std", "abs_inventory_mean", "sharpe", "fills_mean", "impact_cost_mean",
    "certainty_equivalent", "objective_diff_mean", "objective_diff_se", "objective_diff_ci95",
    "pnl_diff_ci95", "reference",
}


def _run(*args, cwd=ROOT):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, str(ROOT / "evaluate.py"), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture()
def tiny(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    return path


def test_cli_end_to_end(tiny, tmp_path):
    out = tmp_path / "res"
    r = _run(str(tiny), "--agents", "as", "glft", "fixed", "optimal", "--episodes", "40", "--seed", "1",
             "--out", str(out), "--audit", "--set", "baselines.gamma=0.3", "market.sigma=1.5",
             "--set", "reward.terminal_penalty=0.02")
    assert r.returncode == 0, r.stderr
    assert "optimal V0" in r.stdout
    data = json.loads((out / "results.json").read_text())
    assert set(data["agents"]) == {"as", "glft", "fixed", "optimal"}
    for name, m in data["agents"].items():
        assert REQUIRED <= set(m), REQUIRED - set(m)
        assert m["episodes"] == 40 and m["reference"] == "optimal"
        assert m["objective_exact"] <= data["metadata"]["optimal_v0"] + 1e-9
    assert data["agents"]["optimal"]["objective_diff_mean"] == 0.0
    meta = data["metadata"]
    assert meta["seed"] == 1 and meta["episodes"] == 40 and meta["gamma"] == 0.3
    assert meta["env"]["market"]["sigma"] == 1.5 and meta["env"]["reward"]["terminal_penalty"] == 0.02
    csv = pd.read_csv(out / "results.csv")
    assert list(csv["agent"]) == ["as", "glft", "fixed", "optimal"]
    assert {"objective_diff_ci95_lo", "objective_diff_ci95_hi"} <= set(csv.columns)
    for png in ("pnl_distribution", "inventory_distribution", "sample_path", "depth_surface"):
        assert (out / f"{png}.png").stat().st_size > 1000
    audit = pd.read_csv(out / "audit.csv")
    assert list(audit.columns) == ["agent", "episode", "step", "side", "price", "qty", "inventory_after", "cash_after"]
    fills = audit[audit.agent == "as"]
    assert len(fills) == round(data["agents"]["as"]["fills_mean"] * 40)
    # per fill: one lot; inventory moves by one lot per bid/ask record
    assert set(fills.side) <= {"bid", "ask"} and (fills.qty == 1).all()


@pytest.mark.parametrize("args, needle", [
    (["--agents", "as", "nosuch"], "unknown agent 'nosuch' (valid baselines: as, symmetric"),
    (["--agents", "as", "--set", "market.sigmaa=1"], "unknown key 'sigmaa'"),
    (["--agents", "as", "--set", "market.sigma=-1"], "market.sigma"),
    (["--agents", "rl=/no/such/model.zip"], "not found"),
    (["--agents", "as", "rl=/no/such/seed*/model.zip"], "--agents rl=/no/such/seed*/model.zip: no model file matches"),
    (["--agents", "boundary"], "action.hedge"),
    (["--agents", "as", "--reference", "glft"], "--reference 'glft'"),
    (["--agents", "as_tuned", "--seed", str(2**40 - 2)], "overlap the tuning seeds"),
    (["--agents", "glft_tuned", "--set", "baselines.tuning.method=exact", "market.tick_size=0.25"],
     "baselines.tuning.method=exact"),
    (["--agents", "as_tuned", "--set", "baselines.tuning.c_points=1"], "baselines.tuning.c_points"),
])
def test_cli_bad_input(tiny, args, needle, capsys, tmp_path):
    """In process (an exception would fail the test); the script's own exit path is checked once
    below, as a subprocess. A refused run leaves no output folder behind."""
    from mmgym.agents import cli_evaluate

    out = tmp_path / "res"
    assert cli_evaluate.main([str(tiny), "--episodes", "4", "--out", str(out), *args]) == 2
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(lines) == 1 and needle in lines[0], lines
    assert not out.exists()


def test_cli_bad_input_as_a_script(tiny):
    r = _run(str(tiny), "--episodes", "4", "--agents", "as", "nosuch")
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "unknown agent 'nosuch'" in lines[0], r.stderr


def test_cli_records_the_tuned_parameters(tiny, tmp_path):
    out = tmp_path / "res"
    r = _run(str(tiny), "--agents", "as", "as_tuned", "glft_tuned", "optimal", "--episodes", "40",
             "--out", str(out), "--no-plots", "--set", "market.max_inventory=4",
             "baselines.tuning.c_points=3", "baselines.tuning.gamma_points=5")
    assert r.returncode == 0, r.stderr
    data = json.loads((out / "results.json").read_text())
    for name in ("as_tuned", "glft_tuned"):
        m = data["agents"][name]
        p = m["params"]
        assert p["name"] == name and p["gamma"] > 0 and p["tuning"]["method"] == "exact"
        assert p["tuning"]["objective"] == pytest.approx(m["objective_exact"], rel=1e-12)
        assert p["tuning"]["evaluations"] > 5 and p["tuning"]["seconds"] >= 0
        assert m["objective_exact"] <= data["metadata"]["optimal_v0"] + 1e-9
        line = [ln for ln in r.stdout.splitlines() if ln.startswith(f"tuned: {name}: gamma = ")]
        assert len(line) == 1 and "exact DP policy evaluation" in line[0]
    assert "c" in data["agents"]["as_tuned"]["params"]
    assert data["agents"]["as_tuned"]["objective_exact"] >= data["agents"]["as"]["objective_exact"] - 1e-9
    assert data["metadata"]["baselines"]["tuning"]["seed"] == 2**40
    # simulation: the tuning set and its standard error are recorded
    r = _run(str(tiny), "--agents", "glft_tuned", "--episodes", "8", "--out", str(out), "--no-plots",
             "--set", "market.max_inventory=4", "market.dt=0.005", "market.horizon=0.2",
             "baselines.tuning.method=simulation",
             "baselines.tuning.episodes=16", "baselines.tuning.seed=5000")
    assert r.returncode == 0, r.stderr
    t = json.loads((out / "results.json").read_text())["agents"]["glft_tuned"]["params"]["tuning"]
    assert t["method"] == "simulation" and t["episodes"] == 16 and t["seeds"] == [5000, 5015]
    assert t["objective_se"] > 0
    assert "simulation on 16 episodes, seeds 5000..5015" in r.stdout


def test_cli_missing_config(tmp_path):
    r = _run(str(tmp_path / "nope.yaml"), "--agents", "as")
    assert r.returncode == 2 and "file not found" in r.stderr and "Traceback" not in r.stderr


def test_library_crn_cache_and_chunking():
    cfg = load_config(TINY_DICT())
    a = run_evaluation(cfg.env, {"as": "as", "optimal": "optimal"}, episodes=30, seed=4,
                       baselines_config=cfg.baselines, num_envs=7)
    b = run_evaluation(cfg.env, {"as": "as", "optimal": "optimal"}, episodes=30, seed=4,
                       baselines_config=cfg.baselines, num_envs=30)
    for name in ("as", "optimal"):
        np.testing.assert_array_equal(a.batches[name].objective, b.batches[name].objective)
    # common random numbers: a constant policy's mid path is the same whatever the agent
    np.testing.assert_array_equal(a.batches["as"].path["mid"], a.batches["optimal"].path["mid"])
    # callables run on the normalised-action env with the same scenarios
    calls = []

    def zero_policy(obs):
        calls.append(obs.shape)
        return np.zeros((obs.shape[0], 2))

    res = evaluate_agents(cfg.env, {"zero": zero_policy, "as": "as"}, episodes=30, seed=4,
                          baselines_config=cfg.baselines)
    assert res["zero"]["reference"] == "zero" and res["zero"]["kind"] == "policy"
    assert calls[0] == (30, 6)
    assert res["as"]["objective_mean"] == pytest.approx(a.metrics["as"]["objective_mean"])


def test_objective_exact_only_where_the_dp_is_exact():
    """'exact E[obj]' (the DP policy evaluation) is within Monte Carlo error of the kernel's mean
    where the DP is exact: no tick, and a tick with a binomial mid that stays on the tick grid
    (the evaluation rounds the depths as the kernel does). With a gaussian mid the rounded depth
    depends on the mid inside the tick: the tick-free value is not the env's, so no agent gets one
    and the metadata says why."""
    agents = {n: n for n in ("as", "glft", "optimal")}
    aligned = ["market.tick_size=0.1", "market.mid_noise=binomial", "market.dt=0.0025",
               "market.horizon=0.5"]  # sigma sqrt(dt) = 0.1
    for overrides in ([], aligned):
        cfg = load_config("configs/cjp.yaml", overrides)
        res = run_evaluation(cfg.env, agents, episodes=2000, seed=7, baselines_config=cfg.baselines)
        assert "not_exact" not in res.metadata and res.metadata["optimal_exact"], overrides
        for name, m in res.metrics.items():
            assert abs(m["objective_mean"] - m["objective_exact"]) < 4 * m["objective_se"], (overrides, name)
        assert res.metrics["optimal"]["objective_exact"] == pytest.approx(res.metadata["optimal_v0"], rel=1e-12)
    cfg = load_config("configs/cjp.yaml", ["market.tick_size=0.25"])
    with pytest.warns(UserWarning, match="not exact"):
        res = run_evaluation(cfg.env, agents, episodes=2000, seed=7, baselines_config=cfg.baselines)
    assert "tick_size=0.25" in res.metadata["not_exact"] and not res.metadata["optimal_exact"]
    assert all(m["objective_exact"] is None for m in res.metrics.values())
    # what used to be reported there: the tick-free value, many standard errors off the env's mean
    m = res.metrics["as"]
    as_ = make_baseline("as", cfg.env, cfg.baselines)
    tick_free = evaluate_tables(cfg.env, *as_.tables())[0, cfg.env.market.max_inventory]
    assert abs(m["objective_mean"] - tick_free) > 4 * m["objective_se"]


def test_cli_notes_a_config_without_exact_values(tiny, tmp_path):
    out = tmp_path / "res"
    r = _run(str(tiny), "--agents", "as", "optimal", "--episodes", "8", "--out", str(out),
             "--no-plots", "--set", "market.tick_size=0.25")
    assert r.returncode == 0, r.stderr
    notes = [ln for ln in r.stdout.splitlines() if ln.startswith("note: no exact values")]
    assert len(notes) == 1 and "tick_size=0.25" in notes[0]
    assert "(not exact)" in r.stdout
    data = json.loads((out / "results.json").read_text())
    assert all(m["objective_exact"] is None for m in data["agents"].values())
    assert "tick_size=0.25" in data["metadata"]["not_exact"]


def TINY_DICT():
    import yaml

    return yaml.safe_load(TINY)


def test_import_mmgym_is_torch_free():
    code = ("import sys, mmgym, mmgym.evaluation, mmgym.baselines; "
            "assert 'torch' not in sys.modules and 'stable_baselines3' not in sys.modules, 'torch imported'")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


@pytest.mark.slow
def test_trained_sb3_agent(tmp_path, tiny):
    """A tiny PPO trained for a few hundred steps, saved with VecNormalize statistics, evaluates
    through the CLI and the library on the same scenarios."""
    import gymnasium as gym
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

    import mmgym  # noqa: F401  (registers the env)

    cfg = load_config(TINY_DICT())
    venv = VecNormalize(DummyVecEnv([lambda: gym.make("mmgym/MarketMaking-v0", config=cfg.env)]),
                        norm_reward=False)
    model = PPO("MlpPolicy", venv, n_steps=64, batch_size=32, n_epochs=1, seed=0, device="cpu",
                policy_kwargs={"net_arch": [8]})
    model.learn(256)
    model_dir = tmp_path / "ppo"
    model_dir.mkdir()
    model.save(model_dir / "model.zip")
    venv.save(str(model_dir / "vecnormalize.pkl"))

    policy = load_sb3_policy(model_dir / "model.zip", cfg.env)
    assert policy.vecnormalize is not None
    obs = np.zeros((5, 6), dtype=np.float32)
    expected, _ = model.predict(venv.normalize_obs(obs), deterministic=True)
    np.testing.assert_allclose(policy(obs), expected)
    batch = run_policy(cfg.env, policy, 12, seed=2)
    assert np.isfinite(batch.objective).all()

    out = tmp_path / "res"
    r = _run(str(tiny), "--agents", "as", f"ppo={model_dir / 'model.zip'}", "--episodes", "12",
             "--seed", "2", "--out", str(out), "--no-plots")
    assert r.returncode == 0, r.stderr
    data = json.loads((out / "results.json").read_text())
    assert data["agents"]["ppo"]["kind"] == "policy"
    assert data["agents"]["ppo"]["objective_mean"] == pytest.approx(batch.objective.mean())

    # a model from a train.py run directory: evaluating it on another market warns, one line
    import warnings

    import yaml

    (model_dir / "config.yaml").write_text(yaml.safe_dump(cfg.model_dump(mode="json")))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_sb3_policy(model_dir / "model.zip", cfg.env)  # same env: no warning
    other = load_config(TINY_DICT(), ["market.sigma=3.5"])
    with pytest.warns(UserWarning, match=r"trained with env\.market\.sigma=.* evaluated with 3\.5"):
        load_sb3_policy(model_dir / "model.zip", other.env)


def test_depth_surface_of_an_obs_policy_goes_through_the_kernel():
    """An obs-policy that always picks gamma (as_hybrid, zero skew) has the AS surface."""
    import math

    from mmgym.baselines import AvellanedaStoikov
    from mmgym.evaluation import depth_surface

    cfg = load_config(TINY_DICT())
    a = cfg.env.action
    gamma = 0.4
    a0 = 2 * (math.log(gamma) - math.log(a.gamma_min)) / (math.log(a.gamma_max) - math.log(a.gamma_min)) - 1

    def fixed_gamma(obs):
        return np.column_stack([np.full(obs.shape[0], a0), np.zeros(obs.shape[0])])

    qs, ts = np.arange(-8, 9), np.arange(0, 50, 7)
    got_b, got_a = depth_surface(cfg.env, fixed_gamma, qs, ts)
    want_b, want_a = depth_surface(cfg.env, AvellanedaStoikov(cfg.env, gamma), qs, ts)
    np.testing.assert_allclose(got_b, want_b, rtol=1e-10)
    np.testing.assert_allclose(got_a, want_a, rtol=1e-10)
    assert np.isnan(got_b[:, -1]).all() and np.isnan(got_a[:, 0]).all()


def test_paired_across_seeds_reduces_to_the_known_intervals():
    """Without training spread the interval is the single model's paired interval; without episode
    noise it is the t-interval over the seeds' paired means."""
    from scipy import stats as st

    from mmgym.evaluation import across_seeds, paired_across_seeds, paired_difference

    rng = np.random.default_rng(0)
    ref = rng.normal(10.0, 2.0, 400)
    one = ref + rng.normal(-0.3, 0.5, 400)
    same = paired_across_seeds(np.stack([one, one, one]), ref)
    single = paired_difference(one, ref)
    assert same["se_seeds"] == pytest.approx(0.0, abs=1e-15) and same["dof"] == pytest.approx(399)
    assert same["mean"] == pytest.approx(single["mean"]) and same["ci95"] == pytest.approx(single["ci95"])
    shifts = np.array([-0.2, 0.1, 0.4])
    pure = paired_across_seeds(ref[None, :] + shifts[:, None], ref)
    half = st.t.ppf(0.975, 2) * shifts.std(ddof=1) / np.sqrt(3)
    assert pure["se_episodes"] == pytest.approx(0.0, abs=1e-12) and pure["dof"] == pytest.approx(2)
    assert pure["ci95"] == pytest.approx([shifts.mean() - half, shifts.mean() + half])
    a = across_seeds(ref[None, :] + shifts[:, None])
    assert a["seeds_ci95"] == pytest.approx([ref.mean() + shifts.mean() - half, ref.mean() + shifts.mean() + half])
    assert a["se"] == pytest.approx(ref.std(ddof=1) / np.sqrt(400))


@pytest.mark.slow
def test_agent_over_training_seeds(tmp_path, tiny):
    """NAME=GLOB with several models is one agent over seeds: each seed runs on the same episodes
    as a model given alone, and the row's figures are computed from the seeds' runs as documented."""
    from mmgym.agents.vec_env import MMVecEnv
    from scipy import stats as st
    from stable_baselines3 import PPO

    cfg = load_config(TINY_DICT())
    runs = tmp_path / "runs"
    for k in (0, 1, 2):
        model = PPO("MlpPolicy", MMVecEnv(cfg.env, num_envs=4), n_steps=32, batch_size=64, n_epochs=1,
                    seed=k, device="cpu", policy_kwargs={"net_arch": [8]})
        model.learn(128)
        (runs / f"seed{k}").mkdir(parents=True)
        model.save(runs / f"seed{k}" / "model.zip")
    episodes, seed = 30, 2
    out = tmp_path / "res"
    r = _run(str(tiny), "--agents", "as", "optimal", f"ppo={runs}/seed*/model.zip", "--episodes",
             str(episodes), "--seed", str(seed), "--out", str(out), "--no-plots")
    assert r.returncode == 0, r.stderr
    data = json.loads((out / "results.json").read_text())
    assert list(data["agents"]) == ["as", "optimal", "ppo"]
    ppo = data["agents"]["ppo"]
    assert ppo["seeds"] == 3 and list(ppo["per_seed"]) == ["seed0", "seed1", "seed2"]
    assert data["metadata"]["model_paths"]["ppo"] == [str((runs / f"seed{k}" / "model.zip").resolve())
                                                      for k in (0, 1, 2)]
    # each seed's model on the same episodes as run alone (common random numbers)
    opt = run_policy(cfg.env, make_baseline("optimal", cfg.env), episodes, seed=seed).objective
    x = []
    for k in (0, 1, 2):
        per = ppo["per_seed"][f"seed{k}"]
        assert per["model"] == str((runs / f"seed{k}" / "model.zip").resolve())
        obj = run_policy(cfg.env, load_sb3_policy(per["model"], cfg.env), episodes, seed=seed).objective
        assert per["objective_mean"] == pytest.approx(obj.mean(), rel=1e-12)
        assert per["objective_diff_mean"] == pytest.approx((obj - opt).mean(), rel=1e-9)
        x.append(obj)
    x = np.stack(x)
    means = x.mean(axis=1)
    assert len(set(means.tolist())) == 3  # three different models
    # the row: mean over seeds, t-interval over the per-seed means, episodes' SE
    t2 = st.t.ppf(0.975, 2)
    half = t2 * means.std(ddof=1) / np.sqrt(3)
    assert ppo["objective_mean"] == pytest.approx(means.mean(), rel=1e-12)
    assert ppo["objective_seeds_ci95"] == pytest.approx([means.mean() - half, means.mean() + half], rel=1e-12)
    assert ppo["objective_se"] == pytest.approx(x.mean(axis=0).std(ddof=1) / np.sqrt(episodes), rel=1e-9)
    # the paired difference: per-seed paired means, SE of seeds and of episodes combined
    d = x - opt
    se_s, se_e = d.mean(axis=1).std(ddof=1) / np.sqrt(3), d.mean(axis=0).std(ddof=1) / np.sqrt(episodes)
    dof = (se_s**2 + se_e**2) ** 2 / (se_s**4 / 2 + se_e**4 / (episodes - 1))
    h = st.t.ppf(0.975, dof) * np.sqrt(se_s**2 + se_e**2)
    assert ppo["objective_diff_mean"] == pytest.approx(d.mean(), rel=1e-9)
    assert ppo["objective_diff_ci95"] == pytest.approx([d.mean() - h, d.mean() + h], rel=1e-9)
    assert ppo["objective_diff_dof"] == pytest.approx(dof, rel=1e-9)
    assert "ppo (3 seeds)" in r.stdout and "t-interval, 2 d.f., over the per-seed means" in r.stdout
    csv = pd.read_csv(out / "results.csv")
    assert list(csv["agent"]) == ["as", "optimal", "ppo", "ppo/seed0", "ppo/seed1", "ppo/seed2"]
    # one match is one model, as NAME=path
    r1 = _run(str(tiny), "--agents", "optimal", f"ppo={runs}/seed1/*.zip", "--episodes", str(episodes),
              "--seed", str(seed), "--out", str(tmp_path / "one"), "--no-plots")
    assert r1.returncode == 0, r1.stderr
    one = json.loads((tmp_path / "one" / "results.json").read_text())["agents"]["ppo"]
    assert "seeds" not in one and "per_seed" not in one
    assert one["objective_mean"] == pytest.approx(means[1], rel=1e-12)
    # an agent over seeds is never the reference
    r2 = _run(str(tiny), "--agents", "as", f"ppo={runs}/seed*/model.zip", "--reference", "ppo",
              "--episodes", "4", "--out", str(tmp_path / "ref"), "--no-plots")
    assert r2.returncode == 2 and len(r2.stderr.strip().splitlines()) == 1 and "--reference 'ppo'" in r2.stderr


@pytest.mark.parametrize("name", ["portfolio2.yaml", "portfolio8.yaml"])
def test_write_plots_on_k_assets(tmp_path, name):
    """write_plots on a K = 2 (Sigma given directly: one factor, its first principal component) and
    a K = 8 (two factors, factor instrument) evaluation: the PnL histogram, the final factor exposure
    histograms and portfolio_path.png, each once, and no single-asset figure (sample_path, depth
    surface); the metrics carry the mean |exposure| per factor with its SE."""
    from mmgym.evaluation import write_plots

    cfg = load_config(str(ROOT / "configs" / name), overrides=["market.horizon=0.1"])
    res = run_evaluation(cfg.env, {"as": "as", "begv": "begv"}, episodes=16, seed=100000,
                         baselines_config=cfg.baselines, reference="begv")
    paths = write_plots(res, cfg.env, tmp_path / "plots")
    expected = {"pnl_distribution.png", "inventory_distribution.png", "portfolio_path.png"}
    assert sorted(p.name for p in paths) == sorted(expected)
    assert {p.name for p in (tmp_path / "plots").iterdir()} == expected
    assert all(p.stat().st_size > 1000 for p in paths)
    f = 1 if name == "portfolio2.yaml" else 2
    for agent, batch in res.batches.items():
        assert len(batch.factor_names) == f and batch.path["inventory"].shape[1] == cfg.env.portfolio.assets
        m = res.metrics[agent]
        for fname in batch.factor_names:
            assert m[f"abs_exposure_{fname}_mean"] >= 0 and m[f"abs_exposure_{fname}_se"] > 0

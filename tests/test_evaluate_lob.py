"""evaluate.py and mmgym.evaluation on mmgym/LOBMarketMaking-v0 (configs/lob.yaml): the baselines
quote with the calibrated intensity model, the book maps their depths onto ticks, and the
intensity-model numbers are labelled as such."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mmgym.config import ConfigError, load_config
from mmgym.envs.market import TUNING_STREAMS
from mmgym.evaluation import default_reference, depth_surface, run_evaluation, run_policy

ROOT = Path(__file__).resolve().parents[1]
LOB_YAML = ROOT / "configs" / "lob.yaml"
SHORT = ["--set", "market.horizon=20.0"]  # 20 one-second steps per episode
# as_tuned's search on the book, small: 8 tuning episodes on a 3 x 3 grid (then Nelder-Mead)
TINY_TUNING = ["baselines.tuning.episodes=8", "baselines.tuning.gamma_points=3", "baselines.tuning.c_points=3"]


def test_cli_on_the_book(tmp_path):
    out = tmp_path / "res"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    # the agents module of this checkout (evaluate.py imports mmgym.agents, which may be another's)
    r = subprocess.run([sys.executable, "-c", "import sys, agents.cli_evaluate as c; sys.exit(c.main())",
                        str(LOB_YAML), "--agents", "as", "symmetric", "glft", "as_tuned", "optimal",
                        "--episodes", "6", "--seed", "0", "--out", str(out), *SHORT, *TINY_TUNING],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "(intensity model)" in r.stdout and "not the book's" in r.stdout
    # the book's reference is the best-tuned static AS, found on the book; never "vs optimal" here
    assert "vs as_tuned" in r.stdout and "vs optimal" not in r.stdout
    assert "tuned: as_tuned:" in r.stdout and "simulation on 8 episodes" in r.stdout
    data = json.loads((out / "results.json").read_text())
    agents, meta = data["agents"], data["metadata"]
    assert list(agents) == ["as", "symmetric", "glft", "as_tuned", "optimal"]
    assert meta["reference"] == "as_tuned" and agents["as_tuned"]["objective_diff_mean"] == 0.0
    tuning = agents["as_tuned"]["params"]["tuning"]
    assert tuning["method"] == "simulation" and tuning["episodes"] == 8
    assert tuning["spawn_key"] == list(TUNING_STREAMS) and tuning["seeds"] == [2**40, 2**40 + 7]
    cfg = load_config(LOB_YAML).env
    assert meta["env"]["id"] == "mmgym/LOBMarketMaking-v0"
    for key in ("sigma", "A", "k"):  # the baselines' parameters are the calibrated config values
        assert meta["env"]["market"][key] == getattr(cfg.market, key)
    assert "intensity model" in meta["baseline_model"] and meta["optimal_exact"] is False
    for name, m in agents.items():
        assert m["episodes"] == 6 and m["reference"] == "as_tuned" and m["kind"] == "baseline"
        assert m["objective_exact"] is None and np.isfinite(m["objective_model"])
        assert np.isfinite(m["objective_mean"]) and m["fills_mean"] > 0
        assert 0.0 < m["spread_mean"] < 0.2  # quotes on the 0.01 tick grid, a few ticks wide
    assert agents["optimal"]["v0"] == pytest.approx(meta["optimal_v0"])
    for png in ("pnl_distribution", "inventory_distribution", "sample_path", "depth_surface"):
        assert (out / f"{png}.png").stat().st_size > 1000
    assert (out / "results.csv").read_text().startswith("agent,")


def test_the_books_reference_is_as_tuned_and_never_optimal():
    """Paired differences on the book default to as_tuned; optimal (the intensity model's optimum,
    not a bound on the book) is never the default and is refused when asked for; on the intensity
    market, where it is the exact optimum, optimal stays the default."""
    lob = load_config(LOB_YAML).env
    assert default_reference(lob, ["as", "glft", "as_tuned", "optimal"]) == "as_tuned"
    assert default_reference(lob, ["optimal", "as", "glft"]) == "as"  # without as_tuned: not optimal
    assert default_reference(lob, ["as", "optimal"], "as") == "as"
    with pytest.raises(ConfigError, match="--reference optimal: on mmgym/LOBMarketMaking-v0 optimal is the optimum"):
        default_reference(lob, ["as", "optimal"], "optimal")
    with pytest.raises(ConfigError, match="--reference 'glft' is not one of the agents"):
        default_reference(lob, ["as", "optimal"], "glft")
    cjp = load_config(ROOT / "configs" / "cjp.yaml").env
    assert default_reference(cjp, ["as", "as_tuned", "optimal"]) == "optimal"
    assert default_reference(cjp, ["as", "as_tuned"]) == "as"
    short = load_config(LOB_YAML, ["market.horizon=10.0"]).env
    with pytest.raises(ConfigError, match="--reference optimal"):  # one line, before anything runs
        run_evaluation(short, {"as": "as", "optimal": "optimal"}, episodes=2, seed=0, reference="optimal")
    res = run_evaluation(short, {"optimal": "optimal", "as": "as"}, episodes=2, seed=0)
    assert res.reference == "as" and res.metadata["reference"] == "as"


def test_baseline_quotes_land_on_ticks_and_crn_pairs_by_seed():
    cfg = load_config(LOB_YAML, ["market.horizon=10.0"]).env
    res = run_evaluation(cfg, {"as": "as", "glft": "glft"}, episodes=4, seed=3, num_envs=2)
    tick = cfg.market.tick_size
    for batch in res.batches.values():
        p = batch.path
        for px in (p["bid"], p["ask"]):
            ok = np.isfinite(px)
            np.testing.assert_allclose(px[ok] / tick, np.round(px[ok] / tick), atol=1e-9)
    # same seed, same chunking-independent episodes: the pairing is by seed
    again = run_policy(cfg, res.policies["as"], 4, seed=3, num_envs=4, cache=False)
    np.testing.assert_array_equal(again.objective, res.batches["as"].objective)


def test_obs_policy_and_its_depth_surface_on_the_book():
    cfg = load_config(LOB_YAML, ["market.horizon=10.0"]).env

    def hold(obs):  # as_hybrid at mid-range risk aversion, no skew
        assert obs.shape[1] == 14
        return np.zeros((obs.shape[0], 2))

    res = run_evaluation(cfg, {"agent": hold, "as": "as"}, episodes=3, seed=0, reference="as")
    assert res.metrics["agent"]["kind"] == "policy" and np.isfinite(res.metrics["agent"]["objective_mean"])
    d_b, d_a = depth_surface(cfg, hold, np.arange(-2, 3), np.arange(0, 10, 3))
    assert d_b.shape == (4, 5) and np.isfinite(d_b).all() and np.isfinite(d_a).all()
    # as_hybrid skews by inventory: a long book quotes a deeper bid and a tighter ask
    assert (d_b[:, -1] >= d_b[:, 0]).all() and (d_a[:, -1] <= d_a[:, 0]).all()


def test_audit_is_intensity_only():
    cfg = load_config(LOB_YAML, ["market.horizon=5.0"]).env
    from mmgym.baselines import make_baseline

    with pytest.raises(ConfigError, match="--audit"):
        run_policy(cfg, make_baseline("as", cfg), 2, audit=True)


def test_cli_reference_with_an_agent_over_seeds_on_the_book(monkeypatch):
    """evaluate.py's choice when an agent over training seeds is present (the CLI picks the
    reference itself): as_tuned on the book, optimal on the intensity market."""
    monkeypatch.syspath_prepend(str(ROOT))
    import agents.cli_evaluate as cli  # this checkout's (mmgym.agents may resolve elsewhere)

    monkeypatch.setattr(cli, "seed_groups", {"ppo": ["ppo/seed0", "ppo/seed1"]})
    names = {n: n for n in ("ppo/seed0", "ppo/seed1", "as", "as_tuned", "optimal")}
    assert cli._reference(None, names, load_config(LOB_YAML).env) == "as_tuned"
    assert cli._reference(None, names, load_config(ROOT / "configs" / "cjp.yaml").env) == "optimal"

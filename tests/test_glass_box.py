"""The glass box (mmgym.evaluation.glass_box, issue 9): the driver's bins against a slow hand
computation, the optimal policy's summary against its DP tables, evaluate.py --glass-box, and the
TensorBoard scalars against the custom-scalars layout. Tiny configs: 40-step markets."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest

from mmgym.config import load_config
from mmgym.envs.market import BatchMarket
from mmgym.evaluation.glass_box import driver_of, record_glass_box, summarize
from mmgym.evaluation.runner import get_baseline

REGIMES = """
env:
  id: mmgym/RegimeMarketMaking-v0
  market: {sigma: 2.0, A: 140.0, k: 1.5, dt: 0.025, horizon: 1.0, max_inventory: 6,
           fill_rule: poisson}
  reward: {inventory_penalty: 0.2, terminal_penalty: 1.0e-4, risk_penalty: variance}
  action: {mode: as_hybrid, gamma_min: 0.01, gamma_max: 2.0, skew_max: 1.0}
  regimes: {sigma: [2.0, 5.0], A: [140.0, 100.0], k: [1.5, 0.6], adverse_jump: [0.0, 0.5],
            rates: [[0.0, 3.0], [3.0, 0.0]]}
baselines: {gamma: 0.1}
eval: {episodes: 50, seed: 0, num_envs: 50}
"""

EVENTS = """
env:
  id: mmgym/EventMarketMaking-v0
  market: {sigma: 2.0, A: 140.0, k: 1.5, dt: 0.025, horizon: 1.0, max_inventory: 6,
           fill_rule: poisson}
  reward: {inventory_penalty: 0.2, terminal_penalty: 1.0e-4, risk_penalty: variance}
  events: {times: [0.3, 0.71], jump_std: 2.0, window: 0.1, adverse_jump: 0.1}
baselines: {gamma: 0.1}
eval: {episodes: 50, seed: 0, num_envs: 50}
"""


def _config(tmp_path: Path, text: str, name: str):
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return path, load_config(path)


def test_event_bins_match_a_hand_computation(tmp_path):
    """Every recorded step's bin is the one a plain loop assigns: event steps floor(tau/dt), the
    first event step e >= t, k = e - t, bin str(k) for k <= max(2W, 2), else 'far' (no event left
    included); the record holds every (episode, step) once."""
    _, cfg = _config(tmp_path, EVENTS, "events")
    env = cfg.env
    rec = record_glass_box(env, get_baseline("as", env, cfg.baselines), episodes=7, seed=3, num_envs=4)
    n = env.market.n_steps
    assert rec.step.size == 7 * n
    assert np.array_equal(np.bincount(rec.step, minlength=n), np.full(n, 7))
    assert rec.sizes == {}  # no action.quote_size: no size panels of zeros
    dt = env.market.dt
    events = [math.floor(tau / dt + 1e-9) for tau in env.events.times]  # [12, 28]
    w = round(env.events.window / dt)
    horizon = max(2 * w, 2)
    labels = rec.driver.labels
    for t, b in zip(rec.step.tolist(), rec.bin.tolist()):
        ahead = [e - t for e in events if e >= t]
        k = ahead[0] if ahead else None
        expect = "far" if k is None or k > horizon else str(k)
        assert labels[b] == expect, (t, k, labels[b])


def test_regime_bins_match_the_market_regime(tmp_path):
    """The regime bins hold exactly the row-steps a slow per-row loop over the same seeds finds in
    each regime before the step."""
    _, cfg = _config(tmp_path, REGIMES, "regimes")
    env = cfg.env
    pol = get_baseline("as", env, cfg.baselines)
    rec = record_glass_box(env, pol, episodes=6, seed=11)
    counts = [0, 0]
    market = BatchMarket(env, 6, raw_depths=True)
    market.seed_rows([11 + i for i in range(6)])
    market.reset()
    for _ in range(env.market.n_steps):
        for i in range(6):
            counts[int(market.field("regime")[i])] += 1
        market.step(pol.act(market))
    assert counts[1] > 0  # the chain switched (rate 3 per time unit, 6 episodes)
    assert rec.driver.labels == ("r0", "r1")
    assert summarize(rec)["steps"].tolist() == counts


@pytest.mark.parametrize("name", ["regimes", "events"])
def test_optimal_summary_equals_its_dp_tables(tmp_path, name):
    """For optimal, the summary's half-spread and skew per lot in each bin are those of the DP
    tables' (δb ± δa)/2 at the recorded (t, regime, q) states (least squares on q for the slope);
    gamma is NaN (a raw-depth policy); the optimum leans against its inventory (slope > 0)."""
    _, cfg = _config(tmp_path, REGIMES if name == "regimes" else EVENTS, name)
    env = cfg.env
    pol = get_baseline("optimal", env, cfg.baselines)
    rec = record_glass_box(env, pol, episodes=200, seed=0)
    s = summarize(rec)
    sol = pol.solution
    q_max = env.market.max_inventory
    checked = 0
    for b in range(len(rec.driver.labels)):
        idx = [i for i in np.flatnonzero(rec.bin == b) if abs(rec.q[i]) < q_max]  # both sides quote
        if len(idx) < 2:
            continue
        ys, hs, qs = [], [], []
        for i in idx:
            t, j = int(rec.step[i]), int(rec.q[i]) + q_max
            key = (t, int(rec.value[i]), j) if sol.regimes is not None else (t, j)
            ys.append(0.5 * (sol.delta_b[key] - sol.delta_a[key]))
            hs.append(0.5 * (sol.delta_b[key] + sol.delta_a[key]))
            qs.append(rec.q[i])
        assert s["two_sided"][b] == len(idx)
        assert s["half_spread"][b] == pytest.approx(np.mean(hs), rel=1e-9, abs=1e-12)
        if len(set(qs)) > 1:
            slope = np.polyfit(qs, ys, 1)[0]
            assert s["skew_per_lot"][b] == pytest.approx(slope, rel=1e-7, abs=1e-10)
            assert slope > 0
            checked += 1
    assert checked == len(rec.driver.labels)  # every bin's slope was compared
    assert np.isnan(s["gamma"]).all()


def test_as_hybrid_callable_records_its_gamma(tmp_path):
    """An obs-policy on the as_hybrid action (the path of a loaded SB3 model): a constant action
    is one gamma, the same in every bin, inside [gamma_min, gamma_max]."""
    _, cfg = _config(tmp_path, REGIMES, "regimes")
    rec = record_glass_box(cfg.env, lambda obs: np.full((obs.shape[0], 2), 0.3), episodes=20, seed=0)
    g = summarize(rec)["gamma"]
    assert np.isfinite(g).all() and g[0] == pytest.approx(g[1], rel=1e-12)
    assert cfg.env.action.gamma_min <= g[0] <= cfg.env.action.gamma_max


def test_evaluate_glass_box_cli(tmp_path, capsys):
    """evaluate.py --glass-box writes glass_box.png and one CSV row per agent and bin; a scenario
    without a driver gets one note line and no figure."""
    from mmgym.agents.cli_evaluate import main

    path, cfg = _config(tmp_path, REGIMES, "regimes")
    out = tmp_path / "out"
    rc = main([str(path), "--agents", "as", "optimal", "--episodes", "20", "--no-plots",
               "--glass-box", "--out", str(out)])
    assert rc == 0
    assert (out / "glass_box.png").stat().st_size > 0
    with open(out / "glass_box.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["agent"], r["bin"]) for r in rows] == [(a, b) for a in ("as", "optimal") for b in ("r0", "r1")]
    assert sum(int(r["steps"]) for r in rows if r["agent"] == "optimal") == 20 * cfg.env.market.n_steps
    smoke = Path(__file__).resolve().parents[1] / "configs" / "smoke.yaml"
    out2 = tmp_path / "out2"
    rc = main([str(smoke), "--agents", "as", "--episodes", "5", "--no-plots", "--glass-box", "--out", str(out2)])
    assert rc == 0
    assert "has no hidden driver" in capsys.readouterr().out
    assert not (out2 / "glass_box.png").exists()


def test_driver_none_on_plain_markets():
    from mmgym.config import EnvConfig

    assert driver_of(EnvConfig()) is None


@pytest.mark.slow
def test_tensorboard_glass_box_tags_match_layout(tmp_path):
    """A short PPO run on the regimes market logs mm/glass_box/<quantity>/<bin> for the agent
    (gamma, skew per lot, half-spread) and .../<bin>/optimal, and the custom-scalars layout names
    only logged tags (tests/test_train.py's check)."""
    from mmgym.agents.cli_train import main
    from tbparse import SummaryReader

    from .test_train import _check_tensorboard_views

    run_dir = tmp_path / "run"
    path = tmp_path / "ppo_regimes.yaml"
    path.write_text(REGIMES.replace("eval: {episodes: 50, seed: 0, num_envs: 50}", "") + """
eval: {episodes: 20, seed: 0, num_envs: 20}
agent:
  algo: ppo
  policy: MlpPolicy
  kwargs: {n_steps: 40, batch_size: 320, n_epochs: 1, gamma: 1.0, policy_kwargs: {net_arch: [8]}}
train: {total_timesteps: 1280, n_envs: 16, seed: 0, eval_freq: 0, eval_episodes: 20,
        eval_baselines: [optimal], checkpoint_freq: 0, progress_bar: false}
""")
    assert main([str(path), "--run-dir", str(run_dir)]) == 0
    tags = set(SummaryReader(str(run_dir / "tb")).scalars.tag)
    for qty in ("gamma", "skew_per_lot", "half_spread"):
        assert f"mm/glass_box/{qty}/r0" in tags, qty
    for qty in ("skew_per_lot", "half_spread"):
        assert f"mm/glass_box/{qty}/r0/optimal" in tags, qty
    assert "mm/glass_box/gamma/r0/optimal" not in tags  # optimal has no gamma
    _check_tensorboard_views(run_dir, tags)


def test_tracker_across_autoresets(tmp_path):
    """The callback's pattern (before_step once, then after_step + before_step after every step)
    records the state before each step, autoresets included: two episodes back to back give every
    t twice per row, q = q0 and the initial regime at t = 0, and the same records as
    record_glass_box on the first episode."""
    from mmgym.evaluation.glass_box import GlassBoxTracker

    _, cfg = _config(tmp_path, REGIMES, "regimes")
    env = cfg.env
    pol = get_baseline("as", env, cfg.baselines)
    market = BatchMarket(env, 3, raw_depths=True)
    market.seed_rows([5, 6, 7])
    market.reset()
    tracker = GlassBoxTracker(market, driver_of(env))
    tracker.before_step(market)
    n = env.market.n_steps
    for _ in range(2 * n):
        buf = market.step(pol.act(market))
        tracker.after_step(buf.aux)
        tracker.before_step(market)
    rec = tracker.record()
    assert np.array_equal(np.bincount(rec.step, minlength=n), np.full(n, 6))
    start = rec.step == 0
    assert (rec.q[start] == env.market.q0).all() and (rec.value[start] == env.regimes.initial).all()
    ref = record_glass_box(env, pol, episodes=3, seed=5)
    first = slice(0, 3 * n)  # the first episode's steps, in the same (step, row) order
    for name in ("bin", "step", "q", "depth_bid", "depth_ask"):
        assert np.array_equal(getattr(rec, name)[first], getattr(ref, name), equal_nan=True), name

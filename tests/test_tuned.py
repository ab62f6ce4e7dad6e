"""as_tuned and glft_tuned: exact tuning against an independent brute-force grid, local optimality,
the exact optimum as a ceiling, and the simulated search's seeds (mmgym/baselines/tuned.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mmgym.baselines import evaluate_tables, make_baseline, tune
from mmgym.baselines.tuned import clear_cache
from mmgym.config import ConfigError, load_config
from mmgym.envs.market import TRAINING_STREAMS, TUNING_STREAMS
from mmgym.evaluation import run_evaluation, run_policy
from mmgym.evaluation import runner as runner_module

# the CJP problem (configs/cjp.yaml) on a short horizon and a small inventory bound: fast exact DP
SMALL = ["market.horizon=0.25", "market.max_inventory=6", "reward.inventory_penalty=2.0",
         "reward.terminal_penalty=0.05"]


def _as_value(env, gamma, c):
    """Exact V_0(q0) of AS 2008 eqs. (29)-(30) plus c per side, written out here (not the class)."""
    m = env.market
    n, q_max = m.n_steps, m.max_inventory
    tau = (n - np.arange(n))[:, None] * m.dt
    q = np.arange(-q_max, q_max + 1)[None, :]
    shift = q * gamma * m.sigma**2 * tau
    half = 0.5 * gamma * m.sigma**2 * tau + math.log1p(gamma / m.k) / gamma + c
    return float(evaluate_tables(env, shift + half, -shift + half)[0, m.q0 + q_max])


def _glft_value(env, gamma):
    """Exact V_0(q0) of the GLFT (2013) asymptotic quotes, written out here."""
    m = env.market
    q = np.arange(-m.max_inventory, m.max_inventory + 1)[None, :].astype(float)
    w = math.sqrt(m.sigma**2 * gamma / (2 * m.k * m.A) * (1 + gamma / m.k) ** (1 + m.k / gamma))
    base = math.log1p(gamma / m.k) / gamma
    return float(evaluate_tables(env, base + (2 * q + 1) / 2 * w, base - (2 * q - 1) / 2 * w)[0, m.q0 + m.max_inventory])


@pytest.fixture()
def small():
    clear_cache()
    return load_config("configs/cjp.yaml", SMALL)


def test_exact_tuning_beats_as_and_an_independent_grid(small):
    env, bc = small.env, small.baselines
    res = tune("as_tuned", env, bc)
    assert res.method == "exact" and res.objective_se is None and res.at_bound == []
    g, c = res.params["gamma"], res.params["c"]
    # the recorded objective is the chosen policy's exact value, by the written-out formula
    assert res.objective == pytest.approx(_as_value(env, g, c), abs=1e-10)
    tol = 1e-9 * abs(res.objective)
    assert res.objective >= _as_value(env, bc.gamma, 0.0) - tol  # plain `as` at the configured gamma
    k = env.market.k
    grid = [_as_value(env, gg, cc) for gg in np.geomspace(1e-3, 100.0, 41)
            for cc in np.linspace(-1.0 / k, 2.0 / k, 31)]
    assert res.objective >= max(grid) - tol
    res_g = tune("glft_tuned", env, bc)
    assert res_g.objective == pytest.approx(_glft_value(env, res_g.params["gamma"]), abs=1e-10)
    assert res_g.objective >= _glft_value(env, bc.gamma) - tol
    assert res_g.objective >= max(_glft_value(env, gg) for gg in np.geomspace(1e-3, 100.0, 201)) - tol


def test_exact_tuning_is_a_local_optimum(small):
    env, bc = small.env, small.baselines
    res = tune("as_tuned", env, bc)
    g, c = res.params["gamma"], res.params["c"]
    tol = 1e-9 * abs(res.objective)
    h = 1e-3 / env.market.k
    for fg in (1 - 1e-3, 1.0, 1 + 1e-3):
        for dc in (-h, 0.0, h):
            assert _as_value(env, g * fg, c + dc) <= res.objective + tol, (fg, dc)
    res_g = tune("glft_tuned", env, bc)
    for fg in (1 - 1e-3, 1 + 1e-3):
        assert _glft_value(env, res_g.params["gamma"] * fg) <= res_g.objective + tol


def test_tuned_below_the_exact_optimum_and_closer_than_as():
    """configs/cjp.yaml (the AS 2008 market with CJP's penalties): V0 of `optimal` bounds every
    policy; tuning (gamma, c) closes most of `as`'s gap."""
    cfg = load_config("configs/cjp.yaml")
    env, bc = cfg.env, cfg.baselines
    v0 = make_baseline("optimal", env, bc).v0
    j0 = env.market.q0 + env.market.max_inventory
    for tuned, plain in (("as_tuned", "as"), ("glft_tuned", "glft")):
        t_val = tune(tuned, env, bc).objective
        p_val = evaluate_tables(env, *make_baseline(plain, env, bc).tables())[0, j0]
        assert t_val <= v0 + 1e-9
        assert v0 - t_val < v0 - p_val, tuned
    assert v0 - tune("as_tuned", env, bc).objective < 0.5 * (v0 - evaluate_tables(
        env, *make_baseline("as", env, bc).tables())[0, j0])


def test_simulated_tuning_uses_the_tuning_seeds_only(monkeypatch):
    """On the OU env (no exact evaluation) every candidate runs on the tuning set, the same
    scenarios each time; an evaluation runs elsewhere, and reuses the cached search."""
    clear_cache()
    cfg = load_config("configs/cjp.yaml", [
        "env.id=mmgym/OUMarketMaking-v0", "ou.kappa=4", *SMALL, "baselines.tuning.episodes=64",
        "baselines.tuning.gamma_points=5", "baselines.tuning.c_points=3"])
    tc = cfg.baselines.tuning
    calls = []
    real = runner_module.run_policy

    def spy(env_config, policy, episodes, seed=0, **kw):
        calls.append((type(policy).__name__, episodes, seed, tuple(kw.get("spawn_key", ()))))
        return real(env_config, policy, episodes, seed, **kw)

    monkeypatch.setattr(runner_module, "run_policy", spy)
    res = tune("as_tuned", cfg.env, cfg.baselines)
    assert res.method == "simulation" and "not the DP's" in res.not_exact
    assert len(calls) == res.evaluations > tc.c_points * tc.gamma_points
    # common random numbers: every candidate on the same seeds, in the tuning stream family
    assert {(e, s, k) for _, e, s, k in calls} == {(tc.episodes, tc.seed, TUNING_STREAMS)}
    assert res.describe()["seeds"] == [tc.seed, tc.seed + tc.episodes - 1]
    assert res.describe()["spawn_key"] == list(TUNING_STREAMS)
    assert 0.0 < res.objective_se < math.inf
    # the search's pick beats plain `as` at the configured gamma on the same (tuning) scenarios
    as_batch = real(cfg.env, make_baseline("as", cfg.env, cfg.baselines), tc.episodes, tc.seed, cache=False,
                    spawn_key=TUNING_STREAMS)
    assert res.objective >= as_batch.objective.mean()
    calls.clear()
    out = run_evaluation(cfg.env, {"as_tuned": "as_tuned"}, episodes=32, seed=5,
                         baselines_config=cfg.baselines)
    assert calls == [("TunedAS", 32, 5, ())]  # the cached search, then the evaluation's own seeds
    assert not set(range(5, 37)) & set(tc.seed_range())
    params = out.metrics["as_tuned"]["params"]
    assert params["gamma"] == res.params["gamma"] and params["c"] == res.params["c"]
    assert params["tuning"]["method"] == "simulation" and params["tuning"]["seconds"] >= 0


def test_forced_simulation_agrees_with_the_exact_search(small):
    """The same search by simulation (method: simulation) on a config with an exact value: its
    pick's exact value is close to the exact search's, and its tuning-set mean is that pick's
    expectation within sampling error plus the selection's optimism."""
    env = small.env
    exact = tune("glft_tuned", env, small.baselines)
    sim_cfg = load_config("configs/cjp.yaml", [*SMALL, "baselines.tuning.method=simulation",
                                               "baselines.tuning.episodes=2000"])
    sim = tune("glft_tuned", env, sim_cfg.baselines)
    assert sim.method == "simulation" and exact.method == "exact"
    picked = _glft_value(env, sim.params["gamma"])
    assert picked <= exact.objective + 1e-9
    assert exact.objective - picked < 3 * sim.objective_se
    assert abs(sim.objective - picked) < 4 * sim.objective_se


def test_simulated_as_tuned_reaches_the_exact_optimum(small):
    """The 2-parameter search (grid, then Nelder-Mead) by simulation on a config where the DP scores
    every candidate exactly: the (gamma, c) it picks on 2000 tuning episodes is worth, exactly,
    the DP tuner's optimum within 3 standard errors of the tuning set (and never more)."""
    env = small.env
    exact = tune("as_tuned", env, small.baselines)
    sim_cfg = load_config("configs/cjp.yaml", [*SMALL, "baselines.tuning.method=simulation",
                                               "baselines.tuning.episodes=2000"])
    sim = tune("as_tuned", env, sim_cfg.baselines)
    assert sim.method == "simulation" and sim.at_bound == []
    picked = _as_value(env, sim.params["gamma"], sim.params["c"])
    assert picked <= exact.objective + 1e-9
    assert exact.objective - picked < 3 * sim.objective_se, (exact.objective, picked, sim.objective_se)


def test_tuning_seeds_are_a_family_of_their_own():
    """The tuning set's streams (spawn key TUNING_STREAMS) are neither evaluation's (the empty key)
    nor training's, even on the same seed numbers: the same policy on the same seeds gives other
    episodes in each family."""
    assert len({(), TUNING_STREAMS, TRAINING_STREAMS}) == 3
    cfg = load_config("configs/cjp.yaml", SMALL)
    pol = make_baseline("as", cfg.env, cfg.baselines)
    runs = [run_policy(cfg.env, pol, 16, 7, cache=False, spawn_key=key).objective
            for key in ((), TUNING_STREAMS, TRAINING_STREAMS)]
    for i in range(3):
        for j in range(i):
            assert np.mean(runs[i] != runs[j]) > 0.5, (i, j)
    again = run_policy(cfg.env, pol, 16, 7, cache=False, spawn_key=TUNING_STREAMS).objective
    np.testing.assert_array_equal(again, runs[1])  # a family is reproducible: CRN across candidates


def test_seed_overlap_and_bad_tuning_config_are_refused():
    cfg = load_config("configs/cjp.yaml", SMALL)
    tc = cfg.baselines.tuning
    for seed, episodes in ((tc.seed - 3, 4), (tc.seed + tc.episodes - 1, 10), (0, tc.seed + 1)):
        with pytest.raises(ConfigError, match="baselines.tuning.seed=1099511627776"):
            run_evaluation(cfg.env, {"as": "as"}, episodes=episodes, seed=seed, baselines_config=cfg.baselines)
    run_policy(cfg.env, make_baseline("as", cfg.env, cfg.baselines), 4, tc.seed - 4)  # just below: fine
    with pytest.raises(ConfigError, match="baselines.tuning: gamma_max"):
        load_config("configs/cjp.yaml", ["baselines.tuning.gamma_max=0.0001"])
    with pytest.raises(ConfigError, match="unknown key"):
        load_config("configs/cjp.yaml", ["baselines.tuning.gama_min=1"])
    ou = load_config("configs/cjp.yaml", ["env.id=mmgym/OUMarketMaking-v0", "baselines.tuning.method=exact"])
    with pytest.raises(ConfigError, match="baselines.tuning.method=exact"):
        tune("as_tuned", ou.env, ou.baselines)
    empty = load_config("configs/cjp.yaml", ["baselines.tuning.c_max=-2"])
    with pytest.raises(ConfigError, match="c range"):
        tune("as_tuned", empty.env, empty.baselines)
    assert load_config("configs/cjp.yaml", ["train.eval_baselines=[as_tuned,glft_tuned]"]).train.eval_baselines


def test_simulated_tuning_is_kept_on_disk_per_code_version(monkeypatch):
    """A simulated search is written to the disk cache and read back (no candidate re-run, the
    same answer) by a fresh process's first call (``clear_cache`` empties the in-process cache);
    another code version, a corrupt file or ``disk_cache: false`` searches again."""
    from mmgym.baselines import tuned as tuned_module

    clear_cache()
    cfg = load_config("configs/cjp.yaml", [
        "env.id=mmgym/OUMarketMaking-v0", "ou.kappa=4", *SMALL, "baselines.tuning.episodes=32",
        "baselines.tuning.gamma_points=3", "baselines.tuning.c_points=3"])
    calls = []
    real = runner_module.run_policy
    monkeypatch.setattr(runner_module, "run_policy", lambda *a, **kw: calls.append(1) or real(*a, **kw))
    first = tune("as_tuned", cfg.env, cfg.baselines)
    n_first = len(calls)
    assert n_first == first.evaluations > 0 and not first.cached
    files = list(tuned_module.cache_dir().glob("*.json"))
    assert len(files) == 1
    clear_cache()
    again = tune("as_tuned", cfg.env, cfg.baselines)
    assert len(calls) == n_first and again.cached
    assert (again.params, again.objective, again.evaluations) == (first.params, first.objective, first.evaluations)
    # another code version: searched again (and stored beside the first)
    clear_cache()
    monkeypatch.setattr(tuned_module, "source_hash", lambda: "another version")
    tune("as_tuned", cfg.env, cfg.baselines)
    assert len(calls) == 2 * n_first and len(list(tuned_module.cache_dir().glob("*.json"))) == 2
    # a corrupt entry is ignored and rewritten
    clear_cache()
    tuned_module._disk_path(json_key := tuned_module._key(
        "as_tuned", cfg.env.model_dump(), cfg.baselines.tuning.model_dump(exclude={"disk_cache"}),
        "simulation")).write_text("{not json")
    assert not tune("as_tuned", cfg.env, cfg.baselines).cached and len(calls) == 3 * n_first
    assert tuned_module._disk_load(json_key) is not None
    # disk_cache false: always searched, nothing read
    clear_cache()
    off = load_config("configs/cjp.yaml", [
        "env.id=mmgym/OUMarketMaking-v0", "ou.kappa=4", *SMALL, "baselines.tuning.episodes=32",
        "baselines.tuning.gamma_points=3", "baselines.tuning.c_points=3", "baselines.tuning.disk_cache=false"])
    assert not tune("as_tuned", off.env, off.baselines).cached and len(calls) == 4 * n_first

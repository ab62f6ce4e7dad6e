"""The book's glass-box drivers (mmgym/scenarios/lob.py, LOBScenario.driver): on the informed book
the hidden gap latent value - mid, which the mid then follows; on the default book the flow
imbalance of observation column 11."""

from __future__ import annotations

import itertools

import gymnasium as gym
import numpy as np

import mmgym  # noqa: F401
from mmgym.config import load_config
from mmgym.evaluation.glass_box import driver_of

ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]


def _run(path, n=64, steps=150):
    cfg = load_config(ROOT / "configs" / path)
    env = gym.make_vec(cfg.env.id, num_envs=n, vectorization_mode="vector_entry_point", config=cfg.env)
    obs, _ = env.reset(seed=3)
    market = env.unwrapped.market if hasattr(env.unwrapped, "market") else env.market
    driver = driver_of(cfg.env)
    rows = []
    for _ in range(steps):
        v = driver.values(market).copy()
        mid0 = market.mid[:, 0].copy()
        obs, *_ = env.step(np.zeros(env.action_space.shape))
        rows.append((v, driver.bin_of(v), market.mid[:, 0] - mid0, obs[:, 11].copy()))
    env.close()
    return cfg, driver, rows


def test_informed_gap_is_hidden_and_the_mid_follows_it():
    cfg, driver, rows = _run("lob_toxic.yaml")
    v = np.concatenate([r[0] for r in rows])
    b = np.concatenate([r[1] for r in rows])
    dmid = np.concatenate([r[2] for r in rows]) / cfg.env.market.tick_size
    assert "hidden" in driver.name and len(driver.labels) == 9
    assert (b >= 0).all() and (b < 9).all()  # the outer bins are open-ended
    edges = np.array([-np.inf, -8, -4, -2, -0.5, 0.5, 2, 4, 8, np.inf])
    assert (edges[b] <= v).all() and (v < edges[b + 1]).all()
    # the informed flow pulls the mid toward the latent value: E[sign(gap) dmid] > 0 (4 SE)
    x = np.sign(v) * dmid
    assert x.mean() > 4 * x.std() / np.sqrt(len(x))


def test_default_book_driver_is_the_observed_flow_imbalance():
    _, driver, rows = _run("lob.yaml", steps=60)
    assert "flow imbalance" in driver.name
    # the driver read after a step is the observation's column 11 of that step (no delay)
    for (_, _, _, col11), (v_next, *_) in itertools.pairwise(rows):
        np.testing.assert_allclose(v_next, col11, atol=1e-6)

"""Trajectories recorded through the public API only, to pin behaviour across refactors.

``record()`` runs a fixed set of seeded rollouts (vector and single Gymnasium envs of every
market, the baselines' evaluation runs, the order-book engine's flow and operations) and returns
flat arrays keyed by name. It uses only what a user sees: ``gym.make``/``gym.make_vec``, info keys
by name, :func:`mmgym.evaluation.run_policy`'s episode fields, and the book state's field names.

``tests/data/regression_v1.npz`` is ``record()`` run on commit 62af6f2 (the last commit before
the scenario-engine redesign): ``python -m tests.regression_record tests/data/regression_v1.npz``.
``tests/test_regression.py`` checks that the current code reproduces it exactly.
"""

from __future__ import annotations

import sys

import gymnasium as gym
import numpy as np

import mmgym  # noqa: F401  (registers the envs)

SHORT = {"horizon": 0.25}  # 50 steps

#: name -> (env id, gym.make keyword sections, num_envs, steps)
VECTOR_CASES = {
    "im_default": ("mmgym/MarketMaking-v0", {"market": SHORT}, 6, 130),
    "im_offsets_hedge_tick": ("mmgym/MarketMaking-v0", {
        "market": dict(SHORT, tick_size=0.05, q0=1, max_inventory=6),
        "action": {"mode": "offsets", "hedge": True, "hedge_max_lots": 3},
        "impact": {"half_spread": 0.01, "eta": 0.05, "nu": 0.02},
        "reward": {"maker_fee": -0.001, "taker_fee": 0.002, "inventory_penalty": 0.1,
                   "terminal_penalty": 0.01}}, 5, 120),
    "im_poisson_binomial": ("mmgym/MarketMaking-v0", {
        "market": dict(SHORT, fill_rule="poisson", mid_noise="binomial", A_bid=100.0, k_ask=2.0,
                       q0=-2, max_inventory=4),
        "reward": {"dampening": 0.5, "inventory_penalty": 0.2}}, 5, 110),
    "im_cara_hybrid_hedge": ("mmgym/MarketMaking-v0", {
        "market": dict(SHORT, tick_size=0.1),
        "action": {"hedge": True, "gamma_min": 0.05, "gamma_max": 5.0, "skew_max": 0.5},
        "impact": {"eta": 0.02}, "reward": {"objective": "cara", "cara_gamma": 0.3},
        "observation": {"vol_halflife": 5.0}}, 4, 110),
    "lob_default": ("mmgym/LOBMarketMaking-v0", {"market": {"horizon": 20.0}}, 3, 45),
    "lob_power_latency_hedge": ("mmgym/LOBMarketMaking-v0", {
        "market": {"horizon": 15.0, "max_inventory": 5},
        "action": {"hedge": True, "hedge_max_lots": 2},
        "book": {"queue_model": "power", "queue_power": 1.5, "entry_latency": 0.3,
                 "entry_latency_events": 2, "obs_delay_steps": 2, "quote_lots": 2,
                 "warmup": 10.0},
        "reward": {"maker_fee": 0.0001, "taker_fee": 0.0003, "inventory_penalty": 0.001}}, 3, 40),
    "lob_offsets": ("mmgym/LOBMarketMaking-v0", {
        "market": {"horizon": 12.0}, "action": {"mode": "offsets"},
        "reward": {"dampening": 0.2}}, 2, 30),
}

SINGLE_CASES = {
    "single_im": ("mmgym/MarketMaking-v0", {"market": SHORT}, 70),
    "single_lob": ("mmgym/LOBMarketMaking-v0", {"market": {"horizon": 10.0}}, 25),
}

#: name -> (config file, baseline, episodes)
EVAL_CASES = {
    "eval_cjp_as": ("configs/cjp.yaml", "as", 40),
    "eval_cjp_glft": ("configs/cjp.yaml", "glft", 40),
    "eval_cjp_optimal": ("configs/cjp.yaml", "optimal", 40),
    "eval_lob_as": ("configs/lob.yaml", "as", 3),
}

EPISODE_FIELDS = ("objective", "pnl", "final_inventory", "abs_inventory", "max_abs_inventory",
                  "spread", "fills", "impact_cost", "fees", "hedge_lots", "inventory_penalty",
                  "terminal_penalty")
BOOK_FIELDS = ("lower_tick", "bid_bg", "ask_bg", "bid_own", "ask_own", "best_bid", "best_ask",
               "time", "ord_side", "ord_px", "ord_qty", "ord_ahead", "ord_seq", "cash_ticks",
               "inventory", "counters", "rng")
#: info keys recorded on every step (those an env leaves out are skipped)
INFO_KEYS = ("pnl", "impact", "fees", "inventory_penalty", "terminal_penalty", "dampening",
             "utility", "bid_px", "ask_px", "depth_bid", "depth_ask", "gamma", "skew",
             "hedge_lots", "fill_bid", "fill_ask", "quote_mid", "spread_ticks", "queue_bid",
             "queue_ask", "events", "taker_lots")
EPISODE_KEYS = ("return", "length", "pnl", "fills", "abs_inventory_sum", "max_abs_inventory",
                "spread_sum", "spread_count", "impact_cost", "fees", "inventory_penalty",
                "terminal_penalty", "gamma_sum", "skew_sum", "hedge_lots", "final_inventory",
                "events", "taker_lots")


def _vector(name, env_id, kwargs, n, steps, out):
    venv = gym.make_vec(env_id, num_envs=n, vectorization_mode="vector_entry_point", **kwargs)
    obs, _ = venv.reset(seed=11)
    rng = np.random.default_rng(5)
    rows: dict[str, list] = {"obs": [obs.copy()], "reward": [], "done": []}
    episodes: dict[str, list] = {}
    for _ in range(steps):
        a = rng.uniform(-1.1, 1.1, size=(n,) + venv.single_action_space.shape).astype(np.float32)
        obs, r, term, trunc, info = venv.step(a)
        rows["obs"].append(obs.copy())
        rows["reward"].append(np.asarray(r, dtype=np.float64).copy())
        rows["done"].append(np.asarray(term).copy())
        for key in INFO_KEYS:
            if key in info:
                rows.setdefault(key, []).append(np.asarray(info[key], dtype=np.float64).copy())
        if "final_info" in info:
            key = "mm_episode" if "mm_episode" in info["final_info"] else "episode"  # old code: "episode"
            ep = info["final_info"][key]
            mask = info["final_info"][f"_{key}"]
            for key in EPISODE_KEYS:
                if key in ep:
                    episodes.setdefault(key, []).append(np.asarray(ep[key], dtype=np.float64)[mask])
            episodes.setdefault("final_obs", []).append(
                np.stack([info["final_obs"][i] for i in np.flatnonzero(mask)]))
    for key, vals in rows.items():
        out[f"{name}/{key}"] = np.stack(vals)
    for key, vals in episodes.items():
        out[f"{name}/episode/{key}"] = np.concatenate(vals)


def _single(name, env_id, kwargs, steps, out):
    env = gym.make(env_id, **kwargs)
    obs, _ = env.reset(seed=4)
    rng = np.random.default_rng(9)
    o, r, d, fb = [obs], [], [], []
    for _ in range(steps):
        obs, rew, term, trunc, info = env.step(rng.uniform(-1, 1, size=env.action_space.shape))
        o.append(obs)
        r.append(rew)
        d.append(term)
        fb.append([info[k] for k in ("pnl", "inventory_penalty", "fill_bid", "fill_ask")])
        if term:
            obs, _ = env.reset()
            o.append(obs)
    out[f"{name}/obs"] = np.stack(o)
    out[f"{name}/reward"] = np.array(r)
    out[f"{name}/done"] = np.array(d)
    out[f"{name}/info"] = np.array(fb, dtype=np.float64)


def _evaluations(out):
    from mmgym.config import load_config
    from mmgym.evaluation import get_baseline, run_policy

    for name, (path, agent, episodes) in EVAL_CASES.items():
        cfg = load_config(path)
        policy = get_baseline(agent, cfg.env, cfg.baselines)
        batch = run_policy(cfg.env, policy, episodes, seed=3, cache=False)
        for f in EPISODE_FIELDS:
            out[f"{name}/{f}"] = np.asarray(getattr(batch, f), dtype=np.float64)


def _book_module():
    try:
        from mmgym.sim import book as K  # the redesigned engine
    except ImportError:
        from mmgym.book import kernel as K  # before the redesign
    return K


def _book(out):
    try:
        from mmgym.scenarios.lob import BookConfig  # after the redesign
    except ImportError:
        from mmgym.book.config import BookConfig

    K = _book_module()
    for model in ("pessimistic", "power"):
        cfg = BookConfig(queue_model=model, n_levels=64)
        b = K.new_book_state(2, cfg.n_levels, cfg.max_orders)
        b.rng[:] = np.random.default_rng(21).integers(1, 2**63, size=(2, 2), dtype=np.uint64)
        lam, theta = cfg.lam(), cfg.theta()
        fp = cfg.flow_record() if hasattr(cfg, "flow_record") else cfg.flow_params()
        for i in range(2):
            K.init_book(b, i, 5_000, lam, theta, 1)
        res = np.zeros((2, 2), dtype=np.int64)
        for chunk in range(30):
            K.book_flow(b, np.full(2, chunk + 1.0), lam, theta, fp)
            ops = np.zeros((2, 2, 5))
            for i in range(2):
                ops[i, 0] = (K.OP_OWN_LIMIT, K.BID, b.best_bid[i] - chunk % 3, 2, 0.0)
                ops[i, 1] = (K.OP_OWN_LIMIT, K.ASK, b.best_ask[i] + chunk % 2, 1, 0.0)
            if chunk % 4 == 3:
                ops[:, :, 0] = K.OP_OWN_CANCEL
                ops[:, :, 2] = [0, 1]
            K.book_apply_ops(b, ops, 1 if model == "power" else 0, 2.0, res)
            out[f"book_{model}/ops_result/{chunk}"] = res.copy()
        for f in BOOK_FIELDS:
            out[f"book_{model}/{f}"] = np.asarray(getattr(b, f)).copy()


def record() -> dict[str, np.ndarray]:
    """Every recorded array, keyed ``case/field``."""
    out: dict[str, np.ndarray] = {}
    for name, (env_id, kwargs, n, steps) in VECTOR_CASES.items():
        _vector(name, env_id, kwargs, n, steps, out)
    for name, (env_id, kwargs, steps) in SINGLE_CASES.items():
        _single(name, env_id, kwargs, steps, out)
    _evaluations(out)
    _book(out)
    return out


if __name__ == "__main__":
    data = record()
    np.savez_compressed(sys.argv[1], **data)
    print(f"{len(data)} arrays, {sum(v.size for v in data.values())} values -> {sys.argv[1]}")

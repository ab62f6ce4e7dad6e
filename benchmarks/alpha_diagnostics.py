#!/usr/bin/env python
"""Where a trained PPO model on ``configs/ppo_alpha.yaml`` loses value against the exact optimum.

Three paired diagnostics, each a family of modified policies run on the same held-out episodes
as the model itself (common random numbers; :func:`mmgym.evaluation.evaluate_agents`), reported
as the objective, its % of the same episodes' optimum and the paired 95 % CI against the model:

- ``--held``: the model evaluated with observation columns held at a constant (volatility 1,
  fills 0, mid return 0, flow 0: their values when nothing happens). Columns that carry no
  information about the optimal action (the optimum is a function of t, q and the alpha notch)
  should not move a good policy; a gain means the mean action follows noise.
- ``--shift``: every interior depth (above 0) narrowed by 0.1, 0.2, 0.3 price units (a mean
  biased wide, e.g. by exploration noise on the convex fill probability, gains).
- ``--regions``: the optimum's depths (the DP's tables) replace the model's in one region of the
  state space at a time (notch 0, |notch| 1-2, |notch| >= 3, q = 0, the last 20 steps): the
  gain splits the gap by region (replacing everywhere recovers the optimum up to the box).

Usage::

    python benchmarks/alpha_diagnostics.py runs/bench_ppo_alpha/seed0/model.zip --held --shift --regions \\
        [--config configs/ppo_alpha.yaml] [--episodes 4000] [--seed 200000]

The config must be the model's (its action box); the model reads whatever columns it was trained
on (``agent.features`` included: held columns it does not read change nothing).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model")
    p.add_argument("--config", default=str(ROOT / "configs" / "ppo_alpha.yaml"))
    p.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE")
    p.add_argument("--episodes", type=int, default=4000)
    p.add_argument("--seed", type=int, default=200_000, help="held-out: episode e uses seed + e")
    p.add_argument("--held", action="store_true")
    p.add_argument("--shift", action="store_true")
    p.add_argument("--regions", action="store_true")
    args = p.parse_args(argv)

    import torch
    from stable_baselines3 import PPO

    from mmgym.baselines.optimal import solve_optimal
    from mmgym.config import load_config
    from mmgym.evaluation import evaluate_agents
    from mmgym.scenarios import get

    torch.set_num_threads(1)
    cfg = load_config(args.config, overrides=args.set)
    env = cfg.env
    if env.action.mode != "offsets" or env.id != "mmgym/AlphaMarketMaking-v0":
        print("alpha_diagnostics.py: needs the alpha env with action.mode offsets", file=sys.stderr)
        return 2
    model = PPO.load(args.model, device="cpu")
    cols = get(env.id).obs_columns(env)
    lo, hi = env.action.offset_min, env.action.offset_max
    m, q_max, n_steps = env.alpha.notches, env.market.max_inventory, env.market.n_steps

    def base(obs):
        return model.predict(obs, deterministic=True)[0]

    def to_depth(a):
        return lo + (np.clip(a, -1.0, 1.0) + 1.0) / 2.0 * (hi - lo)

    def to_action(d):
        return (d - lo) / (hi - lo) * 2.0 - 1.0

    agents = {"model": base}
    if args.held:
        held = {"volatility": 1.0, "fill_bid": 0.0, "fill_ask": 0.0, "mid_return": 0.0, "mo_flow": 0.0}

        def holding(names):
            def act(obs):
                o = obs.copy()
                for n in names:
                    o[:, cols[n]] = held[n]
                return base(o)
            return act
        for n in ("volatility", "mid_return", "mo_flow"):
            agents[f"held {n}"] = holding([n])
        agents["held fills"] = holding(["fill_bid", "fill_ask"])
        agents["held all five"] = holding(list(held))
    if args.shift:
        def shifting(s):
            def act(obs):
                d = to_depth(base(obs))
                return to_action(np.where(d > lo + 1e-9, np.clip(d - s, lo, hi), d))
            return act
        for s in (0.1, 0.2, 0.3):
            agents[f"narrowed {s}"] = shifting(s)
    if args.regions:
        sol = solve_optimal(env)

        def replacing(region):
            def act(obs):
                a = base(obs).copy()
                q = np.rint(obs[:, cols["inventory"]] * q_max).astype(np.int64)
                step = np.minimum(np.rint((1.0 - obs[:, cols["time_left"]]) * n_steps).astype(np.int64), n_steps - 1)
                n = np.rint(obs[:, cols["alpha"]] * m).astype(np.int64)
                opt = np.stack([sol.delta_b[step, n + m, q + q_max], sol.delta_a[step, n + m, q + q_max]], 1)
                sel = region(n, q, step)
                a[sel] = np.clip(to_action(opt[sel]), -1.0, 1.0)
                return a
            return act
        regions = {"n = 0": lambda n, q, t: n == 0, "|n| 1-2": lambda n, q, t: (abs(n) >= 1) & (abs(n) <= 2),
                   "|n| >= 3": lambda n, q, t: abs(n) >= 3, "q = 0": lambda n, q, t: q == 0,
                   "last 20 steps": lambda n, q, t: t >= n_steps - 20, "everywhere": lambda n, q, t: n == n}
        for name, r in regions.items():
            agents[f"optimum at {name}"] = replacing(r)
    agents["optimal"] = "optimal"
    res = evaluate_agents(env, agents, episodes=args.episodes, seed=args.seed,
                          baselines_config=cfg.baselines, reference="model")
    opt = res["optimal"]["objective_mean"]
    print(f"{args.model}: {args.episodes} episodes from seed {args.seed}; optimal {opt:.3f}")
    print(f"{'policy':26s} {'objective':>10s} {'% opt':>7s}  - model [95 % CI]")
    for name, r in res.items():
        lo_ci, hi_ci = r.get("objective_diff_ci95", (0.0, 0.0))
        print(f"{name:26s} {r['objective_mean']:10.3f} {100 * r['objective_mean'] / opt:7.2f}  "
              f"{r.get('objective_diff_mean', 0.0):+.3f} [{lo_ci:+.3f}, {hi_ci:+.3f}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python
"""Where in the episode a trained agent earns: its mean reward per step, and the last step's.

Usage::

    python benchmarks/step_profile.py CONFIG RUN_DIR/model.zip [--episodes 200] [--seed 777000]

Runs the model deterministically (``load_sb3_policy``: its saved VecNormalize statistics applied) on ``--episodes``
episodes and prints the episode total, the mean reward per step over the interior steps and the
last step's mean reward with its standard error. A policy that exploited the closing mark (on the
book the marking mid includes our own quotes) would earn unusually on the last step.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("config")
    ap.add_argument("model")
    ap.add_argument("--episodes", type=int, default=200)
    ap.add_argument("--seed", type=int, default=777_000)
    args = ap.parse_args(argv)
    import gymnasium as gym
    import torch
    from mmgym.agents.policies import load_sb3_policy

    import mmgym  # noqa: F401 - registers the env ids
    from mmgym.config import ConfigError, load_config

    torch.set_num_threads(1)
    try:
        cfg = load_config(args.config)
        policy = load_sb3_policy(args.model, cfg.env)  # evaluate.py's loader: any algorithm, VecNormalize applied
    except ConfigError as exc:
        print(f"step_profile.py: error: {exc}", file=sys.stderr)
        return 2
    env = gym.make_vec(cfg.env.id, num_envs=args.episodes, vectorization_mode="vector_entry_point", config=cfg.env)
    obs, _ = env.reset(seed=args.seed)
    rewards = []
    for _ in range(cfg.env.market.n_steps):
        obs, r, *_ = env.step(policy(obs))
        rewards.append(np.asarray(r, dtype=np.float64).copy())
    r = np.array(rewards)
    n = len(r)
    lo, hi = min(10, n // 10), max(n - 10, n - n // 10)
    print(f"episode total {r.sum(0).mean():.4f}; mean reward per step, steps {lo}..{hi - 1}: {r[lo:hi].mean():.5f}; "
          f"last step {r[-1].mean():+.5f} ± {r[-1].std() / np.sqrt(r.shape[1]):.5f} (SE, {r.shape[1]} episodes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

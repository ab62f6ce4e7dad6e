"""One evaluated episode per agent as an animated image (``evaluate.py --video``).

The episode is the evaluation's episode 0 (seed ``seed``): the same scenario the agents were
compared on. Frames are the envs' ``rgb_array`` frames (:mod:`mmgym.envs.render`), drawn every
``every`` steps (the trace itself records every step); the file is an animated GIF written with
Pillow (matplotlib's dependency), so no video codec is needed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..make import make_market
from ..schema import EnvConfig

__all__ = ["episode_frames", "write_gif"]


def episode_frames(env_config: EnvConfig, policy: Any, seed: int, max_frames: int = 100,
                   dpi: int = 80, title: str | None = None) -> list[np.ndarray]:
    """The frames of one episode of ``policy`` (a DepthPolicy or a callable obs -> action).

    At most ``max_frames`` frames, evenly spaced, the last step always included.
    """
    from ..baselines import DepthPolicy
    from ..envs.render import EpisodeTrace, FrameRenderer

    is_depth = isinstance(policy, DepthPolicy)
    market = make_market(env_config, 1, raw_depths=is_depth)
    market.seed_rows([seed])
    obs = market.reset()
    sc = market.scenario
    n_steps = market.n_steps
    every = max(1, -(-n_steps // max_frames))
    trace = EpisodeTrace(n_steps)
    renderer = FrameRenderer(title or env_config.id, n_steps, with_ladder=sc.has_ladder, dpi=dpi)
    actions = np.zeros((1, market.action_dim))
    aux_names = market.aux_names
    frames = []
    try:
        for t in range(n_steps):
            q_before = float(market.inventory[0, 0])
            ladder = sc.ladder(market, 0, 12) if sc.has_ladder else None
            if is_depth:
                policy.act(market, out=actions)
                act = actions
            else:
                act = np.asarray(policy(obs), dtype=np.float64).reshape(1, market.action_dim)
            buf = market.step(act)
            obs = buf.obs
            trace.append(dict(zip(aux_names, buf.aux[0].tolist())), q_before)
            if (t + 1) % every == 0 or t == n_steps - 1:
                status = f"step {t + 1}/{n_steps}  q {q_before:+.0f}"
                frames.append(renderer.draw(trace, status, ladder))
    finally:
        renderer.close()
    return frames


def write_gif(frames: list[np.ndarray], path: Path, fps: float = 10.0) -> Path:
    """Write ``frames`` as an animated GIF (Pillow), looping; returns ``path``."""
    from PIL import Image

    images = [Image.fromarray(f) for f in frames]
    path.parent.mkdir(parents=True, exist_ok=True)
    images[0].save(path, save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0,
                   optimize=False)
    return path

"""Gymnasium single and vector environments over any registered scenario's :class:`BatchMarket`.

A scenario module subclasses :class:`ScenarioEnv` and :class:`ScenarioVectorEnv`, sets
``scenario_id`` and writes the env's manual as the class docstring; nothing else.
"""

from __future__ import annotations

from typing import Any, Sequence

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from .market import BatchMarket

__all__ = ["ScenarioEnv", "ScenarioVectorEnv", "episode_info", "episode_info_batch", "resolve_env_config"]


def resolve_env_config(env_id: str, config: Any, overrides: dict[str, Any]):
    """The config of a ``gym.make(env_id, config=..., **overrides)`` call.

    ``config`` is a YAML path, a mapping (an experiment or just the env's sections) or an
    :class:`~mmgym.schema.EnvConfig`; None uses the scenario's defaults. A config that names no
    env is taken for ``env_id``; one that names another env is an error.
    """
    from ..config import load_env_config, merge_env_kwargs
    from ..scenarios import get

    if config is None:
        cfg = get(env_id).default_config()
    else:
        cfg = load_env_config(config, env_id=env_id)
    return merge_env_kwargs(cfg, overrides) if overrides else cfg


def episode_info(market: BatchMarket, stats: np.ndarray) -> dict[str, Any]:
    """Episode summary of one finished row: SB3/Gymnasium ``r``, ``l`` plus market statistics."""
    values = dict(zip(market.stat_names, stats.tolist()))
    out = {"r": values["return"], "l": int(values["length"]), "t": 0.0}
    out.update(values)
    return out


def episode_info_batch(market: BatchMarket, stats: np.ndarray) -> dict[str, np.ndarray]:
    """Episode summaries of all rows as arrays (``r``, ``l`` and the market's statistics)."""
    out = {name: stats[:, j].copy() for j, name in enumerate(market.stat_names)}
    out["r"] = out["return"]
    out["l"] = out["length"].astype(np.int64)
    return out


class ScenarioEnv(gym.Env):
    """A single Gymnasium env: one row of a :class:`BatchMarket` (the same kernel as the batch)."""

    metadata = {"render_modes": ["ansi"], "render_fps": 4}
    #: the registered scenario this env runs (set by the scenario's subclass)
    scenario_id: str = ""

    def __init__(self, config: Any = None, render_mode: str | None = None, **overrides: Any):
        self.config = resolve_env_config(self.scenario_id, config, overrides)
        self.market = BatchMarket(self.config, 1)
        self.observation_space = self.market.single_observation_space
        self.action_space = self.market.single_action_space
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']}, got {render_mode!r}")
        self.render_mode = render_mode
        self._action = np.zeros((1, self.market.action_dim))
        self._aux_idx = [j for j, name in enumerate(self.market.aux_names)
                         if name not in self.market.unused_aux]
        self._info_keys = self.market.term_names + tuple(self.market.aux_names[j] for j in self._aux_idx)
        self._last_info: dict[str, Any] = {}
        self._reset_done_in_kernel = False

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        """Reset the market.

        Right after an episode end, without a new seed, the row the kernel already reset is
        returned (SAME_STEP autoreset: a reset that draws random numbers, like the book's warm-up,
        has drawn them), so a single env follows exactly the stream of the vector env's row.
        """
        super().reset(seed=seed)
        if self._reset_done_in_kernel and seed is None and self.market.seeded[0]:
            self._reset_done_in_kernel = False
            self._last_info = {}
            return self.market.buffers.obs[0].copy(), {}
        self._reset_done_in_kernel = False
        if seed is not None or not self.market.seeded[0]:
            self.market.set_rng_row(0, self.np_random)
        obs = self.market.reset()
        self._last_info = {}
        return obs[0].copy(), {}

    def step(self, action):
        self._action[0] = action
        bad = self.market._step(self._action)
        if bad >= 0:
            raise ValueError(f"action is not finite: {np.asarray(action).tolist()}")
        b = self.market.buffers
        aux = b.aux[0].tolist()
        info = dict(zip(self._info_keys, b.terms[0].tolist() + [aux[j] for j in self._aux_idx]))
        done = bool(b.done[0])
        if done:
            obs = b.final_obs[0].copy()
            info["episode"] = episode_info(self.market, b.final_stats[0])
        else:
            obs = b.obs[0].copy()
        self._last_info = info
        self._reset_done_in_kernel = done
        return obs, float(b.reward[0]), done, False, info

    def render(self):
        if self.render_mode != "ansi":
            return None
        m, info = self.market, self._last_info
        bid = info.get("bid_px", float("nan"))
        ask = info.get("ask_px", float("nan"))
        mid = m.get_field("mid", [0])[0] if "mid" in m.state_fields else float("nan")
        cash = m.get_field("cash", [0])[0] if "cash" in m.state_fields else float("nan")
        return (
            f"step {int(m.step_count[0])}/{m.n_steps}  mid {mid:.4f}  q {int(m.inventory[0, 0])}  "
            f"cash {cash:.4f}  bid {bid:.4f}  ask {ask:.4f}"
        )


class ScenarioVectorEnv(VectorEnv):
    """A Gymnasium vector env stepping all markets in one kernel call (SAME_STEP autoreset).

    On a finished row, ``infos["final_obs"]`` (object array, ``None`` elsewhere, mask
    ``infos["_final_obs"]``) holds the last observation and ``infos["final_info"]["episode"]``
    the episode statistics; the returned observation is already the reset one.
    """

    metadata = {"autoreset_mode": AutoresetMode.SAME_STEP, "render_modes": []}
    scenario_id: str = ""

    def __init__(self, num_envs: int = 1, config: Any = None, render_mode: str | None = None,
                 **overrides: Any):
        overrides.pop("max_episode_steps", None)
        self.config = resolve_env_config(self.scenario_id, config, overrides)
        self.market = BatchMarket(self.config, num_envs)
        self.num_envs = num_envs
        self.single_observation_space = self.market.single_observation_space
        self.single_action_space = self.market.single_action_space
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self.render_mode = render_mode
        self._aux_items = [(j, name) for j, name in enumerate(self.market.aux_names)
                           if name not in self.market.unused_aux]
        self._not_truncated = np.zeros(num_envs, dtype=np.bool_)  # never truncated: one read-only array
        self._not_truncated.flags.writeable = False

    def reset(self, *, seed: int | Sequence[int | None] | None = None,
              options: dict[str, Any] | None = None):
        super().reset(seed=seed if isinstance(seed, (int, type(None))) else None)
        mask = None
        if options and options.get("reset_mask") is not None:
            mask = np.asarray(options["reset_mask"], dtype=np.bool_)
        if seed is not None:
            seeds = [seed + i for i in range(self.num_envs)] if isinstance(seed, int) else list(seed)
            if len(seeds) != self.num_envs:
                raise ValueError(f"expected {self.num_envs} seeds, got {len(seeds)}")
            rows = [r for r in range(self.num_envs) if mask is None or mask[r]]
            self.market.seed_rows([seeds[r] for r in rows], rows)
        # the previous step handed its obs array out: reset into a fresh one (unmasked rows kept)
        previous = self.market.buffers.obs
        self.market.renew_outputs().obs[:] = previous
        return self.market.reset(mask), {}

    def step(self, actions):
        self.market.renew_outputs()  # the arrays returned below are never written again
        b = self.market.step(actions)
        terms = b.terms.T  # (T, N) views; contiguous rows when the buffers are column-major
        aux = b.aux.T
        infos: dict[str, Any] = dict(zip(self.market.term_names, terms))
        for j, name in self._aux_items:
            infos[name] = aux[j]
        done = b.done
        if done.any():
            final_obs = np.full(self.num_envs, None, dtype=object)
            for i in np.flatnonzero(done):
                final_obs[i] = b.final_obs[i].copy()
            infos["final_obs"] = final_obs
            infos["_final_obs"] = done
            infos["final_info"] = {"episode": episode_info_batch(self.market, b.final_stats),
                                   "_episode": done}
            infos["_final_info"] = done
        return b.obs, b.reward, done, self._not_truncated, infos

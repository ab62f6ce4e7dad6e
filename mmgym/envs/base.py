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

__all__ = ["EPISODE_KEY", "ScenarioEnv", "ScenarioVectorEnv", "episode_info", "episode_info_batch", "resolve_env_config"]


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


#: The info key of our episode statistics (``info["episode"]`` is reserved by Gymnasium's
#: ``RecordEpisodeStatistics`` and SB3's ``Monitor``).
EPISODE_KEY = "mm_episode"


class ScenarioEnv(gym.Env):
    """A single Gymnasium env: one row of a :class:`BatchMarket` (the same kernel as the batch).

    Conventions (Gymnasium >= 1.1): the episode statistics of a finished episode are in
    ``info["mm_episode"]`` (``info["episode"]`` stays free for ``RecordEpisodeStatistics``);
    ``render_mode`` is ``"rgb_array"`` (a frame, :mod:`mmgym.envs.render`), ``"human"`` (the same
    frames in a window) or ``"ansi"`` (one line of text); the market's random stream is seeded from
    ``np_random`` at ``reset(seed=...)``, and assigning ``env.unwrapped.np_random`` reseeds it.
    """

    metadata = {"render_modes": ["ansi", "rgb_array", "human"], "render_fps": 30}
    #: the registered scenario this env runs (set by the scenario's subclass)
    scenario_id: str = ""

    def __init__(self, config: Any = None, render_mode: str | None = None, **overrides: Any):
        self.config = resolve_env_config(self.scenario_id, config, overrides)
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']}, got {render_mode!r}")
        self.market = BatchMarket(self.config, 1)
        self.observation_space = self.market.single_observation_space
        self.action_space = self.market.single_action_space
        self.render_mode = render_mode
        # a frame shows the episode so far: steps are recorded from the first render() call on
        # (SB3 makes every env with render_mode="rgb_array" and never renders: no cost then);
        # "human" renders every step, so it records from the start
        self._trace = None
        self._renderer = None
        if render_mode == "human":
            self._start_trace()
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
        self._last_info = {}
        if self._trace is not None:
            self._trace.clear()
        if self._reset_done_in_kernel and seed is None and self.market.seeded[0]:
            self._reset_done_in_kernel = False
            return self.market.buffers.obs[0].copy(), {}
        self._reset_done_in_kernel = False
        if seed is not None or not self.market.seeded[0]:
            self.market.set_rng_row(0, self.np_random)
        obs = self.market.reset()
        return obs[0].copy(), {}

    @property
    def np_random(self) -> np.random.Generator:
        """The env's generator (Gymnasium's); the market's stream is drawn from it."""
        return gym.Env.np_random.fget(self)

    @np_random.setter
    def np_random(self, value: np.random.Generator) -> None:
        # Gymnasium's convention: assigning np_random changes the env's randomness. The market's
        # kernel stream is seeded from it now; the episode in progress continues on that stream.
        gym.Env.np_random.fset(self, value)
        self.market.set_rng_row(0, value)

    def step(self, action):
        self._action[0] = action
        if self._trace is not None:
            q_before = float(self.market.inventory[0, 0])
        bad = self.market._step(self._action)
        if bad >= 0:
            raise ValueError(f"action is not finite: {np.asarray(action).tolist()}")
        b = self.market.buffers
        aux = b.aux[0].tolist()
        info = dict(zip(self._info_keys, b.terms[0].tolist() + [aux[j] for j in self._aux_idx]))
        done = bool(b.done[0])
        if done:
            obs = b.final_obs[0].copy()
            info[EPISODE_KEY] = episode_info(self.market, b.final_stats[0])
        else:
            obs = b.obs[0].copy()
        self._last_info = info
        self._reset_done_in_kernel = done
        if self._trace is not None:
            self._trace.append(info, q_before)
            if self.render_mode == "human":
                self.render()
        return obs, float(b.reward[0]), done, False, info

    def render(self):
        """``"rgb_array"``: the frame (uint8 ``(H, W, 3)``); ``"human"``: draws it in a window;
        ``"ansi"``: one line of text.

        A frame shows the episode's steps since the first ``render()`` call (calling it after
        ``reset``, as ``RecordVideo`` and ``evaluate.py --video`` do, gives whole episodes); until
        then nothing is recorded, so an env made with ``render_mode="rgb_array"`` that is never
        rendered steps as fast as one without. After an episode's last step the frame still shows
        that episode (the market has already reset the row, SAME_STEP)."""
        if self.render_mode is None:
            gym.logger.warn("render() called without a render_mode (gym.make(..., render_mode=...))")
            return None
        if self.render_mode == "ansi":
            return self._status()
        if self._trace is None:
            self._start_trace()
        if self._renderer is None:
            from .render import FrameRenderer

            self._renderer = FrameRenderer(
                self.scenario_id, self.market.n_steps, human=self.render_mode == "human",
                with_ladder=self.market.scenario.has_ladder)
        ladder = None
        if self._renderer.ax_book is not None:
            ladder = self.market.scenario.ladder(self.market, 0, 12)
        return self._renderer.draw(self._trace, self._status(), ladder)

    def _start_trace(self) -> None:
        from .render import EpisodeTrace

        self._trace = EpisodeTrace(self.market.n_steps + 1)

    def _status(self) -> str:
        m, info = self.market, self._last_info
        bid = info.get("bid_px", float("nan"))
        ask = info.get("ask_px", float("nan"))
        mid = m.get_field("mid", [0])[0] if "mid" in m.state_fields else float("nan")
        cash = m.get_field("cash", [0])[0] if "cash" in m.state_fields else float("nan")
        if np.size(mid) > 1:  # several assets (the portfolio): every mid and inventory
            mids = " ".join(f"{x:.4f}" for x in np.ravel(mid))
            qs = " ".join(str(int(x)) for x in m.inventory[0])
            return f"step {int(m.step_count[0])}/{m.n_steps}  mids [{mids}]  q [{qs}]  cash {cash:.4f}"
        return (
            f"step {int(m.step_count[0])}/{m.n_steps}  mid {float(mid):.4f}  q {int(m.inventory[0, 0])}  "
            f"cash {cash:.4f}  bid {bid:.4f}  ask {ask:.4f}"
        )

    def close(self):
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
        super().close()


class ScenarioVectorEnv(VectorEnv):
    """A Gymnasium vector env stepping all markets in one kernel call (SAME_STEP autoreset).

    On a finished row, ``infos["final_obs"]`` (object array, ``None`` elsewhere, mask
    ``infos["_final_obs"]``) holds the last observation and ``infos["final_info"]["mm_episode"]``
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
            infos["final_info"] = {EPISODE_KEY: episode_info_batch(self.market, b.final_stats),
                                   f"_{EPISODE_KEY}": done}
            infos["_final_info"] = done
        return b.obs, b.reward, done, self._not_truncated, infos

"""A stable-baselines3 ``VecEnv`` over a batched mmgym market (one numba call per step).

Semantics follow SB3's ``DummyVecEnv.step_wait``: finished rows carry ``terminal_observation``,
``TimeLimit.truncated`` and an ``episode`` dict (``r``, ``l``, ``t`` as SB3's Monitor writes them,
plus the market's episode statistics), and the returned observation is already the reset one.
There are no per-env Python objects behind it: ``get_attr``/``set_attr`` read and write per-env state
fields (``mid``, ``inventory``, ...) row by row, or the shared attributes of the market; and
``env_method`` calls per-row methods of :class:`RowView` (``reset``, ``render``, ``state``).
"""

from __future__ import annotations

import time
from typing import Any, Sequence

import numpy as np
from stable_baselines3.common.vec_env.base_vec_env import (
    VecEnv,
    VecEnvIndices,
    VecEnvObs,
    VecEnvStepReturn,
)

import mmgym
from mmgym.config import EnvConfig, load_env_config
from mmgym.envs.base import episode_info
from mmgym.envs.market import BatchMarket


class RowView:
    """One row of a batched market, seen as an env: the target of ``env_method``/``get_attr``."""

    def __init__(self, vec: MMVecEnv, row: int):
        self._vec = vec
        self._row = row

    def reset(self, seed: int | None = None) -> np.ndarray:
        """Reset this row (reseeding its stream if ``seed`` is given); returns its observation."""
        market = self._vec.market
        if seed is not None:
            market.seed_rows([seed], [self._row], spawn_key=self._vec.spawn_key)
        mask = np.zeros(market.num_envs, dtype=np.bool_)
        mask[self._row] = True
        obs = market.reset(mask)
        self._vec._obs[self._row] = obs[self._row]
        return obs[self._row].copy()

    def state(self) -> dict[str, Any]:
        """Per-env state fields of this row."""
        market = self._vec.market
        return {name: market.get_field(name, [self._row])[0] for name in market.state_fields}

    def render(self, mode: str | None = None) -> str:
        """A one-line text rendering of this row."""
        s = self.state()
        return " ".join(f"{k}={v:.6g}" if isinstance(v, float) else f"{k}={v}" for k, v in s.items())


class MMVecEnv(VecEnv):
    """stable-baselines3 VecEnv stepping ``num_envs`` markets in one kernel call.

    Args:
        config: env config (YAML path, mapping or :class:`~mmgym.config.EnvConfig`).
        num_envs: number of markets.
        seed: optional seed applied at the first reset (env i gets ``seed + i``).
        market: an existing :class:`~mmgym.envs.market.BatchMarket` to wrap instead of building one.
        spawn_key: the family of random streams (:meth:`BatchMarket.seed_rows`); the trainer
            passes :data:`~mmgym.envs.market.TRAINING_STREAMS`, so training scenarios are disjoint
            from evaluation's (which use the default, the streams of ``gym.make`` envs).
    """

    def __init__(self, config: Any = None, num_envs: int = 1, seed: int | None = None,
                 market: BatchMarket | None = None, spawn_key: tuple[int, ...] = ()):
        self.spawn_key = tuple(spawn_key)
        if market is None:
            cfg: EnvConfig = load_env_config(config)
            market = mmgym.make_market(cfg, num_envs)
        self.market = market
        self.config = market.config
        self.render_mode = None
        self._actions: np.ndarray | None = None
        self._obs = np.zeros((market.num_envs, market.obs_dim), dtype=np.float32)
        self._t0 = time.time()
        super().__init__(market.num_envs, market.single_observation_space, market.single_action_space)
        if seed is not None:
            self.seed(seed)

    # ----------------------------------------------------------------------- core API ---
    def reset(self) -> VecEnvObs:
        seeds = self._seeds
        if any(s is not None for s in seeds):
            rows = [i for i, s in enumerate(seeds) if s is not None]
            self.market.seed_rows([seeds[i] for i in rows], rows, spawn_key=self.spawn_key)
        obs = self.market.reset()
        self._reset_seeds()
        self._reset_options()
        self._obs[:] = obs
        self.reset_infos = [{} for _ in range(self.num_envs)]
        return self._obs.copy()

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = actions

    def step_wait(self) -> VecEnvStepReturn:
        actions = np.asarray(self._actions, dtype=np.float64).reshape(self.num_envs, -1)
        b = self.market.step(actions)
        self._obs[:] = b.obs
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        done_rows = np.flatnonzero(b.done)
        now = round(time.time() - self._t0, 6)
        for i in done_rows:
            ep = episode_info(self.market, b.final_stats[i])
            ep["t"] = now
            infos[i] = {
                "terminal_observation": b.final_obs[i].copy(),
                "TimeLimit.truncated": False,
                "episode": ep,  # SB3's convention (r, l, t), with our statistics alongside
                "mm_episode": ep,  # ours, kept when a Monitor wrapper rewrites "episode"
            }
        return self._obs.copy(), b.reward.astype(np.float32), b.done.copy(), infos

    @property
    def last_terms(self) -> dict[str, np.ndarray]:
        """The last step's reward terms, one (N,) array per term (views; copied by callers)."""
        return {n: self.market.buffers.terms[:, j] for j, n in enumerate(self.market.term_names)}

    @property
    def last_aux(self) -> dict[str, np.ndarray]:
        """The last step's quotes, fills, gamma and skew, one (N,) array each (views)."""
        return {n: self.market.buffers.aux[:, j] for j, n in enumerate(self.market.aux_names)}

    def close(self) -> None:
        pass

    def get_images(self) -> Sequence[np.ndarray | None]:
        return [None for _ in range(self.num_envs)]

    # ------------------------------------------------------------------- attributes ---
    def _rows(self, indices: VecEnvIndices) -> list[int]:
        return list(self._get_indices(indices))

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        rows = self._rows(indices)
        if attr_name in self.market.state_fields:
            return self.market.get_field(attr_name, rows)
        if attr_name in ("render_mode",):
            return [self.render_mode for _ in rows]
        if hasattr(self.market, attr_name):
            value = getattr(self.market, attr_name)
            return [value for _ in rows]
        if hasattr(self.market.config, attr_name):
            value = getattr(self.market.config, attr_name)
            return [value for _ in rows]
        raise AttributeError(f"{type(self.market).__name__} has no attribute {attr_name!r}")

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        rows = self._rows(indices)
        if attr_name in self.market.state_fields:
            self.market.set_field(attr_name, value, rows)
            return
        if attr_name == "render_mode":
            self.render_mode = value
            return
        if len(rows) != self.num_envs:
            raise ValueError(
                f"{attr_name!r} is shared by all envs of the batch; set it on all indices "
                f"(per-env fields: {', '.join(self.market.state_fields)})"
            )
        setattr(self.market, attr_name, value)

    def env_method(self, method_name: str, *method_args: Any, indices: VecEnvIndices = None,
                   **method_kwargs: Any) -> list[Any]:
        out = []
        for row in self._rows(indices):
            view = RowView(self, row)
            method = getattr(view, method_name, None)
            if method is None:
                raise AttributeError(
                    f"no per-env method {method_name!r} (available: reset, state, render)"
                )
            out.append(method(*method_args, **method_kwargs))
        return out

    def env_is_wrapped(self, wrapper_class: type, indices: VecEnvIndices = None) -> list[bool]:
        # No gymnasium wrappers sit between this VecEnv and the kernel.
        return [False for _ in self._rows(indices)]

    def seed(self, seed: int | None = None) -> Sequence[None | int]:
        """Seed env i with ``seed + i`` at the next reset (SB3 semantics)."""
        if seed is None:
            seed = int(np.random.SeedSequence().generate_state(1)[0])
        self._seeds = [seed + i for i in range(self.num_envs)]
        return list(self._seeds)


def make_sb3_vec_env(config: Any = None, num_envs: int = 1, seed: int | None = None) -> MMVecEnv:
    """Build the SB3 VecEnv for any registered mmgym env from a YAML path, mapping or config."""
    return MMVecEnv(config, num_envs=num_envs, seed=seed)


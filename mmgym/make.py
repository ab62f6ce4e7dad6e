"""Build environments and batched markets from a YAML file or a mapping."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym

from .config import EnvConfig, ExperimentConfig, load_env_config
from .envs.market import BatchMarket


def make_env(
    config: str | Path | dict[str, Any] | EnvConfig | ExperimentConfig | None = None,
    num_envs: int | None = None,
    overrides: list[str] | None = None,
    **kwargs: Any,
) -> gym.Env | gym.vector.VectorEnv:
    """Build an environment from a YAML file or a mapping.

    Args:
        config: YAML path, mapping (a whole experiment with an ``env`` section, or just the env's
            sections), :class:`EnvConfig` or :class:`ExperimentConfig`. None uses the defaults.
        num_envs: None for a single ``gym.Env`` (``gym.make``); an int for a vector env stepping
            all markets in one kernel call (``gym.make_vec`` with ``vector_entry_point``).
        overrides: ``key.path=value`` strings (``market.sigma=3``).
        **kwargs: passed to the env constructor (``render_mode``).

    Example:
        >>> env = make_env("configs/cjp.yaml")                     # doctest: +SKIP
        >>> venv = make_env({"market": {"sigma": 3}}, num_envs=1000)  # doctest: +SKIP
    """
    cfg = load_env_config(config, overrides)  # validates env.id against the registered scenarios
    if num_envs is None:
        return gym.make(cfg.id, config=cfg, **kwargs)
    return gym.make_vec(cfg.id, num_envs=num_envs, vectorization_mode="vector_entry_point",
                        config=cfg, **kwargs)


def make_market(config: EnvConfig, num_envs: int, raw_depths: bool = False,
                parallel: bool = False) -> BatchMarket:
    """The batched market behind ``config.id`` (for baselines, evaluation and adapters)."""
    return BatchMarket(config, num_envs, raw_depths=raw_depths, parallel=parallel)

"""Build environments and batched markets from a YAML file or a mapping."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import gymnasium as gym

from .config import ConfigError, EnvConfig, ExperimentConfig, load_env_config
from .envs.batch import BatchMarket, IntensityMarket

#: id -> factory(config, num_envs, raw_depths) of the batched market behind each registered env.
MARKETS: dict[str, Callable[..., BatchMarket]] = {
    "mmgym/MarketMaking-v0": lambda config, num_envs, raw_depths=False: IntensityMarket(
        config, num_envs, raw_depths=raw_depths
    ),
    "mmgym/LOBMarketMaking-v0": lambda config, num_envs, raw_depths=False: _lob_market(
        config, num_envs, raw_depths
    ),
}


def _lob_market(config: EnvConfig, num_envs: int, raw_depths: bool) -> BatchMarket:
    from .envs.lob import LOBMarket

    return LOBMarket(config, num_envs, raw_depths=raw_depths)


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
    cfg = load_env_config(config, overrides)  # validates env.id against the registered mmgym envs
    if num_envs is None:
        return gym.make(cfg.id, config=cfg, **kwargs)
    return gym.make_vec(cfg.id, num_envs=num_envs, vectorization_mode="vector_entry_point",
                        config=cfg, **kwargs)


def make_market(config: EnvConfig, num_envs: int, raw_depths: bool = False) -> BatchMarket:
    """The batched market behind ``config.id`` (for baselines, evaluation and adapters)."""
    try:
        factory = MARKETS[config.id]
    except KeyError:
        raise ConfigError(f"env.id: unknown environment {config.id!r} (registered: {', '.join(sorted(MARKETS))})") from None
    return factory(config, num_envs, raw_depths=raw_depths)

"""mmgym: numba-accelerated market-making simulators with Gymnasium environments.

Importing mmgym registers the environments of every scenario in :data:`mmgym.scenarios.REGISTRY`
(``gym.make("mmgym/MarketMaking-v0")``); it does not import torch or stable-baselines3 (those live
in ``agents/``).
"""

from gymnasium.envs.registration import register, registry

from .scenarios import REGISTRY as _REGISTRY

for _env_id, _entry in _REGISTRY.items():
    if _env_id not in registry:
        register(id=_env_id, entry_point=f"{_entry.module}:{_entry.env}",
                 vector_entry_point=f"{_entry.module}:{_entry.vector_env}")

from .config import ConfigError, EnvConfig, ExperimentConfig, load_config, load_env_config  # noqa: E402
from .make import make_env, make_market  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "EnvConfig",
    "ExperimentConfig",
    "load_config",
    "load_env_config",
    "make_env",
    "make_market",
]

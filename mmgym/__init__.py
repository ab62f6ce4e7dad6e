"""mmgym: numba-accelerated market-making simulators with Gymnasium environments.

Importing mmgym registers the environments (``gym.make("mmgym/MarketMaking-v0")``); it does not
import torch or stable-baselines3 (those live in ``agents/``).
"""

from gymnasium.envs.registration import register, registry

from .config import ConfigError, EnvConfig, ExperimentConfig, load_config, load_env_config
from .make import make_env, make_market

__version__ = "0.1.0"

if "mmgym/MarketMaking-v0" not in registry:
    register(
        id="mmgym/MarketMaking-v0",
        entry_point="mmgym.envs.market_making:MarketMakingEnv",
        vector_entry_point="mmgym.envs.market_making:MarketMakingVectorEnv",
    )
if "mmgym/LOBMarketMaking-v0" not in registry:
    register(
        id="mmgym/LOBMarketMaking-v0",
        entry_point="mmgym.envs.lob:LOBMarketMakingEnv",
        vector_entry_point="mmgym.envs.lob:LOBMarketMakingVectorEnv",
    )

__all__ = [
    "ConfigError",
    "EnvConfig",
    "ExperimentConfig",
    "load_config",
    "load_env_config",
    "make_env",
    "make_market",
]

"""The Gymnasium layer over the batched simulators."""

from .base import BatchMarketEnv, BatchMarketVectorEnv
from .batch import BatchMarket, IntensityMarket, StepBuffers
from .market_making import MarketMakingEnv, MarketMakingVectorEnv

__all__ = [
    "BatchMarket",
    "BatchMarketEnv",
    "BatchMarketVectorEnv",
    "IntensityMarket",
    "MarketMakingEnv",
    "MarketMakingVectorEnv",
    "StepBuffers",
]

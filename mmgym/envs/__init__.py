"""The Gymnasium layer over the batched simulators: one market class and two env classes that
every scenario uses (:mod:`mmgym.scenarios`)."""

from .base import ScenarioEnv, ScenarioVectorEnv, episode_info, episode_info_batch
from .market import BatchMarket, Kernel, StepBuffers

__all__ = [
    "BatchMarket",
    "Kernel",
    "ScenarioEnv",
    "ScenarioVectorEnv",
    "StepBuffers",
    "episode_info",
    "episode_info_batch",
]

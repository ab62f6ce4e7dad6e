"""The registered scenarios: the one place a market is wired into mmgym.

A scenario is one module (see ``docs/SCENARIOS.md``) defining a :class:`~mmgym.scenarios.base.Scenario`
subclass instance ``SCENARIO`` and its Gymnasium env classes. Registering it is one entry here:
``gym.make``/``gym.make_vec`` ids, the config schema (``env.id`` picks the scenario's config class),
``make_env``/``make_market``, the baselines, evaluation and training all look scenarios up here.

Modules are imported on first use (``import mmgym`` registers the ids without importing numba).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:  # pragma: no cover
    from .base import Scenario

__all__ = ["REGISTRY", "Entry", "get", "ids"]


class Entry(NamedTuple):
    """Where a registered scenario lives: its module and its Gymnasium env classes there."""

    module: str
    env: str
    vector_env: str


#: env id -> where its scenario lives. Adding a scenario: one module plus one line here.
REGISTRY: dict[str, Entry] = {
    "mmgym/MarketMaking-v0": Entry("mmgym.scenarios.intensity", "MarketMakingEnv", "MarketMakingVectorEnv"),
    "mmgym/LOBMarketMaking-v0": Entry("mmgym.scenarios.lob", "LOBMarketMakingEnv", "LOBMarketMakingVectorEnv"),
    "mmgym/OUMarketMaking-v0": Entry("mmgym.scenarios.ou", "OUMarketMakingEnv", "OUMarketMakingVectorEnv"),
    "mmgym/RegimeMarketMaking-v0": Entry("mmgym.scenarios.regimes", "RegimeMarketMakingEnv", "RegimeMarketMakingVectorEnv"),
    "mmgym/EventMarketMaking-v0": Entry("mmgym.scenarios.events", "EventMarketMakingEnv", "EventMarketMakingVectorEnv"),
    "mmgym/AlphaMarketMaking-v0": Entry("mmgym.scenarios.alpha", "AlphaMarketMakingEnv", "AlphaMarketMakingVectorEnv"),
    "mmgym/ReplayMarketMaking-v0": Entry("mmgym.scenarios.replay", "ReplayMarketMakingEnv", "ReplayMarketMakingVectorEnv"),
    "mmgym/PortfolioMarketMaking-v0": Entry("mmgym.scenarios.portfolio", "PortfolioMarketMakingEnv",
                                            "PortfolioMarketMakingVectorEnv"),
}


def ids() -> list[str]:
    """The registered env ids."""
    return list(REGISTRY)


def get(env_id: str) -> Scenario:
    """The scenario registered as ``env_id`` (its module is imported on first use).

    Raises:
        KeyError: an unregistered id (the message lists the registered ones).
    """
    try:
        entry = REGISTRY[env_id]
    except KeyError:
        raise KeyError(f"unknown environment {env_id!r} (registered: {', '.join(REGISTRY)})") from None
    return importlib.import_module(entry.module).SCENARIO

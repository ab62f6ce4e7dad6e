"""``agent.features``: the policy reads a named subset of the observation's columns.

The env's observation is unchanged (every client, baseline and evaluation sees the same Box); the
selection is the first layer of the SB3 policy, a features extractor
(:class:`ObservationColumns`, SB3's ``features_extractor_class`` mechanism, "Custom Policy
Network" in its docs), saved with the model and applied wherever the model acts.

Why a researcher wants it: an input that carries no information about the optimal action still
moves a trained network's output. On ``configs/alpha.yaml`` the DP's state is (t, q, alpha notch);
the three PPO models trained on all eight columns earned +0.41 to +0.64 more (about 1 % of the
optimum, paired over 4,000 held-out episodes) when evaluated with volatility, fills, mid return and
flow held at 1, 0, 0, 0: the mean action had learnt to follow noise (docs/TRAINING.md).
"""

from __future__ import annotations

from typing import Any

import torch as th
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor

__all__ = ["ObservationColumns", "feature_indices", "with_features"]


def feature_indices(names: list[str], columns: Any, source: str = "<config>") -> list[int]:
    """Column indices of ``names`` in a scenario's observation :class:`~mmgym.sim.columns.Columns`.

    Raises:
        ConfigError: an unknown or repeated name (one line listing the valid names).
    """
    from mmgym.config import ConfigError

    valid = list(columns.names)
    if not names:
        raise ConfigError(f"{source}: agent.features: name at least one observation column "
                          f"(valid: {', '.join(valid)}) (got {names!r})")
    out = []
    for j, name in enumerate(names):
        if name not in valid:
            raise ConfigError(f"{source}: agent.features[{j}]: not an observation column of this env "
                              f"(valid: {', '.join(valid)}) (got {name!r})")
        if name in names[:j]:
            raise ConfigError(f"{source}: agent.features[{j}]: named twice (got {name!r})")
        out.append(valid.index(name))
    return out


def with_features(cfg: Any, kwargs: dict[str, Any], source: str = "<config>") -> dict[str, Any]:
    """The algorithm's keyword arguments (:func:`~mmgym.agents.algos.build_algo_kwargs`) with the
    column-selecting extractor in ``policy_kwargs`` when ``agent.features`` is set (unchanged when
    it is not). train.py and the sweep's up-front check both call it.

    Raises:
        ConfigError: a bad ``agent.features`` (:func:`feature_indices`), a policy other than
            MlpPolicy, or a ``features_extractor_class`` of the config's own.
    """
    from mmgym.config import ConfigError
    from mmgym.scenarios import get

    names = cfg.agent.features
    if names is None:
        return kwargs
    policy_kwargs = kwargs.get("policy_kwargs", {})
    if cfg.agent.policy != "MlpPolicy":
        raise ConfigError(f"{source}: agent.features: selects columns of a flat Box observation, for "
                          f"MlpPolicy (agent.policy is {cfg.agent.policy!r}); must be null (got {names!r})")
    if "features_extractor_class" in policy_kwargs:
        raise ConfigError(f"{source}: agent.kwargs.policy_kwargs.features_extractor_class: agent.features "
                          f"sets it; give one of the two (got both)")
    idx = feature_indices(list(names), get(cfg.env.id).obs_columns(cfg.env), source)
    return {**kwargs, "policy_kwargs": {**policy_kwargs, "features_extractor_class": ObservationColumns,
                                        "features_extractor_kwargs": {"columns": idx}}}


class ObservationColumns(BaseFeaturesExtractor):
    """SB3 features extractor: the observation's columns ``columns`` (indices), in that order.

    Args:
        observation_space: the env's flat Box.
        columns: column indices (:func:`feature_indices`).
    """

    def __init__(self, observation_space: Any, columns: list[int]):
        super().__init__(observation_space, features_dim=len(columns))
        self.columns = [int(c) for c in columns]
        self.register_buffer("index", th.as_tensor(self.columns, dtype=th.long))

    def forward(self, observations: th.Tensor) -> th.Tensor:
        return observations.flatten(1).index_select(1, self.index)

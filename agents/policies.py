"""Trained stable-baselines3 models as policies for mmgym's evaluation (obs -> normalised actions).

:func:`load_sb3_policy` loads a model zip (the algorithm detected from the zip, ``vecnormalize.pkl``
beside it applied) and checks its spaces against the env; :func:`sb3_policy_fn` wraps an in-memory
model (train.py's periodic evaluation). Both return callables that
:func:`mmgym.evaluation.run_evaluation` runs like any other policy.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from mmgym.config import ConfigError, EnvConfig, first_difference
from mmgym.evaluation import ObsPolicy
from mmgym.make import make_market

__all__ = ["load_sb3_policy", "sb3_policy_fn"]

_SB3_ALGOS = ("PPO", "SAC", "TD3", "A2C", "DDPG")
_CONTRIB_ALGOS = ("TQC", "TRPO", "ARS", "CrossQ")


def _algo_candidates(zip_path: Path) -> list[str]:
    """Algorithm names to try, most likely first, from the policy class module in the zip's data."""
    import zipfile

    order = list(_SB3_ALGOS)
    try:
        with zipfile.ZipFile(zip_path) as zf:
            data = json.loads(zf.read("data").decode())
        module = str(data.get("policy_class", {}).get("__module__", ""))
        for algo in _SB3_ALGOS + _CONTRIB_ALGOS:
            if f".{algo.lower()}." in module:
                order = [algo] + [a for a in order if a != algo]
                break
    except (KeyError, ValueError, zipfile.BadZipFile, OSError):
        pass
    return order + [a for a in _CONTRIB_ALGOS if a not in order]


def _warn_if_trained_elsewhere(path: Path, env_config: EnvConfig) -> None:
    """Warn when the training run's ``config.yaml`` (train.py's run directory) used another env.

    Evaluating on another market is a legitimate robustness test, so this only warns; a different
    ``action`` section changes what the model's actions mean, which the message says.
    """
    import warnings

    import yaml

    for parent in list(path.parents)[:3]:
        saved = parent / "config.yaml"
        if saved.is_file():
            try:
                trained = (yaml.safe_load(saved.read_text()) or {}).get("env")
            except yaml.YAMLError:
                return
            if not isinstance(trained, dict):
                return
            diff = first_difference(trained, env_config.model_dump(mode="json"), "env")
            if diff is not None:
                key, was, now = diff
                meaning = (" (the action mapping differs: the model's actions mean other quotes here)"
                           if key.startswith("env.action") else "")
                warnings.warn(f"{path}: trained with {key}={was!r} ({saved}), evaluated with "
                              f"{now!r}{meaning}", stacklevel=3)
            return


def load_sb3_policy(path: str | Path, env_config: EnvConfig | None = None) -> ObsPolicy:
    """Load a stable-baselines3 model zip as a deterministic callable obs -> normalised actions.

    The algorithm is detected from the policy class stored in the zip (``PPO``/``A2C`` share one,
    both load) and otherwise found by trying the known algorithms (sb3-contrib's too when installed).
    If ``vecnormalize.pkl`` sits beside the zip, its observation normalisation is applied.
    Imports stable-baselines3 (and torch) when called.

    Raises:
        ConfigError: missing file, unloadable model, or spaces that do not match ``env_config``.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: model file not found")
    try:
        import stable_baselines3 as sb3
    except ImportError as exc:  # pragma: no cover - sb3 is a dependency of the agents extra
        raise ConfigError(f"{path}: loading a trained agent needs stable-baselines3 ({exc})") from None
    errors = []
    model = None
    for algo in _algo_candidates(path):
        cls = getattr(sb3, algo, None)
        if cls is None:
            try:
                import sb3_contrib  # type: ignore[import-not-found]

                cls = getattr(sb3_contrib, algo, None)
            except ImportError:
                cls = None
        if cls is None:
            continue
        try:
            model = cls.load(str(path), device="cpu")
            break
        except Exception as exc:  # noqa: BLE001 - try the next algorithm
            errors.append(f"{algo}: {type(exc).__name__}")
    if model is None:
        raise ConfigError(f"{path}: not a loadable stable-baselines3 model (tried {', '.join(errors)})")
    normalizer = None
    vn_path = path.parent / "vecnormalize.pkl"
    if vn_path.is_file():
        import pickle

        with open(vn_path, "rb") as fh:
            normalizer = pickle.load(fh)
        normalizer.training = False
    if env_config is not None:
        market = make_market(env_config, 1, raw_depths=False)
        want_obs, want_act = market.single_observation_space.shape, market.single_action_space.shape
        if model.observation_space.shape != want_obs or model.action_space.shape != want_act:
            raise ConfigError(
                f"{path}: model spaces obs {model.observation_space.shape} / action "
                f"{model.action_space.shape} do not match the env's {want_obs} / {want_act}")
        _warn_if_trained_elsewhere(path, env_config)

    return sb3_policy_fn(model, normalizer)


def sb3_policy_fn(model: Any, vecnormalize: Any = None) -> ObsPolicy:
    """A stable-baselines3 model as a deterministic obs -> normalised actions callable.

    ``vecnormalize`` (a VecNormalize, or None) normalises the observations as in training. The
    callable carries ``.model`` and ``.vecnormalize``. Used by evaluate.py and train.py's periodic
    evaluation; imports nothing itself.
    """

    def act(obs: np.ndarray) -> np.ndarray:
        x = np.asarray(obs, dtype=np.float32)
        if vecnormalize is not None:
            x = vecnormalize.normalize_obs(x).astype(np.float32)
        action, _ = model.predict(x, deterministic=True)
        return np.asarray(action, dtype=np.float64)

    act.model = model  # type: ignore[attr-defined]
    act.vecnormalize = vecnormalize  # type: ignore[attr-defined]
    return act


# --------------------------------------------------------------------------------- plots ---

"""The algorithm registry and the translation of a YAML ``agent`` section into SB3 arguments.

Adding an algorithm is one line in :data:`ALGOS` (``name: "module:ClassName"``); classes are
imported lazily, so sb3-contrib entries cost nothing unless used.

The YAML follows rl-baselines3-zoo (``hyperparams/ppo.yml``): ``agent.kwargs`` are the algorithm's
keyword arguments, passed through unchanged except for these conveniences, all spelled as plain
YAML (never an ``eval`` string):

* ``policy_kwargs.activation_fn: tanh`` (a name from :data:`ACTIVATIONS`) and
  ``policy_kwargs.optimizer_class: adam`` (a name from :data:`OPTIMIZERS`);
* ``learning_rate: lin_3e-4`` (and ``clip_range: lin_0.2``): a schedule decaying linearly to 0;
* ``train_freq: [1, step]``: YAML lists become the tuples SB3 expects.

Every check raises :class:`~mmgym.config.ConfigError` with one line naming the file, the key
path and the bad value, like the schema's own errors.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

from mmgym.config import AgentConfig, ConfigError

__all__ = ["ALGOS", "ACTIVATIONS", "OPTIMIZERS", "get_algo", "is_off_policy", "build_algo_kwargs",
           "RESERVED_KWARGS"]

#: Algorithm name (``agent.algo``) -> ``"module:Class"``. One line per algorithm.
ALGOS: dict[str, str] = {
    "ppo": "stable_baselines3:PPO",
    "sac": "stable_baselines3:SAC",
    "td3": "stable_baselines3:TD3",
    "a2c": "stable_baselines3:A2C",
    "ddpg": "stable_baselines3:DDPG",
    "tqc": "sb3_contrib:TQC",
    "trpo": "sb3_contrib:TRPO",
    "crossq": "sb3_contrib:CrossQ",
    "recurrent_ppo": "sb3_contrib:RecurrentPPO",
}

#: ``policy_kwargs.activation_fn`` names -> ``torch.nn`` class names.
ACTIVATIONS: dict[str, str] = {
    "tanh": "Tanh", "relu": "ReLU", "elu": "ELU", "leaky_relu": "LeakyReLU", "gelu": "GELU",
    "silu": "SiLU", "selu": "SELU", "sigmoid": "Sigmoid", "softplus": "Softplus",
}

#: ``policy_kwargs.optimizer_class`` names -> ``torch.optim`` class names.
OPTIMIZERS: dict[str, str] = {"adam": "Adam", "adamw": "AdamW", "rmsprop": "RMSprop", "sgd": "SGD"}

#: Arguments train.py sets itself (with the config key to use instead).
RESERVED_KWARGS: dict[str, str] = {
    "policy": "agent.policy", "env": "the env section", "seed": "train.seed",
    "tensorboard_log": "train.run_dir", "_init_setup_model": "nothing",
}


def get_algo(name: str, source: str = "<config>") -> type:
    """The algorithm class registered as ``name`` (imported on first use)."""
    target = ALGOS.get(name.lower())
    if target is None:
        raise ConfigError(f"{source}: agent.algo: unknown algorithm {name!r} (valid: {', '.join(sorted(ALGOS))})")
    module, _, cls = target.partition(":")
    try:
        return getattr(importlib.import_module(module), cls)
    except ImportError:
        raise ConfigError(f"{source}: agent.algo: {name!r} needs the {module.replace('_', '-')} package "
                          f"(pip install {module.replace('_', '-')})") from None


def is_off_policy(algo_cls: type) -> bool:
    """True for replay-buffer algorithms (SAC, TD3, ...): their checkpoints include the buffer."""
    from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm

    return issubclass(algo_cls, OffPolicyAlgorithm)


def _params(fn: Any) -> dict[str, inspect.Parameter]:
    return {n: p for n, p in inspect.signature(fn).parameters.items()
            if n != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}


def _has_var_kw(fn: Any) -> bool:
    return any(p.kind == p.VAR_KEYWORD for p in inspect.signature(fn).parameters.values())


def _check_type(value: Any, param: inspect.Parameter, where: str) -> Any:
    """Validate ``value`` against the SB3 annotation of ``param`` where pydantic understands it."""
    ann = param.annotation
    if ann is inspect.Parameter.empty or isinstance(ann, str):
        return value
    try:
        from pydantic import TypeAdapter

        adapter = TypeAdapter(ann)
    except Exception:  # noqa: BLE001 - exotic annotation (classes, forward refs): SB3 checks it
        return value
    try:
        adapter.validate_python(value, strict=True)
    except Exception as exc:  # noqa: BLE001 - pydantic ValidationError
        errors = exc.errors() if hasattr(exc, "errors") else [{"msg": str(exc)}]
        msg = errors[0]["msg"] if errors else str(exc)
        raise ConfigError(f"{where}: {msg} (got {value!r})") from None
    return value


def _schedule(text: str, where: str):
    """``lin_<x>``: linear decay from x to 0 over training (rl-baselines3-zoo's spelling)."""
    try:
        start = float(text[4:])
    except ValueError:
        raise ConfigError(f"{where}: expected a number or lin_<number> (got {text!r})") from None

    def schedule(progress_remaining: float) -> float:
        # SB3 rounds training up to whole rollouts, so progress_remaining goes slightly below 0
        # at the end: clamp (a negative learning rate would ascend the loss)
        return max(0.0, progress_remaining) * start

    schedule.__qualname__ = f"linear_schedule({start})"
    return schedule


def _resolve_policy_kwargs(value: Any, policy_cls: type, source: str) -> dict[str, Any]:
    import torch

    where = f"{source}: agent.kwargs.policy_kwargs"
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: expected a mapping, not {type(value).__name__} (got {value!r})")
    out = dict(value)
    valid = _params(policy_cls.__init__)
    if not _has_var_kw(policy_cls.__init__):
        for key in out:
            if key not in valid or key in ("observation_space", "action_space", "lr_schedule"):
                names = ", ".join(sorted(k for k in valid if k not in ("observation_space", "action_space", "lr_schedule")))
                raise ConfigError(f"{where}.{key}: unknown {policy_cls.__name__} argument (valid: {names})")
    if "activation_fn" in out:
        name = out["activation_fn"]
        if not isinstance(name, str) or name.lower() not in ACTIVATIONS:
            raise ConfigError(f"{where}.activation_fn: unknown activation (valid: {', '.join(ACTIVATIONS)}) (got {name!r})")
        out["activation_fn"] = getattr(torch.nn, ACTIVATIONS[name.lower()])
    if "optimizer_class" in out:
        name = out["optimizer_class"]
        if not isinstance(name, str) or name.lower() not in OPTIMIZERS:
            raise ConfigError(f"{where}.optimizer_class: unknown optimizer (valid: {', '.join(OPTIMIZERS)}) (got {name!r})")
        out["optimizer_class"] = getattr(torch.optim, OPTIMIZERS[name.lower()])
    if "net_arch" in out:
        arch = out["net_arch"]
        ok = (isinstance(arch, list) and all(isinstance(n, int) and n > 0 for n in arch)) or (
            isinstance(arch, dict) and all(isinstance(v, list) and all(isinstance(n, int) and n > 0 for n in v)
                                           for v in arch.values()))
        if not ok:
            raise ConfigError(f"{where}.net_arch: expected a list of layer sizes or a mapping of such lists "
                              f"(e.g. {{pi: [64, 64], vf: [64, 64]}}) (got {arch!r})")
    for key in ("log_std_init",):
        if key in out and (isinstance(out[key], bool) or not isinstance(out[key], (int, float))):
            raise ConfigError(f"{where}.{key}: expected a number (got {out[key]!r})")
    return out


def build_algo_kwargs(agent: AgentConfig, source: str = "<config>") -> tuple[type, dict[str, Any]]:
    """Resolve ``agent`` into (algorithm class, keyword arguments for its constructor).

    Raises:
        ConfigError: unknown algorithm, policy or argument name; an argument of the wrong type.
    """
    algo_cls = get_algo(agent.algo, source)
    aliases = getattr(algo_cls, "policy_aliases", {})
    if agent.policy not in aliases:
        raise ConfigError(f"{source}: agent.policy: unknown {algo_cls.__name__} policy "
                          f"(valid: {', '.join(aliases)}) (got {agent.policy!r})")
    params = _params(algo_cls.__init__)
    kwargs: dict[str, Any] = {}
    for key, value in agent.kwargs.items():
        where = f"{source}: agent.kwargs.{key}"
        if key in RESERVED_KWARGS:
            raise ConfigError(f"{where}: set by train.py, use {RESERVED_KWARGS[key]} instead (got {value!r})")
        if key not in params:
            valid = ", ".join(sorted(k for k in params if k not in RESERVED_KWARGS))
            raise ConfigError(f"{where}: unknown {algo_cls.__name__} argument (valid: {valid})")
        if key == "policy_kwargs":
            kwargs[key] = _resolve_policy_kwargs(value, aliases[agent.policy], source)
            continue
        if isinstance(value, str) and value.startswith("lin_"):
            value = _schedule(value, where)
        elif isinstance(value, list) and key == "train_freq":
            value = tuple(value)
        kwargs[key] = _check_type(value, params[key], where)
    return algo_cls, kwargs

"""The YAML schema: typed, validated, unknown keys rejected.

One YAML file is one runnable experiment::

    env:                 # the environment (this module's EnvConfig)
      id: mmgym/MarketMaking-v0
      market: {sigma: 2.0, A: 140.0, k: 1.5, ...}
      reward: {inventory_penalty: 0.2, terminal_penalty: 1.0e-4}
      action: {mode: as_hybrid}
    baselines: {gamma: 0.1}
    eval: {episodes: 1000, seed: 0}
    agent: {...}         # the learning agent (train.py)
    train: {...}

Every field below carries a docstring; ``python -c "import mmgym.config as c; c.describe()"`` prints
them. Errors are :class:`ConfigError` with one line naming the file, the key path and the bad value.

Overrides use ``key.path=value`` (``--set`` on the command line). The environment's sections may be
addressed without the ``env.`` prefix (``market.sigma=3`` is ``env.market.sigma=3``), which is what
the evaluation tooling uses.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    Field,
    SerializeAsAny,
    ValidationError,
    field_validator,
    model_validator,
)

from .schema import (
    DEFAULT_ENV_ID,
    ActionConfig,
    EnvConfig,
    ImpactConfig,
    MarketConfig,
    ObservationConfig,
    RewardConfig,
    Section,
)

__all__ = [
    "ConfigError",
    "MarketConfig",
    "ImpactConfig",
    "RewardConfig",
    "ActionConfig",
    "ObservationConfig",
    "EnvConfig",
    "BaselinesConfig",
    "TuningConfig",
    "TUNING_SEED",
    "EvalConfig",
    "AgentConfig",
    "TrainConfig",
    "ExperimentConfig",
    "load_yaml",
    "load_config",
    "load_env_config",
    "apply_overrides",
    "parse_override",
]


class ConfigError(ValueError):
    """A user mistake in a config file or override: one line, names file, key path and value."""


# ------------------------------------------------------------------------------ experiment ---
#: First seed of the tuned baselines' simulation set (``baselines.tuning.seed``): far above any
#: evaluation seed (``eval.seed + e``) in practice; training streams are a family of their own
#: (``mmgym.envs.market.TRAINING_STREAMS``).
TUNING_SEED = 2**40


class TuningConfig(Section):
    """The search of the tuned baselines ``as_tuned``, ``glft_tuned`` and ``begv_tuned`` (mmgym/baselines/tuned.py).

    Each candidate is scored by the env's expected episode objective: exactly, by DP policy
    evaluation, where the DP is exact for the env; otherwise by simulation on common random numbers,
    ``episodes`` episodes with seeds ``seed, ..., seed + episodes - 1`` (the tuning set), which an
    evaluation may not overlap.
    """

    method: Literal["auto", "exact", "simulation"] = "auto"
    """'auto': exact DP policy evaluation where it exists, else simulation; 'exact' refuses a config without it; 'simulation' always simulates."""
    gamma_min: float = Field(1.0e-3, gt=0.0)
    """Smallest risk aversion gamma searched (gamma is searched on a log scale)."""
    gamma_max: float = Field(100.0, gt=0.0)
    """Largest risk aversion gamma searched."""
    c_min: float | None = None
    """'as_tuned': smallest extra half-spread c added to both depths (price units, may be negative); None: -1/k."""
    c_max: float | None = None
    """'as_tuned': largest extra half-spread c (price units); None: 2/k."""
    gamma_points: int = Field(11, ge=3)
    """Points of the coarse log grid over [gamma_min, gamma_max] the refinement starts from."""
    c_points: int = Field(7, ge=3)
    """Points of the coarse grid over [c_min, c_max] ('as_tuned')."""
    multiplier_points: int = Field(5, ge=3)
    """'begv_tuned' (portfolio): points of the coarse log grid of each penalty multiplier over [1/action.risk_multiplier_max, action.risk_multiplier_max]."""
    episodes: int = Field(1000, ge=2)
    """Simulation: episodes per candidate (the same scenarios for every candidate)."""
    seed: int = Field(TUNING_SEED, ge=0)
    """Simulation: first seed of the tuning set (episode e uses seed + e); evaluations may not overlap it."""
    disk_cache: bool = True
    """Simulation: keep the result on disk (``$MMGYM_CACHE_DIR``, default ``~/.cache/mmgym``/tuning), keyed by the family, env config, this section and a hash of mmgym's source, so train.py's reference line and evaluate.py tune a book once; false: always search."""

    @model_validator(mode="after")
    def _check(self) -> TuningConfig:
        if self.gamma_max <= self.gamma_min:
            raise ValueError(f"gamma_max ({self.gamma_max:g}) <= gamma_min ({self.gamma_min:g})")
        if self.c_min is not None and self.c_max is not None and self.c_max <= self.c_min:
            raise ValueError(f"c_max ({self.c_max:g}) <= c_min ({self.c_min:g})")
        return self

    def seed_range(self) -> range:
        """The tuning set's seeds."""
        return range(self.seed, self.seed + self.episodes)


class BaselinesConfig(Section):
    """Parameters of the analytic baselines (evaluate.py, train.py's reference lines)."""

    gamma: float = Field(0.1, gt=0.0)
    """Risk aversion of 'as', 'symmetric', 'glft' and 'boundary'; also the CARA certainty-equivalent's."""
    fixed_half_spread: float | None = Field(None, gt=0.0)
    """Half-spread of 'fixed'; None searches the best constant on the objective."""
    boundary_band: int | None = Field(None, ge=0)
    """'boundary': flatten with market orders beyond this |q| (None: half of max_inventory)."""
    tuning: TuningConfig = Field(default_factory=TuningConfig)
    """The search of 'as_tuned' and 'glft_tuned' (bounds, simulation episodes and seeds)."""


class EvalConfig(Section):
    """Evaluation set-up."""

    episodes: int = Field(1000, ge=1)
    """Episodes per agent."""
    seed: int = Field(0, ge=0)
    """Seed of the evaluation scenarios (common random numbers across agents)."""
    num_envs: int = Field(1000, ge=1)
    """Markets stepped at once during evaluation."""


class AgentConfig(Section):
    """The learning agent, rl-baselines3-zoo style: algorithm plus SB3 keyword arguments."""

    algo: str = "ppo"
    """Algorithm name in the registry (ppo, sac, ...)."""
    policy: str = "MlpPolicy"
    """SB3 policy class name."""
    kwargs: dict[str, Any] = Field(default_factory=dict)
    """Keyword arguments passed unchanged to the SB3 algorithm (policy_kwargs is a nested mapping)."""
    normalize: bool | dict[str, Any] = False
    """Wrap in VecNormalize (True or its keyword arguments); statistics are saved with the model."""
    reward_scale: float = Field(1.0, gt=0.0)
    """Multiply the rewards the algorithm learns from by this (logged episode returns stay unscaled)."""
    log_std_schedule: tuple[float, float] | list[tuple[float, float]] | None = None
    """The Gaussian policy's log standard deviation (every action dimension) is set, not learned,
    before each rollout, on a line over the training progress p = steps / ``train.total_timesteps``:
    ``[start, end]`` falls linearly from ``start`` (p = 0) to ``end`` (p = 1); a list of
    ``[p, value]`` points (p increasing from 0 to 1) is piecewise linear through them (a resumed run
    continues the line). Why: PPO optimises the *noisy* policy, and the noise biases the mean it
    learns (for a fill rule e^{-k delta}, the best mean depth under Gaussian noise of std s is
    1/k + k s^2 instead of 1/k), while a learned log std shrinks only as fast as the policy gradient
    lets it; small noise throughout learns slowly. PPO/A2C with a state-independent std
    (``log_std`` parameter, no gSDE); refused elsewhere. None: learned (SB3)."""

    @field_validator("log_std_schedule")
    @classmethod
    def _schedule_points(cls, v):
        if v is None or isinstance(v, tuple):
            return v
        ps = [p for p, _ in v]
        if len(v) < 2 or ps[0] != 0.0 or ps[-1] != 1.0 or any(b <= a for a, b in zip(ps, ps[1:])):
            raise ValueError(f"a list of [progress, log std] points needs progress increasing from 0 to 1 "
                             f"(got progress {ps})")
        return v

    def log_std_points(self) -> list[tuple[float, float]] | None:
        """``log_std_schedule`` as [(progress, log std), ...] from progress 0 to 1 (None: learned)."""
        v = self.log_std_schedule
        if v is None:
            return None
        return [(0.0, v[0]), (1.0, v[1])] if isinstance(v, tuple) else [tuple(p) for p in v]

    features: list[str] | None = None
    """Names of the observation columns the policy reads, in that order (None: all). The env's
    observation is unchanged; the selection is the SB3 policy's first layer
    (:class:`mmgym.agents.features.ObservationColumns`, saved with the model). MlpPolicy only."""

    control_variate: bool = False
    """Learn from ``reward - q (dS - E_t dS)``: the step's revaluation noise (``info``'s
    ``revaluation_noise``) has conditional mean zero given the state, the action and the fills, so
    every policy's expected return is unchanged while the return's variance drops (an event jump
    of std 4 on 2 lots is a reward of std 8 on one step). Evaluation and logged returns use the
    env's reward. Intensity-family scenarios with a linear reward (no CARA objective, no
    dampening); the book and the replay do not decompose their mid."""


def _known_baseline(name: str) -> str:
    """A name of :data:`mmgym.baselines.BASELINES` (the one list of baseline names)."""
    from .baselines import BASELINES

    if name not in BASELINES:
        raise ValueError(f"unknown baseline (valid: {', '.join(BASELINES)})")
    return name


class TrainConfig(Section):
    """Training loop."""

    total_timesteps: int = Field(100_000, ge=1)
    """Environment steps to train for (summed over envs)."""
    n_envs: int = Field(64, ge=1)
    """Markets stepped at once in the training VecEnv."""
    seed: int = Field(0, ge=0)
    """Seed of the algorithm and the training envs (env i: stream seed * 2**32 + i of the training family)."""
    eval_freq: int = Field(50_000, ge=0)
    """Evaluate every this many environment steps (0 disables periodic evaluation)."""
    eval_episodes: int = Field(500, ge=1)
    """Episodes per periodic evaluation."""
    eval_baselines: list[Annotated[str, AfterValidator(_known_baseline)]] = Field(
        default_factory=lambda: ["as", "glft", "optimal"])
    """Baselines drawn as reference lines in TensorBoard."""
    checkpoint_freq: int = Field(100_000, ge=0)
    """Checkpoint every this many environment steps (0 disables)."""
    run_dir: str = "runs/default"
    """Run directory (model, checkpoints, TensorBoard files, resolved config)."""
    torch_threads: int = Field(1, ge=1)
    """torch.set_num_threads; 1 is fastest on small machines."""
    progress_bar: bool = True
    """Show a progress bar."""


def env_config_class(env_id: Any) -> type[EnvConfig]:
    """The config class of the scenario registered as ``env_id`` (EnvConfig if unregistered: its
    ``id`` check then reports the registered ids)."""
    from .scenarios import REGISTRY, get

    return get(env_id).config_class if isinstance(env_id, str) and env_id in REGISTRY else EnvConfig


def _env_class_of(data: Any) -> type[EnvConfig]:
    """The config class for an env mapping (by its ``id``; the default env when it names none)."""
    env_id = data.get("id", DEFAULT_ENV_ID) if isinstance(data, dict) else DEFAULT_ENV_ID
    return env_config_class(env_id)


def _all_env_sections() -> set[str]:
    """Section names of every registered scenario's env config."""
    from .scenarios import REGISTRY

    return {name for env_id in REGISTRY for name in env_config_class(env_id).model_fields}


class ExperimentConfig(Section):
    """One runnable experiment."""

    env: SerializeAsAny[EnvConfig] = Field(default_factory=EnvConfig)
    """The environment (its ``id`` picks the scenario and so the sections it has)."""

    @field_validator("env", mode="wrap")
    @classmethod
    def _scenario_config(cls, value: Any, handler: Any) -> EnvConfig:
        if isinstance(value, EnvConfig):
            klass = env_config_class(value.id)
            return value if isinstance(value, klass) else klass.model_validate(value.model_dump())
        if isinstance(value, dict):
            return _env_class_of(value).model_validate(value)
        return handler(value)

    baselines: BaselinesConfig = Field(default_factory=BaselinesConfig)
    """Analytic baselines."""
    eval: EvalConfig = Field(default_factory=EvalConfig)
    """Evaluation."""
    agent: AgentConfig = Field(default_factory=AgentConfig)
    """Learning agent."""
    train: TrainConfig = Field(default_factory=TrainConfig)
    """Training loop."""


# ------------------------------------------------------------------------------------ YAML ---
class _Loader(yaml.SafeLoader):
    """SafeLoader that reads ``3e-4`` as a float (YAML 1.1 needs ``3.0e-4``)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


def _no_duplicate_keys(loader: _Loader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (first on line {seen[key] + 1})", key_node.start_mark)
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node, deep=deep)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _no_duplicate_keys)


def shipped_configs() -> Path | None:
    """The example configs' folder: ``mmgym/configs`` in an installed wheel (package data), else
    ``configs/`` of the repository mmgym is installed from (a clone, an editable install)."""
    for folder in (Path(__file__).resolve().parent / "configs", Path(__file__).resolve().parents[1] / "configs"):
        if folder.is_dir() and any(folder.glob("*.yaml")):
            return folder
    return None


def resolve_config_path(path: str | Path) -> Path:
    """``path`` if it exists; else a bare name (``cjp`` or ``cjp.yaml``) of a shipped config, so
    ``evaluate.py cjp`` works from any directory. Raises ConfigError (one line) otherwise."""
    path = Path(path)
    if path.exists() or path.parent != Path("."):
        if path.is_dir():
            raise ConfigError(f"{path}: is a directory, not a YAML file")
        if not path.is_file():
            raise ConfigError(f"{path}: file not found")
        return path
    folder = shipped_configs()
    name = path.name if path.suffix in (".yaml", ".yml") else f"{path.name}.yaml"
    if folder is not None and (folder / name).is_file():
        return folder / name
    known = ", ".join(sorted(p.stem for p in folder.glob("*.yaml"))) if folder is not None else ""
    raise ConfigError(f"{path}: file not found" + (f" (nor a shipped config: {known})" if known else ""))


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping (a path, or a shipped config's name: :func:`resolve_config_path`); a
    missing file or bad YAML raises :class:`ConfigError`."""
    path = resolve_config_path(path)
    try:
        data = yaml.load(path.read_text(), Loader=_Loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise ConfigError(f"{path}{where}: invalid YAML: {getattr(exc, 'problem', exc)}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping, got {type(data).__name__}")
    return data


def parse_override(text: str) -> tuple[list[str], Any]:
    """Parse ``key.path=value``; the value is read as YAML (``0.5``, ``true``, ``[1, 2]``, ``3e-4``)."""
    if "=" not in text:
        raise ConfigError(f"--set {text!r}: expected key.path=value")
    key, _, raw = text.partition("=")
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ConfigError(f"--set {text!r}: empty key path")
    try:
        value = yaml.load(raw, Loader=_Loader) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    return key.split("."), value


def _model_fields(model: type[BaseModel]) -> dict[str, Any]:
    return dict(model.model_fields)


def _resolve_override_path(parts: list[str], root: type[BaseModel]) -> list[str]:
    """Prefix ``env.`` to paths that name an env section directly (``market.sigma``)."""
    if root is ExperimentConfig and parts[0] not in ExperimentConfig.model_fields:
        if parts[0] in _all_env_sections():
            return ["env", *parts]
    return parts


def _sub_model(annotation: Any, data: Any) -> Any:
    """The model class a field holds (the scenario's env config class for ``env``), or None."""
    sub = None
    for cand in getattr(annotation, "__args__", (annotation,)):
        if isinstance(cand, type) and issubclass(cand, BaseModel):
            sub = cand
    if sub is not None and issubclass(sub, EnvConfig):
        sub = _env_class_of(data)
    return sub


def _check_path(parts: list[str], root: type[BaseModel], text: str, data: Any = None) -> None:
    """Raise ConfigError listing valid keys if ``parts`` is not a path of the schema (``data``:
    the mapping being overridden, which says the env's id)."""
    model: Any = root
    node: Any = data if isinstance(data, dict) else {}
    if isinstance(model, type) and issubclass(model, EnvConfig):
        model = _env_class_of(node)
    for depth, part in enumerate(parts):
        if model is None or not (isinstance(model, type) and issubclass(model, BaseModel)):
            return  # free-form mapping below (agent.kwargs): anything goes
        fields = _model_fields(model)
        if part not in fields:
            where = ".".join(parts[:depth]) or "<top>"
            valid = ", ".join(sorted(fields))
            raise ConfigError(f"--set {text}: unknown key {part!r} under {where}; valid keys: {valid}")
        node = node.get(part) if isinstance(node, dict) else None
        model = _sub_model(fields[part].annotation, node)


def apply_overrides(
    data: dict[str, Any], overrides: list[str] | None, root: type[BaseModel] = None  # type: ignore[assignment]
) -> dict[str, Any]:
    """Return a copy of ``data`` with ``key.path=value`` overrides applied (validated paths)."""
    root = ExperimentConfig if root is None else root
    data = copy.deepcopy(data)
    for text in overrides or []:
        parts, value = parse_override(text)
        parts = _resolve_override_path(parts, root)
        if parts[:2] != ["env", "id"] and parts != ["id"]:
            _check_path(parts, root, text, data)
        node = data
        for part in parts[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            elif not isinstance(child, dict):
                raise ConfigError(f"--set {text}: {part!r} is not a mapping")
            node = child
        node[parts[-1]] = value
    return data


def _format_error(exc: ValidationError, source: str, data: dict[str, Any], root: type[BaseModel],
                  overrides: dict[str, str] | None = None) -> str:
    """One line: ``SOURCE: key.path: message (got value)``.

    ``SOURCE`` is the ``--set`` override that wrote the bad key when there is one, else the file.
    """
    err = exc.errors()[0]
    loc = [str(p) for p in err["loc"] if not str(p).startswith("function-after")]
    # pydantic puts union member names into loc ("float", "none"); keep only real keys
    path_parts: list[str] = []
    node: Any = data
    for p in loc:
        if isinstance(node, dict) and p in node:
            path_parts.append(p)
            node = node[p]
        elif isinstance(node, list) and p.isdigit() and int(p) < len(node):
            path_parts.append(p)
            node = node[int(p)]
        elif err["type"] == "extra_forbidden" and p == loc[-1]:
            path_parts.append(p)
            node = node.get(p) if isinstance(node, dict) else None
        else:
            break
    key = ".".join(path_parts) or "<top>"
    for path, text in (overrides or {}).items():
        if key == path or key.startswith(path + ".") or path.startswith(key + "."):
            source = f"--set {text}"
    if err["type"] == "extra_forbidden":
        model: Any = _env_class_of(data) if issubclass(root, EnvConfig) else root
        sub_data: Any = data
        for p in path_parts[:-1]:
            ann = _model_fields(model).get(p) if isinstance(model, type) else None
            if ann is None:
                break
            sub_data = sub_data.get(p) if isinstance(sub_data, dict) else None
            model = _sub_model(ann.annotation, sub_data) or model
        valid = ", ".join(sorted(_model_fields(model))) if isinstance(model, type) else ""
        return f"{source}: {key}: unknown key (valid keys: {valid})"
    msg = err["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    value = node if path_parts else err.get("input")
    if isinstance(value, dict):  # a cross-field check of a whole section: its message has the values
        return f"{source}: {key}: {msg}"
    return f"{source}: {key}: {msg} (got {value!r})"


def _validate(model: type[BaseModel], data: dict[str, Any], source: str,
              overrides: dict[str, str] | None = None) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_error(exc, source, data, model, overrides)) from None


def _override_paths(overrides: list[str] | None, root: type[BaseModel]) -> dict[str, str]:
    """Resolved key path -> the ``key.path=value`` text that set it."""
    out = {}
    for text in overrides or []:
        parts, _ = parse_override(text)
        out[".".join(_resolve_override_path(parts, root))] = text
    return out


def load_config(
    source: str | Path | dict[str, Any] | ExperimentConfig | None = None,
    overrides: list[str] | None = None,
    name: str | None = None,
) -> ExperimentConfig:
    """Build a validated :class:`ExperimentConfig` from a YAML path, a dict or a config.

    Args:
        source: YAML file path, a mapping with the experiment's sections, an existing config, or
            None for the defaults.
        overrides: ``key.path=value`` strings applied before validation.
        name: what errors call the source (default: the file name, ``<dict>``, ...).

    Raises:
        ConfigError: one line naming the file, the key path and the bad value.
    """
    if isinstance(source, ExperimentConfig):
        data, name = source.model_dump(), "<config>"
    elif source is None:
        data, name = {}, "<defaults>"
    elif isinstance(source, dict):
        data, name = copy.deepcopy(source), name or "<dict>"
    else:
        data, name = load_yaml(source), name or str(source)
    data = apply_overrides(data, overrides)
    return _validate(ExperimentConfig, data, name, _override_paths(overrides, ExperimentConfig))


def load_env_config(
    source: str | Path | dict[str, Any] | EnvConfig | ExperimentConfig | None = None,
    overrides: list[str] | None = None,
    env_id: str | None = None,
) -> EnvConfig:
    """Build the env config (the scenario's config class) from a YAML path or mapping.

    The mapping may be a whole experiment (with an ``env`` section) or just the env's sections
    (``market``, ``reward``, ...).

    Args:
        source: YAML path, mapping, config, or None for the defaults.
        overrides: ``key.path=value`` strings applied before validation.
        env_id: the env the config is for (``gym.make``'s id): a config that names no env is taken
            for it, one that names another is an error.

    Raises:
        ConfigError: one line naming the file, the key path and the bad value.
    """
    if isinstance(source, ExperimentConfig):
        source = source.env
    if isinstance(source, EnvConfig):
        if overrides or not isinstance(source, env_config_class(source.id)):
            return load_env_config(source.model_dump(), overrides, env_id)
        cfg, name = source, "<config>"
    else:
        if source is None:
            data, name = {}, "<defaults>"
        elif isinstance(source, dict):
            data, name = copy.deepcopy(source), "<dict>"
        else:
            data, name = load_yaml(source), str(source)
        experiment_keys = set(ExperimentConfig.model_fields) - _all_env_sections()
        if set(data) & experiment_keys or "env" in data:
            if env_id is not None and "id" not in (data.get("env") or {}):
                data.setdefault("env", {})["id"] = env_id
            cfg = load_config(data, overrides, name=name).env
        else:
            if env_id is not None:
                data.setdefault("id", env_id)
            data = apply_overrides(data, overrides, EnvConfig)
            cfg = _validate(_env_class_of(data), data, name, _override_paths(overrides, EnvConfig))
    if env_id is not None and cfg.id != env_id:
        raise ConfigError(f"{name}: env.id: the config is for {cfg.id}, not {env_id} "
                          f"(got {cfg.id!r})")
    return cfg


def merge_env_kwargs(config: EnvConfig, kwargs: dict[str, Any]) -> EnvConfig:
    """Merge ``gym.make`` keyword overrides (section mappings or flat keys) into a config.

    A flat key is looked up in the sections in the order market, reward, action, impact,
    observation, then the scenario's own (``gym.make("mmgym/LOBMarketMaking-v0", warmup=5)`` sets
    ``book.warmup``).
    """
    klass = env_config_class(config.id)
    fields = klass.model_fields
    shared = ["market", "reward", "action", "impact", "observation"]
    sections = shared + [n for n in fields if n not in shared and _sub_model(fields[n].annotation, None)]
    data = config.model_dump()
    for key, value in kwargs.items():
        if key in fields and isinstance(value, dict):
            data[key].update(value)
        elif key in fields:
            data[key] = value
        else:
            for section in sections:
                if key in fields[section].annotation.model_fields:  # type: ignore[union-attr]
                    data[section][key] = value
                    break
            else:
                raise ConfigError(f"<gym.make>: {key}: unknown keyword (valid: {', '.join(fields)} or a "
                                  f"{'/'.join(sections)} key)")
    return _validate(klass, data, "<gym.make>")


def describe(model: type[BaseModel] = ExperimentConfig, prefix: str = "") -> None:
    """Print every key path with its default and docstring (env sections of every scenario)."""
    from .scenarios import REGISTRY

    for name, field in model.model_fields.items():
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, EnvConfig) and ann is EnvConfig:
            describe(EnvConfig, f"{prefix}{name}.")
            for env_id in REGISTRY:
                klass = env_config_class(env_id)
                for section, sub in klass.model_fields.items():
                    if section not in EnvConfig.model_fields:
                        print(f"# {prefix}{name}.{section}: {env_id} only")
                        describe(sub.annotation, f"{prefix}{name}.{section}.")
        elif isinstance(ann, type) and issubclass(ann, BaseModel):
            describe(ann, f"{prefix}{name}.")
        else:
            default = field.get_default(call_default_factory=True)
            print(f"{prefix}{name} = {default!r}: {field.description or ''}")


def first_difference(a: Any, b: Any, path: str = "", skip: tuple[str, ...] = ()) -> tuple[str, Any, Any] | None:
    """The first key path where two nested mappings differ, with both values (None if equal).

    ``skip`` holds key paths to ignore; an entry ending in ``.`` ignores everything below it.
    """
    if isinstance(a, dict) and isinstance(b, dict):
        for key in list(a) + [k for k in b if k not in a]:
            sub = f"{path}.{key}" if path else str(key)
            if any(sub == c or (c.endswith(".") and sub.startswith(c)) for c in skip):
                continue
            diff = first_difference(a.get(key), b.get(key), sub, skip)
            if diff is not None:
                return diff
        return None
    return None if a == b else (path, a, b)


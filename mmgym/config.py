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
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from .book.config import BookConfig
from .schema import Section

__all__ = [
    "ConfigError",
    "MarketConfig",
    "ImpactConfig",
    "RewardConfig",
    "ActionConfig",
    "ObservationConfig",
    "EnvConfig",
    "BaselinesConfig",
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


# --------------------------------------------------------------------------------------- env ---
class MarketConfig(Section):
    """The intensity market of Avellaneda & Stoikov (2008); defaults are the paper's set-up."""

    s0: float = 100.0
    """Initial mid price (price units)."""
    sigma: float = Field(2.0, ge=0.0)
    """Volatility of the arithmetic Brownian mid, price units per sqrt(time unit)."""
    A: float = Field(140.0, gt=0.0)
    """Fill intensity at zero depth, lambda(delta) = A exp(-k delta), fills per time unit."""
    k: float = Field(1.5, gt=0.0)
    """Decay of the fill intensity with depth, per price unit."""
    A_bid: float | None = Field(None, gt=0.0)
    """Bid-side A (defaults to ``A``)."""
    A_ask: float | None = Field(None, gt=0.0)
    """Ask-side A (defaults to ``A``)."""
    k_bid: float | None = Field(None, gt=0.0)
    """Bid-side k (defaults to ``k``)."""
    k_ask: float | None = Field(None, gt=0.0)
    """Ask-side k (defaults to ``k``)."""
    dt: float = Field(0.005, gt=0.0)
    """Length of one step (time units)."""
    horizon: float = Field(1.0, gt=0.0)
    """Episode length T (time units); the episode has round(horizon/dt) steps."""
    fill_rule: Literal["linear", "poisson"] = "linear"
    """Per-step fill probability: 'linear' p = min(1, A e^{-k d} dt) (AS 2008), 'poisson' p = 1 - exp(-A e^{-k d} dt)."""
    max_inventory: int = Field(25, ge=1)
    """Inventory bound Q: |q| <= Q; a side whose fill would breach it does not quote."""
    tick_size: float = Field(0.0, ge=0.0)
    """Price tick; quotes are rounded away from the mid to the tick grid. 0 means continuous prices."""
    mid_noise: Literal["gaussian", "binomial"] = "gaussian"
    """Mid increment sigma sqrt(dt) Z with Z ~ N(0,1) ('gaussian') or Z = +-1 w.p. 1/2 ('binomial', AS 2008)."""
    q0: int = 0
    """Initial inventory (lots)."""

    @model_validator(mode="after")
    def _check(self) -> MarketConfig:
        steps = self.horizon / self.dt
        if abs(steps - round(steps)) > 1e-6 * max(1.0, steps) or round(steps) < 1:
            raise ValueError(f"horizon/dt must be a positive integer number of steps, got {steps:g}")
        if abs(self.q0) > self.max_inventory:
            raise ValueError(f"|q0| = {abs(self.q0)} exceeds max_inventory = {self.max_inventory}")
        return self

    @property
    def n_steps(self) -> int:
        """Steps per episode, round(horizon / dt)."""
        return int(round(self.horizon / self.dt))

    def side_params(self) -> tuple[float, float, float, float]:
        """(A_bid, A_ask, k_bid, k_ask) with per-side overrides applied."""
        return (
            self.A if self.A_bid is None else self.A_bid,
            self.A if self.A_ask is None else self.A_ask,
            self.k if self.k_bid is None else self.k_bid,
            self.k if self.k_ask is None else self.k_ask,
        )


class ImpactConfig(Section):
    """Market orders (the hedge action) in the linear Almgren & Chriss (2000) form."""

    half_spread: float = Field(0.0, ge=0.0)
    """Half-spread paid per lot by a market order, on top of impact (price units)."""
    eta: float = Field(0.0, ge=0.0)
    """Temporary impact: a market order of v lots executes at mid +- (half_spread + eta v)."""
    nu: float = Field(0.0, ge=0.0)
    """Permanent impact: a market order of v lots moves the mid by nu v."""


class RewardConfig(Section):
    """Reward = change in marked-to-market wealth minus risk penalties (each term reported in info)."""

    inventory_penalty: float = Field(0.0, ge=0.0)
    """Running penalty phi: each step pays phi q^2 dt on post-fill inventory (CJP 2015, ch. 10)."""
    terminal_penalty: float = Field(0.0, ge=0.0)
    """Terminal penalty alpha: the last step pays alpha q_T^2 (CJP 2015, ch. 10)."""
    maker_fee: float = 0.0
    """Fee per lot filled passively (negative for a rebate)."""
    taker_fee: float = 0.0
    """Fee per lot traded with a market order."""
    objective: Literal["risk_neutral", "cara"] = "risk_neutral"
    """'risk_neutral': wealth increments; 'cara': the terminal reward is the CARA utility (1 - e^{-g W})/g of the episode's wealth change W."""
    cara_gamma: float = Field(0.1, gt=0.0)
    """Risk aversion g of the CARA terminal utility (objective: cara)."""
    dampening: float = Field(0.0, ge=0.0)
    """Asymmetric dampening eta of Spooner et al. (2018): each step also pays max(0, eta q dS)."""


class ActionConfig(Section):
    """How the agent's normalised action in [-1, 1] becomes quotes."""

    mode: Literal["as_hybrid", "offsets"] = "as_hybrid"
    """'as_hybrid': (risk aversion, skew) of the Avellaneda-Stoikov rule; 'offsets': raw depths (delta_b, delta_a)."""
    gamma_min: float = Field(0.01, gt=0.0)
    """as_hybrid: smallest risk aversion (action -1); gamma is log-scaled."""
    gamma_max: float = Field(2.0, gt=0.0)
    """as_hybrid: largest risk aversion (action +1)."""
    skew_max: float = Field(2.0, ge=0.0)
    """as_hybrid: the skew action shifts the reservation price by at most this (price units)."""
    offset_min: float = -1.0
    """offsets: depth at action -1 (price units; negative depths cross the mid)."""
    offset_max: float = 3.0
    """offsets: depth at action +1 (price units)."""
    hedge: bool = False
    """Add a last action dimension: a market order of round(a * hedge_max_lots) lots (positive buys)."""
    hedge_max_lots: int = Field(5, ge=1)
    """Largest market order per step (lots)."""

    @model_validator(mode="after")
    def _check(self) -> ActionConfig:
        if self.gamma_max < self.gamma_min:
            raise ValueError(f"gamma_max ({self.gamma_max}) < gamma_min ({self.gamma_min})")
        if self.offset_max <= self.offset_min:
            raise ValueError(f"offset_max ({self.offset_max}) <= offset_min ({self.offset_min})")
        return self


class ObservationConfig(Section):
    """Observation features."""

    vol_halflife: float = Field(20.0, gt=0.0)
    """Half-life (steps) of the exponentially weighted realised-volatility estimate."""


class EnvConfig(Section):
    """The environment: which env and the parameters of its market, reward and action."""

    id: str = "mmgym/MarketMaking-v0"
    """Registered environment id (``mmgym/MarketMaking-v0``, ``mmgym/LOBMarketMaking-v0``)."""

    @field_validator("id")
    @classmethod
    def _known_id(cls, value: str) -> str:
        from gymnasium.envs.registration import registry

        known = sorted(i for i in registry if i.startswith("mmgym/"))
        if known and value not in known:  # only mmgym's envs have a batched market behind them
            raise ValueError(f"unknown environment (registered: {', '.join(known)})")
        return value
    market: MarketConfig = Field(default_factory=MarketConfig)
    """The market model."""
    impact: ImpactConfig = Field(default_factory=ImpactConfig)
    """Market-order costs."""
    reward: RewardConfig = Field(default_factory=RewardConfig)
    """Reward terms."""
    action: ActionConfig = Field(default_factory=ActionConfig)
    """Action mapping."""
    observation: ObservationConfig = Field(default_factory=ObservationConfig)
    """Observation features."""
    book: BookConfig = Field(default_factory=BookConfig)
    """The limit order book (mmgym/LOBMarketMaking-v0 only)."""


# ------------------------------------------------------------------------------ experiment ---
class BaselinesConfig(Section):
    """Parameters of the analytic baselines (evaluate.py, train.py's reference lines)."""

    gamma: float = Field(0.1, gt=0.0)
    """Risk aversion of 'as', 'symmetric', 'glft' and 'boundary'; also the CARA certainty-equivalent's."""
    fixed_half_spread: float | None = Field(None, gt=0.0)
    """Half-spread of 'fixed'; None searches the best constant on the objective."""
    boundary_band: int | None = Field(None, ge=0)
    """'boundary': flatten with market orders beyond this |q| (None: half of max_inventory)."""


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


class TrainConfig(Section):
    """Training loop."""

    total_timesteps: int = Field(100_000, ge=1)
    """Environment steps to train for (summed over envs)."""
    n_envs: int = Field(64, ge=1)
    """Markets stepped at once in the training VecEnv."""
    seed: int = Field(0, ge=0)
    """Seed of the algorithm and the training envs."""
    eval_freq: int = Field(50_000, ge=0)
    """Evaluate every this many environment steps (0 disables periodic evaluation)."""
    eval_episodes: int = Field(500, ge=1)
    """Episodes per periodic evaluation."""
    eval_baselines: list[Literal["as", "symmetric", "fixed", "glft", "cjp", "optimal", "boundary"]] = Field(
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


class ExperimentConfig(Section):
    """One runnable experiment."""

    env: EnvConfig = Field(default_factory=EnvConfig)
    """The environment."""
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


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping; a missing file or bad YAML raises :class:`ConfigError`."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: file not found")
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
        if parts[0] in EnvConfig.model_fields:
            return ["env", *parts]
    return parts


def _check_path(parts: list[str], root: type[BaseModel], text: str) -> None:
    """Raise ConfigError listing valid keys if ``parts`` is not a path of the schema."""
    model: Any = root
    for depth, part in enumerate(parts):
        if model is None or not (isinstance(model, type) and issubclass(model, BaseModel)):
            return  # free-form mapping below (agent.kwargs): anything goes
        fields = _model_fields(model)
        if part not in fields:
            where = ".".join(parts[:depth]) or "<top>"
            valid = ", ".join(sorted(fields))
            raise ConfigError(f"--set {text}: unknown key {part!r} under {where}; valid keys: {valid}")
        annotation = fields[part].annotation
        sub = None
        for cand in getattr(annotation, "__args__", (annotation,)):
            if isinstance(cand, type) and issubclass(cand, BaseModel):
                sub = cand
        model = sub


def apply_overrides(
    data: dict[str, Any], overrides: list[str] | None, root: type[BaseModel] = None  # type: ignore[assignment]
) -> dict[str, Any]:
    """Return a copy of ``data`` with ``key.path=value`` overrides applied (validated paths)."""
    root = ExperimentConfig if root is None else root
    data = copy.deepcopy(data)
    for text in overrides or []:
        parts, value = parse_override(text)
        parts = _resolve_override_path(parts, root)
        _check_path(parts, root, text)
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
        model: Any = root
        for p in path_parts[:-1]:
            ann = _model_fields(model).get(p) if isinstance(model, type) else None
            if ann is None:
                break
            for cand in getattr(ann.annotation, "__args__", (ann.annotation,)):
                if isinstance(cand, type) and issubclass(cand, BaseModel):
                    model = cand
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
) -> ExperimentConfig:
    """Build a validated :class:`ExperimentConfig` from a YAML path, a dict or a config.

    Args:
        source: YAML file path, a mapping with the experiment's sections, an existing config, or
            None for the defaults.
        overrides: ``key.path=value`` strings applied before validation.

    Raises:
        ConfigError: one line naming the file, the key path and the bad value.
    """
    if isinstance(source, ExperimentConfig):
        data, name = source.model_dump(), "<config>"
    elif source is None:
        data, name = {}, "<defaults>"
    elif isinstance(source, dict):
        data, name = copy.deepcopy(source), "<dict>"
    else:
        data, name = load_yaml(source), str(source)
    data = apply_overrides(data, overrides)
    return _validate(ExperimentConfig, data, name, _override_paths(overrides, ExperimentConfig))


def load_env_config(
    source: str | Path | dict[str, Any] | EnvConfig | ExperimentConfig | None = None,
    overrides: list[str] | None = None,
) -> EnvConfig:
    """Build an :class:`EnvConfig` from a YAML path or mapping.

    The mapping may be a whole experiment (with an ``env`` section) or just the env's sections
    (``market``, ``reward``, ...).
    """
    if isinstance(source, EnvConfig):
        return source if not overrides else load_env_config(source.model_dump(), overrides)
    if isinstance(source, ExperimentConfig):
        return load_env_config(source.env, overrides)
    if source is None:
        data, name = {}, "<defaults>"
    elif isinstance(source, dict):
        data, name = copy.deepcopy(source), "<dict>"
    else:
        data, name = load_yaml(source), str(source)
    if set(data) & (set(ExperimentConfig.model_fields) - set(EnvConfig.model_fields)) or "env" in data:
        return load_config(data if name in ("<dict>",) else source, overrides).env
    data = apply_overrides(data, overrides, EnvConfig)
    return _validate(EnvConfig, data, name, _override_paths(overrides, EnvConfig))


def merge_env_kwargs(config: EnvConfig, kwargs: dict[str, Any]) -> EnvConfig:
    """Merge ``gym.make`` keyword overrides (section mappings or flat keys) into a config.

    A flat key is looked up in the sections in the order market, reward, action, impact,
    observation, book (``gym.make("mmgym/LOBMarketMaking-v0", warmup=5)`` sets ``book.warmup``).
    """
    data = config.model_dump()
    for key, value in kwargs.items():
        if key in EnvConfig.model_fields and isinstance(value, dict):
            data[key].update(value)
        elif key in EnvConfig.model_fields:
            data[key] = value
        else:
            for section in ("market", "reward", "action", "impact", "observation", "book"):
                if key in EnvConfig.model_fields[section].annotation.model_fields:  # type: ignore[union-attr]
                    data[section][key] = value
                    break
            else:
                raise ConfigError(f"<gym.make>: {key}: unknown keyword (valid: {', '.join(EnvConfig.model_fields)} or a market/reward/action/impact/observation/book key)")
    return _validate(EnvConfig, data, "<gym.make>")


def describe(model: type[BaseModel] = ExperimentConfig, prefix: str = "") -> None:
    """Print every key path with its default and docstring."""
    for name, field in model.model_fields.items():
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
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


"""Evaluate policies on common random numbers: baselines, callables and trained SB3 models.

Every agent runs the same scenarios: episode ``e`` of an evaluation with seed ``s`` runs on a
kernel stream seeded with ``seeding.np_random(s + e)`` (what a single Gymnasium env reset with
seed ``s + e`` uses, and what env ``e`` of a vector env reset with seed ``s`` uses). The kernel
draws the same random numbers per step whatever the action, so two agents see identical fill
uniforms and mid moves, and paired differences between them have small variance.

On ``mmgym/LOBMarketMaking-v0`` the pairing is by seed only: every agent's episode e starts from
the same book (same warm-up draws) and consumes the same stream, but our orders change the book
(queue positions, fills, the mid when a market order takes our quote), so the event sequence
depends on the action: which uniform decides which event drifts apart as soon as the agents'
quotes differ. Paired differences stay valid (episodes are independent across e, and each pair
shares its seed); their variance reduction is smaller than on the intensity market.

Episodes are batched: all episodes of a chunk (``num_envs`` rows) advance with one kernel call per
step. Results do not depend on the chunk size.

A policy is one of

* a baseline name (``"as"``, ``"optimal"``, ... see :mod:`mmgym.baselines`),
* a :class:`~mmgym.baselines.DepthPolicy` (raw-depth market),
* a callable ``obs (N, obs_dim) float32 -> actions (N, action_dim)`` in the env's normalised
  action space (market with ``raw_depths=False``), e.g. :func:`load_sb3_policy`.

Baseline runs are cached in-process by (env config, policy parameters, episodes, seed): a periodic
evaluation in ``train.py`` pays for its reference lines once.

Only :func:`load_sb3_policy` imports stable-baselines3 / torch, lazily.
"""

from __future__ import annotations

import json
import math
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Union

import numpy as np
from scipy import special, stats

from .config import BaselinesConfig, ConfigError, EnvConfig, first_difference
from .core import intensity as K
from .make import make_market

#: The env whose kernel the exact table evaluation (:func:`mmgym.baselines.evaluate_tables`) and
#: the ``optimal`` DP describe; on other envs those numbers are the intensity model's.
INTENSITY_ENV_ID = "mmgym/MarketMaking-v0"

__all__ = [
    "EpisodeBatch",
    "EvaluationResult",
    "ObsPolicy",
    "Policy",
    "evaluate_agents",
    "run_evaluation",
    "run_policy",
    "sb3_policy_fn",
    "summarize",
    "paired_difference",
    "depth_surface",
    "load_sb3_policy",
    "clear_cache",
]

ObsPolicy = Callable[[np.ndarray], np.ndarray]
Policy = Union[str, "DepthPolicy", ObsPolicy]  # noqa: F821

DEFAULT_CHUNK = 1000
_CACHE_SIZE = 64
_RUN_CACHE: OrderedDict[str, EpisodeBatch] = OrderedDict()
_BASELINE_CACHE: OrderedDict[str, Any] = OrderedDict()

AUDIT_COLUMNS = ("agent", "episode", "step", "side", "price", "qty", "inventory_after", "cash_after")


@dataclass
class EpisodeBatch:
    """Per-episode outcomes of one policy (arrays of shape (episodes,) unless stated).

    Attributes:
        objective: summed reward (the env's objective). pnl: wealth change, net of costs.
        final_inventory, abs_inventory: q_T and the per-step mean of |q|.
        spread: mean quoted spread over two-sided steps (NaN if never two-sided).
        fills, impact_cost, fees, hedge_lots, inventory_penalty, terminal_penalty: episode sums.
        path: the first episode's path: ``mid``, ``bid``, ``ask``, ``fill_bid``, ``fill_ask``,
            ``inventory`` (post-step), each (n_steps,).
        audit: per-fill records (tuples in ``AUDIT_COLUMNS`` order, agent left blank) or None.
    """

    objective: np.ndarray
    pnl: np.ndarray
    final_inventory: np.ndarray
    abs_inventory: np.ndarray
    max_abs_inventory: np.ndarray
    spread: np.ndarray
    fills: np.ndarray
    impact_cost: np.ndarray
    fees: np.ndarray
    hedge_lots: np.ndarray
    inventory_penalty: np.ndarray
    terminal_penalty: np.ndarray
    path: dict[str, np.ndarray] = field(default_factory=dict)
    audit: list[tuple] | None = None


@dataclass
class EvaluationResult:
    """What :func:`run_evaluation` returns: metrics per agent plus the raw batches and policies."""

    metrics: dict[str, dict[str, Any]]
    batches: dict[str, EpisodeBatch]
    policies: dict[str, Any]
    reference: str
    metadata: dict[str, Any]


# ------------------------------------------------------------------------------- caching ---
def _key(*parts: Any) -> str:
    return json.dumps(parts, sort_keys=True, default=str)


def _cache_put(cache: OrderedDict, key: str, value: Any) -> None:
    cache[key] = value
    cache.move_to_end(key)
    while len(cache) > _CACHE_SIZE:
        cache.popitem(last=False)


def clear_cache() -> None:
    """Forget cached baseline policies and runs."""
    _RUN_CACHE.clear()
    _BASELINE_CACHE.clear()


def get_baseline(name: str, env_config: EnvConfig, baselines_config: BaselinesConfig | None = None):
    """:func:`mmgym.baselines.make_baseline`, cached by (name, env config, baselines config)."""
    from .baselines import make_baseline

    bc = baselines_config if baselines_config is not None else BaselinesConfig()
    key = _key(name, env_config.model_dump(), bc.model_dump())
    if key not in _BASELINE_CACHE:
        _cache_put(_BASELINE_CACHE, key, make_baseline(name, env_config, bc))
    return _BASELINE_CACHE[key]


# ------------------------------------------------------------------------------- running ---
def run_policy(
    env_config: EnvConfig,
    policy: Any,
    episodes: int,
    seed: int = 0,
    num_envs: int | None = None,
    audit: bool = False,
    cache: bool = True,
) -> EpisodeBatch:
    """Run ``episodes`` episodes of one policy on common random numbers (module docstring).

    Args:
        env_config: the environment.
        policy: a :class:`~mmgym.baselines.DepthPolicy` (raw-depth market) or a callable
            obs -> normalised actions.
        episodes: number of episodes; episode e uses seed ``seed + e``.
        seed: base seed.
        num_envs: rows stepped at once (default min(episodes, 1000)).
        audit: also return per-fill records.
        cache: reuse/remember the result of a DepthPolicy run (not for callables or audits).

    Raises:
        ConfigError: ``audit`` on an env other than the intensity market (the per-fill records
            are reconstructed with its execution rules).
    """
    from .baselines import DepthPolicy

    if audit and env_config.id != INTENSITY_ENV_ID:
        raise ConfigError(f"--audit: per-fill records are only available for {INTENSITY_ENV_ID} "
                          f"(got env.id {env_config.id})")
    is_depth = isinstance(policy, DepthPolicy)
    if not is_depth and not callable(policy):
        raise TypeError(f"policy must be a DepthPolicy or a callable, got {type(policy).__name__}")
    key = None
    if is_depth and cache and not audit:
        key = _key(env_config.model_dump(), policy.describe(), type(policy).__name__, episodes, seed)
        if key in _RUN_CACHE:
            _RUN_CACHE.move_to_end(key)
            return _RUN_CACHE[key]
    chunk = min(episodes, num_envs or DEFAULT_CHUNK)
    n_steps = env_config.market.n_steps
    stats_rows: list[np.ndarray] = []
    records: list[tuple] | None = [] if audit else None
    path: dict[str, np.ndarray] = {}
    market = make_market(env_config, chunk, raw_depths=is_depth)
    actions = np.zeros((chunk, market.action_dim))
    im = env_config.impact
    maker, taker = env_config.reward.maker_fee, env_config.reward.taker_fee
    for start in range(0, episodes, chunk):
        rows = min(chunk, episodes - start)
        if rows != market.num_envs:
            market = make_market(env_config, rows, raw_depths=is_depth)
            actions = np.zeros((rows, market.action_dim))
        market.seed_rows([seed + start + i for i in range(rows)])
        obs = market.reset()
        first = start == 0
        if first:
            path = {k: np.empty(n_steps) for k in ("mid", "bid", "ask", "fill_bid", "fill_ask", "inventory", "hedge")}
        for t in range(n_steps):
            if audit:
                cash0 = market.cash.copy()
                inv0 = market.inventory.copy()
            if is_depth:
                policy.act(market, out=actions)
                act = actions
            else:
                act = np.asarray(policy(obs), dtype=np.float64).reshape(rows, market.action_dim)
            buf = market.step(act)
            aux = buf.aux
            if first:
                path["mid"][t] = aux[0, K.AUX_MID]
                path["bid"][t] = aux[0, K.AUX_BID_PX]
                path["ask"][t] = aux[0, K.AUX_ASK_PX]
                path["fill_bid"][t] = aux[0, K.AUX_FILL_BID]
                path["fill_ask"][t] = aux[0, K.AUX_FILL_ASK]
                path["hedge"][t] = aux[0, K.AUX_HEDGE]
                path["inventory"][t] = (buf.final_stats[0, K.ST_FINAL_INV] if buf.done[0]
                                        else market.inventory[0])
            if audit:
                _audit_step(records, start, t, aux, cash0, inv0, im, maker, taker)
            obs = buf.obs
        if not buf.done.all():  # fixed horizon: every row finishes on the last step
            raise RuntimeError("episodes did not finish after n_steps steps")
        stats_rows.append(buf.final_stats.copy())
    st = np.concatenate(stats_rows, axis=0)
    length = np.maximum(st[:, K.ST_LENGTH], 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        spread = np.where(st[:, K.ST_SPREAD_COUNT] > 0, st[:, K.ST_SPREAD_SUM] / st[:, K.ST_SPREAD_COUNT], np.nan)
    batch = EpisodeBatch(
        objective=st[:, K.ST_RETURN], pnl=st[:, K.ST_PNL], final_inventory=st[:, K.ST_FINAL_INV],
        abs_inventory=st[:, K.ST_ABS_INV_SUM] / length, max_abs_inventory=st[:, K.ST_MAX_ABS_INV],
        spread=spread, fills=st[:, K.ST_FILLS], impact_cost=st[:, K.ST_IMPACT],
        fees=st[:, K.ST_FEES], hedge_lots=st[:, K.ST_HEDGE_LOTS],
        inventory_penalty=st[:, K.ST_INV_PENALTY], terminal_penalty=st[:, K.ST_TERM_PENALTY],
        path=path, audit=records,
    )
    if key is not None:
        _cache_put(_RUN_CACHE, key, batch)
    return batch


def _audit_step(records, start, t, aux, cash0, inv0, im, maker, taker) -> None:
    """Append this step's trades: market order, then bid fill, then ask fill (the kernel's order)."""
    v = aux[:, K.AUX_HEDGE]
    fb = aux[:, K.AUX_FILL_BID] > 0
    fa = aux[:, K.AUX_FILL_ASK] > 0
    active = np.flatnonzero((v != 0) | fb | fa)
    for i in active:
        cash = float(cash0[i])
        q = int(inv0[i])
        vi = int(v[i])
        if vi != 0:
            s_pre = aux[i, K.AUX_MID] - im.nu * vi
            px = s_pre + math.copysign(im.half_spread + im.eta * abs(vi), vi)
            cash -= vi * px + taker * abs(vi)
            q += vi
            records.append(("", start + i, t, "market_buy" if vi > 0 else "market_sell", px, abs(vi), q, cash))
        if fb[i]:
            px = float(aux[i, K.AUX_BID_PX])
            cash -= px + maker
            q += 1
            records.append(("", start + i, t, "bid", px, 1, q, cash))
        if fa[i]:
            px = float(aux[i, K.AUX_ASK_PX])
            cash += px - maker
            q -= 1
            records.append(("", start + i, t, "ask", px, 1, q, cash))


# ------------------------------------------------------------------------------ statistics ---
def _mean_se(x: np.ndarray) -> tuple[float, float, float]:
    x = np.asarray(x, dtype=np.float64)
    n = x.size
    std = float(np.std(x, ddof=1)) if n > 1 else 0.0
    return float(np.mean(x)), std, std / math.sqrt(n) if n > 0 else float("nan")


def summarize(batch: EpisodeBatch, gamma: float) -> dict[str, Any]:
    """Summary metrics of one policy's episodes.

    ``certainty_equivalent`` is the CARA certainty equivalent of the episode PnL at risk aversion
    ``gamma``: CE = -(1/gamma) ln E[exp(-gamma PnL)] (the AS 2008 objective's utility, computed with
    scipy's logsumexp). ``sharpe`` is mean/std of the episode PnL (not annualised).
    """
    obj_mean, obj_std, obj_se = _mean_se(batch.objective)
    pnl_mean, pnl_std, pnl_se = _mean_se(batch.pnl)
    n = batch.pnl.size
    ce = float(-(special.logsumexp(-gamma * batch.pnl) - math.log(n)) / gamma)
    spread = batch.spread[np.isfinite(batch.spread)]
    return {
        "episodes": int(n),
        "objective_mean": obj_mean,
        "objective_std": obj_std,
        "objective_se": obj_se,
        "pnl_mean": pnl_mean,
        "pnl_std": pnl_std,
        "pnl_se": pnl_se,
        "sharpe": pnl_mean / pnl_std if pnl_std > 0 else float("nan"),
        "certainty_equivalent": ce,
        "spread_mean": float(spread.mean()) if spread.size else float("nan"),
        "final_inventory_mean": float(batch.final_inventory.mean()),
        "final_inventory_std": float(batch.final_inventory.std(ddof=1)) if n > 1 else 0.0,
        "abs_inventory_mean": float(batch.abs_inventory.mean()),
        "max_abs_inventory_mean": float(batch.max_abs_inventory.mean()),
        "fills_mean": float(batch.fills.mean()),
        "impact_cost_mean": float(batch.impact_cost.mean()),
        "fees_mean": float(batch.fees.mean()),
        "hedge_lots_mean": float(batch.hedge_lots.mean()),
        "inventory_penalty_mean": float(batch.inventory_penalty.mean()),
        "terminal_penalty_mean": float(batch.terminal_penalty.mean()),
    }


def paired_difference(x: np.ndarray, ref: np.ndarray, level: float = 0.95) -> dict[str, Any]:
    """Mean of the paired differences x - ref with its standard error and a t confidence interval."""
    d = np.asarray(x, dtype=np.float64) - np.asarray(ref, dtype=np.float64)
    mean, std, se = _mean_se(d)
    n = d.size
    half = float(stats.t.ppf(0.5 + level / 2, n - 1)) * se if n > 1 else float("inf")
    return {"mean": mean, "se": se, "ci95": [mean - half, mean + half]}


# ---------------------------------------------------------------------------- evaluation ---
def _resolve(name: str, policy: Any, env_config: EnvConfig, bc: BaselinesConfig):
    from .baselines import DepthPolicy

    if isinstance(policy, str):
        return get_baseline(policy, env_config, bc)
    if isinstance(policy, DepthPolicy) or callable(policy):
        return policy
    raise ConfigError(f"agent {name!r}: expected a baseline name, a DepthPolicy or a callable, got {type(policy).__name__}")


def run_evaluation(
    env_config: EnvConfig,
    agents: Mapping[str, Policy],
    episodes: int = 1000,
    seed: int = 0,
    baselines_config: BaselinesConfig | None = None,
    num_envs: int | None = None,
    reference: str | None = None,
    audit: bool = False,
    progress: Callable[[str], None] | None = None,
) -> EvaluationResult:
    """Run every agent on the same scenarios; metrics, paired differences and raw batches.

    Args:
        env_config: the environment.
        agents: name -> policy (a baseline name, a DepthPolicy or a callable obs -> actions).
        episodes, seed: scenarios (episode e uses seed + e) shared by all agents.
        baselines_config: gamma etc. of the named baselines and of the certainty equivalent.
        num_envs: rows stepped at once (default min(episodes, 1000)).
        reference: agent the paired differences are taken against (default ``optimal`` if
            present, else the first agent).
        audit: record per-fill trades.
        progress: optional callback with the name of the agent about to run.

    Returns:
        :class:`EvaluationResult`; ``metrics[name]`` holds :func:`summarize`'s fields, the paired
        differences against the reference (``objective_diff_mean``, ``objective_diff_se``,
        ``objective_diff_ci95``, ``pnl_diff_*``), and for table policies ``objective_exact``
        (the exact expectation of the objective, :func:`mmgym.baselines.evaluate_tables`); the
        optimal policy adds ``v0``. On an env other than the intensity market (the limit order
        book) those expectations are the *intensity model's* with the config's sigma, A, k, not
        the env's: they are reported as ``objective_model`` (``objective_exact`` is None), ``v0``
        is that model's optimum, and ``metadata["baseline_model"]`` says so.
    """
    from .baselines import DepthPolicy, evaluate_tables

    if not agents:
        raise ConfigError("no agents to evaluate")
    bc = baselines_config if baselines_config is not None else BaselinesConfig()
    names = list(agents)
    if reference is None:
        reference = "optimal" if "optimal" in agents else names[0]
    if reference not in agents:
        raise ConfigError(f"--reference {reference!r} is not one of the agents ({', '.join(names)})")
    policies = {name: _resolve(name, pol, env_config, bc) for name, pol in agents.items()}
    batches: dict[str, EpisodeBatch] = {}
    for name, pol in policies.items():
        if progress is not None:
            progress(name)
        batches[name] = run_policy(env_config, pol, episodes, seed, num_envs=num_envs, audit=audit)
    metrics: dict[str, dict[str, Any]] = {}
    ref = batches[reference]
    j0 = env_config.market.q0 + env_config.market.max_inventory
    exact_env = env_config.id == INTENSITY_ENV_ID
    for name, batch in batches.items():
        m = summarize(batch, bc.gamma)
        pol = policies[name]
        m["kind"] = "baseline" if isinstance(pol, DepthPolicy) else "policy"
        if isinstance(pol, DepthPolicy):
            m["params"] = pol.describe()
            try:
                d_b, d_a, v = pol.tables()
                value = float(evaluate_tables(env_config, d_b, d_a, v)[0, j0])
            except ConfigError:
                value = None
            m["objective_exact"] = value if exact_env else None
            if not exact_env:
                m["objective_model"] = value
            if hasattr(pol, "v0"):
                m["v0"] = float(pol.v0)
        obj = paired_difference(batch.objective, ref.objective)
        pnl = paired_difference(batch.pnl, ref.pnl)
        m["reference"] = reference
        m["objective_diff_mean"], m["objective_diff_se"], m["objective_diff_ci95"] = obj["mean"], obj["se"], obj["ci95"]
        m["pnl_diff_mean"], m["pnl_diff_se"], m["pnl_diff_ci95"] = pnl["mean"], pnl["se"], pnl["ci95"]
        metrics[name] = m
    metadata = {
        "episodes": int(episodes),
        "seed": int(seed),
        "reference": reference,
        "gamma": bc.gamma,
        "env": env_config.model_dump(mode="json"),
        "baselines": bc.model_dump(mode="json"),
    }
    if not exact_env:
        m = env_config.market
        metadata["baseline_model"] = (
            f"the baselines (and 'optimal', objective_model, optimal_v0) use the intensity model "
            f"lambda(delta) = A exp(-k delta) with market.sigma={m.sigma}, A={m.A}, k={m.k} "
            f"(calibrated on the book: python -m mmgym.calibrate); 'optimal' is that model's exact "
            f"optimum, not the book's")
    opt = next((p for p in policies.values() if hasattr(p, "v0") and hasattr(p, "solution")), None)
    if opt is not None:
        metadata["optimal_v0"] = float(opt.v0)
        metadata["optimal_exact"] = bool(opt.exact) and exact_env
    return EvaluationResult(metrics, batches, policies, reference, metadata)


def evaluate_agents(
    env_config: EnvConfig,
    agents: Mapping[str, Policy],
    episodes: int = 1000,
    seed: int = 0,
    baselines_config: BaselinesConfig | None = None,
    num_envs: int | None = None,
    reference: str | None = None,
) -> dict[str, dict[str, Any]]:
    """Metrics per agent on common random numbers (see :func:`run_evaluation`).

    Example (periodic evaluation in a training loop)::

        from mmgym.evaluation import evaluate_agents
        def act(obs):                       # normalised actions, (N, action_dim)
            return model.predict(obs, deterministic=True)[0]
        res = evaluate_agents(cfg.env, {"agent": act, "as": "as", "optimal": "optimal"},
                              episodes=500, seed=123, baselines_config=cfg.baselines)
        res["agent"]["objective_mean"], res["agent"]["objective_diff_ci95"]

    Baseline entries are cached, so repeated calls only pay for the callable agents.
    """
    return run_evaluation(env_config, agents, episodes, seed, baselines_config, num_envs,
                          reference).metrics


# ------------------------------------------------------------------------ depth surfaces ---
def depth_surface(
    env_config: EnvConfig,
    policy: Any,
    q_values: np.ndarray,
    t_values: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Depths ``(delta_b, delta_a)``, each (len(t_values), len(q_values)), of a policy on a grid.

    A DepthPolicy is queried directly. A callable obs-policy is fed the observation the kernel would
    write at (t, q) (volatility at its nominal level, no fills, zero last return) and its actions
    are mapped to depths by one step of the real kernel (so the env's rescaling and tick rounding
    apply). The side that cannot quote at the bound is NaN.
    """
    from .baselines import DepthPolicy

    q_values = np.asarray(q_values, dtype=np.int64)
    t_values = np.asarray(t_values, dtype=np.int64)
    tg, qg = np.meshgrid(t_values, q_values, indexing="ij")
    q_max = env_config.market.max_inventory
    if isinstance(policy, DepthPolicy):
        d_b, d_a = policy.depths(tg.ravel(), qg.ravel())
        d_b = np.asarray(d_b, float).reshape(tg.shape).copy()
        d_a = np.asarray(d_a, float).reshape(tg.shape).copy()
        d_b[qg >= q_max] = np.nan
        d_a[qg <= -q_max] = np.nan
        return d_b, d_a
    n = tg.size
    n_steps = env_config.market.n_steps
    market = make_market(env_config, n, raw_depths=False)
    market.seed_rows(list(range(n)))
    # the reset observation as template: env-specific features beyond the intensity env's first
    # six (the book's spread, imbalance, ...) keep their values at the start of an episode
    obs = np.array(market.reset(), dtype=np.float32)
    obs[:, : K.OBS_DIM] = 0.0
    obs[:, K.OBS_TIME_LEFT] = (n_steps - tg.ravel()) / n_steps
    obs[:, K.OBS_VOL] = 1.0
    actions = np.asarray(policy(obs), dtype=np.float64).reshape(n, market.action_dim)
    market.inventory[:] = qg.ravel()
    market.step_count[:] = tg.ravel()
    if hasattr(market, "wealth0"):  # the book's accounting starts from its own wealth
        market.wealth0[:] = market.inventory * market.mid
    buf = market.step(actions)
    return (buf.aux[:, K.AUX_DEPTH_BID].reshape(tg.shape).copy(),
            buf.aux[:, K.AUX_DEPTH_ASK].reshape(tg.shape).copy())


# ------------------------------------------------------------------------ trained agents ---
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
    Imports stable-baselines3 (and torch) lazily: the only place in mmgym that does.

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
def write_plots(result: EvaluationResult, env_config: EnvConfig, out_dir: str | Path) -> list[Path]:
    """Write the evaluation figures (matplotlib, Agg) into ``out_dir``; returns their paths.

    * ``pnl_distribution.png``: histogram of episode PnL per agent.
    * ``inventory_distribution.png``: histogram of the final inventory per agent.
    * ``sample_path.png``: episode 0 (the same scenario for every agent): mid, bid/ask quotes,
      fills and inventory.
    * ``depth_surface.png``: bid and ask depth over (t, q), the reference/optimal policy beside
      each other agent (obs-policies are queried through the observation, :func:`depth_surface`).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    names = list(result.batches)
    colors = {n: plt.cm.tab10(i % 10) for i, n in enumerate(names)}
    written: list[Path] = []

    def histograms(path: Path, values: dict[str, np.ndarray], bins: Any, labels: dict[str, str],
                   xlabel: str, title: str) -> None:
        fig, ax = plt.subplots(figsize=(8, 4.5))
        for n in names:
            ax.hist(values[n], bins=bins, histtype="step", lw=1.5, color=colors[n], label=labels[n])
        ax.set_xlabel(xlabel)
        ax.set_ylabel("episodes")
        ax.set_title(title)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)

    pnl = {n: result.batches[n].pnl for n in names}
    lo, hi = np.percentile(np.concatenate(list(pnl.values())), [0.5, 99.5])
    histograms(out / "pnl_distribution.png", pnl, np.linspace(lo, hi, 60) if hi > lo else 30,
               {n: f"{n} ({result.metrics[n]['pnl_mean']:.2f} ± {result.metrics[n]['pnl_std']:.2f})"
                for n in names}, "episode PnL", "PnL distribution (mean ± std)")

    q_final = {n: result.batches[n].final_inventory for n in names}
    allq = np.concatenate(list(q_final.values()))
    qlo, qhi = int(allq.min()), int(allq.max())
    histograms(out / "inventory_distribution.png", q_final,
               np.arange(qlo - 0.5, qhi + 1.5, 1.0 if qhi - qlo <= 80 else (qhi - qlo) / 80),
               {n: f"{n} (std {result.metrics[n]['final_inventory_std']:.2f})" for n in names},
               "final inventory q_T (lots)", "Final inventory distribution")

    t = np.arange(env_config.market.n_steps) * env_config.market.dt
    fig, axes = plt.subplots(len(names), 2, figsize=(12, 2.6 * len(names)), squeeze=False,
                             sharex=True)
    for row, n in enumerate(names):
        p = result.batches[n].path
        ax = axes[row, 0]
        ax.plot(t, p["mid"], color="k", lw=1, label="mid")
        ax.plot(t, p["bid"], color="tab:green", lw=0.8, label="bid")
        ax.plot(t, p["ask"], color="tab:red", lw=0.8, label="ask")
        fb, fa = p["fill_bid"] > 0, p["fill_ask"] > 0
        ax.scatter(t[fb], p["bid"][fb], marker="^", s=12, color="tab:green", label="bid fill")
        ax.scatter(t[fa], p["ask"][fa], marker="v", s=12, color="tab:red", label="ask fill")
        ax.set_ylabel(n)
        if row == 0:
            ax.set_title("episode 0: quotes and fills")
            ax.legend(fontsize=7, ncol=5)
        ax = axes[row, 1]
        ax.step(t, p["inventory"], where="post", color=colors[n])
        ax.axhline(0, color="0.6", lw=0.5)
        if row == 0:
            ax.set_title("inventory")
    axes[-1, 0].set_xlabel("t")
    axes[-1, 1].set_xlabel("t")
    fig.tight_layout()
    written.append(out / "sample_path.png")
    fig.savefig(written[-1], dpi=110)
    plt.close(fig)

    m = env_config.market
    qp = min(m.max_inventory, 25)
    q_values = np.arange(-qp, qp + 1)
    t_values = np.arange(m.n_steps) if m.n_steps <= 400 else np.unique(np.linspace(0, m.n_steps - 1, 200).astype(int))
    first = "optimal" if "optimal" in names else result.reference
    order = [first] + [n for n in names if n != first]
    surfaces = {n: depth_surface(env_config, result.policies[n], q_values, t_values) for n in order}
    # one colour scale, set by the reference (optimal) policy's own range so that its structure
    # shows; other agents' depths beyond it saturate (the colour bar's arrows)
    finite = np.concatenate([np.ravel(s) for s in surfaces[first]])
    finite = finite[np.isfinite(finite)]
    vmin, vmax = (np.percentile(finite, [1, 99]) if finite.size else (0.0, 1.0))
    if vmax - vmin < 1e-9:
        vmin, vmax = vmin - 0.5, vmax + 0.5
    fig, axes = plt.subplots(2, len(order), figsize=(3.0 * len(order) + 1.2, 6), squeeze=False,
                             layout="constrained")
    extent = (t_values[0] * m.dt, (t_values[-1] + 1) * m.dt, -qp - 0.5, qp + 0.5)
    im = None
    for col, n in enumerate(order):
        for row, side in enumerate(("bid depth δ_b", "ask depth δ_a")):
            ax = axes[row, col]
            im = ax.imshow(surfaces[n][row].T, origin="lower", aspect="auto", extent=extent,
                           vmin=vmin, vmax=vmax, cmap="viridis")
            ax.set_title(f"{n}: {side}", fontsize=9)
            if col == 0:
                ax.set_ylabel("inventory q")
            if row == 1:
                ax.set_xlabel("t")
    fig.colorbar(im, ax=axes.ravel().tolist(), shrink=0.8, extend="both",
                 label=f"depth (price units; scale of {first})")
    written.append(out / "depth_surface.png")
    fig.savefig(written[-1], dpi=110)
    plt.close(fig)
    return written

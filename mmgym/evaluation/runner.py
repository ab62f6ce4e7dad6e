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
  action space (market with ``raw_depths=False``), e.g. :func:`mmgym.agents.policies.load_sb3_policy`.

Baseline runs are cached in-process by (env config, policy parameters, episodes, seed): a periodic
evaluation in ``train.py`` pays for its reference lines once (and the tuned baselines for their
search once, :mod:`mmgym.baselines.tuned`). The tuned baselines' simulation seeds
(``baselines.tuning.seed``, ``episodes``) are reserved: :func:`run_evaluation` refuses an
evaluation whose seeds overlap them.

Nothing here branches on env ids: what an env supports (exact DP values, per-fill audits, what the
baselines' model is to it) is declared by its scenario (:class:`mmgym.scenarios.base.Scenario`).
Trained SB3 models are loaded by :mod:`mmgym.agents.policies` (``agents/`` is the only torch importer).
"""

from __future__ import annotations

import json
import math
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence, Union

import numpy as np

from ..config import BaselinesConfig, ConfigError, EnvConfig
from ..make import make_market
from .stats import across_seeds, mean_se, paired_across_seeds, paired_difference, summarize

__all__ = [
    "AUDIT_COLUMNS",
    "audit_columns",
    "aggregate_seeds",
    "default_reference",
    "EpisodeBatch",
    "EvaluationResult",
    "ObsPolicy",
    "Policy",
    "clear_cache",
    "depth_surface",
    "evaluate_agents",
    "get_baseline",
    "run_evaluation",
    "run_policy",
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
        path: the first episode's path. One asset: ``mid``, ``bid``, ``ask``, ``fill_bid``,
            ``fill_ask``, ``hedge``, ``inventory`` (post-step), each (n_steps,). K > 1 assets: the
            scenario's per-asset columns (``Scenario.asset_path_columns``; the portfolio's
            ``inventory`` post-step, ``mid``, ``depth_bid``, ``depth_ask``, ``fill_bid``,
            ``fill_ask``), each (n_steps, K); with a factor model also ``factor_exposure``
            (n_steps, F) after each step.
        factor_names: the F factors of ``Scenario.exposure_reader`` (None: no factor model), and
            per episode ``abs_factor_exposure`` (episodes, F), the mean over steps of |e_f| after
            each step, and ``final_factor_exposure`` (episodes, F), e_f after the last step;
            ``factor_exposure_t`` (n_steps, F), the mean over episodes of |e_f| after step t, and
            ``factor_exposure_t_se`` its standard error.
        audit: per-fill records (tuples in ``AUDIT_COLUMNS`` order, or the scenario's
            ``audit_columns``, agent left blank) or None.
        alerts: risk-limit alerts (dicts, :meth:`~mmgym.scenarios.base.Scenario.alert_step`) when
            the env has limits (``Scenario.has_alerts``), else None.
        alerts_breach, alerts_warn: per-episode alert counts (episode statistics) or None.
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
    alerts: list[dict] | None = None
    alerts_breach: np.ndarray | None = None
    alerts_warn: np.ndarray | None = None
    factor_names: list[str] | None = None
    abs_factor_exposure: np.ndarray | None = None
    final_factor_exposure: np.ndarray | None = None
    factor_exposure_t: np.ndarray | None = None
    factor_exposure_t_se: np.ndarray | None = None


def audit_columns(env_config: EnvConfig) -> tuple[str, ...]:
    """The columns of ``env_config``'s per-fill records: its scenario's, else :data:`AUDIT_COLUMNS`."""
    from ..scenarios import get as get_scenario

    return get_scenario(env_config.id).audit_columns or AUDIT_COLUMNS


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
    """Forget cached baseline policies, runs and tuning results."""
    from ..baselines import tuned

    _RUN_CACHE.clear()
    _BASELINE_CACHE.clear()
    tuned.clear_cache()


def get_baseline(name: str, env_config: EnvConfig, baselines_config: BaselinesConfig | None = None):
    """:func:`mmgym.baselines.make_baseline`, cached by (name, env config, baselines config)."""
    from ..baselines import make_baseline

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
    spawn_key: tuple[int, ...] = (),
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
        spawn_key: the family of random streams (:meth:`~mmgym.envs.market.BatchMarket.seed_rows`):
            ``()`` evaluation's; the tuned baselines' search uses
            :data:`~mmgym.envs.market.TUNING_STREAMS`.

    Raises:
        ConfigError: ``audit`` on an env whose scenario cannot reconstruct per-fill records from
            its aux columns (``Scenario.audit``).
    """
    from ..baselines import DepthPolicy
    from ..scenarios import get as get_scenario

    if audit and not get_scenario(env_config.id).audit:
        raise ConfigError(f"--audit: per-fill records are not available for {env_config.id} "
                          "(its scenario does not reconstruct them)")
    is_depth = isinstance(policy, DepthPolicy)
    if not is_depth and not callable(policy):
        raise TypeError(f"policy must be a DepthPolicy or a callable, got {type(policy).__name__}")
    key = None
    if is_depth and cache and not audit:
        key = _key(env_config.model_dump(), policy.describe(), type(policy).__name__, episodes, seed, list(spawn_key))
        if key in _RUN_CACHE:
            _RUN_CACHE.move_to_end(key)
            return _RUN_CACHE[key]
    chunk = min(episodes, num_envs or DEFAULT_CHUNK)
    n_steps = env_config.market.n_steps
    stats_rows: list[np.ndarray] = []
    records: list[tuple] | None = [] if audit else None
    scenario = get_scenario(env_config.id)
    sc_config = scenario.coerce(env_config)  # the scenario's own config class (its sections)
    own_audit = audit and scenario.audit_columns is not None
    alerts: list[dict] | None = [] if scenario.has_alerts(sc_config) else None
    path: dict[str, np.ndarray] = {}
    k = scenario.assets(sc_config)
    reader = scenario.exposure_reader(sc_config)
    names_f, read_exposure = reader if reader is not None else (None, None)
    if reader is not None:
        nf = len(names_f)
        exp_abs, exp_final = [], []
        exp_t, exp_t2 = np.zeros((n_steps, nf)), np.zeros((n_steps, nf))
    market = make_market(env_config, chunk, raw_depths=is_depth)
    actions = np.zeros((chunk, market.action_dim))
    col = {name: j for j, name in enumerate(market.aux_names)}
    stat = {name: j for j, name in enumerate(market.stat_names)}
    asset_cols = ({key_: [col[f"{prefix}_{a}"] for a in range(k)]
                   for key_, prefix in scenario.asset_path_columns.items()} if k > 1 else {})
    im = env_config.impact
    maker, taker = env_config.reward.maker_fee, env_config.reward.taker_fee
    for start in range(0, episodes, chunk):
        rows = min(chunk, episodes - start)
        if rows != market.num_envs:
            market = make_market(env_config, rows, raw_depths=is_depth)
            actions = np.zeros((rows, market.action_dim))
        market.seed_rows([seed + start + i for i in range(rows)], spawn_key=tuple(spawn_key))
        obs = market.reset()
        first = start == 0
        if first:
            if k > 1:
                path = {key_: np.empty((n_steps, k)) for key_ in asset_cols}
            else:
                path = {key_: np.empty(n_steps) for key_ in ("mid", "bid", "ask", "fill_bid", "fill_ask",
                                                            "inventory", "hedge")}
            if reader is not None:
                path["factor_exposure"] = np.empty((n_steps, nf))
        if reader is not None:
            chunk_abs = np.zeros((rows, nf))
        for t in range(n_steps):
            if audit:
                cash0 = market.field("cash").copy()
                inv0 = market.inventory.copy() if own_audit else market.inventory[:, 0].copy()
            if is_depth:
                policy.act(market, out=actions)
                act = actions
            else:
                act = np.asarray(policy(obs), dtype=np.float64).reshape(rows, market.action_dim)
            buf = market.step(act)
            aux = buf.aux
            if reader is not None:
                e = read_exposure(aux, col)
                ae = np.abs(e)
                chunk_abs += ae
                exp_t[t] += ae.sum(axis=0)
                exp_t2[t] += (ae * ae).sum(axis=0)
                if first:
                    path["factor_exposure"][t] = e[0]
            if first and k > 1:
                for key_, cols in asset_cols.items():
                    path[key_][t] = aux[0, cols]
            elif first:
                for key_, name in _PATH_COLUMNS:
                    path[key_][t] = aux[0, col[name]]
                path["inventory"][t] = (buf.final_stats[0, stat["final_inventory"]] if buf.done[0]
                                        else market.inventory[0, 0])
            if own_audit:
                scenario.audit_step(sc_config, records, start, t, aux, col, cash0, inv0)
            elif audit:
                _audit_step(records, start, t, aux, col, cash0, inv0, im, maker, taker)
            if alerts is not None:
                scenario.alert_step(sc_config, alerts, start, t, aux, col)
            obs = buf.obs
        if not buf.done.all():  # fixed horizon: every row finishes on the last step
            raise RuntimeError("episodes did not finish after n_steps steps")
        stats_rows.append(buf.final_stats.copy())
        if reader is not None:
            exp_abs.append(chunk_abs / n_steps)
            exp_final.append(e.copy())  # after the last step
    rows_ = np.concatenate(stats_rows, axis=0)
    st = {name: rows_[:, j] for name, j in stat.items()}  # the ledger's statistics, by name
    length = np.maximum(st["length"], 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        spread = np.where(st["spread_count"] > 0, st["spread_sum"] / st["spread_count"], np.nan)
    batch = EpisodeBatch(
        objective=st["return"], pnl=st["pnl"], final_inventory=st["final_inventory"],
        abs_inventory=st["abs_inventory_sum"] / length, max_abs_inventory=st["max_abs_inventory"],
        spread=spread, fills=st["fills"], impact_cost=st["impact_cost"], fees=st["fees"],
        hedge_lots=st["hedge_lots"], inventory_penalty=st["inventory_penalty"],
        terminal_penalty=st["terminal_penalty"], path=path, audit=records, alerts=alerts,
        alerts_breach=st.get("alerts_breach") if alerts is not None else None,
        alerts_warn=st.get("alerts_warn") if alerts is not None else None,
    )
    if reader is not None:
        mean_t = exp_t / episodes
        var_t = np.maximum(exp_t2 / episodes - mean_t * mean_t, 0.0) * episodes / max(episodes - 1, 1)
        batch.factor_names = list(names_f)
        batch.abs_factor_exposure = np.concatenate(exp_abs, axis=0)
        batch.final_factor_exposure = np.concatenate(exp_final, axis=0)
        batch.factor_exposure_t, batch.factor_exposure_t_se = mean_t, np.sqrt(var_t / episodes)
    if key is not None:
        _cache_put(_RUN_CACHE, key, batch)
    return batch


#: EpisodeBatch.path keys and the aux columns they record (episode 0, every step)
_PATH_COLUMNS = (("mid", "quote_mid"), ("bid", "bid_px"), ("ask", "ask_px"), ("fill_bid", "fill_bid"),
                 ("fill_ask", "fill_ask"), ("hedge", "hedge_lots"))


def _audit_step(records, start, t, aux, col, cash0, inv0, im, maker, taker) -> None:
    """Append this step's trades: market order, then bid fill, then ask fill (the kernel's order,
    :mod:`mmgym.scenarios.intensity`); ``col``: aux column of each name."""
    v = aux[:, col["hedge_lots"]]
    lots_b = aux[:, col["fill_bid"]]  # lots (more than one with action.quote_size)
    lots_a = aux[:, col["fill_ask"]]
    fb = lots_b > 0
    fa = lots_a > 0
    active = np.flatnonzero((v != 0) | fb | fa)
    for i in active:
        cash = float(cash0[i])
        q = int(inv0[i])
        vi = int(v[i])
        if vi != 0:
            s_pre = aux[i, col["quote_mid"]] - im.nu * vi
            px = s_pre + math.copysign(im.half_spread + im.eta * abs(vi), vi)
            cash -= vi * px + taker * abs(vi)
            q += vi
            records.append(("", start + i, t, "market_buy" if vi > 0 else "market_sell", px, abs(vi), q, cash))
        if fb[i]:
            px = float(aux[i, col["bid_px"]])
            lb = int(lots_b[i])
            cash -= lb * (px + maker)
            q += lb
            records.append(("", start + i, t, "bid", px, lb, q, cash))
        if fa[i]:
            px = float(aux[i, col["ask_px"]])
            la = int(lots_a[i])
            cash += la * (px - maker)
            q -= la
            records.append(("", start + i, t, "ask", px, la, q, cash))


# ---------------------------------------------------------------------------- evaluation ---
def _resolve(name: str, policy: Any, env_config: EnvConfig, bc: BaselinesConfig):
    from ..baselines import DepthPolicy

    if isinstance(policy, str):
        return get_baseline(policy, env_config, bc)
    if isinstance(policy, DepthPolicy) or callable(policy):
        return policy
    raise ConfigError(f"agent {name!r}: expected a baseline name, a DepthPolicy or a callable, got {type(policy).__name__}")


def default_reference(env_config: EnvConfig, names: Sequence[str], requested: str | None = None) -> str:
    """The agent the paired differences are taken against.

    ``requested`` if given; else on an env whose scenario is the baselines' intensity model
    (``Scenario.dp_exact``) ``optimal`` when present; else ``as_tuned`` when present (on the book
    and the OU mid ``optimal`` is only the optimum of the intensity model with the config's sigma,
    A, k, not a bound, and the best-tuned static AS found on the env itself is the reference every
    claim must beat); else the first agent that is not ``optimal``, else the first agent.

    Raises:
        ConfigError: ``requested`` is not an agent, or is ``optimal`` on an env where it is only
            the intensity model's optimum (one line).
    """
    from ..scenarios import get as get_scenario

    names = list(names)
    exact_env = get_scenario(env_config.id).dp_exact
    if requested is not None:
        if requested not in names:
            raise ConfigError(f"--reference {requested!r} is not one of the agents ({', '.join(names)})")
        if requested == "optimal" and not exact_env:
            raise ConfigError(f"--reference optimal: on {env_config.id} optimal is the optimum of the "
                              "calibrated intensity model, not of this env, nor a bound on it (use as_tuned)")
        return requested
    if exact_env and "optimal" in names:
        return "optimal"
    if not exact_env and "as_tuned" in names:
        return "as_tuned"
    others = [n for n in names if n != "optimal"] if not exact_env else names
    return (others or names)[0]


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
        reference: agent the paired differences are taken against (default
            :func:`default_reference`: ``optimal`` where it is the env's exact optimum, else
            ``as_tuned``, the best static AS found on the env itself, else the first agent).
        audit: record per-fill trades.
        progress: optional callback with the name of the agent about to run.

    Returns:
        :class:`EvaluationResult`; ``metrics[name]`` holds :func:`summarize`'s fields, the paired
        differences against the reference (``objective_diff_mean``, ``objective_diff_se``,
        ``objective_diff_ci95``, ``pnl_diff_*``), with a factor model (``Scenario.exposure_reader``)
        ``abs_exposure_<factor>_mean`` and ``_se`` (over episodes, of the per-episode time mean of
        |e_f|, ``EpisodeBatch.abs_factor_exposure``) and ``final_abs_exposure_<factor>_mean``,
        ``_se`` (of |e_f| after the last step), and for table policies ``objective_exact``
        (the exact expectation of the objective, :func:`mmgym.baselines.evaluate_tables`); the
        optimal policy adds ``v0``. On an env whose scenario is not the baselines' intensity model
        (``Scenario.dp_exact`` false: the limit order book, the OU mid) those expectations are the
        *intensity model's* with the config's sigma, A, k, not the env's: they are reported as
        ``objective_model`` (``objective_exact`` is None), ``v0`` is that model's optimum, and
        ``metadata["baseline_model"]`` says so (``Scenario.model_note``). On the intensity market
        itself a value is exact only when the DP is exact for the config
        (:func:`mmgym.baselines.inexact_reason`: a tick with a mid that leaves the tick grid; or
        the DP refuses the objective): otherwise ``objective_exact`` is None for every agent,
        ``metadata["not_exact"]`` gives the reason once and ``metadata["optimal_exact"]`` is false.
        Where ``optimal`` reads state the agent does not observe (a hidden regime,
        ``Scenario.optimal_label``), its metrics and ``metadata["optimal_label"]`` carry the label
        (an oracle: an upper bound, not an achievable optimum).
    """
    from ..baselines import DepthPolicy, inexact_reason, policy_value
    from ..baselines.tuned import check_evaluation_seeds
    from ..scenarios import get as get_scenario

    if not agents:
        raise ConfigError("no agents to evaluate")
    bc = baselines_config if baselines_config is not None else BaselinesConfig()
    check_evaluation_seeds(seed, episodes, bc.tuning)  # the tuned baselines' seeds stay unseen
    names = list(agents)
    reference = default_reference(env_config, names, reference)
    policies = {name: _resolve(name, pol, env_config, bc) for name, pol in agents.items()}
    batches: dict[str, EpisodeBatch] = {}
    for name, pol in policies.items():
        if progress is not None:
            progress(name)
        batches[name] = run_policy(env_config, pol, episodes, seed, num_envs=num_envs, audit=audit)
    metrics: dict[str, dict[str, Any]] = {}
    ref = batches[reference]
    scenario = get_scenario(env_config.id)
    exact_env = scenario.dp_exact
    # on the intensity market: why the DP's values are not exact for this config, or None
    not_exact = inexact_reason(env_config) if exact_env else None
    for name, batch in batches.items():
        m = summarize(batch, bc.gamma)
        for f, fname in enumerate(batch.factor_names or ()):  # a factor model: mean |exposure|
            for key_, x in ((f"abs_exposure_{fname}", batch.abs_factor_exposure[:, f]),
                            (f"final_abs_exposure_{fname}", np.abs(batch.final_factor_exposure[:, f]))):
                m[f"{key_}_mean"], _, m[f"{key_}_se"] = mean_se(x)
        if batch.alerts_breach is not None:  # risk limits: mean alerts per episode
            m["alerts_breach_mean"] = float(batch.alerts_breach.mean())
            m["alerts_warn_mean"] = float(batch.alerts_warn.mean())
        pol = policies[name]
        m["kind"] = "baseline" if isinstance(pol, DepthPolicy) else "policy"
        if isinstance(pol, DepthPolicy):
            m["params"] = pol.report()
            value = None
            if not_exact is None:
                try:
                    exact = getattr(pol, "exact_objective", None)  # a policy that scores itself
                    value = exact() if exact is not None else policy_value(
                        env_config, *pol.tables(), *(pol.size_tables() or ()))
                except ConfigError as exc:  # the DP's refusals (a CARA objective)
                    if exact_env:
                        not_exact = str(exc)
            m["objective_exact"] = value if exact_env else None
            if not exact_env:
                m["objective_model"] = value
            if pol.v0 is not None:
                m["v0"] = float(pol.v0)
                label = getattr(pol, "label", None)
                if label is not None:  # reads state the agent does not observe (a hidden regime)
                    m["label"] = label
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
    note = scenario.model_note(env_config)
    if note is not None:
        metadata["baseline_model"] = note
    if not_exact is not None:
        metadata["not_exact"] = not_exact
    # the env's optimum (its V0 heads the table), not a policy whose v0 is another model's value
    opt = next((p for p in policies.values() if isinstance(p, DepthPolicy) and p.v0 is not None
                and getattr(p, "optimum_of_env", True)), None)
    if opt is not None:
        metadata["optimal_v0"] = float(opt.v0)
        metadata["optimal_exact"] = bool(opt.exact) and exact_env
        if getattr(opt, "label", None) is not None:
            metadata["optimal_label"] = opt.label
    return EvaluationResult(metrics, batches, policies, reference, metadata)


def aggregate_seeds(result: EvaluationResult, members: Sequence[str], level: float = 0.95) -> dict[str, Any]:
    """The metrics of one agent trained over several seeds, from its per-seed runs in ``result``.

    ``members`` are the agent names of the seeds' models in ``result`` (at least two), all run on
    the same episodes as the reference (common random numbers). ``objective_mean`` is the mean over
    seeds of the per-seed means; ``objective_se`` the episodes' standard error (of the seed-averaged
    objective per episode); ``objective_seeds_std`` and ``objective_seeds_ci95`` the spread of the
    per-seed means and their t-interval (S - 1 degrees of freedom) (:func:`~.stats.across_seeds`).
    ``objective_diff_*`` (and ``pnl_diff_*``) are the paired difference against the reference: the
    mean over seeds of the per-seed paired means, its SE combining training and episode noise, the
    t-interval with Welch–Satterthwaite degrees of freedom ``objective_diff_dof``
    (:func:`~.stats.paired_across_seeds`). Every other number is the mean over seeds of the
    per-seed values. ``seeds`` is S.

    Raises:
        ConfigError: fewer than two members, or the reference among them.
    """
    members = list(members)
    if len(members) < 2:
        raise ConfigError(f"aggregate_seeds: an agent over seeds needs >= 2 runs (got {members})")
    if result.reference in members:
        raise ConfigError(f"--reference {result.reference!r}: one seed of an agent over seeds cannot be "
                          "the reference of its own aggregate")
    per_seed = [result.metrics[m] for m in members]
    out: dict[str, Any] = {}
    for key, value in per_seed[0].items():
        if isinstance(value, (int, float)) and not isinstance(value, bool) and key != "episodes":
            out[key] = float(np.mean([m[key] for m in per_seed]))
        elif key not in ("objective_diff_ci95", "pnl_diff_ci95"):
            out[key] = value
    ref = result.batches[result.reference]
    for metric in ("objective", "pnl"):
        x = np.stack([getattr(result.batches[m], metric) for m in members])
        a = across_seeds(x, level)
        out[f"{metric}_mean"], out[f"{metric}_se"] = a["mean"], a["se"]
        out[f"{metric}_seeds_std"], out[f"{metric}_seeds_ci95"] = a["seeds_std"], a["seeds_ci95"]
        d = paired_across_seeds(x, getattr(ref, metric), level)
        out[f"{metric}_diff_mean"], out[f"{metric}_diff_se"] = d["mean"], d["se"]
        out[f"{metric}_diff_ci95"], out[f"{metric}_diff_dof"] = d["ci95"], d["dof"]
        out[f"{metric}_diff_se_seeds"], out[f"{metric}_diff_se_episodes"] = d["se_seeds"], d["se_episodes"]
    out["seeds"] = len(members)
    return out


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
    from ..baselines import DepthPolicy

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
    base = market.scenario.obs  # the ledger's six base features come first in every scenario
    for name in ("inventory", "fill_bid", "fill_ask", "mid_return"):
        obs[:, base[name]] = 0.0
    obs[:, base["time_left"]] = (n_steps - tg.ravel()) / n_steps
    obs[:, base["volatility"]] = 1.0
    actions = np.asarray(policy(obs), dtype=np.float64).reshape(n, market.action_dim)
    market.inventory[:, 0] = qg.ravel()
    market.step_count[:] = tg.ravel()
    # the episode's wealth accounting starts from the wealth at this (t, q)
    market.track.wealth0[:] = (market.inventory * market.field("mid")).sum(axis=1)
    buf = market.step(actions)
    col = market.scenario.aux
    return (buf.aux[:, col["depth_bid"]].reshape(tg.shape).copy(),
            buf.aux[:, col["depth_ask"]].reshape(tg.shape).copy())

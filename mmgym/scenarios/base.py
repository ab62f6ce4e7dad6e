"""What a scenario declares: the :class:`Scenario` base class.

A scenario module (``mmgym/scenarios/<name>.py``) holds, in one place:

- its config class (:class:`~mmgym.schema.EnvConfig`, or a subclass with its own sections);
- its parameter record: a numpy structured dtype with one sub-record per component and a
  :meth:`Scenario.pack` that fills it from a config;
- its per-row state (a ``NamedTuple`` of ``(num_envs, ...)`` arrays, :meth:`Scenario.new_state`);
- the names of its observation, aux, statistic and reward-term columns (:class:`~mmgym.sim.columns.Columns`
  extending the ledger's, so offsets are assigned, never numbered by hand);
- its processes and its two kernels (``step``, ``reset``) built on :mod:`mmgym.sim.skeleton`;
- its registration: env id, Gymnasium env classes, default baselines, and what the analytic
  baselines' model is to this env.

Everything above the kernels (:class:`~mmgym.envs.market.BatchMarket`, the Gymnasium envs, the
SB3 adapter, the baselines, evaluation, training) reads only this interface.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, NamedTuple, Sequence

import numpy as np
from gymnasium import spaces

from ..schema import EnvConfig
from ..sim import ledger
from ..sim.columns import Columns

__all__ = ["Scenario", "ActionLayout", "RegimeTable", "ArrivalTable", "DriverSpec", "edge_bins"]


class ActionLayout(NamedTuple):
    """Which action columns are what, for ``K`` assets: depths (or their normalised actions) of the
    bids ``bid``, of the asks ``ask``, market orders ``hedge`` (None without the hedge action), and
    the quoted lots ``size_bid``, ``size_ask`` (None without ``action.quote_size``)."""

    bid: slice
    ask: slice
    hedge: slice | None
    size_bid: slice | None = None
    size_ask: slice | None = None


class RegimeTable(NamedTuple):
    """Markov regimes as arrays: what the exact DP reads (:meth:`Scenario.dp_regimes`).

    Attributes:
        sigma, a_bid, a_ask, k_bid, k_ask, xi: (R,) float64 per-regime parameters.
        P: (R, R) float64 one step's transition matrix. initial: the starting regime.
    """

    sigma: np.ndarray
    a_bid: np.ndarray
    a_ask: np.ndarray
    k_bid: np.ndarray
    k_ask: np.ndarray
    xi: np.ndarray
    P: np.ndarray
    initial: int


class ArrivalTable(NamedTuple):
    """Arrival classes of the order flow, as arrays: what the exact DP reads besides the regimes
    (:meth:`Scenario.dp_arrivals`; :mod:`mmgym.baselines.optimal`, "Arrival classes").

    In regime r, class c happens with probability ``prob[r, c]``; in it our bid can fill only if
    ``bid_open[c]`` (a sell market order arrived) and our ask only if ``ask_open[c]``, each then
    with probability ``min(1, e^{-k delta})``... in the DP's form ``p = min(cap, c e^{-k delta})``
    unconditionally; the next regime is drawn from ``trans[r, c]``; the mid drifts by ``drift[r]``
    per step in expectation.

    Attributes:
        prob: (R, C) float64. bid_open, ask_open: (C,) float64 in {0, 1}. trans: (R, C, R) float64.
        c_b, c_a, cap_b, cap_a: (R,) float64, the fill probability ``min(cap, c e^{-k delta})``.
        drift: (R,) float64, E[dS] per step (price units).
    """

    prob: np.ndarray
    bid_open: np.ndarray
    ask_open: np.ndarray
    trans: np.ndarray
    c_b: np.ndarray
    c_a: np.ndarray
    cap_b: np.ndarray
    cap_a: np.ndarray
    drift: np.ndarray


class DriverSpec(NamedTuple):
    """The hidden driver of a scenario's market, binned: what the glass box
    (:mod:`mmgym.evaluation.glass_box`) plots the agent's quotes against.

    Attributes:
        name: what the driver is (an axis label), e.g. ``"regime"``.
        values: ``market -> (N,) float64``, the driver of every row, read *before* a step (a state
            field, the step count, ...).
        labels: the bins' labels, in plotting order; TensorBoard tag parts, so letters, digits
            and ``_-.`` only.
        bin_of: ``values (N,) -> (N,) int64``, the bin of each value (``-1``: in no bin).
        note: one line saying what the bins are (a figure's caption), or ``""``.
    """

    name: str
    values: Callable[[Any], np.ndarray]
    labels: tuple[str, ...]
    bin_of: Callable[[np.ndarray], np.ndarray]
    note: str = ""


def edge_bins(edges: Sequence[float]) -> Callable[[np.ndarray], np.ndarray]:
    """A :attr:`DriverSpec.bin_of` rule: bin i holds ``edges[i] <= v < edges[i + 1]`` (ascending
    edges; values outside ``[edges[0], edges[-1])`` are in no bin, -1)."""
    e = np.asarray(edges, dtype=np.float64)

    def bin_of(values: np.ndarray) -> np.ndarray:
        v = np.asarray(values, dtype=np.float64)
        b = np.searchsorted(e, v, side="right").astype(np.int64) - 1
        b[(v < e[0]) | (v >= e[-1]) | np.isnan(v)] = -1
        return b

    return bin_of


class Scenario:
    """Base class of a scenario's declaration (module docstring). Subclasses set the class
    attributes and override what differs; one instance per module is registered as ``SCENARIO``.

    Attributes:
        id: the Gymnasium env id.
        config_class: the env config class (``env.id`` selects it when a config is loaded).
        defaults: the config ``gym.make(id)`` uses when no config is given (sections merged into
            the config class's defaults).
        terms, aux, stats, obs: the column layouts of the kernels' outputs (``obs``: the widest
            observation; :meth:`obs_columns` gives a config's).
        num_assets: K, the asset axis of the per-row state (``(num_envs, K)`` arrays).
        state_fields: per-env state exposed through ``get_attr``/``set_attr`` of the vector adapters.
        per_asset_fields: state fields shaped ``(num_envs, K, ...)``; kernels see them flat.
        params_dtype: the parameter record's structured dtype.
        step_kernel, reset_kernel: the scenario's numba kernels (:mod:`mmgym.sim.skeleton`):
            ``step(track, state, params, actions, out, work, lo, hi) -> bad row or -1`` and
            ``reset(mask, track, state, params, out)``.
        parallel_kernel: optional ``step`` over row chunks on all cores (same results), or None.
        sized_step_kernel: ``step`` with quote sizes (``action.quote_size`` > 0), or None: the
            scenario does not support them (:class:`~mmgym.envs.market.BatchMarket` refuses the
            config with one line). A separate kernel, so that each compiles only when used.
        default_baselines: what ``evaluate.py`` compares by default on this env.
        dp_exact: the analytic baselines' intensity model *is* this env, so ``optimal`` and the
            exact policy values (:func:`mmgym.baselines.evaluate_tables`) are exact here.
        audit: per-fill records can be reconstructed from the aux columns (intensity rules).
    """

    id: str = ""
    config_class: type[EnvConfig] = EnvConfig
    defaults: Mapping[str, Any] = {}
    terms: Columns = ledger.TERMS
    aux: Columns = ledger.AUX
    stats: Columns = ledger.STATS
    obs: Columns = ledger.OBS
    num_assets: int = 1
    state_fields: tuple[str, ...] = ()
    per_asset_fields: tuple[str, ...] = ()
    params_dtype: np.dtype
    step_kernel: Callable[..., int]
    reset_kernel: Callable[..., None]
    parallel_kernel: Callable[..., int] | None = None
    sized_step_kernel: Callable[..., int] | None = None
    default_baselines: tuple[str, ...] = ("as", "symmetric", "glft", "optimal")
    dp_exact: bool = False
    audit: bool = False

    # --------------------------------------------------------------------- config ---
    def __reduce__(self):
        # scenarios are registry singletons: pickled by id, loaded as the registered instance
        from . import get

        return get, (self.id,)

    def default_config(self) -> EnvConfig:
        """The config ``gym.make(id)`` uses when none is given (:attr:`defaults`)."""
        return self.config_class.model_validate({**self.defaults, "id": self.id})

    def coerce(self, config: EnvConfig) -> EnvConfig:
        """``config`` as an instance of :attr:`config_class` (validated again if it is not one)."""
        if isinstance(config, self.config_class):
            return config
        return self.config_class.model_validate(config.model_dump())

    def check(self, config: EnvConfig) -> None:
        """Cross-section checks the schema cannot make; raise ConfigError (one line)."""

    #: the scenario has an order book to draw (:meth:`ladder`)
    has_ladder: bool = False

    def ladder(self, market: Any, row: int, half_width: int) -> dict[str, Any] | None:
        """The book of env ``row`` around the touch, for rendered frames: ``price`` (levels,
        ascending), ``tick``, ``bid_bg``/``ask_bg`` and ``bid_own``/``ask_own`` (lots per level),
        ``mid``, and ``orders``: one ``(price, lots, lots_ahead, side)`` per order of ours
        (side 0 bid, 1 ask). None: no book (the default)."""
        return None

    def check_state(self, market: Any) -> None:
        """After a kernel call: raise ValueError (one line) if the state reports a refused
        operation (the book's ``error`` flags); nothing to check by default."""

    def obs_columns(self, config: EnvConfig) -> Columns:
        """The observation columns of ``config`` (default :attr:`obs`; a scenario whose observation
        width depends on its config, the regimes' one-hot, returns a prefix of :attr:`obs`)."""
        return self.obs

    def baselines(self) -> Mapping[str, Callable[..., Any]] | None:
        """The scenario's own baselines, ``name -> builder(env_config, baselines_config)``, replacing
        :data:`mmgym.baselines.BASELINES` on this env; None (default): the shared ones."""
        return None

    def model_note(self, config: EnvConfig) -> str | None:
        """When the analytic baselines' model is not this env: one line saying what it is."""
        return None

    def dp_regimes(self, config: EnvConfig) -> RegimeTable | None:
        """The Markov regimes the exact DP runs over, or None: one regime, the ``market``
        section's (the intensity market)."""
        return None

    def dp_arrivals(self, config: EnvConfig) -> ArrivalTable | None:
        """The arrival classes the exact DP runs over, or None: one class (the flow always
        arrives, ``p = min(1, A dt e^{-k delta})``) whose regime moves by :meth:`dp_regimes`' P."""
        return None

    def dp_state(self, market: Any) -> np.ndarray:
        """(N,) int64: each row's index on the DP's regime axis (:meth:`dp_regimes`): the market's
        ``regime`` field by default."""
        return market.field("regime")

    def dp_schedule(self, config: EnvConfig) -> tuple[np.ndarray, np.ndarray] | None:
        """Deterministic per-step parameters the exact DP runs over, or None (none vary with t):
        ``(xi_t, s_t)``, each (n_steps,) float64, the jump on fill and the std of an extra gaussian
        jump of the mid on step t (:mod:`mmgym.scenarios.events`)."""
        return None

    def optimal_label(self, config: EnvConfig) -> str | None:
        """What ``optimal`` is when it is not an achievable policy (it reads state the agent does
        not observe: a hidden regime), or None."""
        return None

    def driver(self, config: EnvConfig) -> DriverSpec | None:
        """The hidden driver the agent's quotes should respond to (a regime, the time to an event),
        binned (:class:`DriverSpec`), or None: nothing drives this market but (t, q)."""
        return None

    # ------------------------------------------------------------------ parameters ---
    def pack(self, config: EnvConfig, raw_depths: bool = False) -> np.ndarray:
        """The parameter record (a 1-element array of :attr:`params_dtype`)."""
        raise NotImplementedError

    def new_state(self, config: EnvConfig, num_envs: int, rng: np.ndarray) -> NamedTuple:
        """The per-row market state of ``num_envs`` rows (``rng``: the shared (N, 2) streams)."""
        raise NotImplementedError

    # ---------------------------------------------------------------------- spaces ---
    def observation_space(self, config: EnvConfig) -> spaces.Box:
        """One env's observation space."""
        raise NotImplementedError

    def assets(self, config: EnvConfig) -> int:
        """K, the number of assets of ``config`` (default :attr:`num_assets`; a scenario whose K is
        set by its config, the portfolio, overrides this)."""
        return self.num_assets

    def aux_columns(self, config: EnvConfig) -> Columns:
        """The aux columns of ``config`` (default :attr:`aux`; the portfolio appends per-asset ones)."""
        return self.aux

    def _extra_columns(self, config: EnvConfig, raw_depths: bool) -> int:
        """Columns between the two quote columns and the hedge: as_hybrid's extra half-spread."""
        return self.assets(config) if (config.action.spread and not raw_depths) else 0

    def action_layout(self, config: EnvConfig, raw_depths: bool = False) -> ActionLayout:
        """Action columns: K bid depths (as_hybrid: gammas), K ask depths (skews), then K extra
        half-spreads with ``action.spread`` (normalised actions only), then K market orders with the
        hedge action, then K bid and K ask sizes with ``action.quote_size`` > 0
        (:mod:`mmgym.sim.quotes`)."""
        k = self.assets(config)
        h = 2 * k + self._extra_columns(config, raw_depths)
        sz = h + (k if config.action.hedge else 0)
        sized = config.action.quote_size > 0
        return ActionLayout(slice(0, k), slice(k, 2 * k), slice(h, h + k) if config.action.hedge else None,
                            slice(sz, sz + k) if sized else None,
                            slice(sz + k, sz + 2 * k) if sized else None)

    def action_space(self, config: EnvConfig, raw_depths: bool = False) -> spaces.Box:
        """[-1, 1]^d (normalised), or unbounded raw depths (and lots) for the baselines."""
        dim = ((3 if config.action.hedge else 2) + (2 if config.action.quote_size > 0 else 0)) * self.assets(config) \
            + self._extra_columns(config, raw_depths)
        if raw_depths:
            return spaces.Box(-np.inf, np.inf, shape=(dim,), dtype=np.float64)
        return spaces.Box(-1.0, 1.0, shape=(dim,), dtype=np.float32)

    #: the columns of this scenario's per-fill records when they are not the runner's
    #: (:data:`mmgym.evaluation.runner.AUDIT_COLUMNS`); then :meth:`audit_step` writes them
    audit_columns: tuple[str, ...] | None = None

    def audit_step(self, config: EnvConfig, records: list, start: int, t: int, aux: np.ndarray,
                   col: Mapping[str, int], cash0: np.ndarray, inv0: np.ndarray) -> None:
        """Append step ``t``'s per-fill records (tuples in :attr:`audit_columns` order, agent left
        blank; episode ``start + row``) from the step's aux columns and the cash (N,) and
        inventories (N, K) before it. Only called when :attr:`audit_columns` is set."""
        raise NotImplementedError

    #: path key -> aux column prefix: the per-asset columns ``<prefix>_<a>`` the evaluation records
    #: for its sample episode when K > 1 (:func:`mmgym.evaluation.run_policy`); empty: none
    asset_path_columns: Mapping[str, str] = {}

    def exposure_reader(self, config: EnvConfig
                        ) -> tuple[list[str], Callable[[np.ndarray, Mapping[str, int]], np.ndarray]] | None:
        """A factor model's exposures after a step, for the evaluation: ``(names, read)`` with
        ``read(aux, col)`` the (N, F) exposures of the step's aux rows (``col``: aux column of each
        name), F = ``len(names)``; None (default) when the scenario has no factor model."""
        return None

    def has_alerts(self, config: EnvConfig) -> bool:
        """The config sets risk limits whose alerts :meth:`alert_step` reports (default: none)."""
        return False

    def alert_step(self, config: EnvConfig, records: list, start: int, t: int, aux: np.ndarray,
                   col: Mapping[str, int]) -> None:
        """Append step ``t``'s alerts (dicts: ``episode``, ``step``, ``asset`` (an index or
        ``"factor"``), ``limit_name``, ``alert`` (``breach``/``warn``), ``value``, ``limit``) from the
        step's aux columns. Only called when :meth:`has_alerts`."""
        raise NotImplementedError

    def unused_aux(self, config: EnvConfig, raw_depths: bool = False) -> frozenset[str]:
        """Aux columns that carry nothing under this config (left out of ``info``)."""
        unused = set()
        if raw_depths or config.action.mode != "as_hybrid":
            unused |= {"gamma", "skew"}
        if not config.action.hedge:
            unused.add("hedge_lots")
        return frozenset(unused)

    # ----------------------------------------------------------------- state fields ---
    def field_array(self, market: Any, name: str) -> np.ndarray:
        """The (N, ...) array behind a state field (default: the state's, else the track's)."""
        if name == "step":
            return market.track.step
        for holder in (market.state, market.track):
            if name in type(holder)._fields:
                return getattr(holder, name)
        raise AttributeError(name)

    def get_field(self, market: Any, name: str, rows: Sequence[int]) -> list[Any]:
        """Per-env values of a state field at ``rows`` (scalars when one value per row)."""
        arr = self.field_array(market, name)
        return [arr[r].item() if np.size(arr[r]) == 1 else arr[r].copy() for r in rows]

    def set_field(self, market: Any, name: str, value: Any, rows: Sequence[int]) -> None:
        """Write a state field at ``rows``."""
        arr = self.field_array(market, name)
        for r in rows:
            arr[r] = value

    def __repr__(self) -> str:
        return f"<scenario {self.id}>"

"""``mmgym/LOBMarketMaking-v0``: market making in the numba limit order book (:mod:`mmgym.sim.book`).

Each env is a limit order book on a tick grid whose background flow follows Cont, Stoikov &
Talreja (2010), optionally with informed market orders (Glosten & Milgrom 1985, Kyle 1985); the
agent keeps one bid and one ask of ``book.quote_lots`` lots (or the action's 0..m with
``action.quote_size``) in FIFO queues.
One step covers ``market.dt`` of book time, every event of which the kernel simulates (the rules
are :class:`LOBMarketMakingEnv`'s manual). This module is the whole scenario: its config section
(:class:`BookConfig`), parameter record, per-row state, columns, processes, kernels and
declaration (:data:`SCENARIO`) over the step skeleton (:mod:`mmgym.sim.skeleton`).
"""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

import numpy as np
from gymnasium import spaces
from numba import njit
from pydantic import Field, model_validator

from ..envs.base import ScenarioEnv, ScenarioVectorEnv
from ..schema import EnvConfig, Section
from ..sim import book as K
from ..sim.columns import Columns
from ..sim.jit import entry, kernel
from ..sim.ledger import AUX, OBS, REWARD_DTYPE, STATS, Outcome, pack_reward
from ..sim.processes import MARKET_DTYPE, OBS_DTYPE, pack_market, pack_obs
from ..sim.quotes import ACTION_DTYPE, action_depths, action_hedge, action_lots, first_bad_row, pack_action
from ..sim.skeleton import reset_rows, reset_track, step_rows
from .base import DriverSpec, Scenario, edge_bins

__all__ = ["BookConfig", "InformedFlow", "LOBEnvConfig", "LOB_DEFAULTS", "default_lob_config", "SCENARIO",
           "LOBMarketMakingEnv", "LOBMarketMakingVectorEnv"]

ENV_ID = "mmgym/LOBMarketMaking-v0"


# ------------------------------------------------------------------------------ config ---
#: theta(1..10) of Cont, Stoikov & Talreja (2010), Table 1 (cancellations per order per second).
CST_THETA = (0.71, 0.81, 0.68, 0.56, 0.47, 0.37, 0.30, 0.29, 0.32, 0.30)


class InformedFlow(Section):
    """Informed market orders (:mod:`mmgym.sim.book`, "Informed market orders"; Glosten & Milgrom
    1985, Kyle 1985): a latent efficient price moves as a Brownian motion and a fraction of the
    background market orders trades toward it, so the mid follows it with a lag."""

    fraction: float = Field(0.0, ge=0.0, le=1.0)
    """Fraction of the background market orders that are informed (0: off; the total market rate
    ``book.market_rate`` is split, not added to)."""
    sigma: float = Field(0.0, ge=0.0)
    """Volatility of the latent value, price units per sqrt(time unit)."""
    size_mean: float | None = Field(None, ge=1.0)
    """Mean of the informed orders' geometric size, lots (None: ``book.market_size_mean``)."""


class BookConfig(Section):
    """The numba limit order book of mmgym/LOBMarketMaking-v0 and its background flow.

    Rates are per time unit of ``market.dt`` (seconds in ``configs/lob.yaml``); sizes in lots.
    Defaults follow the shape of Cont, Stoikov & Talreja (2010, Table 1: lambda(i) = k / i^alpha
    with alpha = 0.52, their theta(i) profile) rescaled so the book is liquid: the default flow
    gives a 1-2 tick spread most of the time, mean depth rising away from the touch and
    fat-tailed mid returns (docs/LOB.md, tests/test_book.py::test_stylised_facts).
    """

    n_levels: int = Field(256, ge=16)
    """Levels per side in each env's dense tick ladder (the window around the reference price)."""
    max_orders: int = Field(4, ge=2)
    """Order record slots per env (the env uses one bid and one ask)."""
    flow_levels: int = Field(10, ge=1)
    """K: limit orders arrive at, and cancels act on, distances 1..K ticks from the opposite best."""
    limit_k: float = Field(3.84, ge=0.0)
    """Limit-order arrival rate at distance i: lambda(i) = limit_k / i^limit_alpha (CST 2010)."""
    limit_alpha: float = Field(0.52, ge=0.0)
    """Power-law exponent of lambda(i) (CST 2010 fit: 0.52)."""
    limit_rates: list[float] | None = None
    """Explicit lambda(1..K) (overrides limit_k / limit_alpha; its length sets K)."""
    cancel_rates: list[float] = Field(default_factory=lambda: [t / 2 for t in CST_THETA])
    """theta(1..K): cancel rate per resting background lot at distance i (last value repeats)."""
    market_rate: float = Field(3.0, ge=0.0)
    """mu: background market orders per time unit, per side."""
    market_rate_buy: float | None = Field(None, ge=0.0)
    """Buy-side mu (defaults to market_rate)."""
    market_rate_sell: float | None = Field(None, ge=0.0)
    """Sell-side mu (defaults to market_rate)."""
    limit_size_mean: float = Field(1.0, ge=1.0)
    """Mean of the geometric limit-order (and cancel) size, lots (1: unit orders as in CST)."""
    market_size_mean: float = Field(3.0, ge=1.0)
    """Mean of the geometric market-order size, lots."""
    max_size: int = Field(1000, ge=1)
    """Cap on any drawn order size, lots."""
    queue_model: Literal["pessimistic", "power"] = "pessimistic"
    """How background cancels move our queue position: 'pessimistic' (always from behind us) or
    'power' (from segment j w.p. s_j^n / sum s^n; hftbacktest's PowerProbQueueFunc)."""
    queue_power: float = Field(2.0, ge=0.0)
    """Exponent n of the 'power' queue model."""
    recentre_margin: int | None = Field(None, ge=1)
    """Re-centre when a best comes within this many levels of a window edge (None: K + 2)."""
    initial_spread_ticks: int = Field(1, ge=1)
    """Spread of the deterministic initial book (before the warm-up)."""
    warmup: float = Field(30.0, ge=0.0)
    """Background flow simulated at each reset before the episode starts (time units)."""
    quote_lots: int = Field(1, ge=1)
    """Size of each of our quotes (lots), clipped so |q| never exceeds market.max_inventory (must
    be 1 with action.quote_size, where the action chooses the lots)."""
    entry_latency: float = Field(0.0, ge=0.0)
    """Order-entry latency: our orders of a step reach the book this long after its start (< dt)."""
    entry_latency_events: int = Field(0, ge=0)
    """... and then after this many more background events (capped at the end of the step)."""
    obs_delay_steps: int = Field(0, ge=0)
    """Observation delay: market features and the mid the quotes refer to are this many steps old."""
    imbalance_levels: int = Field(5, ge=1)
    """Depth imbalance feature: levels from each best summed."""
    informed: InformedFlow = Field(default_factory=InformedFlow)
    """Informed market orders (off by default)."""
    toxicity_halflife: float = Field(10.0, gt=0.0)
    """Half-life, in background market orders, of the signed market-order flow feature
    (observation column ``mo_flow``)."""

    @model_validator(mode="after")
    def _check(self) -> BookConfig:
        if self.limit_rates is not None:
            if not self.limit_rates or any(r < 0 for r in self.limit_rates):
                raise ValueError("limit_rates must be a non-empty list of rates >= 0")
        if not self.cancel_rates or any(r < 0 for r in self.cancel_rates):
            raise ValueError("cancel_rates must be a non-empty list of rates >= 0")
        if 2 * (self.margin + self.flow_K) >= self.n_levels:
            raise ValueError(f"n_levels ({self.n_levels}) too small for K={self.flow_K} and margin {self.margin}")
        return self

    @property
    def flow_K(self) -> int:
        """K, the number of flow levels."""
        return len(self.limit_rates) if self.limit_rates is not None else self.flow_levels

    @property
    def margin(self) -> int:
        """Re-centring margin in levels."""
        return self.recentre_margin if self.recentre_margin is not None else self.flow_K + 2

    def lam(self) -> np.ndarray:
        """lambda(1..K), (K,) float64."""
        if self.limit_rates is not None:
            return np.asarray(self.limit_rates, dtype=np.float64)
        i = np.arange(1, self.flow_K + 1, dtype=np.float64)
        return self.limit_k / i**self.limit_alpha

    def theta(self) -> np.ndarray:
        """theta(1..K), (K,) float64 (the last configured value repeats)."""
        th = list(self.cancel_rates)[: self.flow_K]
        th += [th[-1]] * (self.flow_K - len(th))
        return np.asarray(th, dtype=np.float64)

    def flow_record(self, tick_size: float = 1.0) -> np.ndarray:
        """The engine's flow parameter record (:data:`mmgym.sim.book.FLOW_DTYPE`); ``tick_size``
        (``market.tick_size``) converts ``informed.sigma`` from price units to ticks."""
        mu_b = self.market_rate if self.market_rate_buy is None else self.market_rate_buy
        mu_s = self.market_rate if self.market_rate_sell is None else self.market_rate_sell
        inf = self.informed
        return K.flow_params(mu_b, mu_s, self.limit_size_mean, self.market_size_mean, self.max_size,
                             self.queue_model, self.queue_power, self.margin,
                             informed_fraction=inf.fraction, informed_sigma_ticks=inf.sigma / tick_size,
                             informed_size_mean=inf.size_mean,
                             toxicity_halflife=self.toxicity_halflife)


class LOBEnvConfig(EnvConfig):
    """The env config of ``mmgym/LOBMarketMaking-v0``: the shared sections plus ``book``."""

    id: Literal["mmgym/LOBMarketMaking-v0"] = ENV_ID
    """Registered environment id."""
    book: BookConfig = Field(default_factory=BookConfig)
    """The limit order book and its background flow."""


#: ``gym.make(ENV_ID)`` without a config (the content of configs/lob.yaml): one-second steps over
#: five minutes, a 0.01 tick at 100, and sigma, A, k (the as_hybrid rule's and the baselines') from
#: ``python -m mmgym.calibrate --grid quantile --duration 3600 --seed 0`` on the default book (docs/LOB.md).
LOB_DEFAULTS: dict[str, Any] = {
    "market": {"s0": 100.0, "tick_size": 0.01, "dt": 1.0, "horizon": 300.0, "max_inventory": 10,
               "sigma": 0.0251, "A": 3.06, "k": 60.3},
    "action": {"skew_max": 0.02, "offset_min": -0.01, "offset_max": 0.05, "gamma_min": 0.01,
               "gamma_max": 100.0},
}


def default_lob_config(**sections: Any) -> LOBEnvConfig:
    """The LOB env's default config (:data:`LOB_DEFAULTS`), with section overrides merged in."""
    data: dict[str, Any] = {k: dict(v) for k, v in LOB_DEFAULTS.items()}
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key].update(value)
        else:
            data[key] = value
    return LOBEnvConfig.model_validate({**data, "id": ENV_ID})


# ----------------------------------------------------------------------------- columns ---
#: The observation: the ledger's six features (market ones ``book.obs_delay_steps`` old), then the book's.
OBS_COLUMNS = OBS.extend([
    ("spread", "spread in ticks"),
    ("imbalance", "(bid - ask) / (bid + ask) lots over book.imbalance_levels from each best"),
    ("queue_bid", "our bid's lots ahead / its level's volume; -1 without a resting bid"),
    ("queue_ask", "our ask's lots ahead / its level's volume; -1 without a resting ask"),
    ("flow", "EWMA(buy - sell traded lots) / EWMA(buy + sell traded lots)"),
    ("mo_flow", "signed background market-order lots / their total, EWMA over book.toxicity_halflife orders"),
    ("mo_size", "last background market order's size / lots at the best it hit, capped at MO_SIZE_CAP"),
    ("mo_levels", "levels the last background market order walked / MO_LEVELS_CAP, capped at 1"),
])
AUX_COLUMNS = AUX.extend([
    ("spread_ticks", "best ask - best bid at the end of the step (ticks)"),
    ("queue_bid", "our bid's queue position at the end of the step (-1: none)"),
    ("queue_ask", "our ask's queue position at the end of the step (-1: none)"),
    ("events", "background events simulated this step"),
    ("taker_lots", "lots we traded as taker (hedge and marketable quotes)"),
    ("size_bid", "lots our bid asked for after the inventory bound (0: not quoting); action.quote_size > 0"),
    ("size_ask", "lots our ask asked for after the inventory bound (0: not quoting); action.quote_size > 0"),
])
STAT_COLUMNS = STATS.extend([("events", "background events simulated"),
                             ("taker_lots", "lots traded as taker")])
#: The ring buffer of market features (the observation delay).
FEATURES = Columns([("mid", "mid price"), ("vol", "realised vol / sigma"),
                    ("ret", "last mid change / (sigma sqrt(dt)), clipped"), ("spread", "ticks"),
                    ("imbalance", "depth imbalance"), ("flow", "signed trade flow"),
                    ("mo_flow", "signed market-order flow"), ("mo_size", "market order size / depth"),
                    ("mo_levels", "levels walked / cap")])
#: Caps of the toxicity features: size / depth at the best is clipped to this; levels walked are
#: divided by this and clipped to 1 (a sweep of 5 or more levels reads 1).
MO_SIZE_CAP = 10.0
MO_LEVELS_CAP = 5.0

O_SPREAD = OBS_COLUMNS["spread"]
O_IMBALANCE = OBS_COLUMNS["imbalance"]
O_QUEUE_BID = OBS_COLUMNS["queue_bid"]
O_QUEUE_ASK = OBS_COLUMNS["queue_ask"]
O_FLOW = OBS_COLUMNS["flow"]
O_MO_FLOW = OBS_COLUMNS["mo_flow"]
O_MO_SIZE = OBS_COLUMNS["mo_size"]
O_MO_LEVELS = OBS_COLUMNS["mo_levels"]
A_SPREAD_TICKS = AUX_COLUMNS["spread_ticks"]
A_QUEUE_BID = AUX_COLUMNS["queue_bid"]
A_QUEUE_ASK = AUX_COLUMNS["queue_ask"]
A_EVENTS = AUX_COLUMNS["events"]
A_TAKER_LOTS = AUX_COLUMNS["taker_lots"]
A_SIZE_BID = AUX_COLUMNS["size_bid"]
A_SIZE_ASK = AUX_COLUMNS["size_ask"]
S_EVENTS = STAT_COLUMNS["events"]
S_TAKER_LOTS = STAT_COLUMNS["taker_lots"]
F_MID = FEATURES["mid"]
F_VOL = FEATURES["vol"]
F_RET = FEATURES["ret"]
F_SPREAD = FEATURES["spread"]
F_IMB = FEATURES["imbalance"]
F_FLOW = FEATURES["flow"]
F_MO_FLOW = FEATURES["mo_flow"]
F_MO_SIZE = FEATURES["mo_size"]
F_MO_LEVELS = FEATURES["mo_levels"]
N_FEATURES = len(FEATURES)
ST_FEES = STATS["fees"]

# ------------------------------------------------------------------------- parameters ---
#: The book component of the parameter record.
BOOK_DTYPE = np.dtype([
    ("quote_lots", np.int64),  # size of each of our quotes
    ("latency", np.float64),  # order-entry latency (time units, < dt)
    ("latency_events", np.int64),  # ... then this many more background events
    ("warmup", np.float64),  # background flow simulated at each reset
    ("centre_tick", np.int64),  # round(s0 / tick)
    ("init_spread", np.int64),  # spread of the deterministic initial book (ticks)
    ("imb_levels", np.int64),  # levels summed by the imbalance feature
])

PARAMS_DTYPE = np.dtype([("market", MARKET_DTYPE), ("reward", REWARD_DTYPE), ("action", ACTION_DTYPE),
                         ("obs", OBS_DTYPE), ("book", BOOK_DTYPE), ("flow", K.FLOW_DTYPE)])


def pack(config: LOBEnvConfig, raw_depths: bool = False) -> np.ndarray:
    """The scenario's parameter record (a 1-element structured array)."""
    m, bc = config.market, config.book
    p = np.zeros(1, dtype=PARAMS_DTYPE)
    p["market"] = pack_market(m)
    p["reward"] = pack_reward(config.reward)
    p["action"] = pack_action(config.action, raw_depths)
    p["obs"] = pack_obs(config.observation)
    bk = p["book"]
    bk["quote_lots"] = bc.quote_lots
    bk["latency"] = bc.entry_latency
    bk["latency_events"] = bc.entry_latency_events
    bk["warmup"] = bc.warmup
    bk["centre_tick"] = round(m.s0 / m.tick_size)
    bk["init_spread"] = bc.initial_spread_ticks
    bk["imb_levels"] = bc.imbalance_levels
    p["book"] = bk
    p["flow"] = bc.flow_record(m.tick_size)
    return p


class State(NamedTuple):
    """Per-row state of the book scenario (batch-first) and the flow's rate arrays.

    Attributes:
        book: the engine's :class:`~mmgym.sim.book.BookState` (its ``rng`` is the track's).
        flow_ewma: (N, 2) float64, EWMAs of signed (column 0) and total (1) traded lots per step.
        hist: (N, D + 1, N_FEATURES) float64, ring buffer of market features (``FEATURES``),
            D = ``book.obs_delay_steps``.
        lam, theta: (K,) float64, the flow's arrival and per-lot cancel rates (read only).
        tape: an empty :class:`~mmgym.sim.book.Tape` (the env records no tape).
        flow: (N, N_FLOW_STATE) float64, the flow state (:func:`mmgym.sim.book.new_flow_state`:
            the informed flow's latent value, the toxicity record). One array for all of it, and
            the two EWMAs in one: every kernel call passes the state by value.
    """

    book: K.BookState
    flow_ewma: np.ndarray
    hist: np.ndarray
    lam: np.ndarray
    theta: np.ndarray
    tape: K.Tape
    flow: np.ndarray


def new_state(config: LOBEnvConfig, num_envs: int, rng: np.ndarray) -> State:
    """The state of ``num_envs`` books (reset fills it)."""
    bc = config.book
    n = num_envs
    return State(book=K.new_book_state(n, bc.n_levels, bc.max_orders, rng=rng), flow_ewma=np.zeros((n, 2)),
                 hist=np.zeros((n, bc.obs_delay_steps + 1, N_FEATURES)),
                 lam=bc.lam(), theta=bc.theta(), tape=K.new_tape(0), flow=K.new_flow_state(n))


class Consts(NamedTuple):
    """The parameters one step needs, read once per kernel call."""

    tick: float
    sigma: float
    dt: float
    sqrt_dt: float
    n_steps: int
    n_steps_f: float
    sig2: float
    max_inv_f: float
    q_max: int
    q0: int
    var0: float
    maker_fee: float
    taker_fee: float
    decay: float
    quote_lots: int
    latency: float
    latency_events: int
    warmup: float
    centre_tick: int
    init_spread: int
    imb_levels: int
    margin: int


_BIG = np.int64(2**62)

# The processes below are out-of-line kernels (mmgym.sim.jit.kernel), not IR-level inlined: a step
# simulates ~60 book events per row, so a call costs little, and inlining them into the two
# kernels cost seconds of cold compile.


# --------------------------------------------------------------------------- processes ---
@njit(cache=True, inline="always")
def prepare(p):
    """Read the parameter record into :class:`Consts`."""
    m, bk = p.market, p.book
    return Consts(m.tick, m.sigma, m.dt, np.sqrt(m.dt), m.n_steps, float(m.n_steps), m.sigma * m.sigma,
                  float(m.max_inv), m.max_inv, m.q0, m.sigma ** 2 * m.dt, p.reward.maker_fee,
                  p.reward.taker_fee, p.obs.vol_decay, bk.quote_lots, bk.latency, bk.latency_events,
                  bk.warmup, bk.centre_tick, bk.init_spread, bk.imb_levels, p.flow.margin)


@kernel
def own_slot(b, i, side):
    """Slot of our (first) resting order on ``side``, or -1."""
    o = b.orders
    for j in range(o.shape[1]):
        if o[i, j, K.ORD_QTY] > 0 and o[i, j, K.ORD_SIDE] == side:
            return j
    return -1


@kernel
def queue_pos(b, i, side):
    """Our ``side`` order's lots ahead / its level's volume, or -1 without one."""
    j = own_slot(b, i, side)
    if j < 0:
        return -1.0
    idx = b.orders[i, j, K.ORD_PX] - b.lower_tick[i]
    tot = b.bg[i, side, idx] + b.own[i, side, idx]
    return b.orders[i, j, K.ORD_AHEAD] / tot if tot > 0 else 0.0


@njit(cache=True, inline="always")
def to_tick(x, lower, n_levels):
    """``x`` (a price in ticks, float) as an int64 tick, clamped to just outside the window
    ``[lower - 1, lower + L]`` (a quote there is rejected, or walks the whole window if it is
    marketable, as it would unclamped): an absurd raw depth cannot overflow the conversion."""
    lo = lower - 1.0
    hi = lower + n_levels + 0.0
    return np.int64(min(hi, max(lo, x)))


@njit(cache=True, inline="always")
def own_take(b, i, taker, qty, tick):
    """Our market order; returns (lots, impact cost vs the pre-trade mid in price units)."""
    pre2 = b.best[i, K.BID] + b.best[i, K.ASK]
    lim = K.NO_LIMIT_BUY if taker == K.BUY else K.NO_LIMIT_SELL
    f, notional, _ = K.take(b, i, taker, qty, lim, K.OWN_TAKER)
    cost2 = 2 * notional - f * pre2 if taker == K.BUY else f * pre2 - 2 * notional
    return f, 0.5 * cost2 * tick


class Extra(NamedTuple):
    """What the book's step adds to the ledger's :class:`~mmgym.sim.ledger.Outcome`."""

    events: int
    buy_vol: int
    sell_vol: int
    taker_lots: int
    size_bid: int
    size_ask: int


@kernel
def market_step(tr, st, p, c, qc, actions, work, i):
    """One step of row ``i`` (the rules in :class:`LOBMarketMakingEnv`'s manual)."""
    i = np.int64(i)  # one signature for the engine's kernels (the skeleton's row index is unsigned)
    b = st.book
    lam = st.lam
    theta = st.theta
    fp = p.flow
    tick = c.tick
    q = b.inventory[i]
    mid2_0 = b.best[i, K.BID] + b.best[i, K.ASK]
    w2_0 = 2 * b.cash_ticks[i] + q * mid2_0
    cnt = b.counters
    fb0 = cnt[i, K.C_OWN_FILLED_BID]
    fa0 = cnt[i, K.C_OWN_FILLED_ASK]
    ev0 = cnt[i, K.C_EVENTS]
    bv0 = cnt[i, K.C_BUY_VOL]
    sv0 = cnt[i, K.C_SELL_VOL]
    t0 = b.time[i]
    D = st.hist.shape[1]
    s_obs = st.hist[i, (tr.step[i] + 1) % D, F_MID]

    # quotes from the observed mid (the shared quote rule), mapped to ticks
    tau = (c.n_steps - tr.step[i]) * c.dt
    d_bid, d_ask, gamma, skew = action_depths(actions, i, qc, q, c.sig2, tau, work.gam, work.l_bid,
                                              work.l_ask)
    lower = b.lower_tick[i]
    n_levels = b.bg.shape[2]
    bid_tick = to_tick(np.floor((s_obs - d_bid) / tick + 1e-9), lower, n_levels)
    ask_tick = to_tick(np.ceil((s_obs + d_ask) / tick - 1e-9), lower, n_levels)
    if ask_tick <= bid_tick:
        ask_tick = bid_tick + 1
    v = action_hedge(actions, i, qc)

    # latency: the book moves before our orders arrive
    if c.latency > 0.0:
        K.run_flow(b, i, t0 + min(c.latency, c.dt), _BIG, lam, theta, fp, st.tape, st.flow)
    if c.latency_events > 0:
        K.run_flow(b, i, t0 + c.dt, c.latency_events, lam, theta, fp, st.tape, st.flow)

    # our operations: cancel moved quotes, hedge, then (re-)quote
    jb = own_slot(b, i, K.BID)
    if jb >= 0 and b.orders[i, jb, K.ORD_PX] != bid_tick:
        K.own_cancel(b, i, jb)
    ja = own_slot(b, i, K.ASK)
    if ja >= 0 and b.orders[i, ja, K.ORD_PX] != ask_tick:
        K.own_cancel(b, i, ja)
    impact_cost = 0.0
    taker_lots = np.int64(0)
    q = b.inventory[i]
    q_max = c.q_max
    if q + v > q_max:
        v = q_max - q
    elif q + v < -q_max:
        v = -q_max - q
    v_done = np.int64(0)
    if v != 0:
        f, cost = own_take(b, i, K.BUY if v > 0 else K.SELL, abs(v), tick)
        impact_cost += cost
        taker_lots += f
        v_done = f if v > 0 else -f
    # lots per side: book.quote_lots, or with action.quote_size the action's 0..m (as the
    # intensity market maps them, mmgym.sim.quotes.action_lots)
    sized = qc.max_lots > 0
    lots_b = c.quote_lots
    lots_a = c.quote_lots
    if sized:
        lots_b, lots_a = action_lots(actions, i, qc)
    shown_b = np.int64(0)
    shown_a = np.int64(0)
    for side in range(2):
        q = b.inventory[i]
        z = min(lots_b, q_max - q) if side == K.BID else min(lots_a, q_max + q)
        if side == K.BID:
            shown_b = z
        else:
            shown_a = z
        tk = bid_tick if side == K.BID else ask_tick
        j = own_slot(b, i, side)
        if j >= 0 and sized and z > b.orders[i, j, K.ORD_QTY]:
            K.own_cancel(b, i, np.int64(j))  # a larger size at the same price re-queues at the back
            j = -1
        if j >= 0:
            K.own_reduce(b, i, np.int64(j), z)  # same price, same or fewer lots: keeps its place
        elif z > 0:
            pre2 = b.best[i, K.BID] + b.best[i, K.ASK]
            _, f, notional = K.own_limit(b, i, side, tk, z, b.time[i])
            if f > 0:
                taker_lots += f
                cost2 = 2 * notional - f * pre2 if side == K.BID else f * pre2 - 2 * notional
                impact_cost += 0.5 * cost2 * tick
    K.maybe_recentre(b, i, c.margin)

    # the rest of the step
    K.run_flow(b, i, t0 + c.dt, _BIG, lam, theta, fp, st.tape, st.flow)

    q = b.inventory[i]
    mid2_1 = b.best[i, K.BID] + b.best[i, K.ASK]
    w2_1 = 2 * b.cash_ticks[i] + q * mid2_1
    fill_b = cnt[i, K.C_OWN_FILLED_BID] - fb0
    fill_a = cnt[i, K.C_OWN_FILLED_ASK] - fa0
    fees = c.maker_fee * (fill_b + fill_a) + c.taker_fee * taker_lots
    dw = 0.5 * (w2_1 - w2_0) * tick - fees
    ds = 0.5 * (mid2_1 - mid2_0) * tick
    # cash_ticks leaves fees out: the wealth is net of those paid so far and of this step's
    w_after = 0.5 * w2_1 * tick - tr.ep_stats[i, ST_FEES] - fees
    quote_bid = own_slot(b, i, K.BID) >= 0 or fill_b > 0
    quote_ask = own_slot(b, i, K.ASK) >= 0 or fill_a > 0
    o = Outcome(dw, impact_cost, fees, q, ds, w_after - tr.wealth0[i], bid_tick * tick,
                ask_tick * tick, quote_bid, quote_ask, s_obs - bid_tick * tick,
                ask_tick * tick - s_obs, gamma, skew, v_done, fill_b, fill_a, s_obs,
                (ask_tick - bid_tick) * tick, c.dt, np.nan)
    return o, Extra(cnt[i, K.C_EVENTS] - ev0, cnt[i, K.C_BUY_VOL] - bv0, cnt[i, K.C_SELL_VOL] - sv0,
                    taker_lots, shown_b, shown_a)


@kernel
def snapshot(b, st, tr, c, i):
    """Write row ``i``'s current market features into its ring-buffer slot for this step."""
    L = b.bg.shape[2]
    tick = c.tick
    sigma = c.sigma
    hist = st.hist
    slot = tr.step[i] % hist.shape[1]
    lo = b.lower_tick[i]
    bb = b.best[i, K.BID] - lo
    ba = b.best[i, K.ASK] - lo
    hist[i, slot, F_MID] = 0.5 * (b.best[i, K.BID] + b.best[i, K.ASK]) * tick
    if sigma > 0.0:
        hist[i, slot, F_VOL] = min(10.0, np.sqrt(tr.vol_var[i] / c.dt) / sigma)  # as the intensity market's
        hist[i, slot, F_RET] = min(10.0, max(-10.0, tr.mid_ret[i] / (sigma * c.sqrt_dt)))
    else:
        hist[i, slot, F_VOL] = 0.0
        hist[i, slot, F_RET] = 0.0
    hist[i, slot, F_SPREAD] = max(0.0, float(ba - bb))
    vb = 0.0
    va = 0.0
    for k in range(c.imb_levels):
        if 0 <= bb - k < L:
            vb += b.bg[i, K.BID, bb - k] + b.own[i, K.BID, bb - k]
        if 0 <= ba + k < L:
            va += b.bg[i, K.ASK, ba + k] + b.own[i, K.ASK, ba + k]
    hist[i, slot, F_IMB] = (vb - va) / (vb + va) if vb + va > 0 else 0.0
    ew = st.flow_ewma
    hist[i, slot, F_FLOW] = ew[i, 0] / ew[i, 1] if ew[i, 1] > 0 else 0.0
    tox = st.flow
    a = tox[i, K.TOX_ABS]
    hist[i, slot, F_MO_FLOW] = min(1.0, max(-1.0, tox[i, K.TOX_SIGNED] / a)) if a > 0.0 else 0.0
    hist[i, slot, F_MO_SIZE] = min(MO_SIZE_CAP, tox[i, K.TOX_REL_SIZE])
    hist[i, slot, F_MO_LEVELS] = min(1.0, tox[i, K.TOX_LEVELS] / MO_LEVELS_CAP)


@kernel
def post_step(tr, st, p, c, i, o, x, out):
    """The book's aux columns and statistics, its flow EWMAs and the feature snapshot."""
    i = np.int64(i)
    b = st.book
    aux = out.aux
    aux[i, A_SPREAD_TICKS] = b.best[i, K.ASK] - b.best[i, K.BID]
    aux[i, A_QUEUE_BID] = queue_pos(b, i, K.BID)
    aux[i, A_QUEUE_ASK] = queue_pos(b, i, K.ASK)
    aux[i, A_EVENTS] = x.events
    aux[i, A_TAKER_LOTS] = x.taker_lots
    aux[i, A_SIZE_BID] = x.size_bid
    aux[i, A_SIZE_ASK] = x.size_ask
    decay = c.decay
    ew = st.flow_ewma
    ew[i, 0] += decay * ((x.buy_vol - x.sell_vol) - ew[i, 0])
    ew[i, 1] += decay * ((x.buy_vol + x.sell_vol) - ew[i, 1])
    snapshot(b, st, tr, c, i)
    tr.ep_stats[i, S_EVENTS] += x.events
    tr.ep_stats[i, S_TAKER_LOTS] += x.taker_lots


@kernel
def write_obs(row, st, p, c, i, out):
    """Observation row ``i``: own state now, market features ``book.obs_delay_steps`` old."""
    i = np.int64(i)
    b = st.book
    hist = st.hist
    slot = (row.step + 1) % hist.shape[1]  # == (step - delay) mod (delay + 1)
    out[i, 0] = b.inventory[i] / c.max_inv_f
    out[i, 1] = (c.n_steps_f - row.step) / c.n_steps_f
    out[i, 2] = hist[i, slot, F_VOL]
    out[i, 3] = 1.0 if row.fill_bid > 0 else 0.0
    out[i, 4] = 1.0 if row.fill_ask > 0 else 0.0
    out[i, 5] = hist[i, slot, F_RET]
    out[i, O_SPREAD] = hist[i, slot, F_SPREAD]
    out[i, O_IMBALANCE] = hist[i, slot, F_IMB]
    out[i, O_QUEUE_BID] = queue_pos(b, i, K.BID)
    out[i, O_QUEUE_ASK] = queue_pos(b, i, K.ASK)
    out[i, O_FLOW] = hist[i, slot, F_FLOW]
    out[i, O_MO_FLOW] = hist[i, slot, F_MO_FLOW]
    out[i, O_MO_SIZE] = hist[i, slot, F_MO_SIZE]
    out[i, O_MO_LEVELS] = hist[i, slot, F_MO_LEVELS]


@kernel
def reset_row(tr, st, p, c, i):
    """A deterministic book (:func:`mmgym.sim.book.init_book`), then ``book.warmup`` time units of
    background flow from the row's own stream; cash 0, q = q0, no orders of ours."""
    i = np.int64(i)
    b = st.book
    K.init_book(b, i, c.centre_tick, st.lam, st.theta, c.init_spread)
    K.reset_flow_state(b, st.flow, i)
    if c.warmup > 0.0:
        K.run_flow(b, i, c.warmup, _BIG, st.lam, st.theta, p.flow, st.tape, st.flow)
    b.time[i] = 0.0
    st.flow[i, K.FS_VALUE] = 0.5 * (b.best[i, K.BID] + b.best[i, K.ASK])  # the informed flow's value: the mid
    b.inventory[i] = c.q0
    b.cash_ticks[i] = 0
    st.flow_ewma[i, 0] = 0.0
    st.flow_ewma[i, 1] = 0.0
    wealth0 = b.inventory[i] * 0.5 * (b.best[i, K.BID] + b.best[i, K.ASK]) * c.tick
    row = reset_track(tr, i, c.var0, wealth0)
    snapshot(b, st, tr, c, i)
    hist = st.hist
    for k in range(hist.shape[1]):
        for f in range(N_FEATURES):
            hist[i, k, f] = hist[i, 0, f]
    return row


# ----------------------------------------------------------------------------- kernels ---
@entry
def step(tr, st, params, actions, out, work, lo, hi):
    """Step rows ``lo:hi`` by ``dt`` of book time and autoreset finished ones; -1, or the first
    row whose action is NaN or infinite (nothing is stepped then)."""
    bad = first_bad_row(actions)
    if bad >= 0:
        return bad
    step_rows(tr, st, params[0], actions, out, work, lo, hi, prepare, market_step, post_step,
              write_obs, reset_row)
    return -1


@entry
def reset(mask, tr, st, params, out):
    """Reset the rows where ``mask`` is true (book, warm-up, observation)."""
    reset_rows(mask, tr, st, params[0], out, prepare, write_obs, reset_row)


# ------------------------------------------------------------------------ declaration ---
class LOBScenario(Scenario):
    """The limit order book (module docstring)."""

    id = ENV_ID
    config_class = LOBEnvConfig
    defaults = LOB_DEFAULTS
    obs = OBS_COLUMNS
    aux = AUX_COLUMNS
    stats = STAT_COLUMNS
    params_dtype = PARAMS_DTYPE
    state_fields = ("cash", "inventory", "step", "mid", "time")
    step_kernel = staticmethod(step)
    reset_kernel = staticmethod(reset)
    sized_step_kernel = staticmethod(step)  # one kernel: the sizes are a branch on action.quote_size
    default_baselines = ("as", "symmetric", "glft", "optimal")
    dp_exact = False
    audit = False

    def unused_aux(self, config, raw_depths=False):
        """Every aux column but ``revaluation_noise`` is in the book's ``info`` (gamma and skew are
        NaN outside as_hybrid); the book's mid moves with its own flow, and is not split into a
        predictable part and noise; the quoted sizes only with ``action.quote_size``."""
        if config.action.quote_size == 0:
            return frozenset({"revaluation_noise", "size_bid", "size_ask"})
        return frozenset({"revaluation_noise"})

    def check(self, config):
        from ..config import ConfigError

        m, bc = config.market, config.book
        if config.reward.risk_penalty != "time":
            raise ConfigError("reward.risk_penalty: the limit order book's price variance is the "
                              "book's own, not configured; must be 'time' (got "
                              f"{config.reward.risk_penalty!r})")
        if m.tick_size <= 0.0:
            raise ConfigError("market.tick_size: the limit order book needs a positive tick (got 0)")
        if config.action.quote_size > 0 and bc.quote_lots != 1:
            raise ConfigError(f"book.quote_lots: with action.quote_size the action chooses the lots; "
                              f"must be 1 (got {bc.quote_lots})")
        if bc.entry_latency >= m.dt:
            raise ConfigError(f"book.entry_latency: must be < market.dt = {m.dt} (got {bc.entry_latency})")
        if m.adverse_jump != 0.0:
            raise ConfigError("market.adverse_jump: the limit order book has no jump on fill (its mid "
                              f"moves with the book's own flow); must be 0 (got {m.adverse_jump!r})")
        centre = round(m.s0 / m.tick_size)
        if abs(centre) + bc.n_levels > K.MAX_TICK:
            raise ConfigError(f"market.s0: {m.s0} is {centre} ticks of {m.tick_size}; the book "
                              f"takes prices up to {K.MAX_TICK} ticks (got {m.s0!r})")

    def model_note(self, config):
        m = config.market
        return (f"the baselines (and 'optimal', objective_model, optimal_v0) use the intensity model "
                f"lambda(delta) = A exp(-k delta) with market.sigma={m.sigma}, A={m.A}, k={m.k} "
                f"(calibrated on the book: python -m mmgym.calibrate); 'optimal' is that model's exact "
                f"optimum, not the book's")

    def pack(self, config, raw_depths=False):
        return pack(config, raw_depths)

    def new_state(self, config, num_envs, rng):
        return new_state(config, num_envs, rng)

    def ladder_levels(self, config) -> int:
        """The width of the tick ladder, in levels (``book.n_levels``)."""
        return config.book.n_levels

    #: Glass-box bins of the informed book's driver, latent value - mid in ticks (symmetric).
    GAP_EDGES = (-1e9, -8.0, -4.0, -2.0, -0.5, 0.5, 2.0, 4.0, 8.0, 1e9)
    #: ... and of the default book's, the market-order flow imbalance (observation column 11).
    FLOW_EDGES = (-1.0, -0.75, -0.5, -0.25, -0.05, 0.05, 0.25, 0.5, 0.75, 1.0 + 1e-9)

    def driver(self, config):
        """What the glass box bins the quotes by. With informed flow (``book.informed.fraction`` >
        0): the hidden gap between the latent efficient price and the mid, ``(v - mid) / tick``
        before the step (the informed traders' signal, never observed by the agent); otherwise the
        background market-order flow imbalance ``EWMA(signed lots) / EWMA(lots)`` (observation
        column 11 at zero delay: the toxicity signal a quoter can read)."""
        inf = config.book.informed
        if inf.fraction > 0.0:
            e = self.GAP_EDGES

            def gap(market):
                b = market.state.book
                return market.state.flow[:, K.FS_VALUE] - 0.5 * (b.best[:, K.BID] + b.best[:, K.ASK])

            labels = ("le-8", "-8_-4", "-4_-2", "-2_-0.5", "-0.5_0.5", "0.5_2", "2_4", "4_8", "ge8")
            return DriverSpec("latent value - mid (ticks, hidden)", gap, labels, edge_bins(e),
                              f"informed fraction {inf.fraction:g}: they buy when the latent value is above the mid")
        e = self.FLOW_EDGES

        def flow(market):
            fs = market.state.flow
            a = fs[:, K.TOX_ABS]
            return np.where(a > 0.0, np.clip(fs[:, K.TOX_SIGNED] / np.where(a > 0.0, a, 1.0), -1.0, 1.0), 0.0)

        labels = tuple(f"{lo:g}_{hi:g}" for lo, hi in zip(e[:-1], (*e[1:-1], 1.0)))
        return DriverSpec("market-order flow imbalance", flow, labels, edge_bins(e),
                          f"EWMA over book.toxicity_halflife = {config.book.toxicity_halflife:g} orders")

    def observation_space(self, config):
        low = np.array([-1, 0, 0, 0, 0, -10, 0, -1, -1, -1, -1, -1, 0, 0], dtype=np.float32)
        # realised volatility is capped at 10; the spread in ticks is at most the ladder's width
        high = np.array([1, 1, 10, 1, 1, 10, self.ladder_levels(config), 1, 1, 1, 1, 1, MO_SIZE_CAP, 1],
                        dtype=np.float32)
        return spaces.Box(low, high, dtype=np.float32)

    def field_array(self, market, name):
        b = market.state.book
        tick = market.config.market.tick_size
        if name == "inventory":
            return b.inventory.reshape(-1, 1)
        if name == "cash":
            return b.cash_ticks * tick
        if name == "mid":
            return (0.5 * (b.best[:, K.BID] + b.best[:, K.ASK]) * tick).reshape(-1, 1)
        if name == "time":
            return b.time
        return super().field_array(market, name)

    def set_field(self, market, name, value, rows):
        if name != "inventory":
            raise AttributeError(f"{self.id}: field {name!r} is derived from the book; only inventory can be set")
        super().set_field(market, name, value, rows)

    has_ladder = True

    def ladder(self, market, row, half_width):
        b = market.state.book
        tick = market.config.market.tick_size
        lo = int(b.lower_tick[row])
        n_levels = b.bg.shape[2]
        centre = (int(b.best[row, K.BID]) + int(b.best[row, K.ASK])) // 2 - lo
        a = max(0, centre - half_width)
        z = min(n_levels, centre + half_width + 1)
        orders = [(float(o[K.ORD_PX] * tick), int(o[K.ORD_QTY]), int(o[K.ORD_AHEAD]), int(o[K.ORD_SIDE]))
                  for o in b.orders[row] if o[K.ORD_QTY] > 0 and a <= o[K.ORD_PX] - lo < z]
        return {"price": (lo + np.arange(a, z)) * tick, "tick": tick,
                "bid_bg": b.bg[row, K.BID, a:z].astype(float), "ask_bg": b.bg[row, K.ASK, a:z].astype(float),
                "bid_own": b.own[row, K.BID, a:z].astype(float), "ask_own": b.own[row, K.ASK, a:z].astype(float),
                "mid": 0.5 * (b.best[row, K.BID] + b.best[row, K.ASK]) * tick, "orders": orders}

    def check_state(self, market):
        err = np.flatnonzero(market.state.book.error)
        if err.size:
            i = int(err[0])
            code = int(market.state.book.error[i])
            raise ValueError(f"{self.id}: env {i}: the book refused an operation "
                             f"({K.ERROR_NAMES.get(code, code)}); reset the env")


SCENARIO = LOBScenario()


# ---------------------------------------------------------------------------- the envs ---
class LOBMarketMakingEnv(ScenarioEnv):
    r"""Market making in a simulated limit order book with FIFO queues.

    ## Description

    Each env is a limit order book on a tick grid (``market.tick_size``) whose background flow
    follows Cont, Stoikov & Talreja (2010): limit orders at distance i ticks from the opposite best
    at rate lambda(i), cancellations at rate theta(i) per resting lot, market orders at rate mu,
    geometric sizes (``book.*``). The agent keeps one bid and one ask of ``book.quote_lots`` lots
    in the book; they wait in FIFO queues behind earlier volume and fill only when market orders
    reach them. Market orders walk the book, so impact is emergent. With ``book.informed`` a
    fraction of the market orders is informed (Glosten & Milgrom 1985, Kyle 1985): they trade
    toward a latent efficient price (a Brownian motion, ``book.informed.sigma``) that the mid
    follows with a lag through their impact, so a fill is more likely just before the mid moves
    against the quote (adverse selection). One step covers ``market.dt`` of book time, every
    event of which is simulated inside the kernel:

    0. quotes are computed from the action and the *observed* mid (``book.obs_delay_steps`` old),
       mapped to ticks: bid = floor((mid - delta_b) / tick), ask = ceil((mid + delta_a) / tick);
       an ask at or below the bid moves to bid + 1 tick;
    1. background flow for ``book.entry_latency`` time units, then ``book.entry_latency_events``
       more events (order-entry latency: technological adverse selection);
    2. our orders arrive: an order whose price changed is cancelled (its queue position is lost);
       the hedge market order walks the book; one at an unchanged price is kept and keeps its
       place when its size stays or shrinks (reduced in place: the inventory bound, or a smaller
       ``action.quote_size`` choice), but with ``action.quote_size`` a *larger* size at the same
       price is cancelled and re-entered at the back of the queue (as on most exchanges, e.g.
       CME's and Eurex's rules: a quantity increase loses time priority, a decrease keeps it;
       without sizes a partly filled order is not topped up). New quotes join the back of their
       queue, a marketable quote takes liquidity first; a side with 0 lots does not quote (its
       resting order is cancelled);
    3. background flow to the end of the step;
    4. reward (below). Quote sizes are clipped to the room the bound leaves (bid
       ``min(lots, Q - q)``, ask ``min(lots, Q + q)``), so |q| never exceeds ``market.max_inventory``.

    ## Action Space

    ``Box(-1, 1, (2,))`` (``(3,)`` with ``action.hedge``; two more with ``action.quote_size``), as
    in ``mmgym/MarketMaking-v0``: ``as_hybrid`` (risk aversion and skew of the Avellaneda-Stoikov
    rule, with ``market.sigma`` and ``market.k`` - e.g. from :mod:`mmgym.calibrate`), ``offsets``
    (depths in price units between ``action.offset_min`` and ``action.offset_max``), the hedge
    market order of round(a * hedge_max_lots) lots, and the quote sizes (last two dimensions, bid
    then ask, with ``action.quote_size`` = m > 0): floor((a+1)/2 m + 1/2) lots in 0..m, mapped
    exactly as the intensity market maps them (:func:`mmgym.sim.quotes.action_lots`); 0 = that side
    does not quote. Without sizes each quote is ``book.quote_lots`` lots (which must stay 1 with
    sizes). Multi-lot orders queue as one order and fill partially; ``info["size_bid"]``,
    ``info["size_ask"]``: the lots asked for after the bound (with sizes only).

    ## Observation Space

    ``Box(float32, (14,))``; the first six are the intensity env's, in the same order.
    Market features (2, 5, 6, 7, 10, 11, 12, 13) are ``book.obs_delay_steps`` steps old. The
    toxicity features 11-13 (appended in v0's issue-10 revision) describe the background market
    orders only (the engine's toxicity record, :mod:`mmgym.sim.book`): the signals that tell a
    stream of small orders from one large order that swept several levels. They carry over from
    the warm-up at reset (the market's recent history is real history).

    | Num | Observation                 | Normalisation                                         | Range      |
    |-----|-----------------------------|-------------------------------------------------------|------------|
    | 0   | inventory q                 | q / max_inventory                                     | [-1, 1]    |
    | 1   | time remaining              | (T - t) / T                                           | [0, 1]     |
    | 2   | realised volatility         | EWMA std of mid changes / (sigma sqrt(dt)), capped    | [0, 10]    |
    | 3   | last step's bid fill        | 1 if our bid filled (any lots)                        | {0, 1}     |
    | 4   | last step's ask fill        | 1 if our ask filled                                   | {0, 1}     |
    | 5   | last mid change             | dS / (sigma sqrt(dt)), clipped                        | [-10, 10]  |
    | 6   | spread                      | ticks                                                 | [0, n_levels] |
    | 7   | depth imbalance             | (bid - ask) / (bid + ask) lots over ``book.imbalance_levels`` from each best | [-1, 1] |
    | 8   | our bid's queue position    | lots ahead / level volume; -1 without a resting bid   | [-1, 1]    |
    | 9   | our ask's queue position    | same for the ask                                      | [-1, 1]    |
    | 10  | signed trade flow           | EWMA(buy - sell lots) / EWMA(buy + sell lots), half-life ``observation.vol_halflife`` | [-1, 1] |
    | 11  | market-order flow imbalance | EWMA(signed lots) / EWMA(lots) of the background market orders, weights per order, half-life ``book.toxicity_halflife`` orders | [-1, 1] |
    | 12  | last market order's size    | its size / lots resting at the best it hit (before it traded), capped at ``MO_SIZE_CAP`` = 10 | [0, 10] |
    | 13  | levels it walked            | (abs(deepest tick - best tick) + 1) / ``MO_LEVELS_CAP`` = 5, capped at 1 | [0.2, 1] (0 before any) |

    ## Rewards

    Same terms and keys as ``mmgym/MarketMaking-v0`` (they sum to the reward; all in ``info``):
    ``pnl`` (wealth change before taker costs and fees), ``impact`` (minus the cost of our taker
    executions - hedge and marketable quotes - against the mid just before each), ``fees``
    (``-(maker_fee * passive lots + taker_fee * taker lots)``), ``inventory_penalty``
    (``-phi q^2 dt``), ``terminal_penalty`` (``-alpha q_T^2``), ``dampening``
    (``-max(0, eta q dS)``, Spooner et al. 2018), ``utility`` (CARA objective). Wealth is
    cash + q * mid with the mid (best bid + best ask) / 2.

    ## Starting State

    A deterministic book around ``market.s0`` (level d from the opposite best holds
    round(lambda(d) / theta(d)) lots), then ``book.warmup`` time units of background flow drawn from
    the env's own stream; cash 0, q = ``market.q0``, no resting orders of ours.

    ## Episode End

    Terminated after ``round(horizon / dt)`` steps; never truncated.

    ## Arguments

    ``gym.make("mmgym/LOBMarketMaking-v0", config=None, render_mode=None, **overrides)``: ``config``
    is a YAML path, a mapping or a :class:`LOBEnvConfig` (None: :data:`LOB_DEFAULTS`, the content
    of ``configs/lob.yaml``); ``overrides`` as for ``mmgym/MarketMaking-v0`` plus ``book={...}``.

    ## Version History

    - v0: initial version; then (issue 10) informed market orders (``book.informed``, off by
      default: the default book is unchanged) and the toxicity observation columns 11-13
      (appended: columns 0-10 unchanged).
    """

    scenario_id = ENV_ID


class LOBMarketMakingVectorEnv(ScenarioVectorEnv):
    """``gym.make_vec("mmgym/LOBMarketMaking-v0", num_envs=N, vectorization_mode="vector_entry_point")``.

    N books stepped in one numba call with SAME_STEP autoreset; env i reset with seed s
    reproduces a single env reset with seed s + i.
    """

    scenario_id = ENV_ID

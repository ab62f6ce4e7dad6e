"""``mmgym/ReplayMarketMaking-v0``: market making against a recorded order book (Binance captures).

The recorded book (:mod:`mmgym.data`) is replayed event by event; our orders join its real queues
and are filled by its recorded trades, with the order book scenario's actions, reward terms,
observation layout and queue models (:mod:`mmgym.scenarios.lob`), so an agent trained on the
simulated book runs here unchanged. The rules are :class:`ReplayMarketMakingEnv`'s manual and
``docs/REPLAY.md``.

No market impact: our orders never change the recorded flow (the recorded depth and trades are
replayed as they happened whatever we do). This is hftbacktest's assumption for backtests on
recorded feeds (its docs: "market impact is not considered"; the queue models then only move our
position *within* the recorded queues).

The per-row ladder is a window of ``replay.n_levels`` levels per side (the engine's
:class:`~mmgym.sim.book.BookState`); a level outside it is restored, when the window moves, from a
per-level index of the recording (the last update of that level before the current event, after
the last ``CLEAR``), so an episode can also start anywhere in the recording without replaying it
from its beginning.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np
from gymnasium import spaces
from numba import njit
from pydantic import Field

from ..data import Recording
from ..data.binance import CLEAR, TRADE
from ..data.recording import EMPTY_ASK, EMPTY_BID
from ..envs.base import ScenarioEnv, ScenarioVectorEnv
from ..schema import EnvConfig, Section
from ..sim import book as K
from ..sim.jit import entry, hot, kernel
from ..sim.ledger import REWARD_DTYPE, Outcome, pack_reward
from ..sim.processes import MARKET_DTYPE, OBS_DTYPE, pack_market, pack_obs
from ..sim.quotes import ACTION_DTYPE, action_depths, action_hedge, first_bad_row, pack_action
from ..sim.rng import to_unit, xoroshiro_next
from ..sim.skeleton import reset_rows, reset_track, step_rows
from . import lob
from .base import Scenario

__all__ = ["ReplayConfig", "ReplayEnvConfig", "REPLAY_DEFAULTS", "SCENARIO", "ReplayMarketMakingEnv",
           "ReplayMarketMakingVectorEnv", "EXCERPT"]

ENV_ID = "mmgym/ReplayMarketMaking-v0"

#: The USDⓈ-M BTCUSDT excerpt the repository ships (tests/data/binance; 47 s, MIT licence beside it).
EXCERPT = str(Path(__file__).resolve().parents[2] / "tests" / "data" / "binance" / "usdm_btcusdt_20240808_excerpt.gz")


# ------------------------------------------------------------------------------ config ---
class ReplayConfig(Section):
    """The recording replayed by mmgym/ReplayMarketMaking-v0 and how our orders meet it (docs/REPLAY.md).

    Times are seconds of the recording (``market.dt`` and ``market.horizon`` are seconds too);
    sizes are lots of the recording's ``lot_size``.
    """

    path: str = EXCERPT
    """A raw Binance capture (``.gz``, converted in memory) or a file of ``python -m mmgym.data convert``."""
    start: float = Field(0.0, ge=0.0)
    """First episode window's start, seconds after the recording's first event (no earlier than the
    book is usable: after the first REST snapshot if the capture has one, and two-sided for good)."""
    end: float | None = Field(None, gt=0.0)
    """Last episode window's end, seconds after the recording's first event (None: the recording's end):
    with ``start``, splits a recording (tune on one part, evaluate on another)."""
    stride: float | None = Field(None, gt=0.0)
    """Seconds between successive episode windows (None: ``market.horizon``, windows do not overlap)."""
    start_mode: Literal["random", "sequential"] = "random"
    """'random': each episode picks a window uniformly from the env's own stream (a reset with seed s
    always gives the same window: common random numbers across agents); 'sequential': env i's e-th
    episode uses window (i + e * num_envs) mod n_windows."""
    n_levels: int = Field(256, ge=32)
    """Levels per side in each env's ladder window (levels outside are restored when it moves)."""
    max_orders: int = Field(4, ge=2)
    """Order record slots per env (the env uses one bid and one ask)."""
    recentre_margin: int = Field(32, ge=1)
    """Re-centre the window when a best comes within this many levels of an edge."""
    queue_model: Literal["pessimistic", "power"] = "pessimistic"
    """How a recorded decrease of our level (not explained by trades) moves our queue position:
    'pessimistic' (it is a cancel behind us) or 'power' (ahead of us w.p. front^n / (front^n + back^n),
    hftbacktest's PowerProbQueueFunc)."""
    queue_power: float = Field(2.0, ge=0.0)
    """Exponent n of the 'power' queue model."""
    quote_lots: int = Field(1, ge=1)
    """Size of each of our quotes (lots of the recording), clipped so |q| never exceeds market.max_inventory."""
    entry_latency: float = Field(0.0, ge=0.0)
    """Order-entry latency (seconds, < dt): our orders of a step reach the book this long after its start."""
    entry_latency_jitter: float = Field(0.0, ge=0.0)
    """Mean of an exponential extra latency drawn per step from the env's stream (0: constant latency);
    the total is capped at dt."""
    obs_delay_steps: int = Field(0, ge=0)
    """Observation delay: market features and the mid the quotes refer to are this many steps old."""
    imbalance_levels: int = Field(5, ge=1)
    """Depth imbalance feature: levels from each best summed."""
    fill_log: int = Field(0, ge=0)
    """Capacity of each env's log of our passive fills (time, side, price, lots, how; ``State.fills``),
    appended until full and drained by the caller (benchmarks/sim_to_real.py's mark-outs); 0: none."""
    toxicity_halflife: float = Field(10.0, gt=0.0)
    """Half-life, in recorded market orders, of the signed market-order flow feature (observation
    column ``mo_flow``; as ``book.toxicity_halflife`` on the simulated book)."""


class ReplayEnvConfig(EnvConfig):
    """The env config of ``mmgym/ReplayMarketMaking-v0``: the shared sections plus ``replay``."""

    id: Literal["mmgym/ReplayMarketMaking-v0"] = ENV_ID
    """Registered environment id."""
    replay: ReplayConfig = Field(default_factory=ReplayConfig)
    """The recording and how our orders meet it."""


#: ``gym.make(ENV_ID)`` without a config (the env section of configs/replay.yaml): the shipped
#: USDⓈ-M BTCUSDT excerpt (tick 0.1, lot 0.001 BTC), 1-s steps over 30-s windows 5 s apart; sigma,
#: A, k from ``python -m mmgym.calibrate --data ../shared/data/binance/usdm_btcusdt_20240808.gz``
#: (the full capture; docs/REPLAY.md).
REPLAY_DEFAULTS: dict[str, Any] = {
    "market": {"s0": 60000.0, "tick_size": 0.1, "dt": 1.0, "horizon": 30.0, "max_inventory": 10,
               "sigma": 7.78, "A": 17.5, "k": 16.0, "A_bid": 17.6, "k_bid": 16.6, "A_ask": 17.5,
               "k_ask": 15.5},
    "action": {"skew_max": 0.2, "offset_min": 0.0, "offset_max": 0.5, "gamma_min": 1.0e-6,
               "gamma_max": 1.0e-2},
    "replay": {"stride": 5.0},
}


# -------------------------------------------------------------------------- recordings ---
class Tape(NamedTuple):
    """A recording as the kernels read it (shared by every row; read only).

    Attributes:
        t, kind, side, px, qty: (n,) the events (``mmgym.data`` columns; ``t`` in ns).
        exch: (n,) int64 the exchange time (ns; a trade's ``T``, ms on Binance): groups a taker
            order's trades (:func:`tox_trade`).
        bb, ba: (n,) int64 the recorded touch after each event (a side that is empty keeps the
            last non-empty tick: the stale reference the engine uses).
        keys: (u,) int64 sorted ``2 * px + side`` of every level ever updated; off: (u + 1,)
            offsets into ``kev``: (m,) the indices of each level's updates in event order.
        clears: (c,) int64 indices of the ``CLEAR`` events.
        win_ev, win_t: (W,) the first event index and the start time (ns) of each episode window.
    """

    t: np.ndarray
    kind: np.ndarray
    side: np.ndarray
    px: np.ndarray
    qty: np.ndarray
    exch: np.ndarray
    bb: np.ndarray
    ba: np.ndarray
    keys: np.ndarray
    off: np.ndarray
    kev: np.ndarray
    clears: np.ndarray
    win_ev: np.ndarray
    win_t: np.ndarray


_CACHE: dict[tuple[str, float], tuple[Recording, dict]] = {}


_ROOT = Path(__file__).resolve().parents[2]


def resolve_path(path: str) -> str:
    """``replay.path`` as a file: as given (absolute, or from the working directory), else a relative
    path from the repository root (so configs/replay.yaml's shipped excerpt is found from anywhere)."""
    if os.path.isabs(path) or os.path.exists(path):
        return path
    alt = _ROOT / path
    return str(alt) if alt.exists() else path


def recording(path: str) -> Recording:
    """The recording at ``path`` (loaded once per process; raises ConfigError naming the key)."""
    from ..config import ConfigError
    from ..data import DataError, load

    path = resolve_path(path)
    try:
        key = (os.path.abspath(path), os.path.getmtime(path))
    except OSError:
        raise ConfigError(f"replay.path: no such file (got {path!r})") from None
    if key not in _CACHE:
        try:
            _CACHE[key] = (load(path), {})
        except DataError as exc:
            raise ConfigError(f"replay.path: {exc}") from None
    return _CACHE[key][0]


def _level_index(rec: Recording) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    book = (rec.kind != TRADE) & (rec.kind != CLEAR)
    idx = np.flatnonzero(book)
    key = 2 * rec.px[idx] + rec.side[idx]
    order = np.argsort(key, kind="stable")  # stable: each level's updates stay in event order
    kev = idx[order]
    sk = key[order]
    keys, first = np.unique(sk, return_index=True)
    off = np.append(first, sk.size).astype(np.int64)
    return keys.astype(np.int64), off, kev.astype(np.int64)


def _stale_touch(best: np.ndarray, empty: int) -> np.ndarray:
    """The touch with an empty side's ticks replaced by the last non-empty one (forward fill)."""
    ok = best != empty
    if not ok.any():
        return np.zeros_like(best)
    pos = np.where(ok, np.arange(best.size), 0)
    np.maximum.accumulate(pos, out=pos)
    out = best[pos]
    out[: np.argmax(ok)] = best[np.argmax(ok)]
    return out


def windows(config: ReplayEnvConfig, rec: Recording) -> tuple[np.ndarray, np.ndarray, float]:
    """Episode windows of ``config`` on ``rec``: (first event index, start ns) per window, and the
    time (s since the first event) from which the book is usable: after the first snapshot's
    message if the capture has one, and from the end of the last message that left a side empty."""
    from ..config import ConfigError

    rc, m = config.replay, config.market
    two = rec.two_sided()
    if not two.any():
        raise ConfigError(f"replay.path: the book of {rec.meta.get('source')} is never two-sided")
    # one-sided at the end of a message (inside one, removals come before additions: transient)
    msg_end = np.r_[rec.t_ns[1:] != rec.t_ns[:-1], True]
    one = np.flatnonzero(~two & msg_end)
    first_ok = 0 if one.size == 0 else int(one[-1]) + 1
    clears = np.flatnonzero(rec.kind == CLEAR)
    if clears.size:  # with a snapshot, the book is known from its message on (docs/REPLAY.md)
        first_ok = max(first_ok, int(np.searchsorted(rec.t_ns, rec.t_ns[clears[0]], side="right")))
    if first_ok >= len(rec):
        raise ConfigError(f"replay.path: the book of {rec.meta.get('source')} is one-sided at its end")
    t_ok = float(rec.t_ns[first_ok] - rec.t0_ns) / 1e9
    stride = m.horizon if rc.stride is None else rc.stride
    first = max(t_ok, rc.start)
    end = rec.duration if rc.end is None else min(rc.end, rec.duration)
    last = end - m.horizon
    if first > last + 1e-9:
        key = "replay.end" if rc.end is not None and rc.end < rec.duration else "replay.start"
        raise ConfigError(f"{key}: start {rc.start} s, end {rc.end} s leave no {m.horizon}-s window in "
                          f"{rec.meta.get('source')} ({rec.duration:.1f} s, two-sided from {t_ok:.2f} s)")
    n = int(np.floor((last - first) / stride + 1e-9)) + 1
    win_t = rec.t0_ns + np.round((first + stride * np.arange(n)) * 1e9).astype(np.int64)
    win_ev = np.searchsorted(rec.t_ns, win_t, side="left").astype(np.int64)
    win_ev = np.maximum(win_ev, first_ok)
    return win_ev, win_t, t_ok


def tape_of(config: ReplayEnvConfig) -> Tape:
    rec = recording(config.replay.path)
    path = resolve_path(config.replay.path)
    cache = _CACHE[(os.path.abspath(path), os.path.getmtime(path))][1]
    if "index" not in cache:
        cache["index"] = _level_index(rec)
        cache["bb"] = _stale_touch(rec.best_bid, EMPTY_BID)
        cache["ba"] = _stale_touch(rec.best_ask, EMPTY_ASK)
    keys, off, kev = cache["index"]
    win_ev, win_t, _ = windows(config, rec)
    return Tape(rec.t_ns, rec.kind, rec.side, rec.px, rec.qty, rec.exch_ns, cache["bb"], cache["ba"], keys, off, kev,
                np.flatnonzero(rec.kind == CLEAR).astype(np.int64), win_ev, win_t)


# ------------------------------------------------------------------------- parameters ---
REPLAY_DTYPE = np.dtype([
    ("quote_lots", np.int64),
    ("latency_ns", np.int64),
    ("jitter_ns", np.float64),  # mean of the exponential extra latency
    ("imb_levels", np.int64),
    ("queue_model", np.int64),
    ("queue_power", np.float64),
    ("margin", np.int64),
    ("sequential", np.int64),
    ("tox_decay", np.float64),  # per-market-order weight of the toxicity EWMAs (book.toxicity_decay)
])

PARAMS_DTYPE = np.dtype([("market", MARKET_DTYPE), ("reward", REWARD_DTYPE), ("action", ACTION_DTYPE),
                         ("obs", OBS_DTYPE), ("replay", REPLAY_DTYPE)])


def pack(config: ReplayEnvConfig, raw_depths: bool = False) -> np.ndarray:
    """The scenario's parameter record (a 1-element structured array)."""
    rc = config.replay
    p = np.zeros(1, dtype=PARAMS_DTYPE)
    p["market"] = pack_market(config.market)
    p["reward"] = pack_reward(config.reward)
    p["action"] = pack_action(config.action, raw_depths)
    p["obs"] = pack_obs(config.observation)
    r = p["replay"]
    r["quote_lots"] = rc.quote_lots
    r["latency_ns"] = round(rc.entry_latency * 1e9)
    r["jitter_ns"] = rc.entry_latency_jitter * 1e9
    r["imb_levels"] = rc.imbalance_levels
    r["queue_model"] = K.QUEUE_POWER if rc.queue_model == "power" else K.QUEUE_PESSIMISTIC
    r["queue_power"] = rc.queue_power
    r["margin"] = rc.recentre_margin
    r["sequential"] = rc.start_mode == "sequential"
    r["tox_decay"] = K.toxicity_decay(rc.toxicity_halflife)
    p["replay"] = r
    return p


class State(NamedTuple):
    """Per-row state of the replay (batch-first) and the shared recording.

    Attributes:
        book: the engine's :class:`~mmgym.sim.book.BookState`: ``bg`` holds the recorded levels
            (lots) inside the row's window, ``own`` and ``orders`` ours; ``best`` is the recorded
            touch (our orders never move it).
        flow_ewma, hist: as :class:`mmgym.scenarios.lob.State`.
        cursor: (N,) int64, the next event to replay. now: (N,) int64, the row's clock (ns).
        episodes: (N,) int64, episodes started (``start_mode: sequential``).
        tr_px, tr_qty: (N, 2) int64, per resting side: the tick of our order's level and the
            recorded lots traded there since its last depth update (those lots were ahead of us: the
            next decrease of the level is theirs first, not a cancel).
        fills: (N, C, 5) int64, our passive fills (time ns, side, tick, lots, how: 0 a trade through
            our price, 1 a trade at our price, 2 the recorded touch moving through), ``fill_n`` (N,) rows
            written (``replay.fill_log`` = C; the caller drains it by setting ``fill_n`` to 0).
        tape: the recording (:class:`Tape`).
        flow: (N, N_FLOW_STATE + 6) float64, the flow state the book scenario's features read
            (:func:`mmgym.sim.book.new_flow_state`'s columns first): its toxicity record ``TOX_*``
            is updated from the recorded trades (:func:`tox_trade`: one market order per run of
            trades with the same exchange time and aggressor side), emptied at each reset
            (observation columns 11-13: ``mo_flow``, ``mo_size``, ``mo_levels``); ``FS_VALUE`` is
            unused. Then the market order being grouped (``G_*``, integers held exactly in
            float64): the event index of its last trade (-1: none), its signed lots so far, its
            first trade's tick, the recorded lots resting there before it, and ``TOX_SIGNED``,
            ``TOX_ABS`` before it (in this array rather than new ones: each array of the state
            is one more argument of every out-of-line kernel call; docs/LOB.md).
    """

    book: K.BookState
    flow_ewma: np.ndarray
    hist: np.ndarray
    cursor: np.ndarray
    now: np.ndarray
    episodes: np.ndarray
    tr_px: np.ndarray
    tr_qty: np.ndarray
    fills: np.ndarray
    fill_n: np.ndarray
    tape: Tape
    flow: np.ndarray


# the market order being grouped (State.flow's columns after the book's flow state)
G_LAST = K.N_FLOW_STATE
G_SIGNED = K.N_FLOW_STATE + 1
G_FIRST = K.N_FLOW_STATE + 2
G_DEPTH = K.N_FLOW_STATE + 3
G_PREV_SIGNED = K.N_FLOW_STATE + 4
G_PREV_ABS = K.N_FLOW_STATE + 5


def new_state(config: ReplayEnvConfig, num_envs: int, rng: np.ndarray) -> State:
    rc = config.replay
    n = num_envs
    z = lambda *s: np.zeros(s, dtype=np.int64)  # noqa: E731
    return State(book=K.new_book_state(n, rc.n_levels, rc.max_orders, rng=rng), flow_ewma=np.zeros((n, 2)),
                 hist=np.zeros((n, rc.obs_delay_steps + 1, lob.N_FEATURES)),
                 cursor=z(n), now=z(n), episodes=z(n), tr_px=z(n, 2), tr_qty=z(n, 2),
                 fills=z(n, rc.fill_log, 5), fill_n=z(n), tape=tape_of(config),
                 flow=np.zeros((n, G_PREV_ABS + 1)))


class Consts(NamedTuple):
    """The parameters one step needs (the field names :func:`mmgym.scenarios.lob.snapshot`,
    ``write_obs`` and ``post_step`` read are the book scenario's)."""

    tick: float
    sigma: float
    dt: float
    sqrt_dt: float
    dt_ns: int
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
    latency_ns: int
    jitter_ns: float
    imb_levels: int
    qmodel: int
    qpower: float
    margin: int
    sequential: int
    tox_decay: float


@njit(cache=True, inline="always")
def prepare(p):
    m, r = p.market, p.replay
    return Consts(m.tick, m.sigma, m.dt, np.sqrt(m.dt), np.int64(round(m.dt * 1e9)), m.n_steps,
                  float(m.n_steps), m.sigma * m.sigma, float(m.max_inv), m.max_inv, m.q0, m.sigma ** 2 * m.dt,
                  p.reward.maker_fee, p.reward.taker_fee, p.obs.vol_decay, r.quote_lots, r.latency_ns,
                  r.jitter_ns, r.imb_levels, r.queue_model, r.queue_power, r.margin, r.sequential,
                  r.tox_decay)


# ------------------------------------------------------------------------ the ladder ---
@kernel
def level_qty(tp, side, tick, e):
    """Recorded lots at (side, tick) after the events before index ``e`` (the level index)."""
    key = 2 * tick + side
    k = np.searchsorted(tp.keys, key)
    if k >= tp.keys.shape[0] or tp.keys[k] != key:
        return np.int64(0)
    a = tp.off[k]
    z = tp.off[k + 1]
    j = a + np.searchsorted(tp.kev[a:z], e) - 1  # last update before e
    if j < a:
        return np.int64(0)
    ev = tp.kev[j]
    nc = np.searchsorted(tp.clears, e)
    if nc > 0 and tp.clears[nc - 1] > ev:
        return np.int64(0)
    return tp.qty[ev]


@kernel
def refill(b, tp, i, lo_idx, hi_idx, e):
    """Restore window levels ``lo_idx:hi_idx`` (both sides) as of event index ``e``."""
    lo = b.lower_tick[i]
    for idx in range(lo_idx, hi_idx):
        b.bg[i, K.BID, idx] = level_qty(tp, np.int64(K.BID), lo + idx, e)
        b.bg[i, K.ASK, idx] = level_qty(tp, np.int64(K.ASK), lo + idx, e)


@kernel
def set_touch(b, tp, i, e):
    """The recorded touch after event ``e - 1`` (the stale reference if a side is empty)."""
    j = e - 1 if e > 0 else 0
    b.best[i, K.BID] = tp.bb[j]
    b.best[i, K.ASK] = tp.ba[j]


@kernel
def recentre(b, tp, i, e, margin):
    """Move the window onto the recorded mid when a best is within ``margin`` levels of an edge,
    restoring the levels that come in (as of event ``e``); our orders left outside are cancelled."""
    L = b.bg.shape[2]
    lo = b.lower_tick[i]
    bi = b.best[i, K.BID] - lo
    ai = b.best[i, K.ASK] - lo
    if bi >= margin and ai >= margin and bi <= L - 1 - margin and ai <= L - 1 - margin:
        return
    new_lo = (b.best[i, K.BID] + b.best[i, K.ASK]) // 2 - L // 2
    s = new_lo - lo
    bb = b.best[i, K.BID]
    ba = b.best[i, K.ASK]
    K.recentre_to(b, i, new_lo)
    if s >= L or -s >= L:
        refill(b, tp, i, np.int64(0), np.int64(L), e)
    elif s > 0:
        refill(b, tp, i, L - s, np.int64(L), e)
    elif s < 0:
        refill(b, tp, i, np.int64(0), -s, e)
    b.best[i, K.BID] = bb
    b.best[i, K.ASK] = ba


@kernel
def fill_own(b, st, i, j, f, t, how):
    """Our resting order in slot ``j`` fills ``f`` lots at its price (passive) at time ``t`` (ns);
    ``how`` is logged (State.fills)."""
    o = b.orders
    side = o[i, j, K.ORD_SIDE]
    tick = o[i, j, K.ORD_PX]
    n = st.fill_n[i]
    if n < st.fills.shape[1]:
        st.fills[i, n, 0] = t
        st.fills[i, n, 1] = side
        st.fills[i, n, 2] = tick
        st.fills[i, n, 3] = f
        st.fills[i, n, 4] = how
        st.fill_n[i] = n + 1
    o[i, j, K.ORD_QTY] -= f
    b.own[i, side, tick - b.lower_tick[i]] -= f
    if side == K.BID:
        b.inventory[i] += f
        b.cash_ticks[i] -= f * tick
    else:
        b.inventory[i] -= f
        b.cash_ticks[i] += f * tick
    b.counters[i, K.C_OWN_FILLED_BID + side] += f


@kernel
def on_trade(b, st, i, aggressor, tick, qty, t):
    """A recorded trade meets our resting orders on the other side (FIFO; no impact on the record):
    an order at a better price than the trade is filled in full (the aggressor went through it); one
    at the trade's price fills what the trade leaves after the lots ahead of it. Returns lots filled."""
    side = 1 - aggressor  # BUY takes asks
    o = b.orders
    filled = np.int64(0)
    for j in range(o.shape[1]):
        r = o[i, j, K.ORD_QTY]
        if r <= 0 or o[i, j, K.ORD_SIDE] != side:
            continue
        px = o[i, j, K.ORD_PX]
        through = px < tick if side == K.ASK else px > tick
        if through:
            fill_own(b, st, i, np.int64(j), r, t, np.int64(0))
            filled += r
        elif px == tick:
            a = o[i, j, K.ORD_AHEAD]
            f = qty - a
            f = r if f > r else f
            o[i, j, K.ORD_AHEAD] = a - qty if a > qty else 0
            if st.tr_px[i, side] != tick:
                st.tr_px[i, side] = tick
                st.tr_qty[i, side] = 0
            st.tr_qty[i, side] += qty - f if f > 0 else qty
            if f > 0:
                fill_own(b, st, i, np.int64(j), f, t, np.int64(1))
                filled += f
    return filled


@kernel
def cross_fills(b, st, i, t):
    """Our resting orders the recorded touch has moved through (an ask at or below the recorded best
    bid, a bid at or above the best ask) are filled in full at their price (hftbacktest does the same
    when the best moves through a resting order). Returns lots filled."""
    o = b.orders
    filled = np.int64(0)
    for j in range(o.shape[1]):
        r = o[i, j, K.ORD_QTY]
        if r <= 0:
            continue
        side = o[i, j, K.ORD_SIDE]
        px = o[i, j, K.ORD_PX]
        if (side == K.ASK and px <= b.best[i, K.BID]) or (side == K.BID and px >= b.best[i, K.ASK]):
            fill_own(b, st, i, np.int64(j), r, t, np.int64(2))
            filled += r
    return filled


@kernel
def own_level_change(b, st, i, side, tick, old, new, qmodel, qpower):
    """A recorded decrease of a level holding our order: first the lots traded there since its
    last update (they were ahead of us and are already out of our ``ahead``; hftbacktest's
    probabilistic queue models subtract the traded quantity the same way), the rest is a cancel
    located by the queue model (:func:`mmgym.sim.book.bg_cancel`). The first update of the level
    after the trades uses the credit up (the feed's diffs carry the trades' effect). A diff that
    arrives *before* the trades it reflects is taken for a cancel: with the power model that part
    can be counted twice (the feeds are not synchronised; docs/REPLAY.md)."""
    x = old - new
    credit = np.int64(0)
    if st.tr_px[i, side] == tick:
        credit = st.tr_qty[i, side]
        credit = x if credit > x else credit
        st.tr_qty[i, side] -= credit
    if credit > 0:
        K.bg_cancel(b, i, side, tick, credit, 0.0, np.int64(K.QUEUE_PESSIMISTIC), 0.0)
    if x - credit > 0:
        bits, s0, s1 = xoroshiro_next(b.rng[i, 0], b.rng[i, 1])
        b.rng[i, 0] = s0
        b.rng[i, 1] = s1
        K.bg_cancel(b, i, side, tick, x - credit, to_unit(bits), qmodel, qpower)


@kernel
def has_own(b, i):
    o = b.orders
    for j in range(o.shape[1]):
        if o[i, j, K.ORD_QTY] > 0:
            return True
    return False


@hot  # once per recorded trade: inlined into run_events
def tox_trade(b, st, i, c, tox_a):
    """The recorded trade at event ``c`` into row ``i``'s toxicity record (``st.flow[i, TOX_*]``,
    the simulated book's rule: :func:`mmgym.sim.book.toxicity_update`).

    A Binance trade message is one fill of one taker order against one maker order, so one market
    order is a run of trades that are consecutive in the recording with the same exchange time
    (``T``, ms) and the same aggressor side (docs/REPLAY.md, "Toxicity features"); limits: two
    takers on the same side in the same ms with nothing recorded between them merge into one, and
    one taker's fills are split if another event is recorded between them. Per market order:
    signed lots (+ buy, - sell) into the EWMAs, its lots / the recorded lots resting at its first
    trade's tick before it (the window's level, or the level index outside the window; 0 leaves
    the last relative size), levels walked ``|last tick - first tick| + 1``. The record is updated
    at every trade with the order so far (the EWMAs from their values before it, ``G_PREV_*``),
    so it is current at every step boundary, one falling inside a run of trades included; an order
    begun before the episode's window counts from its first trade in the window."""
    tp = st.tape
    fs = st.flow
    ag = np.int64(tp.side[c])
    tick = tp.px[c]
    if not (c > 0 and fs[i, G_LAST] == c - 1 and tp.exch[c - 1] == tp.exch[c] and tp.side[c - 1] == ag):
        fs[i, G_PREV_SIGNED] = fs[i, K.TOX_SIGNED]
        fs[i, G_PREV_ABS] = fs[i, K.TOX_ABS]
        fs[i, G_SIGNED] = 0.0
        fs[i, G_FIRST] = tick
        rest = 1 - ag  # BUY takes asks
        idx = tick - b.lower_tick[i]
        if 0 <= idx < b.bg.shape[2]:
            fs[i, G_DEPTH] = b.bg[i, rest, idx]  # trades never change the window: the level before it
        else:
            fs[i, G_DEPTH] = level_qty(tp, rest, tick, c)
    fs[i, G_LAST] = c
    fs[i, G_SIGNED] += tp.qty[c] if ag == K.BUY else -tp.qty[c]
    signed = fs[i, G_SIGNED]
    s, m, r, lv = K.toxicity_update(fs[i, G_PREV_SIGNED], fs[i, G_PREV_ABS], fs[i, K.TOX_REL_SIZE],
                                    tox_a, signed, abs(signed), fs[i, G_DEPTH],
                                    abs(tick - fs[i, G_FIRST]) + 1.0)
    fs[i, K.TOX_SIGNED] = s
    fs[i, K.TOX_ABS] = m
    fs[i, K.TOX_REL_SIZE] = r
    fs[i, K.TOX_LEVELS] = lv


@kernel
def run_events(b, st, i, t_stop, qmodel, qpower, margin, tox_a):
    """Replay row ``i``'s recording up to (not including) time ``t_stop`` (ns); returns the events
    applied. Per event: a level update sets the window's level (our queue positions follow
    :func:`own_level_change`), then the recorded touch and our orders it crossed; a trade meets our
    orders (:func:`on_trade`), feeds the flow counters and the toxicity record (:func:`tox_trade`,
    EWMA weight ``tox_a``); a ``CLEAR`` empties the window."""
    tp = st.tape
    L = b.bg.shape[2]
    c = st.cursor[i]
    n_ev = tp.t.shape[0]
    mine = has_own(b, i)
    n = np.int64(0)
    while c < n_ev and tp.t[c] < t_stop:
        k = tp.kind[c]
        if k == TRADE:
            ag = np.int64(tp.side[c])
            q = tp.qty[c]
            b.counters[i, K.C_BUY_VOL + ag] += q
            tox_trade(b, st, i, c, tox_a)
            if mine:
                if on_trade(b, st, i, ag, tp.px[c], q, tp.t[c]) > 0:
                    mine = has_own(b, i)
        elif k == CLEAR:
            for s in range(2):
                for idx in range(L):
                    b.bg[i, s, idx] = 0
            o = b.orders
            for j in range(o.shape[1]):
                o[i, j, K.ORD_AHEAD] = 0
        else:
            s = np.int64(tp.side[c])
            tick = tp.px[c]
            idx = tick - b.lower_tick[i]
            if 0 <= idx < L:
                new = tp.qty[c]
                old = b.bg[i, s, idx]
                if new < old and mine and b.own[i, s, idx] > 0:
                    own_level_change(b, st, i, s, tick, old, new, qmodel, qpower)
                b.bg[i, s, idx] = new
                if st.tr_px[i, s] == tick:  # this update carries the trades before it: credit used
                    st.tr_qty[i, s] = 0
        b.best[i, K.BID] = tp.bb[c]
        b.best[i, K.ASK] = tp.ba[c]
        if mine and k != TRADE:
            if cross_fills(b, st, i, tp.t[c]) > 0:
                mine = has_own(b, i)
        c += 1
        n += 1
        lo = b.lower_tick[i]
        if (b.best[i, K.BID] - lo < margin or b.best[i, K.ASK] - lo > L - 1 - margin
                or b.best[i, K.ASK] - lo < margin or b.best[i, K.BID] - lo > L - 1 - margin):
            recentre(b, tp, i, c, margin)
            mine = has_own(b, i)
    st.cursor[i] = c
    st.now[i] = t_stop
    b.counters[i, K.C_EVENTS] += n
    return n


@kernel
def virtual_take(b, i, taker, qty, limit_tick):
    """Our marketable order filled against the recorded levels inside the window, best first, up
    to ``limit_tick``, without consuming them (no impact). Returns (lots, notional tick-lots)."""
    L = b.bg.shape[2]
    rest = 1 - taker
    lo = b.lower_tick[i]
    idx = b.best[i, rest] - lo
    step = 1 if rest == K.ASK else -1
    v = qty
    notional = np.int64(0)
    while v > 0 and 0 <= idx < L:
        tick = lo + idx
        if (taker == K.BUY and tick > limit_tick) or (taker == K.SELL and tick < limit_tick):
            break
        x = b.bg[i, rest, idx]
        x = v if v < x else x
        v -= x
        notional += x * tick
        idx += step
    f = qty - v
    if f > 0:
        if taker == K.BUY:
            b.inventory[i] += f
            b.cash_ticks[i] -= notional
        else:
            b.inventory[i] -= f
            b.cash_ticks[i] += notional
        b.counters[i, K.C_TAKER_BUY + taker] += f
    b.counters[i, K.C_MO_UNFILLED] += v
    return f, notional


@kernel
def own_post(b, i, side, tick, qty, t):
    """Our limit order: the marketable part fills against the recorded book (:func:`virtual_take`),
    the rest joins the back of its recorded queue. Returns (lots as taker, notional tick-lots)."""
    f = np.int64(0)
    notional = np.int64(0)
    opp = 1 - side
    if (side == K.BID and tick >= b.best[i, opp]) or (side == K.ASK and tick <= b.best[i, opp]):
        f, notional = virtual_take(b, i, side, qty, tick)  # BUY == BID, SELL == ASK
    v = qty - f
    L = b.bg.shape[2]
    idx = tick - b.lower_tick[i]
    if v <= 0 or idx < 0 or idx >= L:
        return f, notional
    if (side == K.BID and tick >= b.best[i, opp]) or (side == K.ASK and tick <= b.best[i, opp]):
        return f, notional  # the book had too little inside the window: the rest is not posted
    o = b.orders
    for j in range(o.shape[1]):
        if o[i, j, K.ORD_QTY] == 0:
            o[i, j, K.ORD_SIDE] = side
            o[i, j, K.ORD_PX] = tick
            o[i, j, K.ORD_QTY] = v
            o[i, j, K.ORD_AHEAD] = b.bg[i, side, idx]
            o[i, j, K.ORD_SEQ] = b.seq[i]
            b.ord_time[i, j] = t
            b.seq[i] += 1
            b.own[i, side, idx] += v
            b.counters[i, K.C_OWN_ADDED] += v
            break
    return f, notional


@kernel
def own_cancel(b, st, i, j):
    side = b.orders[i, j, K.ORD_SIDE]
    st.tr_qty[i, side] = 0
    st.tr_px[i, side] = -1
    K.own_cancel(b, i, j)


# --------------------------------------------------------------------------- processes ---
@kernel
def market_step(tr, st, p, c, qc, actions, work, i):
    """One step of row ``i`` (the rules in :class:`ReplayMarketMakingEnv`'s manual)."""
    i = np.int64(i)
    b = st.book
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
    t0 = st.now[i]
    t_end = t0 + c.dt_ns
    D = st.hist.shape[1]
    s_obs = st.hist[i, (tr.step[i] + 1) % D, lob.F_MID]

    tau = (c.n_steps - tr.step[i]) * c.dt
    d_bid, d_ask, gamma, skew = action_depths(actions, i, qc, q, c.sig2, tau, work.gam, work.l_bid,
                                              work.l_ask)
    lower = b.lower_tick[i]
    n_levels = b.bg.shape[2]
    bid_tick = lob.to_tick(np.floor((s_obs - d_bid) / tick + 1e-9), lower, n_levels)
    ask_tick = lob.to_tick(np.ceil((s_obs + d_ask) / tick - 1e-9), lower, n_levels)
    if ask_tick <= bid_tick:
        ask_tick = bid_tick + 1
    v = action_hedge(actions, i, qc)

    # latency: the recording moves on before our orders arrive
    lat = c.latency_ns
    if c.jitter_ns > 0.0:
        bits, s0, s1 = xoroshiro_next(b.rng[i, 0], b.rng[i, 1])
        b.rng[i, 0] = s0
        b.rng[i, 1] = s1
        lat += np.int64(-np.log(1.0 - to_unit(bits)) * c.jitter_ns)
    if lat > c.dt_ns:
        lat = c.dt_ns
    if lat > 0:
        run_events(b, st, i, t0 + lat, c.qmodel, c.qpower, c.margin, c.tox_decay)

    # our operations: cancel moved quotes, hedge, then (re-)quote
    lower = b.lower_tick[i]
    jb = lob.own_slot(b, i, K.BID)
    if jb >= 0 and b.orders[i, jb, K.ORD_PX] != bid_tick:
        own_cancel(b, st, i, jb)
    ja = lob.own_slot(b, i, K.ASK)
    if ja >= 0 and b.orders[i, ja, K.ORD_PX] != ask_tick:
        own_cancel(b, st, i, ja)
    impact_cost = 0.0
    taker_lots = np.int64(0)
    q = b.inventory[i]
    q_max = c.q_max
    if q + v > q_max:
        v = q_max - q
    elif q + v < -q_max:
        v = -q_max - q
    v_done = np.int64(0)
    pre2 = b.best[i, K.BID] + b.best[i, K.ASK]
    if v != 0:
        taker = K.BUY if v > 0 else K.SELL
        f, notional = virtual_take(b, i, np.int64(taker), abs(v),
                                   K.NO_LIMIT_BUY if v > 0 else K.NO_LIMIT_SELL)
        cost2 = 2 * notional - f * pre2 if v > 0 else f * pre2 - 2 * notional
        impact_cost += 0.5 * cost2 * tick
        taker_lots += f
        v_done = f if v > 0 else -f
    for side in range(2):
        q = b.inventory[i]
        z = min(c.quote_lots, q_max - q) if side == K.BID else min(c.quote_lots, q_max + q)
        tk = bid_tick if side == K.BID else ask_tick
        j = lob.own_slot(b, i, side)
        if j >= 0:
            K.own_reduce(b, i, np.int64(j), z)  # same price: keeps its queue position
        elif z > 0:
            st.tr_px[i, side] = -1  # a new order: no trades at its level yet
            st.tr_qty[i, side] = 0
            f, notional = own_post(b, i, np.int64(side), tk, z, float(st.now[i]))
            if f > 0:
                taker_lots += f
                cost2 = 2 * notional - f * pre2 if side == K.BID else f * pre2 - 2 * notional
                impact_cost += 0.5 * cost2 * tick

    # the rest of the step
    run_events(b, st, i, t_end, c.qmodel, c.qpower, c.margin, c.tox_decay)

    q = b.inventory[i]
    mid2_1 = b.best[i, K.BID] + b.best[i, K.ASK]
    w2_1 = 2 * b.cash_ticks[i] + q * mid2_1
    fill_b = cnt[i, K.C_OWN_FILLED_BID] - fb0
    fill_a = cnt[i, K.C_OWN_FILLED_ASK] - fa0
    fees = c.maker_fee * (fill_b + fill_a) + c.taker_fee * taker_lots
    dw = 0.5 * (w2_1 - w2_0) * tick - fees
    ds = 0.5 * (mid2_1 - mid2_0) * tick
    w_after = 0.5 * w2_1 * tick - tr.ep_stats[i, lob.ST_FEES] - fees
    quote_bid = lob.own_slot(b, i, K.BID) >= 0 or fill_b > 0
    quote_ask = lob.own_slot(b, i, K.ASK) >= 0 or fill_a > 0
    o = Outcome(dw, impact_cost, fees, q, ds, w_after - tr.wealth0[i], bid_tick * tick,
                ask_tick * tick, quote_bid, quote_ask, s_obs - bid_tick * tick,
                ask_tick * tick - s_obs, gamma, skew, v_done, fill_b, fill_a, s_obs,
                (ask_tick - bid_tick) * tick, c.dt, np.nan)
    return o, lob.Extra(cnt[i, K.C_EVENTS] - ev0, cnt[i, K.C_BUY_VOL] - bv0, cnt[i, K.C_SELL_VOL] - sv0,
                        taker_lots, np.int64(0), np.int64(0))  # no quote sizes here (unused aux)


@kernel
def clip_spread(b, st, tr, i):
    """The spread feature capped at the window's width (the observation space's bound): the
    recorded spread can gap wider for a moment (docs/REPLAY.md, "Measured on the captures")."""
    slot = tr.step[i] % st.hist.shape[1]
    L = float(b.bg.shape[2])
    if st.hist[i, slot, lob.F_SPREAD] > L:
        st.hist[i, slot, lob.F_SPREAD] = L


@kernel
def post_step(tr, st, p, c, i, o, x, out):
    """The book scenario's post-step (aux columns, statistics, flow EWMAs, features), spread capped."""
    lob.post_step(tr, st, p, c, i, o, x, out)
    clip_spread(st.book, st, tr, np.int64(i))


@kernel
def reset_row(tr, st, p, c, i):
    """Pick the episode's window, load the recorded book as of its first event into the row's
    ladder (the level index), cancel our orders; cash 0, q = q0."""
    i = np.int64(i)
    b = st.book
    tp = st.tape
    W = tp.win_ev.shape[0]
    if c.sequential != 0:
        w = (i + st.episodes[i] * b.bg.shape[0]) % W
    else:
        bits, s0, s1 = xoroshiro_next(b.rng[i, 0], b.rng[i, 1])
        b.rng[i, 0] = s0
        b.rng[i, 1] = s1
        w = np.int64(to_unit(bits) * W)
        w = W - 1 if w >= W else w
    st.episodes[i] += 1
    e = tp.win_ev[w]
    o = b.orders
    for j in range(o.shape[1]):
        o[i, j, K.ORD_QTY] = 0
    L = b.bg.shape[2]
    for s in range(2):
        for idx in range(L):
            b.own[i, s, idx] = 0
    set_touch(b, tp, i, e)
    b.lower_tick[i] = (b.best[i, K.BID] + b.best[i, K.ASK]) // 2 - L // 2
    refill(b, tp, i, np.int64(0), np.int64(L), e)
    st.cursor[i] = e
    st.now[i] = tp.win_t[w]
    st.tr_px[i, 0] = -1
    st.tr_px[i, 1] = -1
    st.tr_qty[i, 0] = 0
    st.tr_qty[i, 1] = 0
    b.time[i] = 0.0
    b.error[i] = 0
    b.inventory[i] = c.q0
    b.cash_ticks[i] = 0
    st.flow_ewma[i, 0] = 0.0
    st.flow_ewma[i, 1] = 0.0
    for j in range(st.flow.shape[1]):  # an empty toxicity record, no market order being grouped
        st.flow[i, j] = 0.0
    st.flow[i, G_LAST] = -1.0
    wealth0 = b.inventory[i] * 0.5 * (b.best[i, K.BID] + b.best[i, K.ASK]) * c.tick
    row = reset_track(tr, i, c.var0, wealth0)
    lob.snapshot(b, st, tr, c, i)
    clip_spread(b, st, tr, i)
    hist = st.hist
    for k in range(hist.shape[1]):
        for f in range(lob.N_FEATURES):
            hist[i, k, f] = hist[i, 0, f]
    return row


# ----------------------------------------------------------------------------- kernels ---
@entry
def step(tr, st, params, actions, out, work, lo, hi):
    """Step rows ``lo:hi`` by ``dt`` of the recording and autoreset finished ones; -1, or the
    first row whose action is NaN or infinite (nothing is stepped then)."""
    bad = first_bad_row(actions)
    if bad >= 0:
        return bad
    step_rows(tr, st, params[0], actions, out, work, lo, hi, prepare, market_step, post_step,
              lob.write_obs, reset_row)
    return -1


@entry
def reset(mask, tr, st, params, out):
    """Reset the rows where ``mask`` is true (window, book, observation)."""
    reset_rows(mask, tr, st, params[0], out, prepare, lob.write_obs, reset_row)


@entry
def replay_all(st, i, t_stop, qmodel, qpower, margin, tox_a):
    """Replay row ``i`` to ``t_stop`` ns without stepping (benchmarks/replay_speed.py)."""
    return run_events(st.book, st, np.int64(i), t_stop, qmodel, qpower, margin, tox_a)


# ------------------------------------------------------------------------ declaration ---
class ReplayScenario(lob.LOBScenario):
    """The recorded book (module docstring); the book scenario's columns, spaces and fields."""

    id = ENV_ID
    config_class = ReplayEnvConfig
    defaults = REPLAY_DEFAULTS
    params_dtype = PARAMS_DTYPE
    step_kernel = staticmethod(step)
    reset_kernel = staticmethod(reset)
    sized_step_kernel = None  # quote sizes are the simulated book's only (BatchMarket refuses them)
    default_baselines = ("as", "symmetric", "glft")

    def check(self, config):
        from ..config import ConfigError

        m, rc = config.market, config.replay
        if config.reward.risk_penalty != "time":
            raise ConfigError("reward.risk_penalty: the replay's price variance is the recording's, "
                              f"not configured; must be 'time' (got {config.reward.risk_penalty!r})")
        rec = recording(rc.path)
        if abs(m.tick_size - rec.tick_size) > 1e-12 * max(1.0, rec.tick_size):
            raise ConfigError(f"market.tick_size: {rec.meta.get('source')} has tick {rec.tick_size:g}; set "
                              f"market.tick_size to it (got {m.tick_size!r})")
        if rc.entry_latency >= m.dt:
            raise ConfigError(f"replay.entry_latency: must be < market.dt = {m.dt} (got {rc.entry_latency})")
        if m.adverse_jump != 0.0:
            raise ConfigError("market.adverse_jump: the replay has no jump on fill; must be 0 "
                              f"(got {m.adverse_jump!r})")
        if 2 * rc.recentre_margin + 8 >= rc.n_levels:
            raise ConfigError(f"replay.recentre_margin: {rc.recentre_margin} too large for replay.n_levels = "
                              f"{rc.n_levels}")
        windows(config, rec)

    def model_note(self, config):
        m = config.market
        return (f"the baselines (and 'optimal') use the intensity model lambda(delta) = A exp(-k delta) with "
                f"market.sigma={m.sigma}, A={m.A}, k={m.k} (python -m mmgym.calibrate --data); the env "
                f"replays {os.path.basename(config.replay.path)}")

    def pack(self, config, raw_depths=False):
        return pack(config, raw_depths)

    def new_state(self, config, num_envs, rng):
        return new_state(config, num_envs, rng)

    def ladder_levels(self, config):
        """The replay's ladder (``replay.n_levels``): the book's observation space is inherited."""
        return config.replay.n_levels

    def field_array(self, market, name):
        if name == "time":
            st = market.state
            return (st.now - st.tape.t[0]) / 1e9
        return super().field_array(market, name)

    check_state = Scenario.check_state  # nothing to check: the replay refuses no operation


SCENARIO = ReplayScenario()


# ---------------------------------------------------------------------------- the envs ---
class ReplayMarketMakingEnv(ScenarioEnv):
    r"""Market making against a recorded limit order book (a Binance capture replayed).

    ## Description

    The recording ``replay.path`` (a raw capture or a ``python -m mmgym.data convert`` file;
    docs/REPLAY.md) is replayed event by event: recorded level updates set the levels, recorded
    trades fill our orders. Our orders never change the recorded flow (no market impact, as in
    hftbacktest). Each episode is a window of ``market.horizon`` seconds of the recording
    (``replay.start``, ``replay.stride``, ``replay.start_mode``); one step covers ``market.dt``
    seconds:

    0. quotes from the action and the *observed* mid (``replay.obs_delay_steps`` old), mapped to
       ticks as on the simulated book (bid floored, ask ceiled, ask >= bid + 1 tick);
    1. the recording runs for the order-entry latency (``replay.entry_latency``, plus an
       exponential extra of mean ``replay.entry_latency_jitter``);
    2. our orders arrive: a quote whose price changed is cancelled (its queue position is lost), one
       at an unchanged price keeps its place; the hedge market order and a marketable quote fill
       against the recorded levels (best first, no impact); a new quote joins the *back* of its
       recorded queue (lots ahead = the recorded level);
    3. the recording runs to the end of the step. A recorded trade fills our order at a better price
       in full, and at its own price what is left after the lots ahead of us; the lots ahead shrink
       with trades at our price, and with recorded decreases of our level by the queue model
       (``replay.queue_model``: pessimistic or power), trades first; an order the recorded touch
       moves through (an ask at or below the best bid) fills in full at its price;
    4. reward, as on the simulated book (mid = recorded (best bid + best ask) / 2).

    ## Action Space

    As ``mmgym/LOBMarketMaking-v0``: ``Box(-1, 1, (2,))`` (``(3,)`` with ``action.hedge``).

    ## Observation Space

    ``Box(float32, (14,))``, the columns of ``mmgym/LOBMarketMaking-v0`` in the same order
    (inventory, time left, realised vol, last fills, last mid change, spread, depth imbalance, our
    queue positions, signed trade flow, and the toxicity features 11-13 from the recorded market
    orders: :func:`tox_trade`); the spread's upper bound is ``replay.n_levels``.

    ## Rewards

    The same terms and keys as ``mmgym/LOBMarketMaking-v0`` (``pnl``, ``impact``, ``fees``,
    ``inventory_penalty``, ``terminal_penalty``, ``dampening``, ``utility``; all in ``info``).

    ## Starting State

    The recorded book at the window's first event, cash 0, q = ``market.q0``, no orders of ours.

    ## Episode End

    Terminated after ``round(horizon / dt)`` steps; never truncated.

    ## Arguments

    ``gym.make("mmgym/ReplayMarketMaking-v0", config=None, render_mode=None, **overrides)``: as
    the book's, with ``replay={...}`` (None: :data:`REPLAY_DEFAULTS`, the shipped excerpt).

    ## Version History

    - v0: initial version.
    """

    scenario_id = ENV_ID


class ReplayMarketMakingVectorEnv(ScenarioVectorEnv):
    """``gym.make_vec("mmgym/ReplayMarketMaking-v0", num_envs=N, vectorization_mode="vector_entry_point")``."""

    scenario_id = ENV_ID

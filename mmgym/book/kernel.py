"""Batched limit order book: a dense tick ladder per env, FIFO queues, our own orders, and
event-driven background flow in the spirit of Cont, Stoikov & Talreja (2010).

numpy + numba only. ``N`` independent books live in one :class:`BookState` of batch-first arrays;
every kernel loops over envs (or takes an env index ``i``) and never calls back into Python.

Ladder
    Each env has ``L`` price levels per side, index ``idx = price_tick - lower_tick[i]``
    (hftbacktest's ROI-vector depth). ``bid_bg/ask_bg`` hold background lots per level,
    ``bid_own/ask_own`` our resting lots per level (the sum of our order records there).
    Prices are integer ticks; cash is kept in tick-lots (``cash_ticks``), so accounting is exact.

Volume outside the window
    A limit order (background or ours) whose price falls outside ``[lower, lower + L)`` is
    rejected (counted in ``C_BG_OUTSIDE``, or returned as ``-2`` for ours). A market order walks
    the ladder only; whatever finds no liquidity inside the window is discarded
    (``C_MO_UNFILLED``). When the best bid or ask comes within ``margin`` levels of an edge,
    :func:`_recentre` shifts the window so the mid is in the middle: background lots shifted out
    are removed (``C_BG_DROPPED``), our orders shifted out are cancelled (``C_OWN_DROPPED``).

Empty sides
    ``best_bid/best_ask`` are absolute ticks. When a side empties, its best keeps its last value
    (a stale reference) and :func:`_is_empty` reports it empty; arrivals are placed relative to
    the stale value and the mid uses it, so the book always has a reference price.

Queue position
    Each of our orders stores ``ord_ahead``: background lots ahead of it in its level's FIFO queue
    (our own earlier orders at the same level are ahead too, ordered by ``ord_seq``). A market
    order consumes a level front to back: background ahead of our first order, our first order,
    background between, ..., then the background behind the last of ours. A background cancel of
    ``x`` lots at a level with our orders is located by the queue model: the background at the
    level splits into segments ``s_0`` (ahead of our first order), ..., ``s_m`` (behind the
    last one).

    - ``QUEUE_PESSIMISTIC``: cancels come from the back (``s_m`` first, then ``s_{m-1}``...), so
      ``ahead = min(ahead, level background after the cancel)``.
    - ``QUEUE_POWER``: the cancel hits segment ``j`` with probability ``s_j^n / sum_k s_k^n`` (for
      one order: P(in front) = front^n / (front^n + back^n), hftbacktest's
      ``PowerProbQueueFunc``); the part of the cancel larger than ``s_j`` comes from the back.

Self-trade prevention
    When our own marketable order reaches a level holding our resting orders, those resting orders
    are cancelled first ("cancel resting"), so we never trade with ourselves.

Background flow (Cont, Stoikov & Talreja 2010, sec. 2)
    Per side: a limit order arrives at distance ``d`` ticks from the opposite best at rate
    ``lam[d-1]`` (``d = 1..K``); a market order at rate ``mu``; the background lots at distance
    ``d`` (``d = 1..K``) from the opposite best are cancelled at rate ``theta[d-1] * x_d`` (``x_d``
    lots). Sizes are geometric on {1, 2, ...} with the configured means (cancel sizes use the
    limit-order mean, clipped to the level). Background beyond distance ``K`` is inert (neither
    cancelled nor joined), as in CST's K-level model, but tradeable. The flow is simulated
    exactly by Gillespie's direct method (Gillespie 1977): the next event after an exponential
    time with the total rate, its type drawn in proportion to the rates. Every event draws
    exactly four uniforms from the env's stream (time, type+level, size, queue), so the stream's
    position depends only on the number of events.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from ..core import intensity as _IK
from ..core.rewards import reward_terms
from ..sim.rng import uniform

BID = 0
ASK = 1
BUY = 0  # taker side: consumes asks
SELL = 1  # taker side: consumes bids

QUEUE_PESSIMISTIC = 0
QUEUE_POWER = 1

NO_LIMIT_BUY = np.int64(2**62)
NO_LIMIT_SELL = np.int64(-(2**62))

# ------------------------------------------------------------------------------- counters ---
# counters: (N, N_CNT) int64, lots since the last reset (events for C_EVENTS).
C_BG_ADDED = 0  # background lots that came to rest
C_BG_CANCELLED = 1  # background lots cancelled
C_BG_TRADED = 2  # resting background lots consumed by takers
C_BG_DROPPED = 3  # background lots shifted out of the window
C_OWN_ADDED = 4  # our lots that came to rest
C_OWN_CANCELLED = 5  # our resting lots cancelled (by us or by self-trade prevention)
C_OWN_FILLED_BID = 6  # our resting bid lots filled (passive buys)
C_OWN_FILLED_ASK = 7  # our resting ask lots filled (passive sells)
C_OWN_DROPPED = 8  # our resting lots cancelled because the window moved away
C_TAKER_BUY = 9  # lots we bought as taker
C_TAKER_SELL = 10  # lots we sold as taker
C_BUY_VOL = 11  # all volume traded with a buyer as aggressor
C_SELL_VOL = 12  # all volume traded with a seller as aggressor
C_EVENTS = 13  # background events simulated
C_MO_UNFILLED = 14  # market volume that found no liquidity in the window
C_BG_OUTSIDE = 15  # background limit lots rejected outside the window
N_CNT = 16

# -------------------------------------------------------------------- flow parameters ---
# fp: (N_FP,) float64; lam, theta: (K,) float64 rates per time unit (theta per resting lot).
FP_MU_BUY = 0  # market buy rate
FP_MU_SELL = 1  # market sell rate
FP_LOGQ_LIMIT = 2  # log(1 - 1/mean) of the geometric limit/cancel size (0: always 1 lot)
FP_LOGQ_MARKET = 3  # same for market orders
FP_MAX_SIZE = 4  # cap on any drawn size (lots)
FP_QUEUE_MODEL = 5  # QUEUE_PESSIMISTIC or QUEUE_POWER
FP_QUEUE_POWER = 6  # exponent n of QUEUE_POWER
FP_MARGIN = 7  # recentre when a best is within this many levels of an edge
N_FP = 8

# ----------------------------------------------------------------------------- book ops ---
# ops: (N, n_ops, 5) float64 rows (code, side, tick_or_slot, qty, u); see book_apply_ops.
OP_BG_LIMIT = 0
OP_BG_CANCEL = 1
OP_MARKET = 2  # background market order
OP_OWN_LIMIT = 3
OP_OWN_CANCEL = 4
OP_OWN_MARKET = 5
OP_RECENTRE = 6  # move lower_tick to the given tick


class BookState(NamedTuple):
    """State of ``N`` books (``L`` levels, ``M`` order slots each); all arrays batch-first.

    Attributes:
        lower_tick: (N,) int64, absolute tick of ladder index 0.
        bid_bg, ask_bg: (N, L) int64, background resting lots per level.
        bid_own, ask_own: (N, L) int64, our resting lots per level.
        best_bid, best_ask: (N,) int64, absolute ticks of the best prices (stale when empty).
        time: (N,) float64, simulated time (time units).
        ord_side: (N, M) int64, BID or ASK. ord_px: (N, M) int64, absolute tick.
        ord_qty: (N, M) int64, remaining lots (0: free slot).
        ord_ahead: (N, M) int64, background lots ahead in the queue.
        ord_seq: (N, M) int64, entry sequence number (FIFO order among our orders).
        ord_time: (N, M) float64, entry time.
        seq: (N,) int64, next sequence number.
        cash_ticks: (N,) int64, cash in tick-lots (price = tick * tick_size).
        inventory: (N,) int64, lots held.
        counters: (N, N_CNT) int64 (``C_*``).
        rng: (N, 2) uint64, per-env xoroshiro128+ streams (:mod:`mmgym.sim.rng`).
    """

    lower_tick: np.ndarray
    bid_bg: np.ndarray
    ask_bg: np.ndarray
    bid_own: np.ndarray
    ask_own: np.ndarray
    best_bid: np.ndarray
    best_ask: np.ndarray
    time: np.ndarray
    ord_side: np.ndarray
    ord_px: np.ndarray
    ord_qty: np.ndarray
    ord_ahead: np.ndarray
    ord_seq: np.ndarray
    ord_time: np.ndarray
    seq: np.ndarray
    cash_ticks: np.ndarray
    inventory: np.ndarray
    counters: np.ndarray
    rng: np.ndarray


def new_book_state(num_envs: int, n_levels: int, n_slots: int, rng: np.ndarray | None = None) -> BookState:
    """Allocate zeroed state for ``num_envs`` books (``rng`` is shared with the caller if given)."""
    n, L, M = num_envs, n_levels, n_slots
    z = lambda *s: np.zeros(s, dtype=np.int64)  # noqa: E731
    return BookState(
        lower_tick=z(n), bid_bg=z(n, L), ask_bg=z(n, L), bid_own=z(n, L), ask_own=z(n, L),
        best_bid=z(n), best_ask=z(n), time=np.zeros(n),
        ord_side=z(n, M), ord_px=z(n, M), ord_qty=z(n, M), ord_ahead=z(n, M), ord_seq=z(n, M),
        ord_time=np.zeros((n, M)), seq=z(n), cash_ticks=z(n), inventory=z(n),
        counters=z(n, N_CNT),
        rng=np.ones((n, 2), dtype=np.uint64) if rng is None else rng,
    )


# ------------------------------------------------------------------------------ helpers ---
@njit(cache=True, inline="always")
def _level_total(b, i, side, idx):
    if side == BID:
        return b.bid_bg[i, idx] + b.bid_own[i, idx]
    return b.ask_bg[i, idx] + b.ask_own[i, idx]


@njit(cache=True, inline="always")
def _is_empty(b, i, side):
    """True if ``side`` has no resting volume at its recorded best (so none at all)."""
    L = b.bid_bg.shape[1]
    idx = (b.best_bid[i] if side == BID else b.best_ask[i]) - b.lower_tick[i]
    if idx < 0 or idx >= L:
        return True
    return _level_total(b, i, side, idx) == 0


@njit(cache=True)
def _rescan_best(b, i, side):
    """Set the best of ``side`` by scanning the whole window; keep the stale value if empty."""
    L = b.bid_bg.shape[1]
    if side == BID:
        for idx in range(L - 1, -1, -1):
            if b.bid_bg[i, idx] + b.bid_own[i, idx] > 0:
                b.best_bid[i] = b.lower_tick[i] + idx
                return
    else:
        for idx in range(L):
            if b.ask_bg[i, idx] + b.ask_own[i, idx] > 0:
                b.best_ask[i] = b.lower_tick[i] + idx
                return


@njit(cache=True, inline="always")
def _after_removal(b, i, side, idx):
    """Restore the best of ``side`` after volume left level ``idx`` (scan away from the touch)."""
    L = b.bid_bg.shape[1]
    if side == BID:
        if b.best_bid[i] - b.lower_tick[i] != idx or b.bid_bg[i, idx] + b.bid_own[i, idx] > 0:
            return
        for j in range(idx - 1, -1, -1):
            if b.bid_bg[i, j] + b.bid_own[i, j] > 0:
                b.best_bid[i] = b.lower_tick[i] + j
                return
    else:
        if b.best_ask[i] - b.lower_tick[i] != idx or b.ask_bg[i, idx] + b.ask_own[i, idx] > 0:
            return
        for j in range(idx + 1, L):
            if b.ask_bg[i, j] + b.ask_own[i, j] > 0:
                b.best_ask[i] = b.lower_tick[i] + j
                return


@njit(cache=True, inline="always")
def _after_add(b, i, side, tick):
    """Update the best of ``side`` after volume came to rest at ``tick``."""
    if side == BID:
        if _is_empty_except(b, i, BID, tick) or tick > b.best_bid[i]:
            b.best_bid[i] = tick
    else:
        if _is_empty_except(b, i, ASK, tick) or tick < b.best_ask[i]:
            b.best_ask[i] = tick


@njit(cache=True, inline="always")
def _is_empty_except(b, i, side, tick):
    # the side was empty before the add iff its recorded best is empty, unless the best is the
    # level just added to (then it was non-empty only if it still holds volume, which it does)
    best = b.best_bid[i] if side == BID else b.best_ask[i]
    if best == tick:
        return False
    return _is_empty(b, i, side)


@njit(cache=True, inline="always")
def _next_own(b, i, side, tick, after_seq):
    """Slot of our next order (by seq, > after_seq) resting at (side, tick), or -1."""
    best = -1
    best_seq = np.int64(2**62)
    for j in range(b.ord_qty.shape[1]):
        if b.ord_qty[i, j] > 0 and b.ord_side[i, j] == side and b.ord_px[i, j] == tick:
            s = b.ord_seq[i, j]
            if after_seq < s < best_seq:
                best = j
                best_seq = s
    return best


@njit(cache=True, inline="always")
def geometric_size(u, logq, max_size):
    """Geometric size on {1, 2, ...} with P(size > n) = q^n, q = 1 - 1/mean: 1 + floor(ln(1-u)/ln q)."""
    if logq == 0.0:
        return np.int64(1)
    s = 1.0 + np.floor(np.log(1.0 - u) / logq)
    if s > max_size:
        s = max_size
    return np.int64(s)


# ------------------------------------------------------------------------- own fills ---
@njit(cache=True, inline="always")
def _passive_fill(b, i, side, tick, f):
    """Our resting order on ``side`` at ``tick`` fills ``f`` lots (cash exact in tick-lots)."""
    if side == BID:
        b.inventory[i] += f
        b.cash_ticks[i] -= f * tick
        b.counters[i, C_OWN_FILLED_BID] += f
    else:
        b.inventory[i] -= f
        b.cash_ticks[i] += f * tick
        b.counters[i, C_OWN_FILLED_ASK] += f


@njit(cache=True, inline="always")
def _take_level(b, i, side, idx, v, own_taker):
    """A taker of ``v`` lots consumes level ``idx`` of resting ``side``; returns lots left.

    FIFO: background ahead of our first order, our first order, ..., background behind the last
    of ours. An own taker first cancels our resting orders here (self-trade prevention).
    """
    tick = b.lower_tick[i] + idx
    bg = b.bid_bg if side == BID else b.ask_bg
    own = b.bid_own if side == BID else b.ask_own
    taker_buy = side == ASK
    if own[i, idx] == 0:
        # fast path: no order of ours here, plain FIFO consumption of the background
        x = min(v, bg[i, idx])
        bg[i, idx] -= x
        b.counters[i, C_BG_TRADED] += x
        if own_taker:
            if taker_buy:
                b.inventory[i] += x
                b.cash_ticks[i] -= x * tick
                b.counters[i, C_TAKER_BUY] += x
            else:
                b.inventory[i] -= x
                b.cash_ticks[i] += x * tick
                b.counters[i, C_TAKER_SELL] += x
        if taker_buy:
            b.counters[i, C_BUY_VOL] += x
        else:
            b.counters[i, C_SELL_VOL] += x
        return v - x
    if own_taker:
        j = _next_own(b, i, side, tick, -1)
        while j >= 0:
            r = b.ord_qty[i, j]
            own[i, idx] -= r
            b.counters[i, C_OWN_CANCELLED] += r
            b.ord_qty[i, j] = 0
            j = _next_own(b, i, side, tick, -1)
        x = min(v, bg[i, idx])
        bg[i, idx] -= x
        b.counters[i, C_BG_TRADED] += x
        if taker_buy:
            b.inventory[i] += x
            b.cash_ticks[i] -= x * tick
            b.counters[i, C_TAKER_BUY] += x
            b.counters[i, C_BUY_VOL] += x
        else:
            b.inventory[i] -= x
            b.cash_ticks[i] += x * tick
            b.counters[i, C_TAKER_SELL] += x
            b.counters[i, C_SELL_VOL] += x
        return v - x
    v0 = v
    consumed = np.int64(0)
    bgq = bg[i, idx]
    last = np.int64(-1)
    while v > 0:
        j = _next_own(b, i, side, tick, last)
        if j < 0:
            x = min(v, bgq - consumed)
            consumed += x
            v -= x
            break
        last = b.ord_seq[i, j]
        x = min(v, b.ord_ahead[i, j] - consumed)
        if x > 0:
            consumed += x
            v -= x
        if v == 0:
            break
        f = min(v, b.ord_qty[i, j])
        b.ord_qty[i, j] -= f
        own[i, idx] -= f
        v -= f
        _passive_fill(b, i, side, tick, f)
    bg[i, idx] -= consumed
    b.counters[i, C_BG_TRADED] += consumed
    if consumed > 0:
        for j in range(b.ord_qty.shape[1]):
            if b.ord_qty[i, j] > 0 and b.ord_side[i, j] == side and b.ord_px[i, j] == tick:
                b.ord_ahead[i, j] = max(0, b.ord_ahead[i, j] - consumed)
    if taker_buy:
        b.counters[i, C_BUY_VOL] += v0 - v
    else:
        b.counters[i, C_SELL_VOL] += v0 - v
    return v


@njit(cache=True, inline="always")
def take(b, i, taker_side, qty, limit_tick, own_taker):
    """Walk the opposite side level by level with a taker of ``qty`` lots up to ``limit_tick``.

    Args:
        b: BookState. i: env index. taker_side: BUY (consumes asks) or SELL (consumes bids).
        qty: lots (> 0). limit_tick: worst acceptable tick (``NO_LIMIT_*`` for a market order).
        own_taker: True for our orders (cash/inventory change, self-trade prevention).

    Returns:
        (filled lots, notional in tick-lots, last tick reached or -1).
    """
    L = b.bid_bg.shape[1]
    v = np.int64(qty)
    notional = np.int64(0)
    last_tick = np.int64(-1)
    rest_side = ASK if taker_side == BUY else BID
    if _is_empty(b, i, rest_side):
        return np.int64(0), notional, last_tick
    if taker_side == BUY:
        idx = b.best_ask[i] - b.lower_tick[i]
        while v > 0 and idx < L:
            tick = b.lower_tick[i] + idx
            if tick > limit_tick:
                break
            if b.ask_bg[i, idx] + b.ask_own[i, idx] > 0:
                v2 = _take_level(b, i, ASK, idx, v, own_taker)
                if v2 < v:
                    notional += (v - v2) * tick
                    last_tick = tick
                v = v2
            if v > 0:
                idx += 1
        _rescan_from(b, i, ASK, b.best_ask[i] - b.lower_tick[i])
    else:
        idx = b.best_bid[i] - b.lower_tick[i]
        while v > 0 and idx >= 0:
            tick = b.lower_tick[i] + idx
            if tick < limit_tick:
                break
            if b.bid_bg[i, idx] + b.bid_own[i, idx] > 0:
                v2 = _take_level(b, i, BID, idx, v, own_taker)
                if v2 < v:
                    notional += (v - v2) * tick
                    last_tick = tick
                v = v2
            if v > 0:
                idx -= 1
        _rescan_from(b, i, BID, b.best_bid[i] - b.lower_tick[i])
    return qty - v, notional, last_tick


@njit(cache=True, inline="always")
def _rescan_from(b, i, side, idx):
    """Best of ``side``: first non-empty level from ``idx`` away from the touch (stale if none)."""
    L = b.bid_bg.shape[1]
    if side == ASK:
        for j in range(max(idx, 0), L):
            if b.ask_bg[i, j] + b.ask_own[i, j] > 0:
                b.best_ask[i] = b.lower_tick[i] + j
                return
    else:
        for j in range(min(idx, L - 1), -1, -1):
            if b.bid_bg[i, j] + b.bid_own[i, j] > 0:
                b.best_bid[i] = b.lower_tick[i] + j
                return


# ---------------------------------------------------------------------- operations ---
@njit(cache=True, inline="always")
def bg_limit(b, i, side, tick, qty):
    """A background limit order: a marketable part matches first, the rest joins the back."""
    L = b.bid_bg.shape[1]
    v = np.int64(qty)
    if side == BID and not _is_empty(b, i, ASK) and tick >= b.best_ask[i]:
        f, _, _ = take(b, i, BUY, v, tick, False)
        v -= f
    elif side == ASK and not _is_empty(b, i, BID) and tick <= b.best_bid[i]:
        f, _, _ = take(b, i, SELL, v, tick, False)
        v -= f
    if v <= 0:
        return
    idx = tick - b.lower_tick[i]
    if idx < 0 or idx >= L:
        b.counters[i, C_BG_OUTSIDE] += v
        return
    if side == BID:
        b.bid_bg[i, idx] += v
    else:
        b.ask_bg[i, idx] += v
    b.counters[i, C_BG_ADDED] += v
    _after_add(b, i, side, tick)


@njit(cache=True, inline="always")
def bg_cancel(b, i, side, tick, qty, u, queue_model, power):
    """Cancel up to ``qty`` background lots at ``tick``; our queue positions follow the model.

    ``u`` in [0, 1) locates the cancel for QUEUE_POWER (module docstring). Returns lots cancelled.
    """
    L = b.bid_bg.shape[1]
    idx = tick - b.lower_tick[i]
    if idx < 0 or idx >= L:
        return np.int64(0)
    bg = b.bid_bg if side == BID else b.ask_bg
    B = bg[i, idx]
    x = min(np.int64(qty), B)
    if x <= 0:
        return np.int64(0)
    own = b.bid_own if side == BID else b.ask_own
    if own[i, idx] > 0:
        if queue_model == QUEUE_PESSIMISTIC:
            for j in range(b.ord_qty.shape[1]):
                if b.ord_qty[i, j] > 0 and b.ord_side[i, j] == side and b.ord_px[i, j] == tick:
                    b.ord_ahead[i, j] = min(b.ord_ahead[i, j], B - x)
        else:
            _power_cancel(b, i, side, tick, B, x, u, power)
    bg[i, idx] = B - x
    b.counters[i, C_BG_CANCELLED] += x
    _after_removal(b, i, side, idx)
    return x


@njit(cache=True)
def _power_cancel(b, i, side, tick, B, x, u, power):
    """QUEUE_POWER: remove ``x`` of the ``B`` background lots, segment j w.p. s_j^n / sum s^n."""
    # pass 1: total weight over segments (aheads are non-decreasing in seq)
    total = 0.0
    prev = np.int64(0)
    last = np.int64(-1)
    j = _next_own(b, i, side, tick, last)
    while j >= 0:
        s = b.ord_ahead[i, j] - prev
        if s > 0:
            total += s ** power
        prev = b.ord_ahead[i, j]
        last = b.ord_seq[i, j]
        j = _next_own(b, i, side, tick, last)
    s = B - prev
    if s > 0:
        total += s ** power
    # pass 2: pick the segment; k = index of the chosen segment (m = behind everything)
    target = u * total
    acc = 0.0
    prev = np.int64(0)
    last = np.int64(-1)
    k = np.int64(0)
    chosen = np.int64(-1)
    j = _next_own(b, i, side, tick, last)
    while j >= 0:
        s = b.ord_ahead[i, j] - prev
        if s > 0:
            acc += s ** power
            if target < acc and chosen < 0:
                chosen = k
        prev = b.ord_ahead[i, j]
        last = b.ord_seq[i, j]
        k += 1
        j = _next_own(b, i, side, tick, last)
    m = k  # number of our orders here; segment m is behind them all
    if chosen < 0:
        chosen = m
    # remove min(x, s_chosen) from the chosen segment: orders after it move up by that much
    s_chosen = _segment(b, i, side, tick, chosen, B)
    r1 = min(x, s_chosen)
    rest = x - r1
    _shift_aheads(b, i, side, tick, chosen, r1)
    # the remainder comes from the back: segment m, m-1, ... (segment c shrinks -> orders > c move)
    c = m
    while rest > 0 and c >= 0:
        s = _segment(b, i, side, tick, c, B - r1 - (x - r1 - rest))
        r = min(rest, s)
        if r > 0:
            _shift_aheads(b, i, side, tick, c, r)
            rest -= r
        c -= 1


@njit(cache=True)
def _segment(b, i, side, tick, c, B):
    """Size of background segment ``c`` (c = 0 ahead of our first order) at a level holding B."""
    prev = np.int64(0)
    last = np.int64(-1)
    k = 0
    j = _next_own(b, i, side, tick, last)
    while j >= 0:
        if k == c:
            return b.ord_ahead[i, j] - prev
        prev = b.ord_ahead[i, j]
        last = b.ord_seq[i, j]
        k += 1
        j = _next_own(b, i, side, tick, last)
    return B - prev


@njit(cache=True)
def _shift_aheads(b, i, side, tick, c, r):
    """Segment ``c`` lost ``r`` lots: our orders behind it (index >= c) move up by ``r``."""
    last = np.int64(-1)
    k = 0
    j = _next_own(b, i, side, tick, last)
    while j >= 0:
        if k >= c:
            b.ord_ahead[i, j] -= r
        last = b.ord_seq[i, j]
        k += 1
        j = _next_own(b, i, side, tick, last)


@njit(cache=True)
def own_limit(b, i, side, tick, qty, t):
    """Our limit order: a marketable part matches first (as taker), the rest joins the back.

    Returns:
        (slot, filled as taker, notional in tick-lots). ``slot`` is the record of the resting
        part, -1 if nothing rests (fully filled), -2 if the rest was rejected (outside the window
        or no free slot).
    """
    L = b.bid_bg.shape[1]
    v = np.int64(qty)
    f = np.int64(0)
    notional = np.int64(0)
    if side == BID and not _is_empty(b, i, ASK) and tick >= b.best_ask[i]:
        f, notional, _ = take(b, i, BUY, v, tick, True)
    elif side == ASK and not _is_empty(b, i, BID) and tick <= b.best_bid[i]:
        f, notional, _ = take(b, i, SELL, v, tick, True)
    v -= f
    if v <= 0:
        return np.int64(-1), f, notional
    idx = tick - b.lower_tick[i]
    if idx < 0 or idx >= L:
        return np.int64(-2), f, notional
    slot = -1
    for j in range(b.ord_qty.shape[1]):
        if b.ord_qty[i, j] == 0:
            slot = j
            break
    if slot < 0:
        return np.int64(-2), f, notional
    b.ord_side[i, slot] = side
    b.ord_px[i, slot] = tick
    b.ord_qty[i, slot] = v
    b.ord_ahead[i, slot] = b.bid_bg[i, idx] if side == BID else b.ask_bg[i, idx]
    b.ord_seq[i, slot] = b.seq[i]
    b.ord_time[i, slot] = t
    b.seq[i] += 1
    if side == BID:
        b.bid_own[i, idx] += v
    else:
        b.ask_own[i, idx] += v
    b.counters[i, C_OWN_ADDED] += v
    _after_add(b, i, side, tick)
    return np.int64(slot), f, notional


@njit(cache=True)
def own_cancel(b, i, slot):
    """Cancel our order in ``slot``; returns the lots cancelled (0 if the slot is free)."""
    r = b.ord_qty[i, slot]
    if r <= 0:
        return np.int64(0)
    side = b.ord_side[i, slot]
    idx = b.ord_px[i, slot] - b.lower_tick[i]
    if side == BID:
        b.bid_own[i, idx] -= r
    else:
        b.ask_own[i, idx] -= r
    b.ord_qty[i, slot] = 0
    b.counters[i, C_OWN_CANCELLED] += r
    _after_removal(b, i, side, idx)
    return r


@njit(cache=True)
def own_reduce(b, i, slot, new_qty):
    """Reduce our order in ``slot`` to ``new_qty`` lots in place (keeps its queue position)."""
    r = b.ord_qty[i, slot]
    if new_qty >= r:
        return
    if new_qty <= 0:
        own_cancel(b, i, slot)
        return
    d = r - new_qty
    idx = b.ord_px[i, slot] - b.lower_tick[i]
    if b.ord_side[i, slot] == BID:
        b.bid_own[i, idx] -= d
    else:
        b.ask_own[i, idx] -= d
    b.ord_qty[i, slot] = new_qty
    b.counters[i, C_OWN_CANCELLED] += d


@njit(cache=True)
def recentre_to(b, i, new_lower):
    """Move the window so index 0 is ``new_lower``; volume shifted out is dropped (counted)."""
    L = b.bid_bg.shape[1]
    s = new_lower - b.lower_tick[i]
    if s == 0:
        return
    for arr_k in range(4):
        if arr_k == 0:
            arr = b.bid_bg
        elif arr_k == 1:
            arr = b.ask_bg
        elif arr_k == 2:
            arr = b.bid_own
        else:
            arr = b.ask_own
        dropped = np.int64(0)
        if s > 0:
            for j in range(min(s, L)):
                dropped += arr[i, j]
            for j in range(L):
                src = j + s
                arr[i, j] = arr[i, src] if src < L else 0
        else:
            for j in range(max(L + s, 0), L):
                dropped += arr[i, j]
            for j in range(L - 1, -1, -1):
                src = j + s
                arr[i, j] = arr[i, src] if src >= 0 else 0
        if arr_k < 2:
            b.counters[i, C_BG_DROPPED] += dropped
    b.lower_tick[i] = new_lower
    for j in range(b.ord_qty.shape[1]):
        if b.ord_qty[i, j] > 0:
            idx = b.ord_px[i, j] - new_lower
            if idx < 0 or idx >= L:
                b.counters[i, C_OWN_DROPPED] += b.ord_qty[i, j]
                b.ord_qty[i, j] = 0
    if _is_empty(b, i, BID):
        _rescan_best(b, i, BID)
    if _is_empty(b, i, ASK):
        _rescan_best(b, i, ASK)


@njit(cache=True, inline="always")
def maybe_recentre(b, i, margin):
    """Recentre on the mid when a best is within ``margin`` levels of an edge (or outside)."""
    L = b.bid_bg.shape[1]
    lo = b.lower_tick[i]
    bi = b.best_bid[i] - lo
    ai = b.best_ask[i] - lo
    if bi < margin or ai < margin or bi > L - 1 - margin or ai > L - 1 - margin:
        centre = (b.best_bid[i] + b.best_ask[i]) // 2
        recentre_to(b, i, centre - L // 2)
        return True
    return False


@njit(cache=True)
def book_apply_ops(b, ops, queue_model, power, out):
    """Apply operation rows to each env in order (the test/replay entry point).

    Args:
        b: BookState.
        ops: (N, n_ops, 5) float64 rows ``(code, side, tick_or_slot, qty, u)`` with ``OP_*`` codes;
            ``side`` is BID/ASK for limits and cancels, BUY/SELL for market orders; ``u`` in [0, 1)
            is the queue-model draw of a background cancel. A code < 0 is a no-op (padding).
        queue_model, power: the queue model (``QUEUE_*``) and its exponent.
        out: (N, n_ops) int64, per op: slot (own limit), lots cancelled, or lots filled.
    """
    for i in range(ops.shape[0]):
        for k in range(ops.shape[1]):
            code = np.int64(ops[i, k, 0])
            side = np.int64(ops[i, k, 1])
            tick = np.int64(ops[i, k, 2])
            qty = np.int64(ops[i, k, 3])
            u = ops[i, k, 4]
            r = np.int64(0)
            if code == OP_BG_LIMIT:
                bg_limit(b, i, side, tick, qty)
            elif code == OP_BG_CANCEL:
                r = bg_cancel(b, i, side, tick, qty, u, queue_model, power)
            elif code == OP_MARKET:
                lim = NO_LIMIT_BUY if side == BUY else NO_LIMIT_SELL
                f, _, _ = take(b, i, side, qty, lim, False)
                b.counters[i, C_MO_UNFILLED] += qty - f
                r = f
            elif code == OP_OWN_LIMIT:
                r, _, _ = own_limit(b, i, side, tick, qty, b.time[i])
            elif code == OP_OWN_CANCEL:
                r = own_cancel(b, i, tick)
            elif code == OP_OWN_MARKET:
                lim = NO_LIMIT_BUY if side == BUY else NO_LIMIT_SELL
                r, _, _ = take(b, i, side, qty, lim, True)
            elif code == OP_RECENTRE:
                recentre_to(b, i, tick)
            out[i, k] = r


# ------------------------------------------------------------------------------ flow ---
@njit(cache=True)
def init_book(b, i, centre_tick, lam, theta, s0_spread):
    """Reset env ``i`` to a deterministic book around ``centre_tick``.

    Best bid ``centre - s0_spread // 2``, best ask ``best bid + s0_spread``; the level at distance
    ``d`` from the opposite best holds ``max(1, round(lam[d-1] / theta[d-1]))`` lots, the stationary
    mean of a level with arrivals lam and per-lot cancels theta (CST 2010, sec. 2). Clears our
    orders, cash, inventory and counters; the initial lots count as added.
    """
    L = b.bid_bg.shape[1]
    K = lam.shape[0]
    b.lower_tick[i] = centre_tick - L // 2
    for j in range(L):
        b.bid_bg[i, j] = 0
        b.ask_bg[i, j] = 0
        b.bid_own[i, j] = 0
        b.ask_own[i, j] = 0
    for j in range(b.ord_qty.shape[1]):
        b.ord_qty[i, j] = 0
        b.ord_ahead[i, j] = 0
    for j in range(N_CNT):
        b.counters[i, j] = 0
    b.seq[i] = 0
    b.cash_ticks[i] = 0
    b.inventory[i] = 0
    b.time[i] = 0.0
    bb = centre_tick - s0_spread // 2
    ba = bb + s0_spread
    b.best_bid[i] = bb
    b.best_ask[i] = ba
    for d in range(1, K + 1):
        th = theta[d - 1]
        n = max(1.0, np.rint(lam[d - 1] / th)) if th > 0.0 else 1.0
        q = np.int64(n)
        ib = ba - d - b.lower_tick[i]
        ia = bb + d - b.lower_tick[i]
        if ib >= 0 and ib < L and ba - d <= bb:
            b.bid_bg[i, ib] += q
            b.counters[i, C_BG_ADDED] += q
        if ia >= 0 and ia < L and bb + d >= ba:
            b.ask_bg[i, ia] += q
            b.counters[i, C_BG_ADDED] += q


@njit(cache=True, _nrt=False)
def run_flow(b, i, t_stop, max_events, lam, theta, fp, rec_t, rec_side, rec_px, rec_qty,
             rec_mid2, rec_n):
    """Simulate env ``i``'s background flow up to time ``t_stop`` or ``max_events`` events.

    Gillespie's direct method (Gillespie 1977) on the CST (2010) rates (module docstring). The
    event that would overshoot ``t_stop`` is discarded and the clock set to ``t_stop``: exact by
    the memorylessness of exponential waiting times. Market orders are appended to the ``rec_*``
    arrays while ``rec_n[0] < len(rec_t)`` (time, taker side, deepest tick reached, lots filled,
    twice the pre-trade mid in ticks).

    Returns:
        Number of events simulated.
    """
    L = b.bid_bg.shape[1]
    K = lam.shape[0]
    lam_sum = 0.0
    for d in range(K):
        lam_sum += lam[d]
    mu_b = fp[FP_MU_BUY]
    mu_s = fp[FP_MU_SELL]
    logq_l = fp[FP_LOGQ_LIMIT]
    logq_m = fp[FP_LOGQ_MARKET]
    max_size = fp[FP_MAX_SIZE]
    qmodel = np.int64(fp[FP_QUEUE_MODEL])
    power = fp[FP_QUEUE_POWER]
    margin = np.int64(fp[FP_MARGIN])
    rec_cap = rec_t.shape[0]
    events = np.int64(0)
    while events < max_events:
        lo = b.lower_tick[i]
        ba = b.best_ask[i] - lo
        bb = b.best_bid[i] - lo
        # cancel rates: d ranges clipped to the window so the loops are branch-free
        wb = 0.0
        for d in range(max(1, ba - L + 1), min(K, ba) + 1):
            wb += theta[d - 1] * b.bid_bg[i, ba - d]
        wa = 0.0
        for d in range(max(1, -bb), min(K, L - 1 - bb) + 1):
            wa += theta[d - 1] * b.ask_bg[i, bb + d]
        rate = 2.0 * lam_sum + mu_b + mu_s + wb + wa
        u_t = uniform(b.rng, i)
        u_e = uniform(b.rng, i)
        u_s = uniform(b.rng, i)
        u_q = uniform(b.rng, i)
        if rate <= 0.0:
            b.time[i] = t_stop
            return events
        t_next = b.time[i] - np.log(1.0 - u_t) / rate
        if t_next > t_stop:
            b.time[i] = t_stop
            return events
        b.time[i] = t_next
        x = u_e * rate
        if x < 2.0 * lam_sum:
            side = BID if x < lam_sum else ASK
            y = x if side == BID else x - lam_sum
            d = 1
            acc = lam[0]
            while y >= acc and d < K:
                acc += lam[d]
                d += 1
            size = geometric_size(u_s, logq_l, max_size)
            if side == BID:
                bg_limit(b, i, BID, b.best_ask[i] - d, size)
            else:
                bg_limit(b, i, ASK, b.best_bid[i] + d, size)
        elif x < 2.0 * lam_sum + mu_b + mu_s:
            taker = BUY if x < 2.0 * lam_sum + mu_b else SELL
            size = geometric_size(u_s, logq_m, max_size)
            mid2 = b.best_bid[i] + b.best_ask[i]
            lim = NO_LIMIT_BUY if taker == BUY else NO_LIMIT_SELL
            f, _, last = take(b, i, taker, size, lim, False)
            b.counters[i, C_MO_UNFILLED] += size - f
            n = rec_n[0]
            if f > 0 and n < rec_cap:
                rec_t[n] = t_next
                rec_side[n] = taker
                rec_px[n] = last
                rec_qty[n] = f
                rec_mid2[n] = mid2
                rec_n[0] = n + 1
        else:
            y = x - 2.0 * lam_sum - mu_b - mu_s
            side = BID if y < wb else ASK
            if side == ASK:
                y -= wb
            size = geometric_size(u_s, logq_l, max_size)
            # locate the level: cumulative theta(d) x_d
            acc = 0.0
            chosen = -1
            for d in range(1, K + 1):
                idx = (ba - d) if side == BID else (bb + d)
                if idx >= 0 and idx < L:
                    xd = b.bid_bg[i, idx] if side == BID else b.ask_bg[i, idx]
                    if xd > 0:
                        acc += theta[d - 1] * xd
                        chosen = idx
                        if y < acc:
                            break
            if chosen >= 0:
                bg_cancel(b, i, side, lo + chosen, size, u_q, qmodel, power)
        events += 1
        b.counters[i, C_EVENTS] += 1
        maybe_recentre(b, i, margin)
    return events


def book_flow(b, t_stop, lam, theta, fp):
    """Run every env's background flow to ``t_stop[i]`` (no recording); returns total events."""
    return _book_flow(b, np.asarray(t_stop, dtype=np.float64), lam, theta, fp, np.zeros(0),
                      np.zeros(0, dtype=np.int64), np.zeros(1, dtype=np.int64))


@njit(cache=True, _nrt=False)
def _book_flow(b, t_stop, lam, theta, fp, empty_f, empty_i, rec_n):
    """Run every env's background flow to ``t_stop[i]`` (no recording); returns total events.

    Compiled without numba's reference counting (``_nrt=False``): the hot path allocates nothing
    and per-access incref/decref of the state's arrays would dominate the cost of an event.
    """
    total = np.int64(0)
    for i in range(b.time.shape[0]):
        total += run_flow(b, i, t_stop[i], np.int64(2**62), lam, theta, fp, empty_f, empty_i,
                          empty_i, empty_i, empty_i, rec_n)
    return total


@njit(cache=True, _nrt=False)
def book_record(b, i, t_end, sample_dt, lam, theta, fp, out_mid2, rec_t, rec_side, rec_px,
                rec_qty, rec_mid2, rec_n):
    """Simulate env ``i`` for ``t_end`` time units from its current state, recording a tape.

    Args:
        out_mid2: (n_samples,) int64, twice the mid in ticks at times ``(k + 1) * sample_dt``.
        rec_*: market-order tape (see :func:`run_flow`); ``rec_n`` (1,) int64 counts rows.

    Returns:
        Number of events simulated.
    """
    t0 = b.time[i]
    total = np.int64(0)
    for k in range(out_mid2.shape[0]):
        total += run_flow(b, i, t0 + (k + 1) * sample_dt, np.int64(2**62), lam, theta, fp,
                          rec_t, rec_side, rec_px, rec_qty, rec_mid2, rec_n)
        out_mid2[k] = b.best_bid[i] + b.best_ask[i]
    return total


# ===================================================================== market-making env ===
# The env kernel reuses the intensity market's reward-term, aux and statistics layouts
# (mmgym.core.intensity TERM_*, AUX_*, ST_*) and appends its own after them.
from ..core.intensity import (  # noqa: E402
    AUX_ASK_PX, AUX_BID_PX, AUX_DEPTH_ASK, AUX_DEPTH_BID, AUX_FILL_ASK, AUX_FILL_BID, AUX_GAMMA,
    AUX_HEDGE, AUX_MID, AUX_NAMES, AUX_SKEW, MODE_AS_HYBRID, MODE_DEPTHS, MODE_OFFSETS, N_AUX,
    N_STATS, OBS_DIM, STAT_NAMES, ST_ABS_INV_SUM, ST_FEES, ST_FILLS, ST_FINAL_INV, ST_GAMMA_SUM,
    ST_HEDGE_LOTS, ST_IMPACT, ST_INV_PENALTY, ST_LENGTH, ST_MAX_ABS_INV, ST_PNL, ST_RETURN,
    ST_SKEW_SUM, ST_SPREAD_COUNT, ST_SPREAD_SUM, ST_TERM_PENALTY, TERM_DAMPENING, TERM_FEES,
    TERM_IMPACT, TERM_INVENTORY, TERM_NAMES, TERM_PNL, TERM_TERMINAL, TERM_UTILITY,
)

# observation: the intensity env's 6 features (same order), then the book's
OBS_SPREAD = OBS_DIM  # spread in ticks
OBS_IMBALANCE = OBS_DIM + 1  # (bid depth - ask depth) / (sum) over imbalance_levels from each best
OBS_QUEUE_BID = OBS_DIM + 2  # our bid's lots ahead / level volume, -1 without a resting bid
OBS_QUEUE_ASK = OBS_DIM + 3
OBS_FLOW = OBS_DIM + 4  # EWMA signed traded volume / EWMA traded volume (buyer-initiated > 0)
LOB_OBS_DIM = OBS_DIM + 5

AUX_SPREAD_TICKS = N_AUX
AUX_QUEUE_BID = N_AUX + 1
AUX_QUEUE_ASK = N_AUX + 2
AUX_EVENTS = N_AUX + 3
AUX_TAKER_LOTS = N_AUX + 4
N_LOB_AUX = N_AUX + 5
LOB_AUX_NAMES = AUX_NAMES + ("spread_ticks", "queue_bid", "queue_ask", "events", "taker_lots")

ST_EVENTS = N_STATS
ST_TAKER_LOTS = N_STATS + 1
N_LOB_STATS = N_STATS + 2
LOB_STAT_NAMES = STAT_NAMES + ("events", "taker_lots")
LOB_TERM_NAMES = TERM_NAMES

# ring buffer of market features (observation delay)
HF_MID = 0
HF_VOL = 1
HF_RET = 2
HF_SPREAD = 3
HF_IMB = 4
HF_FLOW = 5
N_HF = 6

# env parameters: (N_LP,) float64
# The shared fields sit at the intensity market's indices (mmgym.core.intensity.P_*), so that
# mmgym.envs.batch.build_intensity_params packs them for both markets; the book's own follow.
LP_TICK = _IK.P_TICK
LP_SIGMA = _IK.P_SIGMA
LP_DT = _IK.P_DT
LP_N_STEPS = _IK.P_N_STEPS
LP_K_BID = _IK.P_K_BID
LP_K_ASK = _IK.P_K_ASK
LP_MAX_INV = _IK.P_MAX_INV
LP_Q0 = _IK.P_Q0
LP_PHI = _IK.P_PHI
LP_ALPHA = _IK.P_ALPHA
LP_MAKER_FEE = _IK.P_MAKER_FEE
LP_TAKER_FEE = _IK.P_TAKER_FEE
LP_OBJECTIVE = _IK.P_OBJECTIVE
LP_CARA_GAMMA = _IK.P_CARA_GAMMA
LP_DAMPENING = _IK.P_DAMPENING
LP_ACTION_MODE = _IK.P_ACTION_MODE
LP_LOG_GAMMA_MIN = _IK.P_LOG_GAMMA_MIN
LP_LOG_GAMMA_MAX = _IK.P_LOG_GAMMA_MAX
LP_SKEW_MAX = _IK.P_SKEW_MAX
LP_OFFSET_MIN = _IK.P_OFFSET_MIN
LP_OFFSET_MAX = _IK.P_OFFSET_MAX
LP_HEDGE = _IK.P_HEDGE
LP_HEDGE_MAX = _IK.P_HEDGE_MAX
LP_VOL_DECAY = _IK.P_VOL_DECAY
LP_QUOTE_LOTS = _IK.N_PARAMS
LP_LATENCY = _IK.N_PARAMS + 1
LP_LATENCY_EVENTS = _IK.N_PARAMS + 2
LP_OBS_DELAY = _IK.N_PARAMS + 3
LP_WARMUP = _IK.N_PARAMS + 4
LP_CENTRE_TICK = _IK.N_PARAMS + 5
LP_INIT_SPREAD = _IK.N_PARAMS + 6
LP_IMB_LEVELS = _IK.N_PARAMS + 7
N_LP = _IK.N_PARAMS + 8


class LOBEnvState(NamedTuple):
    """Per-env state of the market-making layer over a :class:`BookState` (batch-first).

    Attributes:
        step: (N,) int64, steps taken this episode.
        vol_var: (N,) float64, EWMA of squared mid changes (price^2 per step).
        mid_ret: (N,) float64, last step's mid change (price units).
        last_fills: (N, 2) int64, last step's passive (bid, ask) fill lots.
        wealth0: (N,) float64, cash + q mid at the episode's start (price units).
        flow_signed, flow_abs: (N,) float64, EWMAs of signed and total traded lots per step.
        hist: (N, D + 1, N_HF) float64, ring buffer of market features (``HF_*``).
        ep_stats: (N, N_LOB_STATS) float64, running episode statistics.
    """

    step: np.ndarray
    vol_var: np.ndarray
    mid_ret: np.ndarray
    last_fills: np.ndarray
    wealth0: np.ndarray
    flow_signed: np.ndarray
    flow_abs: np.ndarray
    hist: np.ndarray
    ep_stats: np.ndarray


@njit(cache=True, inline="always")
def _own_slot(b, i, side):
    for j in range(b.ord_qty.shape[1]):
        if b.ord_qty[i, j] > 0 and b.ord_side[i, j] == side:
            return j
    return -1


@njit(cache=True, inline="always")
def _queue_pos(b, i, side):
    """Our ``side`` order's lots ahead / its level's volume, or -1 without one."""
    j = _own_slot(b, i, side)
    if j < 0:
        return -1.0
    idx = b.ord_px[i, j] - b.lower_tick[i]
    tot = _level_total(b, i, side, idx)
    return b.ord_ahead[i, j] / tot if tot > 0 else 0.0


@njit(cache=True)
def _snapshot(b, e, i, p):
    """Write env ``i``'s current market features into its ring-buffer slot for this step."""
    L = b.bid_bg.shape[1]
    tick = p[LP_TICK]
    sigma = p[LP_SIGMA]
    dt = p[LP_DT]
    D = e.hist.shape[1]
    slot = e.step[i] % D
    lo = b.lower_tick[i]
    bb = b.best_bid[i] - lo
    ba = b.best_ask[i] - lo
    e.hist[i, slot, HF_MID] = 0.5 * (b.best_bid[i] + b.best_ask[i]) * tick
    if sigma > 0.0:
        e.hist[i, slot, HF_VOL] = np.sqrt(e.vol_var[i] / dt) / sigma
        e.hist[i, slot, HF_RET] = min(10.0, max(-10.0, e.mid_ret[i] / (sigma * np.sqrt(dt))))
    else:
        e.hist[i, slot, HF_VOL] = 0.0
        e.hist[i, slot, HF_RET] = 0.0
    e.hist[i, slot, HF_SPREAD] = max(0.0, float(ba - bb))
    n_imb = np.int64(p[LP_IMB_LEVELS])
    vb = 0.0
    va = 0.0
    for k in range(n_imb):
        if 0 <= bb - k < L:
            vb += b.bid_bg[i, bb - k] + b.bid_own[i, bb - k]
        if 0 <= ba + k < L:
            va += b.ask_bg[i, ba + k] + b.ask_own[i, ba + k]
    e.hist[i, slot, HF_IMB] = (vb - va) / (vb + va) if vb + va > 0 else 0.0
    e.hist[i, slot, HF_FLOW] = e.flow_signed[i] / e.flow_abs[i] if e.flow_abs[i] > 0 else 0.0


@njit(cache=True)
def _lob_obs(b, e, i, p, out):
    """Observation row ``i``: own state now, market features ``obs_delay_steps`` old."""
    D = e.hist.shape[1]
    n_steps = p[LP_N_STEPS]
    slot = (e.step[i] + 1) % D  # == (step - delay) mod (delay + 1)
    out[i, 0] = b.inventory[i] / p[LP_MAX_INV]
    out[i, 1] = (n_steps - e.step[i]) / n_steps
    out[i, 2] = e.hist[i, slot, HF_VOL]
    out[i, 3] = 1.0 if e.last_fills[i, 0] > 0 else 0.0
    out[i, 4] = 1.0 if e.last_fills[i, 1] > 0 else 0.0
    out[i, 5] = e.hist[i, slot, HF_RET]
    out[i, OBS_SPREAD] = e.hist[i, slot, HF_SPREAD]
    out[i, OBS_IMBALANCE] = e.hist[i, slot, HF_IMB]
    out[i, OBS_QUEUE_BID] = _queue_pos(b, i, BID)
    out[i, OBS_QUEUE_ASK] = _queue_pos(b, i, ASK)
    out[i, OBS_FLOW] = e.hist[i, slot, HF_FLOW]


@njit(cache=True)
def _lob_reset_row(b, e, i, lam, theta, fp, p, rec_f, rec_i, rec_n):
    init_book(b, i, np.int64(p[LP_CENTRE_TICK]), lam, theta, np.int64(p[LP_INIT_SPREAD]))
    if p[LP_WARMUP] > 0.0:
        run_flow(b, i, p[LP_WARMUP], np.int64(2**62), lam, theta, fp, rec_f, rec_i, rec_i, rec_i,
                 rec_i, rec_n)
    b.time[i] = 0.0
    b.inventory[i] = np.int64(p[LP_Q0])
    b.cash_ticks[i] = 0
    e.step[i] = 0
    e.vol_var[i] = p[LP_SIGMA] ** 2 * p[LP_DT]
    e.mid_ret[i] = 0.0
    e.last_fills[i, 0] = 0
    e.last_fills[i, 1] = 0
    e.flow_signed[i] = 0.0
    e.flow_abs[i] = 0.0
    e.wealth0[i] = b.inventory[i] * 0.5 * (b.best_bid[i] + b.best_ask[i]) * p[LP_TICK]
    for j in range(e.ep_stats.shape[1]):
        e.ep_stats[i, j] = 0.0
    _snapshot(b, e, i, p)
    for k in range(e.hist.shape[1]):
        for f in range(N_HF):
            e.hist[i, k, f] = e.hist[i, 0, f]


@njit(cache=True)
def lob_reset(mask, b, e, lam, theta, fp, p, rec_f, rec_i, rec_n, out_obs):
    """Reset rows where ``mask`` is true: deterministic book (:func:`init_book`), then
    ``warmup`` time units of background flow from the row's own stream; write observations."""
    for i in range(mask.shape[0]):
        if mask[i]:
            _lob_reset_row(b, e, i, lam, theta, fp, p, rec_f, rec_i, rec_n)
            _lob_obs(b, e, i, p, out_obs)


@njit(cache=True, inline="always")
def _own_take(b, i, taker, qty, tick_size):
    """Our market order; returns (lots, impact cost vs the pre-trade mid in price units)."""
    pre2 = b.best_bid[i] + b.best_ask[i]
    lim = NO_LIMIT_BUY if taker == BUY else NO_LIMIT_SELL
    f, notional, _ = take(b, i, taker, qty, lim, True)
    cost2 = 2 * notional - f * pre2 if taker == BUY else f * pre2 - 2 * notional
    return f, 0.5 * cost2 * tick_size


@njit(cache=True, _nrt=False)
def lob_step(b, e, lam, theta, fp, p, actions, rec_f, rec_i, rec_n, out_obs, out_reward, out_done,
             out_final_obs, out_final_stats, out_terms, out_aux):
    """Step every env by ``dt`` of book time and autoreset finished rows (SAME_STEP).

    Per env (mmgym.envs.lob.LOBMarketMakingEnv documents the rules): quotes from the action and
    the observed (possibly stale) mid, mapped to ticks (bid floored, ask ceiled; an ask at or
    below the bid moves to bid + 1 tick); background flow for ``entry_latency`` (then
    ``entry_latency_events`` events); then our operations: cancel or reduce resting orders whose
    price changed, the hedge market order, new quotes (a marketable quote takes first); then
    background flow to the end of the step. Rewards as in :mod:`mmgym.core.intensity` (CJP 2015
    eq. 10.2 discretised); the impact term is the cost of our taker executions against the mid
    just before each.

    Args:
        b: BookState; e: LOBEnvState; lam, theta: (K,) float64; fp: (N_FP,) float64 flow
            parameters; p: (N_LP,) float64 env parameters.
        actions: (N, action_dim) float64 ([-1, 1] modes, or raw depths in MODE_DEPTHS).
        rec_f, rec_i, rec_n: empty recording buffers for :func:`run_flow`.
        out_*: as :func:`mmgym.core.intensity.intensity_step`, with ``LOB_OBS_DIM`` observations,
            ``N_LOB_STATS`` statistics and ``N_LOB_AUX`` aux columns.

    Returns:
        -1 on success, else the first row with a non-finite action (nothing stepped).
    """
    n = actions.shape[0]
    adim = actions.shape[1]
    for i in range(n):
        for j in range(adim):
            if not np.isfinite(actions[i, j]):
                return i
    tick = p[LP_TICK]
    sigma = p[LP_SIGMA]
    dt = p[LP_DT]
    n_steps = np.int64(p[LP_N_STEPS])
    k_bid = p[LP_K_BID]
    k_ask = p[LP_K_ASK]
    q_max = np.int64(p[LP_MAX_INV])
    phi = p[LP_PHI]
    alpha = p[LP_ALPHA]
    maker_fee = p[LP_MAKER_FEE]
    taker_fee = p[LP_TAKER_FEE]
    cara = p[LP_OBJECTIVE] == 1.0
    cara_gamma = p[LP_CARA_GAMMA]
    damp = p[LP_DAMPENING]
    mode = np.int64(p[LP_ACTION_MODE])
    lg_min = p[LP_LOG_GAMMA_MIN]
    lg_span = p[LP_LOG_GAMMA_MAX] - lg_min
    skew_max = p[LP_SKEW_MAX]
    off_min = p[LP_OFFSET_MIN]
    off_half_span = 0.5 * (p[LP_OFFSET_MAX] - off_min)
    hedge_on = p[LP_HEDGE] == 1.0
    hedge_max = p[LP_HEDGE_MAX]
    decay = p[LP_VOL_DECAY]
    quote_lots = np.int64(p[LP_QUOTE_LOTS])
    latency = p[LP_LATENCY]
    lat_events = np.int64(p[LP_LATENCY_EVENTS])
    D = e.hist.shape[1]
    sig2 = sigma * sigma
    big = np.int64(2**62)
    for i in range(n):
        q = b.inventory[i]
        mid2_0 = b.best_bid[i] + b.best_ask[i]
        w2_0 = 2 * b.cash_ticks[i] + q * mid2_0
        c = b.counters
        fb0 = c[i, C_OWN_FILLED_BID]
        fa0 = c[i, C_OWN_FILLED_ASK]
        ev0 = c[i, C_EVENTS]
        bv0 = c[i, C_BUY_VOL]
        sv0 = c[i, C_SELL_VOL]
        t0 = b.time[i]
        s_obs = e.hist[i, (e.step[i] + 1) % D, HF_MID]

        # quotes (AS 2008 eqs. 29-30 in as_hybrid) from the observed mid
        tau = (n_steps - e.step[i]) * dt
        gamma = np.nan
        skew = np.nan
        if mode == MODE_AS_HYBRID:
            a0 = min(1.0, max(-1.0, actions[i, 0]))
            a1 = min(1.0, max(-1.0, actions[i, 1]))
            gamma = np.exp(lg_min + 0.5 * (a0 + 1.0) * lg_span)
            skew = a1 * skew_max
            shift = q * gamma * sig2 * tau - skew
            base = 0.5 * gamma * sig2 * tau
            d_bid = shift + base + np.log1p(gamma / k_bid) / gamma
            d_ask = -shift + base + np.log1p(gamma / k_ask) / gamma
        elif mode == MODE_OFFSETS:
            d_bid = off_min + (min(1.0, max(-1.0, actions[i, 0])) + 1.0) * off_half_span
            d_ask = off_min + (min(1.0, max(-1.0, actions[i, 1])) + 1.0) * off_half_span
        else:
            d_bid = actions[i, 0]
            d_ask = actions[i, 1]
        bid_tick = np.int64(np.floor((s_obs - d_bid) / tick + 1e-9))
        ask_tick = np.int64(np.ceil((s_obs + d_ask) / tick - 1e-9))
        if ask_tick <= bid_tick:
            ask_tick = bid_tick + 1
        v = np.int64(0)
        if hedge_on:
            a_h = actions[i, adim - 1]
            if mode != MODE_DEPTHS:
                a_h = min(1.0, max(-1.0, a_h)) * hedge_max
            v = np.int64(np.rint(a_h))

        # latency: the book moves before our orders arrive
        if latency > 0.0:
            run_flow(b, i, t0 + min(latency, dt), big, lam, theta, fp, rec_f, rec_i, rec_i, rec_i,
                     rec_i, rec_n)
        if lat_events > 0:
            run_flow(b, i, t0 + dt, lat_events, lam, theta, fp, rec_f, rec_i, rec_i, rec_i, rec_i,
                     rec_n)

        # our operations: cancel moved quotes, hedge, then (re-)quote
        jb = _own_slot(b, i, BID)
        if jb >= 0 and b.ord_px[i, jb] != bid_tick:
            own_cancel(b, i, jb)
        ja = _own_slot(b, i, ASK)
        if ja >= 0 and b.ord_px[i, ja] != ask_tick:
            own_cancel(b, i, ja)
        impact_cost = 0.0
        taker_lots = np.int64(0)
        q = b.inventory[i]
        if q + v > q_max:
            v = q_max - q
        elif q + v < -q_max:
            v = -q_max - q
        v_done = np.int64(0)
        if v != 0:
            f, cost = _own_take(b, i, BUY if v > 0 else SELL, abs(v), tick)
            impact_cost += cost
            taker_lots += f
            v_done = f if v > 0 else -f
        for side in range(2):
            q = b.inventory[i]
            z = min(quote_lots, q_max - q) if side == BID else min(quote_lots, q_max + q)
            tk = bid_tick if side == BID else ask_tick
            j = _own_slot(b, i, side)
            if j >= 0:
                own_reduce(b, i, j, z)  # same price: keeps its queue position
            elif z > 0:
                pre2 = b.best_bid[i] + b.best_ask[i]
                _, f, notional = own_limit(b, i, side, tk, z, b.time[i])
                if f > 0:
                    taker_lots += f
                    cost2 = 2 * notional - f * pre2 if side == BID else f * pre2 - 2 * notional
                    impact_cost += 0.5 * cost2 * tick
        maybe_recentre(b, i, np.int64(fp[FP_MARGIN]))

        # the rest of the step
        run_flow(b, i, t0 + dt, big, lam, theta, fp, rec_f, rec_i, rec_i, rec_i, rec_i, rec_n)

        # reward terms
        q = b.inventory[i]
        mid2_1 = b.best_bid[i] + b.best_ask[i]
        w2_1 = 2 * b.cash_ticks[i] + q * mid2_1
        fill_b = c[i, C_OWN_FILLED_BID] - fb0
        fill_a = c[i, C_OWN_FILLED_ASK] - fa0
        passive = fill_b + fill_a
        fees = maker_fee * passive + taker_fee * taker_lots
        dw = 0.5 * (w2_1 - w2_0) * tick - fees
        ds = 0.5 * (mid2_1 - mid2_0) * tick
        last = e.step[i] + 1 >= n_steps
        w_after = 0.5 * w2_1 * tick - e.ep_stats[i, ST_FEES] - fees
        t_pnl, t_imp, t_fees, t_inv, t_term, t_damp, t_util, reward = reward_terms(
            dw, impact_cost, fees, q, ds, dt, phi, alpha, last, damp, cara, cara_gamma,
            w_after - e.wealth0[i])
        out_reward[i] = reward
        out_terms[i, TERM_PNL] = t_pnl
        out_terms[i, TERM_IMPACT] = t_imp
        out_terms[i, TERM_FEES] = t_fees
        out_terms[i, TERM_INVENTORY] = t_inv
        out_terms[i, TERM_TERMINAL] = t_term
        out_terms[i, TERM_DAMPENING] = t_damp
        out_terms[i, TERM_UTILITY] = t_util
        jb = _own_slot(b, i, BID)
        ja = _own_slot(b, i, ASK)
        quote_bid = jb >= 0 or fill_b > 0
        quote_ask = ja >= 0 or fill_a > 0
        s_q = s_obs
        out_aux[i, AUX_BID_PX] = bid_tick * tick if quote_bid else np.nan
        out_aux[i, AUX_ASK_PX] = ask_tick * tick if quote_ask else np.nan
        out_aux[i, AUX_DEPTH_BID] = s_q - bid_tick * tick if quote_bid else np.nan
        out_aux[i, AUX_DEPTH_ASK] = ask_tick * tick - s_q if quote_ask else np.nan
        out_aux[i, AUX_GAMMA] = gamma
        out_aux[i, AUX_SKEW] = skew
        out_aux[i, AUX_HEDGE] = v_done
        out_aux[i, AUX_FILL_BID] = fill_b
        out_aux[i, AUX_FILL_ASK] = fill_a
        out_aux[i, AUX_MID] = s_q
        out_aux[i, AUX_SPREAD_TICKS] = b.best_ask[i] - b.best_bid[i]
        out_aux[i, AUX_QUEUE_BID] = _queue_pos(b, i, BID)
        out_aux[i, AUX_QUEUE_ASK] = _queue_pos(b, i, ASK)
        out_aux[i, AUX_EVENTS] = c[i, C_EVENTS] - ev0
        out_aux[i, AUX_TAKER_LOTS] = taker_lots

        # env state
        e.step[i] += 1
        e.mid_ret[i] = ds
        e.vol_var[i] += decay * (ds * ds - e.vol_var[i])
        e.last_fills[i, 0] = fill_b
        e.last_fills[i, 1] = fill_a
        db = c[i, C_BUY_VOL] - bv0
        dsv = c[i, C_SELL_VOL] - sv0
        e.flow_signed[i] += decay * ((db - dsv) - e.flow_signed[i])
        e.flow_abs[i] += decay * ((db + dsv) - e.flow_abs[i])
        _snapshot(b, e, i, p)

        st = e.ep_stats
        aq = abs(q)
        st[i, ST_RETURN] += reward
        st[i, ST_LENGTH] += 1.0
        st[i, ST_FILLS] += passive
        st[i, ST_ABS_INV_SUM] += aq
        if aq > st[i, ST_MAX_ABS_INV]:
            st[i, ST_MAX_ABS_INV] = aq
        if quote_bid and quote_ask:
            st[i, ST_SPREAD_SUM] += (ask_tick - bid_tick) * tick
            st[i, ST_SPREAD_COUNT] += 1.0
        st[i, ST_IMPACT] += impact_cost
        st[i, ST_FEES] += fees
        st[i, ST_INV_PENALTY] -= t_inv
        st[i, ST_TERM_PENALTY] -= t_term
        if mode == MODE_AS_HYBRID:
            st[i, ST_GAMMA_SUM] += gamma
            st[i, ST_SKEW_SUM] += skew
        st[i, ST_HEDGE_LOTS] += abs(v_done)
        st[i, ST_EVENTS] += c[i, C_EVENTS] - ev0
        st[i, ST_TAKER_LOTS] += taker_lots

        out_done[i] = last
        if last:
            st[i, ST_PNL] = w_after - e.wealth0[i]
            st[i, ST_FINAL_INV] = q
            _lob_obs(b, e, i, p, out_final_obs)
            for j in range(st.shape[1]):
                out_final_stats[i, j] = st[i, j]
            _lob_reset_row(b, e, i, lam, theta, fp, p, rec_f, rec_i, rec_n)
        _lob_obs(b, e, i, p, out_obs)
    return -1

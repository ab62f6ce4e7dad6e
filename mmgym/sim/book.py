"""Batched limit order book engine: a dense tick ladder per env, FIFO queues, our own orders, and
event-driven background flow in the spirit of Cont, Stoikov & Talreja (2010).

numpy + numba only. ``N`` independent books live in one :class:`BookState` of batch-first arrays;
every kernel takes an env index ``i`` (or loops over envs) and never calls back into Python. The
side is an array axis (``BID = 0``, ``ASK = 1``; a taker ``BUY = 0`` consumes ``ASK``, ``SELL = 1``
consumes ``BID``), so every rule below is written once for both sides.

Ladder
    Each env has ``L`` price levels per side, index ``idx = price_tick - lower_tick[i]``
    (hftbacktest's ROI-vector depth). ``bg[i, side, idx]`` holds background lots per level,
    ``own[i, side, idx]`` our resting lots per level (the sum of our order records there).
    Prices are integer ticks; cash is kept in tick-lots (``cash_ticks``), so accounting is exact.

Volume outside the window
    A limit order (background or ours) whose price falls outside ``[lower, lower + L)`` is
    rejected (counted in ``C_BG_OUTSIDE``, or returned as ``-2`` for ours). A market order walks
    the ladder only; whatever finds no liquidity inside the window is discarded
    (``C_MO_UNFILLED``). When the best bid or ask comes within ``margin`` levels of an edge,
    :func:`maybe_recentre` shifts the window so the mid is in the middle: background lots shifted
    out are removed (``C_BG_DROPPED``), our orders shifted out are cancelled (``C_OWN_DROPPED``).

Empty sides
    ``best[i, side]`` are absolute ticks. When a side empties, its best keeps its last value
    (a stale reference) and :func:`_is_empty` reports it empty; arrivals are placed relative to
    the stale value and the mid uses it, so the book always has a reference price.

Queue position
    Each of our orders stores ``orders[i, j, ORD_AHEAD]``: background lots ahead of it in its
    level's FIFO queue (our own earlier orders at the same level are ahead too, ordered by
    ``ORD_SEQ``). A market order consumes a level front to back: background ahead of our first
    order, our first order, background between, ..., then the background behind the last of ours.
    A background cancel of ``x`` lots at a level with our orders is located by the queue model:
    the background at the level splits into segments ``s_0`` (ahead of our first order), ...,
    ``s_m`` (behind the last one).

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
    position depends only on the number of events drawn (counting the one each :func:`run_flow`
    call draws past ``t_stop`` and discards); with informed flow on, each event then draws one
    standard normal (ziggurat, :func:`mmgym.sim.rng.zig_normal`) for the latent value. An arrival
    sits at distance >= 1 from the opposite best, so it is never marketable: the flow adds it
    without the matching step.

Informed market orders (Glosten & Milgrom 1985; Kyle 1985)
    A latent efficient price ``fs[i, FS_VALUE]`` (ticks; the flow state) is a Brownian motion with volatility
    ``fp.informed_sigma`` ticks per sqrt(time unit), advanced between events: each event (and the
    discarded one past ``t_stop``) adds ``sigma sqrt(t_event - t_prev) z``. A fraction
    ``fp.informed_frac`` of the market-order rate is informed: the type draw splits
    ``mu_buy + mu_sell`` into ``(1 - f) mu_buy`` uninformed buys, ``(1 - f) mu_sell`` uninformed
    sells and ``f (mu_buy + mu_sell)`` informed orders, so the total market rate (and the
    uninformed book's calibration) is unchanged. An informed order buys when the value is above
    the mid, sells when below (the queue uniform decides at equality), with the geometric size of
    mean ``informed_size_mean`` (default: the market orders' law). Nothing else knows the value:
    the mid follows it only through the informed orders' price impact, with a lag. This is the
    informed trader of Glosten & Milgrom (1985) (a trader who knows the asset's value arrives with
    some probability and trades on the side of it) and the insider of Kyle (1985) (who trades
    toward the value, so the price follows it gradually). Simplifications, honestly: our informed
    orders are not strategic (no Kyle-style sizing by the gap, no timing), know the value exactly
    and act on its sign only, cannot be told apart from the uninformed ones by size unless
    ``informed_size_mean`` says so, and nobody (the background liquidity providers included) learns
    from the flow: limit orders and cancels stay CST's, placed around the mid, not the value, so
    the "learning" of the market is only the mechanical impact of the informed orders.
    ``informed_frac = 0`` (the default) draws nothing extra and leaves the flow bit for bit as above.

Toxicity record
    Each background market order that trades updates ``fs[i, TOX_*]``: EWMAs (weight
    ``fp.tox_decay`` per market order, half-life ``toxicity_halflife`` orders) of its signed and
    absolute traded lots, its size relative to the lots resting at the best it hit, and the
    levels it walked. Our own market orders and the ones that find an empty side leave it alone.

Refused operations
    Prices are bounded by ``MAX_TICK`` and sizes by ``MAX_LOTS`` wherever they enter from outside
    (:func:`book_apply_ops` validates every op row before applying any; :func:`apply_ops` raises
    on a bad one). A trade whose worst case (``qty`` lots at the window's largest ``|tick|``)
    could overflow the int64 ``cash_ticks`` or ``inventory`` is refused before anything changes
    and sets ``error[i] = ERR_CASH`` (cash only ever changes inside :func:`take`, so this check
    covers every change of it); :func:`run_flow` stops at such an event, and an env with
    ``error[i] != 0`` takes no further op row until :func:`init_book`. An operation on env ``i``
    reads and writes row ``i`` only; order slots are bounds-checked.

References:
    R. Cont, S. Stoikov, R. Talreja (2010), "A stochastic model for order book dynamics",
    Operations Research 58(3), 549-563.
    D. T. Gillespie (1977), "Exact stochastic simulation of coupled chemical reactions",
    J. Phys. Chem. 81(25), 2340-2361.
    L. R. Glosten, P. R. Milgrom (1985), "Bid, ask and transaction prices in a specialist market
    with heterogeneously informed traders", J. Financial Economics 14(1), 71-100.
    A. S. Kyle (1985), "Continuous auctions and insider trading", Econometrica 53(6), 1315-1335.
    hftbacktest (github.com/nkaz001/hftbacktest): ROI-vector market depth, ``PowerProbQueueFunc``.

Compilation (cold compile time matters as much as speed)
    numba compiles each kernel into its own LLVM module and links into every caller a copy of
    everything the callee reaches, which LLVM optimises and generates code for again; numba-level
    inlining (``inline="always"``) re-types the callee at every call site. So: no numba-level
    inlining here (only :mod:`mmgym.sim.rng`'s one-line stream step); small hot helpers carry ``forceinline`` (LLVM's ``alwaysinline``), everything else
    is a plain call; rare paths (our orders at a traded or cancelled level, the power queue model,
    recentring) are out-of-line functions; loops over order slots and cold loops step their
    counter through :func:`_opaque`, so LLVM neither unrolls nor vectorises them (that code was
    most of what callers linked in). Kernels only numba calls get no CPython wrapper
    (:class:`mmgym.sim.jit.NumbaOnlyDispatcher`); Python reaches the engine through one compiled entry point
    (:func:`book_apply_ops`, :func:`book_flow`, :func:`book_record`, :func:`init_book`). Every
    kernel is compiled without reference counting (``_nrt=False``: nothing allocates) and with all
    flags numba would otherwise inherit from the first caller set explicitly.

    Numba callers: pass variables or numpy scalars (``np.int64(BID)``, ``OWN_TAKER``,
    ``np.int64(1)``) as arguments, not Python literals or int constants (``0``, ``BID``,
    ``True``): numba compiles a separate copy of the callee for each literal argument value.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .jit import entry, hot, kernel, opaque
from .rng import to_unit, xoroshiro_next, zig_normal

BID = 0
ASK = 1
BUY = 0  # taker side: consumes asks
SELL = 1  # taker side: consumes bids
OWN_TAKER = np.bool_(True)  # take(..., own_taker): our order
BG_TAKER = np.bool_(False)  # take(..., own_taker): a background order

QUEUE_PESSIMISTIC = 0
QUEUE_POWER = 1

NO_LIMIT_BUY = np.int64(2**62)
NO_LIMIT_SELL = np.int64(-(2**62))

#: Largest |tick| accepted from outside (op rows, :func:`init_book`'s centre).
MAX_TICK = 2**40
#: Largest order size (lots) accepted from outside (op rows, :func:`flow_params`'s max_size).
MAX_LOTS = 2**20

# ------------------------------------------------------------------------------- counters ---
# counters: (N, N_CNT) int64, lots since the last reset (events for C_EVENTS).
C_BG_ADDED = 0  # background lots that came to rest
C_BG_CANCELLED = 1  # background lots cancelled
C_BG_TRADED = 2  # resting background lots consumed by takers
C_BG_DROPPED = 3  # background lots shifted out of the window
C_OWN_ADDED = 4  # our lots that came to rest
C_OWN_CANCELLED = 5  # our resting lots cancelled (by us or by self-trade prevention)
C_OWN_FILLED_BID = 6  # our resting bid lots filled (passive buys); C_OWN_FILLED_BID + side
C_OWN_FILLED_ASK = 7  # our resting ask lots filled (passive sells)
C_OWN_DROPPED = 8  # our resting lots cancelled because the window moved away
C_TAKER_BUY = 9  # lots we bought as taker; C_TAKER_BUY + taker side
C_TAKER_SELL = 10  # lots we sold as taker
C_BUY_VOL = 11  # all volume traded with a buyer as aggressor; C_BUY_VOL + taker side
C_SELL_VOL = 12  # all volume traded with a seller as aggressor
C_EVENTS = 13  # background events simulated
C_MO_UNFILLED = 14  # market volume that found no liquidity in the window
C_BG_OUTSIDE = 15  # background limit lots rejected outside the window
N_CNT = 16

# ------------------------------------------------------------------------- flow state ---
# fs: (N, N_FLOW_STATE) float64, what the background flow carries beside the book (run_flow's
# ``fs``; new_flow_state, reset_flow_state). Kept out of BookState on purpose: every out-of-line
# kernel call passes the whole book state by value, and each array there costs every call.
FS_VALUE = 0  # the informed flow's latent efficient price, ticks (moves only with informed_frac > 0)
# the toxicity record: what the background market orders looked like (updated at each that trades)
TOX_SIGNED = 1  # EWMA of signed lots traded per market order (+ buy, - sell), fp.tox_decay
TOX_ABS = 2  # EWMA of lots traded per market order (same weights); SIGNED / ABS is in [-1, 1]
TOX_REL_SIZE = 3  # last order's size / the lots resting at the best it hit (before it traded)
TOX_LEVELS = 4  # last order's price levels walked: |deepest tick - best tick| + 1
N_FLOW_STATE = 5

# ------------------------------------------------------------------------- order records ---
# orders: (N, M, N_ORD) int64, one row per slot.
ORD_SIDE = 0  # BID or ASK
ORD_PX = 1  # absolute tick
ORD_QTY = 2  # remaining lots (0: free slot)
ORD_AHEAD = 3  # background lots ahead in the level's FIFO queue
ORD_SEQ = 4  # entry sequence number (FIFO order among our orders)
N_ORD = 5

# -------------------------------------------------------------------------------- errors ---
# error: (N,) int64, the first refusal since init_book.
ERR_NONE = 0
ERR_CASH = 1  # a trade could have overflowed cash_ticks or inventory (refused)
ERR_INIT = 2  # init_book got |centre_tick| > MAX_TICK or a spread < 1 (refused)
ERROR_NAMES = {ERR_NONE: "none", ERR_CASH: "trade refused: cash/inventory could overflow",
               ERR_INIT: "init_book refused: centre beyond MAX_TICK or spread < 1"}

#: own_limit's slot when the whole operation was refused (``error[i]`` says why).
OWN_REFUSED = -3

# ----------------------------------------------------------------------------- book ops ---
# ops: (N, n_ops, 5) float64 rows (code, side, tick_or_slot, qty, u); see book_apply_ops.
OP_BG_LIMIT = 0
OP_BG_CANCEL = 1
OP_MARKET = 2  # background market order
OP_OWN_LIMIT = 3
OP_OWN_CANCEL = 4
OP_OWN_MARKET = 5
OP_RECENTRE = 6  # move lower_tick to the given tick
N_OP_CODES = 7
OP_FIELDS = ("code", "side", "tick_or_slot", "qty", "u")

# what _op_problem finds wrong with a row (0: nothing), the column it names, and why
_P_OK, _P_NONFINITE, _P_CODE, _P_SIDE, _P_TICK, _P_SLOT, _P_QTY, _P_U = range(8)
_PROBLEM_FIELD = {_P_CODE: 0, _P_SIDE: 1, _P_TICK: 2, _P_SLOT: 2, _P_QTY: 3, _P_U: 4}
_PROBLEM_TEXT = {
    _P_NONFINITE: "not a finite number",
    _P_CODE: f"not an op code (an integer 0..{N_OP_CODES - 1}, or < 0 for padding)",
    _P_SIDE: "side must be 0 or 1",
    _P_TICK: "tick must be an integer with |tick| <= MAX_TICK = 2**40",
    _P_SLOT: "slot must be an integer in [0, n_slots)",
    _P_QTY: "qty must be an integer in 1..MAX_LOTS = 2**20",
    _P_U: "u must be in [0, 1]",
}

_I64_MAX = np.int64(2**63 - 1)
_I64_MIN = np.int64(-(2**63))
_FAST_TICK = np.int64(2**40)
_FAST_QTY = np.int64(2**20)
_FAST_CASH = np.int64(2**62)
_TRUE = np.bool_(True)
_FALSE = np.bool_(False)
_BID = np.int64(BID)  # for arguments: a Python int would be a numba literal (see the docstring)
_ASK = np.int64(ASK)

# -------------------------------------------------------------------- flow parameters ---
#: The background flow's scalar parameters as one record (``lam``, ``theta`` stay (K,) arrays).
FLOW_DTYPE = np.dtype([
    ("mu_buy", np.float64),  # market buy orders per time unit
    ("mu_sell", np.float64),  # market sell orders per time unit
    ("logq_limit", np.float64),  # ln(1 - 1/mean) of the geometric limit/cancel size (0: 1 lot)
    ("logq_market", np.float64),  # the same for market orders
    ("max_size", np.int64),  # cap on any drawn size (lots)
    ("queue_model", np.int64),  # QUEUE_PESSIMISTIC or QUEUE_POWER
    ("queue_power", np.float64),  # exponent n of QUEUE_POWER
    ("margin", np.int64),  # recentre when a best is within this many levels of an edge
    ("informed_frac", np.float64),  # fraction of market orders that are informed (0: none)
    ("informed_sigma", np.float64),  # the latent value's volatility, ticks per sqrt(time unit)
    ("logq_informed", np.float64),  # ln(1 - 1/mean) of the informed orders' geometric size
    ("tox_decay", np.float64),  # per-market-order weight of the toxicity EWMA: 1 - 2^(-1/half-life)
], align=True)


def _logq(mean: float) -> float:
    return float(np.log1p(-1.0 / mean)) if mean > 1 else 0.0


def _is_int(x) -> bool:
    try:
        return bool(np.isfinite(x)) and float(x) == int(x)
    except (TypeError, ValueError, OverflowError):
        return False


def flow_params(mu_buy: float, mu_sell: float, limit_size_mean: float, market_size_mean: float,
                max_size: int, queue_model: int | str, queue_power: float, margin: int,
                informed_fraction: float = 0.0, informed_sigma_ticks: float = 0.0,
                informed_size_mean: float | None = None, toxicity_halflife: float = 10.0) -> np.record:
    """The flow parameter record the kernels take (``FLOW_DTYPE``; numba reads ``fp.mu_buy``).

    Args:
        mu_buy, mu_sell: market buy / sell orders per time unit (>= 0).
        limit_size_mean, market_size_mean: means of the geometric order sizes (>= 1 lots).
        max_size: cap on any drawn size, lots (an integer in 1..MAX_LOTS).
        queue_model: ``QUEUE_PESSIMISTIC``/``QUEUE_POWER`` or "pessimistic"/"power".
        queue_power: exponent n of the power queue model (>= 0).
        margin: recentre when a best comes within this many levels of a window edge (>= 1).
        informed_fraction: fraction of the market orders that are informed, in [0, 1] (module
            docstring, "Informed market orders"; 0: today's flow, bit for bit).
        informed_sigma_ticks: volatility of the latent value, ticks per sqrt(time unit) (>= 0).
        informed_size_mean: mean of the informed orders' geometric size (>= 1 lots; None: the
            same law as the other market orders, ``market_size_mean``).
        toxicity_halflife: half-life of the signed-flow EWMA of :data:`TOX_SIGNED` /
            :data:`TOX_ABS`, in background market orders (> 0).

    Returns:
        A ``FLOW_DTYPE`` ``numpy.record`` (fields read as ``fp.margin`` in Python and in numba,
        which passes it by reference).

    Raises:
        ValueError: a parameter is out of range (one line naming it).
    """
    if isinstance(queue_model, str):
        models = {"pessimistic": QUEUE_PESSIMISTIC, "power": QUEUE_POWER}
        if queue_model not in models:
            raise ValueError(f"flow_params: queue_model must be 'pessimistic' or 'power', "
                             f"got {queue_model!r}")
        queue_model = models[queue_model]
    finite = lambda x: isinstance(x, (int, float, np.number)) and bool(np.isfinite(x))  # noqa: E731
    checks = (
        ("mu_buy", mu_buy, finite(mu_buy) and mu_buy >= 0.0, ">= 0"),
        ("mu_sell", mu_sell, finite(mu_sell) and mu_sell >= 0.0, ">= 0"),
        ("limit_size_mean", limit_size_mean, finite(limit_size_mean) and limit_size_mean >= 1.0, ">= 1"),
        ("market_size_mean", market_size_mean, finite(market_size_mean) and market_size_mean >= 1.0,
         ">= 1"),
        ("max_size", max_size, _is_int(max_size) and 1 <= max_size <= MAX_LOTS, "an integer in 1..2**20"),
        ("queue_model", queue_model, _is_int(queue_model) and queue_model in (0, 1), "0 or 1"),
        ("queue_power", queue_power, finite(queue_power) and queue_power >= 0.0, ">= 0"),
        ("margin", margin, _is_int(margin) and margin >= 1, "an integer >= 1"),
        ("informed_fraction", informed_fraction,
         finite(informed_fraction) and 0.0 <= informed_fraction <= 1.0, "in [0, 1]"),
        ("informed_sigma_ticks", informed_sigma_ticks,
         finite(informed_sigma_ticks) and informed_sigma_ticks >= 0.0, ">= 0"),
        ("informed_size_mean", informed_size_mean,
         informed_size_mean is None or (finite(informed_size_mean) and informed_size_mean >= 1.0),
         "None or >= 1"),
        ("toxicity_halflife", toxicity_halflife, finite(toxicity_halflife) and toxicity_halflife > 0.0,
         "> 0"),
    )
    for name, value, ok, rule in checks:
        if not ok:
            raise ValueError(f"flow_params: {name} must be {rule}, got {value!r}")
    logq_market = _logq(market_size_mean)
    logq_informed = logq_market if informed_size_mean is None else _logq(informed_size_mean)
    return _flow_record(mu_buy, mu_sell, _logq(limit_size_mean), logq_market, max_size,
                        queue_model, queue_power, margin, informed_fraction, informed_sigma_ticks,
                        logq_informed, toxicity_decay(toxicity_halflife))


def toxicity_decay(halflife: float) -> float:
    """The per-market-order weight of the toxicity EWMAs with half-life ``halflife`` orders:
    ``1 - 2^(-1/halflife)`` (after n orders an old one weighs (1 - a)^n = 2^(-n/halflife))."""
    return -float(np.expm1(-np.log(2.0) / halflife))


def _flow_record(mu_buy, mu_sell, logq_limit, logq_market, max_size, queue_model, queue_power, margin,
                 informed_frac=0.0, informed_sigma=0.0, logq_informed=0.0, tox_decay=0.5):
    rec = np.zeros((), dtype=FLOW_DTYPE)
    rec["mu_buy"], rec["mu_sell"] = mu_buy, mu_sell
    rec["logq_limit"], rec["logq_market"] = logq_limit, logq_market
    rec["max_size"], rec["queue_model"] = int(max_size), int(queue_model)
    rec["queue_power"], rec["margin"] = queue_power, int(margin)
    rec["informed_frac"], rec["informed_sigma"] = informed_frac, informed_sigma
    rec["logq_informed"], rec["tox_decay"] = logq_informed, tox_decay
    return rec.view(np.recarray)[()]  # a numpy.record: fields read as attributes in Python too


def as_flow_params(fp) -> np.record:
    """``fp`` as a ``FLOW_DTYPE`` ``numpy.record`` (a record, or a 0-d / 1-element array of one).

    Raises:
        ValueError: anything else (e.g. a plain float vector).
    """
    if isinstance(fp, np.record) and fp.dtype == FLOW_DTYPE:
        return fp
    a = np.asarray(fp)
    if a.dtype == FLOW_DTYPE and a.size == 1:
        return a.reshape(()).view(np.recarray)[()]
    raise ValueError(f"flow parameters: expected a FLOW_DTYPE record (flow_params(...)), got "
                     f"{a.dtype} {a.shape}")


# ------------------------------------------------------------------------------- state ---
class BookState(NamedTuple):
    """State of ``N`` books (``L`` levels per side, ``M`` order slots each); batch-first arrays.

    Attributes:
        lower_tick: (N,) int64, absolute tick of ladder index 0.
        bg: (N, 2, L) int64, background resting lots per level, ``[:, BID]`` and ``[:, ASK]``.
        own: (N, 2, L) int64, our resting lots per level.
        best: (N, 2) int64, absolute ticks of the best bid / best ask (stale when a side is empty).
        time: (N,) float64, simulated time (time units).
        orders: (N, M, N_ORD) int64, our order records: ``ORD_SIDE`` (BID/ASK), ``ORD_PX``
            (absolute tick), ``ORD_QTY`` (remaining lots, 0: free slot), ``ORD_AHEAD``
            (background lots ahead), ``ORD_SEQ`` (entry sequence number).
        ord_time: (N, M) float64, entry time.
        seq: (N,) int64, next sequence number.
        cash_ticks: (N,) int64, cash in tick-lots (price = tick * tick_size).
        inventory: (N,) int64, lots held.
        counters: (N, N_CNT) int64 (``C_*``).
        rng: (N, 2) uint64, per-env xoroshiro128+ streams (:mod:`mmgym.sim.rng`).
        error: (N,) int64, 0 or the ``ERR_*`` code of the first refused operation since reset.

    The read-only properties ``bid_bg, ask_bg, bid_own, ask_own`` ((N, L)), ``best_bid,
    best_ask`` ((N,)) and ``ord_side, ord_px, ord_qty, ord_ahead, ord_seq`` ((N, M)) are numpy
    views of these arrays under the old layout's names (writes go through to the state); numba
    kernels do not see them.
    """

    lower_tick: np.ndarray
    bg: np.ndarray
    own: np.ndarray
    best: np.ndarray
    time: np.ndarray
    orders: np.ndarray
    ord_time: np.ndarray
    seq: np.ndarray
    cash_ticks: np.ndarray
    inventory: np.ndarray
    counters: np.ndarray
    rng: np.ndarray
    error: np.ndarray

    @property
    def bid_bg(self) -> np.ndarray:
        """(N, L) int64 view: background bid lots per level."""
        return self.bg[:, BID]

    @property
    def ask_bg(self) -> np.ndarray:
        """(N, L) int64 view: background ask lots per level."""
        return self.bg[:, ASK]

    @property
    def bid_own(self) -> np.ndarray:
        """(N, L) int64 view: our bid lots per level."""
        return self.own[:, BID]

    @property
    def ask_own(self) -> np.ndarray:
        """(N, L) int64 view: our ask lots per level."""
        return self.own[:, ASK]

    @property
    def best_bid(self) -> np.ndarray:
        """(N,) int64 view: best bid tick."""
        return self.best[:, BID]

    @property
    def best_ask(self) -> np.ndarray:
        """(N,) int64 view: best ask tick."""
        return self.best[:, ASK]

    @property
    def ord_side(self) -> np.ndarray:
        """(N, M) int64 view: BID or ASK per slot."""
        return self.orders[:, :, ORD_SIDE]

    @property
    def ord_px(self) -> np.ndarray:
        """(N, M) int64 view: absolute tick per slot."""
        return self.orders[:, :, ORD_PX]

    @property
    def ord_qty(self) -> np.ndarray:
        """(N, M) int64 view: remaining lots per slot (0: free)."""
        return self.orders[:, :, ORD_QTY]

    @property
    def ord_ahead(self) -> np.ndarray:
        """(N, M) int64 view: background lots ahead per slot."""
        return self.orders[:, :, ORD_AHEAD]

    @property
    def ord_seq(self) -> np.ndarray:
        """(N, M) int64 view: entry sequence number per slot."""
        return self.orders[:, :, ORD_SEQ]


def new_book_state(num_envs: int, n_levels: int, n_slots: int, rng: np.ndarray | None = None) -> BookState:
    """Allocate zeroed state for ``num_envs`` books of ``n_levels`` levels per side and
    ``n_slots`` order slots (``rng``, (N, 2) uint64, is shared with the caller if given)."""
    n, L, M = num_envs, n_levels, n_slots
    z = lambda *s: np.zeros(s, dtype=np.int64)  # noqa: E731
    return BookState(
        lower_tick=z(n), bg=z(n, 2, L), own=z(n, 2, L), best=z(n, 2), time=np.zeros(n),
        orders=z(n, M, N_ORD), ord_time=np.zeros((n, M)), seq=z(n), cash_ticks=z(n),
        inventory=z(n), counters=z(n, N_CNT),
        rng=np.ones((n, 2), dtype=np.uint64) if rng is None else rng, error=z(n),
    )


def new_flow_state(num_envs: int) -> np.ndarray:
    """A zeroed flow state, (num_envs, N_FLOW_STATE) float64 (``FS_VALUE``, ``TOX_*``;
    :func:`reset_flow_state` fills a row)."""
    return np.zeros((num_envs, N_FLOW_STATE))


class Tape(NamedTuple):
    """Market-order tape that :func:`run_flow` appends to while ``n[0] < len(t)`` (capacity C).

    Attributes:
        t: (C,) float64, event time. side: (C,) int64, taker side (BUY/SELL).
        px: (C,) int64, deepest tick reached. qty: (C,) int64, lots filled.
        mid2: (C,) int64, twice the pre-trade mid in ticks. n: (1,) int64, rows written.
    """

    t: np.ndarray
    side: np.ndarray
    px: np.ndarray
    qty: np.ndarray
    mid2: np.ndarray
    n: np.ndarray


def new_tape(capacity: int) -> Tape:
    """An empty tape of ``capacity`` rows (0: record nothing)."""
    z = lambda: np.zeros(capacity, dtype=np.int64)  # noqa: E731
    return Tape(t=np.zeros(capacity), side=z(), px=z(), qty=z(), mid2=z(), n=np.zeros(1, dtype=np.int64))


# ---------------------------------------------------------------------- compile policy ---
# mmgym.sim.jit: kernels Python calls (the one entry point), kernels only numba calls (out of
# line, or hot: LLVM inlines them), and the loop counter LLVM cannot see through.
_py_kernel = entry
_kernel = kernel  # public, for numba callers: a plain call
_hot_kernel = hot  # public, small and hot: LLVM inlines it
_hot = hot  # internal, LLVM inlines it
_cold = kernel  # internal, out of line (rare paths)
_opaque = opaque


# ------------------------------------------------------------------------------ helpers ---
@_hot
def _is_empty(b, i, side):
    """True if ``side`` has no resting volume at its recorded best (so none at all)."""
    idx = b.best[i, side] - b.lower_tick[i]
    if idx < 0 or idx >= b.bg.shape[2]:
        return True
    return b.bg[i, side, idx] + b.own[i, side, idx] == 0


_is_empty.python_impl = _is_empty.py_func  # from Python: the same rule, interpreted


@_hot
def _rescan_from(b, i, side, idx):
    """Best of ``side``: first non-empty level from ``idx`` away from the touch (stale if none)."""
    L = b.bg.shape[2]
    if side == ASK:
        j = idx if idx > 0 else 0
        step = 1
    else:
        j = idx if idx < L - 1 else L - 1
        step = -1
    while 0 <= j < L:
        if b.bg[i, side, j] + b.own[i, side, j] > 0:
            b.best[i, side] = b.lower_tick[i] + j
            return
        j += step


@_hot
def _after_removal(b, i, side, idx):
    """Restore the best of ``side`` after volume left level ``idx`` (scan away from the touch)."""
    if b.best[i, side] - b.lower_tick[i] == idx and b.bg[i, side, idx] + b.own[i, side, idx] == 0:
        _rescan_from(b, i, side, idx + 1 if side == ASK else idx - 1)


@_hot
def _after_add(b, i, side, tick):
    """Update the best of ``side`` after volume came to rest at ``tick``.

    The side was empty before the add iff its recorded best is empty, unless the best is the
    level just added to (then it holds volume now and ``tick`` is not better anyway).
    """
    best = b.best[i, side]
    if best != tick and (_is_empty(b, i, side) or (tick > best if side == BID else tick < best)):
        b.best[i, side] = tick


@_cold
def _next_own(b, i, side, tick, after_seq):
    """Slot of our next order (by seq, > after_seq) resting at (side, tick), or -1."""
    best = -1
    best_seq = np.int64(2**62)
    o = b.orders
    j = np.int64(0)
    while j < o.shape[1]:
        if o[i, j, ORD_QTY] > 0 and o[i, j, ORD_SIDE] == side and o[i, j, ORD_PX] == tick:
            s = o[i, j, ORD_SEQ]
            if after_seq < s < best_seq:
                best = j
                best_seq = s
        j = _opaque(j + 1)
    return best


@_hot
def _uniform(s0, s1):
    """Uniform on [0, 1) from a xoroshiro128+ state held in two locals: (u, s0, s1)."""
    bits, s0, s1 = xoroshiro_next(s0, s1)
    return to_unit(bits), s0, s1


@_hot
def geometric_size(u, logq, max_size):
    """Geometric size on {1, 2, ...} with P(size > n) = q^n, q = 1 - 1/mean: 1 + floor(ln(1-u)/ln q).

    Args:
        u: uniform on [0, 1) (float64). logq: ln q (0: always 1 lot). max_size: cap (int64 lots).
    """
    if logq == 0.0:
        return np.int64(1)
    s = 1.0 + np.floor(np.log(1.0 - u) / logq)
    if s > max_size:
        s = np.float64(max_size)
    return np.int64(s)


@_cold
def _trade_fits_slow(cash, inv, lo, L, qty):
    """Exact form of the overflow test in :func:`_take_walk` (any state, any qty)."""
    if qty <= 0:
        return True
    if cash == _I64_MIN or inv == _I64_MIN or lo == _I64_MIN or abs(lo) > _I64_MAX - L:
        return False
    if qty > _I64_MAX - abs(inv):
        return False
    return abs(lo) + L <= (_I64_MAX - abs(cash)) // qty


# ---------------------------------------------------------------------------- matching ---
@_cold
def _take_level_own(b, i, side, idx, v, own_taker):
    """A taker of ``v`` lots consumes level ``idx`` of resting ``side``, which holds our orders;
    returns lots left. (A level without our orders is the inline fast path of :func:`take`.)

    FIFO: background ahead of our first order, our first order, ..., background behind the last
    of ours. An own taker first cancels our resting orders here (self-trade prevention).
    """
    tick = b.lower_tick[i] + idx
    taker = 1 - side  # BUY consumes ASK
    o = b.orders
    M = o.shape[1]
    if own_taker:
        j = np.int64(0)
        while j < M:
            if o[i, j, ORD_QTY] > 0 and o[i, j, ORD_SIDE] == side and o[i, j, ORD_PX] == tick:
                r = o[i, j, ORD_QTY]
                b.own[i, side, idx] -= r
                b.counters[i, C_OWN_CANCELLED] += r
                o[i, j, ORD_QTY] = 0
            j = _opaque(j + 1)
        x = b.bg[i, side, idx]
        x = v if v < x else x
        b.bg[i, side, idx] -= x
        b.counters[i, C_BG_TRADED] += x
        b.inventory[i] += x if taker == BUY else -x
        b.cash_ticks[i] -= x * tick if taker == BUY else -(x * tick)
        b.counters[i, C_TAKER_BUY + taker] += x
        b.counters[i, C_BUY_VOL + taker] += x
        return v - x
    v0 = v
    consumed = np.int64(0)
    bgq = b.bg[i, side, idx]
    last = np.int64(-1)
    while v > 0:
        j = _next_own(b, i, side, tick, last)
        if j < 0:
            x = bgq - consumed
            x = v if v < x else x
            consumed += x
            v -= x
            break
        last = o[i, j, ORD_SEQ]
        x = o[i, j, ORD_AHEAD] - consumed
        x = v if v < x else x
        if x > 0:
            consumed += x
            v -= x
        if v == 0:
            break
        f = o[i, j, ORD_QTY]
        f = v if v < f else f
        o[i, j, ORD_QTY] -= f
        b.own[i, side, idx] -= f
        v -= f
        # our resting order fills passively (cash exact in tick-lots)
        b.inventory[i] += f if side == BID else -f
        b.cash_ticks[i] -= f * tick if side == BID else -(f * tick)
        b.counters[i, C_OWN_FILLED_BID + side] += f
    b.bg[i, side, idx] -= consumed
    b.counters[i, C_BG_TRADED] += consumed
    if consumed > 0:
        j = np.int64(0)
        while j < M:
            if o[i, j, ORD_QTY] > 0 and o[i, j, ORD_SIDE] == side and o[i, j, ORD_PX] == tick:
                a = o[i, j, ORD_AHEAD] - consumed
                o[i, j, ORD_AHEAD] = a if a > 0 else 0
            j = _opaque(j + 1)
    b.counters[i, C_BUY_VOL + taker] += v0 - v
    return v


@_hot
def _take_walk(b, i, taker_side, qty, limit_tick, own_taker):
    """:func:`take` (inlined into :func:`run_flow`; see there)."""
    L = b.bg.shape[2]
    v = np.int64(qty)
    notional = np.int64(0)
    last_tick = np.int64(-1)
    rest = 1 - taker_side
    if _is_empty(b, i, rest):
        return np.int64(0), notional, last_tick
    # refuse a trade whose worst case (v lots at the window's largest |tick|) could overflow cash
    # or inventory; the fast test covers every sane state
    lo = b.lower_tick[i]
    cash = b.cash_ticks[i]
    inv = b.inventory[i]
    if not ((v <= _FAST_QTY and -_FAST_TICK < lo < _FAST_TICK and -_FAST_CASH < cash < _FAST_CASH
             and -_FAST_CASH < inv < _FAST_CASH) or _trade_fits_slow(cash, inv, lo, np.int64(L), v)):
        b.error[i] = ERR_CASH
        return np.int64(0), notional, last_tick
    start = b.best[i, rest] - lo
    step = 1 if rest == ASK else -1
    idx = start
    while v > 0 and 0 <= idx < L:
        tick = lo + idx
        if tick > limit_tick if taker_side == BUY else tick < limit_tick:
            break
        q_bg = b.bg[i, rest, idx]
        q_own = b.own[i, rest, idx]
        if q_bg + q_own > 0:
            if q_own == 0:
                # fast path: no order of ours here, plain FIFO consumption of the background
                x = v if v < q_bg else q_bg
                b.bg[i, rest, idx] = q_bg - x
                b.counters[i, C_BG_TRADED] += x
                if own_taker:
                    b.inventory[i] += x if taker_side == BUY else -x
                    b.cash_ticks[i] -= x * tick if taker_side == BUY else -(x * tick)
                    b.counters[i, C_TAKER_BUY + taker_side] += x
                b.counters[i, C_BUY_VOL + taker_side] += x
                v2 = v - x
            else:
                v2 = _take_level_own(b, i, rest, idx, v, own_taker)
            if v2 < v:
                notional += (v - v2) * tick
                last_tick = tick
            v = v2
        if v > 0:
            idx += step
    if b.bg[i, rest, start] + b.own[i, rest, start] == 0:
        _rescan_from(b, i, rest, start)
    return qty - v, notional, last_tick


@_kernel
def take(b, i, taker_side, qty, limit_tick, own_taker):
    """Walk the opposite side level by level with a taker of ``qty`` lots up to ``limit_tick``.

    Args:
        b: BookState. i: env index (int64). taker_side: BUY (consumes asks) or SELL (bids).
        qty: lots (int64, > 0). limit_tick: worst acceptable tick (int64; ``NO_LIMIT_BUY`` /
            ``NO_LIMIT_SELL`` for a market order). own_taker: ``OWN_TAKER`` for our orders (cash
            and inventory change, self-trade prevention), ``BG_TAKER`` for background ones.

    Returns:
        (filled lots, notional in tick-lots, last tick reached or -1), all int64. A take whose
        worst case could overflow cash or inventory is refused: nothing changes, ``(0, 0, -1)``
        is returned and ``error[i] = ERR_CASH``.
    """
    return _take_walk(b, i, taker_side, qty, limit_tick, own_taker)


# ---------------------------------------------------------------------- operations ---
@_hot
def _rest_bg(b, i, side, tick, v):
    """``v`` background lots join the back of (side, tick) if it is inside the window."""
    idx = tick - b.lower_tick[i]
    if idx < 0 or idx >= b.bg.shape[2]:
        b.counters[i, C_BG_OUTSIDE] += v
        return
    b.bg[i, side, idx] += v
    b.counters[i, C_BG_ADDED] += v
    _after_add(b, i, side, tick)


@_kernel
def bg_limit(b, i, side, tick, qty):
    """A background limit order of ``qty`` lots at ``tick``: a marketable part matches first, the
    rest joins the back of the queue (or is counted in ``C_BG_OUTSIDE`` outside the window).

    Args:
        b: BookState. i: env index. side: BID/ASK. tick: absolute tick (int64). qty: lots (int64).
    """
    v = np.int64(qty)
    opp = 1 - side
    if not _is_empty(b, i, opp) and (tick >= b.best[i, opp] if side == BID else tick <= b.best[i, opp]):
        f, _, _ = take(b, i, side, v, tick, BG_TAKER)  # the taker side has the resting side's index
        if b.error[i] != 0:
            return
        v -= f
    if v <= 0:
        return
    _rest_bg(b, i, side, tick, v)


@_cold
def _segment_shift(b, i, side, tick, c, B, want, always):
    """Take ``r = min(want, s_c)`` lots from background segment ``c`` (c = 0 ahead of our first
    order at (side, tick), the last one behind all of them) of a level holding ``B`` background
    lots: our orders behind the segment (index >= c) move up by ``r`` if ``r > 0`` (or
    ``always``). Returns ``r``."""
    o = b.orders
    prev = np.int64(0)
    last = np.int64(-1)
    k = 0
    r = np.int64(0)
    found = False
    while True:
        j = _next_own(b, i, side, tick, last)
        if j < 0:
            break
        a = o[i, j, ORD_AHEAD]
        if k == c:
            r = a - prev
            r = want if want < r else r
            found = True
        if k >= c and (always or r > 0):
            o[i, j, ORD_AHEAD] = a - r
        prev = a
        last = o[i, j, ORD_SEQ]
        k += 1
    if not found:
        r = B - prev
        r = want if want < r else r
    return r


@_cold
def _power_cancel(b, i, side, tick, B, x, u, power):
    """QUEUE_POWER: remove ``x`` of the ``B`` background lots at a level holding our orders; the
    cancel hits segment j w.p. s_j^n / sum_k s_k^n, the rest of it comes from the back."""
    o = b.orders
    # pass 1: total weight over segments (aheads are non-decreasing in seq)
    total = 0.0
    prev = np.int64(0)
    last = np.int64(-1)
    while True:
        j = _next_own(b, i, side, tick, last)
        if j < 0:
            break
        s = o[i, j, ORD_AHEAD] - prev
        if s > 0:
            total += s ** power
        prev = o[i, j, ORD_AHEAD]
        last = o[i, j, ORD_SEQ]
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
    while True:
        j = _next_own(b, i, side, tick, last)
        if j < 0:
            break
        s = o[i, j, ORD_AHEAD] - prev
        if s > 0:
            acc += s ** power
            if target < acc and chosen < 0:
                chosen = k
        prev = o[i, j, ORD_AHEAD]
        last = o[i, j, ORD_SEQ]
        k += 1
    m = k  # number of our orders here; segment m is behind them all
    if chosen < 0:
        chosen = m
    # first min(x, s_chosen) from the chosen segment (orders after it move up by that much), then
    # the remainder from the back: segment m, m-1, ... (segment c shrinks -> orders >= c move)
    c = chosen
    first = _TRUE
    level = B
    want = x
    r1 = np.int64(0)
    rest = x
    while True:
        r = _segment_shift(b, i, side, tick, c, level, want, first)
        if first:
            r1 = r
            rest = x - r1
            c = m
        else:
            if r > 0:
                rest -= r
            c -= 1
        if not (rest > 0 and c >= 0):
            break
        first = _FALSE
        level = B - r1 - (x - r1 - rest)
        want = rest


@_hot_kernel
def bg_cancel(b, i, side, tick, qty, u, queue_model, power):
    """Cancel up to ``qty`` background lots at ``tick``; our queue positions follow the model.

    Args:
        b: BookState. i: env index. side: BID/ASK. tick: absolute tick (int64). qty: lots (int64).
        u: float64 in [0, 1), locates the cancel for QUEUE_POWER (module docstring).
        queue_model, power: ``QUEUE_*`` (int64) and the exponent of QUEUE_POWER (float64).

    Returns:
        Lots cancelled (int64).
    """
    idx = tick - b.lower_tick[i]
    if idx < 0 or idx >= b.bg.shape[2]:
        return np.int64(0)
    B = b.bg[i, side, idx]
    x = np.int64(qty)
    x = x if x < B else B
    if x <= 0:
        return np.int64(0)
    if b.own[i, side, idx] > 0:
        if queue_model == QUEUE_PESSIMISTIC:
            # cancels come from the back: ahead = min(ahead, background left)
            o = b.orders
            j = np.int64(0)
            while j < o.shape[1]:
                if o[i, j, ORD_QTY] > 0 and o[i, j, ORD_SIDE] == side and o[i, j, ORD_PX] == tick:
                    a = o[i, j, ORD_AHEAD]
                    o[i, j, ORD_AHEAD] = a if a < B - x else B - x
                j = _opaque(j + 1)
        else:
            _power_cancel(b, i, side, tick, B, x, u, power)
    b.bg[i, side, idx] = B - x
    b.counters[i, C_BG_CANCELLED] += x
    _after_removal(b, i, side, idx)
    return x


@_kernel
def own_limit(b, i, side, tick, qty, t):
    """Our limit order: a marketable part matches first (as taker), the rest joins the back.

    Args:
        b: BookState. i: env index. side: BID/ASK. tick: limit price (absolute tick, int64).
        qty: lots (int64). t: entry time (float64, stored in ``ord_time``).

    Returns:
        (slot, filled as taker, notional in tick-lots), int64. ``slot`` is the record of the
        resting part, -1 if nothing rests (fully filled), -2 if the rest was rejected (outside
        the window or no free slot), ``OWN_REFUSED`` (-3) if the taker part was refused
        (``error[i]`` set; nothing changed).
    """
    L = b.bg.shape[2]
    v = np.int64(qty)
    f = np.int64(0)
    notional = np.int64(0)
    opp = 1 - side
    if not _is_empty(b, i, opp) and (tick >= b.best[i, opp] if side == BID else tick <= b.best[i, opp]):
        f, notional, _ = take(b, i, side, v, tick, OWN_TAKER)  # BUY == BID, SELL == ASK
        if b.error[i] != 0:
            return np.int64(OWN_REFUSED), f, notional
    v -= f
    if v <= 0:
        return np.int64(-1), f, notional
    idx = tick - b.lower_tick[i]
    if idx < 0 or idx >= L:
        return np.int64(-2), f, notional
    o = b.orders
    slot = -1
    for j in range(o.shape[1]):
        if o[i, j, ORD_QTY] == 0:
            slot = j
            break
    if slot < 0:
        return np.int64(-2), f, notional
    o[i, slot, ORD_SIDE] = side
    o[i, slot, ORD_PX] = tick
    o[i, slot, ORD_QTY] = v
    o[i, slot, ORD_AHEAD] = b.bg[i, side, idx]
    o[i, slot, ORD_SEQ] = b.seq[i]
    b.ord_time[i, slot] = t
    b.seq[i] += 1
    b.own[i, side, idx] += v
    b.counters[i, C_OWN_ADDED] += v
    _after_add(b, i, side, tick)
    return np.int64(slot), f, notional


@_kernel
def own_cancel(b, i, slot):
    """Cancel our order in ``slot`` (int64); returns the lots cancelled (int64; 0 if the slot is
    free or is not a slot index, i.e. outside ``[0, M)``: nothing is touched then)."""
    o = b.orders
    if slot < 0 or slot >= o.shape[1]:
        return np.int64(0)
    r = o[i, slot, ORD_QTY]
    if r <= 0:
        return np.int64(0)
    side = o[i, slot, ORD_SIDE]
    idx = o[i, slot, ORD_PX] - b.lower_tick[i]
    b.own[i, side, idx] -= r
    o[i, slot, ORD_QTY] = 0
    b.counters[i, C_OWN_CANCELLED] += r
    _after_removal(b, i, side, idx)
    return r


@_kernel
def own_reduce(b, i, slot, new_qty):
    """Reduce our order in ``slot`` to ``new_qty`` lots (int64) in place, keeping its queue
    position; ``new_qty <= 0`` cancels it; a ``slot`` outside ``[0, M)`` is ignored."""
    o = b.orders
    if slot < 0 or slot >= o.shape[1]:
        return
    r = o[i, slot, ORD_QTY]
    if new_qty >= r:
        return
    if new_qty <= 0:
        own_cancel(b, i, slot)
        return
    d = r - new_qty
    idx = o[i, slot, ORD_PX] - b.lower_tick[i]
    b.own[i, o[i, slot, ORD_SIDE], idx] -= d
    o[i, slot, ORD_QTY] = new_qty
    b.counters[i, C_OWN_CANCELLED] += d


@_cold
def _shift_row(a, i, side, s):
    """Shift ladder row ``a[i, side]`` by ``s`` levels (index j takes j + s; zeros come in);
    returns the lots shifted out."""
    L = a.shape[2]
    dropped = np.int64(0)
    if s > 0:
        n = s if s < L else L
        j = np.int64(0)
        while j < L:
            if j < n:
                dropped += a[i, side, j]
            a[i, side, j] = a[i, side, j + n] if j + n < L else 0
            j = _opaque(j + 1)
    else:
        n = -s if -s < L else L
        j = L - 1
        while j >= 0:
            if j >= L - n:
                dropped += a[i, side, j]
            a[i, side, j] = a[i, side, j - n] if j >= n else 0
            j = _opaque(j - 1)
    return dropped


@_kernel
def recentre_to(b, i, new_lower):
    """Move the window so index 0 is ``new_lower`` (int64 tick); volume shifted out is dropped
    (background counted in ``C_BG_DROPPED``, our orders cancelled into ``C_OWN_DROPPED``)."""
    L = b.bg.shape[2]
    s = new_lower - b.lower_tick[i]
    if s == 0:
        return
    r = np.int64(0)
    while r < 4:  # rows bg[BID], bg[ASK], own[BID], own[ASK]
        dropped = _shift_row(b.bg if r < 2 else b.own, i, r % 2, s)
        if r < 2:
            b.counters[i, C_BG_DROPPED] += dropped
        r = _opaque(r + 1)
    b.lower_tick[i] = new_lower
    o = b.orders
    j = np.int64(0)
    while j < o.shape[1]:
        if o[i, j, ORD_QTY] > 0:
            idx = o[i, j, ORD_PX] - new_lower
            if idx < 0 or idx >= L:
                b.counters[i, C_OWN_DROPPED] += o[i, j, ORD_QTY]
                o[i, j, ORD_QTY] = 0
        j = _opaque(j + 1)
    if _is_empty(b, i, _BID):
        _rescan_from(b, i, _BID, L - 1)
    if _is_empty(b, i, _ASK):
        _rescan_from(b, i, _ASK, np.int64(0))


@_hot_kernel
def maybe_recentre(b, i, margin):
    """Recentre on the mid when a best is within ``margin`` levels (int64, e.g. ``fp.margin``)
    of an edge or outside the window; returns True if the window moved."""
    L = b.bg.shape[2]
    lo = b.lower_tick[i]
    bi = b.best[i, BID] - lo
    ai = b.best[i, ASK] - lo
    if bi < margin or ai < margin or bi > L - 1 - margin or ai > L - 1 - margin:
        centre = (b.best[i, BID] + b.best[i, ASK]) // 2
        recentre_to(b, i, centre - L // 2)
        return True
    return False


# ------------------------------------------------------------------------- op rows ---
@_cold
def _op_problem(code, side, tick, qty, u, n_slots):
    """0 if the op row ``(code, side, tick_or_slot, qty, u)`` (float64) may be applied, else
    the ``_P_*`` problem (fields an op does not use must still be finite)."""
    if not (np.isfinite(code) and np.isfinite(side) and np.isfinite(tick) and np.isfinite(qty)
            and np.isfinite(u)):
        return _P_NONFINITE
    if code < 0.0:
        return _P_OK  # padding
    if code != np.floor(code) or code >= N_OP_CODES:
        return _P_CODE
    c = np.int64(code)
    if c != OP_OWN_CANCEL and c != OP_RECENTRE and side != 0.0 and side != 1.0:
        return _P_SIDE
    if c == OP_OWN_CANCEL:
        if tick != np.floor(tick) or tick < 0.0 or tick >= n_slots:
            return _P_SLOT
    elif c != OP_MARKET and c != OP_OWN_MARKET:
        if tick != np.floor(tick) or abs(tick) > MAX_TICK:
            return _P_TICK
    if c != OP_OWN_CANCEL and c != OP_RECENTRE:
        if qty != np.floor(qty) or qty < 1.0 or qty > MAX_LOTS:
            return _P_QTY
    if c == OP_BG_CANCEL and not (0.0 <= u <= 1.0):
        return _P_U
    return _P_OK


# ------------------------------------------------------------------------------ flow ---
@_kernel
def init_book(b, i, centre_tick, lam, theta, s0_spread):
    """Reset env ``i`` to a deterministic book around ``centre_tick``.

    Best bid ``centre - s0_spread // 2``, best ask ``best bid + s0_spread``; the level at distance
    ``d`` from the opposite best holds ``max(1, round(lam[d-1] / theta[d-1]))`` lots, the stationary
    mean of a level with arrivals lam and per-lot cancels theta (CST 2010, sec. 2). Clears our
    orders, cash, inventory, counters, time and ``error``; the initial lots count as added (the
    flow's own state is :func:`reset_flow_state`'s). A
    ``|centre_tick| > MAX_TICK`` or ``s0_spread < 1`` is refused: ``error[i] = ERR_INIT``,
    nothing else changes. Callable from Python too (through the engine's Python entry point).

    Args:
        b: BookState. i: env index (int64). centre_tick: int64 tick.
        lam, theta: (K,) float64 flow rates (per time unit). s0_spread: initial spread (int64 ticks).
    """
    if abs(centre_tick) > MAX_TICK or s0_spread < 1:
        b.error[i] = ERR_INIT
        return
    L = b.bg.shape[2]
    K = lam.shape[0]
    lo = centre_tick - L // 2
    b.lower_tick[i] = lo
    for side in range(2):
        for j in range(L):
            b.bg[i, side, j] = 0
            b.own[i, side, j] = 0
    j = np.int64(0)
    while j < b.orders.shape[1]:
        b.orders[i, j, ORD_QTY] = 0
        b.orders[i, j, ORD_AHEAD] = 0
        j = _opaque(j + 1)
    for j in range(N_CNT):
        b.counters[i, j] = 0
    b.seq[i] = 0
    b.cash_ticks[i] = 0
    b.inventory[i] = 0
    b.time[i] = 0.0
    b.error[i] = 0
    bb = centre_tick - s0_spread // 2
    ba = bb + s0_spread
    b.best[i, BID] = bb
    b.best[i, ASK] = ba
    d = np.int64(1)
    while d <= K:
        th = theta[d - 1]
        n = 1.0
        if th > 0.0:
            n = np.rint(lam[d - 1] / th)
            n = n if n > 1.0 else 1.0
        q = np.int64(n)
        ib = ba - d - lo
        ia = bb + d - lo
        if ib >= 0 and ib < L and ba - d <= bb:
            b.bg[i, BID, ib] += q
            b.counters[i, C_BG_ADDED] += q
        if ia >= 0 and ia < L and bb + d >= ba:
            b.bg[i, ASK, ia] += q
            b.counters[i, C_BG_ADDED] += q
        d = _opaque(d + 1)


@_kernel
def reset_flow_state(b, fs, i):
    """Row ``i`` of the flow state ``fs`` at a reset: the latent value at book ``i``'s mid
    (ticks), an empty toxicity record."""
    fs[i, FS_VALUE] = 0.5 * (b.best[i, BID] + b.best[i, ASK])
    for j in range(1, N_FLOW_STATE):
        fs[i, j] = 0.0


@_hot
def toxicity_update(tox_s, tox_m, tox_r, a, signed, size, depth, levels):
    """The toxicity record (``TOX_SIGNED``, ``TOX_ABS``, ``TOX_REL_SIZE``, ``TOX_LEVELS``) after
    one market order that traded ``signed`` lots (+ buy, - sell) of its ``size``, with ``depth``
    lots resting at the best it hit before it traded and ``levels`` price levels walked. The one
    rule of the simulated book (:func:`run_flow`) and the replay
    (:func:`mmgym.scenarios.replay.run_events`), in locals (the 3 running values in, the 4 out:
    ``levels`` replaces the last order's).

    EWMAs with weight ``a`` (:func:`toxicity_decay`): ``x <- x + a (signed - x)`` and the same for
    ``|signed|`` (RiskMetrics' exponential smoothing, J.P. Morgan/Reuters (1996), RiskMetrics
    Technical Document, eq. 5.1, per order instead of per day); ``|TOX_SIGNED| <= TOX_ABS`` holds
    after every update (a convex combination of |x| <= the same of |signed|). The relative size
    ``size / depth`` is the order's size over the queue it met (the "order size relative to
    depth" of Cont, Kukanov, Stoikov (2014), "The price impact of order book events", J.
    Financial Econometrics 12(1), 47-88: impact grows with size / depth); ``depth <= 0`` (no
    resting lots known: only on recorded data, whose trade and depth feeds are not synchronised)
    leaves the last value.
    """
    tox_s += a * (signed - tox_s)
    tox_m += a * (abs(signed) - tox_m)
    if depth > 0:
        tox_r = size / depth
    return tox_s, tox_m, tox_r, levels


@_hot
def _cancel_weight(b, i, side, ref, theta, K):
    """Total cancel rate of ``side``: sum over d of theta[d-1] * (lots at distance d from the
    opposite best, index ``ref``), d = 1..K clipped to the window (ascending d)."""
    L = b.bg.shape[2]
    if side == BID:  # idx = ref - d in [0, L)
        d = ref - L + 1
        d_hi = ref
    else:  # idx = ref + d in [0, L)
        d = -ref
        d_hi = L - 1 - ref
    d = d if d > 1 else np.int64(1)
    d_hi = K if K < d_hi else d_hi
    sgn = -1 if side == BID else 1
    w = 0.0
    while d <= d_hi:
        w += theta[d - 1] * b.bg[i, side, ref + sgn * d]
        d = _opaque(d + 1)
    return w


@_hot
def _value_step(v2, sigma, dt, z):
    """Twice the latent value after ``dt`` time units of Brownian motion with volatility ``sigma``
    (ticks per sqrt(time unit)) and the standard normal draw ``z``: ``v2 + 2 sigma sqrt(dt) z``
    (unchanged for ``dt`` not in (0, inf), e.g. an infinite or earlier ``t_stop``)."""
    if dt > 0.0 and dt < np.inf:
        return v2 + 2.0 * sigma * np.sqrt(dt) * z
    return v2


@_cold
def _value_advance(v2, sigma, dt, s0, s1):
    """:func:`_value_step` with its standard normal drawn from the stream ``(s0, s1)`` (one
    ziggurat draw, :func:`mmgym.sim.rng.zig_normal`); returns ``(v2, s0, s1)``. Out of line: the
    bare book's event loop then carries no trace of the informed flow but a branch."""
    z, s0, s1 = zig_normal(s0, s1)
    return _value_step(v2, sigma, dt, z), s0, s1


@_kernel
def run_flow(b, i, t_stop, max_events, lam, theta, fp, tape, fs):
    """Simulate env ``i``'s background flow up to time ``t_stop`` or ``max_events`` events.

    Gillespie's direct method (Gillespie 1977) on the CST (2010) rates (module docstring). The
    event that would overshoot ``t_stop`` is discarded and the clock set to ``t_stop``: exact by
    the memorylessness of exponential waiting times. Market orders are appended to ``tape`` while
    ``tape.n[0] < len(tape.t)``. An env with ``error[i] != 0`` does not move; an event refused
    (a trade that could overflow cash, :func:`take`) sets ``error[i]`` and ends the call with
    the clock at that event. (A NaN or infinite ``t_stop`` is never reached: only
    ``max_events`` ends the call then.)

    Args:
        b: BookState. i: env index (int64). t_stop: float64 time. max_events: int64 cap.
        lam, theta: (K,) float64 arrival rates and per-lot cancel rates (per time unit).
        fp: ``FLOW_DTYPE`` record (:func:`flow_params`). tape: :class:`Tape` (capacity 0: none).
        fs: (N, N_FLOW_STATE) float64 flow state: row ``i``'s latent value ``FS_VALUE`` (read and
            advanced with informed flow on) and toxicity record ``TOX_*`` (updated at each
            background market order that trades).

    Returns:
        Number of events simulated (int64).
    """
    L = b.bg.shape[2]
    K = lam.shape[0]
    lam_sum = 0.0
    d = np.int64(0)
    while d < K:
        lam_sum += lam[d]
        d = _opaque(d + 1)
    mu_b = fp.mu_buy
    mu_s = fp.mu_sell
    logq_l = fp.logq_limit
    logq_m = fp.logq_market
    max_size = fp.max_size
    qmodel = fp.queue_model
    power = fp.queue_power
    margin = fp.margin
    rec_cap = tape.t.shape[0]
    r_limit = 2.0 * lam_sum
    r_buy = r_limit + mu_b
    r_market = r_buy + mu_s
    # informed flow: the market rate splits into (1 - f) mu_b, (1 - f) mu_s uninformed and the
    # rest informed; with f = 0 these are r_buy and r_market exactly
    f_inf = fp.informed_frac
    informed = f_inf > 0.0
    r_ubuy = r_limit + mu_b * (1.0 - f_inf)
    r_umarket = r_ubuy + mu_s * (1.0 - f_inf)
    sig_v = fp.informed_sigma
    logq_inf = fp.logq_informed
    tox_a = fp.tox_decay
    events = np.int64(0)
    if b.error[i] != 0:
        return events
    s0 = b.rng[i, 0]  # the stream, the clock and the event count live in locals while we run
    s1 = b.rng[i, 1]
    t = b.time[i]
    v2 = 2.0 * fs[i, FS_VALUE]  # twice the latent value (ticks), compared with mid2
    # the toxicity record lives in locals too (stores to fs in the loop cost the bare book ~5 %)
    tox_s = fs[i, TOX_SIGNED]
    tox_m = fs[i, TOX_ABS]
    tox_r = fs[i, TOX_REL_SIZE]
    tox_l = fs[i, TOX_LEVELS]
    while events < max_events:
        lo = b.lower_tick[i]
        ba = b.best[i, ASK] - lo
        bb = b.best[i, BID] - lo
        # cancel rates: the bids at distance d from the best ask, the asks at d from the best bid
        wb = _cancel_weight(b, i, _BID, ba, theta, K)
        wa = _cancel_weight(b, i, _ASK, bb, theta, K)
        rate = r_market + wb + wa
        u_t, s0, s1 = _uniform(s0, s1)
        u_e, s0, s1 = _uniform(s0, s1)
        u_s, s0, s1 = _uniform(s0, s1)
        u_q, s0, s1 = _uniform(s0, s1)
        t_next = t - np.log(1.0 - u_t) / rate if rate > 0.0 else np.inf
        if informed:  # the latent value's Brownian increment up to this event (or t_stop)
            v2, s0, s1 = _value_advance(v2, sig_v, min(t_next, t_stop) - t, s0, s1)
        if rate <= 0.0 or t_next > t_stop:
            t = t_stop
            break
        t = t_next
        x = u_e * rate
        if x < r_limit:
            # limit order at distance d from the opposite best: never marketable
            side = BID if x < lam_sum else ASK
            y = x if side == BID else x - lam_sum
            d = 1
            acc = lam[0]
            while y >= acc and d < K:
                acc += lam[d]
                d += 1
            size = geometric_size(u_s, logq_l, max_size)
            sgn = 1 - 2 * side  # BID: best ask - d; ASK: best bid + d
            _rest_bg(b, i, side, b.best[i, 1 - side] - sgn * d, size)
        elif x < r_market:
            mid2 = b.best[i, BID] + b.best[i, ASK]
            if x < r_umarket:
                taker = BUY if x < r_ubuy else SELL
                size = geometric_size(u_s, logq_m, max_size)
            else:  # informed: trade toward the latent value (a coin flip at the mid)
                if v2 != mid2:
                    taker = BUY if v2 > mid2 else SELL
                else:
                    taker = BUY if u_q < 0.5 else SELL
                size = geometric_size(u_s, logq_inf, max_size)
            rest = 1 - taker
            best0 = b.best[i, rest]
            depth0 = np.int64(0)
            if best0 - lo >= 0 and best0 - lo < L:
                depth0 = b.bg[i, rest, best0 - lo] + b.own[i, rest, best0 - lo]
            f, _, last = _take_walk(b, i, taker, size, NO_LIMIT_BUY if taker == BUY else NO_LIMIT_SELL,
                                    BG_TAKER)
            if b.error[i] != 0:
                break
            b.counters[i, C_MO_UNFILLED] += size - f
            if f > 0:  # the toxicity record (depth0 > 0: a trade starts at a non-empty best)
                tox_s, tox_m, tox_r, tox_l = toxicity_update(tox_s, tox_m, tox_r, tox_a,
                                                             f if taker == BUY else -f, size, depth0,
                                                             abs(last - best0) + 1.0)
            n = tape.n[0]
            if f > 0 and n < rec_cap:
                tape.t[n] = t_next
                tape.side[n] = taker
                tape.px[n] = last
                tape.qty[n] = f
                tape.mid2[n] = mid2
                tape.n[0] = n + 1
        else:
            y = x - 2.0 * lam_sum - mu_b - mu_s
            side = BID if y < wb else ASK
            if side == ASK:
                y -= wb
            size = geometric_size(u_s, logq_l, max_size)
            # locate the level: cumulative theta(d) x_d, d ascending from the opposite best
            ref = ba if side == BID else bb
            sgn = -1 if side == BID else 1
            acc = 0.0
            chosen = -1
            for d in range(1, K + 1):
                idx = ref + sgn * d
                if idx >= 0 and idx < L:
                    xd = b.bg[i, side, idx]
                    if xd > 0:
                        acc += theta[d - 1] * xd
                        chosen = idx
                        if y < acc:
                            break
            if chosen >= 0:
                bg_cancel(b, i, side, lo + chosen, size, u_q, qmodel, power)
        events += 1
        maybe_recentre(b, i, margin)
    b.rng[i, 0] = s0
    b.rng[i, 1] = s1
    b.time[i] = t
    if informed:
        fs[i, FS_VALUE] = 0.5 * v2
    fs[i, TOX_SIGNED] = tox_s
    fs[i, TOX_ABS] = tox_m
    fs[i, TOX_REL_SIZE] = tox_r
    fs[i, TOX_LEVELS] = tox_l
    b.counters[i, C_EVENTS] += events
    return events


# ------------------------------------------------------------------------ Python entry ---
# Python reaches the engine through one compiled function, so a Python user compiles (and
# caches) one entry point with one CPython wrapper instead of one per operation.
_MODE_OPS = np.int64(0)
_MODE_FLOW = np.int64(1)
_MODE_RECORD = np.int64(2)
_MODE_INIT = np.int64(3)
_NO_CAP = np.int64(2**62)


@_py_kernel
def _python_entry(b, mode, ops, queue_model, power, out, t_stop, i, sample_dt, centre, spread, lam,
                  theta, fp, out_mid2, tape, fs):
    """The engine for Python callers (:func:`book_apply_ops`, :func:`book_flow`,
    :func:`book_record`, :func:`init_book`); arguments a mode does not use are empty.

    Returns:
        (int64, int64): ``_MODE_OPS``: (env, op) of the first refused row or (-1, -1);
        ``_MODE_FLOW``: (events, -1), every env ``j`` run to ``t_stop[j]``; ``_MODE_RECORD``:
        (events, -1), env ``i`` run to ``t0 + (k + 1) * sample_dt`` with ``out_mid2[k]`` twice
        the mid after each; ``_MODE_INIT``: (-1, -1) after :func:`init_book` of env ``i``.
    """
    if mode == _MODE_OPS:  # apply op rows (see book_apply_ops)
        M = b.orders.shape[1]
        for i in range(ops.shape[0]):
            for k in range(ops.shape[1]):
                if _op_problem(ops[i, k, 0], ops[i, k, 1], ops[i, k, 2], ops[i, k, 3], ops[i, k, 4], M) != 0:
                    return np.int64(i), np.int64(k)
        for i in range(ops.shape[0]):
            for k in range(ops.shape[1]):
                code = np.int64(ops[i, k, 0])
                if code < 0:
                    continue
                if b.error[i] != 0:
                    return np.int64(i), np.int64(k)
                side = np.int64(ops[i, k, 1])
                tick = np.int64(ops[i, k, 2])
                qty = np.int64(ops[i, k, 3])
                r = np.int64(0)
                if code == OP_BG_LIMIT:
                    bg_limit(b, i, side, tick, qty)
                elif code == OP_BG_CANCEL:
                    r = bg_cancel(b, i, side, tick, qty, ops[i, k, 4], queue_model, power)
                elif code == OP_MARKET or code == OP_OWN_MARKET:
                    own = code == OP_OWN_MARKET
                    f, _, _ = take(b, i, side, qty, NO_LIMIT_BUY if side == BUY else NO_LIMIT_SELL, own)
                    if not own and b.error[i] == 0:
                        b.counters[i, C_MO_UNFILLED] += qty - f
                    r = f
                elif code == OP_OWN_LIMIT:
                    r, _, _ = own_limit(b, i, side, tick, qty, b.time[i])
                elif code == OP_OWN_CANCEL:
                    r = own_cancel(b, i, tick)
                else:
                    recentre_to(b, i, tick)
                if b.error[i] != 0:
                    return np.int64(i), np.int64(k)
                out[i, k] = r
        return np.int64(-1), np.int64(-1)
    if mode == _MODE_INIT:
        init_book(b, i, centre, lam, theta, spread)
        if fs.shape[0] > i and b.error[i] == 0:
            reset_flow_state(b, fs, i)
        return np.int64(-1), np.int64(-1)
    total = np.int64(0)
    if mode == _MODE_FLOW:
        for j in range(b.time.shape[0]):
            total += run_flow(b, j, t_stop[j], _NO_CAP, lam, theta, fp, tape, fs)
        return total, np.int64(-1)
    t0 = b.time[i]
    for k in range(out_mid2.shape[0]):
        total += run_flow(b, i, t0 + (k + 1) * sample_dt, _NO_CAP, lam, theta, fp, tape, fs)
        out_mid2[k] = b.best[i, BID] + b.best[i, ASK]
    return total, np.int64(-1)


_NO_OPS = np.zeros((0, 0, 5))
_NO_OUT = np.zeros((0, 0), dtype=np.int64)
_NO_F = np.zeros(0)
_NO_I = np.zeros(0, dtype=np.int64)
_NO_TAPE = new_tape(0)
_NO_FS = new_flow_state(0)
_NO_FP = _flow_record(0.0, 0.0, 0.0, 0.0, 1, 0, 0.0, 1)
_I0 = np.int64(0)
_F0 = np.float64(0.0)


def _f64(a) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float64)


def _check_state(b: BookState, where: str) -> None:
    if not isinstance(b, BookState):
        raise TypeError(f"{where}: expected a BookState, got {type(b).__name__}")


def _flow_state(b: BookState, fs: np.ndarray | None, where: str, fp) -> np.ndarray:
    """``fs`` checked against ``b``'s rows; None: an empty one for init_book, a throwaway one
    for a flow without informed orders (its toxicity record is then lost), refused with them."""
    n = b.time.shape[0]
    if fs is None:
        if fp is None:
            return _NO_FS
        if fp.informed_frac > 0.0:
            raise ValueError(f"{where}: informed flow (informed_frac = {fp.informed_frac}) needs the "
                             f"latent value: pass fs=new_flow_state(n) (reset by init_book(..., fs))")
        return new_flow_state(n)
    if not (isinstance(fs, np.ndarray) and fs.shape == (n, N_FLOW_STATE) and fs.dtype == np.float64
            and fs.flags.c_contiguous):
        raise ValueError(f"{where}: fs must be a flow state of {n} rows (new_flow_state({n}))")
    return fs


def _python_init_book(b: BookState, i: int, centre_tick: int, lam, theta, s0_spread: int,
                      fs: np.ndarray | None = None) -> None:
    """:func:`init_book` from Python; with ``fs`` also :func:`reset_flow_state` of row ``i``."""
    _check_state(b, "init_book")
    if not 0 <= int(i) < b.time.shape[0]:
        raise IndexError(f"init_book: env {i} out of range for {b.time.shape[0]} envs")
    _python_entry(b, _MODE_INIT, _NO_OPS, _I0, _F0, _NO_OUT, _NO_F, np.int64(i), _F0,
                  np.int64(centre_tick), np.int64(s0_spread), _f64(lam), _f64(theta), _NO_FP, _NO_I,
                  _NO_TAPE, _flow_state(b, fs, "init_book", None))
    if b.error[i] == ERR_INIT:
        bad = (f"centre_tick = {centre_tick}: |centre_tick| must be <= MAX_TICK = 2**40"
               if abs(int(centre_tick)) > MAX_TICK else f"s0_spread = {s0_spread}: must be >= 1")
        raise ValueError(f"init_book refused: env {i}: {bad}")


init_book.python_impl = _python_init_book


def book_apply_ops(b: BookState, ops: np.ndarray, queue_model: int, power: float,
                   out: np.ndarray) -> tuple[int, int]:
    """Apply operation rows to each env in order (the test/replay entry point; :func:`apply_ops`
    raises instead of returning a refusal).

    Every row is validated first (:func:`_op_problem`); if one is bad, nothing at all is applied.
    Then env by env, op by op: an op refused at run time (a trade that could overflow cash or
    inventory, see :func:`take`) changes nothing but ``error[i]``, and ends the call (later envs
    are not touched); an env with ``error[i]`` already set takes no op.

    Args:
        b: BookState.
        ops: (N, n_ops, 5) rows ``(code, side, tick_or_slot, qty, u)`` (float64) with ``OP_*``
            codes: ``side`` is BID/ASK for limits and cancels, BUY/SELL for market orders; the
            third column is an absolute tick (|tick| <= MAX_TICK), the order slot for
            ``OP_OWN_CANCEL`` ([0, M)), the new lower tick for ``OP_RECENTRE``; ``qty`` in
            1..MAX_LOTS lots; ``u`` in [0, 1] is the queue-model draw of a background cancel. A
            code < 0 is padding (skipped). Fields an op does not use must still be finite.
        queue_model: ``QUEUE_*`` of the background cancels. power: exponent of QUEUE_POWER.
        out: (N, n_ops) C-contiguous int64, written per applied op: the slot (own limit), lots
            cancelled (cancels), lots filled (market orders), 0 otherwise.

    Returns:
        (env, op index) of the first refused row, or (-1, -1).
    """
    _check_state(b, "book_apply_ops")
    n = b.time.shape[0]
    ops = _f64(ops)
    if ops.ndim != 3 or ops.shape[0] != n or ops.shape[2] != 5:
        raise ValueError(f"book_apply_ops: ops must have shape ({n}, n_ops, 5), got {ops.shape}")
    if (not isinstance(out, np.ndarray) or out.dtype != np.int64 or out.shape != ops.shape[:2]
            or not out.flags.c_contiguous):
        raise ValueError(f"book_apply_ops: out must be a C-contiguous int64 array of shape "
                         f"{ops.shape[:2]}")
    if queue_model not in (QUEUE_PESSIMISTIC, QUEUE_POWER) or not np.isfinite(power) or power < 0:
        raise ValueError(f"book_apply_ops: queue_model must be 0 or 1 and power finite >= 0, got "
                         f"{queue_model!r}, {power!r}")
    i, k = _python_entry(b, _MODE_OPS, ops, np.int64(queue_model), np.float64(power), out, _NO_F,
                         _I0, _F0, _I0, _I0, _NO_F, _NO_F, _NO_FP, _NO_I, _NO_TAPE, _NO_FS)
    return int(i), int(k)


def apply_ops(b: BookState, ops: np.ndarray, queue_model: int = QUEUE_PESSIMISTIC, power: float = 0.0,
              out: np.ndarray | None = None) -> np.ndarray:
    """Checked :func:`book_apply_ops`: returns ``out`` ((N, n_ops) int64), raises on a refusal.

    Raises:
        ValueError: one line naming the env, op index, field and value of the first refused row
            (nothing of that row was applied; see :func:`book_apply_ops` for what was).
    """
    ops = _f64(ops)
    if out is None:
        out = np.zeros(ops.shape[:2], dtype=np.int64)
    i, k = book_apply_ops(b, ops, queue_model, power, out)
    if i >= 0:
        raise ValueError(describe_refused_op(b, ops, i, k))
    return out


def _show(x) -> str:
    """An op-row value as a person would write it: -1, 2305843009213693952, 1.5, nan."""
    x = float(x)
    return str(int(x)) if np.isfinite(x) and x == int(x) and abs(x) < 2**63 else repr(x)


def describe_refused_op(b: BookState, ops: np.ndarray, i: int, k: int) -> str:
    """One line saying why row ``ops[i, k]`` was refused (after :func:`book_apply_ops`)."""
    row = ops[i, k]
    p = _op_problem.py_func(row[0], row[1], row[2], row[3], row[4], b.orders.shape[1])
    where = f"book op refused: env {i}, op {k}"
    if p == _P_NONFINITE:
        f = next(j for j in range(5) if not np.isfinite(row[j]))
        return f"{where}: {OP_FIELDS[f]} = {_show(row[f])}: {_PROBLEM_TEXT[p]}"
    if p != _P_OK:
        f = _PROBLEM_FIELD[p]
        return f"{where}: {OP_FIELDS[f]} = {_show(row[f])}: {_PROBLEM_TEXT[p]}"
    err = int(b.error[i])
    return (f"{where}: qty = {_show(row[3])} (code {_show(row[0])}): {ERROR_NAMES.get(err, '?')} "
            f"(error {err}; cash_ticks = {int(b.cash_ticks[i])}, inventory = {int(b.inventory[i])})")


def _raise_if_error(b: BookState, where: str) -> None:
    bad = np.flatnonzero(b.error)
    if bad.size:
        i = int(bad[0])
        err = int(b.error[i])
        raise ValueError(f"{where}: env {i} is in error {err} ({ERROR_NAMES.get(err, '?')}) at "
                         f"time {b.time[i]!r}; cash_ticks = {int(b.cash_ticks[i])}, "
                         f"inventory = {int(b.inventory[i])}")


def book_flow(b: BookState, t_stop, lam: np.ndarray, theta: np.ndarray, fp,
              fs: np.ndarray | None = None) -> int:
    """Run every env's background flow to ``t_stop[i]`` (no recording); returns total events.

    Args:
        b: BookState. t_stop: (N,) times (or one time for all). lam, theta: (K,) float64 rates.
        fp: ``FLOW_DTYPE`` record (:func:`flow_params`).
        fs: flow state (:func:`new_flow_state`: latent value, toxicity record); may be None
            without informed flow.

    Raises:
        ValueError: an env is in error (``b.error``), e.g. a trade refused for overflow.
    """
    _check_state(b, "book_flow")
    n = b.time.shape[0]
    t = np.empty(n)
    t[:] = t_stop
    if not np.isfinite(t).all():  # the clock would never reach it
        raise ValueError(f"book_flow: t_stop must be finite, got {t_stop!r}")
    fp = as_flow_params(fp)
    total, _ = _python_entry(b, _MODE_FLOW, _NO_OPS, _I0, _F0, _NO_OUT, t, _I0, _F0, _I0, _I0,
                             _f64(lam), _f64(theta), fp, _NO_I, _NO_TAPE,
                             _flow_state(b, fs, "book_flow", fp))
    _raise_if_error(b, "book_flow")
    return int(total)


def book_record(b: BookState, i: int, t_end: float, sample_dt: float, lam: np.ndarray,
                theta: np.ndarray, fp, out_mid2: np.ndarray, tape: Tape,
                fs: np.ndarray | None = None) -> int:
    """Simulate env ``i`` for ``len(out_mid2)`` steps of ``sample_dt`` from its current state,
    recording the mid after each and a tape of market orders.

    Args:
        b: BookState. i: env index. t_end: time units (ignored, as by the old kernel: the grid
            ``out_mid2``/``sample_dt`` decides). sample_dt: time units between mid samples.
        lam, theta: (K,) float64. fp: ``FLOW_DTYPE`` record (or the legacy vector).
        out_mid2: (n_samples,) C-contiguous int64, written: twice the mid in ticks at times
            ``t0 + (k + 1) * sample_dt``.
        tape: :class:`Tape` of market orders (:func:`run_flow`).
        fs: flow state (:func:`new_flow_state`: latent value, toxicity record); may be None
            without informed flow.

    Returns:
        Number of events simulated.

    Raises:
        ValueError: env ``i`` is in error (``b.error``).
    """
    _check_state(b, "book_record")
    if not 0 <= int(i) < b.time.shape[0]:
        raise IndexError(f"book_record: env {i} out of range for {b.time.shape[0]} envs")
    if not (isinstance(out_mid2, np.ndarray) and out_mid2.dtype == np.int64 and out_mid2.ndim == 1
            and out_mid2.flags.c_contiguous):
        raise ValueError("book_record: out_mid2 must be a C-contiguous (n,) int64 array")
    if not (np.isfinite(sample_dt) and sample_dt >= 0.0):
        raise ValueError(f"book_record: sample_dt must be finite and >= 0, got {sample_dt!r}")
    fp = as_flow_params(fp)
    total, _ = _python_entry(b, _MODE_RECORD, _NO_OPS, _I0, _F0, _NO_OUT, _NO_F, np.int64(i),
                             np.float64(sample_dt), _I0, _I0, _f64(lam), _f64(theta), fp, out_mid2,
                             tape, _flow_state(b, fs, "book_record", fp))
    _raise_if_error(b, "book_record")
    return int(total)

"""The columnar event format of a recording, the book pass that checks it, and the loader.

A :class:`Recording` is a sequence of events in the order they were received, one row per
level update or trade (the layout is hftbacktest's "one row per event" feed, simplified):

=========  =======  ===========================================================================
column     dtype    meaning
=========  =======  ===========================================================================
t_ns       int64    local receive time, ns (non-decreasing; see ``ts_backwards``)
exch_ns    int64    exchange time, ns (depth: ``E``; trade: ``T``; 0 if absent)
kind       int8     ``DEPTH`` 1, ``CLEAR`` 2, ``SNAPSHOT`` 3, ``CROSS_FIX`` 4, ``TRADE`` 5
side       int8     depth kinds: resting side (BID 0, ASK 1); TRADE: aggressor (BUY 0, SELL 1)
px         int64    price in ticks of ``meta["tick_size"]``
qty        int64    depth kinds: the level's new quantity; TRADE: the trade's size; in lots of
                    ``meta["lot_size"]``
=========  =======  ===========================================================================

plus the bookTicker series (``tk_t_ns``, ``tk_bid``, ``tk_ask``, ticks) and ``meta`` (a JSON
object: symbol, market, source file, tick and lot sizes, the price window, the bad-data report).
On disk it is one ``.npz`` (numpy's zip of arrays; ``meta`` as a JSON string), written by
``python -m mmgym.data convert FILE.gz OUT.npz`` and read by :func:`load`.

The book pass (:func:`book_pass`, numba) applies the events to a dense two-sided ladder over the
recording's price window and yields the touch after every event (``best_bid``, ``best_ask``).
Conversion runs it once to clean the stream: a level update on one side at or through the
other side's best removes the crossed levels of the other side (they are stale: the newer message
wins), and each removal is written to the stream as an explicit ``CROSS_FIX`` event, counted in the
report (``cross_fix_events``, ``cross_fix_lots``). A converted file is therefore never crossed,
and replaying it needs no repair rule.

Initial state. The book starts empty: a level is assumed empty until a message shows it. Until
the first REST snapshot (if the capture has one) the book holds only levels updated since the
capture started; ``events_before_snapshot`` and ``events_one_sided`` (events after which one side
was still empty) count the events affected, and ``ticker_touch_agree`` measures, over the
bookTicker messages, how often the rebuilt touch equals the exchange's when the ticker is received
(``ticker_touch_agree``) and at some moment within 50 ms of it (``ticker_touch_agree_50ms``: the
two streams are not synchronised).

Prices outside the window ``median trade price * (1 +- roi)`` (default ``roi = 0.1``) are left
out and counted (``outside_roi``): the dense ladder spans the window (hftbacktest's ROI, its
``roi_lb``/``roi_ub``).
"""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numba import njit

from . import binance as B

__all__ = ["Recording", "convert", "load", "save", "book_pass", "FORMAT_VERSION", "EMPTY_BID", "EMPTY_ASK"]

FORMAT_VERSION = 1
EMPTY_BID = -1  # best_bid of an empty bid side
EMPTY_ASK = 2**62  # best_ask of an empty ask side

_DEPTH, _CLEAR, _SNAPSHOT, _CROSS_FIX, _TRADE = B.DEPTH, B.CLEAR, B.SNAPSHOT, B.CROSS_FIX, B.TRADE


class DataError(ValueError):
    """A file that is not a capture or a converted recording: one line naming it."""


@dataclass
class Recording:
    """A converted recording (module docstring for the columns).

    Attributes:
        t_ns, exch_ns, kind, side, px, qty: (n,) event columns.
        best_bid, best_ask: (n,) int64 ticks, the touch after each event (``EMPTY_BID``/``EMPTY_ASK``).
        tk_t_ns, tk_bid, tk_ask: (m,) bookTicker series (ticks).
        meta: symbol, market, tick_size, lot_size, source, roi, report.
    """

    t_ns: np.ndarray
    exch_ns: np.ndarray
    kind: np.ndarray
    side: np.ndarray
    px: np.ndarray
    qty: np.ndarray
    best_bid: np.ndarray
    best_ask: np.ndarray
    tk_t_ns: np.ndarray
    tk_bid: np.ndarray
    tk_ask: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def tick_size(self) -> float:
        return float(self.meta["tick_size"])

    @property
    def lot_size(self) -> float:
        return float(self.meta["lot_size"])

    @property
    def report(self) -> dict[str, Any]:
        return self.meta.get("report", {})

    def __len__(self) -> int:
        return int(self.kind.shape[0])

    @property
    def t0_ns(self) -> int:
        return int(self.t_ns[0]) if len(self) else 0

    @property
    def duration(self) -> float:
        """Seconds from the first to the last event."""
        return float(self.t_ns[-1] - self.t_ns[0]) / 1e9 if len(self) else 0.0

    def time_s(self) -> np.ndarray:
        """(n,) float64 seconds since the first event."""
        return (self.t_ns - self.t0_ns) / 1e9

    def two_sided(self) -> np.ndarray:
        """(n,) bool: both sides non-empty after the event."""
        return (self.best_bid != EMPTY_BID) & (self.best_ask != EMPTY_ASK)


# ------------------------------------------------------------------------- book pass ---
@njit(cache=True)
def _book_pass(kind, side, px, qty, t_ns, exch_ns, lo, R, o_kind, o_side, o_px, o_qty, o_t, o_e, o_bb,
               o_ba, in2out, stats):
    """Apply the events to a dense ladder over ticks ``lo .. lo + R - 1`` (module docstring).

    Writes the cleaned stream (``CROSS_FIX`` rows inserted before the update that crossed) into
    ``o_*`` with the touch after each row, and ``in2out[j]`` (the output row of input ``j``).
    ``stats``: [cross-fix events, cross-fix lots, events one-sided]. Returns the rows written, or
    -1 if the output arrays are too short.
    """
    bid = np.zeros(R, np.int64)
    ask = np.zeros(R, np.int64)
    bb = np.int64(-1)  # index of the best bid, -1: empty
    ba = np.int64(R)  # index of the best ask, R: empty
    cap = o_kind.shape[0]
    n = 0
    for j in range(kind.shape[0]):
        k = kind[j]
        if k == _CLEAR:
            if bb >= 0 or ba < R:
                bid[:] = 0
                ask[:] = 0
            bb = -1
            ba = R
        elif k == _DEPTH or k == _SNAPSHOT or k == _CROSS_FIX:
            idx = px[j] - lo
            q = qty[j]
            if side[j] == 0:
                if q > 0 and ba < R and idx >= ba:  # the asks up to idx are stale
                    for a in range(ba, idx + 1):
                        if ask[a] > 0:
                            if n >= cap:
                                return -1
                            stats[0] += 1
                            stats[1] += ask[a]
                            ask[a] = 0
                            o_kind[n] = _CROSS_FIX
                            o_side[n] = 1
                            o_px[n] = lo + a
                            o_qty[n] = 0
                            o_t[n] = t_ns[j]
                            o_e[n] = exch_ns[j]
                            ba = a + 1
                            while ba < R and ask[ba] == 0:
                                ba += 1
                            o_bb[n] = lo + bb if bb >= 0 else EMPTY_BID
                            o_ba[n] = lo + ba if ba < R else EMPTY_ASK
                            n += 1
                bid[idx] = q
                if q > 0 and idx > bb:
                    bb = idx
                elif q == 0 and idx == bb:
                    while bb >= 0 and bid[bb] == 0:
                        bb -= 1
            else:
                if q > 0 and bb >= 0 and idx <= bb:  # the bids down to idx are stale
                    for a in range(bb, idx - 1, -1):
                        if bid[a] > 0:
                            if n >= cap:
                                return -1
                            stats[0] += 1
                            stats[1] += bid[a]
                            bid[a] = 0
                            o_kind[n] = _CROSS_FIX
                            o_side[n] = 0
                            o_px[n] = lo + a
                            o_qty[n] = 0
                            o_t[n] = t_ns[j]
                            o_e[n] = exch_ns[j]
                            bb = a - 1
                            while bb >= 0 and bid[bb] == 0:
                                bb -= 1
                            o_bb[n] = lo + bb if bb >= 0 else EMPTY_BID
                            o_ba[n] = lo + ba if ba < R else EMPTY_ASK
                            n += 1
                ask[idx] = q
                if q > 0 and idx < ba:
                    ba = idx
                elif q == 0 and idx == ba:
                    while ba < R and ask[ba] == 0:
                        ba += 1
        if n >= cap:
            return -1
        o_kind[n] = k
        o_side[n] = side[j]
        o_px[n] = px[j]
        o_qty[n] = qty[j]
        o_t[n] = t_ns[j]
        o_e[n] = exch_ns[j]
        o_bb[n] = lo + bb if bb >= 0 else EMPTY_BID
        o_ba[n] = lo + ba if ba < R else EMPTY_ASK
        if bb < 0 or ba >= R:
            stats[2] += 1
        in2out[j] = n
        n += 1
    return n


@njit(cache=True)
def _ticker_agree_within(t_ns, bb, ba, tk_t, tk_bid, tk_ask, window_ns):
    """Tickers whose best bid and ask equal the rebuilt touch at some event within ``window_ns``
    of their receive time (or the touch just before that window); -1 entries are not compared."""
    n = t_ns.shape[0]
    out = np.zeros(tk_t.shape[0], np.int64)
    for m in range(tk_t.shape[0]):
        j0 = np.searchsorted(t_ns, tk_t[m] - window_ns)
        j1 = np.searchsorted(t_ns, tk_t[m] + window_ns, side="right")
        j = j0 - 1 if j0 > 0 else 0
        hit = 0
        while j < j1 and j < n:
            if bb[j] == tk_bid[m] and ba[j] == tk_ask[m]:
                hit = 1
                break
            j += 1
        out[m] = hit
    return out


def book_pass(kind, side, px, qty, t_ns, exch_ns):
    """Run the book pass over event columns (module docstring).

    Returns:
        (columns dict of the cleaned stream incl. ``best_bid``/``best_ask``, in2out (n_in,) int64,
        stats dict: cross_fix_events, cross_fix_lots, events_one_sided).
    """
    n = kind.shape[0]
    book = (kind == _DEPTH) | (kind == _SNAPSHOT) | (kind == _CROSS_FIX) | (kind == _TRADE)
    if n and book.any():
        lo = int(px[book].min())
        R = int(px[book].max()) - lo + 1
    else:
        lo, R = 0, 1
    cap = n + n // 10 + 1024
    while True:
        o = {"kind": np.zeros(cap, np.int8), "side": np.zeros(cap, np.int8), "px": np.zeros(cap, np.int64),
             "qty": np.zeros(cap, np.int64), "t_ns": np.zeros(cap, np.int64), "exch_ns": np.zeros(cap, np.int64),
             "best_bid": np.zeros(cap, np.int64), "best_ask": np.zeros(cap, np.int64)}
        in2out = np.zeros(n, np.int64)
        stats = np.zeros(3, np.int64)
        m = _book_pass(kind, side, px, qty, t_ns, exch_ns, np.int64(lo), np.int64(R), o["kind"], o["side"],
                       o["px"], o["qty"], o["t_ns"], o["exch_ns"], o["best_bid"], o["best_ask"], in2out, stats)
        if m >= 0:
            break
        cap *= 2
    cols = {k: v[:m].copy() for k, v in o.items()}
    return cols, in2out, {"cross_fix_events": int(stats[0]), "cross_fix_lots": int(stats[1]),
                          "events_one_sided": int(stats[2])}


# ------------------------------------------------------------------------- conversion ---
def _market_of(source: str, futures: bool, symbol: str) -> str:
    base = os.path.basename(source).lower()
    for name in ("spot", "usdm", "cm"):
        if base.startswith(name):
            return name
    if not futures:
        return "spot"
    return "cm" if symbol.endswith("_PERP") or "_" in symbol else "usdm"


def convert(path: str, tick_size: float | None = None, lot_size: float | None = None,
            roi: float = 0.1) -> Recording:
    """Read a Binance capture (``.gz`` or plain text) into a checked :class:`Recording`.

    Args:
        path: the capture. tick_size, lot_size: price and size units (None: the finest decimal
            step the capture's prices / sizes use). roi: the price window's half-width as a
            fraction of the median trade price (levels outside are counted, not kept).

    Raises:
        DataError: not a readable capture (one line naming the file).
    """
    try:
        lines = B.read_lines(path)
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None
    raw = B.parse(lines)
    rep: dict[str, Any] = dict(raw.report)
    if not raw.kind:
        raise DataError(f"{path}: no depth or trade message found in {rep.get('lines', 0)} lines "
                        f"(bad lines: {rep.get('bad_lines', 0)})")
    kind = np.asarray(raw.kind, np.int8)
    is_clear = kind == _CLEAR
    px_str = [p for p, c in zip(raw.px, is_clear) if not c]
    q_str = [q for q, c in zip(raw.qty, is_clear) if not c]
    if tick_size is None:
        tick_size = 10.0 ** -B.decimals(px_str + raw.tk_bid + raw.tk_ask)
    if lot_size is None:
        lot_size = 10.0 ** -B.decimals(q_str)
    rep["px_off_grid"] = B.off_grid(px_str, tick_size)
    rep["qty_off_grid"] = B.off_grid(q_str, lot_size)
    px = B.to_units(raw.px, tick_size)
    qty = B.to_units(raw.qty, lot_size)
    side = np.asarray(raw.side, np.int8)
    t_ns = np.asarray(raw.t_ns, np.int64)
    exch_ns = np.asarray(raw.exch_ns, np.int64)
    trades = kind == _TRADE
    centre = float(np.median(px[trades])) if trades.any() else float(np.median(px[~is_clear]))
    lo_roi, hi_roi = int(np.floor(centre * (1 - roi))), int(np.ceil(centre * (1 + roi)))
    keep = is_clear | ((px >= lo_roi) & (px <= hi_roi))
    rep["outside_roi"] = int((~keep).sum())
    rep["outside_roi_trades"] = int((~keep & trades).sum())
    rep["outside_roi_depth"] = int((~keep & (kind == _DEPTH)).sum())
    cols, in2out, stats = book_pass(kind[keep], side[keep], px[keep], qty[keep], t_ns[keep], exch_ns[keep])
    rep.update(stats)
    # bookTicker: the rebuilt touch just before each ticker message vs the exchange's
    tk_bid = B.to_units(raw.tk_bid, tick_size)
    tk_ask = B.to_units(raw.tk_ask, tick_size)
    tk_ev = np.asarray(raw.tk_ev, np.int64)
    kept_before = np.concatenate([[0], np.cumsum(keep)])[tk_ev]  # kept events before each ticker
    has = kept_before > 0
    row = np.where(has, in2out[np.maximum(kept_before - 1, 0)] if in2out.size else 0, 0)
    if in2out.size:
        bb, ba = cols["best_bid"][row], cols["best_ask"][row]
        ok = has & (bb != EMPTY_BID) & (ba != EMPTY_ASK)
        agree = ok & (bb == tk_bid) & (ba == tk_ask)
        rep["ticker_compared"] = int(ok.sum())
        rep["ticker_touch_agree"] = round(float(agree.sum() / max(ok.sum(), 1)), 4)
        near = _ticker_agree_within(cols["t_ns"], cols["best_bid"], cols["best_ask"],
                                    np.asarray(raw.tk_t_ns, np.int64), tk_bid, tk_ask, np.int64(50_000_000))
        rep["ticker_touch_agree_50ms"] = round(float(near[ok].sum() / max(ok.sum(), 1)), 4)
    meta = {"format": "mmgym.data", "version": FORMAT_VERSION, "source": os.path.basename(path),
            "symbol": raw.symbol, "stream": raw.stream,
            "market": _market_of(path, bool(rep.get("futures_format")), raw.symbol),
            "tick_size": tick_size, "lot_size": lot_size, "roi": [lo_roi, hi_roi], "report": rep,
            "examples": raw.examples}
    return Recording(t_ns=cols["t_ns"], exch_ns=cols["exch_ns"], kind=cols["kind"], side=cols["side"],
                     px=cols["px"], qty=cols["qty"], best_bid=cols["best_bid"], best_ask=cols["best_ask"],
                     tk_t_ns=np.asarray(raw.tk_t_ns, np.int64), tk_bid=tk_bid, tk_ask=tk_ask, meta=meta)


_SAVED = ("t_ns", "exch_ns", "kind", "side", "px", "qty", "tk_t_ns", "tk_bid", "tk_ask")


def save(rec: Recording, out: str) -> None:
    """Write ``rec`` to ``out`` (an ``.npz``, compressed; the name is used as given)."""
    arrays = {k: getattr(rec, k) for k in _SAVED}
    with open(out, "wb") as f:
        np.savez_compressed(f, meta=np.array(json.dumps(rec.meta)), **arrays)


def is_converted(path: str) -> bool:
    """True if ``path`` is a zip (a converted ``.npz``), False for a raw capture."""
    with open(path, "rb") as f:
        return f.read(4) == b"PK\x03\x04"


def load(path: str, tick_size: float | None = None, lot_size: float | None = None) -> Recording:
    """A recording from a converted ``.npz`` or, converted in memory, from a raw capture.

    The touch columns are recomputed by the book pass (a converted stream needs no repair; a file
    that does is refused).

    Raises:
        DataError: missing, unreadable or not a recording (one line naming the file).
    """
    if not os.path.isfile(path):
        raise DataError(f"{path}: no such file")
    if not is_converted(path):
        return convert(path, tick_size, lot_size)
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            arrays = {k: z[k] for k in _SAVED}
    except (KeyError, ValueError, OSError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path}: not an mmgym.data recording ({exc})") from None
    if meta.get("format") != "mmgym.data" or meta.get("version") != FORMAT_VERSION:
        raise DataError(f"{path}: format {meta.get('format')!r} version {meta.get('version')!r}; expected "
                        f"'mmgym.data' version {FORMAT_VERSION}")
    if tick_size is not None and abs(tick_size - meta["tick_size"]) > 1e-15:
        raise DataError(f"{path}: converted with tick_size {meta['tick_size']} (asked {tick_size})")
    cols, _, stats = book_pass(arrays["kind"], arrays["side"], arrays["px"], arrays["qty"], arrays["t_ns"],
                               arrays["exch_ns"])
    if stats["cross_fix_events"]:
        raise DataError(f"{path}: the stream crosses the book ({stats['cross_fix_events']} levels); "
                        "convert it again with this version")
    return Recording(t_ns=cols["t_ns"], exch_ns=cols["exch_ns"], kind=cols["kind"], side=cols["side"],
                     px=cols["px"], qty=cols["qty"], best_bid=cols["best_bid"], best_ask=cols["best_ask"],
                     tk_t_ns=arrays["tk_t_ns"], tk_bid=arrays["tk_bid"], tk_ask=arrays["tk_ask"], meta=meta)

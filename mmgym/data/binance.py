"""Reader of recorded Binance market-data streams (spot, USDⓈ-M and COIN-M futures).

A capture is gzipped text, one message per line: the local receive time in ns, one space, then
the raw JSON the websocket (or the REST snapshot endpoint) returned. Combined-stream messages
are ``{"stream": "<symbol>@<channel>", "data": {...}}``; a REST depth snapshot is
``{"lastUpdateId": ..., "bids": [...], "asks": [...]}`` (futures add ``E``, ``T``). This is the
collector format of hftbacktest's examples (the five files in ``../shared/data/binance``).

Message kinds and the fields read (Binance API docs: "Diff. Depth Stream", "Trade Streams",
"Individual Symbol Book Ticker Streams", "How to manage a local order book correctly"; spot and
derivatives docs differ where noted):

- ``depthUpdate``: ``E`` (event time, ms), ``U``/``u`` (first/last update id), ``b``/``a``
  (``[price, qty]`` strings: the level's new absolute quantity, 0 removes it). Futures add ``T``
  and ``pu`` (previous message's ``u``); spot has neither (hftbacktest's futures converter fails
  on spot with ``KeyError: 'T'`` because of that). Sequencing: futures ``pu`` == previous ``u``;
  spot ``U`` == previous ``u`` + 1. A break is counted (``seq_gaps``), not repaired.
- ``trade``: ``p``, ``q``, ``T`` (trade time, ms), ``m`` (the buyer is the maker, so the
  *seller* is the aggressor). Futures add ``X`` (``MARKET``, or ``INSURANCE_FUND``/``ADL``/
  ``NA`` for liquidation-engine fills): only ``MARKET`` trades become events; the others are
  counted (``trades_not_market``).
- ``bookTicker``: best bid/ask; not an event of the book (the book is rebuilt from the diffs),
  kept as a separate series to measure how often the rebuilt touch agrees with it.
- REST snapshot: applied as Binance's procedure says. The book is cleared (a ``CLEAR`` event),
  the snapshot's levels are set, diffs received *before* the snapshot whose last id ``u`` is past
  ``lastUpdateId`` are applied again (the quantities are absolute, so re-applying is exact), and
  later diffs with ``u <= lastUpdateId`` are stale and skipped (counted).

Parsing is per line in Python (the JSON library is the work; ``orjson`` when installed, else
``json``); the book itself is rebuilt by the numba pass of :mod:`mmgym.data.recording`.
"""

from __future__ import annotations

import gzip
import io
from collections import Counter, deque
from collections.abc import Iterable
from decimal import Decimal
from typing import IO

import numpy as np

try:  # a well-kept, faster drop-in for json.loads when present
    import orjson as _json

    _loads = _json.loads
    _JSON_ERRORS: tuple[type[BaseException], ...] = (_json.JSONDecodeError, ValueError)
except ImportError:  # pragma: no cover - orjson is optional
    import json as _json

    _loads = _json.loads
    _JSON_ERRORS = (ValueError,)

__all__ = ["RawEvents", "parse", "open_capture", "KIND_NAMES", "DEPTH", "CLEAR", "SNAPSHOT", "CROSS_FIX",
           "TRADE", "BID", "ASK", "BUY", "SELL"]

# event kinds (int8); the format is documented in docs/REPLAY.md
DEPTH = 1  # a diff: level (side, px) now holds qty lots
CLEAR = 2  # the book is cleared (a REST snapshot follows)
SNAPSHOT = 3  # a level of a REST snapshot: (side, px) holds qty lots
CROSS_FIX = 4  # a stale level removed because a newer update on the other side crossed it
TRADE = 5  # a trade: side is the aggressor (BUY/SELL), px its price, qty its size
KIND_NAMES = {DEPTH: "depth", CLEAR: "clear", SNAPSHOT: "snapshot", CROSS_FIX: "cross_fix", TRADE: "trade"}
BID, ASK = 0, 1  # resting side (mmgym.sim.book.BID/ASK)
BUY, SELL = 0, 1  # aggressor side (mmgym.sim.book.BUY/SELL)

#: Messages received before a snapshot that are kept to be re-applied after it.
_BUFFER = 2000
#: Bad lines whose numbers are kept for the report.
_KEEP_EXAMPLES = 5


class RawEvents:
    """Events as parsed, before the book pass (prices and sizes still decimal strings).

    Attributes:
        t_ns, exch_ns, kind, side: lists of ints, one per event. px, qty: lists of str.
        tk_t_ns, tk_ev, tk_bid, tk_ask: bookTicker series (local ns, index of the next event, price
            strings).
        report: Counter of everything counted (``docs/REPLAY.md``, "Bad data").
        examples: {problem: [line numbers]} (the first few of each).
        symbol, stream: the instrument and the depth stream's name as recorded.
    """

    def __init__(self) -> None:
        self.t_ns: list[int] = []
        self.exch_ns: list[int] = []
        self.kind: list[int] = []
        self.side: list[int] = []
        self.px: list[str] = []
        self.qty: list[str] = []
        self.tk_t_ns: list[int] = []
        self.tk_ev: list[int] = []
        self.tk_bid: list[str] = []
        self.tk_ask: list[str] = []
        self.report: Counter = Counter()
        self.examples: dict[str, list[int]] = {}
        self.symbol = ""
        self.stream = ""

    def problem(self, name: str, lineno: int) -> None:
        """Count a problem ``name`` on line ``lineno`` (1-based) and keep the first few line numbers."""
        self.report[name] += 1
        ex = self.examples.setdefault(name, [])
        if len(ex) < _KEEP_EXAMPLES:
            ex.append(lineno)

    def add(self, t: int, e: int, kind: int, side: int, px: str, qty: str) -> None:
        self.t_ns.append(t)
        self.exch_ns.append(e)
        self.kind.append(kind)
        self.side.append(side)
        self.px.append(px)
        self.qty.append(qty)


def open_capture(path: str) -> IO[bytes]:
    """The capture's lines as bytes (gzip by magic number, else plain text)."""
    f = open(path, "rb")
    head = f.read(2)
    f.seek(0)
    if head == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=f)
    return f


def _levels(ev: RawEvents, t: int, e: int, kind: int, side: int, levels) -> None:
    for lv in levels:
        ev.add(t, e, kind, side, lv[0], lv[1])


def _is_zero(q: str) -> bool:
    return float(q) == 0.0


def _diff(ev: RawEvents, t: int, e: int, bids, asks) -> None:
    """One diff message: its removals (quantity 0) first, then its other levels. Each level appears
    once per message with an absolute quantity, so the order inside a message is free; this one
    never shows a transient cross (a bid set at a price whose ask the same message removes)."""
    for side, levels in ((BID, bids), (ASK, asks)):
        for lv in levels:
            if _is_zero(lv[1]):
                ev.add(t, e, DEPTH, side, lv[0], lv[1])
    for side, levels in ((BID, bids), (ASK, asks)):
        for lv in levels:
            if not _is_zero(lv[1]):
                ev.add(t, e, DEPTH, side, lv[0], lv[1])


def parse(lines: Iterable[bytes]) -> RawEvents:
    """Parse capture lines (module docstring) into :class:`RawEvents`.

    Bad data is counted in ``report`` (never dropped silently): ``bad_lines`` (no timestamp,
    truncated or invalid JSON, a message missing a field it must have), ``unknown_messages`` (and
    ``unknown:<name>`` per kind), ``ts_backwards`` (a local time earlier than the line before; the
    event keeps file order and takes the previous time, ``ts_backwards_max_ns`` is the largest
    step back), ``seq_gaps`` (a diff that does not follow the previous one), ``stale_diffs`` (diffs
    at or before a snapshot's id, skipped), ``reapplied_diffs`` (diffs re-applied after a snapshot),
    ``trades_not_market``.
    """
    ev = RawEvents()
    rep = ev.report
    last_t = None
    last_u = None
    snap_id = None  # lastUpdateId of the last snapshot; diffs with u <= it are stale
    futures = None
    recent: deque = deque(maxlen=_BUFFER)  # (u, t, e, msg) of diffs before a snapshot
    for lineno, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line:
            rep["blank_lines"] += 1
            continue
        rep["lines"] += 1
        head, _, payload = line.partition(b" ")
        try:
            t = int(head)
        except ValueError:
            ev.problem("bad_lines", lineno)
            continue
        try:
            msg = _loads(payload)
        except _JSON_ERRORS:
            ev.problem("bad_lines", lineno)
            continue
        if not isinstance(msg, dict):
            ev.problem("bad_lines", lineno)
            continue
        if last_t is not None and t < last_t:
            ev.problem("ts_backwards", lineno)
            rep["ts_backwards_max_ns"] = max(rep["ts_backwards_max_ns"], last_t - t)
            t = last_t
        last_t = t
        try:
            if "lastUpdateId" in msg:
                sid = int(msg["lastUpdateId"])
                bids, asks = msg["bids"], msg["asks"]
                e = int(msg.get("E", 0)) * 1_000_000
                rep["snapshots"] += 1
                if rep["snapshots"] == 1:
                    rep["events_before_snapshot"] = len(ev.kind)
                ev.add(t, e, CLEAR, 0, "0", "0")
                _levels(ev, t, e, SNAPSHOT, BID, bids)
                _levels(ev, t, e, SNAPSHOT, ASK, asks)
                snap_id = sid
                last_u = sid
                for u, _t, e2, d in recent:  # received earlier, but newer than the snapshot
                    if u > sid:
                        rep["reapplied_diffs"] += 1
                        _diff(ev, t, e2, d["b"], d["a"])
                        last_u = u
                recent.clear()
                continue
            data = msg["data"] if "stream" in msg else msg
            stream = msg.get("stream", "")
            etype = data.get("e")
            if etype is None and stream.endswith("@bookTicker"):
                etype = "bookTicker"
            if etype == "depthUpdate":
                U, u = int(data["U"]), int(data["u"])
                bids, asks = data["b"], data["a"]
                e = int(data["E"]) * 1_000_000
                if futures is None:
                    futures = "pu" in data
                    ev.stream = stream
                    ev.symbol = data.get("s", "")
                rep["depth_messages"] += 1
                if snap_id is not None and u <= snap_id:
                    rep["stale_diffs"] += 1
                    continue
                if last_u is not None:
                    follows = int(data["pu"]) == last_u if futures else U == last_u + 1
                    if snap_id is not None and last_u == snap_id:  # the first diff after a snapshot
                        follows = U <= snap_id + 1 <= u if not futures else U <= snap_id <= u
                    if not follows:
                        ev.problem("seq_gaps", lineno)
                last_u = u
                recent.append((u, t, e, data))
                _diff(ev, t, e, bids, asks)
            elif etype == "trade":
                x = data.get("X", "MARKET")
                rep["trade_messages"] += 1
                if x != "MARKET":
                    ev.problem("trades_not_market", lineno)
                    continue
                e = int(data["T"]) * 1_000_000
                ev.add(t, e, TRADE, SELL if data["m"] else BUY, data["p"], data["q"])
            elif etype == "bookTicker":
                b, a = data["b"], data["a"]
                rep["ticker_messages"] += 1
                ev.tk_t_ns.append(t)
                ev.tk_ev.append(len(ev.kind))
                ev.tk_bid.append(b)
                ev.tk_ask.append(a)
            else:
                name = etype if isinstance(etype, str) else (stream.split("@", 1)[-1] or "?")
                ev.problem("unknown_messages", lineno)
                rep[f"unknown:{name}"] += 1
        except (KeyError, TypeError, ValueError, IndexError):
            ev.problem("bad_lines", lineno)
    if "events_before_snapshot" not in rep:
        rep["events_before_snapshot"] = len(ev.kind)
    rep["futures_format"] = int(bool(futures))
    return ev


def decimals(strings: Iterable[str]) -> int:
    """The most decimal places any of ``strings`` uses once trailing zeros are stripped."""
    d = 0
    for s in set(strings):
        if "." in s:
            frac = s.split(".", 1)[1].rstrip("0")
            d = max(d, len(frac))
    return d


def to_units(strings: list[str], unit: float) -> np.ndarray:
    """Decimal strings as int64 multiples of ``unit`` (exact: through :class:`decimal.Decimal` for
    each distinct string; a value off the grid is rounded and the caller counts it)."""
    u = Decimal(repr(unit))
    table = {s: int((Decimal(s) / u).to_integral_value()) for s in set(strings)}
    return np.fromiter((table[s] for s in strings), dtype=np.int64, count=len(strings))


def off_grid(strings: list[str], unit: float) -> int:
    """How many of ``strings`` are not whole multiples of ``unit``."""
    u = Decimal(repr(unit))
    bad = {s for s in set(strings) if (Decimal(s) / u) % 1 != 0}
    return sum(1 for s in strings if s in bad)


def read_lines(path: str) -> list[bytes]:
    """All lines of a capture (gzip or plain); a truncated gzip stream keeps the lines read and
    adds a final marker line that :func:`parse` counts as a bad line."""
    out: list[bytes] = []
    with open_capture(path) as f:
        try:
            for line in io.BufferedReader(f) if isinstance(f, gzip.GzipFile) else f:
                out.append(line)
        except (EOFError, gzip.BadGzipFile, OSError):
            out.append(b"<truncated gzip stream>")
    return out

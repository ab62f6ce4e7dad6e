"""A slow, obviously-correct replay of a recording with fixed raw depths (the rules of
mmgym/ReplayMarketMaking-v0's manual, pessimistic queue model, no latency), written without the
engine: a dict book per side over every level, one order record per side."""

from __future__ import annotations

import math

import numpy as np

DEPTH, CLEAR, SNAPSHOT, CROSS_FIX, TRADE = 1, 2, 3, 4, 5


class RefReplay:
    def __init__(self, rec, first_event: int, t_start_ns: int, quote_lots: int, max_inv: int):
        self.rec = rec
        self.book = ({}, {})
        self.last_best = [0, 0]
        for j in range(first_event):
            self._apply_level(j)
        self.c = first_event
        self.now = t_start_ns
        self.q = 0
        self.cash = 0  # tick-lots
        self.orders = [None, None]  # per side: [px, qty, ahead]
        self.lots = quote_lots
        self.Q = max_inv

    def _apply_level(self, j):
        r = self.rec
        k = int(r.kind[j])
        if k == CLEAR:
            self.book = ({}, {})
        elif k != TRADE:
            s, p, q = int(r.side[j]), int(r.px[j]), int(r.qty[j])
            if q > 0:
                self.book[s][p] = q
            else:
                self.book[s].pop(p, None)
        if self.book[0]:
            self.last_best[0] = max(self.book[0])
        if self.book[1]:
            self.last_best[1] = min(self.book[1])

    def level(self, side, px):
        return self.book[side].get(px, 0)

    def mid_ticks2(self):
        return self.last_best[0] + self.last_best[1]

    def _fill(self, side, f):
        px = self.orders[side][0]
        self.orders[side][1] -= f
        if side == 0:
            self.q += f
            self.cash -= f * px
        else:
            self.q -= f
            self.cash += f * px
        if self.orders[side][1] == 0:
            self.orders[side] = None
        return f

    def step(self, d_bid, d_ask, tick, dt_ns):
        """One step; returns (bid fills, ask fills)."""
        mid = 0.5 * self.mid_ticks2() * tick
        bid = math.floor((mid - d_bid) / tick + 1e-9)
        ask = math.ceil((mid + d_ask) / tick - 1e-9)
        if ask <= bid:
            ask = bid + 1
        for side, px in ((0, bid), (1, ask)):
            if self.orders[side] is not None and self.orders[side][0] != px:
                self.orders[side] = None
        for side, px in ((0, bid), (1, ask)):
            z = min(self.lots, self.Q - self.q) if side == 0 else min(self.lots, self.Q + self.q)
            o = self.orders[side]
            if o is not None:
                if z <= 0:
                    self.orders[side] = None
                elif z < o[1]:
                    o[1] = z
            elif z > 0:
                assert (px < self.last_best[1]) if side == 0 else (px > self.last_best[0]), "marketable"
                self.orders[side] = [px, z, self.level(side, px)]
        fills = [0, 0]
        t_end = self.now + dt_ns
        r = self.rec
        while self.c < len(r) and r.t_ns[self.c] < t_end:
            j = self.c
            k = int(r.kind[j])
            if k == TRADE:
                rs = 1 - int(r.side[j])
                o = self.orders[rs]
                if o is not None:
                    p, qty = int(r.px[j]), int(r.qty[j])
                    if (rs == 1 and o[0] < p) or (rs == 0 and o[0] > p):
                        fills[rs] += self._fill(rs, o[1])
                    elif o[0] == p:
                        f = min(o[1], max(0, qty - o[2]))
                        o[2] = max(0, o[2] - qty)
                        if f > 0:
                            fills[rs] += self._fill(rs, f)
            else:
                if k == CLEAR:
                    for o in self.orders:
                        if o is not None:
                            o[2] = 0
                else:
                    s, p = int(r.side[j]), int(r.px[j])
                    o = self.orders[s]
                    if o is not None and o[0] == p:
                        o[2] = min(o[2], int(r.qty[j]))
                self._apply_level(j)
                for s in (0, 1):
                    o = self.orders[s]
                    if o is not None and ((s == 1 and o[0] <= self.last_best[0]) or (s == 0 and o[0] >= self.last_best[1])):
                        fills[s] += self._fill(s, o[1])
            self.c += 1
        self.now = t_end
        return fills

    def window_equals(self, bg, lower_tick):
        """The engine's window (2, L) equals this book's levels there."""
        L = bg.shape[1]
        for s in (0, 1):
            ref = np.array([self.book[s].get(lower_tick + i, 0) for i in range(L)])
            if not np.array_equal(ref, bg[s]):
                return False
        return True


def market_orders(rec, first_event: int, stop_event: int) -> list[dict]:
    """The recorded market orders of events ``first_event:stop_event``, grouped the slow way: a
    run of trades consecutive in the recording (no other event between) with the same exchange
    time and aggressor side, counted from ``first_event`` (an order begun before it starts
    there; one cut by ``stop_event`` is the part before it). Each: signed lots (+ buy, - sell),
    the lots resting at its first trade's tick before it (a dict book of every level, rebuilt
    from the recording's start), its first and last tick."""
    book = ({}, {})

    def apply(j):
        nonlocal book
        k = int(rec.kind[j])
        if k == CLEAR:
            book = ({}, {})
        elif k != TRADE:
            s, p, q = int(rec.side[j]), int(rec.px[j]), int(rec.qty[j])
            if q > 0:
                book[s][p] = q
            else:
                book[s].pop(p, None)

    for j in range(first_event):
        apply(j)
    orders: list[dict] = []
    for j in range(first_event, stop_event):
        if int(rec.kind[j]) != TRADE:
            apply(j)
            continue
        side, px, q, e = int(rec.side[j]), int(rec.px[j]), int(rec.qty[j]), int(rec.exch_ns[j])
        same = (j > first_event and int(rec.kind[j - 1]) == TRADE and int(rec.exch_ns[j - 1]) == e
                and int(rec.side[j - 1]) == side)
        if not same:
            orders.append({"signed": 0, "depth": book[1 - side].get(px, 0), "first": px, "last": px})
        o = orders[-1]
        o["signed"] += q if side == 0 else -q
        o["last"] = px
    return orders


def toxicity_record(orders: list[dict], halflife: float) -> tuple[float, float, float, float]:
    """(signed EWMA, abs EWMA, last relative size, last levels walked) after ``orders``, from an
    empty record (mmgym.sim.book's toxicity record: weight 1 - 2^(-1/halflife) per order; a
    depth of 0 keeps the last relative size)."""
    a = 1.0 - 2.0 ** (-1.0 / halflife)
    s = m = r = lv = 0.0
    for o in orders:
        x = o["signed"]
        s += a * (x - s)
        m += a * (abs(x) - m)
        if o["depth"] > 0:
            r = abs(x) / o["depth"]
        lv = abs(o["last"] - o["first"]) + 1.0
    return s, m, r, lv

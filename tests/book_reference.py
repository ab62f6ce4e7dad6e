"""Slow, obviously-correct plain-Python limit order book (the reference for mmgym.sim.book).

Every level is an explicit FIFO list of chunks ``[owner, lots]`` (owner ``"bg"`` for background
volume, or our order's slot number), so queue position is not a number to maintain but the
position in a list. Matching pops from the front; the queue models choose which background
chunks a cancel removes. It mirrors the semantics documented in ``mmgym/sim/book.py``:
window ``[lower, lower + L)``, stale bests on empty sides, self-trade prevention, counters.
"""

from __future__ import annotations

from mmgym.sim import book as K

BID, ASK, BUY, SELL = K.BID, K.ASK, K.BUY, K.SELL


class RefBook:
    """One book; ``levels[side][tick]`` is the FIFO list of ``[owner, lots]`` chunks."""

    def __init__(self, n_levels: int, n_slots: int, lower: int):
        self.L = n_levels
        self.M = n_slots
        self.lower = lower
        self.levels = {BID: {}, ASK: {}}
        self.orders = {}  # slot -> dict(side, px, seq)
        self.seq = 0
        self.cash = 0
        self.inv = 0
        self.c = [0] * K.N_CNT
        self.best = {BID: lower, ASK: lower}  # stale reference values

    # -------------------------------------------------------------------- queries ---
    def q(self, side, tick):
        return self.levels[side].setdefault(tick, [])

    def total(self, side, tick):
        return sum(x for _, x in self.levels[side].get(tick, []))

    def bg_lots(self, side, tick):
        return sum(x for o, x in self.levels[side].get(tick, []) if o == "bg")

    def own_lots(self, side, tick):
        return sum(x for o, x in self.levels[side].get(tick, []) if o != "bg")

    def nonempty(self, side):
        return [t for t, ch in self.levels[side].items() if sum(x for _, x in ch) > 0]

    def best_of(self, side):
        ticks = self.nonempty(side)
        if not ticks:
            return None
        return max(ticks) if side == BID else min(ticks)

    def _refresh(self):
        for side in (BID, ASK):
            b = self.best_of(side)
            if b is not None:
                self.best[side] = b
            for t in [t for t, ch in self.levels[side].items() if not ch]:
                del self.levels[side][t]

    def ahead(self, slot):
        o = self.orders[slot]
        n = 0
        for owner, x in self.levels[o["side"]][o["px"]]:
            if owner == slot:
                return n
            if owner == "bg":
                n += x
        raise AssertionError("order not in its level")

    def in_window(self, tick):
        return self.lower <= tick < self.lower + self.L

    # --------------------------------------------------------------------- matching ---
    def take(self, taker, qty, limit, own):
        rest = ASK if taker == BUY else BID
        v, notional = qty, 0
        ticks = sorted(self.nonempty(rest), reverse=(rest == BID))
        for tick in ticks:
            if v == 0 or (taker == BUY and tick > limit) or (taker == SELL and tick < limit):
                break
            queue = self.levels[rest][tick]
            if own:  # self-trade prevention: cancel our resting orders here
                for owner, x in [ch for ch in queue if ch[0] != "bg"]:
                    self.c[K.C_OWN_CANCELLED] += x
                    del self.orders[owner]
                queue[:] = [ch for ch in queue if ch[0] == "bg"]
            got = 0
            while v > 0 and queue:
                owner, x = queue[0]
                f = min(v, x)
                v -= f
                got += f
                if owner == "bg":
                    self.c[K.C_BG_TRADED] += f
                else:
                    self.c[K.C_OWN_FILLED_BID if rest == BID else K.C_OWN_FILLED_ASK] += f
                    self.inv += f if rest == BID else -f
                    self.cash += -f * tick if rest == BID else f * tick
                if f == x:
                    queue.pop(0)
                    if owner != "bg":
                        del self.orders[owner]
                else:
                    queue[0][1] = x - f
            if own and got:
                self.inv += got if taker == BUY else -got
                self.cash += -got * tick if taker == BUY else got * tick
                self.c[K.C_TAKER_BUY if taker == BUY else K.C_TAKER_SELL] += got
            self.c[K.C_BUY_VOL if taker == BUY else K.C_SELL_VOL] += got
            notional += got * tick
        self._refresh()
        return qty - v, notional

    # ------------------------------------------------------------------ operations ---
    def bg_limit(self, side, tick, qty):
        v = qty
        opp = self.best_of(ASK if side == BID else BID)
        if opp is not None and ((side == BID and tick >= opp) or (side == ASK and tick <= opp)):
            f, _ = self.take(BUY if side == BID else SELL, v, tick, False)
            v -= f
        if v <= 0:
            return
        if not self.in_window(tick):
            self.c[K.C_BG_OUTSIDE] += v
            return
        self.q(side, tick).append(["bg", v])
        self.c[K.C_BG_ADDED] += v
        self._refresh()

    def _remove_bg(self, queue, seg_index, lots):
        """Remove ``lots`` background lots from segment ``seg_index`` (from its back)."""
        segs, cur = [], []
        for ch in queue:
            if ch[0] == "bg":
                cur.append(ch)
            else:
                segs.append(cur)
                cur = []
        segs.append(cur)
        removed = 0
        for ch in reversed(segs[seg_index]):
            r = min(lots - removed, ch[1])
            ch[1] -= r
            removed += r
            if removed == lots:
                break
        return removed

    def bg_cancel(self, side, tick, qty, u, model, power):
        if not self.in_window(tick):
            return 0
        queue = self.levels[side].get(tick, [])
        B = sum(x for o, x in queue if o == "bg")
        x = min(qty, B)
        if x <= 0:
            return 0
        # background segments separated by our chunks
        seg_sizes, cur = [], 0
        for o, n in queue:
            if o == "bg":
                cur += n
            else:
                seg_sizes.append(cur)
                cur = 0
        seg_sizes.append(cur)
        m = len(seg_sizes) - 1
        left = x
        if model == K.QUEUE_POWER and m > 0:
            w = [s**power if s > 0 else 0.0 for s in seg_sizes]
            target, acc, chosen = u * sum(w), 0.0, m
            for j, wj in enumerate(w):
                if wj > 0:
                    acc += wj
                    if target < acc:
                        chosen = j
                        break
            left -= self._remove_bg(queue, chosen, min(left, seg_sizes[chosen]))
        for j in range(m, -1, -1):  # the rest from the back
            if left == 0:
                break
            left -= self._remove_bg(queue, j, left)
        queue[:] = [ch for ch in queue if ch[1] > 0]
        self.c[K.C_BG_CANCELLED] += x
        self._refresh()
        return x

    def own_limit(self, side, tick, qty, t=0.0):
        v, f = qty, 0
        opp = self.best_of(ASK if side == BID else BID)
        if opp is not None and ((side == BID and tick >= opp) or (side == ASK and tick <= opp)):
            f, _ = self.take(BUY if side == BID else SELL, v, tick, True)
        v -= f
        if v <= 0:
            return -1
        if not self.in_window(tick):
            return -2
        free = [s for s in range(self.M) if s not in self.orders]
        if not free:
            return -2
        slot = free[0]
        self.orders[slot] = {"side": side, "px": tick, "seq": self.seq}
        self.seq += 1
        self.q(side, tick).append([slot, v])
        self.c[K.C_OWN_ADDED] += v
        self._refresh()
        return slot

    def own_cancel(self, slot):
        if slot not in self.orders:
            return 0
        o = self.orders.pop(slot)
        queue = self.levels[o["side"]][o["px"]]
        r = sum(x for ow, x in queue if ow == slot)
        queue[:] = [ch for ch in queue if ch[0] != slot]
        self.c[K.C_OWN_CANCELLED] += r
        self._refresh()
        return r

    def recentre(self, new_lower):
        self.lower = new_lower
        for side in (BID, ASK):
            for tick in list(self.levels[side]):
                if not self.in_window(tick):
                    for owner, x in self.levels[side].pop(tick):
                        if owner == "bg":
                            self.c[K.C_BG_DROPPED] += x
                        else:
                            self.c[K.C_OWN_DROPPED] += x
                            del self.orders[owner]
        self._refresh()

    def apply(self, op, model, power):
        """Apply one ``(code, side, tick_or_slot, qty, u)`` row; returns what the kernel writes to out."""
        code, side, tick, qty, u = int(op[0]), int(op[1]), int(op[2]), int(op[3]), float(op[4])
        if code == K.OP_BG_LIMIT:
            self.bg_limit(side, tick, qty)
            return 0
        if code == K.OP_BG_CANCEL:
            return self.bg_cancel(side, tick, qty, u, model, power)
        if code == K.OP_MARKET:
            f, _ = self.take(side, qty, 10**18 if side == BUY else -(10**18), False)
            self.c[K.C_MO_UNFILLED] += qty - f
            return f
        if code == K.OP_OWN_LIMIT:
            return self.own_limit(side, tick, qty)
        if code == K.OP_OWN_CANCEL:
            return self.own_cancel(tick)
        if code == K.OP_OWN_MARKET:
            f, _ = self.take(side, qty, 10**18 if side == BUY else -(10**18), True)
            return f
        if code == K.OP_RECENTRE:
            self.recentre(tick)
            return 0
        return 0

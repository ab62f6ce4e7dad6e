"""Slow, obviously-correct plain-Python limit order book (the reference for mmgym.sim.book).

Every level is an explicit FIFO list of chunks ``[owner, lots]`` (owner ``"bg"`` for background
volume, or our order's slot number), so queue position is not a number to maintain but the
position in a list. Matching pops from the front; the queue models choose which background
chunks a cancel removes. It mirrors the semantics documented in ``mmgym/sim/book.py``:
window ``[lower, lower + L)``, stale bests on empty sides, self-trade prevention, counters.
"""

from __future__ import annotations

import math

import numpy as np

from mmgym.sim import book as K
from mmgym.sim import rng

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

    def own_reduce(self, slot, new_qty):
        """Our order keeps its place in the queue with ``new_qty`` lots (<= 0: cancelled; a size
        at or above the current one: nothing happens)."""
        if slot not in self.orders:
            return
        o = self.orders[slot]
        queue = self.levels[o["side"]][o["px"]]
        chunk = next(ch for ch in queue if ch[0] == slot)
        if new_qty >= chunk[1]:
            return
        if new_qty <= 0:
            self.own_cancel(slot)
            return
        self.c[K.C_OWN_CANCELLED] += chunk[1] - new_qty
        chunk[1] = new_qty

    def own_lots_of(self, slot):
        o = self.orders[slot]
        return sum(x for ow, x in self.levels[o["side"]][o["px"]] if ow == slot)

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


# ------------------------------------------------------------------------------- flow ---
def _geometric(u, logq, max_size):
    """Geometric size on {1, 2, ...}: 1 + floor(ln(1 - u) / ln q), capped (1 when ln q = 0)."""
    if logq == 0.0:
        return 1
    return int(min(1.0 + math.floor(math.log(1.0 - u) / logq), float(max_size)))


def _u64(x) -> np.uint64:
    """A 64-bit word as numpy uint64 (numba hands uint64 results back to Python as signed ints)."""
    return np.uint64(int(x) % 2**64)


class RefFlow:
    """The background flow of ``mmgym.sim.book.run_flow`` over a :class:`RefBook`, one event per
    :meth:`event` call, written out rule by rule (module docstring of mmgym/sim/book.py):
    Gillespie's direct method over the CST rates, the informed market orders and their latent
    value, and a log of every market order for the toxicity features.

    The random stream is the env's xoroshiro128+ state ``(s0, s1)``; uniforms and normals come
    from the same generator functions the kernel uses (:mod:`mmgym.sim.rng`), in the documented
    order: four uniforms per event (time, type+level, size, queue), then one ziggurat normal
    when informed flow is on. ``log`` gets one dict per market order: ``t, taker, informed,
    size, filled, best`` (the tick it hit first, None if that side was empty), ``depth`` (lots at
    that tick before the trade) and ``deepest`` (the deepest tick it traded at, walked here
    independently of the book's own matching).
    """

    def __init__(self, book: RefBook, s0, s1, t: float, value: float, lam, theta, fp):
        self.book = book
        self.s0, self.s1 = np.uint64(s0), np.uint64(s1)
        self.t = float(t)
        self.value = float(value)
        self.lam = [float(x) for x in lam]
        self.theta = [float(x) for x in theta]
        self.fp = fp
        self.log: list[dict] = []
        self.events = 0

    def _uniform(self) -> float:
        bits, s0, s1 = rng.xoroshiro_next(self.s0, self.s1)
        self.s0, self.s1 = _u64(s0), _u64(s1)
        return float(rng.to_unit(_u64(bits)))

    def _normal(self) -> float:
        z, s0, s1 = rng.zig_normal(self.s0, self.s1)
        self.s0, self.s1 = _u64(s0), _u64(s1)
        return float(z)

    def _advance_value(self, dt: float, z: float) -> None:
        if 0.0 < dt < math.inf:
            self.value += self.fp.informed_sigma * math.sqrt(dt) * z

    def _cancel_weight(self, side: int, ref_tick: int) -> float:
        """sum over d = 1..K (inside the window) of theta(d) x lots at distance d from ref_tick."""
        w = 0.0
        for d in range(1, len(self.lam) + 1):
            tick = ref_tick - d if side == BID else ref_tick + d
            if self.book.in_window(tick):
                w += self.theta[d - 1] * self.book.bg_lots(side, tick)
        return w

    def event(self, t_stop: float = math.inf) -> bool:
        """Draw the next event; if it falls after ``t_stop`` it is discarded, the clock (and the
        latent value) move to ``t_stop`` and False is returned."""
        B, fp, lam = self.book, self.fp, self.lam
        lam_sum = 0.0
        for x in lam:
            lam_sum += x
        mu_b, mu_s = float(fp.mu_buy), float(fp.mu_sell)
        f_inf = float(fp.informed_frac)
        informed_on = f_inf > 0.0
        r_limit = 2.0 * lam_sum
        r_market = r_limit + mu_b + mu_s
        r_ubuy = r_limit + mu_b * (1.0 - f_inf)  # uninformed buys, then uninformed sells
        r_umarket = r_ubuy + mu_s * (1.0 - f_inf)
        bb, ba = B.best[BID], B.best[ASK]
        wb = self._cancel_weight(BID, ba)
        wa = self._cancel_weight(ASK, bb)
        rate = r_market + wb + wa
        u_t, u_e, u_s, u_q = (self._uniform() for _ in range(4))
        z = self._normal() if informed_on else 0.0
        t_next = self.t - math.log(1.0 - u_t) / rate if rate > 0.0 else math.inf
        if rate <= 0.0 or t_next > t_stop:
            if informed_on:
                self._advance_value(t_stop - self.t, z)
            self.t = t_stop
            return False
        if informed_on:
            self._advance_value(t_next - self.t, z)
        self.t = t_next
        x = u_e * rate
        if x < r_limit:  # a limit order at distance d from the opposite best
            side = BID if x < lam_sum else ASK
            y = x if side == BID else x - lam_sum
            d, acc = 1, lam[0]
            while y >= acc and d < len(lam):
                acc += lam[d]
                d += 1
            size = _geometric(u_s, fp.logq_limit, fp.max_size)
            B.bg_limit(side, B.best[ASK] - d if side == BID else B.best[BID] + d, size)
        elif x < r_market:  # a market order
            informed = x >= r_umarket
            if not informed:
                taker = BUY if x < r_ubuy else SELL
                size = _geometric(u_s, fp.logq_market, fp.max_size)
            else:
                mid = 0.5 * (bb + ba)
                taker = (BUY if self.value > mid else SELL) if self.value != mid else (
                    BUY if u_q < 0.5 else SELL)
                size = _geometric(u_s, fp.logq_informed, fp.max_size)
            rest = ASK if taker == BUY else BID
            best = B.best_of(rest)
            depth = B.total(rest, best) if best is not None else 0
            deepest, left = None, size
            for tick in sorted(B.nonempty(rest), reverse=(rest == BID)):
                if left <= 0:
                    break
                deepest = tick
                left -= B.total(rest, tick)
            filled, _ = B.take(taker, size, 10**18 if taker == BUY else -(10**18), False)
            B.c[K.C_MO_UNFILLED] += size - filled
            self.log.append(dict(t=self.t, taker=taker, informed=informed, size=size, filled=filled,
                                 best=best, depth=depth, deepest=deepest))
        else:  # a cancel at the level chosen in proportion to theta(d) x_d
            y = x - 2.0 * lam_sum - mu_b - mu_s
            side = BID if y < wb else ASK
            if side == ASK:
                y -= wb
            size = _geometric(u_s, fp.logq_limit, fp.max_size)
            ref_tick = ba if side == BID else bb
            acc, chosen = 0.0, None
            for d in range(1, len(lam) + 1):
                tick = ref_tick - d if side == BID else ref_tick + d
                if B.in_window(tick) and B.bg_lots(side, tick) > 0:
                    acc += self.theta[d - 1] * B.bg_lots(side, tick)
                    chosen = tick
                    if y < acc:
                        break
            if chosen is not None:
                B.bg_cancel(side, chosen, size, u_q, int(fp.queue_model), float(fp.queue_power))
        self.events += 1
        B.c[K.C_EVENTS] += 1
        self.maybe_recentre()
        return True

    def maybe_recentre(self) -> None:
        """Re-centre the window on the mid when a best comes within the margin of an edge."""
        B = self.book
        lo, L, m = B.lower, B.L, int(self.fp.margin)
        bi, ai = B.best[BID] - lo, B.best[ASK] - lo
        if bi < m or ai < m or bi > L - 1 - m or ai > L - 1 - m:
            B.recentre((B.best[BID] + B.best[ASK]) // 2 - L // 2)


def ref_from_kernel(b, fs, i: int, lam, theta, fp) -> RefFlow:
    """A :class:`RefFlow` over a copy of kernel book ``i`` (no orders of ours resting) and its
    flow state ``fs``: the ladder, stale bests, counters, cash, inventory, clock, stream, value."""
    assert (b.orders[i, :, K.ORD_QTY] == 0).all(), "ref_from_kernel copies books without our orders"
    L = b.bg.shape[2]
    ref = RefBook(L, b.orders.shape[1], int(b.lower_tick[i]))
    for side in (BID, ASK):
        for idx in np.flatnonzero(b.bg[i, side]):
            ref.q(side, int(b.lower_tick[i] + idx)).append(["bg", int(b.bg[i, side, idx])])
        ref.best[side] = int(b.best[i, side])
    ref.c = [int(x) for x in b.counters[i]]
    ref.cash, ref.inv, ref.seq = int(b.cash_ticks[i]), int(b.inventory[i]), int(b.seq[i])
    return RefFlow(ref, b.rng[i, 0], b.rng[i, 1], b.time[i], fs[i, K.FS_VALUE], lam, theta, fp)


def assert_same(b, fs, i: int, flow: RefFlow) -> None:
    """Kernel book ``i`` equals the reference: ladder, bests, our orders and their queue positions,
    cash, inventory, counters, stream, clock, latent value."""
    ref = flow.book
    assert b.lower_tick[i] == ref.lower
    for side in (BID, ASK):
        for idx in range(ref.L):
            tick = ref.lower + idx
            assert b.bg[i, side, idx] == ref.bg_lots(side, tick), (side, tick)
            assert b.own[i, side, idx] == ref.own_lots(side, tick), (side, tick)
        assert b.best[i, side] == ref.best[side]
    live = {j for j in range(ref.M) if b.orders[i, j, K.ORD_QTY] > 0}
    assert live == set(ref.orders)
    for j in live:
        assert b.orders[i, j, K.ORD_AHEAD] == ref.ahead(j)
        assert b.orders[i, j, K.ORD_QTY] == ref.own_lots_of(j)
        assert b.orders[i, j, K.ORD_PX] == ref.orders[j]["px"]
    assert (b.cash_ticks[i], b.inventory[i]) == (ref.cash, ref.inv)
    assert list(b.counters[i]) == ref.c
    assert (b.rng[i, 0], b.rng[i, 1]) == (flow.s0, flow.s1)
    assert b.time[i] == flow.t
    assert fs[i, K.FS_VALUE] == flow.value

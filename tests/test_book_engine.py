"""mmgym.sim.book beyond the reference model: refused input never changes state and never touches
another env (op-row validation, order-slot bounds, cash/inventory overflow, init_book), the old
layout's names as writable views, flow parameters as a record (cached across processes), Python
access to numba-only kernels, and numba callers of run_flow."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from numba import njit

from mmgym.scenarios.lob import BookConfig
from mmgym.sim import book as K

N, M = 3, 3
CFG = BookConfig(n_levels=64, max_orders=M)
LAM, THETA = CFG.lam(), CFG.theta()
I64_MAX = 2**63 - 1


def _fp(cfg: BookConfig = CFG):
    return K.flow_params(
        mu_buy=cfg.market_rate if cfg.market_rate_buy is None else cfg.market_rate_buy,
        mu_sell=cfg.market_rate if cfg.market_rate_sell is None else cfg.market_rate_sell,
        limit_size_mean=cfg.limit_size_mean, market_size_mean=cfg.market_size_mean,
        max_size=cfg.max_size, queue_model=cfg.queue_model, queue_power=cfg.queue_power,
        margin=cfg.margin, informed_fraction=cfg.informed.fraction,
        informed_sigma_ticks=cfg.informed.sigma, informed_size_mean=cfg.informed.size_mean,
        toxicity_halflife=cfg.toxicity_halflife)


def _book(n: int = N, seed: int = 0) -> K.BookState:
    """n books after some flow, each with a resting bid and ask of ours."""
    b = K.new_book_state(n, CFG.n_levels, CFG.max_orders)
    b.rng[:] = np.random.default_rng(seed).integers(1, 2**63, size=(n, 2), dtype=np.uint64)
    for i in range(n):
        K.init_book(b, i, 10_000, LAM, THETA, 1)
    K.book_flow(b, 5.0, LAM, THETA, _fp())
    ops = np.zeros((n, 2, 5))
    for i in range(n):
        ops[i, 0] = (K.OP_OWN_LIMIT, K.BID, b.best_bid[i] - 1, 2, 0.0)
        ops[i, 1] = (K.OP_OWN_LIMIT, K.ASK, b.best_ask[i] + 1, 1, 0.0)
    K.apply_ops(b, ops)
    assert (b.ord_qty[:, :2] > 0).all()
    return b


def _snapshot(b: K.BookState) -> dict[str, np.ndarray]:
    return {f: getattr(b, f).copy() for f in K.BookState._fields}


def _assert_rows(b: K.BookState, snap: dict[str, np.ndarray], rows, skip=()) -> None:
    for f in K.BookState._fields:
        if f not in skip:
            np.testing.assert_array_equal(getattr(b, f)[rows], snap[f][rows], err_msg=f)


# --------------------------------------------------------------------- op-row validation ---
@pytest.mark.parametrize("slot", [-1, M, M + 7, 0.5])
def test_own_cancel_with_an_out_of_range_slot_is_refused(slot):
    """Slot -1 used to cancel slot M-1 and slot M reached into the next env's records."""
    b = _book()
    snap = _snapshot(b)
    ops = np.full((N, 1, 5), -1.0)  # padding
    ops[0, 0] = (K.OP_OWN_CANCEL, 0, slot, 1, 0.0)
    shown = str(int(slot)) if slot == int(slot) else repr(slot)
    with pytest.raises(ValueError, match=rf"env 0, op 0: tick_or_slot = {shown}: slot must be"):
        K.apply_ops(b, ops)
    _assert_rows(b, snap, slice(None))
    out = np.zeros((N, 1), dtype=np.int64)
    assert K.book_apply_ops(b, ops, K.QUEUE_PESSIMISTIC, 0.0, out) == (0, 0)
    _assert_rows(b, snap, slice(None))


@njit(cache=True, _nrt=False)
def _own_cancel_reduce(b, i, slot):
    return K.own_cancel(b, i, slot), K.own_reduce(b, i, slot, np.int64(0))


@pytest.mark.parametrize("slot", [-1, M, 2 * M])
def test_numba_own_cancel_and_reduce_ignore_out_of_range_slots(slot):
    b = _book()
    snap = _snapshot(b)
    r, _ = _own_cancel_reduce(b, np.int64(0), np.int64(slot))
    assert r == 0
    _assert_rows(b, snap, slice(None))


BAD_ROWS = [  # (row, field named, value shown)
    ((7, 0, 1000, 1, 0.0), "code", "7"),
    ((2.5, 0, 1000, 1, 0.0), "code", "2.5"),
    ((np.nan, 0, 1000, 1, 0.0), "code", "nan"),
    ((K.OP_BG_LIMIT, 2, 1000, 1, 0.0), "side", "2"),
    ((K.OP_MARKET, -1, 0, 1, 0.0), "side", "-1"),
    ((K.OP_OWN_LIMIT, K.BID, 2**61, 8, 0.0), "tick_or_slot", str(2**61)),  # cash would wrap
    ((K.OP_BG_LIMIT, K.ASK, -1e300, 1, 0.0), "tick_or_slot", "-1e+300"),
    ((K.OP_RECENTRE, 0, 2**41, 0, 0.0), "tick_or_slot", str(2**41)),
    ((K.OP_BG_LIMIT, K.BID, 10_000.5, 1, 0.0), "tick_or_slot", "10000.5"),
    ((K.OP_OWN_LIMIT, K.BID, 10_000, 0, 0.0), "qty", "0"),
    ((K.OP_OWN_MARKET, K.BUY, 0, K.MAX_LOTS + 1, 0.0), "qty", str(K.MAX_LOTS + 1)),
    ((K.OP_MARKET, K.SELL, 0, 1.5, 0.0), "qty", "1.5"),
    ((K.OP_MARKET, K.SELL, 0, -3, 0.0), "qty", "-3"),
    ((K.OP_BG_CANCEL, K.BID, 10_000, 1, 1.5), "u", "1.5"),
    ((K.OP_OWN_LIMIT, K.ASK, 10_000, 1, np.inf), "u", "inf"),
    ((K.OP_OWN_CANCEL, 0, 0, np.nan, 0.0), "qty", "nan"),
]


@pytest.mark.parametrize("row,field,value", BAD_ROWS)
def test_bad_op_rows_are_refused_before_anything_is_applied(row, field, value):
    b = _book()
    snap = _snapshot(b)
    ops = np.full((N, 2, 5), -1.0)
    ops[0, 0] = (K.OP_MARKET, K.BUY, 0, 2, 0.0)  # a valid op before the bad one: not applied either
    ops[1, 1] = row
    with pytest.raises(ValueError) as e:
        K.apply_ops(b, ops)
    msg = str(e.value)
    assert "\n" not in msg
    assert msg.startswith(f"book op refused: env 1, op 1: {field} = {value}:"), msg
    _assert_rows(b, snap, slice(None))


def test_padding_rows_and_valid_rows_still_apply():
    b = _book()
    ops = np.full((N, 3, 5), -1.0)
    ops[:, 1] = (K.OP_MARKET, K.BUY, 0, 1, 0.0)
    out = K.apply_ops(b, ops)
    assert (out[:, 1] == 1).all() and (out[:, [0, 2]] == 0).all()


# ------------------------------------------------------------------- cash and inventory ---
def test_cash_overflow_is_refused_and_other_envs_are_untouched():
    b = _book()
    before = _snapshot(b)
    b.cash_ticks[1] = I64_MAX - 1000  # selling 8 lots at ~10_000 ticks would wrap it
    snap = _snapshot(b)
    ops = np.zeros((N, 1, 5))
    ops[:, 0] = (K.OP_OWN_MARKET, K.SELL, 0, 8, 0.0)
    # env 0 alone, for comparison
    alone = K.new_book_state(1, CFG.n_levels, CFG.max_orders)
    for f in K.BookState._fields:
        getattr(alone, f)[0] = before[f][0]
    K.apply_ops(alone, ops[:1])
    with pytest.raises(ValueError, match=r"env 1, op 0: qty = 8 \(code 5\): trade refused: cash"):
        K.apply_ops(b, ops)
    for f in K.BookState._fields:  # env 0 applied as if alone
        np.testing.assert_array_equal(getattr(b, f)[0], getattr(alone, f)[0], err_msg=f)
    _assert_rows(b, snap, 1, skip=("error",))  # env 1: nothing but its error flag
    assert b.error[1] == K.ERR_CASH and b.error[0] == 0 and b.error[2] == 0
    _assert_rows(b, snap, 2)  # env 2: the call ended before it
    # the flag is sticky until init_book: the env takes no op and does not move
    with pytest.raises(ValueError, match=r"env 1, op 0: .*error 1"):
        K.apply_ops(b, np.where(np.arange(N)[:, None, None] == 1, ops, -1.0))
    t1 = b.time[1]
    with pytest.raises(ValueError, match="book_flow: env 1 is in error 1"):
        K.book_flow(b, b.time + 1.0, LAM, THETA, _fp())
    assert b.time[1] == t1
    K.init_book(b, 1, 10_000, LAM, THETA, 1)
    assert b.error[1] == 0 and b.cash_ticks[1] == 0


def test_a_trade_that_fits_near_the_limit_is_exact():
    b = _book()
    b.cash_ticks[0] = I64_MAX - 10**9  # outside the fast test's range: the exact test decides
    bb = int(b.best_bid[0])
    ops = np.full((N, 1, 5), -1.0)
    ops[0, 0] = (K.OP_OWN_MARKET, K.SELL, 0, 1, 0.0)
    out = K.apply_ops(b, ops)
    assert out[0, 0] == 1 and b.error[0] == 0
    assert int(b.cash_ticks[0]) == I64_MAX - 10**9 + bb  # exact, no wrap


def test_a_refused_trade_stops_the_flow_of_that_env_only():
    b = _book()
    ref = _book()  # the same books, run without the bad env in the way
    b.cash_ticks[1] = I64_MAX - 5  # any market order against env 1 could overflow its cash
    snap1 = _snapshot(b)
    with pytest.raises(ValueError, match=r"book_flow: env 1 is in error 1 .*cash_ticks = 9223372036854775802"):
        K.book_flow(b, 30.0, LAM, THETA, _fp())
    assert b.error[1] == K.ERR_CASH and b.cash_ticks[1] == I64_MAX - 5
    assert snap1["time"][1] < b.time[1] < 30.0  # stopped at the refused market order
    np.testing.assert_array_equal(b.inventory[1], snap1["inventory"][1])
    K.book_flow(ref, 30.0, LAM, THETA, _fp())
    for i in (0, 2):
        for f in K.BookState._fields:
            np.testing.assert_array_equal(getattr(b, f)[i], getattr(ref, f)[i], err_msg=f"{f}[{i}]")


@pytest.mark.parametrize("t_stop", [np.nan, np.inf])
def test_book_flow_refuses_a_time_it_would_never_reach(t_stop):
    b = _book()
    snap = _snapshot(b)
    with pytest.raises(ValueError, match="book_flow: t_stop must be finite"):
        K.book_flow(b, t_stop, LAM, THETA, _fp())
    _assert_rows(b, snap, slice(None))


def test_init_book_refuses_a_centre_beyond_max_tick():
    b = _book()
    snap = _snapshot(b)
    with pytest.raises(ValueError, match=r"init_book refused: env 0: centre_tick = 1099511627777: "):
        K.init_book(b, 0, K.MAX_TICK + 1, LAM, THETA, 1)
    assert b.error[0] == K.ERR_INIT
    _assert_rows(b, snap, 0, skip=("error",))
    _assert_rows(b, snap, slice(1, None))
    with pytest.raises(ValueError, match="env 2: s0_spread = 0: must be >= 1"):
        K.init_book(b, 2, 10_000, LAM, THETA, 0)
    K.init_book(b, 0, -K.MAX_TICK, LAM, THETA, 1)
    assert b.error[0] == 0 and b.best_bid[0] == -K.MAX_TICK


# ------------------------------------------------------------------------ state layout ---
VIEWS = {"bid_bg": ("bg", (slice(None), K.BID)), "ask_bg": ("bg", (slice(None), K.ASK)),
         "bid_own": ("own", (slice(None), K.BID)), "ask_own": ("own", (slice(None), K.ASK)),
         "best_bid": ("best", (slice(None), K.BID)), "best_ask": ("best", (slice(None), K.ASK)),
         "ord_side": ("orders", (Ellipsis, K.ORD_SIDE)), "ord_px": ("orders", (Ellipsis, K.ORD_PX)),
         "ord_qty": ("orders", (Ellipsis, K.ORD_QTY)), "ord_ahead": ("orders", (Ellipsis, K.ORD_AHEAD)),
         "ord_seq": ("orders", (Ellipsis, K.ORD_SEQ))}


@pytest.mark.parametrize("name", sorted(VIEWS))
def test_old_names_are_writable_views_of_the_state(name):
    b = K.new_book_state(2, 16, M)
    field, index = VIEWS[name]
    view = getattr(b, name)
    assert view.shape == getattr(b, field)[index].shape and view.base is not None
    view[0] = 5  # e.g. b.best_bid[0] = 5
    getattr(b, name)[1] = 7
    np.testing.assert_array_equal(getattr(b, field)[index][0], 5)
    np.testing.assert_array_equal(getattr(b, field)[index][1], 7)
    assert getattr(b, field).sum() == view.sum()  # nothing else was written


def test_state_has_thirteen_arrays():
    b = K.new_book_state(4, 32, 5)
    assert len(K.BookState._fields) == 13
    assert b.bg.shape == b.own.shape == (4, 2, 32) and b.orders.shape == (4, 5, K.N_ORD)
    assert b.best.shape == (4, 2) and b.error.shape == (4,) and b.rng.dtype == np.uint64
    fs = K.new_flow_state(4)  # the flow's own state lives beside the book (book.py, "flow state")
    assert fs.shape == (4, K.N_FLOW_STATE) and fs.dtype == np.float64


def test_informed_flow_without_a_flow_state_is_refused():
    b = _book(2)
    fp = _fp(BookConfig(informed={"fraction": 0.5, "sigma": 1.0}))
    with pytest.raises(ValueError, match="needs the latent value"):
        K.book_flow(b, np.full(2, 5.0), LAM, THETA, fp)
    with pytest.raises(ValueError, match="flow state of 2 rows"):
        K.book_flow(b, np.full(2, 5.0), LAM, THETA, fp, K.new_flow_state(3))


# --------------------------------------------------------------------- flow parameters ---
@pytest.mark.parametrize("cfg", [BookConfig(), BookConfig(queue_model="power", queue_power=1.5,
                                  limit_size_mean=2.5, market_size_mean=1.0, max_size=40,
                                  market_rate_buy=1.25, recentre_margin=30),
                                 BookConfig(informed={"fraction": 0.3, "sigma": 0.5, "size_mean": 6.0},
                                            toxicity_halflife=4.0),
                                 BookConfig(informed={"fraction": 1.0, "sigma": 2.0})])
def test_flow_params_record_holds_the_config_values(cfg):
    """The record BookConfig.flow_record() builds (what the env passes) holds the flow's values:
    rates, log(1 - 1/mean) of the geometric sizes (0 for unit sizes), the cap, the queue model,
    the informed flow (its size law defaults to the market orders') and the toxicity EWMA's weight
    1 - 2^(-1/half-life)."""
    fp = _fp(cfg)
    assert fp.dtype == K.FLOW_DTYPE and K.FLOW_DTYPE.names == (
        "mu_buy", "mu_sell", "logq_limit", "logq_market", "max_size", "queue_model", "queue_power",
        "margin", "informed_frac", "informed_sigma", "logq_informed", "tox_decay")
    assert cfg.flow_record().tobytes() == fp.tobytes()
    logq = lambda mean: np.log1p(-1.0 / mean) if mean > 1 else 0.0  # noqa: E731
    assert fp.mu_buy == (cfg.market_rate if cfg.market_rate_buy is None else cfg.market_rate_buy)
    assert fp.logq_limit == logq(cfg.limit_size_mean) and fp.logq_market == logq(cfg.market_size_mean)
    assert fp.max_size == cfg.max_size and fp.queue_power == cfg.queue_power
    assert fp.margin == cfg.margin and fp.queue_model == (cfg.queue_model == "power")
    assert fp.informed_frac == cfg.informed.fraction and fp.informed_sigma == cfg.informed.sigma
    size_mean = cfg.market_size_mean if cfg.informed.size_mean is None else cfg.informed.size_mean
    assert fp.logq_informed == pytest.approx(logq(size_mean), rel=1e-15)
    assert fp.tox_decay == pytest.approx(1.0 - 0.5 ** (1.0 / cfg.toxicity_halflife), rel=1e-14)
    # the config's sigma is in price units: flow_record(tick) converts it to ticks
    assert cfg.flow_record(0.01).informed_sigma == pytest.approx(cfg.informed.sigma / 0.01, rel=1e-15)
    with pytest.raises(ValueError, match="FLOW_DTYPE record"):
        K.as_flow_params(np.zeros(8))


@pytest.mark.parametrize("kw,name", [({"mu_buy": -1.0}, "mu_buy"), ({"mu_sell": np.nan}, "mu_sell"),
                                     ({"limit_size_mean": 0.5}, "limit_size_mean"),
                                     ({"max_size": 0}, "max_size"), ({"max_size": 2**21}, "max_size"),
                                     ({"max_size": 2.5}, "max_size"), ({"queue_model": "fifo"}, "queue_model"),
                                     ({"queue_model": 2}, "queue_model"), ({"margin": 0}, "margin"),
                                     ({"queue_power": -1.0}, "queue_power"),
                                     ({"informed_fraction": 1.5}, "informed_fraction"),
                                     ({"informed_fraction": np.nan}, "informed_fraction"),
                                     ({"informed_sigma_ticks": -0.1}, "informed_sigma_ticks"),
                                     ({"informed_size_mean": 0.5}, "informed_size_mean"),
                                     ({"toxicity_halflife": 0.0}, "toxicity_halflife")])
def test_flow_params_refuses_out_of_range_values(kw, name):
    args = dict(mu_buy=1.0, mu_sell=1.0, limit_size_mean=1.0, market_size_mean=2.0, max_size=10,
                queue_model="pessimistic", queue_power=2.0, margin=12)
    args.update(kw)
    with pytest.raises(ValueError, match=f"{name}"):
        K.flow_params(**args)


def test_a_kernel_taking_the_record_is_cached_across_processes(tmp_path):
    (tmp_path / "fp_user.py").write_text(textwrap.dedent("""
        import numpy as np
        from numba import njit
        from mmgym.sim import book as K

        @njit(cache=True)
        def rates(fp):
            return fp.mu_buy + fp.mu_sell + fp.margin

        fp = K.flow_params(1.0, 2.0, 1.0, 3.0, 100, "power", 2.0, 12)
        assert rates(fp) == 15.0
        print(sum(rates.stats.cache_hits.values()), sum(rates.stats.cache_misses.values()))
    """))
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"),
               PYTHONPATH=os.pathsep.join([str(tmp_path)] + sys.path))
    runs = [subprocess.run([sys.executable, "-c", "import fp_user"], env=env, cwd=tmp_path,
                           capture_output=True, text=True, check=True).stdout.split() for _ in range(2)]
    assert runs == [["0", "1"], ["1", "0"]]  # compiled once, then loaded from the cache


# --------------------------------------------------------------------- Python and numba ---
def test_numba_only_kernels_refuse_python_calls_clearly():
    b = _book()
    with pytest.raises(TypeError, match="own_limit is compiled for numba callers only"):
        K.own_limit(b, 0, K.BID, 10_000, 1, 0.0)
    with pytest.raises(TypeError, match="run_flow is compiled for numba callers only"):
        K.run_flow(b, 0, 1.0, 10, LAM, THETA, _fp(), K.new_tape(0), K.new_flow_state(1))
    assert K._is_empty(b, 0, K.BID) is not None  # interpreted from Python


@njit(cache=True, _nrt=False)
def _env_like(b, lam, theta, fp, tape, fs, n_steps):
    """What an env kernel does per step: requote at the touch, a market order of ours every
    third step, maybe_recentre, then background flow for one time unit."""
    ev = np.int64(0)
    for k in range(n_steps):
        for i in range(b.time.shape[0]):
            t0 = b.time[i]
            for j in range(b.orders.shape[1]):
                K.own_cancel(b, i, np.int64(j))
            if k % 3 == 0:
                K.take(b, i, np.int64(k % 2), np.int64(1),
                       K.NO_LIMIT_BUY if k % 2 == 0 else K.NO_LIMIT_SELL, K.OWN_TAKER)
            for side in range(2):
                K.own_limit(b, i, np.int64(side), b.best[i, side], np.int64(2), t0)
            K.maybe_recentre(b, i, fp.margin)
            ev += K.run_flow(b, i, t0 + 1.0, np.int64(2**62), lam, theta, fp, tape, fs)
    return ev


def test_numba_callers_and_python_ops_agree():
    """A jitted env-like caller of run_flow, own_limit, own_cancel, take and maybe_recentre ends
    in the same state as the same steps through apply_ops and book_flow."""
    a, b = _book(2, seed=5), _book(2, seed=5)
    ev = _env_like(a, LAM, THETA, _fp(), K.new_tape(0), K.new_flow_state(2), 40)
    total, margin, L = 0, _fp().margin, CFG.n_levels
    for k in range(40):
        t0 = b.time.copy()
        ops = np.full((2, M + 3, 5), -1.0)
        ops[:, :M, 0] = K.OP_OWN_CANCEL
        ops[:, :M, 2] = np.arange(M)
        if k % 3 == 0:
            ops[:, M] = (K.OP_OWN_MARKET, k % 2, 0, 1, 0.0)
        K.apply_ops(b, ops)
        for i in range(2):
            for side in range(2):
                row = np.full((2, 1, 5), -1.0)
                row[i, 0] = (K.OP_OWN_LIMIT, side, b.best[i, side], 2, 0.0)
                K.apply_ops(b, row)
            bi, ai = b.best[i] - b.lower_tick[i]
            if min(bi, ai) < margin or max(bi, ai) > L - 1 - margin:
                row = np.full((2, 1, 5), -1.0)
                row[i, 0] = (K.OP_RECENTRE, 0, b.best[i].sum() // 2 - L // 2, 0, 0.0)
                K.apply_ops(b, row)
        total += K.book_flow(b, t0 + 1.0, LAM, THETA, _fp())
    assert ev == total > 0
    for f in K.BookState._fields:
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f), err_msg=f)


@njit(cache=True, _nrt=False)
def _reduce(b, i, slot, q):
    K.own_reduce(b, i, slot, q)


def test_own_reduce_keeps_the_queue_position():
    b = _book(1)
    ops = np.zeros((1, 1, 5))
    ops[0, 0] = (K.OP_OWN_LIMIT, K.BID, b.best_bid[0], 3, 0.0)
    slot = int(K.apply_ops(b, ops)[0, 0])
    idx = b.ord_px[0, slot] - b.lower_tick[0]
    ahead, own, c = b.ord_ahead[0, slot], b.bid_own[0, idx], b.counters[0, K.C_OWN_CANCELLED]
    _reduce(b, np.int64(0), np.int64(slot), np.int64(1))
    assert (b.ord_qty[0, slot], b.ord_ahead[0, slot], b.bid_own[0, idx]) == (1, ahead, own - 2)
    assert b.counters[0, K.C_OWN_CANCELLED] == c + 2
    _reduce(b, np.int64(0), np.int64(slot), np.int64(5))  # not a reduction: nothing happens
    assert b.ord_qty[0, slot] == 1
    _reduce(b, np.int64(0), np.int64(slot), np.int64(0))  # to zero: a cancel
    assert b.ord_qty[0, slot] == 0 and b.bid_own[0, idx] == own - 3


def test_book_record_samples_the_mid_and_tapes_market_orders():
    b = _book(2, seed=9)
    c = _book(2, seed=9)
    mid2 = np.zeros(20, dtype=np.int64)
    tape = K.new_tape(500)
    t0 = b.time[1]
    ev = K.book_record(b, 1, 20.0, 1.0, LAM, THETA, _fp(), mid2, tape)
    n = int(tape.n[0])
    assert ev > 0 and 0 < n < 500
    assert np.all(np.diff(tape.t[:n]) >= 0) and set(tape.side[:n]) <= {K.BUY, K.SELL}
    assert (tape.qty[:n] > 0).all() and tape.t[n - 1] <= t0 + 20.0
    # the same as flowing env 1 step by step (env 0 of c draws a discarded event per call)
    for k in range(20):
        t = c.time.copy()
        t[1] = t0 + (k + 1) * 1.0
        K.book_flow(c, t, LAM, THETA, _fp())
        assert mid2[k] == c.best[1].sum()
    for f in K.BookState._fields:
        np.testing.assert_array_equal(getattr(b, f)[1], getattr(c, f)[1], err_msg=f)

"""The numba book (mmgym.sim.book) against the plain-Python reference (tests/book_reference.py),
and invariants.

Op-sequence tests: hypothesis draws 150 sequences (x 60 ops) per queue model, 300 in all; the
kernel state is compared with the reference after every op. Flow tests: 25 random flow
parameter sets x 3 envs x 40 chunks of Gillespie flow with our orders resting.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import kurtosis

from mmgym.scenarios.lob import BookConfig
from mmgym.sim import book as K
from tests.book_reference import RefBook

L, M, LOWER = 24, 3, 1000


def _random_ops(rng: np.random.Generator, n: int) -> np.ndarray:
    ops = np.zeros((n, 5))
    for k in range(n):
        code = rng.choice([0, 0, 0, 1, 1, 2, 3, 3, 4, 5, 6], p=None)
        side = rng.integers(0, 2)
        if code == K.OP_OWN_CANCEL:
            tick = rng.integers(0, M)
        elif code == K.OP_RECENTRE:
            tick = LOWER + rng.integers(-3, 4)
        else:
            tick = LOWER + rng.integers(-2, L + 2)
        ops[k] = (code, side, tick, rng.integers(1, 6), rng.random())
    return ops


def _assert_same(b, ref: RefBook) -> None:
    assert b.lower_tick[0] == ref.lower
    for side, bg, own in ((K.BID, b.bid_bg, b.bid_own), (K.ASK, b.ask_bg, b.ask_own)):
        for idx in range(L):
            tick = ref.lower + idx
            assert bg[0, idx] == ref.bg_lots(side, tick), (side, tick)
            assert own[0, idx] == ref.own_lots(side, tick), (side, tick)
            assert bg[0, idx] >= 0 and own[0, idx] >= 0
        best = ref.best_of(side)
        if best is not None:
            assert (b.best_bid if side == K.BID else b.best_ask)[0] == best
            assert not K._is_empty(b, 0, side)
        else:
            assert K._is_empty(b, 0, side)
    live = {j for j in range(M) if b.ord_qty[0, j] > 0}
    assert live == set(ref.orders)
    for j in live:
        o = ref.orders[j]
        assert (b.ord_side[0, j], b.ord_px[0, j]) == (o["side"], o["px"])
        assert b.ord_ahead[0, j] == ref.ahead(j)
    assert b.cash_ticks[0] == ref.cash and b.inventory[0] == ref.inv
    assert list(b.counters[0]) == ref.c
    bb, ba = ref.best_of(K.BID), ref.best_of(K.ASK)
    assert bb is None or ba is None or bb < ba  # never crossed


def _check_conservation(b, i) -> None:
    c = b.counters[i]
    rest_bg = b.bid_bg[i].sum() + b.ask_bg[i].sum()
    assert c[K.C_BG_ADDED] - c[K.C_BG_CANCELLED] - c[K.C_BG_TRADED] - c[K.C_BG_DROPPED] == rest_bg
    rest_own = b.bid_own[i].sum() + b.ask_own[i].sum()
    out = c[K.C_OWN_CANCELLED] + c[K.C_OWN_FILLED_BID] + c[K.C_OWN_FILLED_ASK] + c[K.C_OWN_DROPPED]
    assert c[K.C_OWN_ADDED] - out == rest_own == b.ord_qty[i].sum()
    assert b.inventory[i] == (c[K.C_OWN_FILLED_BID] - c[K.C_OWN_FILLED_ASK] + c[K.C_TAKER_BUY]
                              - c[K.C_TAKER_SELL])
    assert (b.bid_bg[i] >= 0).all() and (b.ask_bg[i] >= 0).all() and (b.ord_qty[i] >= 0).all()
    for j in range(b.ord_qty.shape[1]):  # own records sum to the own ladder; ahead <= level bg
        if b.ord_qty[i, j] > 0:
            idx = b.ord_px[i, j] - b.lower_tick[i]
            bg = b.bid_bg if b.ord_side[i, j] == K.BID else b.ask_bg
            assert 0 <= b.ord_ahead[i, j] <= bg[i, idx]
    nz_b = np.flatnonzero(b.bid_bg[i] + b.bid_own[i])
    nz_a = np.flatnonzero(b.ask_bg[i] + b.ask_own[i])
    if nz_b.size and nz_a.size:
        assert nz_b.max() < nz_a.min()  # never crossed
        assert b.best_bid[i] == b.lower_tick[i] + nz_b.max()
        assert b.best_ask[i] == b.lower_tick[i] + nz_a.min()


def _run_against_reference(seed: int, model: int, power: float) -> None:
    rng = np.random.default_rng(seed)
    b = K.new_book_state(1, L, M)
    b.lower_tick[0] = LOWER
    b.best_bid[0] = b.best_ask[0] = LOWER
    ref = RefBook(L, M, LOWER)
    out = np.zeros((1, 1), dtype=np.int64)
    for op in _random_ops(rng, 60):
        # FIFO: an own order may only fill once the background ahead of it has traded
        before = {j: (b.ord_ahead[0, j], b.ord_qty[0, j], b.ord_side[0, j], b.ord_px[0, j])
                  for j in range(M) if b.ord_qty[0, j] > 0}
        bg_before = (b.bid_bg.copy(), b.ask_bg.copy(), b.lower_tick[0])
        K.book_apply_ops(b, op.reshape(1, 1, 5), model, power, out)
        expect = ref.apply(op, model, power)
        assert out[0, 0] == expect, (op, out[0, 0], expect)
        _assert_same(b, ref)
        _check_conservation(b, 0)
        if int(op[0]) == K.OP_MARKET:
            for j, (ahead, qty, side, px) in before.items():
                filled = qty - b.ord_qty[0, j]
                if filled > 0:
                    arr = bg_before[0] if side == K.BID else bg_before[1]
                    idx = px - bg_before[2]
                    now = b.bid_bg if side == K.BID else b.ask_bg
                    assert arr[0, idx] - now[0, idx] >= ahead


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_matches_reference_pessimistic(seed):
    """150 random sequences of 60 ops (pessimistic queue model) equal the reference after each op."""
    _run_against_reference(seed, K.QUEUE_PESSIMISTIC, 0.0)


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from([0.0, 1.0, 2.0, 3.0]))
def test_matches_reference_power(seed, power):
    """150 random sequences of 60 ops (power queue model, n in {0,1,2,3}) equal the reference."""
    _run_against_reference(seed, K.QUEUE_POWER, power)


def _flow_setup(cfg: BookConfig, n: int, seed: int):
    b = K.new_book_state(n, cfg.n_levels, cfg.max_orders)
    b.rng[:] = np.random.default_rng(seed).integers(1, 2**63, size=(n, 2), dtype=np.uint64)
    lam, theta = cfg.lam(), cfg.theta()
    for i in range(n):
        K.init_book(b, i, 10_000, lam, theta, cfg.initial_spread_ticks)
    return b, lam, theta, _flow_params(cfg)


def _flow_params(cfg: BookConfig):
    """The engine's flow-parameter record for a BookConfig."""
    return K.flow_params(
        mu_buy=cfg.market_rate if cfg.market_rate_buy is None else cfg.market_rate_buy,
        mu_sell=cfg.market_rate if cfg.market_rate_sell is None else cfg.market_rate_sell,
        limit_size_mean=cfg.limit_size_mean, market_size_mean=cfg.market_size_mean,
        max_size=cfg.max_size, queue_model=cfg.queue_model, queue_power=cfg.queue_power,
        margin=cfg.margin)


@settings(max_examples=25, deadline=None)
@given(
    k=st.floats(0.5, 6.0), alpha=st.floats(0.0, 1.5), th=st.floats(0.05, 1.0),
    mu=st.floats(0.1, 5.0), ls=st.floats(1.0, 4.0), ms=st.floats(1.0, 8.0),
    model=st.sampled_from(["pessimistic", "power"]), seed=st.integers(0, 2**31),
)
def test_flow_invariants(k, alpha, th, mu, ls, ms, model, seed):
    """25 random flow parameter sets x 3 envs x 40 chunks: conservation, no crossing, FIFO
    bounds, exact inventory; our orders are re-placed near the touch between chunks."""
    cfg = BookConfig(n_levels=64, limit_k=k, limit_alpha=alpha, cancel_rates=[th],
                     market_rate=mu, limit_size_mean=ls, market_size_mean=ms, queue_model=model)
    b, lam, theta, fp = _flow_setup(cfg, 3, seed)
    out = np.zeros((3, 2), dtype=np.int64)
    for chunk in range(40):
        K.book_flow(b, np.full(3, chunk + 1.0), lam, theta, fp)
        for i in range(3):
            _check_conservation(b, i)
        ops = np.zeros((3, 2, 5))
        for i in range(3):
            ops[i, 0] = (K.OP_OWN_LIMIT, K.BID, b.best_bid[i] - chunk % 3, 2, 0.0)
            ops[i, 1] = (K.OP_OWN_LIMIT, K.ASK, b.best_ask[i] + chunk % 2, 1, 0.0)
        if chunk % 4 == 3:
            ops[:, :, 0] = K.OP_OWN_CANCEL
            ops[:, :, 2] = [0, 1]
        K.book_apply_ops(b, ops, int(fp.queue_model), fp.queue_power, out)
        for i in range(3):
            _check_conservation(b, i)


def test_vector_equals_single_books():
    """N books in one kernel call equal N separate single-book calls (same streams)."""
    cfg = BookConfig(queue_model="power")
    b, lam, theta, fp = _flow_setup(cfg, 4, 7)
    singles = []
    for i in range(4):
        s, _, _, _ = _flow_setup(cfg, 1, 0)
        s.rng[0] = b.rng[i]
        singles.append(s)
    K.book_flow(b, np.full(4, 200.0), lam, theta, fp)
    for i, s in enumerate(singles):
        K.book_flow(s, np.full(1, 200.0), lam, theta, fp)
        for name in K.BookState._fields:
            np.testing.assert_array_equal(getattr(b, name)[i], getattr(s, name)[0], err_msg=name)


def test_stylised_facts():
    """Default flow: spread mostly 1-2 ticks, mean depth rising away from the touch, and 1-time-unit
    mid returns fatter-tailed than Gaussian (positive excess kurtosis)."""
    cfg = BookConfig()
    b, lam, theta, fp = _flow_setup(cfg, 1, 3)
    K.book_flow(b, np.full(1, 100.0), lam, theta, fp)
    n = 20_000
    spreads = np.zeros(n, dtype=np.int64)
    mids = np.zeros(n)
    depth = np.zeros((n, 5))
    for k in range(n):
        K.book_flow(b, np.full(1, 100.0 + k + 1), lam, theta, fp)
        lo = b.lower_tick[0]
        bb, ba = b.best_bid[0] - lo, b.best_ask[0] - lo
        spreads[k] = ba - bb
        mids[k] = 0.5 * (b.best_bid[0] + b.best_ask[0])
        depth[k] = [b.bid_bg[0, bb - j] + b.ask_bg[0, ba + j] for j in range(5)]
    assert np.mean(spreads <= 2) > 0.75
    assert np.mean(spreads == 1) > 0.5
    prof = depth.mean(axis=0)
    assert np.all(np.diff(prof) > 0), prof
    assert kurtosis(np.diff(mids)) > 0.5

"""Informed market orders and the toxicity record of the numba book (mmgym.sim.book), against the
plain-Python flow reference (tests/book_reference.py, RefFlow), and their observation columns.

Event-by-event tests: the kernel's run_flow is called for one event at a time and its whole state
(ladder, our orders and their queue positions, counters, cash, clock, random stream, latent value,
toxicity record) is compared with the reference after every event; the toxicity record is also
recomputed from the reference's market-order log by direct sums. Statistical tests state their
Monte Carlo standard errors.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from mmgym.envs.market import BatchMarket
from mmgym.scenarios import lob
from mmgym.scenarios.lob import BookConfig, default_lob_config
from mmgym.sim import book as K
from mmgym.sim.jit import entry
from tests.book_reference import assert_same, ref_from_kernel

L, SLOTS = 40, 3
LAM = np.array([1.6, 1.2, 1.0, 0.8])
THETA = np.array([0.4, 0.35, 0.3, 0.3])
NO_TAPE = K.new_tape(0)


@entry
def _flow(b, i, t_stop, max_events, lam, theta, fp, tape, fs):
    return K.run_flow(b, i, t_stop, max_events, lam, theta, fp, tape, fs)


def _fp(frac=0.0, sigma=0.0, size_mean=None, model="pessimistic", mu=1.5, halflife=3.0):
    return K.flow_params(mu, mu * 0.8, 1.5, 2.5, 40, model, 2.0, 6, informed_fraction=frac,
                         informed_sigma_ticks=sigma, informed_size_mean=size_mean,
                         toxicity_halflife=halflife)


def _pair(fp, seed):
    """A kernel book (env 0 of 1), its flow state and their reference copy after init_book."""
    b = K.new_book_state(1, L, SLOTS)
    fs = K.new_flow_state(1)
    b.rng[0] = np.random.default_rng(seed).integers(1, 2**63, size=2, dtype=np.uint64)
    K.init_book(b, 0, 5_000, LAM, THETA, 1, fs)
    return b, fs, ref_from_kernel(b, fs, 0, LAM, THETA, fp)


def _own_orders(b, flow):
    """Rest a 2-lot bid one tick inside the best bid and a 1-lot ask at the best ask, in both."""
    ref = flow.book
    for side, tick, qty in ((K.BID, int(b.best[0, K.BID]) - 1, 2), (K.ASK, int(b.best[0, K.ASK]), 1)):
        ops = np.array([[[K.OP_OWN_LIMIT, side, tick, qty, 0.0]]])
        K.apply_ops(b, ops)
        ref.own_limit(side, tick, qty)


def _tox_from_log(log, a):
    """The toxicity record from the market-order log by direct sums: EWMAs with weight
    a (1 - a)^(n - 1 - k) on the k-th of the n orders that traded, the last one's size / depth and
    levels walked. Orders that found an empty side do not count."""
    traded = [e for e in log if e["filled"] > 0]
    n = len(traded)
    if n == 0:
        return np.zeros(4)
    w = [a * (1.0 - a) ** (n - 1 - k) for k in range(n)]
    signed = sum(wk * (e["filled"] if e["taker"] == K.BUY else -e["filled"]) for wk, e in zip(w, traded))
    total = sum(wk * e["filled"] for wk, e in zip(w, traded))
    last = traded[-1]
    return np.array([signed, total, last["size"] / last["depth"], abs(last["deepest"] - last["best"]) + 1])


@pytest.mark.parametrize("frac,sigma,size_mean,model", [
    (0.0, 0.0, None, "pessimistic"),  # today's flow
    (0.35, 1.5, None, "pessimistic"),
    (1.0, 3.0, 6.0, "power"),
])
def test_flow_matches_reference_event_by_event(frac, sigma, size_mean, model):
    """1,500 events one at a time (our orders re-placed every 100), then three runs to a t_stop
    (the discarded event and the value's last increment): the kernel's state equals the
    reference's after every event, and its toxicity record equals the direct sums over the
    reference's market-order log."""
    fp = _fp(frac, sigma, size_mean, model)
    b, fs, flow = _pair(fp, seed=11 + int(10 * frac))
    value0 = fs[0, K.FS_VALUE]
    for k in range(1500):
        if k % 100 == 0:
            _own_orders(b, flow)
        assert _flow(b, np.int64(0), np.inf, np.int64(1), LAM, THETA, fp, NO_TAPE, fs) == 1
        assert flow.event()
        assert_same(b, fs, 0, flow)
        np.testing.assert_allclose(fs[0, K.TOX_SIGNED:], _tox_from_log(flow.log, fp.tox_decay), rtol=1e-9, atol=1e-12)
    for dt in (0.37, 2.0, 5.5):
        t_stop = b.time[0] + dt
        K.book_flow(b, np.array([t_stop]), LAM, THETA, fp, fs)
        while flow.event(t_stop):
            pass
        assert_same(b, fs, 0, flow)
    n_mo = len(flow.log)
    informed_seen = sum(e["informed"] for e in flow.log)
    assert n_mo > 100
    if frac == 0.0:
        assert informed_seen == 0 and fs[0, K.FS_VALUE] == value0  # no draws for the value, no moves
    else:  # a Binomial(n_mo, frac) count: within 5 SE
        assert abs(informed_seen - frac * n_mo) <= 5 * math.sqrt(n_mo * frac * (1 - frac)) + 1e-9
    assert len({e["deepest"] != e["best"] for e in flow.log if e["filled"]}) == 2  # sweeps happen


def test_fraction_zero_is_bit_identical_in_the_env():
    """A book with ``book.informed: {fraction: 0, sigma: 0.05}`` steps exactly as the default book
    (observations, rewards, book and flow state) over 120 steps of 3 envs with random quotes: the informed
    flow draws nothing and changes nothing when off."""
    runs = []
    for book in ({}, {"informed": {"fraction": 0.0, "sigma": 0.05, "size_mean": 4.0}}):
        m = BatchMarket(default_lob_config(book=book), 3)
        m.seed_rows([4, 5, 6])
        m.reset()
        rng = np.random.default_rng(1)
        out = []
        for _ in range(120):
            r = m.step(rng.uniform(-1, 1, (3, 2)))
            out.append((r.obs.copy(), r.reward.copy()))
        runs.append((out, m.state.book, m.state.flow))
    (a, ba, fa), (b, bb, fb) = runs
    for (oa, ra), (ob, rb) in zip(a, b):
        np.testing.assert_array_equal(oa, ob)
        np.testing.assert_array_equal(ra, rb)
    for f in K.BookState._fields:
        np.testing.assert_array_equal(getattr(ba, f), getattr(bb, f), err_msg=f)
    np.testing.assert_array_equal(fa, fb)


@pytest.mark.parametrize("offset", [+400.0, -400.0])
def test_fully_informed_orders_all_trade_toward_the_value(offset):
    """fraction 1 with the value 400 ticks above (below) the mid: every market order of 40 time
    units is a buy (a sell) - the mid climbs (falls) but never reaches the value."""
    fp = _fp(frac=1.0, sigma=0.0)
    b = K.new_book_state(1, L, SLOTS)
    b.rng[0] = (99, 7)
    fs = K.new_flow_state(1)
    K.init_book(b, 0, 5_000, LAM, THETA, 1, fs)
    fs[0, K.FS_VALUE] += offset
    tape = K.new_tape(2_000)
    mid2 = np.zeros(40, dtype=np.int64)
    K.book_record(b, 0, 40.0, 1.0, LAM, THETA, fp, mid2, tape, fs)
    n = int(tape.n[0])
    assert n > 50
    want = K.BUY if offset > 0 else K.SELL
    assert (tape.side[:n] == want).all()
    assert b.counters[0, K.C_SELL_VOL if want == K.BUY else K.C_BUY_VOL] == 0
    assert np.sign(mid2[-1] - 10_000) == np.sign(offset)
    assert abs(mid2[-1] / 2 - 5_000) < abs(offset)


def test_mid_follows_the_value_with_a_lag():
    """Default book, 30 % informed, value volatility 1.5 ticks per sqrt(time unit); 48 envs x 400
    time units sampled each unit.

    - Per env, corr(value - mid, next unit's mid change) > 0: the mean over envs (independent) is
      above 4 of its standard errors.
    - The gap value - mid is bounded in distribution: its mean square at t = 400 is below a
      quarter of sigma^2 t (what it would be if the mid did not follow; 900 ticks^2) by more than
      4 SE, and differs from its mean square at t = 200 by less than 4 SE of the difference (no
      growth with time, where an unfollowed value would add sigma^2 x 200 = 450 ticks^2).
    """
    n_env, T, sig = 48, 400, 1.5
    cfg = BookConfig(informed={"fraction": 0.3, "sigma": sig})
    lam, theta, fp = cfg.lam(), cfg.theta(), cfg.flow_record(1.0)
    b = K.new_book_state(n_env, cfg.n_levels, cfg.max_orders)
    fs = K.new_flow_state(n_env)
    b.rng[:] = np.random.default_rng(3).integers(1, 2**63, size=(n_env, 2), dtype=np.uint64)
    for i in range(n_env):
        K.init_book(b, i, 10_000, lam, theta, 1, fs)
    gap = np.zeros((T + 1, n_env))
    mid = np.zeros((T + 1, n_env))
    for t in range(T + 1):
        if t:
            K.book_flow(b, np.full(n_env, float(t)), lam, theta, fp, fs)
        mid[t] = 0.5 * (b.best_bid + b.best_ask)
        gap[t] = fs[:, K.FS_VALUE] - mid[t]
    corr = np.array([np.corrcoef(gap[:-1, i], np.diff(mid[:, i]))[0, 1] for i in range(n_env)])
    assert corr.mean() > 4 * corr.std(ddof=1) / math.sqrt(n_env)
    g2_end, g2_mid = gap[T] ** 2, gap[T // 2] ** 2
    se_end = g2_end.std(ddof=1) / math.sqrt(n_env)
    assert g2_end.mean() + 4 * se_end < 0.25 * sig**2 * T
    d = g2_end - g2_mid
    assert abs(d.mean()) < 4 * d.std(ddof=1) / math.sqrt(n_env)


def _features(tox):
    """Observation columns 11-13 from a toxicity record (LOBMarketMakingEnv's table)."""
    s, a, rel, lev = tox
    return np.array([min(1.0, max(-1.0, s / a)) if a > 0 else 0.0, min(lob.MO_SIZE_CAP, rel),
                     min(1.0, lev / lob.MO_LEVELS_CAP)])


@pytest.mark.parametrize("delay", [0, 2])
def test_toxicity_columns_are_the_record_book_obs_delay_steps_old(delay):
    """In the env, observation columns 11-13 after step k are the features of the book's toxicity
    record at the end of step k - obs_delay_steps (at reset for the first steps), as float32."""
    cfg = default_lob_config(book={"obs_delay_steps": delay, "informed": {"fraction": 0.3, "sigma": 0.02}})
    m = BatchMarket(cfg, 2)
    m.seed_rows([1, 2])
    obs = m.reset()
    records = [m.state.flow[:, K.TOX_SIGNED:].copy()] * (delay + 1)
    np.testing.assert_array_equal(obs[:, 11:14], np.array([_features(t) for t in records[0]], dtype=np.float32))
    rng = np.random.default_rng(0)
    sizes = set()
    for _ in range(60):
        r = m.step(rng.uniform(-1, 1, (2, 2)))
        records.append(m.state.flow[:, K.TOX_SIGNED:].copy())
        seen = records[-1 - delay]
        want = np.array([_features(t) for t in seen], dtype=np.float32)
        np.testing.assert_array_equal(r.obs[:, 11:14], want)
        sizes |= set(np.round(r.obs[:, 12], 3))
    assert len(sizes) > 3  # the columns move

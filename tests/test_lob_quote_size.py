"""Quote sizes on the book (``action.quote_size`` on mmgym/LOBMarketMaking-v0): the env's step
against the plain-Python reference book and flow (tests/book_reference.py) with sizes changing
every step, size 0 never fills, and the inventory bound over hypothesis-drawn action sequences."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mmgym  # noqa: F401
from mmgym.config import ConfigError
from mmgym.envs.market import BatchMarket
from mmgym.scenarios import lob
from mmgym.scenarios.lob import default_lob_config
from mmgym.sim import book as K
from mmgym.sim import ledger as IK
from tests.book_reference import assert_same, ref_from_kernel

BID, ASK = K.BID, K.ASK


def _ref_quote(flow, side, tick, lots, q_max):
    """The documented rule for one side (LOBMarketMakingEnv, step 2): the room the bound leaves;
    a resting order at the same price keeps its place if its size stays or shrinks, and re-queues
    at the back if it grows; 0 lots: no quote."""
    ref = flow.book
    q = ref.inv
    z = min(lots, q_max - q) if side == BID else min(lots, q_max + q)
    j = next((s for s, o in ref.orders.items() if o["side"] == side), None)
    if j is not None and z > ref.own_lots_of(j):
        ref.own_cancel(j)
        j = None
    if j is not None:
        ref.own_reduce(j, z)
    elif z > 0:
        ref.own_limit(side, tick, z)
    return z


@pytest.mark.parametrize("informed", [0.0, 0.3])
def test_sized_steps_match_the_reference_book(informed):
    """Two books x 80 steps, raw depths of -1..3 ticks (redrawn w.p. 0.3) and sizes 0..3 lots drawn per step and side
    (max_inventory 4): after every step the kernel's book (ladder, our orders, their lots and queue
    positions, cash, inventory, counters, stream, clock) equals the reference's, which applies the
    documented size rule and then simulates the step's flow event by event; info's sizes are the
    bounded lots."""
    q_max, m_lots = 4, 3
    cfg = default_lob_config(action={"quote_size": m_lots}, market={"max_inventory": q_max},
                             book={"warmup": 5.0, "informed": {"fraction": informed, "sigma": 0.02}})
    m = BatchMarket(cfg, 2, raw_depths=True)
    m.seed_rows([8, 9])
    m.reset()
    b, st_ = m.state.book, m.state
    fp = K.as_flow_params(m.params[0]["flow"])
    flows = [ref_from_kernel(b, st_.flow, i, st_.lam, st_.theta, fp) for i in range(2)]
    tick = cfg.market.tick_size
    rng = np.random.default_rng(5)
    grew = kept = 0
    depth_ticks = np.ones((2, 2), dtype=np.int64)
    for _ in range(80):
        move = rng.random((2, 2)) < 0.3  # depths mostly kept: same prices, so sizes change in place
        depth_ticks = np.where(move, rng.integers(-1, 4, size=(2, 2)), depth_ticks)
        lots = rng.integers(0, m_lots + 1, size=(2, 2))
        a = np.column_stack([depth_ticks * tick, lots]).astype(float)
        want = []
        for i, flow in enumerate(flows):
            s_obs = st_.hist[i, 0, lob.F_MID]  # no observation delay: the mid at the step's start
            bid_t = math.floor((s_obs - a[i, 0]) / tick + 1e-9)
            ask_t = math.ceil((s_obs + a[i, 1]) / tick - 1e-9)
            ask_t = max(ask_t, bid_t + 1)
            for s, o in list(flow.book.orders.items()):  # a quote whose price moved is cancelled
                if o["px"] != (bid_t if o["side"] == BID else ask_t):
                    flow.book.own_cancel(s)
            before = {o["side"]: (o["px"], flow.book.own_lots_of(s)) for s, o in flow.book.orders.items()}
            z = [_ref_quote(flow, side, t, int(lots[i, side]), q_max) for side, t in ((BID, bid_t), (ASK, ask_t))]
            for side, t in ((BID, bid_t), (ASK, ask_t)):
                if side in before and before[side][0] == t and z[side] > 0:
                    grew += z[side] > before[side][1]
                    kept += z[side] <= before[side][1]
            flow.maybe_recentre()
            t_stop = flow.t + cfg.market.dt
            while flow.event(t_stop):
                pass
            want.append(z)
        out = m.step(a)
        assert not out.done.any()
        for i, flow in enumerate(flows):
            assert_same(b, st_.flow, i, flow)
            assert abs(b.inventory[i]) <= q_max
        np.testing.assert_array_equal(out.aux[:, [lob.A_SIZE_BID, lob.A_SIZE_ASK]], np.array(want))
    assert grew > 5 and kept > 5  # both branches of the same-price rule were exercised


def test_size_zero_never_fills_and_cancels():
    """A side asked for 0 lots shows nothing and never fills, whatever its depth (marketable
    quotes included), over 4 envs x 150 steps of random normalised actions; the other side fills."""
    cfg = default_lob_config(action={"mode": "offsets", "quote_size": 2})
    m = BatchMarket(cfg, 4)
    m.seed_rows([0, 1, 2, 3])
    m.reset()
    rng = np.random.default_rng(2)
    fills_ask = 0
    for _ in range(150):
        a = rng.uniform(-1, 1, size=(4, 4))
        a[:, 2] = rng.uniform(-1, -0.5, 4)  # (a + 1)/2 * 2 + 1/2 < 1: 0 lots on the bid
        out = m.step(a)
        assert (out.aux[:, IK.AUX_FILL_BID] == 0).all()
        assert (out.aux[:, lob.A_SIZE_BID] == 0).all() and np.isnan(out.aux[:, IK.AUX_BID_PX]).all()
        assert not ((m.state.book.ord_qty > 0) & (m.state.book.ord_side == BID)).any()
        fills_ask += out.aux[:, IK.AUX_FILL_ASK].sum()
    assert fills_ask > 0


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**31), st.integers(1, 4), st.integers(1, 5),
       st.lists(st.tuples(*[st.floats(-1, 1)] * 5), min_size=30, max_size=30))
def test_inventory_bound_holds_for_any_actions(seed, q_max, m_lots, actions):
    """Hypothesis: any sequence of normalised actions (offsets, a hedge, sizes) keeps |q| <=
    max_inventory, every fill within the lots shown, and the lots shown within 0..m."""
    cfg = default_lob_config(action={"mode": "offsets", "quote_size": m_lots, "hedge": True,
                                     "hedge_max_lots": 3, "offset_min": -0.02},
                             market={"max_inventory": q_max}, book={"warmup": 2.0})
    m = BatchMarket(cfg, 1)
    m.seed_rows([seed])
    m.reset()
    for a in actions:
        out = m.step(np.array([a]))
        q = int(m.state.book.inventory[0])
        assert abs(q) <= q_max
        sb, sa = out.aux[0, lob.A_SIZE_BID], out.aux[0, lob.A_SIZE_ASK]
        assert 0 <= sb <= m_lots and 0 <= sa <= m_lots
        assert out.aux[0, IK.AUX_FILL_BID] <= sb and out.aux[0, IK.AUX_FILL_ASK] <= sa


def test_sizes_through_gym_make_vec_and_refusals():
    env = gym.make("mmgym/LOBMarketMaking-v0", action={"quote_size": 2, "hedge": True})
    assert env.action_space.shape == (5,) and env.observation_space.shape == (14,)
    env.reset(seed=0)
    for _ in range(20):
        _, _, _, _, info = env.step(env.action_space.sample())
        assert info["size_bid"] in (0, 1, 2) and info["fill_bid"] <= info["size_bid"]
    venv = gym.make_vec("mmgym/LOBMarketMaking-v0", num_envs=3, vectorization_mode="vector_entry_point",
                        action={"quote_size": 2})
    assert venv.single_action_space.shape == (4,)
    venv.reset(seed=0)
    venv.step(venv.action_space.sample())
    plain = gym.make("mmgym/LOBMarketMaking-v0")
    plain.reset(seed=0)
    assert "size_bid" not in plain.step(plain.action_space.sample())[4]
    with pytest.raises(ConfigError, match="book.quote_lots"):
        BatchMarket(default_lob_config(action={"quote_size": 2}, book={"quote_lots": 2}), 1)

"""Processes of the intensity market, as scalar ``inline`` functions scenarios compose.

Each process takes and returns scalars (the row's mid, inventory, cash and random-stream state
live in registers while a row steps); the parameter components they read are typed records:

- :data:`MARKET_DTYPE` (the ``market`` config section), :data:`IMPACT_DTYPE` (``impact``),
  :data:`OBS_DTYPE` (``observation``), each with its ``pack_*`` function.

Processes (Avellaneda & Stoikov 2008; Cartea, Jaimungal & Penalva 2015, ch. 10; Almgren &
Chriss 2000):

- :func:`almgren_chriss_hedge`: a market order with linear temporary and permanent impact;
- :func:`round_to_tick`: quotes rounded away from the mid onto the tick grid;
- :func:`exponential_fills`: one lot per side with probability ``min(1, A e^{-k delta} dt)``
  (linear, AS 2008 sec. 3) or ``1 - exp(-A e^{-k delta} dt)`` (poisson), with the inventory bound;
  :func:`exponential_fills_sized`: the same draws and probabilities, a fill taking the side's whole
  quoted size (``action.quote_size``), clipped to the room the bound leaves (kept apart from the
  one-lot rule: folding both into one function cost ~15 % of the intensity kernel's env-steps/s);
- :func:`brownian_mid`: ``dS = sigma sqrt(dt) Z``, Z standard normal or +-1 (AS 2008's walk);
- :func:`jump_on_fill`: adverse selection, the mid's jump ``xi (F_ask - F_bid)`` after our own
  fills (Guéant, Lehalle & Fernandez-Tapia 2013, sec. 5: ``dS = sigma dW + xi dN^a - xi dN^b``).

Random draws come in a fixed order whatever the action (exponential for the bid, exponential for
the ask, then the mid's variate), so common random numbers across policies hold exactly.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .rng import to_unit, xoroshiro_next, zig_exponential, zig_normal

# -------------------------------------------------------------------------- parameters ---
#: The ``market`` component: the mid, the fill intensity and the inventory bound.
MARKET_DTYPE = np.dtype([
    ("s0", np.float64),  # initial mid
    ("sigma", np.float64),  # volatility, price per sqrt(time)
    ("dt", np.float64),  # step length
    ("n_steps", np.int64),  # steps per episode
    ("a_bid", np.float64), ("a_ask", np.float64),  # fill intensity at depth 0, per side
    ("k_bid", np.float64), ("k_ask", np.float64),  # its decay with depth, per side
    ("poisson", np.bool_),  # fill rule: False linear, True poisson
    ("max_inv", np.int64),  # inventory bound Q
    ("tick", np.float64),  # price tick (0: continuous)
    ("binomial", np.bool_),  # mid noise: False gaussian, True +-1
    ("q0", np.int64),  # initial inventory
    ("adverse_jump", np.float64),  # jump on fill xi: the mid moves by xi (F_ask - F_bid) after fills
])

#: The ``impact`` component: market orders in the linear Almgren & Chriss (2000) form.
IMPACT_DTYPE = np.dtype([
    ("half_spread", np.float64),  # paid per lot on top of impact
    ("eta", np.float64),  # temporary impact per lot
    ("nu", np.float64),  # permanent impact per lot
])

#: The ``observation`` component.
OBS_DTYPE = np.dtype([
    ("vol_decay", np.float64),  # EWMA weight of the newest squared mid change
])


def pack_market(market_config) -> np.ndarray:
    """The ``MARKET_DTYPE`` record of a config's ``market`` section (0-d structured array)."""
    m = market_config
    a_bid, a_ask, k_bid, k_ask = m.side_params()
    rec = np.zeros((), dtype=MARKET_DTYPE)
    for name, value in (("s0", m.s0), ("sigma", m.sigma), ("dt", m.dt), ("n_steps", m.n_steps),
                        ("a_bid", a_bid), ("a_ask", a_ask), ("k_bid", k_bid), ("k_ask", k_ask),
                        ("poisson", m.fill_rule == "poisson"), ("max_inv", m.max_inventory),
                        ("tick", m.tick_size), ("binomial", m.mid_noise == "binomial"),
                        ("q0", m.q0), ("adverse_jump", m.adverse_jump)):
        rec[name] = value
    return rec


def pack_impact(impact_config) -> np.ndarray:
    """The ``IMPACT_DTYPE`` record of a config's ``impact`` section."""
    rec = np.zeros((), dtype=IMPACT_DTYPE)
    rec["half_spread"] = impact_config.half_spread
    rec["eta"] = impact_config.eta
    rec["nu"] = impact_config.nu
    return rec


def pack_obs(observation_config) -> np.ndarray:
    """The ``OBS_DTYPE`` record of a config's ``observation`` section."""
    rec = np.zeros((), dtype=OBS_DTYPE)
    rec["vol_decay"] = 1.0 - 0.5 ** (1.0 / observation_config.vol_halflife)
    return rec


# --------------------------------------------------------------------------- processes ---
@njit(cache=True, inline="always")
def almgren_chriss_hedge(s, q, c, v, q_max, half_spread, eta, nu, taker_fee):
    """A market order of ``v`` lots (``v > 0`` buys), clipped so ``|q + v| <= q_max``.

    It executes at ``s + sign(v) (h + eta |v|)`` (linear temporary impact, Almgren & Chriss 2000),
    costing ``|v| (h + eta |v|)`` against the mid plus the taker fee, then the mid moves by the
    permanent impact ``nu v``.

    Returns:
        (mid, inventory, cash, executed lots, impact cost, taker fee).
    """
    if q + v > q_max:
        v = q_max - q
    elif q + v < -q_max:
        v = -q_max - q
    impact_cost = 0.0
    taker = 0.0
    if v != 0:
        av = abs(v)
        impact_cost = av * (half_spread + eta * av)
        taker = taker_fee * av
        c -= v * s + impact_cost + taker
        q += v
        s += nu * v
    return s, q, c, v, impact_cost, taker


@njit(cache=True, inline="always")
def round_to_tick(s, d_bid, d_ask, tick):
    """Quotes ``s - d_bid`` and ``s + d_ask``, rounded away from the mid onto the tick grid when
    ``tick > 0``. Returns (bid, ask, d_bid, d_ask) with the depths of the rounded prices."""
    bid = s - d_bid
    ask = s + d_ask
    if tick > 0.0:
        bid = np.floor(bid / tick + 1e-9) * tick
        ask = np.ceil(ask / tick - 1e-9) * tick
        d_bid = s - bid
        d_ask = ask - s
    return bid, ask, d_bid, d_ask


@njit(cache=True, inline="always")
def exponential_fills(q, d_bid, d_ask, q_max, poisson, a_bid_dt, a_ask_dt, ln_a_bid_dt, ln_a_ask_dt,
                      k_bid, k_ask, r0, r1):
    """One lot per side at most (AS 2008 sec. 3); a side whose fill would breach ``q_max`` does not
    quote.

    One exponential variate E per side, drawn whatever the quotes (common random numbers):
    linear fills iff ``E > k delta - ln(A dt)`` (probability exactly ``min(1, A dt e^{-k delta})``,
    with no exp per step), poisson fills iff ``E < A dt e^{-k delta}``.

    Returns:
        (bid fill, ask fill, bid quoted, ask quoted, s0, s1): fills 0/1 (int64), the stream state.
    """
    e_bid, r0, r1 = zig_exponential(r0, r1)
    e_ask, r0, r1 = zig_exponential(r0, r1)
    quote_bid = q + 1 <= q_max
    quote_ask = q - 1 >= -q_max
    if poisson:
        fill_bid = quote_bid and e_bid < a_bid_dt * np.exp(-k_bid * d_bid)
        fill_ask = quote_ask and e_ask < a_ask_dt * np.exp(-k_ask * d_ask)
    else:
        fill_bid = quote_bid and e_bid > k_bid * d_bid - ln_a_bid_dt
        fill_ask = quote_ask and e_ask > k_ask * d_ask - ln_a_ask_dt
    return np.int64(fill_bid), np.int64(fill_ask), quote_bid, quote_ask, r0, r1


@njit(cache=True, inline="always")
def exponential_fills_sized(q, d_bid, d_ask, lots_bid, lots_ask, q_max, poisson, a_bid_dt, a_ask_dt,
                      ln_a_bid_dt, ln_a_ask_dt, k_bid, k_ask, r0, r1):
    """:func:`exponential_fills` with quote sizes: at most one fill per side per step (AS 2008
    sec. 3), taking the side's whole quoted size (``action.quote_size``).

    Each side shows ``lots`` clipped to the room the inventory bound leaves (bid:
    ``min(lots, q_max - q)``, ask: ``min(lots, q_max + q)``); a side showing 0 lots does not quote
    (with one lot, the rule "a side whose fill would breach ``q_max`` does not quote"). The fill
    probability does not depend on the size: the market order that reaches our quote takes all we
    show (this env's modelling choice). One exponential variate E per side, drawn whatever the
    quotes (common random numbers), as :func:`exponential_fills` draws them: linear fills iff ``E > k delta - ln(A dt)`` (probability exactly
    ``min(1, A dt e^{-k delta})``, with no exp per step), poisson fills iff ``E < A dt e^{-k delta}``.

    Returns:
        (bid lots filled, ask lots filled, bid lots shown, ask lots shown, s0, s1): int64 lots, and
        the stream state.
    """
    e_bid, r0, r1 = zig_exponential(r0, r1)
    e_ask, r0, r1 = zig_exponential(r0, r1)
    show_bid = min(lots_bid, q_max - q)
    show_ask = min(lots_ask, q_max + q)
    quote_bid = show_bid > 0
    quote_ask = show_ask > 0
    if poisson:
        fill_bid = quote_bid and e_bid < a_bid_dt * np.exp(-k_bid * d_bid)
        fill_ask = quote_ask and e_ask < a_ask_dt * np.exp(-k_ask * d_ask)
    else:
        fill_bid = quote_bid and e_bid > k_bid * d_bid - ln_a_bid_dt
        fill_ask = quote_ask and e_ask > k_ask * d_ask - ln_a_ask_dt
    return (np.int64(show_bid if fill_bid else 0), np.int64(show_ask if fill_ask else 0),
            np.int64(show_bid), np.int64(show_ask), r0, r1)


@njit(cache=True, inline="always")
def brownian_mid(sigma_sqrt_dt, binomial, r0, r1):
    """The mid's move ``sigma sqrt(dt) Z``: Z ~ N(0, 1) (ziggurat) or +-1 w.p. 1/2 (AS 2008).

    Returns:
        (dS, s0, s1); dS has mean zero (all of it is the revaluation noise of
        :class:`~mmgym.sim.ledger.Outcome`'s ``ds_noise``).
    """
    if binomial:
        bits, r0, r1 = xoroshiro_next(r0, r1)
        ds = sigma_sqrt_dt if to_unit(bits) < 0.5 else -sigma_sqrt_dt
    else:
        z, r0, r1 = zig_normal(r0, r1)
        ds = sigma_sqrt_dt * z
    return ds, r0, r1


@njit(cache=True, inline="always")
def jump_on_fill(xi, fill_bid, fill_ask):
    """Adverse selection: the mid's jump ``xi (F_ask - F_bid)`` after the step's own fills.

    Guéant, Lehalle & Fernandez-Tapia (2013, sec. 5) model toxic flow as
    ``dS = sigma dW + xi dN^a - xi dN^b`` with N^a, N^b our ask and bid fills: a fill of our bid
    (someone sold to us) moves the mid down by ``xi``, a fill of our ask moves it up. No random
    draw; ``xi = 0`` adds 0.

    The jump comes once per fill *event*, whatever the lots the fill took (with
    ``action.quote_size``: callers pass ``lots > 0``).

    Args:
        xi: the jump (price units, >= 0). fill_bid, fill_ask: this step's fill events (0 or 1, int64).

    Returns:
        The mid's jump (float64).
    """
    return xi * (fill_ask - fill_bid)

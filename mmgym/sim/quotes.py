"""The quote rules: how an action becomes bid and ask depths. Written once, used by every kernel and
by the analytic baselines.

Depth convention everywhere: ``delta_b = mid - bid`` and ``delta_a = ask - mid`` (price units,
positive away from the mid; negative depths cross the mid).

Action modes (``ACTION_DTYPE.mode``):

- ``MODE_AS_HYBRID`` (the glass box): ``a[0]`` in [-1, 1] picks the risk aversion
  ``gamma = exp(ln gamma_min + (a[0] + 1)/2 (ln gamma_max - ln gamma_min))`` and ``a[1]`` a skew
  ``a[1] skew_max``; the depths are Avellaneda & Stoikov's (2008) eqs. (29)-(30) with the skew
  added to the reservation price (:func:`as_depths`). With ``action.spread`` a third column
  ``a[2]`` adds an extra half-spread ``c = spread_min + (a[2] + 1)/2 (spread_max - spread_min)`` to
  both depths (the ``c`` of ``as_tuned``, :mod:`mmgym.baselines.tuned`).
- ``MODE_OFFSETS``: ``delta = offset_min + (a + 1)/2 (offset_max - offset_min)`` per side.
- ``MODE_DEPTHS``: raw depths ``(delta_b, delta_a)`` taken as they are (the baselines' mode; not a
  normalised action space).

The hedge dimension, when present, is the last action column: a market order of
``round(a hedge_max_lots)`` lots in the normalised modes, ``round(a)`` lots in ``MODE_DEPTHS``.

The as_hybrid terms ``gamma`` and ``ln(1 + gamma/k) / gamma`` are computed for all rows in one
pass (:func:`hybrid_prepass`) with the vectorised exp/log of :mod:`mmgym.sim.vecmath`: libm one
value at a time was a third of the intensity kernel's cost.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from .vecmath import exp_into, log_into

MODE_AS_HYBRID = 0
MODE_OFFSETS = 1
MODE_DEPTHS = 2
MODE_NAMES = ("as_hybrid", "offsets", "depths")

#: The action component of a scenario's parameter record.
ACTION_DTYPE = np.dtype([
    ("mode", np.int64),  # MODE_*
    ("log_gamma_min", np.float64),  # as_hybrid: ln gamma at a[0] = -1
    ("log_gamma_max", np.float64),  # as_hybrid: ln gamma at a[0] = +1
    ("skew_max", np.float64),  # as_hybrid: |skew| at |a[1]| = 1 (price units)
    ("offset_min", np.float64),  # offsets: depth at a = -1 (price units)
    ("offset_max", np.float64),  # offsets: depth at a = +1
    ("hedge", np.bool_),  # the last action column is a market order
    ("hedge_max", np.float64),  # lots at |a| = 1 (normalised modes)
    ("spread", np.bool_),  # as_hybrid: a[2] is an extra half-spread
    ("spread_min", np.float64),  # its value at a[2] = -1
    ("spread_max", np.float64),  # its value at a[2] = +1
])


def pack_action(action_config, raw_depths: bool = False) -> np.ndarray:
    """The ``ACTION_DTYPE`` record of a config's ``action`` section (0-d structured array)."""
    a = action_config
    rec = np.zeros((), dtype=ACTION_DTYPE)
    if raw_depths:
        rec["mode"] = MODE_DEPTHS
    else:
        rec["mode"] = MODE_NAMES.index(a.mode)
    rec["log_gamma_min"] = np.log(a.gamma_min)
    rec["log_gamma_max"] = np.log(a.gamma_max)
    rec["skew_max"] = a.skew_max
    rec["offset_min"] = a.offset_min
    rec["offset_max"] = a.offset_max
    rec["hedge"] = bool(a.hedge)
    rec["hedge_max"] = a.hedge_max_lots
    rec["spread"] = bool(a.spread) and not raw_depths
    rec["spread_min"] = a.spread_min
    rec["spread_max"] = a.spread_max
    return rec


@njit(cache=True, inline="always")
def hybrid_prepass(actions, lo, hi, pa, k_bid, k_ask, gam, l_bid, l_ask, tmp, bits):
    """as_hybrid terms of rows ``lo:hi``: ``gam[i] = gamma`` and ``l_side[i] = ln(1 + gamma/k)/gamma``.

    Does nothing unless ``pa.mode == MODE_AS_HYBRID``. The work arrays are (N,) float64 (``bits``
    int64); rows outside ``lo:hi`` are not touched.
    """
    if pa.mode != MODE_AS_HYBRID:
        return
    lg_min = pa.log_gamma_min
    lg_span = pa.log_gamma_max - lg_min
    g = gam[lo:hi]
    t = tmp[lo:hi]
    s = bits[lo:hi]
    lb = l_bid[lo:hi]
    la = l_ask[lo:hi]
    m = hi - lo
    for r in range(m):
        t[r] = lg_min + 0.5 * (min(1.0, max(-1.0, actions[lo + r, 0])) + 1.0) * lg_span
    exp_into(t, g, s)
    for r in range(m):
        t[r] = 1.0 + g[r] / k_bid
    log_into(t, lb, s)
    for r in range(m):
        lb[r] /= g[r]
    if k_ask == k_bid:
        for r in range(m):
            la[r] = lb[r]
    else:
        for r in range(m):
            t[r] = 1.0 + g[r] / k_ask
        log_into(t, la, s)
        for r in range(m):
            la[r] /= g[r]


@njit(cache=True, inline="always")
def as_depths(q, gamma, sig2, tau, skew, l_bid, l_ask):
    """Avellaneda & Stoikov (2008) depths with a skew: returns ``(delta_b, delta_a)``.

    Reservation price ``r = s - q gamma sigma^2 tau + skew`` (AS 2008 eq. 29 plus the skew) and a
    half-spread per side ``gamma sigma^2 tau / 2 + ln(1 + gamma/k)/gamma`` (AS eq. 30 split per
    side, ``l_side = ln(1 + gamma/k_side)/gamma``); ``sig2 = sigma^2``, ``tau = T - t``.
    """
    shift = q * gamma * sig2 * tau - skew
    base = 0.5 * gamma * sig2 * tau
    return shift + base + l_bid, -shift + base + l_ask


class QuoteConsts(NamedTuple):
    """The action record read into scalars once per kernel call (:func:`quote_consts`)."""

    mode: int
    skew_max: float
    offset_min: float
    offset_half_span: float
    hedge: bool
    hedge_max: float
    spread: bool
    spread_min: float
    spread_half_span: float


@njit(cache=True, inline="always")
def quote_consts(pa):
    """:class:`QuoteConsts` of an ``ACTION_DTYPE`` record."""
    return QuoteConsts(pa.mode, pa.skew_max, pa.offset_min, 0.5 * (pa.offset_max - pa.offset_min),
                       pa.hedge, pa.hedge_max, pa.spread, pa.spread_min,
                       0.5 * (pa.spread_max - pa.spread_min))


@njit(cache=True, inline="always")
def action_depths(actions, i, qc, q, sig2, tau, gam, l_bid, l_ask):
    """Depths of row ``i``'s action at inventory ``q`` and time to go ``tau`` (module docstring).

    Args:
        actions: (N, action_dim) actions. i: the row. qc: :class:`QuoteConsts`. q: inventory.
        sig2: sigma^2. tau: time to the horizon. gam, l_bid, l_ask: (N,) the as_hybrid pre-pass.

    Returns:
        (delta_b, delta_a, gamma, skew); gamma and skew are NaN outside as_hybrid.
    """
    mode = qc.mode
    gamma = np.nan
    skew = np.nan
    if mode == MODE_AS_HYBRID:
        gamma = gam[i]
        skew = min(1.0, max(-1.0, actions[i, 1])) * qc.skew_max
        d_bid, d_ask = as_depths(q, gamma, sig2, tau, skew, l_bid[i], l_ask[i])
        if qc.spread:
            c = qc.spread_min + (min(1.0, max(-1.0, actions[i, 2])) + 1.0) * qc.spread_half_span
            d_bid += c
            d_ask += c
    elif mode == MODE_OFFSETS:
        d_bid = qc.offset_min + (min(1.0, max(-1.0, actions[i, 0])) + 1.0) * qc.offset_half_span
        d_ask = qc.offset_min + (min(1.0, max(-1.0, actions[i, 1])) + 1.0) * qc.offset_half_span
    else:
        d_bid = actions[i, 0]
        d_ask = actions[i, 1]
    return d_bid, d_ask, gamma, skew


@njit(cache=True, inline="always")
def action_hedge(actions, i, qc):
    """Market-order lots of row ``i`` (positive buys; 0 without the hedge column), before any bound."""
    if not qc.hedge:
        return np.int64(0)
    a = actions[i, actions.shape[1] - 1]
    if qc.mode != MODE_DEPTHS:
        a = min(1.0, max(-1.0, a)) * qc.hedge_max
    return np.int64(np.rint(a))


@njit(cache=True)
def first_bad_row(actions):
    """Index of the first row with a NaN or infinite action, or -1."""
    for i in range(actions.shape[0]):
        for j in range(actions.shape[1]):
            if not np.isfinite(actions[i, j]):
                return i
    return -1


@njit(cache=True)
def as_depths_batch(q, tau, gamma, sig2, k_bid, k_ask, skew, out_bid, out_ask):
    """:func:`as_depths` over rows at a constant risk aversion (the ``as`` family of baselines).

    ``l_side = ln(1 + gamma/k_side)/gamma`` is computed as :func:`hybrid_prepass` computes it.

    Args:
        q: (N,) float64 inventories. tau: (N,) float64 times to the horizon. gamma, sig2, k_bid,
            k_ask, skew: scalars. out_bid, out_ask: (N,) float64 outputs.
    """
    one = np.empty(1)
    g = np.full(1, gamma)
    lb = np.empty(1)
    la = np.empty(1)
    bits = np.empty(1, dtype=np.int64)
    one[0] = 1.0 + gamma / k_bid
    log_into(one, lb, bits)
    one[0] = 1.0 + gamma / k_ask
    log_into(one, la, bits)
    l_bid = lb[0] / g[0]
    l_ask = la[0] / g[0] if k_ask != k_bid else l_bid
    for r in range(q.shape[0]):
        out_bid[r], out_ask[r] = as_depths(q[r], gamma, sig2, tau[r], skew, l_bid, l_ask)

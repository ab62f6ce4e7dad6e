"""The one step skeleton every scenario's kernel is built on.

A scenario's step kernel is a module-level ``@njit(cache=True, _nrt=False)`` function that calls
:func:`step_rows` with the scenario's processes::

    @njit(cache=True, _nrt=False)
    def step(track, state, params, actions, out, work, lo, hi):
        step_rows(track, state, params, actions, out, work, lo, hi,
                  prepare, market_step, post_step, write_obs, reset_row)

The processes are plain ``@njit(inline="always")`` functions of the scenario's module (or shared
ones it reuses), passed as arguments: the skeleton is inlined into the scenario's kernel at numba's
IR level, so the processes resolve at compile time and the kernel is one cached function (numba's
cache does not cover closures built by a factory, nor functions whose *Python* arguments are
functions; it does cover this). The kernel is compiled without reference counting (``_nrt=False``):
helpers may take arrays at no per-call cost, and nothing in a step allocates.

One step of rows ``lo:hi``, in order:

1. the shared quote rule's vectorised pre-pass (as_hybrid gamma and ln(1 + gamma/k)/gamma,
   :func:`mmgym.sim.quotes.hybrid_prepass`);
2. ``consts = prepare(params)``: the scenario reads its parameter record into scalars once;
3. per row ``i``: ``outcome, extra = market_step(track, state, params, consts, qc, actions,
   work, i)`` runs the scenario's processes (hedge, quotes, fills, the mid's move...; ``qc`` is
   the action record as :class:`~mmgym.sim.quotes.QuoteConsts`) and returns the ledger's
   :class:`~mmgym.sim.ledger.Outcome` and whatever else the scenario's ``post_step`` needs;
4. the ledger writes reward, terms, aux and statistics (:func:`mmgym.sim.ledger.record`);
5. the shared :class:`~mmgym.sim.ledger.Track` advances: step counter, last mid change, EWMA of
   squared mid changes (``params.obs.vol_decay``), last fills (the kernels see the per-asset
   arrays flat, ``(N * K, ...)``; this skeleton is the single-asset one, K = 1: row ``i`` is
   index ``i``);
6. ``post_step(track, state, params, consts, i, outcome, extra, out)``: the scenario's own aux
   columns, statistics and state;
7. on the episode's last step: the final observation, the statistics copied out
   (:func:`mmgym.sim.ledger.finish`) and ``reset_row`` (SAME_STEP autoreset);
8. ``write_obs(row, state, params, consts, i, out_obs)`` with ``row`` the row's :class:`TrackRow`
   (``reset_row`` returns the reset one).

The parameter record must have ``market`` (with ``n_steps``, ``dt``, ``k_bid``, ``k_ask``),
``action`` (:data:`mmgym.sim.quotes.ACTION_DTYPE`), ``reward``
(:data:`mmgym.sim.ledger.REWARD_DTYPE`) and ``obs`` (``vol_decay``) components.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from .ledger import finish, record, reward_consts
from .quotes import MODE_AS_HYBRID, hybrid_prepass, quote_consts


class TrackRow(NamedTuple):
    """One row's :class:`~mmgym.sim.ledger.Track` after a step, as scalars (asset 0)."""

    step: int
    vol_var: float
    mid_ret: float
    fill_bid: int
    fill_ask: int


class Work(NamedTuple):
    """Per-row work arrays of a step (allocated once by the Python layer; kernels never allocate).

    Attributes:
        gam, l_bid, l_ask, tmp: (N,) float64, the as_hybrid pre-pass.
        bits: (N,) int64, its integer scratch.
    """

    gam: np.ndarray
    l_bid: np.ndarray
    l_ask: np.ndarray
    tmp: np.ndarray
    bits: np.ndarray


def new_work(num_envs: int) -> Work:
    """Work arrays for ``num_envs`` rows."""
    n = num_envs
    return Work(np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n, dtype=np.int64))


@njit(cache=True, inline="always")
def step_rows(track, state, params, actions, out, work, lo, hi, prepare, market_step, post_step,
              write_obs, reset_row):
    """Step rows ``lo:hi`` (module docstring); actions are already checked finite."""
    pa = params.action
    pm = params.market
    hybrid_prepass(actions, lo, hi, pa, pm.k_bid, pm.k_ask, work.gam, work.l_bid, work.l_ask,
                   work.tmp, work.bits)
    hybrid = pa.mode == MODE_AS_HYBRID
    consts = prepare(params)
    qc = quote_consts(pa)
    n_steps = pm.n_steps
    decay = params.obs.vol_decay
    pr = reward_consts(params.reward)
    tr = track
    # an unsigned row index: numba emits no negative-index wraparound for it on every access
    for i in range(np.uint64(max(lo, 0)), np.uint64(max(hi, 0))):
        o, extra = market_step(tr, state, params, consts, qc, actions, work, i)
        k_step = tr.step[i] + 1
        last = k_step >= n_steps
        record(out, tr.ep_stats, i, o, pr, last, hybrid)
        ds = o.ds
        var = tr.vol_var[i]
        var += decay * (ds * ds - var)
        tr.step[i] = k_step
        tr.mid_ret[i] = ds
        tr.vol_var[i] = var
        tr.last_fills[i, 0] = o.fill_bid
        tr.last_fills[i, 1] = o.fill_ask
        row = TrackRow(k_step, var, ds, o.fill_bid, o.fill_ask)
        post_step(tr, state, params, consts, i, o, extra, out)
        out.done[i] = last
        if last:
            write_obs(row, state, params, consts, i, out.final_obs)
            finish(out, tr.ep_stats, i, k_step)
            row = reset_row(tr, state, params, consts, i)
        write_obs(row, state, params, consts, i, out.obs)


@njit(cache=True, inline="always")
def reset_rows(mask, track, state, params, out, prepare, write_obs, reset_row):
    """Reset the rows where ``mask`` is true (statistics zeroed) and write their observations."""
    consts = prepare(params)
    for i in range(np.uint64(0), np.uint64(mask.shape[0])):  # unsigned, as in step_rows
        if mask[i]:
            for j in range(track.ep_stats.shape[1]):
                track.ep_stats[i, j] = 0.0
            row = reset_row(track, state, params, consts, i)
            write_obs(row, state, params, consts, i, out.obs)


@njit(cache=True, inline="always")
def reset_track(track, i, var0, wealth0):
    """The shared bookkeeping of a row at an episode's start."""
    track.step[i] = 0
    k = track.vol_var.shape[0] // track.step.shape[0]  # assets per row (flat per-asset arrays)
    for j in range(i * k, i * k + k):
        track.vol_var[j] = var0
        track.mid_ret[j] = 0.0
        track.last_fills[j, 0] = 0
        track.last_fills[j, 1] = 0
    track.wealth0[i] = wealth0
    return TrackRow(np.int64(0), var0, 0.0, np.int64(0), np.int64(0))

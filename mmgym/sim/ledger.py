"""The ledger: reward terms, aux columns, episode statistics and the per-row bookkeeping, in one place.

Every market kernel ends a row's step by handing an :class:`Outcome` (what happened: wealth change,
costs, quotes, fills, the mid's move) to :func:`record`, which writes the reward and its terms, the
aux columns and the running episode statistics. The step skeleton (:mod:`mmgym.sim.skeleton`)
then updates the shared per-row :class:`Track` and, on the last step of an episode, finalises the
statistics and resets the row (SAME_STEP autoreset).

Reward (Cartea, Jaimungal & Penalva 2015, ch. 10, eq. 10.2 discretised)::

    r = dW - phi q^2 dt - [last step] alpha q_T^2 - max(0, eta q dS)

(with ``reward.risk_penalty: variance`` the running penalty's ``dt`` becomes the step's own price
variance in time units, ``Var_t(dS) / sigma^2``: :func:`penalty_time`)

with ``dW`` the change of cash + q mid net of market-order costs and fees, ``q`` the inventory
after the step's fills, Spooner et al.'s (2018) asymmetric dampening ``max(0, eta q dS)``; with a
CARA objective the wealth increments are replaced by the terminal utility
``(1 - exp(-g W_T)) / g`` of the episode's wealth change (exponent capped at 700 so that a huge
loss stays finite). Market-order impact and fees are inside ``dW`` and are also reported as their
own terms, added back to ``pnl``, so that the terms sum to the reward.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from .columns import Columns

# ------------------------------------------------------------------------------- columns ---
TERMS = Columns([
    ("pnl", "wealth change before market-order costs and fees (spread capture + revaluation)"),
    ("impact", "-(cost of our market orders against the pre-trade mid)"),
    ("fees", "-(maker fees on passive fills + taker fees on market orders)"),
    ("inventory_penalty", "-phi q^2 dt (CJP 2015 eq. 10.2); risk_penalty variance: -phi q^2 Var_t(dS)/sigma^2"),
    ("terminal_penalty", "-alpha q_T^2 on the last step"),
    ("dampening", "-max(0, eta q dS) (Spooner et al. 2018)"),
    ("utility", "CARA objective: terminal utility minus the wealth increments it replaces"),
])
AUX = Columns([
    ("bid_px", "our bid price (NaN when the side does not quote)"),
    ("ask_px", "our ask price (NaN when the side does not quote)"),
    ("depth_bid", "mid - bid at quote time (NaN when not quoting)"),
    ("depth_ask", "ask - mid at quote time (NaN when not quoting)"),
    ("gamma", "as_hybrid: the chosen risk aversion (NaN otherwise)"),
    ("skew", "as_hybrid: the chosen skew (NaN otherwise)"),
    ("hedge_lots", "market order executed (signed lots)"),
    ("fill_bid", "lots bought passively this step"),
    ("fill_ask", "lots sold passively this step"),
    ("quote_mid", "the mid the quotes were computed from"),
    ("revaluation_noise", "q (dS - E_t dS): the zero-mean part of the step's revaluation (NaN on the "
                          "book and the replay, whose mid is not decomposed)"),
])
STATS = Columns([
    ("return", "summed reward (the objective)"),
    ("length", "steps"),
    ("pnl", "wealth change over the episode, net of costs and fees"),
    ("fills", "passive fills (lots)"),
    ("abs_inventory_sum", "sum of |q| after each step (divide by length for the mean)"),
    ("max_abs_inventory", "largest |q| after a step"),
    ("spread_sum", "sum of quoted spreads over two-sided steps"),
    ("spread_count", "two-sided steps"),
    ("impact_cost", "market-order cost (positive)"),
    ("fees", "fees paid (positive)"),
    ("inventory_penalty", "running inventory penalty paid (positive)"),
    ("terminal_penalty", "terminal penalty paid (positive)"),
    ("gamma_sum", "as_hybrid: sum of the chosen risk aversions"),
    ("skew_sum", "as_hybrid: sum of the chosen skews"),
    ("hedge_lots", "market-order lots traded"),
    ("final_inventory", "inventory at the end of the episode"),
])
OBS = Columns([
    ("inventory", "q / max_inventory"),
    ("time_left", "(T - t) / T"),
    ("volatility", "realised volatility / sigma"),
    ("fill_bid", "1 if our bid filled last step"),
    ("fill_ask", "1 if our ask filled last step"),
    ("mid_return", "last mid change / (sigma sqrt(dt)), clipped to +-10"),
])

TERM_NAMES = TERMS.names
AUX_NAMES = AUX.names
STAT_NAMES = STATS.names

TERM_PNL = TERMS["pnl"]
TERM_IMPACT = TERMS["impact"]
TERM_FEES = TERMS["fees"]
TERM_INVENTORY = TERMS["inventory_penalty"]
TERM_TERMINAL = TERMS["terminal_penalty"]
TERM_DAMPENING = TERMS["dampening"]
TERM_UTILITY = TERMS["utility"]

AUX_BID_PX = AUX["bid_px"]
AUX_ASK_PX = AUX["ask_px"]
AUX_DEPTH_BID = AUX["depth_bid"]
AUX_DEPTH_ASK = AUX["depth_ask"]
AUX_GAMMA = AUX["gamma"]
AUX_SKEW = AUX["skew"]
AUX_HEDGE = AUX["hedge_lots"]
AUX_FILL_BID = AUX["fill_bid"]
AUX_FILL_ASK = AUX["fill_ask"]
AUX_MID = AUX["quote_mid"]
AUX_NOISE = AUX["revaluation_noise"]

ST_RETURN = STATS["return"]
ST_LENGTH = STATS["length"]
ST_PNL = STATS["pnl"]
ST_FILLS = STATS["fills"]
ST_ABS_INV_SUM = STATS["abs_inventory_sum"]
ST_MAX_ABS_INV = STATS["max_abs_inventory"]
ST_SPREAD_SUM = STATS["spread_sum"]
ST_SPREAD_COUNT = STATS["spread_count"]
ST_IMPACT = STATS["impact_cost"]
ST_FEES = STATS["fees"]
ST_INV_PENALTY = STATS["inventory_penalty"]
ST_TERM_PENALTY = STATS["terminal_penalty"]
ST_GAMMA_SUM = STATS["gamma_sum"]
ST_SKEW_SUM = STATS["skew_sum"]
ST_HEDGE_LOTS = STATS["hedge_lots"]
ST_FINAL_INV = STATS["final_inventory"]

# -------------------------------------------------------------------------- parameters ---
#: The reward component of a scenario's parameter record.
REWARD_DTYPE = np.dtype([
    ("phi", np.float64),  # running inventory penalty
    ("alpha", np.float64),  # terminal inventory penalty
    ("maker_fee", np.float64),  # per lot filled passively (negative: rebate)
    ("taker_fee", np.float64),  # per lot traded with a market order
    ("cara", np.bool_),  # CARA terminal-utility objective
    ("cara_gamma", np.float64),  # its risk aversion
    ("dampening", np.float64),  # Spooner et al.'s eta (0: off)
    ("variance_penalty", np.bool_),  # risk_penalty: variance (penalty_time)
])


class RewardConsts(NamedTuple):
    """The ``REWARD_DTYPE`` record read into scalars once per kernel call (:func:`reward_consts`)."""

    phi: float
    alpha: float
    dampening: float
    cara: bool
    cara_gamma: float


@njit(cache=True, inline="always")
def reward_consts(pr):
    """:class:`RewardConsts` of a ``REWARD_DTYPE`` record."""
    return RewardConsts(pr.phi, pr.alpha, pr.dampening, pr.cara, pr.cara_gamma)


def pack_reward(reward_config) -> np.ndarray:
    """The ``REWARD_DTYPE`` record of a config's ``reward`` section (0-d structured array)."""
    r = reward_config
    rec = np.zeros((), dtype=REWARD_DTYPE)
    rec["phi"] = r.inventory_penalty
    rec["alpha"] = r.terminal_penalty
    rec["maker_fee"] = r.maker_fee
    rec["taker_fee"] = r.taker_fee
    rec["cara"] = r.objective == "cara"
    rec["cara_gamma"] = r.cara_gamma
    rec["dampening"] = r.dampening
    rec["variance_penalty"] = r.risk_penalty == "variance"
    return rec


@njit(cache=True, inline="always")
def penalty_time(variance, dt, var_ratio, jump_var):
    """The running penalty's time factor of one step: ``dt`` (``reward.risk_penalty: time``, CJP
    2015 eq. 10.2 discretised), or with ``risk_penalty: variance`` the step's actual price variance
    in time units, ``Var_t(dS) / sigma^2 = dt var_ratio + jump_var`` (issue 9, scenario 5), where
    ``var_ratio = (sigma_t / sigma)^2`` is the step's diffusion variance against ``market.sigma``'s
    (:func:`variance_ratio`) and ``jump_var = s_t^2 / sigma^2`` a scheduled jump's (0 off event
    steps). It equals ``dt`` exactly when nothing varies (``var_ratio`` 1.0, ``jump_var`` 0.0).
    The kernels and the DP (:mod:`mmgym.baselines.optimal`, through ``py_func``) share this rule."""
    if variance:
        return dt * var_ratio + jump_var
    return dt


def variance_ratio(sigma_t, sigma):
    """``(sigma_t / sigma)^2``: a step's diffusion variance against ``market.sigma``'s (exactly 1.0
    when they are equal); ``sigma`` must be positive (``risk_penalty: variance`` requires it)."""
    return (np.asarray(sigma_t, dtype=np.float64) / float(sigma)) ** 2


# ------------------------------------------------------------------------------- state ---
class Track(NamedTuple):
    """Per-row episode bookkeeping every scenario shares (batch-first; K assets).

    The kernels see ``vol_var``, ``mid_ret`` and ``last_fills`` flat (``(N * K, ...)``,
    :func:`flat_assets`); the step skeleton keeps asset 0 (single-asset scenarios, K = 1).

    Attributes:
        step: (N,) int64, steps taken this episode.
        vol_var: (N, K) float64, EWMA of squared mid changes (price^2 per step).
        mid_ret: (N, K) float64, last step's mid change (price units).
        last_fills: (N, K, 2) int64, last step's passive (bid, ask) fill lots.
        wealth0: (N,) float64, cash + q mid at the start of the episode.
        ep_stats: (N, n_stats) float64, running episode statistics (``STATS`` and extensions).
        rng: (N, 2) uint64, the per-env random streams (:mod:`mmgym.sim.rng`).
    """

    step: np.ndarray
    vol_var: np.ndarray
    mid_ret: np.ndarray
    last_fills: np.ndarray
    wealth0: np.ndarray
    ep_stats: np.ndarray
    rng: np.ndarray


#: Track fields with an asset axis.
TRACK_PER_ASSET = ("vol_var", "mid_ret", "last_fills")


def flat_assets(state: NamedTuple, per_asset: tuple[str, ...]) -> NamedTuple:
    """``state`` with its per-asset fields ``(N, K, ...)`` seen flat, ``(N * K, ...)`` (views of
    the same memory): the kernels' layout, row ``i`` asset ``a`` at ``i * K + a``."""
    views = {}
    for name in per_asset:
        arr = getattr(state, name)
        flat = arr.reshape((-1,) + arr.shape[2:])
        if not np.shares_memory(flat, arr):
            raise ValueError(f"{name}: a per-asset field must be C-contiguous (got a copy)")
        views[name] = flat
    return state._replace(**views)


def new_track(num_envs: int, num_assets: int, n_stats: int, rng: np.ndarray) -> Track:
    """Zeroed bookkeeping for ``num_envs`` rows (``rng`` is shared with the caller)."""
    n, k = num_envs, num_assets
    return Track(step=np.zeros(n, dtype=np.int64), vol_var=np.zeros((n, k)), mid_ret=np.zeros((n, k)),
                 last_fills=np.zeros((n, k, 2), dtype=np.int64), wealth0=np.zeros(n),
                 ep_stats=np.zeros((n, n_stats)), rng=rng)


class Outputs(NamedTuple):
    """What one batched step writes (arrays reused and overwritten by the next step).

    Attributes:
        obs: (N, obs_dim) float32, the next observation (the reset one on finished rows).
        reward: (N,) float64.
        done: (N,) bool, the episode ended on this step (finite horizon: terminated).
        final_obs: (N, obs_dim) float32, last observation of finished rows.
        final_stats: (N, n_stats) float64, episode statistics of finished rows.
        terms: (N, n_terms) float64, reward terms summing to the reward.
        aux: (N, n_aux) float64, quotes, fills and the glass-box readout.
    """

    obs: np.ndarray
    reward: np.ndarray
    done: np.ndarray
    final_obs: np.ndarray
    final_stats: np.ndarray
    terms: np.ndarray
    aux: np.ndarray


class Outcome(NamedTuple):
    """What happened to one row in one step: the ledger's input (all scalars, price units).

    Attributes:
        dw: change of cash + q mid over the step, net of market-order costs and fees.
        impact_cost: cost of our market orders against the pre-trade mid (>= 0).
        fees: maker + taker fees paid (negative for a net rebate).
        q: inventory after the step.
        ds: the mid's change over the step.
        w_episode: wealth after the step minus the episode's starting wealth.
        bid, ask: our quoted prices; quote_bid, quote_ask: whether each side quoted.
        d_bid, d_ask: depths from the quote mid.
        gamma, skew: as_hybrid readout (NaN otherwise).
        hedge: market-order lots executed (signed).
        fill_bid, fill_ask: passive lots filled on each side.
        quote_mid: the mid the quotes were computed from.
        spread: the quoted spread (counted in the statistics when both sides quote).
        pen_dt: the running penalty's time factor (:func:`penalty_time`; ``dt`` by default).
        ds_noise: the zero-mean part of ``ds`` given everything known before the mid's draw (the
            step's fills included): ``ds - E_t[ds]``; NaN where the mid is not decomposed (the
            book, the replay). ``q ds_noise`` has conditional mean zero, so subtracting it from
            the reward leaves every policy's expected return unchanged: the control variate of
            ``agent.control_variate``.
    """

    dw: float
    impact_cost: float
    fees: float
    q: float
    ds: float
    w_episode: float
    bid: float
    ask: float
    quote_bid: bool
    quote_ask: bool
    d_bid: float
    d_ask: float
    gamma: float
    skew: float
    hedge: int
    fill_bid: int
    fill_ask: int
    quote_mid: float
    spread: float
    pen_dt: float
    ds_noise: float


# ----------------------------------------------------------------------------- kernels ---
@njit(cache=True, inline="always")
def reward_terms(dw, impact_cost, fees, q, ds, pen_dt, pr, last, episode_wealth_change):
    """The step's reward terms in ``TERMS`` order, and the reward (module docstring).

    Args:
        dw: change of cash + q mid over the step, net of impact and fees (price units).
        impact_cost, fees: market-order cost against the pre-trade mid, and all fees.
        q: inventory after the step's fills (lots). ds: the mid's change over the step.
        pen_dt: the running penalty's time factor (:func:`penalty_time`). pr: :class:`RewardConsts`. last: the episode's last step.
        episode_wealth_change: W_T - W_0, used on the last step of a CARA objective.

    Returns:
        (pnl, impact, fees, inventory_penalty, terminal_penalty, dampening, utility, reward).
    """
    phi = pr.phi
    alpha = pr.alpha
    damp = pr.dampening
    t_pnl = dw + impact_cost + fees
    t_inv = -phi * q * q * pen_dt
    t_term = -alpha * q * q if last else 0.0
    t_damp = -max(0.0, damp * q * ds) if damp > 0.0 else 0.0
    t_util = 0.0
    if pr.cara:
        cara_gamma = pr.cara_gamma
        t_util = -dw
        if last:
            t_util += -np.expm1(min(700.0, -cara_gamma * episode_wealth_change)) / cara_gamma
    reward = t_pnl - impact_cost - fees + t_inv + t_term + t_damp + t_util
    return t_pnl, -impact_cost, -fees, t_inv, t_term, t_damp, t_util, reward


@njit(cache=True, inline="always")
def record(out, ep_stats, i, o, pr, last, hybrid):
    """Write row ``i``'s reward, terms, aux columns and running statistics from an :class:`Outcome`.

    Args:
        out: :class:`Outputs`. ep_stats: (N, n_stats) float64 running statistics.
        i: the row. o: the :class:`Outcome`. pr: :class:`RewardConsts`.
        last: this is the episode's last step. hybrid: the action is as_hybrid (gamma and skew
            statistics are summed).

    Returns:
        The reward.
    """
    t_pnl, t_imp, t_fees, t_inv, t_term, t_damp, t_util, reward = reward_terms(
        o.dw, o.impact_cost, o.fees, o.q, o.ds, o.pen_dt, pr, last, o.w_episode)
    out.reward[i] = reward
    terms = out.terms
    terms[i, TERM_PNL] = t_pnl
    terms[i, TERM_IMPACT] = t_imp
    terms[i, TERM_FEES] = t_fees
    terms[i, TERM_INVENTORY] = t_inv
    terms[i, TERM_TERMINAL] = t_term
    terms[i, TERM_DAMPENING] = t_damp
    terms[i, TERM_UTILITY] = t_util
    aux = out.aux
    aux[i, AUX_BID_PX] = o.bid if o.quote_bid else np.nan
    aux[i, AUX_ASK_PX] = o.ask if o.quote_ask else np.nan
    aux[i, AUX_DEPTH_BID] = o.d_bid if o.quote_bid else np.nan
    aux[i, AUX_DEPTH_ASK] = o.d_ask if o.quote_ask else np.nan
    aux[i, AUX_GAMMA] = o.gamma
    aux[i, AUX_SKEW] = o.skew
    aux[i, AUX_HEDGE] = o.hedge
    aux[i, AUX_FILL_BID] = o.fill_bid
    aux[i, AUX_FILL_ASK] = o.fill_ask
    aux[i, AUX_MID] = o.quote_mid
    aux[i, AUX_NOISE] = o.q * o.ds_noise

    aq = abs(o.q)
    ep_stats[i, ST_RETURN] += reward
    ep_stats[i, ST_FILLS] += o.fill_bid + o.fill_ask
    ep_stats[i, ST_ABS_INV_SUM] += aq
    ep_stats[i, ST_MAX_ABS_INV] = max(ep_stats[i, ST_MAX_ABS_INV], aq)
    if o.quote_bid and o.quote_ask:
        ep_stats[i, ST_SPREAD_SUM] += o.spread
        ep_stats[i, ST_SPREAD_COUNT] += 1.0
    # rare terms: skip their read-modify-writes (adding 0 would change nothing)
    if o.impact_cost != 0.0:
        ep_stats[i, ST_IMPACT] += o.impact_cost
    if o.hedge != 0:
        ep_stats[i, ST_HEDGE_LOTS] += abs(o.hedge)
    if o.fees != 0.0:
        ep_stats[i, ST_FEES] += o.fees
    ep_stats[i, ST_INV_PENALTY] -= t_inv
    if hybrid:
        ep_stats[i, ST_GAMMA_SUM] += o.gamma
        ep_stats[i, ST_SKEW_SUM] += o.skew
    if last:
        ep_stats[i, ST_TERM_PENALTY] = -t_term
        ep_stats[i, ST_PNL] = o.w_episode
        ep_stats[i, ST_FINAL_INV] = o.q
    return reward


@njit(cache=True, inline="always")
def finish(out, ep_stats, i, length):
    """Close row ``i``'s episode: its length, then statistics copied out and zeroed."""
    ep_stats[i, ST_LENGTH] = length
    for j in range(ep_stats.shape[1]):
        out.final_stats[i, j] = ep_stats[i, j]
        ep_stats[i, j] = 0.0

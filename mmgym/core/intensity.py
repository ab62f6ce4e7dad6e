"""Batched step kernel of the intensity market (Avellaneda & Stoikov 2008; Cartea, Jaimungal &
Penalva 2015, ch. 10).

One call steps ``num_envs`` independent markets by one step of length ``dt`` each, with autoreset
inside the kernel (Gymnasium ``AutoresetMode.SAME_STEP``: final observations and episode statistics
are copied out before the row is reset). The step rules, in order, for env ``i``:

0. **Hedge.** A market order of ``v`` lots (``v > 0`` buys), clipped so ``|q + v| <= Q``, executes at
   ``mid + sign(v) (h + eta |v|)``: linear temporary impact (Almgren & Chriss 2000, eq. for
   h(v)); its cost against the mid, ``|v| (h + eta |v|)``, is the ``impact`` reward term. The mid
   then moves by the permanent impact ``nu v``.
1. **Quotes** from the (post-hedge) state at the start of the step: ``bid = mid - delta_b``,
   ``ask = mid + delta_a``, rounded away from the mid to the tick grid if ``tick > 0``.
2. **Fills.** Each side fills one lot independently with ``p = min(1, A e^{-k delta} dt)``
   (linear, AS 2008 sec. 3) or ``p = 1 - exp(-A e^{-k delta} dt)`` (poisson). Each side draws an
   exponential variate E: linear fills iff ``E > k delta - ln(A dt)`` (probability exactly
   ``min(1, A dt e^{-k delta})``, with no exp per step), poisson iff ``E < A dt e^{-k delta}``.
3. **Bound.** A side whose fill would take ``|q|`` above ``Q`` does not quote.
4. **Cash and mid.** Cash and inventory change at the quoted prices, then
   ``mid += sigma sqrt(dt) Z`` with ``Z ~ N(0, 1)`` or ``Z = +-1`` w.p. 1/2 (AS 2008's walk).
5. **Reward** ``= d(cash + q mid) - phi q^2 dt - [last step] alpha q_T^2 - dampening``, q after
   the fills (CJP 2015 eq. 10.2 discretised). Market-order impact and fees are inside the wealth
   change and are also reported as their own terms (see ``TERM_*``).

Random draws per step come in a fixed order whatever the action (exponential for the bid,
exponential for the ask, then the mid's normal or sign; ziggurat method), so common random numbers
across policies hold exactly.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..sim.rng import to_unit, xoroshiro_next, zig_exponential, zig_normal
from .rewards import reward_terms
from ..sim.vecmath import exp_into, log_into

# ----------------------------------------------------------------------------- parameters ---
# params: (N_PARAMS,) float64, shared by all envs of a batch.
P_S0 = 0
P_SIGMA = 1
P_DT = 2
P_N_STEPS = 3
P_A_BID = 4
P_A_ASK = 5
P_K_BID = 6
P_K_ASK = 7
P_FILL_RULE = 8  # 0 linear, 1 poisson
P_MAX_INV = 9
P_TICK = 10
P_NOISE = 11  # 0 gaussian, 1 binomial
P_Q0 = 12
P_HALF_SPREAD = 13
P_ETA = 14
P_NU = 15
P_PHI = 16
P_ALPHA = 17
P_MAKER_FEE = 18
P_TAKER_FEE = 19
P_OBJECTIVE = 20  # 0 risk neutral, 1 CARA terminal utility
P_CARA_GAMMA = 21
P_DAMPENING = 22
P_ACTION_MODE = 23  # 0 as_hybrid, 1 offsets, 2 raw depths (baselines; not normalised)
P_LOG_GAMMA_MIN = 24
P_LOG_GAMMA_MAX = 25
P_SKEW_MAX = 26
P_OFFSET_MIN = 27
P_OFFSET_MAX = 28
P_HEDGE = 29  # 0/1: last action column is a market order
P_HEDGE_MAX = 30
P_VOL_DECAY = 31  # EWMA weight of the newest squared return
N_PARAMS = 32

MODE_AS_HYBRID = 0
MODE_OFFSETS = 1
MODE_DEPTHS = 2

# ------------------------------------------------------------------------------ obs layout ---
OBS_INVENTORY = 0  # q / Q
OBS_TIME_LEFT = 1  # (T - t) / T
OBS_VOL = 2  # realised vol estimate / sigma, clipped to 10
OBS_FILL_BID = 3  # last step's bid fill (0/1)
OBS_FILL_ASK = 4  # last step's ask fill (0/1)
OBS_RETURN = 5  # last mid change / (sigma sqrt(dt)), clipped to +-10
OBS_DIM = 6

# ------------------------------------------------------------------------------ reward terms ---
TERM_PNL = 0  # wealth change before impact and fees (spread capture + inventory revaluation)
TERM_IMPACT = 1  # -(cost of market orders against the pre-trade mid)
TERM_FEES = 2  # -(maker + taker fees)
TERM_INVENTORY = 3  # -phi q^2 dt
TERM_TERMINAL = 4  # -alpha q_T^2 on the last step
TERM_DAMPENING = 5  # -max(0, eta q dS) (Spooner et al. 2018)
TERM_UTILITY = 6  # CARA objective: utility minus the wealth increments it replaces
N_TERMS = 7
TERM_NAMES = ("pnl", "impact", "fees", "inventory_penalty", "terminal_penalty", "dampening", "utility")

# ------------------------------------------------------------------------- per-step extras ---
AUX_BID_PX = 0  # NaN when the side does not quote
AUX_ASK_PX = 1
AUX_DEPTH_BID = 2
AUX_DEPTH_ASK = 3
AUX_GAMMA = 4  # as_hybrid: chosen risk aversion (NaN otherwise)
AUX_SKEW = 5  # as_hybrid: chosen skew (NaN otherwise)
AUX_HEDGE = 6  # market order executed (signed lots)
AUX_FILL_BID = 7
AUX_FILL_ASK = 8
AUX_MID = 9  # mid at quote time (after the hedge)
N_AUX = 10
AUX_NAMES = ("bid_px", "ask_px", "depth_bid", "depth_ask", "gamma", "skew", "hedge_lots",
             "fill_bid", "fill_ask", "quote_mid")

# ------------------------------------------------------------------------ episode statistics ---
ST_RETURN = 0  # summed reward (the objective)
ST_LENGTH = 1
ST_PNL = 2  # wealth change over the episode, net of impact and fees
ST_FILLS = 3
ST_ABS_INV_SUM = 4  # sum of |q| after fills (divide by length for the mean)
ST_MAX_ABS_INV = 5
ST_SPREAD_SUM = 6  # sum of quoted spreads over two-sided steps
ST_SPREAD_COUNT = 7
ST_IMPACT = 8  # market-order cost (positive)
ST_FEES = 9
ST_INV_PENALTY = 10  # positive
ST_TERM_PENALTY = 11  # positive
ST_GAMMA_SUM = 12
ST_SKEW_SUM = 13
ST_HEDGE_LOTS = 14  # sum of |v|
ST_FINAL_INV = 15
N_STATS = 16
STAT_NAMES = ("return", "length", "pnl", "fills", "abs_inventory_sum", "max_abs_inventory",
              "spread_sum", "spread_count", "impact_cost", "fees", "inventory_penalty",
              "terminal_penalty", "gamma_sum", "skew_sum", "hedge_lots", "final_inventory")


@njit(cache=True, inline="always")
def _obs_values(q, step, vol_var, mid_ret, fill_bid, fill_ask, inv_q_max, n_steps, inv_n_steps,
                inv_sd):
    """Observation row (layout ``OBS_*``) from scalars; ``inv_sd = 1/(sigma sqrt(dt))`` or 0."""
    vol = min(10.0, np.sqrt(vol_var) * inv_sd)
    ret = min(10.0, max(-10.0, mid_ret * inv_sd))
    return (q * inv_q_max, (n_steps - step) * inv_n_steps, vol, float(fill_bid), float(fill_ask),
            ret)


@njit(cache=True, inline="always")
def _inv_sd(params):
    sd = params[P_SIGMA] * np.sqrt(params[P_DT])
    return 1.0 / sd if sd > 0.0 else 0.0


@njit(cache=True)
def intensity_reset(mask, mid, cash, inventory, step, vol_var, mid_ret, last_fills, wealth0,
                    ep_stats, params, out_obs):
    """Reset the rows where ``mask`` is true and write their observations. Draws no randoms."""
    s0 = params[P_S0]
    q0 = np.int64(params[P_Q0])
    var0 = params[P_SIGMA] ** 2 * params[P_DT]
    for i in range(mid.shape[0]):
        if mask[i]:
            mid[i] = s0
            cash[i] = 0.0
            inventory[i] = q0
            step[i] = 0
            vol_var[i] = var0
            mid_ret[i] = 0.0
            last_fills[i, 0] = 0
            last_fills[i, 1] = 0
            wealth0[i] = q0 * s0
            ep_stats[i, :] = 0.0
            o = _obs_values(q0, 0, var0, 0.0, 0, 0, 1.0 / params[P_MAX_INV], params[P_N_STEPS],
                            1.0 / params[P_N_STEPS], _inv_sd(params))
            for j in range(OBS_DIM):
                out_obs[i, j] = o[j]


@njit(cache=True)
def _first_bad_row(actions):
    """Index of the first row with a NaN or infinite action, or -1."""
    for i in range(actions.shape[0]):
        for j in range(actions.shape[1]):
            if not np.isfinite(actions[i, j]):
                return i
    return -1


@njit(cache=True)
def intensity_step(mid, cash, inventory, step, vol_var, mid_ret, last_fills, wealth0, ep_stats,
                   rng, params, actions, out_obs, out_reward, out_done, out_final_obs,
                   out_final_stats, out_terms, out_aux):
    """Step every env by ``dt`` (module docstring rules) and autoreset finished rows.

    Args:
        mid, cash: (N,) float64, mid price and cash (price units).
        inventory, step: (N,) int64, lots held and steps taken this episode.
        vol_var: (N,) float64, EWMA of squared mid changes (price^2 per step).
        mid_ret: (N,) float64, last step's mid change (price units).
        last_fills: (N, 2) int64, last step's bid and ask fills.
        wealth0: (N,) float64, cash + q mid at the episode's start.
        ep_stats: (N, N_STATS) float64, running episode statistics (``ST_*``).
        rng: (N, 2) uint64, the per-env random streams (:mod:`mmgym.sim.rng`).
        params: (N_PARAMS,) float64 (``P_*``).
        actions: (N, action_dim) float64. Modes 0/1 take [-1, 1] (clipped); mode 2 takes raw
            depths ``(delta_b, delta_a[, hedge_lots])``.
        out_obs: (N, OBS_DIM) float32, next observation (the reset one on finished rows).
        out_reward: (N,) float64. out_done: (N,) bool, the episode ended on this step.
        out_final_obs: (N, OBS_DIM) float32 and out_final_stats: (N, N_STATS) float64, written on
            finished rows only.
        out_terms: (N, N_TERMS) float64, reward terms (they sum to the reward).
        out_aux: (N, N_AUX) float64, quotes and fills (``AUX_*``).

    Returns:
        -1 on success, else the index of the first row whose action is NaN or infinite (nothing is
        stepped in that case).
    """
    bad = _first_bad_row(actions)
    if bad >= 0:
        return bad
    _step_rows(mid, cash, inventory, step, vol_var, mid_ret, last_fills, wealth0, ep_stats, rng,
               params, actions, out_obs, out_reward, out_done, out_final_obs, out_final_stats,
               out_terms, out_aux)
    return -1


@njit(cache=True, error_model="numpy")
def _step_rows(mid, cash, inventory, step, vol_var, mid_ret, last_fills, wealth0, ep_stats, rng,
               params, actions, out_obs, out_reward, out_done, out_final_obs, out_final_stats,
               out_terms, out_aux):
    """The step of :func:`intensity_step` for every row, actions already checked finite.

    The loop body touches arrays only directly: helpers take and return scalars, so that no
    per-row reference counting is emitted (that alone made the kernel 4x slower).
    """
    n = mid.shape[0]
    adim = actions.shape[1]
    s0_reset = params[P_S0]
    sigma = params[P_SIGMA]
    dt = params[P_DT]
    sqrt_dt = np.sqrt(dt)
    n_steps = np.int64(params[P_N_STEPS])
    n_steps_f = params[P_N_STEPS]
    a_bid_dt = params[P_A_BID] * dt
    a_ask_dt = params[P_A_ASK] * dt
    ln_a_bid_dt = np.log(a_bid_dt)
    ln_a_ask_dt = np.log(a_ask_dt)
    k_bid = params[P_K_BID]
    k_ask = params[P_K_ASK]
    poisson = params[P_FILL_RULE] == 1.0
    q_max = np.int64(params[P_MAX_INV])
    q_max_f = params[P_MAX_INV]
    q0 = np.int64(params[P_Q0])
    var0 = sigma * sigma * dt
    tick = params[P_TICK]
    binomial = params[P_NOISE] == 1.0
    half_spread = params[P_HALF_SPREAD]
    eta = params[P_ETA]
    nu = params[P_NU]
    phi = params[P_PHI]
    alpha = params[P_ALPHA]
    maker_fee = params[P_MAKER_FEE]
    taker_fee = params[P_TAKER_FEE]
    cara = params[P_OBJECTIVE] == 1.0
    cara_gamma = params[P_CARA_GAMMA]
    damp = params[P_DAMPENING]
    mode = np.int64(params[P_ACTION_MODE])
    lg_min = params[P_LOG_GAMMA_MIN]
    lg_span = params[P_LOG_GAMMA_MAX] - lg_min
    skew_max = params[P_SKEW_MAX]
    off_min = params[P_OFFSET_MIN]
    off_half_span = 0.5 * (params[P_OFFSET_MAX] - off_min)
    hedge_on = params[P_HEDGE] == 1.0
    hedge_max = params[P_HEDGE_MAX]
    decay = params[P_VOL_DECAY]
    sig2 = sigma * sigma
    n_stats = ep_stats.shape[1]
    inv_q_max = 1.0 / q_max_f
    inv_n_steps = 1.0 / n_steps_f
    inv_sd = _inv_sd(params)

    # as_hybrid: gamma = exp(.) and ln(1 + gamma/k)/gamma for all rows first, with the vectorised
    # exp/log of mmgym.sim.vecmath (libm one value at a time was a third of the step's cost)
    m_h = n if mode == MODE_AS_HYBRID else 0
    gam = np.empty(m_h)
    l_bid = np.empty(m_h)
    tmp = np.empty(m_h)
    scratch = np.empty(m_h, dtype=np.int64)
    for i in range(m_h):
        tmp[i] = lg_min + 0.5 * (min(1.0, max(-1.0, actions[i, 0])) + 1.0) * lg_span
    exp_into(tmp, gam, scratch)
    for i in range(m_h):
        tmp[i] = 1.0 + gam[i] / k_bid
    log_into(tmp, l_bid, scratch)
    for i in range(m_h):
        l_bid[i] /= gam[i]
    if k_ask == k_bid:
        l_ask = l_bid
    else:
        l_ask = np.empty(m_h)
        for i in range(m_h):
            tmp[i] = 1.0 + gam[i] / k_ask
        log_into(tmp, l_ask, scratch)
        for i in range(m_h):
            l_ask[i] /= gam[i]

    for i in range(n):
        s = mid[i]
        q = inventory[i]
        c = cash[i]
        w_before = c + q * s
        r0 = rng[i, 0]
        r1 = rng[i, 1]

        # 0. hedge (market order, Almgren-Chriss linear impact)
        v = np.int64(0)
        impact_cost = 0.0
        taker = 0.0
        if hedge_on:
            a_h = actions[i, adim - 1]
            if mode != MODE_DEPTHS:
                a_h = min(1.0, max(-1.0, a_h)) * hedge_max
            v = np.int64(np.rint(a_h))
            if q + v > q_max:
                v = q_max - q
            elif q + v < -q_max:
                v = -q_max - q
            if v != 0:
                av = abs(v)
                impact_cost = av * (half_spread + eta * av)
                taker = taker_fee * av
                c -= v * s + impact_cost + taker
                q += v
                s += nu * v

        # 1. quotes from the post-hedge state
        tau = (n_steps - step[i]) * dt
        gamma = np.nan
        skew = np.nan
        if mode == MODE_AS_HYBRID:
            a1 = min(1.0, max(-1.0, actions[i, 1]))
            gamma = gam[i]  # exp(ln gamma_min + (a0 + 1)/2 (ln gamma_max - ln gamma_min))
            skew = a1 * skew_max
            # reservation price r = s - q gamma sigma^2 tau + skew (AS 2008 eq. 29 plus skew);
            # half-spread per side 0.5 gamma sigma^2 tau + (1/gamma) ln(1 + gamma/k) (AS eq. 30)
            shift = q * gamma * sig2 * tau - skew
            base = 0.5 * gamma * sig2 * tau
            d_bid = shift + base + l_bid[i]
            d_ask = -shift + base + l_ask[i]
        elif mode == MODE_OFFSETS:
            d_bid = off_min + (min(1.0, max(-1.0, actions[i, 0])) + 1.0) * off_half_span
            d_ask = off_min + (min(1.0, max(-1.0, actions[i, 1])) + 1.0) * off_half_span
        else:
            d_bid = actions[i, 0]
            d_ask = actions[i, 1]
        bid = s - d_bid
        ask = s + d_ask
        if tick > 0.0:
            bid = np.floor(bid / tick + 1e-9) * tick
            ask = np.ceil(ask / tick - 1e-9) * tick
            d_bid = s - bid
            d_ask = ask - s

        # 2./3. fills: one exponential variate per side whatever the quotes (common random
        # numbers). P(E > k d - ln(A dt)) = min(1, A dt e^{-k d}); P(E < x) = 1 - e^{-x}.
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

        # 4. cash and inventory at the quoted prices, then the mid moves
        # branch-free: fills are coin flips, a mispredicted branch costs more than the arithmetic
        fb = np.int64(fill_bid)
        fa = np.int64(fill_ask)
        c += fa * ask - fb * bid
        q += fb - fa
        n_fills = fb + fa
        maker = maker_fee * n_fills
        c -= maker
        if binomial:
            bits, r0, r1 = xoroshiro_next(r0, r1)
            ds = sigma * sqrt_dt if to_unit(bits) < 0.5 else -sigma * sqrt_dt
        else:
            z, r0, r1 = zig_normal(r0, r1)
            ds = sigma * sqrt_dt * z
        rng[i, 0] = r0
        rng[i, 1] = r1
        s_new = s + ds

        # 5. reward terms (mmgym.core.rewards)
        w_after = c + q * s_new
        dw = w_after - w_before
        fees = maker + taker
        k_step = step[i] + 1
        last = k_step >= n_steps
        t_pnl, t_imp, t_fees, t_inv, t_term, t_damp, t_util, reward = reward_terms(
            dw, impact_cost, fees, q, ds, dt, phi, alpha, last, damp, cara, cara_gamma,
            w_after - wealth0[i])
        out_reward[i] = reward
        out_terms[i, TERM_PNL] = t_pnl
        out_terms[i, TERM_IMPACT] = t_imp
        out_terms[i, TERM_FEES] = t_fees
        out_terms[i, TERM_INVENTORY] = t_inv
        out_terms[i, TERM_TERMINAL] = t_term
        out_terms[i, TERM_DAMPENING] = t_damp
        out_terms[i, TERM_UTILITY] = t_util
        out_aux[i, AUX_BID_PX] = bid if quote_bid else np.nan
        out_aux[i, AUX_ASK_PX] = ask if quote_ask else np.nan
        out_aux[i, AUX_DEPTH_BID] = d_bid if quote_bid else np.nan
        out_aux[i, AUX_DEPTH_ASK] = d_ask if quote_ask else np.nan
        out_aux[i, AUX_GAMMA] = gamma
        out_aux[i, AUX_SKEW] = skew
        out_aux[i, AUX_HEDGE] = v
        out_aux[i, AUX_FILL_BID] = fb
        out_aux[i, AUX_FILL_ASK] = fa
        out_aux[i, AUX_MID] = s

        # episode statistics
        aq = abs(q)
        ep_stats[i, ST_RETURN] += reward
        ep_stats[i, ST_FILLS] += n_fills
        ep_stats[i, ST_ABS_INV_SUM] += aq
        ep_stats[i, ST_MAX_ABS_INV] = max(ep_stats[i, ST_MAX_ABS_INV], aq)
        if quote_bid and quote_ask:
            ep_stats[i, ST_SPREAD_SUM] += ask - bid
            ep_stats[i, ST_SPREAD_COUNT] += 1.0
        if v != 0:  # rare: skip the read-modify-writes of the market-order statistics
            ep_stats[i, ST_IMPACT] += impact_cost
            ep_stats[i, ST_HEDGE_LOTS] += abs(v)
        if fees != 0.0:
            ep_stats[i, ST_FEES] += fees
        ep_stats[i, ST_INV_PENALTY] -= t_inv
        if mode == MODE_AS_HYBRID:
            ep_stats[i, ST_GAMMA_SUM] += gamma
            ep_stats[i, ST_SKEW_SUM] += skew

        # state update
        var = vol_var[i] + decay * (ds * ds - vol_var[i])
        out_done[i] = last
        if last:
            ep_stats[i, ST_LENGTH] = k_step
            ep_stats[i, ST_TERM_PENALTY] = -t_term
            ep_stats[i, ST_PNL] = w_after - wealth0[i]
            ep_stats[i, ST_FINAL_INV] = q
            o = _obs_values(q, k_step, var, ds, fb, fa, inv_q_max, n_steps_f, inv_n_steps, inv_sd)
            for j in range(OBS_DIM):
                out_final_obs[i, j] = o[j]
            for j in range(n_stats):
                out_final_stats[i, j] = ep_stats[i, j]
                ep_stats[i, j] = 0.0
            # autoreset (draws no randoms)
            s_new = s0_reset
            c = 0.0
            q = q0
            k_step = 0
            var = var0
            ds = 0.0
            fb = 0
            fa = 0
            wealth0[i] = q0 * s0_reset
        mid[i] = s_new
        cash[i] = c
        inventory[i] = q
        step[i] = k_step
        mid_ret[i] = ds
        vol_var[i] = var
        last_fills[i, 0] = fb
        last_fills[i, 1] = fa
        o = _obs_values(q, k_step, var, ds, fb, fa, inv_q_max, n_steps_f, inv_n_steps, inv_sd)
        for j in range(OBS_DIM):
            out_obs[i, j] = o[j]


@njit(cache=True, parallel=True)
def intensity_step_parallel(mid, cash, inventory, step, vol_var, mid_ret, last_fills, wealth0,
                            ep_stats, rng, params, actions, out_obs, out_reward, out_done,
                            out_final_obs, out_final_stats, out_terms, out_aux):
    """:func:`intensity_step` over row chunks spread on threads (``numba.prange``); same results."""
    bad = _first_bad_row(actions)
    if bad >= 0:
        return bad
    n = mid.shape[0]
    chunk = 1024
    n_chunks = (n + chunk - 1) // chunk
    for c in prange(n_chunks):
        a = c * chunk
        b = min(n, a + chunk)
        _step_rows(mid[a:b], cash[a:b], inventory[a:b], step[a:b], vol_var[a:b], mid_ret[a:b],
                   last_fills[a:b], wealth0[a:b], ep_stats[a:b], rng[a:b], params, actions[a:b],
                   out_obs[a:b], out_reward[a:b], out_done[a:b], out_final_obs[a:b],
                   out_final_stats[a:b], out_terms[a:b], out_aux[a:b])
    return -1

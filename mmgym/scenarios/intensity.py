"""``mmgym/MarketMaking-v0``: the intensity market of Avellaneda & Stoikov (2008) and Cartea,
Jaimungal & Penalva (2015, ch. 10).

One step of length ``dt``, in order, for each env:

0. **Hedge.** A market order of ``v`` lots (``v > 0`` buys), clipped so ``|q + v| <= Q``, executes at
   ``mid + sign(v) (h + eta |v|)`` (Almgren & Chriss 2000, linear temporary impact); the mid then
   moves by the permanent impact ``nu v`` (:func:`mmgym.sim.processes.almgren_chriss_hedge`).
1. **Quotes** from the post-hedge state (:mod:`mmgym.sim.quotes`), rounded away from the mid onto
   the tick grid if ``tick > 0``.
2. **Fills.** Each side fills with ``p = min(1, A e^{-k delta} dt)`` (linear, AS 2008
   sec. 3) or ``1 - exp(-A e^{-k delta} dt)`` (poisson), taking the side's whole size: one lot,
   or with ``action.quote_size`` = m > 0 the 0..m lots the action chose (0: no quote); ``p`` does
   not depend on the size (a market order reaching our quote takes all we show: a modelling choice).
3. **Bound.** A side shows at most the room left: bid ``min(lots, Q - q)``, ask
   ``min(lots, Q + q)``; a side left with 0 lots does not quote (one lot: a side whose fill would
   take ``|q|`` above ``Q`` does not quote).
4. **Cash and mid.** Cash and inventory change by the filled lots at the quoted prices (maker fee
   per lot), then ``mid += sigma sqrt(dt) Z + xi (F_ask - F_bid)``
   (:func:`mmgym.sim.processes.brownian_mid`; ``xi = market.adverse_jump``, F in {0, 1} our own
   fill *events* this step, whatever their lots: the jump on fill of Guéant, Lehalle &
   Fernandez-Tapia 2013, sec. 5, :func:`mmgym.sim.processes.jump_on_fill`).
5. **Reward** (:mod:`mmgym.sim.ledger`) with q after the fills.

This module is the whole scenario: its parameter record, per-row state, processes, kernels, the
Gymnasium env classes and its declaration (:data:`SCENARIO`). :mod:`mmgym.scenarios.ou` shows how a
scenario reuses these processes and swaps one (the mid).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from gymnasium import spaces
from numba import njit, prange

from ..envs.base import ScenarioEnv, ScenarioVectorEnv
from ..sim.jit import entry
from ..sim.ledger import AUX, OBS, REWARD_DTYPE, Outcome, pack_reward
from ..sim.processes import (
    IMPACT_DTYPE,
    MARKET_DTYPE,
    OBS_DTYPE,
    almgren_chriss_hedge,
    brownian_mid,
    exponential_fills,
    exponential_fills_sized,
    jump_on_fill,
    pack_impact,
    pack_market,
    pack_obs,
    round_to_tick,
)
from ..sim.quotes import (
    ACTION_DTYPE,
    action_depths,
    action_hedge,
    action_lots,
    first_bad_row,
    pack_action,
)
from ..sim.skeleton import reset_rows, reset_track, step_rows
from .base import Scenario

ENV_ID = "mmgym/MarketMaking-v0"

O_INV = OBS["inventory"]
O_TIME = OBS["time_left"]
O_VOL = OBS["volatility"]
O_FILL_BID = OBS["fill_bid"]
O_FILL_ASK = OBS["fill_ask"]
O_RET = OBS["mid_return"]

#: The ledger's aux columns, then the quoted sizes (written with ``action.quote_size`` > 0 only).
AUX_COLUMNS = AUX.extend([
    ("size_bid", "lots our bid showed after the inventory bound (0: not quoting); action.quote_size > 0"),
    ("size_ask", "lots our ask showed after the inventory bound (0: not quoting); action.quote_size > 0"),
])
AUX_SIZE_BID = AUX_COLUMNS["size_bid"]
AUX_SIZE_ASK = AUX_COLUMNS["size_ask"]

#: The parameter record: one sub-record per component.
PARAMS_DTYPE = np.dtype([("market", MARKET_DTYPE), ("impact", IMPACT_DTYPE),
                         ("reward", REWARD_DTYPE), ("action", ACTION_DTYPE), ("obs", OBS_DTYPE)])


def pack(config, raw_depths: bool = False) -> np.ndarray:
    """The scenario's ``PARAMS_DTYPE`` record (a 1-element structured array) from an env config."""
    p = np.zeros(1, dtype=PARAMS_DTYPE)
    p["market"] = pack_market(config.market)
    p["impact"] = pack_impact(config.impact)
    p["reward"] = pack_reward(config.reward)
    p["action"] = pack_action(config.action, raw_depths)
    p["obs"] = pack_obs(config.observation)
    return p


def pack_into(config, raw_depths: bool, params_dtype: np.dtype) -> np.ndarray:
    """A scenario built on this market: its record (``params_dtype`` = this ``PARAMS_DTYPE`` plus
    its own components) with the intensity market's components packed in, its own left zero."""
    base = pack(config, raw_depths)
    p = np.zeros(1, dtype=params_dtype)
    for name in PARAMS_DTYPE.names:
        p[name] = base[name]
    return p


class State(NamedTuple):
    """Per-row market state (batch-first, K assets; K = 1 here).

    Attributes:
        mid: (N, K) float64, mid price. cash: (N,) float64. inventory: (N, K) int64, lots held.
        The kernels see ``mid`` and ``inventory`` flat, ``(N * K,)`` (row ``i`` is index ``i``).
    """

    mid: np.ndarray
    cash: np.ndarray
    inventory: np.ndarray


def new_state(config, num_envs: int) -> State:
    """The state of ``num_envs`` markets (reset fills it)."""
    n = num_envs
    return State(mid=np.full((n, 1), float(config.market.s0)), cash=np.zeros(n),
                 inventory=np.zeros((n, 1), dtype=np.int64))


class Consts(NamedTuple):
    """The parameters one step needs, read once per kernel call (scalars in registers)."""

    s0: float
    sigma_sqrt_dt: float
    var0: float
    n_steps: int
    dt: float
    sig2: float
    a_bid_dt: float
    a_ask_dt: float
    ln_a_bid_dt: float
    ln_a_ask_dt: float
    k_bid: float
    k_ask: float
    poisson: bool
    q_max: int
    q0: int
    tick: float
    binomial: bool
    half_spread: float
    eta: float
    nu: float
    maker_fee: float
    taker_fee: float
    inv_q_max: float
    inv_n_steps: float
    inv_sd: float
    jump: float


# --------------------------------------------------------------------------- processes ---
@njit(cache=True, inline="always")
def prepare(p):
    """Read the parameter record into :class:`Consts`."""
    m = p.market
    sigma = m.sigma
    dt = m.dt
    sqrt_dt = np.sqrt(dt)
    a_bid_dt = m.a_bid * dt
    a_ask_dt = m.a_ask * dt
    sd = sigma * sqrt_dt
    return Consts(m.s0, sigma * sqrt_dt, sigma * sigma * dt, m.n_steps, dt, sigma * sigma,
                  a_bid_dt, a_ask_dt, np.log(a_bid_dt), np.log(a_ask_dt), m.k_bid, m.k_ask,
                  m.poisson, m.max_inv, m.q0, m.tick, m.binomial, p.impact.half_spread,
                  p.impact.eta, p.impact.nu, p.reward.maker_fee, p.reward.taker_fee,
                  1.0 / m.max_inv, 1.0 / m.n_steps, 1.0 / sd if sd > 0.0 else 0.0,
                  m.adverse_jump)


@njit(cache=True, inline="always")
def market_step(tr, st, p, c, qc, actions, work, i, mid_process, mid_consts, pen_dt, sized):
    """Steps 0-4 of the module docstring for row ``i``.

    Args:
        tr, st: the track and the :class:`State`. p: the parameter record. c: :class:`Consts`.
        qc: the action's :class:`~mmgym.sim.quotes.QuoteConsts`. actions, work: the step's actions
            and work arrays. i: the row.
        mid_process: ``mid_process(mid_consts, s, r0, r1) -> (dS, noise, r0, r1)``, the mid's
            move from ``s`` and the stream state, and its zero-mean part given everything known
            before the draw (``dS`` minus its conditional mean: the Outcome's ``ds_noise``); a
            scenario swaps it (:mod:`mmgym.scenarios.ou`). The jump on fill
            (``market.adverse_jump``) is added after it, whatever the mid process; it is known
            once the fills are, so it is not noise.
        mid_consts: the mid process's parameters.
        pen_dt: the running penalty's time factor of this step
            (:func:`mmgym.sim.ledger.penalty_time`; ``dt`` on this market).

    Returns:
        sized: ``action.quote_size`` > 0, a constant of each kernel: the scenario has two entry
            kernels, ``step`` (one lot, the rule without sizes) and ``step_sized``, and the market
            binds the one its config needs (``Scenario.sized_step_kernel``), so each compiles
            only when used (a per-row branch here cost ~3 % of the kernel's env-steps/s; one
            kernel holding both copies of the row loop made a cold compile several times longer:
            docs/SCENARIOS.md, "Quote sizes").

    Returns:
        The step's :class:`~mmgym.sim.ledger.Outcome` (fills in lots), and for ``post_step``
        ``(bid lots shown, ask lots shown)``.
    """
    s = st.mid[i]
    q = st.inventory[i]
    cash = st.cash[i]
    w_before = cash + q * s
    r0 = tr.rng[i, 0]
    r1 = tr.rng[i, 1]
    # 0. hedge
    s, q, cash, v, impact_cost, taker = almgren_chriss_hedge(
        s, q, cash, action_hedge(actions, i, qc), c.q_max, c.half_spread, c.eta, c.nu,
        c.taker_fee)
    # 1. quotes from the post-hedge state
    tau = (c.n_steps - tr.step[i]) * c.dt
    d_bid, d_ask, gamma, skew = action_depths(actions, i, qc, q, c.sig2, tau, work.gam,
                                              work.l_bid, work.l_ask)
    bid, ask, d_bid, d_ask = round_to_tick(s, d_bid, d_ask, c.tick)
    # 2./3. fills (fb, fa: lots), the sizes clipped to the bound
    if not sized:  # one lot per side (the hot path: the pre-size rule, unchanged)
        fb, fa, quote_bid, quote_ask, r0, r1 = exponential_fills(
            q, d_bid, d_ask, c.q_max, c.poisson, c.a_bid_dt, c.a_ask_dt, c.ln_a_bid_dt,
            c.ln_a_ask_dt, c.k_bid, c.k_ask, r0, r1)
        ev_b = fb
        ev_a = fa
        show_b = np.int64(quote_bid)
        show_a = np.int64(quote_ask)
    else:
        lots_b, lots_a = action_lots(actions, i, qc)
        fb, fa, show_b, show_a, r0, r1 = exponential_fills_sized(
            q, d_bid, d_ask, lots_b, lots_a, c.q_max, c.poisson, c.a_bid_dt, c.a_ask_dt,
            c.ln_a_bid_dt, c.ln_a_ask_dt, c.k_bid, c.k_ask, r0, r1)
        quote_bid = show_b > 0
        quote_ask = show_a > 0
        ev_b = np.int64(fb > 0)
        ev_a = np.int64(fa > 0)
    # 4. cash and inventory at the quoted prices, then the mid moves (and jumps once per fill event)
    cash += fa * ask - fb * bid
    q += fb - fa
    maker = c.maker_fee * (fb + fa)
    cash -= maker
    ds, noise, r0, r1 = mid_process(mid_consts, s, r0, r1)
    ds += jump_on_fill(c.jump, ev_b, ev_a)
    tr.rng[i, 0] = r0
    tr.rng[i, 1] = r1
    s_new = s + ds
    st.mid[i] = s_new
    st.cash[i] = cash
    st.inventory[i] = q
    w_after = cash + q * s_new
    return Outcome(w_after - w_before, impact_cost, maker + taker, q, ds, w_after - tr.wealth0[i],
                   bid, ask, quote_bid, quote_ask, d_bid, d_ask, gamma, skew, v, fb, fa, s,
                   ask - bid, pen_dt, noise), (show_b, show_a)


@njit(cache=True, inline="always")
def brownian(c, s, r0, r1):
    """The intensity market's mid process (:func:`mmgym.sim.processes.brownian_mid`): all noise."""
    ds, r0, r1 = brownian_mid(c.sigma_sqrt_dt, c.binomial, r0, r1)
    return ds, ds, r0, r1


@njit(cache=True, inline="always")
def intensity_market_step(tr, st, p, c, qc, actions, work, i):
    """The intensity market's step: :func:`market_step` with the Brownian mid."""
    return market_step(tr, st, p, c, qc, actions, work, i, brownian, c, c.dt, False)


@njit(cache=True, inline="always")
def intensity_market_step_sized(tr, st, p, c, qc, actions, work, i):
    """:func:`intensity_market_step` with quote sizes (``action.quote_size`` > 0)."""
    return market_step(tr, st, p, c, qc, actions, work, i, brownian, c, c.dt, True)


@njit(cache=True, inline="always")
def no_post_step(tr, st, p, c, i, o, x, out):
    """Nothing beyond the ledger's columns (without quote sizes: the size columns stay 0 and are
    not in ``info``)."""


@njit(cache=True, inline="always")
def post_step_sized(tr, st, p, c, i, o, x, out):
    """With ``action.quote_size`` > 0: the quoted sizes' aux columns (``x`` from
    :func:`market_step`)."""
    out.aux[i, AUX_SIZE_BID] = x[0]
    out.aux[i, AUX_SIZE_ASK] = x[1]


@njit(cache=True, inline="always")
def write_obs(row, st, p, c, i, out_obs):
    """The observation row (``mmgym.sim.ledger.OBS`` layout, :class:`MarketMakingEnv` table);
    ``row``: the row's :class:`~mmgym.sim.skeleton.TrackRow`."""
    vol = min(10.0, np.sqrt(row.vol_var) * c.inv_sd)
    ret = min(10.0, max(-10.0, row.mid_ret * c.inv_sd))
    # one tuple stored by a loop: LLVM packs the six float32 stores
    # fills are lots with action.quote_size; the feature is the fill event (0 or 1)
    o = (st.inventory[i] * c.inv_q_max, (c.n_steps - row.step) * c.inv_n_steps, vol,
         float(min(row.fill_bid, 1)), float(min(row.fill_ask, 1)), ret)
    for j in range(6):
        out_obs[i, j] = o[j]


@njit(cache=True, inline="always")
def reset_row(tr, st, p, c, i):
    """mid = s0, cash = 0, q = q0; no random draws."""
    st.mid[i] = c.s0
    st.cash[i] = 0.0
    st.inventory[i] = c.q0
    return reset_track(tr, i, c.var0, c.q0 * c.s0)


# ----------------------------------------------------------------------------- kernels ---
@entry
def step(tr, st, params, actions, out, work, lo, hi):
    """Step rows ``lo:hi`` (module docstring) and autoreset finished ones.

    Returns:
        -1, or the first row whose action is NaN or infinite (nothing is stepped then).
    """
    bad = first_bad_row(actions)
    if bad >= 0:
        return bad
    step_rows(tr, st, params[0], actions, out, work, lo, hi, prepare, intensity_market_step,
              no_post_step, write_obs, reset_row)
    return -1


@entry
def step_sized(tr, st, params, actions, out, work, lo, hi):
    """:func:`step` with quote sizes (``action.quote_size`` > 0; serial only)."""
    bad = first_bad_row(actions)
    if bad >= 0:
        return bad
    step_rows(tr, st, params[0], actions, out, work, lo, hi, prepare, intensity_market_step_sized,
              post_step_sized, write_obs, reset_row)
    return -1


@njit(cache=True, parallel=True)
def step_parallel(tr, st, params, actions, out, work, lo, hi):
    """:func:`step` over chunks of 1024 rows spread on the cores (``numba.prange``); same results."""
    bad = first_bad_row(actions)
    if bad >= 0:
        return bad
    n_chunks = (hi - lo + 1023) // 1024
    for c in prange(n_chunks):
        a = lo + c * 1024
        step(tr, st, params, actions, out, work, a, min(hi, a + 1024))
    return -1


@entry
def reset(mask, tr, st, params, out):
    """Reset the rows where ``mask`` is true and write their observations."""
    reset_rows(mask, tr, st, params[0], out, prepare, write_obs, reset_row)


# ------------------------------------------------------------------------ declaration ---
class IntensityScenario(Scenario):
    """The intensity market (module docstring)."""

    id = ENV_ID
    aux = AUX_COLUMNS
    params_dtype = PARAMS_DTYPE
    state_fields = ("mid", "cash", "inventory", "step", "vol_var", "mid_ret", "wealth0")
    per_asset_fields = ("mid", "inventory")
    step_kernel = staticmethod(step)
    sized_step_kernel = staticmethod(step_sized)
    reset_kernel = staticmethod(reset)
    parallel_kernel = staticmethod(step_parallel)
    dp_exact = True
    audit = True

    def pack(self, config, raw_depths=False):
        return pack(config, raw_depths)

    def new_state(self, config, num_envs, rng):
        return new_state(config, num_envs)

    def observation_space(self, config):
        return observation_space()

    def unused_aux(self, config, raw_depths=False):
        unused = set(super().unused_aux(config, raw_depths))
        if config.action.quote_size == 0:
            unused |= {"size_bid", "size_ask"}
        return frozenset(unused)


def observation_space() -> spaces.Box:
    """Box of the intensity market's observation (table in :class:`MarketMakingEnv`)."""
    low = np.array([-1.0, 0.0, 0.0, 0.0, 0.0, -10.0], dtype=np.float32)
    high = np.array([1.0, 1.0, 10.0, 1.0, 1.0, 10.0], dtype=np.float32)
    return spaces.Box(low, high, dtype=np.float32)


SCENARIO = IntensityScenario()


# ---------------------------------------------------------------------------- the envs ---
class MarketMakingEnv(ScenarioEnv):
    r"""Market making in the intensity market of Avellaneda & Stoikov (2008) and Cartea, Jaimungal
    & Penalva (2015, ch. 10).

    ## Description

    The agent quotes a bid and an ask around a mid price that follows an arithmetic Brownian
    motion. Each side fills at most one lot per step with a probability that decays exponentially
    in the quote's depth, ``p = min(1, A e^{-k delta} dt)`` (the AS 2008 simulation rule,
    ``market.fill_rule: linear``) or ``1 - exp(-A e^{-k delta} dt)`` (``poisson``). The agent is
    paid the change in marked-to-market wealth, minus a running inventory penalty and a terminal
    penalty. One step, of length ``dt``, in order:

    0. (hedge dimension only) a market order of v lots executes at mid +- (h + eta|v|) and moves
       the mid by nu v (Almgren & Chriss 2000, linear temporary and permanent impact);
    1. quotes bid = mid - delta_b, ask = mid + delta_a from the state at the start of the step,
       rounded away from the mid to ``market.tick_size`` if it is positive;
    2. each side fills independently, one lot at most;
    3. a side whose fill would take |q| above ``market.max_inventory`` does not quote;
    4. cash and inventory change at the quoted prices, then
       mid += sigma sqrt(dt) Z + xi (F_ask - F_bid)
       (Z ~ N(0,1), or +-1 w.p. 1/2 with ``market.mid_noise: binomial``; F_bid, F_ask in {0, 1} our
       own fills this step and xi = ``market.adverse_jump``, default 0: adverse selection, the jump
       on fill of Guéant, Lehalle & Fernandez-Tapia 2013, sec. 5: our bid fills when the price is
       about to fall, our ask when it is about to rise);
    5. reward (below), with q after the step's fills.

    ## Action Space

    ``Box(-1, 1, (2,))`` (``(3,)`` with ``action.hedge``; two more with ``action.quote_size``),
    rescaled inside the env:

    - ``action.mode: as_hybrid`` (default, the glass box): ``a[0]`` picks the risk aversion
      gamma = exp(ln gamma_min + (a[0]+1)/2 (ln gamma_max - ln gamma_min)); ``a[1]`` a skew
      ``a[1] * skew_max``. Quotes follow AS 2008 eqs. (29)-(30): reservation price
      r = mid - q gamma sigma^2 (T-t) + skew, total spread gamma sigma^2 (T-t) + (2/gamma) ln(1 + gamma/k).
      The chosen gamma and skew are in ``info["gamma"]``, ``info["skew"]``.
    - ``action.mode: offsets``: ``delta = offset_min + (a+1)/2 (offset_max - offset_min)`` per side
      (negative depths cross the mid).
    - hedge (third dimension): a market order of round(a * hedge_max_lots) lots, positive buys,
      clipped to the inventory bound.
    - quote sizes (last two dimensions, bid then ask, with ``action.quote_size`` = m > 0):
      floor((a+1)/2 m + 1/2) lots in 0..m (nearest, halves up); 0 = the side does not quote. The
      kernel clips them to the room the bound leaves (bid min(lots, Q - q), ask min(lots, Q + q)); a
      fill takes the whole size with the side's usual probability (it does not depend on the size),
      the maker fee is per lot and the jump on fill comes once per fill event. ``info["size_bid"]``,
      ``info["size_ask"]``: the lots shown; ``info["fill_bid"]``, ``info["fill_ask"]``: lots filled.

    ## Observation Space

    ``Box(float32, (6,))``; later scenarios append features after these and keep this layout.

    | Num | Observation                 | Normalisation                          | Range      |
    |-----|-----------------------------|----------------------------------------|------------|
    | 0   | inventory q                 | q / max_inventory                      | [-1, 1]    |
    | 1   | time remaining              | (T - t) / T                            | [0, 1]     |
    | 2   | realised volatility         | EWMA std of mid changes / (sigma sqrt(dt)), half-life ``observation.vol_halflife``, clipped | [0, 10] |
    | 3   | last step's bid fill        | 0 or 1 (a fill event, whatever its lots) | {0, 1}   |
    | 4   | last step's ask fill        | 0 or 1 (idem)                          | {0, 1}     |
    | 5   | last mid change             | dS / (sigma sqrt(dt)), clipped         | [-10, 10]  |

    dS is the mid's whole change over the step: with ``market.adverse_jump`` it includes the jump on
    our fills, so the realised volatility (2) measures diffusion and jumps together, as a user of the
    market would.

    ## Rewards

    The reward is ``d(cash + q mid) - phi q^2 dt - [last step] alpha q_T^2 - dampening``; every
    term is in ``info`` and the terms sum to the reward:

    - ``pnl``: wealth change before market-order costs and fees (spread capture + revaluation,
      including the revaluation of the post-fill inventory by the jump on fill, ``q xi (F_a - F_b)``).
    - ``impact``: ``-|v| (h + eta |v|)``, market orders against the pre-trade mid
      (``impact.half_spread``, ``impact.eta``).
    - ``fees``: ``-(maker_fee * fills + taker_fee * |v|)`` (``reward.maker_fee``, ``reward.taker_fee``).
    - ``inventory_penalty``: ``-phi q^2 dt`` (``reward.inventory_penalty``; CJP 2015 eq. 10.2).
    - ``terminal_penalty``: ``-alpha q_T^2`` on the last step (``reward.terminal_penalty``).
    - ``dampening``: ``-max(0, eta q dS)`` (``reward.dampening``; Spooner et al. 2018; dS includes
      the jump on fill).
    - ``utility``: with ``reward.objective: cara``, the wealth increments are replaced by the
      terminal utility (1 - exp(-g W_T)) / g of the episode's wealth change (``reward.cara_gamma``;
      the exponent is capped at 700 so that the reward stays finite).

    ## Starting State

    mid = ``market.s0``, cash = 0, q = ``market.q0``, t = 0. No random draws at reset.

    ## Episode End

    Terminated after ``round(horizon / dt)`` steps (the horizon is part of the problem: the
    terminal penalty applies and time remaining is observed). Never truncated.

    ## Arguments

    ``gym.make("mmgym/MarketMaking-v0", config=None, render_mode=None, **overrides)``: ``config`` is
    a YAML path, a mapping or an :class:`~mmgym.config.EnvConfig`; ``overrides`` are section mappings
    (``market={"sigma": 3}``) or flat keys of a section (``sigma=3``, ``inventory_penalty=0.2``).

    ## Version History

    - v0: initial version.
    """

    scenario_id = ENV_ID


class MarketMakingVectorEnv(ScenarioVectorEnv):
    """``gym.make_vec("mmgym/MarketMaking-v0", num_envs=N, vectorization_mode="vector_entry_point")``.

    N markets of :class:`MarketMakingEnv` stepped in one numba call, with SAME_STEP autoreset.
    Env i reset with seed s reproduces a single env reset with seed s + i.
    """

    scenario_id = ENV_ID

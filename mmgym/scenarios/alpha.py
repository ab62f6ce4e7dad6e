r"""``mmgym/AlphaMarketMaking-v0``: informed order flow and short-term alpha.

Cartea, Jaimungal & Penalva (2015, "Algorithmic and High-Frequency Trading", sec. 10.4) let market
orders carry information: the mid drifts at a rate alpha, ``dS = alpha dt + sigma dW``, and every
market buy pushes alpha up by epsilon, every market sell down by epsilon, while alpha reverts to 0
(``d alpha = -zeta alpha dt + eps dM^+ - eps dM^-``). A market maker who sees alpha skews towards it;
one who does not is picked off: a buy market order that lifts our ask is followed by an upward drift.

This module discretises the model so that the exact DP (:mod:`mmgym.baselines.optimal`, "Arrival
classes") stays exact (issue 9, scenario 2). Differences from CJP sec. 10.4, all deliberate:

- market orders arrive per step with probability ``p_B = min(1, lambda_buy dt)`` and
  ``p_S = min(1, lambda_sell dt)`` (at most one per side and step, the AS 2008 linear rule);
- an arriving order fills our quote on its side with probability ``min(1, e^{-k delta})`` (our
  depth's exponential decay, AS 2008 eq. 2 with A = lambda), so for ``lambda dt <= 1`` and
  ``delta >= 0`` the fill probability ``lambda dt e^{-k delta}`` is the intensity market's linear
  rule with ``A = lambda``; CJP sec. 10.4 post at the touch or not, we quote any depth;
- alpha lives on the lattice ``{-m, .., m} eps`` (``alpha.notches`` = m): each buy order moves it up
  one notch, each sell order down one (clipped to +-m), and then it moves one notch towards 0 with
  probability ``zeta dt``. This is a constant-speed reversion (``E[d|alpha|] = -zeta eps dt`` away
  from 0), not CJP's proportional ``-zeta alpha dt``, and alpha has no diffusive part (CJP's eta dW):
  the issue's binding text, which keeps alpha on a finite lattice.

**One step**, for a row with notch ``n_t`` (``alpha_t = n_t eps``):

0.-1. hedge and quotes as the intensity market (:mod:`mmgym.scenarios.intensity`);
2. a buy market order arrives iff ``U_B < p_B``, a sell iff ``U_S < p_S`` (two uniforms from the
   row's stream, drawn first); the buy order fills our ask iff it arrived and ``E_a > k_a delta_a``,
   the sell our bid iff it arrived and ``E_b > k_b delta_b`` (the intensity market's two exponential
   variates with ``A dt`` replaced by the arrival indicator: probability ``min(1, e^{-k delta})``);
3. a side whose fill would breach the inventory bound does not quote;
4. cash and inventory change at the quoted prices, then ``mid += alpha_t dt + sigma sqrt(dt) Z``
   (the step-start drift);
5. reward (the ledger's, unchanged);
6. the notch moves: ``n <- clip(n_t + B - S, -m, m)``, then, if ``n != 0`` and ``U_z < zeta dt``
   (one more uniform, drawn every step), ``n <- n - sign(n)``.

Draws per step, in order: U_B, U_S, E_b, E_a, Z, U_z, whatever the action (common random numbers
hold). ``market.A``/``A_bid``/``A_ask`` are the nominal intensities of the analytic baselines and
the as_hybrid action; ``alpha.lambda_buy``/``lambda_sell`` default to them (the buy order hits our
ask: ``lambda_buy`` defaults to ``market.A_ask``).
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import numpy as np
from gymnasium import spaces
from numba import njit
from pydantic import Field, model_validator

from ..envs.base import ScenarioEnv, ScenarioVectorEnv
from ..schema import EnvConfig, Section
from ..sim.jit import entry
from ..sim.ledger import OBS, penalty_time
from ..sim.processes import brownian_mid
from ..sim.quotes import first_bad_row
from ..sim.rng import to_unit, xoroshiro_next
from ..sim.skeleton import reset_rows, step_rows
from . import intensity
from .base import ArrivalTable, DriverSpec, RegimeTable, edge_bins

ENV_ID = "mmgym/AlphaMarketMaking-v0"

#: The largest lattice half-width m (the DP's state has 2m + 1 notches).
M_MAX = 50


# ------------------------------------------------------------------------------ config ---
class AlphaConfig(Section):
    """The informed flow of ``mmgym/AlphaMarketMaking-v0`` (module docstring)."""

    lambda_buy: float | None = Field(None, gt=0.0)
    """Rate of buy market orders (per time unit; they hit our ask). None: ``market.A_ask``'s value.
    ``lambda_buy * market.dt`` must be <= 1."""
    lambda_sell: float | None = Field(None, gt=0.0)
    """Rate of sell market orders (per time unit; they hit our bid). None: ``market.A_bid``'s value."""
    notches: int = Field(10, ge=1, le=M_MAX)
    """m: alpha lives on {-m, .., m} * epsilon."""
    epsilon: float = Field(12.0, ge=0.0)
    """Drift per notch (price units per time unit): alpha = notch * epsilon."""
    zeta: float = Field(30.0, ge=0.0)
    """Rate (per time unit) at which alpha moves one notch towards 0: probability zeta dt per step."""
    observe_alpha: bool = True
    """True: alpha / (m epsilon) is in the observation; False: hidden (the flow still is)."""


class AlphaEnvConfig(EnvConfig):
    """The env config of ``mmgym/AlphaMarketMaking-v0``: the intensity market's sections plus
    ``alpha``."""

    id: Literal["mmgym/AlphaMarketMaking-v0"] = ENV_ID
    """Registered environment id."""
    alpha: AlphaConfig = Field(default_factory=AlphaConfig)
    """The informed order flow."""

    @model_validator(mode="after")
    def _check_alpha(self) -> AlphaEnvConfig:
        m, g = self.market, self.alpha
        lam_b, lam_s = rates(self)
        for key, lam in (("lambda_buy", lam_b), ("lambda_sell", lam_s)):
            if lam * m.dt > 1.0 + 1e-12:
                src = f"alpha.{key}" if getattr(g, key) is not None else \
                    f"alpha.{key} (default market.{'A_ask' if key == 'lambda_buy' else 'A_bid'})"
                raise ValueError(f"{src} = {lam:g} with market.dt = {m.dt:g}: lambda*dt = {lam * m.dt:g} > 1 "
                                 "(at most one market order per side and step)")
        if g.zeta * m.dt > 1.0 + 1e-12:
            raise ValueError(f"alpha.zeta = {g.zeta:g} with market.dt = {m.dt:g}: zeta*dt = "
                             f"{g.zeta * m.dt:g} > 1 (a probability per step)")
        if m.fill_rule != "linear":
            raise ValueError(f"market.fill_rule = {m.fill_rule!r}: the alpha scenario's fills are "
                             "min(1, e^(-k delta)) per arriving market order (use 'linear')")
        if m.adverse_jump != 0.0:
            raise ValueError(f"market.adverse_jump = {m.adverse_jump:g}: not supported with informed "
                             "flow (its adverse selection is the drift alpha); set it to 0")
        if m.tick_size != 0.0:
            raise ValueError(f"market.tick_size = {m.tick_size:g}: the drifting mid leaves the tick grid, "
                             "which the exact DP does not track; set it to 0")
        return self


def rates(config) -> tuple[float, float]:
    """``(lambda_buy, lambda_sell)``: the alpha section's, or the market's A_ask, A_bid."""
    a_bid, a_ask, _, _ = config.market.side_params()
    g = config.alpha
    return (float(a_ask if g.lambda_buy is None else g.lambda_buy),
            float(a_bid if g.lambda_sell is None else g.lambda_sell))


def arrival_probs(config) -> tuple[float, float, float]:
    """Per-step ``(p_B, p_S, p_z)``: ``min(1, lambda dt)`` per side and ``min(1, zeta dt)``."""
    lam_b, lam_s = rates(config)
    dt = config.market.dt
    return min(1.0, lam_b * dt), min(1.0, lam_s * dt), min(1.0, config.alpha.zeta * dt)


def notch_step(n: int, buy: int, sell: int, decay: bool, m: int) -> int:
    """Rule 6 of the module docstring in plain Python (the DP's transition and the docs' rule):
    ``clip(n + B - S, -m, m)``, then one notch towards 0 if ``decay``."""
    n = max(-m, min(m, n + buy - sell))
    if decay and n != 0:
        n -= 1 if n > 0 else -1
    return n


# ------------------------------------------------------------------------------- the DP ---
def dp_tables(config: AlphaEnvConfig) -> tuple[RegimeTable, ArrivalTable]:
    """The notch lattice as the DP's regimes (index ``n + m``) and the four arrival classes
    ``(B, S)`` in {(0,0), (1,0), (0,1), (1,1)} (:mod:`mmgym.baselines.optimal`, "Arrival classes").

    Class (B, S) has probability ``p_B^B (1-p_B)^{1-B} p_S^S (1-p_S)^{1-S}`` in every notch; the
    sell order (S) opens our bid, the buy order (B) our ask; from notch n it leads to
    ``clip(n + B - S)`` and, w.p. ``zeta dt``, one notch nearer 0 (:func:`notch_step`). The fill
    probability is ``min(p, p e^{-k delta})`` (c = cap = the arrival probability), the expected
    drift ``n eps dt``.
    """
    m_cfg, g = config.market, config.alpha
    m = g.notches
    n_r = 2 * m + 1
    p_b, p_s, p_z = arrival_probs(config)
    classes = ((0, 0), (1, 0), (0, 1), (1, 1))
    prob_c = np.array([(p_b if b else 1.0 - p_b) * (p_s if s else 1.0 - p_s) for b, s in classes])
    trans = np.zeros((n_r, 4, n_r))
    for r in range(n_r):
        for c, (b, s) in enumerate(classes):
            stay = notch_step(r - m, b, s, False, m)
            move = notch_step(r - m, b, s, True, m)
            trans[r, c, move + m] += p_z
            trans[r, c, stay + m] += 1.0 - p_z
    prob = np.broadcast_to(prob_c, (n_r, 4)).copy()
    _, _, k_bid, k_ask = m_cfg.side_params()
    lam_b, lam_s = rates(config)
    ones = np.ones(n_r)
    p_mat = np.einsum("rc,rcs->rs", prob, trans)
    tab = RegimeTable(m_cfg.sigma * ones, lam_s * ones, lam_b * ones, float(k_bid) * ones,
                      float(k_ask) * ones, np.zeros(n_r), p_mat, m)
    drift = (np.arange(n_r) - m) * g.epsilon * m_cfg.dt
    arr = ArrivalTable(prob, np.array([0.0, 0.0, 1.0, 1.0]), np.array([0.0, 1.0, 0.0, 1.0]), trans,
                       p_s * ones, p_b * ones, p_s * ones, p_b * ones, drift)
    return tab, arr


# -------------------------------------------------------------------------- parameters ---
OBS_HIDDEN = OBS.extend([
    ("mo_flow", "last step's market-order flow B - S in {-1, 0, 1} (buys minus sells)"),
])
OBS_COLUMNS = OBS_HIDDEN.extend([
    ("alpha", "alpha_{t} / (m epsilon) = notch / m, in [-1, 1] (observe_alpha only)"),
])
O_FLOW = OBS_COLUMNS["mo_flow"]
O_ALPHA = OBS_COLUMNS["alpha"]

#: The alpha component of the parameter record.
ALPHA_DTYPE = np.dtype([
    ("p_buy", np.float64),  # min(1, lambda_buy dt)
    ("p_sell", np.float64),  # min(1, lambda_sell dt)
    ("p_decay", np.float64),  # min(1, zeta dt)
    ("m", np.int64),  # notches
    ("eps_dt", np.float64),  # drift per notch per step, eps dt
    ("inv_m", np.float64),  # 1 / m
    ("observe", np.bool_),  # alpha in the observation
])

PARAMS_DTYPE = np.dtype(intensity.PARAMS_DTYPE.descr + [("alpha", ALPHA_DTYPE)])


def pack(config: AlphaEnvConfig, raw_depths: bool = False) -> np.ndarray:
    """The parameter record: the intensity market's, plus the alpha component."""
    p = intensity.pack_into(config, raw_depths, PARAMS_DTYPE)
    p_b, p_s, p_z = arrival_probs(config)
    g = p["alpha"][0]
    g["p_buy"] = p_b
    g["p_sell"] = p_s
    g["p_decay"] = p_z
    g["m"] = config.alpha.notches
    g["eps_dt"] = config.alpha.epsilon * config.market.dt
    g["inv_m"] = 1.0 / config.alpha.notches
    g["observe"] = config.alpha.observe_alpha
    return p


class State(NamedTuple):
    """Per-row state: the intensity market's, plus the drift's notch and the last flow.

    Attributes:
        mid: (N, K) float64. cash: (N,) float64. inventory: (N, K) int64.
        notch: (N,) int64, n_t in [-m, m] (alpha_t = n_t eps). flow: (N,) int64, last step's B - S.
    """

    mid: np.ndarray
    cash: np.ndarray
    inventory: np.ndarray
    notch: np.ndarray
    flow: np.ndarray


def new_state(config, num_envs: int) -> State:
    """The state of ``num_envs`` markets (reset fills it)."""
    base = intensity.new_state(config, num_envs)
    return State(base.mid, base.cash, base.inventory, np.zeros(num_envs, dtype=np.int64),
                 np.zeros(num_envs, dtype=np.int64))


# --------------------------------------------------------------------------- processes ---
@njit(cache=True, inline="always")
def prepare(p):
    """The intensity market's constants and the alpha record."""
    return intensity.prepare(p), p.alpha


@njit(cache=True, inline="always")
def drift_mid(mc, s, r0, r1):
    """``alpha_t dt + sigma sqrt(dt) Z``; ``mc = (sigma sqrt(dt), binomial, alpha_t dt)``. The
    noise is ``sigma sqrt(dt) Z`` (alpha_t is known before the draw)."""
    ds, r0, r1 = brownian_mid(mc[0], mc[1], r0, r1)
    return mc[2] + ds, ds, r0, r1


@njit(cache=True, inline="always")
def market_step(tr, st, p, c, qc, actions, work, i):
    """Rules 0-4: draw the two arrivals, then the intensity market's step with each side's
    ``A dt`` replaced by its arrival indicator (fill iff ``E > k delta``) and the drifting mid.
    Returns the outcome and the flow ``B - S`` for :func:`post_step`."""
    c0 = c[0]
    g = c[1]
    r0 = tr.rng[i, 0]
    r1 = tr.rng[i, 1]
    bits, r0, r1 = xoroshiro_next(r0, r1)
    buy = to_unit(bits) < g.p_buy
    bits, r0, r1 = xoroshiro_next(r0, r1)
    sell = to_unit(bits) < g.p_sell
    tr.rng[i, 0] = r0
    tr.rng[i, 1] = r1
    # the sell order meets our bid, the buy order our ask
    on_b = 1.0 if sell else 0.0
    on_a = 1.0 if buy else 0.0
    ln_b = 0.0 if sell else -np.inf
    ln_a = 0.0 if buy else -np.inf
    ac = intensity.Consts(
        c0.s0, c0.sigma_sqrt_dt, c0.var0, c0.n_steps, c0.dt, c0.sig2, on_b, on_a, ln_b, ln_a,
        c0.k_bid, c0.k_ask, False, c0.q_max, c0.q0, c0.tick, c0.binomial, c0.half_spread, c0.eta,
        c0.nu, c0.maker_fee, c0.taker_fee, c0.inv_q_max, c0.inv_n_steps, c0.inv_sd, 0.0)
    # risk_penalty: variance: Var_t(dS) = sigma^2 dt (the drift is known at the step's start), so
    # the running penalty's time factor is dt in both modes
    pen_dt = penalty_time(p.reward.variance_penalty, c0.dt, 1.0, 0.0)
    o, _ = intensity.market_step(tr, st, p, ac, qc, actions, work, i, drift_mid,
                                 (c0.sigma_sqrt_dt, c0.binomial, st.notch[i] * g.eps_dt), pen_dt,
                                 False)
    return o, np.int64(buy) - np.int64(sell)


@njit(cache=True, inline="always")
def post_step(tr, st, p, c, i, o, x, out):
    """Rule 6: the notch moves by the flow ``x = B - S`` (clipped), then one notch towards 0 with
    probability zeta dt (one uniform, drawn every step)."""
    g = c[1]
    n = st.notch[i] + x
    if n > g.m:
        n = g.m
    elif n < -g.m:
        n = -g.m
    r0 = tr.rng[i, 0]
    r1 = tr.rng[i, 1]
    bits, r0, r1 = xoroshiro_next(r0, r1)
    tr.rng[i, 0] = r0
    tr.rng[i, 1] = r1
    if n != 0 and to_unit(bits) < g.p_decay:
        n += -1 if n > 0 else 1
    st.notch[i] = n
    st.flow[i] = x


@njit(cache=True, inline="always")
def write_obs(row, st, p, c, i, out_obs):
    """The intensity market's six features, the last flow, then alpha / (m eps) when observed."""
    intensity.write_obs(row, st, p, c[0], i, out_obs)
    g = c[1]
    out_obs[i, O_FLOW] = float(st.flow[i])
    if g.observe:
        out_obs[i, O_ALPHA] = st.notch[i] * g.inv_m


@njit(cache=True, inline="always")
def reset_row(tr, st, p, c, i):
    """As the intensity market (mid = s0, cash = 0, q = q0), notch 0, flow 0; no draws."""
    st.notch[i] = 0
    st.flow[i] = 0
    return intensity.reset_row(tr, st, p, c[0], i)


# ----------------------------------------------------------------------------- kernels ---
@entry
def step(tr, st, params, actions, out, work, lo, hi):
    """Step rows ``lo:hi`` and autoreset finished ones; -1, or the first non-finite action's row."""
    bad = first_bad_row(actions)
    if bad >= 0:
        return bad
    step_rows(tr, st, params[0], actions, out, work, lo, hi, prepare, market_step, post_step,
              write_obs, reset_row)
    return -1


@entry
def reset(mask, tr, st, params, out):
    """Reset the rows where ``mask`` is true and write their observations."""
    reset_rows(mask, tr, st, params[0], out, prepare, write_obs, reset_row)


# ------------------------------------------------------------------------ declaration ---
ORACLE_LABEL = "oracle (sees the hidden alpha: full information, an upper bound)"

#: ``gym.make(ENV_ID)``'s config: configs/alpha.yaml's env section (see its comments: CJP 2015
#: sec. 10.4's example in minutes and cents); the alpha section's defaults are the same values.
DEFAULTS = {
    "market": {"s0": 10000.0, "sigma": 3.87, "A": 50.0, "k": 1.0, "dt": 0.005, "horizon": 1.0,
               "max_inventory": 20},
    "reward": {"inventory_penalty": 0.6, "terminal_penalty": 0.1},
}


class AlphaScenario(intensity.IntensityScenario):
    """The intensity market with informed order flow (module docstring)."""

    id = ENV_ID
    config_class = AlphaEnvConfig
    defaults = DEFAULTS
    obs = OBS_COLUMNS
    params_dtype = PARAMS_DTYPE
    state_fields = intensity.IntensityScenario.state_fields + ("notch", "flow")
    step_kernel = staticmethod(step)
    sized_step_kernel = None  # quote sizes are not supported here (BatchMarket refuses them)
    reset_kernel = staticmethod(reset)
    parallel_kernel = None
    default_baselines = ("as", "glft", "as_tuned", "glft_drift", "optimal")
    dp_exact = True
    audit = False

    def pack(self, config, raw_depths=False):
        return pack(config, raw_depths)

    def new_state(self, config, num_envs, rng):
        return new_state(config, num_envs)

    def obs_columns(self, config):
        return OBS_COLUMNS if config.alpha.observe_alpha else OBS_HIDDEN

    def dp_regimes(self, config):
        return dp_tables(config)[0]

    def dp_arrivals(self, config):
        from ..config import ConfigError

        if config.reward.dampening != 0.0:
            raise ConfigError(f"optimal: reward.dampening = {config.reward.dampening:g} is not covered "
                              "by the alpha scenario's DP (the drift makes E[max(0, q dS)] sign-dependent); set it to 0")
        return dp_tables(config)[1]

    def dp_state(self, market):
        return market.field("notch") + market.config.alpha.notches

    def optimal_label(self, config):
        return None if config.alpha.observe_alpha else ORACLE_LABEL

    def driver(self, config):
        """The notch n_t before the step (alpha_t = n_t eps); one bin per notch, ``n-m`` .. ``nm``."""
        g = config.alpha
        m = g.notches
        seen = "observed" if g.observe_alpha else "hidden"
        return DriverSpec(f"alpha notch ({seen})",
                          lambda market: market.field("notch").astype(np.float64),
                          tuple(f"n{n}" for n in range(-m, m + 1)), edge_bins(np.arange(-m, m + 2)),
                          f"alpha = n * {g.epsilon:g} price units per time unit")

    def observation_space(self, config):
        base = intensity.observation_space()
        low = [-1.0, -1.0] if config.alpha.observe_alpha else [-1.0]
        high = [1.0, 1.0] if config.alpha.observe_alpha else [1.0]
        return spaces.Box(np.append(base.low, low).astype(np.float32),
                          np.append(base.high, high).astype(np.float32), dtype=np.float32)


SCENARIO = AlphaScenario()


# ---------------------------------------------------------------------------- the envs ---
class AlphaMarketMakingEnv(ScenarioEnv):
    r"""Market making against informed order flow with a short-term alpha.

    ## Description

    Cartea, Jaimungal & Penalva (2015, sec. 10.4), discretised (module docstring of
    :mod:`mmgym.scenarios.alpha`): market orders arrive on each side with probability
    ``min(1, lambda dt)`` per step and fill our quote on their side with probability
    ``min(1, e^{-k delta})``; the mid drifts at ``alpha = n eps`` per time unit, where the notch n in
    ``[-m, m]`` moves up with every buy order, down with every sell order, and one notch towards 0
    with probability ``zeta dt`` per step. One step, in order:

    0.-1. hedge and quotes as ``mmgym/MarketMaking-v0``;
    2. arrivals (two uniforms) and fills (the two exponentials: fill iff arrived and ``E > k delta``);
    3. the inventory bound;
    4. cash and inventory, then ``mid += alpha_t dt + sigma sqrt(dt) Z``;
    5. reward, as the intensity market's;
    6. ``n <- clip(n + B - S, -m, m)``, then one notch towards 0 w.p. ``zeta dt`` (one uniform).

    ## Action Space

    As ``mmgym/MarketMaking-v0``: ``Box(-1, 1, (2,))`` (``(3,)`` with ``action.hedge``).

    ## Observation Space

    ``Box(float32, (8,))`` with ``alpha.observe_alpha: true``, ``(7,)`` with ``false``: the
    intensity market's six features, then

    | Num | Observation            | Normalisation                             | Range    |
    |-----|------------------------|-------------------------------------------|----------|
    | 6   | market-order flow      | last step's B - S (buys minus sells)      | {-1,0,1} |
    | 7   | alpha (observed only)  | alpha_{t+1} / (m eps) = n / m             | [-1, 1]  |

    ## Rewards

    As ``mmgym/MarketMaking-v0`` (every term in ``info``). ``reward.dampening`` works in the env but
    is not covered by the exact DP.

    ## Starting State

    mid = ``market.s0``, cash = 0, q = ``market.q0``, notch 0, flow 0, t = 0. No random draws at reset.

    ## Episode End

    Terminated after ``round(horizon / dt)`` steps. Never truncated.

    ## Baselines

    ``optimal`` is the exact DP over (t, notch, q) (:mod:`mmgym.baselines.optimal`, "Arrival
    classes"); with ``observe_alpha: false`` it is the **oracle** (it reads the hidden notch).
    ``glft_drift`` quotes GLFT 2013 sec. 5's drift-adjusted closed form at mu = alpha_t (observed
    alpha only). ``as``, ``glft``, ``as_tuned`` ignore alpha; their exact values come from policy
    evaluation over (t, notch, q).

    ## Arguments

    ``gym.make("mmgym/AlphaMarketMaking-v0", config=None, render_mode=None, **overrides)``, with
    ``alpha={"lambda_buy": ..., "lambda_sell": ..., "notches": ..., "epsilon": ..., "zeta": ...,
    "observe_alpha": ...}`` among the overrides.

    ## Version History

    - v0: initial version.
    """

    scenario_id = ENV_ID


class AlphaMarketMakingVectorEnv(ScenarioVectorEnv):
    """``gym.make_vec("mmgym/AlphaMarketMaking-v0", num_envs=N, vectorization_mode="vector_entry_point")``."""

    scenario_id = ENV_ID

r"""``mmgym/RegimeMarketMaking-v0``: the intensity market with Markov volatility regimes.

The intensity market (:mod:`mmgym.scenarios.intensity`) whose volatility sigma, fill intensity A,
its decay k and jump on fill xi are those of a hidden or observed regime ``r`` in ``{0, .., R-1}``,
a continuous-time Markov chain with generator Q (off-diagonal rates ``regimes.rates[r][r']`` per time
unit, ``Q_rr = -sum_{r' != r} Q_rr'``). Regime-switching volatility is Hamilton's (1989, Econometrica
57(2)) model; regime-driven order intensities for a market maker are Campi & Zabaljauregui
(arXiv 1902.01157).

**Transition probabilities.** Over one step the chain moves with ``P = expm(Q dt)`` (Norris 1997,
"Markov Chains", sec. 2.1: ``P(t) = e^{tQ}`` for a finite chain), computed once at pack time by
``scipy.linalg.expm`` (Al-Mohy & Higham 2009 scaling and squaring); rows are renormalised to sum to 1.

**One step**, for a row in regime ``r = r_t`` (the regime the agent sees when ``observed: true``):

0.-4. the intensity market's step with regime r's parameters: fills with
   ``p = min(1, A_r e^{-k_r delta} dt)`` (or the poisson rule) on both sides, then
   ``mid += sigma_r sqrt(dt) Z + xi_r (F_ask - F_bid)``;
5. reward (the ledger's, unchanged: ``-phi q^2 dt`` uses the configured phi, see "Rewards");
6. **regime transition**: one uniform U from the row's stream, drawn after the fill and mid
   variates, every step whatever the action (common random numbers hold):
   ``r_{t+1} = min{j : U < sum_{i <= j} P[r, i]}``. On the episode's last step the draw is made,
   then the row resets to ``regimes.initial``.

So the quotes of step t are chosen knowing r_t (when observed) and the reward of step t depends on
r_t only; the exact DP (:mod:`mmgym.baselines.optimal`) follows this order.

**What stays nominal.** ``market.sigma``, ``market.A``, ``market.k`` are the *reference* parameters:
the as_hybrid action's closed form (AS 2008 eqs. 29-30), the analytic baselines (``as``, ``glft``,
``as_tuned``, ...) and the observation's normalisation (realised volatility / (sigma sqrt(dt))) use
them; the market's dynamics use the regime's. The regime's A and k apply to both sides (the per-side
``market.A_bid``... are not used by the dynamics).
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import numpy as np
from gymnasium import spaces
from numba import njit
from pydantic import Field, model_validator
from scipy.linalg import expm

from ..envs.base import ScenarioEnv, ScenarioVectorEnv
from ..schema import EnvConfig, Section
from ..sim.jit import entry
from ..sim.ledger import OBS, penalty_time, variance_ratio
from ..sim.quotes import first_bad_row
from ..sim.rng import to_unit, xoroshiro_next
from ..sim.skeleton import reset_rows, step_rows
from . import intensity
from .base import DriverSpec, RegimeTable, edge_bins

ENV_ID = "mmgym/RegimeMarketMaking-v0"

#: The largest number of regimes (the parameter record's fixed array size).
R_MAX = 8


# ------------------------------------------------------------------------------ config ---
class RegimesConfig(Section):
    """The Markov regimes of ``mmgym/RegimeMarketMaking-v0`` (module docstring)."""

    sigma: list[float] = Field(default_factory=lambda: [2.0, 5.0])
    """Per-regime volatility sigma_r (price units per sqrt(time unit)), R = len(sigma) <= 8."""
    A: list[float] = Field(default_factory=lambda: [140.0, 100.0])
    """Per-regime fill intensity at depth 0, A_r (> 0), both sides."""
    k: list[float] = Field(default_factory=lambda: [1.5, 0.6])
    """Per-regime decay of the fill intensity, k_r (> 0), both sides."""
    adverse_jump: list[float] | None = None
    """Per-regime jump on fill xi_r (>= 0; None: ``market.adverse_jump`` in every regime)."""
    rates: list[list[float]] = Field(default_factory=lambda: [[0.0, 0.5], [1.5, 0.0]])
    """R x R transition rates per time unit: ``rates[r][r']`` (r' != r, >= 0) is the rate of leaving
    r for r'; the diagonal is ignored (the generator's diagonal is minus the row's sum)."""
    initial: int = Field(0, ge=0)
    """Regime at the start of every episode."""
    observed: bool = True
    """True: the regime is in the observation (one-hot); False: hidden, the agent must infer it."""

    @model_validator(mode="after")
    def _check(self) -> RegimesConfig:
        n = len(self.sigma)
        if not 1 <= n <= R_MAX:
            raise ValueError(f"sigma has {n} entries; 1 to {R_MAX} regimes are supported")
        for key in ("A", "k", "adverse_jump", "rates"):
            val = getattr(self, key)
            if val is not None and len(val) != n:
                raise ValueError(f"{key} has {len(val)} entries, but regimes.sigma has {n} (R)")
        for key, low, strict in (("sigma", 0.0, False), ("A", 0.0, True), ("k", 0.0, True),
                                 ("adverse_jump", 0.0, False)):
            for r, x in enumerate(getattr(self, key) or []):
                if x < low or (strict and x == low):
                    raise ValueError(f"{key}[{r}] = {x:g} must be {'>' if strict else '>='} {low:g}")
        check_chain(self.rates, self.initial, n)
        return self

    @property
    def n_regimes(self) -> int:
        """R."""
        return len(self.sigma)

    def generator(self) -> np.ndarray:
        """The generator Q (R x R): off-diagonal rates, diagonal minus the row sums."""
        return generator(self.rates)

    def transition(self, dt: float) -> np.ndarray:
        """One step's transition matrix ``P = expm(Q dt)`` (module docstring), rows summing to 1."""
        return transition_matrix(self.rates, dt)


def check_chain(rates: list[list[float]], initial: int, n: int) -> None:
    """ValueError unless ``rates`` is R x R with non-negative off-diagonal entries and ``initial``
    is one of the R regimes."""
    if len(rates) != n:
        raise ValueError(f"rates has {len(rates)} entries, expected R = {n}")
    for r, row in enumerate(rates):
        if len(row) != n:
            raise ValueError(f"rates[{r}] has {len(row)} entries, expected R = {n}")
        for j, x in enumerate(row):
            if j != r and x < 0.0:
                raise ValueError(f"rates[{r}][{j}] = {x:g} is negative (rates are >= 0)")
    if initial >= n:
        raise ValueError(f"initial = {initial} is not a regime (0..{n - 1})")


def generator(rates: list[list[float]]) -> np.ndarray:
    """The generator Q (R x R) of off-diagonal ``rates``: diagonal minus the row sums."""
    q = np.array(rates, dtype=np.float64)
    np.fill_diagonal(q, 0.0)
    np.fill_diagonal(q, -q.sum(axis=1))
    return q


def transition_matrix(rates: list[list[float]], dt: float) -> np.ndarray:
    """One step's transition matrix ``P = expm(Q dt)`` (module docstring), rows summing to 1."""
    p = np.clip(expm(generator(rates) * dt), 0.0, None)
    return p / p.sum(axis=1, keepdims=True)


def cumulative_rows(p: np.ndarray) -> np.ndarray:
    """The cumulative rows of P that :func:`next_regime` reads; each row's last entry is 2.0 (a
    uniform U < 1 always lands in the row, no round-off escape)."""
    cum = np.cumsum(p, axis=1)
    cum[:, -1] = 2.0
    return cum


@njit(cache=True, inline="always")
def next_regime(r0, r1, cum, r):
    """Rule 6's transition (module docstring): one uniform U from the stream ``(r0, r1)``,
    ``r' = min{j : U < cum[r, j]}``. Returns (r', r0, r1)."""
    bits, r0, r1 = xoroshiro_next(r0, r1)
    u = to_unit(bits)
    j = 0
    while u >= cum[r, j]:
        j += 1
    return j, r0, r1


class RegimeEnvConfig(EnvConfig):
    """The env config of ``mmgym/RegimeMarketMaking-v0``: the intensity market's sections plus
    ``regimes``."""

    id: Literal["mmgym/RegimeMarketMaking-v0"] = ENV_ID
    """Registered environment id."""
    regimes: RegimesConfig = Field(default_factory=RegimesConfig)
    """The Markov regimes."""


def regime_table(config: RegimeEnvConfig) -> RegimeTable:
    """The config's regimes as arrays."""
    g = config.regimes
    n = g.n_regimes
    xi = [config.market.adverse_jump] * n if g.adverse_jump is None else g.adverse_jump
    a = np.array(g.A, dtype=np.float64)
    k = np.array(g.k, dtype=np.float64)
    return RegimeTable(np.array(g.sigma, dtype=np.float64), a, a.copy(), k, k.copy(),
                       np.array(xi, dtype=np.float64), g.transition(config.market.dt), int(g.initial))


# -------------------------------------------------------------------------- parameters ---
def obs_columns(n_regimes: int):
    """The observed-regime observation: the intensity market's six features, then a one-hot."""
    return OBS.extend([(f"regime_{r}", f"1 if the regime is {r}, else 0") for r in range(n_regimes)])


#: Columns of the largest observation (R_MAX regimes observed); a config uses the first 6 (+ R).
OBS_COLUMNS = obs_columns(R_MAX)
O_REGIME = OBS_COLUMNS["regime_0"]

#: The regime component of the parameter record.
REGIME_DTYPE = np.dtype([
    ("n", np.int64),  # R
    ("initial", np.int64),  # regime at reset
    ("observed", np.bool_),  # one-hot in the observation
    ("sigma_sqrt_dt", np.float64, (R_MAX,)),  # sigma_r sqrt(dt)
    ("a_dt", np.float64, (R_MAX,)),  # A_r dt
    ("ln_a_dt", np.float64, (R_MAX,)),  # ln(A_r dt)
    ("k", np.float64, (R_MAX,)),  # k_r
    ("jump", np.float64, (R_MAX,)),  # xi_r
    ("var_ratio", np.float64, (R_MAX,)),  # (sigma_r / sigma)^2 (risk_penalty: variance)
    ("cum", np.float64, (R_MAX, R_MAX)),  # cumulative rows of P; the last column of a row is 2.0
])

PARAMS_DTYPE = np.dtype(intensity.PARAMS_DTYPE.descr + [("regimes", REGIME_DTYPE)])


def pack(config: RegimeEnvConfig, raw_depths: bool = False) -> np.ndarray:
    """The parameter record: the intensity market's, plus the regime component."""
    p = intensity.pack_into(config, raw_depths, PARAMS_DTYPE)
    tab = regime_table(config)
    n = tab.sigma.size
    dt = config.market.dt
    g = p["regimes"][0]
    g["n"] = n
    g["initial"] = tab.initial
    g["observed"] = config.regimes.observed
    g["sigma_sqrt_dt"][:n] = tab.sigma * np.sqrt(dt)
    g["a_dt"][:n] = tab.a_bid * dt
    g["ln_a_dt"][:n] = np.log(tab.a_bid * dt)
    g["k"][:n] = tab.k_bid
    g["jump"][:n] = tab.xi
    if config.reward.risk_penalty == "variance":
        g["var_ratio"][:n] = variance_ratio(tab.sigma, config.market.sigma)
    else:
        g["var_ratio"][:n] = 1.0
    g["cum"][:n, :n] = cumulative_rows(tab.P)
    return p


class State(NamedTuple):
    """Per-row state: the intensity market's, plus the regime.

    Attributes:
        mid: (N, K) float64. cash: (N,) float64. inventory: (N, K) int64.
        regime: (N,) int64, the current regime r_t.
    """

    mid: np.ndarray
    cash: np.ndarray
    inventory: np.ndarray
    regime: np.ndarray


def new_state(config, num_envs: int) -> State:
    """The state of ``num_envs`` markets (reset fills it)."""
    base = intensity.new_state(config, num_envs)
    return State(base.mid, base.cash, base.inventory,
                 np.full(num_envs, config.regimes.initial, dtype=np.int64))


# --------------------------------------------------------------------------- processes ---
@njit(cache=True, inline="always")
def prepare(p):
    """The intensity market's constants (nominal) and the regime record."""
    return intensity.prepare(p), p.regimes


@njit(cache=True, inline="always")
def regime_consts(c, g, r):
    """The intensity market's :class:`~mmgym.scenarios.intensity.Consts` with regime r's mid
    volatility, fill intensity, decay and jump; the quote rule's sigma^2 and the observation's
    scale stay nominal (module docstring)."""
    a_dt = g.a_dt[r]
    ln_a = g.ln_a_dt[r]
    k = g.k[r]
    return intensity.Consts(
        c.s0, g.sigma_sqrt_dt[r], c.var0, c.n_steps, c.dt, c.sig2, a_dt, a_dt, ln_a, ln_a, k, k,
        c.poisson, c.q_max, c.q0, c.tick, c.binomial, c.half_spread, c.eta, c.nu, c.maker_fee,
        c.taker_fee, c.inv_q_max, c.inv_n_steps, c.inv_sd, g.jump[r])


@njit(cache=True, inline="always")
def _market_step(tr, st, p, c, qc, actions, work, i, sized):
    """The intensity market's step (rules 0-5) with the current regime's parameters."""
    r = st.regime[i]
    rc = regime_consts(c[0], c[1], r)
    pen_dt = penalty_time(p.reward.variance_penalty, rc.dt, c[1].var_ratio[r], 0.0)
    return intensity.market_step(tr, st, p, rc, qc, actions, work, i, intensity.brownian, rc,
                                 pen_dt, sized)


@njit(cache=True, inline="always")
def market_step(tr, st, p, c, qc, actions, work, i):
    """:func:`_market_step` with one lot per side."""
    return _market_step(tr, st, p, c, qc, actions, work, i, False)


@njit(cache=True, inline="always")
def market_step_sized(tr, st, p, c, qc, actions, work, i):
    """:func:`_market_step` with quote sizes (``action.quote_size`` > 0)."""
    return _market_step(tr, st, p, c, qc, actions, work, i, True)


@njit(cache=True, inline="always")
def post_step(tr, st, p, c, i, o, x, out):
    """Rule 6: the regime's transition, one uniform from the row's stream (after the step's
    fill and mid variates)."""
    j, r0, r1 = next_regime(tr.rng[i, 0], tr.rng[i, 1], c[1].cum, st.regime[i])
    tr.rng[i, 0] = r0
    tr.rng[i, 1] = r1
    st.regime[i] = j


@njit(cache=True, inline="always")
def post_step_sized(tr, st, p, c, i, o, x, out):
    """With ``action.quote_size`` > 0: the quoted sizes' aux columns, then rule 6."""
    intensity.post_step_sized(tr, st, p, c[0], i, o, x, out)
    post_step(tr, st, p, c, i, o, x, out)


@njit(cache=True, inline="always")
def write_obs(row, st, p, c, i, out_obs):
    """The intensity market's six features, then the regime's one-hot when observed."""
    intensity.write_obs(row, st, p, c[0], i, out_obs)
    g = c[1]
    if g.observed:
        r = st.regime[i]
        for j in range(g.n):
            out_obs[i, O_REGIME + j] = 1.0 if j == r else 0.0


@njit(cache=True, inline="always")
def reset_row(tr, st, p, c, i):
    """As the intensity market (mid = s0, cash = 0, q = q0), regime = ``regimes.initial``."""
    st.regime[i] = c[1].initial
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
def step_sized(tr, st, params, actions, out, work, lo, hi):
    """:func:`step` with quote sizes (``action.quote_size`` > 0)."""
    bad = first_bad_row(actions)
    if bad >= 0:
        return bad
    step_rows(tr, st, params[0], actions, out, work, lo, hi, prepare, market_step_sized,
              post_step_sized, write_obs, reset_row)
    return -1


@entry
def reset(mask, tr, st, params, out):
    """Reset the rows where ``mask`` is true and write their observations."""
    reset_rows(mask, tr, st, params[0], out, prepare, write_obs, reset_row)


# ------------------------------------------------------------------------ declaration ---
ORACLE_LABEL = "oracle (full information, an upper bound)"


class RegimeScenario(intensity.IntensityScenario):
    """The intensity market with Markov regimes (module docstring)."""

    id = ENV_ID
    config_class = RegimeEnvConfig
    obs = OBS_COLUMNS
    params_dtype = PARAMS_DTYPE
    state_fields = intensity.IntensityScenario.state_fields + ("regime",)
    step_kernel = staticmethod(step)
    sized_step_kernel = staticmethod(step_sized)
    reset_kernel = staticmethod(reset)
    parallel_kernel = None
    default_baselines = ("as", "glft", "as_tuned", "optimal")
    dp_exact = True

    def pack(self, config, raw_depths=False):
        return pack(config, raw_depths)

    def new_state(self, config, num_envs, rng):
        return new_state(config, num_envs)

    def obs_columns(self, config):
        return obs_columns(config.regimes.n_regimes) if config.regimes.observed else OBS

    def dp_regimes(self, config):
        return regime_table(config)

    def optimal_label(self, config):
        return None if config.regimes.observed else ORACLE_LABEL

    def driver(self, config):
        """The regime r_t before the step; one bin per regime, ``r0``, ``r1``, ..."""
        g = config.regimes
        n = g.n_regimes
        note = "; ".join(f"r{r}: sigma {g.sigma[r]:g}, A {g.A[r]:g}, k {g.k[r]:g}" for r in range(n))
        seen = "observed" if g.observed else "hidden"
        return DriverSpec(f"regime ({seen})", lambda market: market.field("regime").astype(np.float64),
                          tuple(f"r{r}" for r in range(n)), edge_bins(np.arange(n + 1)), note)

    def observation_space(self, config):
        base = intensity.observation_space()
        n = config.regimes.n_regimes if config.regimes.observed else 0
        return spaces.Box(np.append(base.low, np.zeros(n)).astype(np.float32),
                          np.append(base.high, np.ones(n)).astype(np.float32), dtype=np.float32)


SCENARIO = RegimeScenario()


# ---------------------------------------------------------------------------- the envs ---
class RegimeMarketMakingEnv(ScenarioEnv):
    r"""Market making in the intensity market with Markov volatility regimes.

    ## Description

    ``mmgym/MarketMaking-v0`` (Avellaneda & Stoikov 2008; Cartea, Jaimungal & Penalva 2015, ch. 10)
    whose volatility, fill intensity and jump on fill switch with a Markov chain over R regimes
    (Hamilton 1989; Campi & Zabaljauregui, arXiv 1902.01157): regime r has ``regimes.sigma[r]``,
    ``regimes.A[r]``, ``regimes.k[r]`` (both sides) and ``regimes.adverse_jump[r]`` (default
    ``market.adverse_jump``); it leaves r for r' at rate ``regimes.rates[r][r']`` per time unit,
    i.e. with probability ``expm(Q dt)[r, r']`` per step (computed once, ``scipy.linalg.expm``).
    One step, in order:

    0.-4. the intensity market's step (hedge, quotes, fills, inventory bound, cash and mid; see
       :class:`~mmgym.scenarios.intensity.MarketMakingEnv`) with the current regime r_t's
       parameters: ``p = min(1, A_r e^{-k_r delta} dt)`` and
       ``mid += sigma_r sqrt(dt) Z + xi_r (F_ask - F_bid)``;
    5. reward, as the intensity market's;
    6. the regime moves: one uniform from the env's stream after the fill and mid variates,
       ``r_{t+1} = min{j : U < sum_{i <= j} P[r_t, i]}``.

    The quotes of step t are chosen knowing r_t when it is observed. ``market.sigma``, ``market.A``,
    ``market.k`` stay the *nominal* parameters of the as_hybrid action (AS 2008 eqs. 29-30), of the
    analytic baselines and of the observation's normalisation.

    ## Action Space

    As ``mmgym/MarketMaking-v0``: ``Box(-1, 1, (2,))`` (``(3,)`` with ``action.hedge``), plus
    the two quote sizes with ``action.quote_size`` (0..m lots per side, 0 = no quote).

    ## Observation Space

    ``Box(float32, (6 + R,))`` with ``regimes.observed: true``, ``(6,)`` with ``false``: the
    intensity market's six features (realised volatility normalised by the nominal
    ``market.sigma sqrt(dt)``: in a regime with twice the volatility it tends to 2), then

    | Num   | Observation             | Normalisation             | Range  |
    |-------|-------------------------|---------------------------|--------|
    | 6 + r | regime r (observed only)| 1 if r_t = r, else 0      | {0, 1} |

    ## Rewards

    As ``mmgym/MarketMaking-v0`` (every term in ``info``); the running penalty is ``phi q^2 dt``
    whatever the regime.

    ## Starting State

    mid = ``market.s0``, cash = 0, q = ``market.q0``, regime = ``regimes.initial``, t = 0. No random
    draws at reset.

    ## Episode End

    Terminated after ``round(horizon / dt)`` steps. Never truncated.

    ## Baselines

    ``optimal`` is the exact DP over (t, q, r) (:mod:`mmgym.baselines.optimal`). With
    ``regimes.observed: false`` it still reads the hidden regime: it is the **oracle (full
    information, an upper bound)**, not an achievable optimum. ``as``, ``glft`` and ``as_tuned``
    quote with ``market.sigma/A/k`` and ignore the regime; their exact values come from policy
    evaluation over (t, q, r).

    ## Arguments

    ``gym.make("mmgym/RegimeMarketMaking-v0", config=None, render_mode=None, **overrides)``, with
    ``regimes={"sigma": [...], "A": [...], "k": [...], "rates": [[...], ...], "observed": ...}``
    among the overrides.

    ## Version History

    - v0: initial version.
    """

    scenario_id = ENV_ID


class RegimeMarketMakingVectorEnv(ScenarioVectorEnv):
    """``gym.make_vec("mmgym/RegimeMarketMaking-v0", num_envs=N, vectorization_mode="vector_entry_point")``."""

    scenario_id = ENV_ID

"""``mmgym/OUMarketMaking-v0``: the intensity market with a mean-reverting (Ornstein-Uhlenbeck) mid.

The worked example of ``docs/SCENARIOS.md``: a scenario that reuses every process of the intensity
market (:mod:`mmgym.scenarios.intensity`) and swaps one, the mid. The mid follows

.. math:: dS_t = \\kappa (m - S_t)\\,dt + \\sigma\\,dW_t,

the Ornstein-Uhlenbeck process (Uhlenbeck & Ornstein 1930), stepped with its exact transition
(Gillespie 1996, "Exact numerical simulation of the Ornstein-Uhlenbeck process and its integral",
Phys. Rev. E 54(2), eq. 1.3): over one step of length dt,

.. math:: S_{t+dt} = m + (S_t - m)\\,e^{-\\kappa dt}
          + \\sigma \\sqrt{\\frac{1 - e^{-2\\kappa dt}}{2\\kappa}}\\; Z,

so the mean reverts at rate kappa whatever dt (an Euler step that forgets dt in the drift reverts at
kappa/dt: REFERENCES' pitfall), and kappa = 0 is the Brownian mid, draw for draw. Z is the
intensity market's variate (standard normal, or +-1 with ``market.mid_noise: binomial``).

Inventory now has a predictable revaluation (long pays when the mid is below m), which the
closed-form baselines ignore: they and the DP ``optimal`` assume a Brownian mid, so here they are
that model's policies, not this env's optimum (``dp_exact = False``).

The observation appends one feature to the intensity market's six: the mid's deviation from m in
units of the stationary standard deviation sigma / sqrt(2 kappa) (sigma sqrt(T) when kappa = 0),
clipped to +-10.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import numpy as np
from gymnasium import spaces
from numba import njit
from pydantic import Field

from ..envs.base import ScenarioEnv, ScenarioVectorEnv
from ..schema import EnvConfig, Section
from ..sim.jit import entry
from ..sim.ledger import OBS, penalty_time
from ..sim.processes import brownian_mid
from ..sim.quotes import first_bad_row
from ..sim.skeleton import reset_rows, step_rows
from . import intensity

ENV_ID = "mmgym/OUMarketMaking-v0"


# ------------------------------------------------------------------------------ config ---
class OUConfig(Section):
    """The mean-reverting mid of ``mmgym/OUMarketMaking-v0``."""

    kappa: float = Field(1.0, ge=0.0)
    """Mean-reversion speed kappa, per time unit (0: the Brownian mid of the intensity market)."""
    mean: float | None = None
    """Long-run mean m of the mid (None: ``market.s0``)."""


class OUEnvConfig(EnvConfig):
    """The env config of ``mmgym/OUMarketMaking-v0``: the intensity market's sections plus ``ou``."""

    id: Literal["mmgym/OUMarketMaking-v0"] = ENV_ID
    """Registered environment id."""
    ou: OUConfig = Field(default_factory=OUConfig)
    """The mean-reverting mid."""


# -------------------------------------------------------------------------- parameters ---
#: The observation: the intensity market's six features, then the mid's deviation.
OBS_COLUMNS = OBS.extend([("mid_deviation", "(mid - m) / stationary std, clipped to +-10")])
O_DEV = OBS_COLUMNS["mid_deviation"]

#: The OU component of the parameter record.
OU_DTYPE = np.dtype([
    ("mean", np.float64),  # m
    ("decay", np.float64),  # e^{-kappa dt}
    ("noise_sd", np.float64),  # sigma sqrt((1 - e^{-2 kappa dt}) / (2 kappa)) (sigma sqrt(dt) at 0)
    ("inv_scale", np.float64),  # 1 / stationary std (1 / (sigma sqrt(T)) at kappa = 0; 0 if sigma = 0)
    ("var_ratio", np.float64),  # noise_sd^2 / (sigma^2 dt) (risk_penalty: variance; else 1)
])

PARAMS_DTYPE = np.dtype(intensity.PARAMS_DTYPE.descr + [("ou", OU_DTYPE)])


def pack(config: OUEnvConfig, raw_depths: bool = False) -> np.ndarray:
    """The parameter record: the intensity market's, plus the OU component."""
    p = intensity.pack_into(config, raw_depths, PARAMS_DTYPE)
    m, kappa = config.market, config.ou.kappa
    dt = m.dt
    p["ou"]["mean"] = m.s0 if config.ou.mean is None else config.ou.mean
    if kappa > 0.0:
        p["ou"]["decay"] = np.exp(-kappa * dt)
        p["ou"]["noise_sd"] = m.sigma * np.sqrt(-np.expm1(-2.0 * kappa * dt) / (2.0 * kappa))
        scale = m.sigma / np.sqrt(2.0 * kappa)
    else:
        p["ou"]["decay"] = 1.0
        p["ou"]["noise_sd"] = m.sigma * np.sqrt(dt)
        scale = m.sigma * np.sqrt(m.horizon)
    p["ou"]["inv_scale"] = 1.0 / scale if scale > 0.0 else 0.0
    # the step's conditional variance noise_sd^2 against sigma^2 dt: (1 - e^{-2 kappa dt})/(2 kappa dt)
    p["ou"]["var_ratio"] = 1.0
    if config.reward.risk_penalty == "variance" and kappa > 0.0:
        p["ou"]["var_ratio"] = -np.expm1(-2.0 * kappa * dt) / (2.0 * kappa * dt)
    return p


class OUConsts(NamedTuple):
    """The OU mid's parameters in registers."""

    mean: float
    one_minus_decay: float
    noise_sd: float
    binomial: bool
    inv_scale: float
    var_ratio: float


# --------------------------------------------------------------------------- processes ---
@njit(cache=True, inline="always")
def prepare(p):
    """The intensity market's constants and the OU mid's."""
    o = p.ou
    return intensity.prepare(p), OUConsts(o.mean, 1.0 - o.decay, o.noise_sd, p.market.binomial,
                                          o.inv_scale, o.var_ratio)


@njit(cache=True, inline="always")
def ou_mid(oc, s, r0, r1):
    """The exact OU transition (module docstring) as a move: ``dS = (m - s)(1 - e^{-kappa dt}) +
    noise_sd Z``; ``dS = sigma sqrt(dt) Z`` exactly when kappa = 0. The noise is ``noise_sd Z``."""
    shock, r0, r1 = brownian_mid(oc.noise_sd, oc.binomial, r0, r1)
    return (oc.mean - s) * oc.one_minus_decay + shock, shock, r0, r1


@njit(cache=True, inline="always")
def market_step(tr, st, p, c, qc, actions, work, i):
    """The intensity market's step with the OU mid."""
    pen_dt = penalty_time(p.reward.variance_penalty, c[0].dt, c[1].var_ratio, 0.0)
    return intensity.market_step(tr, st, p, c[0], qc, actions, work, i, ou_mid, c[1], pen_dt, False)


@njit(cache=True, inline="always")
def market_step_sized(tr, st, p, c, qc, actions, work, i):
    """:func:`market_step` with quote sizes (``action.quote_size`` > 0)."""
    pen_dt = penalty_time(p.reward.variance_penalty, c[0].dt, c[1].var_ratio, 0.0)
    return intensity.market_step(tr, st, p, c[0], qc, actions, work, i, ou_mid, c[1], pen_dt, True)


@njit(cache=True, inline="always")
def write_obs(row, st, p, c, i, out_obs):
    """The intensity market's six features, then the mid's deviation from m."""
    intensity.write_obs(row, st, p, c[0], i, out_obs)
    oc = c[1]
    out_obs[i, O_DEV] = min(10.0, max(-10.0, (st.mid[i] - oc.mean) * oc.inv_scale))


@njit(cache=True, inline="always")
def reset_row(tr, st, p, c, i):
    """As the intensity market: mid = s0, cash = 0, q = q0."""
    return intensity.reset_row(tr, st, p, c[0], i)


# ----------------------------------------------------------------------------- kernels ---
@entry
def step(tr, st, params, actions, out, work, lo, hi):
    """Step rows ``lo:hi`` and autoreset finished ones; -1, or the first non-finite action's row."""
    bad = first_bad_row(actions)
    if bad >= 0:
        return bad
    step_rows(tr, st, params[0], actions, out, work, lo, hi, prepare, market_step,
              intensity.no_post_step, write_obs, reset_row)
    return -1


@entry
def step_sized(tr, st, params, actions, out, work, lo, hi):
    """:func:`step` with quote sizes (``action.quote_size`` > 0)."""
    bad = first_bad_row(actions)
    if bad >= 0:
        return bad
    step_rows(tr, st, params[0], actions, out, work, lo, hi, prepare, market_step_sized,
              intensity.post_step_sized, write_obs, reset_row)
    return -1


@entry
def reset(mask, tr, st, params, out):
    """Reset the rows where ``mask`` is true and write their observations."""
    reset_rows(mask, tr, st, params[0], out, prepare, write_obs, reset_row)


# ------------------------------------------------------------------------ declaration ---
class OUScenario(intensity.IntensityScenario):
    """The intensity market with the OU mid (module docstring)."""

    id = ENV_ID
    config_class = OUEnvConfig
    obs = OBS_COLUMNS
    params_dtype = PARAMS_DTYPE
    step_kernel = staticmethod(step)
    sized_step_kernel = staticmethod(step_sized)
    reset_kernel = staticmethod(reset)
    parallel_kernel = None
    default_baselines = ("as", "symmetric", "glft")
    dp_exact = False

    def pack(self, config, raw_depths=False):
        return pack(config, raw_depths)

    def model_note(self, config):
        return (f"the baselines (and 'optimal', objective_model, optimal_v0) assume the Brownian mid "
                f"of mmgym/MarketMaking-v0; here the mid reverts to its mean at kappa = "
                f"{config.ou.kappa}, so they are that model's policies, not this env's optimum")

    def observation_space(self, config):
        base = intensity.observation_space()
        return spaces.Box(np.append(base.low, -10.0).astype(np.float32),
                          np.append(base.high, 10.0).astype(np.float32), dtype=np.float32)


SCENARIO = OUScenario()


# ---------------------------------------------------------------------------- the envs ---
class OUMarketMakingEnv(ScenarioEnv):
    r"""Market making in the intensity market with a mean-reverting (Ornstein-Uhlenbeck) mid.

    ## Description

    ``mmgym/MarketMaking-v0`` (Avellaneda & Stoikov 2008; Cartea, Jaimungal & Penalva 2015, ch. 10)
    with one change, the mid: ``dS = kappa (m - S) dt + sigma dW`` stepped exactly (Gillespie 1996),
    ``ou.kappa`` and ``ou.mean`` (default ``market.s0``). Everything else (hedge, quotes, fills,
    inventory bound, reward) is the intensity market's; see :class:`~mmgym.scenarios.intensity.MarketMakingEnv`.

    ## Action Space

    As ``mmgym/MarketMaking-v0``: ``Box(-1, 1, (2,))`` (``(3,)`` with ``action.hedge``), plus
    the two quote sizes with ``action.quote_size`` (0..m lots per side, 0 = no quote).

    ## Observation Space

    ``Box(float32, (7,))``: the intensity market's six features, then

    | Num | Observation        | Normalisation                                                     | Range     |
    |-----|--------------------|-------------------------------------------------------------------|-----------|
    | 6   | mid deviation      | (mid - m) / (sigma / sqrt(2 kappa)); sigma sqrt(T) when kappa = 0 | [-10, 10] |

    ## Rewards

    As ``mmgym/MarketMaking-v0`` (every term in ``info``).

    ## Starting State

    mid = ``market.s0``, cash = 0, q = ``market.q0``, t = 0. No random draws at reset.

    ## Episode End

    Terminated after ``round(horizon / dt)`` steps. Never truncated.

    ## Arguments

    ``gym.make("mmgym/OUMarketMaking-v0", config=None, render_mode=None, **overrides)``, with
    ``ou={"kappa": ..., "mean": ...}`` among the overrides.

    ## Version History

    - v0: initial version.
    """

    scenario_id = ENV_ID


class OUMarketMakingVectorEnv(ScenarioVectorEnv):
    """``gym.make_vec("mmgym/OUMarketMaking-v0", num_envs=N, vectorization_mode="vector_entry_point")``."""

    scenario_id = ENV_ID

r"""``mmgym/EventMarketMaking-v0``: the intensity market with scheduled event windows.

The intensity market (:mod:`mmgym.scenarios.intensity`) with known event times (earnings, data
releases: issue 9, scenario 4). At each event the mid jumps by ``J ~ N(0, s^2)`` (``events.jump_std``
= s); during a window of ``events.window`` time units before it the jump on fill rises from
``market.adverse_jump`` to ``events.adverse_jump`` (informed traders are active before the
release: the jump on fill of Guéant, Lehalle & Fernandez-Tapia 2013, sec. 5, with a time-dependent
xi). The known jump times, the gaussian jump size and the window are this env's modelling
assumptions (no published derivation is claimed for them).

**The schedule.** Event ``j`` at time ``tau_j`` (``events.times``, time units from the episode's
start, ``0 <= tau_j < horizon``) happens on step ``e_j = floor(tau_j / dt)`` (the step whose interval
``[t dt, (t+1) dt)`` holds it); two events may not share a step. With ``W = round(window / dt)``
steps, step t is *in the window* iff ``e_j - W <= t < e_j`` for some j. Event times are
deterministic, so the per-step parameters are functions of t only (:func:`phase`, used by the
kernel and, through :func:`schedule`, by the exact DP: one rule).

**One step** t, for a row:

0.-4. the intensity market's step, with ``xi_t = events.adverse_jump`` in the window and
   ``market.adverse_jump`` outside it: ``mid += sigma sqrt(dt) Z + [t = e_j] s Z_J + xi_t (F_ask - F_bid)``;
5. reward (the ledger's, unchanged).

**Random draws**, in order: the bid's and the ask's exponential, the mid's variate Z, then on an
event step only one more standard normal Z_J (ziggurat) from the row's stream. Event steps do not
depend on the actions, so common random numbers across policies hold; a config without events draws
exactly as the intensity market.
"""

from __future__ import annotations

from typing import Literal

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
from ..sim.rng import zig_normal
from ..sim.skeleton import reset_rows, step_rows
from . import intensity
from .base import DriverSpec

ENV_ID = "mmgym/EventMarketMaking-v0"

#: The largest number of events per episode (the parameter record's fixed array size).
E_MAX = 32


# ------------------------------------------------------------------------------ config ---
class EventsConfig(Section):
    """The scheduled events of ``mmgym/EventMarketMaking-v0`` (module docstring)."""

    times: list[float] | None = None
    """Event times (time units from the episode's start, ``0 <= t < market.horizon``), at most 32;
    None: a quarter, half and three quarters of the horizon."""
    jump_std: float = Field(0.5, ge=0.0)
    """s: the std of the mid's jump J ~ N(0, s^2) at each event (price units)."""
    window: float = Field(0.05, ge=0.0)
    """Length of the informed-trading window before each event (time units)."""
    adverse_jump: float = Field(0.1, ge=0.0)
    """The jump on fill xi inside a window (price units; outside: ``market.adverse_jump``)."""

    @model_validator(mode="after")
    def _check(self) -> EventsConfig:
        if self.times is None:
            return self
        if len(self.times) > E_MAX:
            raise ValueError(f"times has {len(self.times)} entries; at most {E_MAX} events are supported")
        for j, x in enumerate(self.times):
            if not x >= 0.0:
                raise ValueError(f"times[{j}] = {x:g} must be >= 0")
        return self


class EventEnvConfig(EnvConfig):
    """The env config of ``mmgym/EventMarketMaking-v0``: the intensity market's sections plus
    ``events``."""

    id: Literal["mmgym/EventMarketMaking-v0"] = ENV_ID
    """Registered environment id."""
    events: EventsConfig = Field(default_factory=EventsConfig)
    """The scheduled events."""

    @model_validator(mode="after")
    def _check_schedule(self) -> EventEnvConfig:
        event_steps(self)
        return self


def event_steps(config) -> np.ndarray:
    """The event steps ``e_j = floor(tau_j / dt)`` (sorted, int64; module docstring).

    Raises:
        ValueError: an event at or after the horizon, or two events on one step.
    """
    m = config.market
    seen: dict[int, int] = {}
    times = config.events.times
    if times is None:
        times = [f * m.horizon for f in (0.25, 0.5, 0.75)]
    for j, x in enumerate(times):
        e = int(np.floor(x / m.dt + 1e-9))
        if e >= m.n_steps:
            raise ValueError(f"events.times[{j}] = {x:g} is not before the horizon {m.horizon:g}")
        if e in seen:
            raise ValueError(f"events.times[{j}] = {x:g} falls on the step of events.times[{seen[e]}] "
                             f"(step {e}, dt = {m.dt:g}): one event per step")
        seen[e] = j
    return np.array(sorted(seen), dtype=np.int64)


def window_steps(config) -> tuple[int, int]:
    """``(W, H)``: the window's steps ``W = round(events.window / dt)`` and the span
    ``H = max(2 W, 2)`` over which the ``event_ramp`` feature runs and the glass box bins the
    steps to an event (one rule for both)."""
    w = int(round(config.events.window / config.market.dt))
    return w, max(2 * w, 2)


# -------------------------------------------------------------------------- parameters ---
OBS_COLUMNS = OBS.extend([
    ("time_to_event", "(steps to the next event step) / n_steps; 1 when none"),
    ("event_ramp", "min(steps to the next event step, H) / H with H = max(2 W, 2); 1 when none"),
    ("in_window", "1 if the step is in a window before an event (informed flow active), else 0"),
])
O_EVENT = OBS_COLUMNS["time_to_event"]
O_RAMP = OBS_COLUMNS["event_ramp"]
O_WINDOW = OBS_COLUMNS["in_window"]

#: The events component of the parameter record.
EVENTS_DTYPE = np.dtype([
    ("n", np.int64),  # number of events
    ("step", np.int64, (E_MAX,)),  # event steps e_j, ascending
    ("window", np.int64),  # W, steps in the window before each event
    ("inv_ramp", np.float64),  # 1 / H, H = max(2 W, 2): the event_ramp feature's span
    ("xi", np.float64),  # jump on fill inside a window
    ("jump_sd", np.float64),  # s, std of the event jump
    ("jump_var", np.float64),  # s^2 / sigma^2 (risk_penalty: variance; else 0)
])

PARAMS_DTYPE = np.dtype(intensity.PARAMS_DTYPE.descr + [("events", EVENTS_DTYPE)])


def pack(config: EventEnvConfig, raw_depths: bool = False) -> np.ndarray:
    """The parameter record: the intensity market's, plus the events component."""
    p = intensity.pack_into(config, raw_depths, PARAMS_DTYPE)
    steps = event_steps(config)
    ev = p["events"][0]
    ev["n"] = steps.size
    ev["step"][:steps.size] = steps
    w, span = window_steps(config)
    ev["window"] = w
    ev["inv_ramp"] = 1.0 / span
    ev["xi"] = config.events.adverse_jump
    ev["jump_sd"] = config.events.jump_std
    if config.reward.risk_penalty == "variance":
        ev["jump_var"] = config.events.jump_std ** 2 / config.market.sigma ** 2
    return p


# --------------------------------------------------------------------------- processes ---
@njit(cache=True)
def phase(ev, t):
    """Step t's place in the schedule: (in a window, an event step, the next event step >= t or -1).

    The one rule of the module docstring, used by the kernel and by :func:`schedule`.
    """
    window = False
    event = False
    nxt = -1
    for j in range(ev.n):
        e = ev.step[j]
        if e == t:
            event = True
        if e - ev.window <= t < e:
            window = True
        if e >= t and nxt < 0:
            nxt = e
    return window, event, nxt


def schedule(config: EventEnvConfig) -> tuple[np.ndarray, np.ndarray]:
    """Per-step parameters for the exact DP: ``xi_t`` and the event jump's std ``s_t`` (0 off event
    steps), each (n_steps,) float64, from :func:`phase`."""
    p = pack(config)
    ev = p["events"][0]
    n = config.market.n_steps
    xi = np.full(n, float(config.market.adverse_jump))
    sd = np.zeros(n)
    for t in range(n):
        window, event, _ = phase(ev, t)
        if window:
            xi[t] = float(ev["xi"])
        if event:
            sd[t] = float(ev["jump_sd"])
    return xi, sd


def steps_to_event(steps: np.ndarray, t: np.ndarray) -> np.ndarray:
    """``e - t`` for the first event step ``e >= t`` (the rule of :func:`phase`), inf when none;
    ``steps`` ascending event steps, ``t`` (N,) steps taken. (N,) float64."""
    t = np.asarray(t, dtype=np.int64)
    j = np.searchsorted(steps, t, side="left")
    out = np.full(t.shape, np.inf)
    ok = j < steps.size
    out[ok] = steps[j[ok]] - t[ok]
    return out


@njit(cache=True, inline="always")
def prepare(p):
    """The intensity market's constants and the events record."""
    return intensity.prepare(p), p.events


@njit(cache=True, inline="always")
def event_mid(mc, s, r0, r1):
    """The Brownian move, plus ``s Z_J`` on an event step (one more normal, drawn after Z);
    ``mc = (sigma sqrt(dt), binomial, event step, s)``. Both parts have mean zero: all noise."""
    ds, r0, r1 = brownian_mid(mc[0], mc[1], r0, r1)
    if mc[2]:
        z, r0, r1 = zig_normal(r0, r1)
        ds += mc[3] * z
    return ds, ds, r0, r1


@njit(cache=True, inline="always")
def _market_step(tr, st, p, c, qc, actions, work, i, sized):
    """The intensity market's step (rules 0-5) with step t's xi and the event jump."""
    c0 = c[0]
    ev = c[1]
    window, event, _ = phase(ev, tr.step[i])
    xi = ev.xi if window else c0.jump
    ec = intensity.Consts(
        c0.s0, c0.sigma_sqrt_dt, c0.var0, c0.n_steps, c0.dt, c0.sig2, c0.a_bid_dt, c0.a_ask_dt,
        c0.ln_a_bid_dt, c0.ln_a_ask_dt, c0.k_bid, c0.k_ask, c0.poisson, c0.q_max, c0.q0, c0.tick,
        c0.binomial, c0.half_spread, c0.eta, c0.nu, c0.maker_fee, c0.taker_fee, c0.inv_q_max,
        c0.inv_n_steps, c0.inv_sd, xi)
    pen_dt = penalty_time(p.reward.variance_penalty, c0.dt, 1.0, ev.jump_var if event else 0.0)
    return intensity.market_step(tr, st, p, ec, qc, actions, work, i, event_mid,
                                 (c0.sigma_sqrt_dt, c0.binomial, event, ev.jump_sd), pen_dt, sized)


@njit(cache=True, inline="always")
def market_step(tr, st, p, c, qc, actions, work, i):
    """:func:`_market_step` with one lot per side."""
    return _market_step(tr, st, p, c, qc, actions, work, i, False)


@njit(cache=True, inline="always")
def market_step_sized(tr, st, p, c, qc, actions, work, i):
    """:func:`_market_step` with quote sizes (``action.quote_size`` > 0)."""
    return _market_step(tr, st, p, c, qc, actions, work, i, True)


@njit(cache=True, inline="always")
def write_obs(row, st, p, c, i, out_obs):
    """The intensity market's six features, then the time to the next event, its ramp over the
    last ``H = max(2W, 2)`` steps and the window flag (:class:`EventMarketMakingEnv`'s table)."""
    intensity.write_obs(row, st, p, c[0], i, out_obs)
    ev = c[1]
    window, _, nxt = phase(ev, row.step)
    if nxt < 0:
        out_obs[i, O_EVENT] = 1.0
        out_obs[i, O_RAMP] = 1.0
    else:
        k = nxt - row.step
        out_obs[i, O_EVENT] = k * c[0].inv_n_steps
        out_obs[i, O_RAMP] = min(1.0, k * ev.inv_ramp)
    out_obs[i, O_WINDOW] = 1.0 if window else 0.0


@njit(cache=True, inline="always")
def reset_row(tr, st, p, c, i):
    """As the intensity market (mid = s0, cash = 0, q = q0; no draws)."""
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
class EventScenario(intensity.IntensityScenario):
    """The intensity market with scheduled events (module docstring)."""

    id = ENV_ID
    config_class = EventEnvConfig
    obs = OBS_COLUMNS
    params_dtype = PARAMS_DTYPE
    step_kernel = staticmethod(step)
    sized_step_kernel = staticmethod(step_sized)
    reset_kernel = staticmethod(reset)
    parallel_kernel = None
    default_baselines = ("as", "glft", "as_tuned", "optimal")
    dp_exact = True

    def pack(self, config, raw_depths=False):
        return pack(config, raw_depths)

    def dp_schedule(self, config):
        return schedule(config)

    def driver(self, config):
        """Steps to the next event step before the step, e - t (0: the event's jump ends this
        step; inf: no event left); one bin per step from ``H = max(2 W, 2)`` down to 0, and one
        bin ``far`` for more than H steps or no event left (:func:`steps_to_event`)."""
        steps = event_steps(config)
        w, horizon = window_steps(config)
        labels = ("far",) + tuple(str(k) for k in range(horizon, -1, -1))

        def bin_of(values):
            v = np.asarray(values, dtype=np.float64)
            out = np.where(v > horizon, 0, horizon + 1 - np.minimum(v, horizon)).astype(np.int64)
            out[(v < 0) | np.isnan(v)] = -1
            return out

        return DriverSpec("steps to the next event", lambda market: steps_to_event(steps, market.step_count),
                          labels, bin_of, f"window: the {w} steps before an event (1..{w}); far: more than "
                          f"{horizon} steps or no event left")

    def observation_space(self, config):
        base = intensity.observation_space()
        return spaces.Box(np.append(base.low, [0.0, 0.0, 0.0]).astype(np.float32),
                          np.append(base.high, [1.0, 1.0, 1.0]).astype(np.float32), dtype=np.float32)


SCENARIO = EventScenario()


# ---------------------------------------------------------------------------- the envs ---
class EventMarketMakingEnv(ScenarioEnv):
    r"""Market making in the intensity market with scheduled event windows.

    ## Description

    ``mmgym/MarketMaking-v0`` (Avellaneda & Stoikov 2008; Cartea, Jaimungal & Penalva 2015, ch. 10)
    with known event times ``events.times`` (earnings, data releases). Event j happens on step
    ``e_j = floor(tau_j / dt)``: the mid jumps by ``J ~ N(0, events.jump_std^2)`` after the step's
    Brownian move. During the ``W = round(events.window / dt)`` steps before it
    (``e_j - W <= t < e_j``) the jump on fill is ``events.adverse_jump`` instead of
    ``market.adverse_jump`` (informed traders; Guéant, Lehalle & Fernandez-Tapia 2013, sec. 5). One
    step t, in order:

    0.-4. the intensity market's step (hedge, quotes, fills, inventory bound, cash and mid; see
       :class:`~mmgym.scenarios.intensity.MarketMakingEnv`) with
       ``mid += sigma sqrt(dt) Z + [t is an event step] s Z_J + xi_t (F_ask - F_bid)``;
    5. reward, as the intensity market's.

    Random draws: bid exponential, ask exponential, Z, then Z_J on event steps only.

    ## Action Space

    As ``mmgym/MarketMaking-v0``: ``Box(-1, 1, (2,))`` (``(3,)`` with ``action.hedge``), plus
    the two quote sizes with ``action.quote_size`` (0..m lots per side, 0 = no quote).

    ## Observation Space

    ``Box(float32, (9,))``: the intensity market's six features (the realised volatility and last mid
    change include the event jump), then

    | Num | Observation         | Normalisation                                        | Range  |
    |-----|---------------------|------------------------------------------------------|--------|
    | 6   | time to next event  | (e_next - t) / n_steps, e_next the first event step >= t; 1 when none remains | [0, 1] |
    | 7   | event ramp          | min(e_next - t, H) / H, H = max(2W, 2); 1 when none remains | [0, 1] |
    | 8   | in a window         | 1 if e - W <= t < e for an event step e (the jump on fill is ``events.adverse_jump``), else 0 | {0, 1} |

    (0 in 6 and 7: the event's jump happens at the end of the step about to be taken.) Features 7
    and 8 say the same as 6 at the resolution that matters: the optimum ramps its skew over the
    window's ten steps, which feature 6 spans with 0.05 of its range (PPO with feature 6 alone
    stayed at the static quoter's 91-92 % of the optimum on ``configs/ppo_events.yaml``; with 7 and
    8, 96 % after 5M steps: BENCHMARKS.md).

    ## Rewards

    As ``mmgym/MarketMaking-v0`` (every term in ``info``). With ``reward.risk_penalty: time`` the
    running penalty is ``phi q^2 dt`` on every step, event steps included (a risk-neutral objective
    is then not charged for the event jump's variance, which matters only through
    ``reward.dampening``); with ``risk_penalty: variance`` an event step charges
    ``phi q^2 (dt + s^2 / sigma^2)``, the jump's variance (``configs/events.yaml``). The jump is in
    ``info["revaluation_noise"]`` (zero mean: ``agent.control_variate``).

    ## Starting State

    mid = ``market.s0``, cash = 0, q = ``market.q0``, t = 0. No random draws at reset.

    ## Episode End

    Terminated after ``round(horizon / dt)`` steps. Never truncated.

    ## Baselines

    ``optimal`` is the exact DP over (t, q) with step t's xi and event jump
    (:mod:`mmgym.baselines.optimal`, "Scheduled events"). ``as``, ``glft`` and ``as_tuned`` quote
    with ``market.sigma/A/k/adverse_jump`` and ignore the events; their exact values come from
    policy evaluation.

    ## Arguments

    ``gym.make("mmgym/EventMarketMaking-v0", config=None, render_mode=None, **overrides)``, with
    ``events={"times": [...] (default: T/4, T/2, 3T/4), "jump_std": ..., "window": ..., "adverse_jump": ...}`` among the
    overrides.

    ## Version History

    - v0: initial version.
    """

    scenario_id = ENV_ID


class EventMarketMakingVectorEnv(ScenarioVectorEnv):
    """``gym.make_vec("mmgym/EventMarketMaking-v0", num_envs=N, vectorization_mode="vector_entry_point")``."""

    scenario_id = ENV_ID

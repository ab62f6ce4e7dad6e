"""``mmgym/LOBMarketMaking-v0``: market making in the numba limit order book (:mod:`mmgym.book`)."""

from __future__ import annotations

from typing import Any

import numpy as np
import gymnasium as gym
from gymnasium import spaces

from ..book import kernel as BK
from ..config import ConfigError, EnvConfig, load_env_config
from .base import BatchMarketEnv, BatchMarketVectorEnv
from .batch import BatchMarket, StepBuffers, build_intensity_params, intensity_action_space

LOB_ENV_ID = "mmgym/LOBMarketMaking-v0"

#: Defaults of the LOB env (the content of configs/lob.yaml): one-second steps over five minutes,
#: a 0.01 tick at 100, and sigma, A, k (the as_hybrid rule's and the baselines') from
#: ``python -m mmgym.calibrate --duration 3600 --seed 0`` on the default book (docs/LOB.md).
LOB_DEFAULTS: dict[str, Any] = {
    "id": LOB_ENV_ID,
    "market": {"s0": 100.0, "tick_size": 0.01, "dt": 1.0, "horizon": 300.0, "max_inventory": 10,
               "sigma": 0.0251, "A": 3.06, "k": 60.3},
    "action": {"skew_max": 0.02, "offset_min": -0.01, "offset_max": 0.05, "gamma_min": 0.01,
               "gamma_max": 100.0},
}


def default_lob_config(**sections: Any) -> EnvConfig:
    """The LOB env's default :class:`EnvConfig` (``LOB_DEFAULTS``), with section overrides."""
    data = {k: (dict(v) if isinstance(v, dict) else v) for k, v in LOB_DEFAULTS.items()}
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key].update(value)
        else:
            data[key] = value
    return load_env_config(data)


class LOBMarket(BatchMarket):
    """N independent limit order books with a market maker each, stepped by one kernel call.

    State: a :class:`~mmgym.book.kernel.BookState` (``self.book``: ladder, our order records,
    cash in tick-lots, inventory, counters) and a :class:`~mmgym.book.kernel.LOBEnvState`
    (``self.env``). Step buffers, reward terms, aux and statistics use the intensity market's
    names and column layout (``mmgym.core.intensity``) with the book's columns appended, so the
    evaluation tooling works unchanged.

    Args:
        config: the environment config (``market.tick_size`` must be positive).
        num_envs: number of books.
        raw_depths: take raw depths ``(delta_b, delta_a[, hedge_lots])`` in price units.
    """

    term_names = BK.LOB_TERM_NAMES
    aux_names = BK.LOB_AUX_NAMES
    stat_names = BK.LOB_STAT_NAMES
    state_fields = ("cash", "inventory", "step", "mid", "time")

    def __init__(self, config: EnvConfig, num_envs: int = 1, raw_depths: bool = False):
        super().__init__(config, num_envs)
        m, bc = config.market, config.book
        if m.tick_size <= 0.0:
            raise ConfigError("market.tick_size: the limit order book needs a positive tick (got 0)")
        if bc.entry_latency >= m.dt:
            raise ConfigError(f"book.entry_latency: must be < market.dt = {m.dt} (got {bc.entry_latency})")
        self.raw_depths = raw_depths
        self.n_steps = m.n_steps
        self.obs_dim = BK.LOB_OBS_DIM
        n = num_envs
        self.lam = bc.lam()
        self.theta = bc.theta()
        self.fp = bc.flow_params()
        self.params = build_lob_params(config, raw_depths)
        self.book = BK.new_book_state(n, bc.n_levels, bc.max_orders, rng=self.rng)
        d = bc.obs_delay_steps + 1
        self.env = BK.LOBEnvState(
            step=np.zeros(n, dtype=np.int64), vol_var=np.zeros(n), mid_ret=np.zeros(n),
            last_fills=np.zeros((n, 2), dtype=np.int64), wealth0=np.zeros(n),
            flow_signed=np.zeros(n), flow_abs=np.zeros(n), hist=np.zeros((n, d, BK.N_HF)),
            ep_stats=np.zeros((n, BK.N_LOB_STATS)),
        )
        self._rec_f = np.zeros(0)
        self._rec_i = np.zeros(0, dtype=np.int64)
        self._rec_n = np.zeros(1, dtype=np.int64)
        self.buffers = StepBuffers(
            obs=np.zeros((n, BK.LOB_OBS_DIM), dtype=np.float32),
            reward=np.zeros(n), done=np.zeros(n, dtype=np.bool_),
            final_obs=np.zeros((n, BK.LOB_OBS_DIM), dtype=np.float32),
            final_stats=np.zeros((n, BK.N_LOB_STATS)),
            terms=np.zeros((n, len(BK.LOB_TERM_NAMES))), aux=np.zeros((n, BK.N_LOB_AUX)),
        )
        self.single_observation_space = lob_observation_space()
        self.single_action_space = intensity_action_space(config, raw_depths)

    # -------------------------------------------------------------- state views ---
    @property
    def inventory(self) -> np.ndarray:
        """(N,) int64 lots held."""
        return self.book.inventory

    @property
    def cash(self) -> np.ndarray:
        """(N,) float64 cash in price units (excluding fees, which are in the statistics)."""
        return self.book.cash_ticks * self.config.market.tick_size

    @property
    def mid(self) -> np.ndarray:
        """(N,) float64 mid price."""
        return 0.5 * (self.book.best_bid + self.book.best_ask) * self.config.market.tick_size

    @property
    def step_count(self) -> np.ndarray:
        """(N,) int64 steps taken this episode."""
        return self.env.step

    @property
    def time(self) -> np.ndarray:
        """(N,) float64 simulated book time."""
        return self.book.time

    def get_field(self, name: str, rows):  # noqa: D102
        arr = getattr(self, "step_count" if name == "step" else name)
        return [arr[r].item() for r in rows]

    def set_field(self, name: str, value, rows):  # noqa: D102
        if name not in ("inventory",):
            raise AttributeError(f"LOBMarket field {name!r} is derived from the book; only inventory can be set")
        for r in rows:
            self.book.inventory[r] = value

    # ----------------------------------------------------------------- stepping ---
    def _reset_rows(self, mask: np.ndarray) -> None:
        BK.lob_reset(mask, self.book, self.env, self.lam, self.theta, self.fp, self.params,
                     self._rec_f, self._rec_i, self._rec_n, self.buffers.obs)

    def _step(self, actions: np.ndarray) -> int:
        bf = self.buffers
        return BK.lob_step(self.book, self.env, self.lam, self.theta, self.fp, self.params,
                           np.ascontiguousarray(actions, dtype=np.float64), self._rec_f,
                           self._rec_i, self._rec_n, bf.obs, bf.reward, bf.done, bf.final_obs,
                           bf.final_stats, bf.terms, bf.aux)


def build_lob_params(config: EnvConfig, raw_depths: bool = False) -> np.ndarray:
    """Pack an :class:`EnvConfig` into the env kernel's ``(N_LP,) float64`` vector (``LP_*``)."""
    m, bc = config.market, config.book
    p = np.zeros(BK.N_LP)
    # market, reward and action fields: the intensity market's packing (shared indices)
    shared = build_intensity_params(config, raw_depths=raw_depths)
    p[: shared.size] = shared
    p[BK.LP_QUOTE_LOTS] = bc.quote_lots
    p[BK.LP_LATENCY] = bc.entry_latency
    p[BK.LP_LATENCY_EVENTS] = bc.entry_latency_events
    p[BK.LP_OBS_DELAY] = bc.obs_delay_steps
    p[BK.LP_WARMUP] = bc.warmup
    p[BK.LP_CENTRE_TICK] = round(m.s0 / m.tick_size)
    p[BK.LP_INIT_SPREAD] = bc.initial_spread_ticks
    p[BK.LP_IMB_LEVELS] = bc.imbalance_levels
    return p


def lob_observation_space() -> spaces.Box:
    """Box of the LOB observation (table in :class:`LOBMarketMakingEnv`)."""
    low = np.array([-1, 0, 0, 0, 0, -10, 0, -1, -1, -1, -1], dtype=np.float32)
    high = np.array([1, 1, np.inf, 1, 1, 10, np.inf, 1, 1, 1, 1], dtype=np.float32)
    return spaces.Box(low, high, dtype=np.float32)


def _make_lob(config: EnvConfig, num_envs: int) -> LOBMarket:
    return LOBMarket(config, num_envs)


def _lob_config(config: Any, overrides: dict[str, Any]) -> Any:
    """None means the LOB defaults (not the intensity market's): ``LOB_DEFAULTS``."""
    if config is None:
        sections = {k: overrides.pop(k) for k in list(overrides) if k in EnvConfig.model_fields}
        return default_lob_config(**sections)
    return config


class LOBMarketMakingEnv(BatchMarketEnv):
    r"""Market making in a simulated limit order book with FIFO queues.

    ## Description

    Each env is a limit order book on a tick grid (``market.tick_size``) whose background flow
    follows Cont, Stoikov & Talreja (2010): limit orders at distance i ticks from the opposite best
    at rate lambda(i), cancellations at rate theta(i) per resting lot, market orders at rate mu,
    geometric sizes (``book.*``). The agent keeps one bid and one ask of ``book.quote_lots`` lots
    in the book; they wait in FIFO queues behind earlier volume and fill only when market orders
    reach them. Market orders walk the book, so impact is emergent. One step covers ``market.dt``
    of book time, every event of which is simulated inside the kernel:

    0. quotes are computed from the action and the *observed* mid (``book.obs_delay_steps`` old),
       mapped to ticks: bid = floor((mid - delta_b) / tick), ask = ceil((mid + delta_a) / tick);
       an ask at or below the bid moves to bid + 1 tick;
    1. background flow for ``book.entry_latency`` time units, then ``book.entry_latency_events``
       more events (order-entry latency: technological adverse selection);
    2. our orders arrive: an order whose price changed is cancelled (its queue position is lost);
       one at an unchanged price is kept and keeps its place (only reduced if the inventory bound
       requires); the hedge market order (last action dimension) walks the book; new quotes join
       the back of their queue, a marketable quote takes liquidity first;
    3. background flow to the end of the step;
    4. reward (below). Quote sizes are clipped so |q| never exceeds ``market.max_inventory``.

    ## Action Space

    ``Box(-1, 1, (2,))`` (``(3,)`` with ``action.hedge``), as in ``mmgym/MarketMaking-v0``:
    ``as_hybrid`` (risk aversion and skew of the Avellaneda-Stoikov rule, with ``market.sigma`` and
    ``market.k`` - e.g. from :mod:`mmgym.calibrate`), ``offsets`` (depths in price units between
    ``action.offset_min`` and ``action.offset_max``) and the hedge market order of
    round(a * hedge_max_lots) lots.

    ## Observation Space

    ``Box(float32, (11,))``; the first six are the intensity env's, in the same order.
    Market features (2, 5, 6, 7, 10) are ``book.obs_delay_steps`` steps old.

    | Num | Observation                 | Normalisation                                         | Range      |
    |-----|-----------------------------|-------------------------------------------------------|------------|
    | 0   | inventory q                 | q / max_inventory                                     | [-1, 1]    |
    | 1   | time remaining              | (T - t) / T                                           | [0, 1]     |
    | 2   | realised volatility         | EWMA std of mid changes / (sigma sqrt(dt))            | [0, inf)   |
    | 3   | last step's bid fill        | 1 if our bid filled (any lots)                        | {0, 1}     |
    | 4   | last step's ask fill        | 1 if our ask filled                                   | {0, 1}     |
    | 5   | last mid change             | dS / (sigma sqrt(dt)), clipped                        | [-10, 10]  |
    | 6   | spread                      | ticks                                                 | [0, inf)   |
    | 7   | depth imbalance             | (bid - ask) / (bid + ask) lots over ``book.imbalance_levels`` from each best | [-1, 1] |
    | 8   | our bid's queue position    | lots ahead / level volume; -1 without a resting bid   | [-1, 1]    |
    | 9   | our ask's queue position    | same for the ask                                      | [-1, 1]    |
    | 10  | signed trade flow           | EWMA(buy - sell lots) / EWMA(buy + sell lots), half-life ``observation.vol_halflife`` | [-1, 1] |

    ## Rewards

    Same terms and keys as ``mmgym/MarketMaking-v0`` (they sum to the reward; all in ``info``):
    ``pnl`` (wealth change before taker costs and fees), ``impact`` (minus the cost of our taker
    executions - hedge and marketable quotes - against the mid just before each), ``fees``
    (``-(maker_fee * passive lots + taker_fee * taker lots)``), ``inventory_penalty``
    (``-phi q^2 dt``), ``terminal_penalty`` (``-alpha q_T^2``), ``dampening``
    (``-max(0, eta q dS)``, Spooner et al. 2018), ``utility`` (CARA objective). Wealth is
    cash + q * mid with the mid (best bid + best ask) / 2.

    ## Starting State

    A deterministic book around ``market.s0`` (level d from the opposite best holds
    round(lambda(d) / theta(d)) lots), then ``book.warmup`` time units of background flow drawn from
    the env's own stream; cash 0, q = ``market.q0``, no resting orders of ours.

    ## Episode End

    Terminated after ``round(horizon / dt)`` steps; never truncated.

    ## Arguments

    ``gym.make("mmgym/LOBMarketMaking-v0", config=None, render_mode=None, **overrides)``: ``config``
    is a YAML path, a mapping or an :class:`~mmgym.config.EnvConfig` (None: ``LOB_DEFAULTS``, the
    content of ``configs/lob.yaml``); ``overrides`` as for ``mmgym/MarketMaking-v0`` plus
    ``book={...}``.

    ## Version History

    - v0: initial version.
    """

    market_factory = staticmethod(_make_lob)

    def __init__(self, config: Any = None, render_mode: str | None = None, **overrides: Any):
        super().__init__(_lob_config(config, overrides), render_mode=render_mode, **overrides)
        self._reset_done_in_kernel = False

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        """Reset; right after an episode end without a new seed, return the book the kernel
        already reset (its warm-up draws from the stream), so a single env follows exactly the
        same stream as the vector env's SAME_STEP autoreset."""
        if self._reset_done_in_kernel and seed is None and self.market.seeded[0]:
            self._reset_done_in_kernel = False
            gym.Env.reset(self)
            self._last_info = {}
            return self.market.buffers.obs[0].copy(), {}
        self._reset_done_in_kernel = False
        return super().reset(seed=seed, options=options)

    def step(self, action):  # noqa: D102
        out = super().step(action)
        self._reset_done_in_kernel = out[2]
        return out


class LOBMarketMakingVectorEnv(BatchMarketVectorEnv):
    """``gym.make_vec("mmgym/LOBMarketMaking-v0", num_envs=N, vectorization_mode="vector_entry_point")``.

    N books stepped in one numba call with SAME_STEP autoreset; env i reset with seed s
    reproduces a single env reset with seed s + i.
    """

    market_factory = staticmethod(_make_lob)

    def __init__(self, num_envs: int = 1, config: Any = None, render_mode: str | None = None,
                 **overrides: Any):
        overrides.pop("max_episode_steps", None)
        super().__init__(num_envs, _lob_config(config, overrides), render_mode=render_mode, **overrides)

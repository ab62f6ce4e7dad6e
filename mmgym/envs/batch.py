"""The batched-market interface every simulator implements, and its intensity-market implementation.

A :class:`BatchMarket` owns the state arrays of ``num_envs`` independent markets and steps them
all with one numba kernel call. The Gymnasium single env, the Gymnasium vector env and the
stable-baselines3 ``VecEnv`` are thin layers over this one interface, so a new fidelity (the order
book, regimes, portfolios) plugs in by implementing it once.
"""

from __future__ import annotations

import abc
from typing import Any, NamedTuple, Sequence

import numpy as np
from gymnasium import spaces
from gymnasium.utils import seeding

from ..config import EnvConfig
from ..core import intensity as K
from ..sim.rng import rng_state_from_generator


class StepBuffers(NamedTuple):
    """Outputs of one batched step; arrays are reused and overwritten by the next step.

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


class BatchMarket(abc.ABC):
    """N independent markets stepped by one kernel call.

    Subclasses set ``term_names``, ``aux_names``, ``stat_names``, ``obs_dim``, ``n_steps``,
    ``single_observation_space`` and ``single_action_space``, allocate :attr:`buffers`, and
    implement :meth:`_reset_rows` and :meth:`_step`.
    """

    term_names: tuple[str, ...]
    aux_names: tuple[str, ...]
    stat_names: tuple[str, ...]
    #: Per-env state fields exposed through ``get_attr``/``set_attr`` of the vector adapters.
    state_fields: tuple[str, ...] = ()
    #: Aux columns that carry nothing under this config (left out of ``info``).
    unused_aux: frozenset[str] = frozenset()

    def __init__(self, config: EnvConfig, num_envs: int):
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        self.config = config
        self.num_envs = int(num_envs)
        self.rng = np.zeros((num_envs, 2), dtype=np.uint64)
        self._seeded = np.zeros(num_envs, dtype=np.bool_)
        self.buffers: StepBuffers

    # ------------------------------------------------------------------ random streams ---
    def seed_rows(self, seeds: Sequence[int | None], rows: Sequence[int] | None = None) -> None:
        """Give each row its own stream: ``seeding.np_random(seed)``, as a single env would.

        A row seeded with ``None`` gets fresh OS entropy. Env i of a vector env reset with seed s
        gets seed s + i, so it reproduces a single env reset with seed s + i.
        """
        rows = range(self.num_envs) if rows is None else rows
        for row, seed in zip(rows, seeds, strict=True):
            generator, _ = seeding.np_random(seed)
            self.set_rng_row(row, generator)

    def set_rng_row(self, row: int, generator: np.random.Generator) -> None:
        """Seed row ``row``'s kernel stream from a NumPy generator (e.g. a single env's np_random)."""
        self.rng[row] = rng_state_from_generator(generator)
        self._seeded[row] = True

    @property
    def seeded(self) -> np.ndarray:
        """(N,) bool: rows whose stream has been seeded."""
        return self._seeded

    # ----------------------------------------------------------------------- stepping ---
    def reset(self, mask: np.ndarray | None = None) -> np.ndarray:
        """Reset the rows in ``mask`` (all if None); unseeded rows get OS entropy. Returns obs."""
        mask = np.ones(self.num_envs, dtype=np.bool_) if mask is None else np.asarray(mask, bool)
        unseeded = np.flatnonzero(mask & ~self._seeded)
        if unseeded.size:
            self.seed_rows([None] * unseeded.size, unseeded.tolist())
        self._reset_rows(mask)
        return self.buffers.obs

    def step(self, actions: np.ndarray) -> StepBuffers:
        """Step all rows with ``actions`` (N, action_dim); finished rows autoreset.

        Raises:
            ValueError: on a wrong shape or a NaN/infinite action.
        """
        actions = np.asarray(actions)
        if actions.dtype != np.float32 and actions.dtype != np.float64:
            actions = actions.astype(np.float64)  # float32 and float64 go to the kernel as they are
        if actions.ndim == 1 and self.num_envs == 1:
            actions = actions.reshape(1, -1)
        if actions.shape != (self.num_envs, self.action_dim):
            raise ValueError(
                f"actions must have shape ({self.num_envs}, {self.action_dim}), got {actions.shape}"
            )
        bad = self._step(actions)
        if bad >= 0:
            raise ValueError(f"action of env {bad} is not finite: {actions[bad].tolist()}")
        return self.buffers

    def renew_outputs(self) -> StepBuffers:
        """Give the next step fresh ``obs``, ``reward``, ``done``, ``terms`` and ``aux`` arrays.

        The kernels write every row of these on every step, so a caller that hands the arrays
        out (the Gymnasium vector env) can call this before stepping instead of copying them after.
        """
        b = self.buffers
        e = np.empty_like
        self.buffers = StepBuffers(e(b.obs), e(b.reward), e(b.done), b.final_obs, b.final_stats,
                                   e(b.terms), e(b.aux))
        return self.buffers

    @property
    def action_dim(self) -> int:
        """Length of one env's action vector."""
        return int(self.single_action_space.shape[0])

    @abc.abstractmethod
    def _reset_rows(self, mask: np.ndarray) -> None: ...

    @abc.abstractmethod
    def _step(self, actions: np.ndarray) -> int: ...

    # ------------------------------------------------------------------- row access ---
    def get_field(self, name: str, rows: Sequence[int]) -> list[Any]:
        """Per-env state field values (``state_fields``) at ``rows``."""
        arr = getattr(self, name)
        return [arr[r].item() if arr[r].ndim == 0 else arr[r].copy() for r in rows]

    def set_field(self, name: str, value: Any, rows: Sequence[int]) -> None:
        """Write a per-env state field at ``rows``."""
        arr = getattr(self, name)
        for r in rows:
            arr[r] = value


class IntensityMarket(BatchMarket):
    """The intensity market of Avellaneda & Stoikov (2008) / Cartea, Jaimungal & Penalva (2015).

    State arrays (all batch-first):

    ============  ==================  ===============================================
    field         shape, dtype        meaning
    ============  ==================  ===============================================
    mid           (N,) float64        mid price
    cash          (N,) float64        cash
    inventory     (N,) int64          lots held
    step          (N,) int64          steps taken this episode
    vol_var       (N,) float64        EWMA of squared mid changes (price^2 per step)
    mid_ret       (N,) float64        last step's mid change
    last_fills    (N, 2) int64        last step's (bid, ask) fills
    wealth0       (N,) float64        cash + q mid at the start of the episode
    ep_stats      (N, N_STATS)        running episode statistics
    ============  ==================  ===============================================

    Args:
        config: the environment config.
        num_envs: number of markets.
        raw_depths: take raw depths ``(delta_b, delta_a[, hedge_lots])`` instead of normalised
            actions (used by the analytic baselines; not a Gymnasium action space).
        parallel: step rows on all cores (``numba.prange``); pays off from about 10,000 envs.
            Results are identical to the serial kernel.
    """

    term_names = K.TERM_NAMES
    aux_names = K.AUX_NAMES
    stat_names = K.STAT_NAMES
    state_fields = ("mid", "cash", "inventory", "step", "vol_var", "mid_ret", "wealth0")

    def __init__(self, config: EnvConfig, num_envs: int = 1, raw_depths: bool = False,
                 parallel: bool = False):
        super().__init__(config, num_envs)
        self.raw_depths = raw_depths
        self._kernel = K.intensity_step_parallel if parallel else K.intensity_step
        self.params = build_intensity_params(config, raw_depths=raw_depths)
        m = config.market
        self.n_steps = m.n_steps
        self.obs_dim = K.OBS_DIM
        n = num_envs
        self.mid = np.full(n, m.s0)
        self.cash = np.zeros(n)
        self.inventory = np.zeros(n, dtype=np.int64)
        self.step_count = np.zeros(n, dtype=np.int64)
        self.vol_var = np.zeros(n)
        self.mid_ret = np.zeros(n)
        self.last_fills = np.zeros((n, 2), dtype=np.int64)
        self.wealth0 = np.zeros(n)
        self.ep_stats = np.zeros((n, K.N_STATS))
        self.buffers = StepBuffers(
            obs=np.zeros((n, K.OBS_DIM), dtype=np.float32),
            reward=np.zeros(n),
            done=np.zeros(n, dtype=np.bool_),
            final_obs=np.zeros((n, K.OBS_DIM), dtype=np.float32),
            final_stats=np.zeros((n, K.N_STATS)),
            # column-major: each term / aux column is contiguous, so infos copy whole blocks
            terms=np.zeros((n, K.N_TERMS), order="F"),
            aux=np.zeros((n, K.N_AUX), order="F"),
        )
        self.single_observation_space = intensity_observation_space()
        self.single_action_space = intensity_action_space(config, raw_depths)
        unused = set()
        if raw_depths or config.action.mode != "as_hybrid":
            unused |= {"gamma", "skew"}
        if not config.action.hedge:
            unused.add("hedge_lots")
        self.unused_aux = frozenset(unused)

    def get_field(self, name: str, rows: Sequence[int]) -> list[Any]:  # noqa: D102
        return super().get_field("step_count" if name == "step" else name, rows)

    def set_field(self, name: str, value: Any, rows: Sequence[int]) -> None:  # noqa: D102
        super().set_field("step_count" if name == "step" else name, value, rows)

    def _reset_rows(self, mask: np.ndarray) -> None:
        K.intensity_reset(mask, self.mid, self.cash, self.inventory, self.step_count,
                          self.vol_var, self.mid_ret, self.last_fills, self.wealth0,
                          self.ep_stats, self.params, self.buffers.obs)

    def _step(self, actions: np.ndarray) -> int:
        b = self.buffers
        return self._kernel(self.mid, self.cash, self.inventory, self.step_count,
                            self.vol_var, self.mid_ret, self.last_fills, self.wealth0,
                            self.ep_stats, self.rng, self.params, actions, b.obs, b.reward, b.done, b.final_obs,
                            b.final_stats, b.terms, b.aux)


def build_intensity_params(config: EnvConfig, raw_depths: bool = False) -> np.ndarray:
    """Pack an :class:`EnvConfig` into the kernel's ``(N_PARAMS,) float64`` parameter vector."""
    m, r, a, im = config.market, config.reward, config.action, config.impact
    p = np.zeros(K.N_PARAMS)
    a_bid, a_ask, k_bid, k_ask = m.side_params()
    p[K.P_S0] = m.s0
    p[K.P_SIGMA] = m.sigma
    p[K.P_DT] = m.dt
    p[K.P_N_STEPS] = m.n_steps
    p[K.P_A_BID], p[K.P_A_ASK], p[K.P_K_BID], p[K.P_K_ASK] = a_bid, a_ask, k_bid, k_ask
    p[K.P_FILL_RULE] = 1.0 if m.fill_rule == "poisson" else 0.0
    p[K.P_MAX_INV] = m.max_inventory
    p[K.P_TICK] = m.tick_size
    p[K.P_NOISE] = 1.0 if m.mid_noise == "binomial" else 0.0
    p[K.P_Q0] = m.q0
    p[K.P_HALF_SPREAD] = im.half_spread
    p[K.P_ETA] = im.eta
    p[K.P_NU] = im.nu
    p[K.P_PHI] = r.inventory_penalty
    p[K.P_ALPHA] = r.terminal_penalty
    p[K.P_MAKER_FEE] = r.maker_fee
    p[K.P_TAKER_FEE] = r.taker_fee
    p[K.P_OBJECTIVE] = 1.0 if r.objective == "cara" else 0.0
    p[K.P_CARA_GAMMA] = r.cara_gamma
    p[K.P_DAMPENING] = r.dampening
    if raw_depths:
        p[K.P_ACTION_MODE] = K.MODE_DEPTHS
    else:
        p[K.P_ACTION_MODE] = K.MODE_AS_HYBRID if a.mode == "as_hybrid" else K.MODE_OFFSETS
    p[K.P_LOG_GAMMA_MIN] = np.log(a.gamma_min)
    p[K.P_LOG_GAMMA_MAX] = np.log(a.gamma_max)
    p[K.P_SKEW_MAX] = a.skew_max
    p[K.P_OFFSET_MIN] = a.offset_min
    p[K.P_OFFSET_MAX] = a.offset_max
    p[K.P_HEDGE] = 1.0 if a.hedge else 0.0
    p[K.P_HEDGE_MAX] = a.hedge_max_lots
    p[K.P_VOL_DECAY] = 1.0 - 0.5 ** (1.0 / config.observation.vol_halflife)
    return p


def intensity_observation_space() -> spaces.Box:
    """Box of the base observation (layout in :class:`~mmgym.envs.market_making.MarketMakingEnv`)."""
    low = np.array([-1.0, 0.0, 0.0, 0.0, 0.0, -10.0], dtype=np.float32)
    high = np.array([1.0, 1.0, 10.0, 1.0, 1.0, 10.0], dtype=np.float32)
    return spaces.Box(low, high, dtype=np.float32)


def intensity_action_space(config: EnvConfig, raw_depths: bool = False) -> spaces.Box:
    """[-1, 1]^d with d = 2 (+1 with the hedge dimension); unbounded for raw depths."""
    dim = 2 + (1 if config.action.hedge else 0)
    if raw_depths:
        return spaces.Box(-np.inf, np.inf, shape=(dim,), dtype=np.float64)
    return spaces.Box(-1.0, 1.0, shape=(dim,), dtype=np.float32)

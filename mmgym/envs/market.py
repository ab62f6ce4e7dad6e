"""The batched market: N independent markets of one scenario, stepped by one kernel call.

:class:`BatchMarket` owns the state arrays of ``num_envs`` markets of a registered scenario
(:mod:`mmgym.scenarios`) and steps them all with the scenario's kernel. The Gymnasium single env,
the Gymnasium vector env, the stable-baselines3 ``VecEnv``, the baselines and the evaluation all
sit on this one class; nothing above it knows which scenario it runs.
"""

from __future__ import annotations

import sys
from typing import Any, Sequence

import numpy as np
from gymnasium.utils import seeding
from numba import typeof

from ..scenarios import get as get_scenario
from ..scenarios.base import Scenario
from ..schema import EnvConfig
from ..sim.ledger import TRACK_PER_ASSET, Outputs, flat_assets, new_track
from ..sim.rng import rng_state_from_generator
from ..sim.skeleton import new_work

__all__ = ["BatchMarket", "StepBuffers", "Kernel", "TRAINING_STREAMS", "TUNING_STREAMS"]

#: The spawn key of training streams (:meth:`BatchMarket.seed_rows`): disjoint from evaluation's.
TRAINING_STREAMS = (0x6D6D7472,)  # "mmtr"
#: The spawn key of the tuned baselines' simulation set (mmgym/baselines/tuned.py): disjoint from
#: evaluation's (the empty key) and from training's.
TUNING_STREAMS = (0x6D6D7475,)  # "mmtu"

#: The outputs of one batched step (:class:`mmgym.sim.ledger.Outputs`).
StepBuffers = Outputs


class Kernel:
    """A numba kernel called through its compiled entry point.

    numba's dispatcher re-derives the argument types on every call, about 0.3 us per array inside
    a ``NamedTuple``; a market's arguments never change type, so after the first call (which
    compiles or loads the cache) the compiled function is called directly. ``key`` names what
    may change type between calls (the actions' dtype).
    """

    def __init__(self, dispatcher: Any):
        self.dispatcher = dispatcher
        self._entries: dict[Any, Any] = {}

    def __call__(self, key: Any, *args: Any) -> Any:
        entry = self._entries.get(key)
        if entry is not None:
            return entry(*args)
        result = self.dispatcher(*args)
        sig = tuple(typeof(a) for a in args)
        cres = self.dispatcher.overloads.get(sig)
        if cres is not None:
            self._entries[key] = cres.entry_point
        return result


class BatchMarket:
    """N independent markets of one scenario stepped by one kernel call.

    Args:
        config: the environment config (its ``id`` names the scenario).
        num_envs: number of markets.
        raw_depths: take raw depths ``(delta_b, delta_a[, hedge_lots])`` instead of normalised
            actions (the analytic baselines; not a Gymnasium action space).
        parallel: step rows on all cores (``numba.prange``) where the scenario has such a kernel;
            pays off from about 10,000 envs. Results are identical to the serial kernel.

    Attributes:
        scenario: the :class:`~mmgym.scenarios.base.Scenario`.
        track: the shared per-row bookkeeping (:class:`~mmgym.sim.ledger.Track`), per-asset
            fields ``(num_envs, K, ...)``.
        state: the scenario's per-row state (a NamedTuple of ``(num_envs, ...)`` arrays; its
            ``Scenario.per_asset_fields`` are ``(num_envs, K, ...)``). The kernels get views of
            both with the per-asset fields flattened to ``(num_envs * K, ...)``.
        params: the parameter record (1-element structured array).
        buffers: the last step's outputs (:class:`~mmgym.sim.ledger.Outputs`).
        term_names, aux_names, stat_names: column names of ``buffers.terms/aux/final_stats``.
    """

    def __init__(self, config: EnvConfig, num_envs: int = 1, raw_depths: bool = False,
                 parallel: bool = False):
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        sc = get_scenario(config.id)
        config = sc.coerce(config)
        sc.check(config)
        if config.action.quote_size > 0 and sc.sized_step_kernel is None:
            from ..config import ConfigError

            raise ConfigError(f"action.quote_size: {config.id} does not support quote sizes; must "
                              f"be 0 (got {config.action.quote_size})")
        self.scenario = sc
        self.config = config
        self.num_envs = n = int(num_envs)
        self.raw_depths = raw_depths
        self.n_steps = config.market.n_steps
        self.term_names = sc.terms.names
        aux_cols = sc.aux_columns(config)
        self.aux_names = aux_cols.names
        self.stat_names = sc.stats.names
        self.state_fields = sc.state_fields
        self.unused_aux = sc.unused_aux(config, raw_depths)
        self.single_observation_space = sc.observation_space(config)
        self.obs_dim = len(sc.obs_columns(config))  # the config's (the regimes' one-hot: R columns)
        self.single_action_space = sc.action_space(config, raw_depths)
        self.action_layout = sc.action_layout(config, raw_depths)
        self.params = sc.pack(config, raw_depths)
        self.rng = np.zeros((n, 2), dtype=np.uint64)
        self._seeded = np.zeros(n, dtype=np.bool_)
        self.track = new_track(n, sc.assets(config), len(sc.stats), self.rng)
        self.state = sc.new_state(config, n, self.rng)
        self.work = new_work(n)
        self.buffers = Outputs(
            obs=np.zeros((n, self.obs_dim), dtype=np.float32), reward=np.zeros(n),
            done=np.zeros(n, dtype=np.bool_),
            final_obs=np.zeros((n, self.obs_dim), dtype=np.float32),
            final_stats=np.zeros((n, len(sc.stats))),
            # column-major: each term / aux column is contiguous, so infos hand out whole blocks
            terms=np.zeros((n, len(sc.terms)), order="F"), aux=np.zeros((n, len(aux_cols)), order="F"))
        self._parallel = bool(parallel)
        self._action_shape = (n, self.action_dim)
        self._bind_kernels()
        _CompileNotice.install()

    def _bind_kernels(self) -> None:
        """The compiled kernels and the kernels' views of the state (not pickled: rebuilt)."""
        sc = self.scenario
        # the kernels see per-asset arrays flat, (N * K, ...): with K a compile-time constant of the
        # scenario, every row's address is one shared stride (LLVM keeps one induction pointer
        # instead of one per (N, K) array: ~10 % of the intensity kernel's time)
        self._kernel_track = flat_assets(self.track, TRACK_PER_ASSET)
        self._kernel_state = flat_assets(self.state, sc.per_asset_fields)
        if self.config.action.quote_size > 0:  # quote sizes: their own (serial) kernel
            self._step_kernel = Kernel(sc.sized_step_kernel)
        else:
            parallel = self._parallel and sc.parallel_kernel is not None
            self._step_kernel = Kernel(sc.parallel_kernel if parallel else sc.step_kernel)
        self._reset_kernel = Kernel(sc.reset_kernel)
        # read the scenario's state after a kernel call only when it has something to check
        self._check_state = (sc.check_state if type(sc).check_state is not Scenario.check_state
                             else None)

    _UNPICKLED = ("_kernel_track", "_kernel_state", "_step_kernel", "_reset_kernel", "_check_state")

    def __getstate__(self) -> dict[str, Any]:
        # arrays pickle with their sharing intact (one memo per object); compiled entry points
        # and the flat views are rebuilt on load
        return {k: v for k, v in self.__dict__.items() if k not in self._UNPICKLED}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._bind_kernels()

    # ----------------------------------------------------------------- random streams ---
    def seed_rows(self, seeds: Sequence[int | None], rows: Sequence[int] | None = None,
                  spawn_key: tuple[int, ...] = ()) -> None:
        """Give each row its own stream: ``seeding.np_random(seed)``, as a single env would.

        A row seeded with ``None`` gets fresh OS entropy. Env i of a vector env reset with seed s
        gets seed s + i, so it reproduces a single env reset with seed s + i.

        ``spawn_key`` names a separate family of streams: the row's generator is
        ``PCG64(SeedSequence(seed, spawn_key=spawn_key))``, which NumPy's design keeps distinct
        from every stream of another spawn key for every seed (the key is hashed into the
        entropy pool). Training uses :data:`TRAINING_STREAMS`, the tuned baselines' search
        :data:`TUNING_STREAMS`, evaluation the empty key, so neither a training episode nor a
        tuning episode replays an evaluation scenario whatever the seeds are.
        """
        rows = range(self.num_envs) if rows is None else rows
        for row, seed in zip(rows, seeds, strict=True):
            if spawn_key and seed is not None:
                generator = np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=spawn_key)))
            else:
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
        if mask.shape != (self.num_envs,):
            raise ValueError(f"reset mask must have shape ({self.num_envs},), got {mask.shape}")
        unseeded = np.flatnonzero(mask & ~self._seeded)
        if unseeded.size:
            self.seed_rows([None] * unseeded.size, unseeded.tolist())
        self._reset_kernel(None, mask, self._kernel_track, self._kernel_state, self.params, self.buffers)
        if self._check_state is not None:
            self._check_state(self)
        return self.buffers.obs

    def step(self, actions: np.ndarray) -> Outputs:
        """Step all rows with ``actions`` (N, action_dim); finished rows autoreset.

        Raises:
            ValueError: on a wrong shape or a NaN/infinite action (nothing is stepped then).
        """
        actions = np.asarray(actions)
        if actions.ndim == 1 and self.num_envs == 1:
            actions = actions.reshape(1, -1)
        if actions.shape != self._action_shape:
            raise ValueError(
                f"actions must have shape ({self.num_envs}, {self.action_dim}), got {actions.shape}")
        bad = self._step(actions)
        if bad >= 0:
            raise ValueError(f"action of env {bad} is not finite: {actions[bad].tolist()}")
        return self.buffers

    def _step(self, actions: np.ndarray) -> int:
        """Run the kernel on checked-shape actions; the first non-finite row, or -1."""
        if actions.dtype != np.float64 and actions.dtype != np.float32:
            actions = actions.astype(np.float64)  # float32 and float64 go to the kernel as they are
        if not actions.flags.c_contiguous:
            actions = np.ascontiguousarray(actions)
        bad = self._step_kernel(actions.dtype.char, self._kernel_track, self._kernel_state, self.params,
                                actions, self.buffers, self.work, 0, self.num_envs)
        if self._check_state is not None:
            self._check_state(self)
        return bad

    def renew_outputs(self) -> Outputs:
        """Give the next step fresh ``obs``, ``reward``, ``done``, ``terms`` and ``aux`` arrays.

        The kernels write every row of these on every step, so a caller that hands the arrays
        out (the Gymnasium vector env) can call this before stepping instead of copying them after.
        """
        b = self.buffers
        e = np.empty_like
        self.buffers = Outputs(e(b.obs), e(b.reward), e(b.done), b.final_obs, b.final_stats,
                               e(b.terms), e(b.aux))
        return self.buffers

    @property
    def action_dim(self) -> int:
        """Length of one env's action vector."""
        return int(self.single_action_space.shape[0])

    @property
    def has_hedge(self) -> bool:
        """The action has market-order columns."""
        return self.action_layout.hedge is not None

    # ------------------------------------------------------------------- row access ---
    @property
    def step_count(self) -> np.ndarray:
        """(N,) int64 steps taken this episode."""
        return self.track.step

    @property
    def inventory(self) -> np.ndarray:
        """(N, K) int64 lots held."""
        return self.scenario.field_array(self, "inventory")

    def field(self, name: str) -> np.ndarray:
        """The (N, ...) array of a state field (``state_fields``)."""
        return self.scenario.field_array(self, name)

    def __getattr__(self, name: str) -> np.ndarray:
        # state fields read as attributes: market.mid, market.cash (the scenario's arrays)
        if name != "scenario" and name in self.__dict__.get("state_fields", ()):
            return self.scenario.field_array(self, name)
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    def get_field(self, name: str, rows: Sequence[int]) -> list[Any]:
        """Per-env state field values (``state_fields``) at ``rows``."""
        return self.scenario.get_field(self, name, rows)

    def set_field(self, name: str, value: Any, rows: Sequence[int]) -> None:
        """Write a per-env state field at ``rows``."""
        self.scenario.set_field(self, name, value, rows)

    def __repr__(self) -> str:
        return f"BatchMarket({self.scenario.id}, num_envs={self.num_envs})"


class _CompileNotice:
    """One line on stderr when numba starts compiling one of mmgym's kernels (a cold cache only:
    loading a cached kernel fires no compile event)."""

    installed = False
    printed = False

    @classmethod
    def install(cls) -> None:
        if cls.installed:
            return
        from numba.core import event

        class Listener(event.Listener):
            def on_start(self, ev: Any) -> None:
                fn = getattr(ev.data.get("dispatcher"), "py_func", None)
                if not cls.printed and getattr(fn, "__module__", "").startswith("mmgym."):
                    cls.printed = True
                    print("mmgym: compiling kernels (first run only; cached afterwards)...",
                          file=sys.stderr, flush=True)

            def on_end(self, ev: Any) -> None:
                pass

        event.register("numba:compile", Listener())
        cls.installed = True

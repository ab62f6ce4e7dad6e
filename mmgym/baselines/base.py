"""The interface of every analytic baseline: a batched (step, inventory) -> raw-depth policy.

All baselines of this package depend on the state only through the step index ``t`` and the
inventory ``q`` (the mid's martingale part drops out of every closed form and of the exact
optimum), so a baseline is a pair of vectorised functions::

    depths(step, q) -> (delta_b, delta_a)      # float64, q's shape, price units from the mid
    hedge(step, q)  -> v                      # int64, q's shape: market-order lots (0 unless hedging)

with ``step`` of shape (N,) and ``q`` of shape (N, K) (the asset axis of the batched market's
state; (N,) is taken as one asset). :meth:`DepthPolicy.act` turns a batched market's state into
the kernel's raw-depth action array (columns by the market's action layout: K bid depths, K ask
depths, K market orders; :class:`~mmgym.envs.market.BatchMarket` with ``raw_depths=True``). A side
that must not quote is handled by the kernel's inventory bound, so baselines always return finite
depths on both sides.

With ``action.quote_size`` = m > 0 a policy also shows lots per side, ``lots(step, q) -> (m_b,
m_a)`` (int64, q's shape, post-hedge inventory; 0 = no quote): one lot each by default (every
static baseline quotes one lot), the size tables for ``optimal``. The kernel clips them to the
room the inventory bound leaves.

Quotes are computed from the **post-hedge** inventory (the kernel executes the market order
first, step rule 0), i.e. ``depths(step, q + hedge(step, q))``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..config import ConfigError, EnvConfig

__all__ = ["DepthPolicy", "MarketParams"]


def _broadcast(step: Any, q: Any) -> tuple[np.ndarray, np.ndarray]:
    """``step`` (N,) shaped to broadcast against ``q`` ((N,) or (N, K))."""
    step = np.asarray(step)
    q = np.asarray(q)
    if q.ndim == 2 and step.ndim == 1:
        step = step[:, None]
    return step, q


class MarketParams:
    """The market constants the closed forms need, read from an :class:`EnvConfig`.

    Attributes:
        sigma, dt, horizon: volatility (price / sqrt(time)), step length and T (time units).
        n_steps: steps per episode. max_inventory: the bound Q (lots).
        A_bid, A_ask, k_bid, k_ask: fill intensity lambda(delta) = A exp(-k delta) per side.
        A, k: the means of the two sides (the closed forms assume symmetric sides).
    """

    def __init__(self, config: EnvConfig):
        m = config.market
        self.sigma = float(m.sigma)
        self.dt = float(m.dt)
        self.horizon = float(m.horizon)
        self.n_steps = int(m.n_steps)
        self.max_inventory = int(m.max_inventory)
        self.A_bid, self.A_ask, self.k_bid, self.k_ask = (float(x) for x in m.side_params())
        self.A = 0.5 * (self.A_bid + self.A_ask)
        self.k = 0.5 * (self.k_bid + self.k_ask)

    def tau(self, step: np.ndarray) -> np.ndarray:
        """Time to the horizon T - t at the start of step ``step``: (n_steps - step) dt."""
        return (self.n_steps - np.asarray(step, dtype=np.float64)) * self.dt


class DepthPolicy:
    """Base class of the baselines: (step, q) -> raw depths, batched over envs.

    Subclasses implement :meth:`depths` (and :meth:`hedge` when they trade with market orders).

    Args:
        config: the environment config the policy quotes in.
    """

    #: Name under which evaluate.py and :func:`mmgym.baselines.make_baseline` know the policy.
    name: str = "policy"
    #: True if the policy needs the hedge action dimension (``env.action.hedge: true``).
    needs_hedge: bool = False
    #: The policy's exact expected objective from the initial state, when it knows it (``optimal``).
    v0: float | None = None
    #: Whether ``v0`` is exact for the env's discrete rules.
    exact: bool = False

    def __init__(self, config: EnvConfig):
        self.config = config
        self.mp = MarketParams(config)
        if self.needs_hedge and not config.action.hedge:
            raise ConfigError(
                f"baseline {self.name!r} trades with market orders and needs the hedge action: "
                "set env.action.hedge: true (e.g. --set action.hedge=true)"
            )

    # ------------------------------------------------------------------------ the policy ---
    def depths(self, step: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Bid and ask depths ``(delta_b, delta_a)`` at post-hedge inventory q (q's shape).

        Args:
            step: (N,) steps taken. q: (N,) or (N, K) inventories.
        """
        step, q = _broadcast(step, q)
        d_b, d_a = self._depths(step, q)
        return (np.broadcast_to(np.asarray(d_b, dtype=np.float64), q.shape),
                np.broadcast_to(np.asarray(d_a, dtype=np.float64), q.shape))

    def hedge(self, step: np.ndarray, q: np.ndarray) -> np.ndarray:
        """Market order in lots (positive buys) from pre-hedge inventory q, int64 of q's shape."""
        step, q = _broadcast(step, q)
        return np.broadcast_to(np.asarray(self._hedge(step, q), dtype=np.int64), q.shape)

    def _depths(self, step: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`depths` elementwise; ``step`` broadcasts against ``q``."""
        raise NotImplementedError

    def _hedge(self, step: np.ndarray, q: np.ndarray) -> np.ndarray:
        """:meth:`hedge` elementwise (default: never trade)."""
        return np.zeros(q.shape, dtype=np.int64)

    def lots(self, step: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Lots shown ``(m_b, m_a)`` at post-hedge inventory q, int64 of q's shape (module
        docstring; used with ``action.quote_size`` > 0)."""
        step, q = _broadcast(step, q)
        m_b, m_a = self._lots(step, q)
        return (np.broadcast_to(np.asarray(m_b, dtype=np.int64), q.shape),
                np.broadcast_to(np.asarray(m_a, dtype=np.int64), q.shape))

    def _lots(self, step: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`lots` elementwise (default: one lot per side)."""
        one = np.ones(q.shape, dtype=np.int64)
        return one, one

    # ------------------------------------------------------------------------- plumbing ---
    def act(self, market: Any, out: np.ndarray | None = None) -> np.ndarray:
        """Raw-depth actions ``(N, action_dim)`` for a batched market's current state.

        Args:
            market: a :class:`~mmgym.envs.market.BatchMarket` (reads ``step_count``, the (N, K)
                ``inventory`` and its ``action_layout``).
            out: optional preallocated ``(N, action_dim)`` float64 array.
        """
        step = market.step_count
        q = market.inventory
        layout = market.action_layout
        if out is None:
            out = np.empty((step.shape[0], market.action_dim))
        if layout.hedge is not None:
            v = self.hedge(step, q)
            q_post = np.clip(q + v, -self.mp.max_inventory, self.mp.max_inventory)
            out[:, layout.hedge] = v
        else:
            q_post = q
        d_b, d_a = self.depths(step, q_post)
        out[:, layout.bid] = d_b
        out[:, layout.ask] = d_a
        if layout.size_bid is not None:
            m_b, m_a = self.lots(step, q_post)
            out[:, layout.size_bid] = m_b
            out[:, layout.size_ask] = m_a
        return out

    def surface(self) -> tuple[np.ndarray, np.ndarray]:
        """Depth tables ``(delta_b, delta_a)``, each ``(n_steps, 2Q+1)``, over every (t, q).

        Entries on the side that cannot quote (bid at q = Q, ask at q = -Q) are NaN.
        """
        q_max = self.mp.max_inventory
        qs = np.arange(-q_max, q_max + 1)
        t_grid, q_grid = np.meshgrid(np.arange(self.mp.n_steps), qs, indexing="ij")
        d_b, d_a = self.depths(t_grid.ravel(), q_grid.ravel())
        d_b = np.asarray(d_b, dtype=np.float64).reshape(t_grid.shape).copy()
        d_a = np.asarray(d_a, dtype=np.float64).reshape(t_grid.shape).copy()
        d_b[:, -1] = np.nan
        d_a[:, 0] = np.nan
        return d_b, d_a

    def tables(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(delta_b, delta_a, hedge)`` over every (t, q): depths at post-hedge inventory (finite
        everywhere), hedge lots at pre-hedge inventory. Shapes ``(n_steps, 2Q+1)``."""
        q_max = self.mp.max_inventory
        qs = np.arange(-q_max, q_max + 1)
        t_grid, q_grid = np.meshgrid(np.arange(self.mp.n_steps), qs, indexing="ij")
        d_b, d_a = self.depths(t_grid.ravel(), q_grid.ravel())
        v = self.hedge(t_grid.ravel(), q_grid.ravel())
        shape = t_grid.shape
        return (np.asarray(d_b, float).reshape(shape), np.asarray(d_a, float).reshape(shape),
                np.asarray(v, np.int64).reshape(shape))

    def size_tables(self) -> tuple[np.ndarray, np.ndarray] | None:
        """``(lots_b, lots_a)`` over every (t, q) at post-hedge inventory, shapes ``(n_steps,
        2Q+1)`` (for :func:`~mmgym.baselines.evaluate_tables`); None without
        ``action.quote_size`` (one lot per side)."""
        if self.config.action.quote_size == 0:
            return None
        q_max = self.mp.max_inventory
        qs = np.arange(-q_max, q_max + 1)
        t_grid, q_grid = np.meshgrid(np.arange(self.mp.n_steps), qs, indexing="ij")
        m_b, m_a = self.lots(t_grid.ravel(), q_grid.ravel())
        return (np.asarray(m_b, np.int64).reshape(t_grid.shape),
                np.asarray(m_a, np.int64).reshape(t_grid.shape))

    def describe(self) -> dict[str, Any]:
        """Parameters identifying the policy (part of the evaluation cache key)."""
        return {"name": self.name}

    def report(self) -> dict[str, Any]:
        """What the evaluation records as the policy's ``params``: :meth:`describe` plus facts that
        do not identify the policy (a search's wall time)."""
        return self.describe()

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.describe().items() if k != "name")
        return f"{type(self).__name__}({params})"

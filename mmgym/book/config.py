"""The ``env.book`` section of the YAML schema: the limit order book and its background flow.

Rates are per time unit of ``market.dt`` (seconds in ``configs/lob.yaml``); sizes in lots.
Defaults follow the shape of Cont, Stoikov & Talreja (2010, Table 1: lambda(i) = k / i^alpha with
alpha = 0.52, their theta(i) profile) rescaled so the book is liquid: the default flow gives a
1-2 tick spread most of the time, mean depth rising away from the touch and fat-tailed mid returns
(docs/LOB.md, tests/test_book.py::test_stylised_facts).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from ..schema import Section

__all__ = ["BookConfig", "CST_THETA"]

#: theta(1..10) of Cont, Stoikov & Talreja (2010), Table 1 (cancellations per order per second).
CST_THETA = (0.71, 0.81, 0.68, 0.56, 0.47, 0.37, 0.30, 0.29, 0.32, 0.30)


class BookConfig(Section):
    """The numba limit order book (mmgym/LOBMarketMaking-v0); ignored by the intensity market."""

    n_levels: int = Field(256, ge=16)
    """Levels per side in each env's dense tick ladder (the window around the reference price)."""
    max_orders: int = Field(4, ge=2)
    """Order record slots per env (the env uses one bid and one ask)."""
    flow_levels: int = Field(10, ge=1)
    """K: limit orders arrive at, and cancels act on, distances 1..K ticks from the opposite best."""
    limit_k: float = Field(3.84, ge=0.0)
    """Limit-order arrival rate at distance i: lambda(i) = limit_k / i^limit_alpha (CST 2010)."""
    limit_alpha: float = Field(0.52, ge=0.0)
    """Power-law exponent of lambda(i) (CST 2010 fit: 0.52)."""
    limit_rates: list[float] | None = None
    """Explicit lambda(1..K) (overrides limit_k / limit_alpha; its length sets K)."""
    cancel_rates: list[float] = Field(default_factory=lambda: [t / 2 for t in CST_THETA])
    """theta(1..K): cancel rate per resting background lot at distance i (last value repeats)."""
    market_rate: float = Field(3.0, ge=0.0)
    """mu: background market orders per time unit, per side."""
    market_rate_buy: float | None = Field(None, ge=0.0)
    """Buy-side mu (defaults to market_rate)."""
    market_rate_sell: float | None = Field(None, ge=0.0)
    """Sell-side mu (defaults to market_rate)."""
    limit_size_mean: float = Field(1.0, ge=1.0)
    """Mean of the geometric limit-order (and cancel) size, lots (1: unit orders as in CST)."""
    market_size_mean: float = Field(3.0, ge=1.0)
    """Mean of the geometric market-order size, lots."""
    max_size: int = Field(1000, ge=1)
    """Cap on any drawn order size, lots."""
    queue_model: Literal["pessimistic", "power"] = "pessimistic"
    """How background cancels move our queue position: 'pessimistic' (always from behind us) or
    'power' (from segment j w.p. s_j^n / sum s^n; hftbacktest's PowerProbQueueFunc)."""
    queue_power: float = Field(2.0, ge=0.0)
    """Exponent n of the 'power' queue model."""
    recentre_margin: int | None = Field(None, ge=1)
    """Re-centre when a best comes within this many levels of a window edge (None: K + 2)."""
    initial_spread_ticks: int = Field(1, ge=1)
    """Spread of the deterministic initial book (before the warm-up)."""
    warmup: float = Field(30.0, ge=0.0)
    """Background flow simulated at each reset before the episode starts (time units)."""
    quote_lots: int = Field(1, ge=1)
    """Size of each of our quotes (lots), clipped so |q| never exceeds market.max_inventory."""
    entry_latency: float = Field(0.0, ge=0.0)
    """Order-entry latency: our orders of a step reach the book this long after its start (< dt)."""
    entry_latency_events: int = Field(0, ge=0)
    """... and then after this many more background events (capped at the end of the step)."""
    obs_delay_steps: int = Field(0, ge=0)
    """Observation delay: market features and the mid the quotes refer to are this many steps old."""
    imbalance_levels: int = Field(5, ge=1)
    """Depth imbalance feature: levels from each best summed."""

    @model_validator(mode="after")
    def _check(self) -> BookConfig:
        if self.limit_rates is not None:
            if not self.limit_rates or any(r < 0 for r in self.limit_rates):
                raise ValueError("limit_rates must be a non-empty list of rates >= 0")
        if not self.cancel_rates or any(r < 0 for r in self.cancel_rates):
            raise ValueError("cancel_rates must be a non-empty list of rates >= 0")
        if 2 * (self.margin + self.flow_K) >= self.n_levels:
            raise ValueError(f"n_levels ({self.n_levels}) too small for K={self.flow_K} and margin {self.margin}")
        return self

    @property
    def flow_K(self) -> int:
        """K, the number of flow levels."""
        return len(self.limit_rates) if self.limit_rates is not None else self.flow_levels

    @property
    def margin(self) -> int:
        """Re-centring margin in levels."""
        return self.recentre_margin if self.recentre_margin is not None else self.flow_K + 2

    def lam(self) -> np.ndarray:
        """lambda(1..K), (K,) float64."""
        if self.limit_rates is not None:
            return np.asarray(self.limit_rates, dtype=np.float64)
        i = np.arange(1, self.flow_K + 1, dtype=np.float64)
        return self.limit_k / i**self.limit_alpha

    def theta(self) -> np.ndarray:
        """theta(1..K), (K,) float64 (the last configured value repeats)."""
        th = list(self.cancel_rates)[: self.flow_K]
        th += [th[-1]] * (self.flow_K - len(th))
        return np.asarray(th, dtype=np.float64)

    def flow_params(self) -> np.ndarray:
        """The kernel's ``fp`` vector (``mmgym.book.kernel.FP_*``)."""
        from . import kernel as K

        fp = np.zeros(K.N_FP)
        fp[K.FP_MU_BUY] = self.market_rate if self.market_rate_buy is None else self.market_rate_buy
        fp[K.FP_MU_SELL] = self.market_rate if self.market_rate_sell is None else self.market_rate_sell
        fp[K.FP_LOGQ_LIMIT] = np.log1p(-1.0 / self.limit_size_mean) if self.limit_size_mean > 1 else 0.0
        fp[K.FP_LOGQ_MARKET] = np.log1p(-1.0 / self.market_size_mean) if self.market_size_mean > 1 else 0.0
        fp[K.FP_MAX_SIZE] = self.max_size
        fp[K.FP_QUEUE_MODEL] = K.QUEUE_POWER if self.queue_model == "power" else K.QUEUE_PESSIMISTIC
        fp[K.FP_QUEUE_POWER] = self.queue_power
        fp[K.FP_MARGIN] = self.margin
        return fp

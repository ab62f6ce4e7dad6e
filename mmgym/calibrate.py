"""Estimate sigma and lambda(delta) = A exp(-k delta) from a mid series and a trade tape.

Plain arrays in, a dataclass out, so a simulated book (:func:`record_book`) and a replay of real
data feed the same estimator.

- Volatility: the standard deviation of mid changes over a fixed interval, scaled to one time
  unit: sigma = std(dS) / sqrt(interval).
- Intensity (hftbacktest's GLFT tutorial; Hummingbot's trading-intensity estimator): for each
  market order, its depth delta = |deepest price reached - mid before it|; the arrival rate of
  orders reaching at least delta is lambda(delta) = #{orders with depth >= delta} / T. Fitting
  ln lambda(delta) = ln A - k delta by least squares over a grid of depths gives A and k
  (Avellaneda & Stoikov 2008's fill intensity).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Calibration", "BookTape", "estimate_sigma", "estimate_intensity", "calibrate", "record_book"]


@dataclass(frozen=True)
class Calibration:
    """Estimated parameters (price units, per time unit).

    Attributes:
        sigma: volatility of the mid, price units per sqrt(time unit).
        A: arrival rate of market orders reaching depth 0.
        k: decay of the arrival rate with depth, per price unit.
        depths: (n,) float64, the depth grid of the fit. rates: (n,) float64, lambda at each depth.
    """

    sigma: float
    A: float
    k: float
    depths: np.ndarray
    rates: np.ndarray


@dataclass(frozen=True)
class BookTape:
    """A recorded book: mids every ``sample_dt`` and the market-order tape.

    Attributes:
        mid_t, mid: (n,) float64 sample times and mids (price units).
        trade_t: (m,) float64 times; trade_side: (m,) int64 (+1 buyer-initiated, -1 seller);
        trade_px: (m,) float64 deepest price reached; trade_qty: (m,) int64 lots;
        trade_mid: (m,) float64 mid just before each trade. duration: time covered.
    """

    mid_t: np.ndarray
    mid: np.ndarray
    trade_t: np.ndarray
    trade_side: np.ndarray
    trade_px: np.ndarray
    trade_qty: np.ndarray
    trade_mid: np.ndarray
    duration: float


def estimate_sigma(mid: np.ndarray, interval: float) -> float:
    """sigma = std of mid changes over ``interval`` / sqrt(interval) (mids sampled every interval)."""
    d = np.diff(np.asarray(mid, dtype=np.float64))
    if d.size < 2:
        raise ValueError("need at least three mid samples")
    return float(d.std(ddof=1) / np.sqrt(interval))


def estimate_intensity(depths: np.ndarray, duration: float, grid: np.ndarray | None = None,
                       min_count: int = 10) -> tuple[float, float, np.ndarray, np.ndarray]:
    """Fit lambda(delta) = A exp(-k delta) to the depths market orders reached.

    Args:
        depths: (m,) float64, |deepest price - mid before the order| per market order.
        duration: time covered by the tape (time units).
        grid: depth grid (default: 20 points from 0 to the 95th percentile of ``depths``).
        min_count: grid points with fewer orders reaching them are left out of the fit.

    Returns:
        (A, k, grid, rates) with rates = #{depth >= grid} / duration.
    """
    depths = np.asarray(depths, dtype=np.float64)
    if grid is None:
        grid = np.linspace(0.0, np.quantile(depths, 0.95), 20)
    counts = (depths[None, :] >= grid[:, None] - 1e-12).sum(axis=1)
    rates = counts / duration
    ok = counts >= min_count
    if ok.sum() < 2:
        raise ValueError("too few market orders to fit the intensity")
    slope, intercept = np.polyfit(grid[ok], np.log(rates[ok]), 1)
    return float(np.exp(intercept)), float(-slope), np.asarray(grid), rates


def calibrate(mid: np.ndarray, interval: float, trade_px: np.ndarray, trade_mid: np.ndarray,
              duration: float, grid: np.ndarray | None = None) -> Calibration:
    """sigma from the mid series, (A, k) from the trade tape (module docstring)."""
    sigma = estimate_sigma(mid, interval)
    depth = np.abs(np.asarray(trade_px, dtype=np.float64) - np.asarray(trade_mid, dtype=np.float64))
    A, k, g, rates = estimate_intensity(depth, duration, grid)
    return Calibration(sigma=sigma, A=A, k=k, depths=g, rates=rates)


def record_book(config=None, duration: float = 3600.0, sample_dt: float = 1.0, seed: int = 0,
                max_trades: int | None = None) -> BookTape:
    """Simulate the background book of ``config`` (an EnvConfig; None: the LOB defaults) for
    ``duration`` time units after its warm-up, and return the mid series and market-order tape."""
    from gymnasium.utils import seeding

    from .book import kernel as BK
    from .core.rng import rng_state_from_generator
    from .envs.lob import LOBMarket, default_lob_config

    cfg = default_lob_config() if config is None else config
    market = LOBMarket(cfg, 1)
    gen, _ = seeding.np_random(seed)
    market.rng[0] = rng_state_from_generator(gen)
    market.reset()
    b = market.book
    n = int(round(duration / sample_dt))
    cap = max_trades or int(duration * (market.fp[BK.FP_MU_BUY] + market.fp[BK.FP_MU_SELL]) * 2 + 1000)
    out_mid2 = np.zeros(n, dtype=np.int64)
    rec_t = np.zeros(cap)
    rec_side = np.zeros(cap, dtype=np.int64)
    rec_px = np.zeros(cap, dtype=np.int64)
    rec_qty = np.zeros(cap, dtype=np.int64)
    rec_mid2 = np.zeros(cap, dtype=np.int64)
    rec_n = np.zeros(1, dtype=np.int64)
    BK.book_record(b, 0, duration, sample_dt, market.lam, market.theta, market.fp, out_mid2, rec_t,
                   rec_side, rec_px, rec_qty, rec_mid2, rec_n)
    m = int(rec_n[0])
    tick = cfg.market.tick_size
    return BookTape(
        mid_t=(np.arange(n) + 1) * sample_dt, mid=out_mid2 * (0.5 * tick), trade_t=rec_t[:m].copy(),
        trade_side=np.where(rec_side[:m] == BK.BUY, 1, -1), trade_px=rec_px[:m] * tick,
        trade_qty=rec_qty[:m].copy(), trade_mid=rec_mid2[:m] * (0.5 * tick), duration=duration,
    )

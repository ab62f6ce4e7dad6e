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
- Per side: lambda(delta) in Avellaneda & Stoikov is the rate at which *one* of our quotes is
  reached, i.e. the ask by buyer-initiated orders and the bid by seller-initiated ones. With the
  tape's sides given, :func:`calibrate` fits each side on its own orders (``A_bid``, ``k_bid`` from
  sellers, ``A_ask``, ``k_ask`` from buyers) and reports ``A``, ``k`` as the means of the two sides.
  Pooling both sides (``trade_side=None``) counts both sides' orders and gives about twice the
  per-side A.

Command line (prints the ``market:`` values for a config's book)::

    python -m mmgym.calibrate configs/lob.yaml --duration 3600 --seed 0
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Calibration", "BookTape", "estimate_sigma", "estimate_intensity", "calibrate", "calibrate_book",
           "record_book"]


@dataclass(frozen=True)
class Calibration:
    """Estimated parameters (price units, per time unit).

    Attributes:
        sigma: volatility of the mid, price units per sqrt(time unit).
        A: arrival rate of market orders reaching depth 0.
        k: decay of the arrival rate with depth, per price unit.
        depths: (n,) float64, the depth grid of the fit. rates: (n,) float64, lambda at each depth
            (pooled over both sides).
        A_bid, k_bid, A_ask, k_ask: per-side fits (None when the trade sides were not given).
    """

    sigma: float
    A: float
    k: float
    depths: np.ndarray
    rates: np.ndarray
    A_bid: float | None = None
    k_bid: float | None = None
    A_ask: float | None = None
    k_ask: float | None = None


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
              duration: float, grid: np.ndarray | None = None,
              trade_side: np.ndarray | None = None) -> Calibration:
    """sigma from the mid series, (A, k) from the trade tape (module docstring).

    Args:
        mid, interval: mids sampled every ``interval`` time units.
        trade_px, trade_mid: (m,) deepest price reached and mid before each market order.
        duration: time covered by the tape.
        grid: depth grid of the intensity fit (default: from the pooled depths).
        trade_side: (m,) +1 buyer-initiated / -1 seller-initiated; given, A and k are the means of
            the per-side fits (the per-quote intensity of AS 2008); None pools both sides.
    """
    sigma = estimate_sigma(mid, interval)
    depth = np.abs(np.asarray(trade_px, dtype=np.float64) - np.asarray(trade_mid, dtype=np.float64))
    if grid is None:
        grid = np.linspace(0.0, np.quantile(depth, 0.95), 20)
    A, k, g, rates = estimate_intensity(depth, duration, grid)
    if trade_side is None:
        return Calibration(sigma=sigma, A=A, k=k, depths=g, rates=rates)
    side = np.asarray(trade_side)
    A_b, k_b, _, _ = estimate_intensity(depth[side < 0], duration, grid)
    A_a, k_a, _, _ = estimate_intensity(depth[side > 0], duration, grid)
    return Calibration(sigma=sigma, A=0.5 * (A_b + A_a), k=0.5 * (k_b + k_a), depths=g, rates=rates,
                       A_bid=A_b, k_bid=k_b, A_ask=A_a, k_ask=k_a)


def calibrate_book(config=None, duration: float = 3600.0, seed: int = 0) -> Calibration:
    """Per-side calibration of the simulated book of ``config`` (an EnvConfig; None: the LOB
    defaults): :func:`record_book` then :func:`calibrate` with mids every time unit. This is how
    ``configs/lob.yaml``'s ``market.sigma``, ``A`` and ``k`` were produced (duration 3600, seed 0)."""
    t = record_book(config, duration=duration, sample_dt=1.0, seed=seed)
    return calibrate(t.mid, 1.0, t.trade_px, t.trade_mid, t.duration, trade_side=t.trade_side)


def record_book(config=None, duration: float = 3600.0, sample_dt: float = 1.0, seed: int = 0,
                max_trades: int | None = None) -> BookTape:
    """Simulate the background book of ``config`` (an EnvConfig; None: the LOB defaults) for
    ``duration`` time units after its warm-up, and return the mid series and market-order tape."""
    from .envs.market import BatchMarket
    from .scenarios.lob import default_lob_config
    from .sim import book as BK

    cfg = default_lob_config() if config is None else config
    market = BatchMarket(cfg, 1)
    market.seed_rows([seed])  # the stream of a single env reset with ``seed``
    market.reset()
    st = market.state
    fp = market.params[0]["flow"]
    n = int(round(duration / sample_dt))
    cap = max_trades or int(duration * (fp["mu_buy"] + fp["mu_sell"]) * 2 + 1000)
    out_mid2 = np.zeros(n, dtype=np.int64)
    tape = BK.new_tape(cap)
    BK.book_record(st.book, 0, duration, sample_dt, st.lam, st.theta, cfg.book.flow_record(), out_mid2,
                   tape)
    m = int(tape.n[0])
    tick = cfg.market.tick_size
    return BookTape(
        mid_t=(np.arange(n) + 1) * sample_dt, mid=out_mid2 * (0.5 * tick), trade_t=tape.t[:m].copy(),
        trade_side=np.where(tape.side[:m] == BK.BUY, 1, -1), trade_px=tape.px[:m] * tick,
        trade_qty=tape.qty[:m].copy(), trade_mid=tape.mid2[:m] * (0.5 * tick), duration=duration,
    )


def main(argv: list[str] | None = None) -> int:
    """``python -m mmgym.calibrate [CONFIG] [--duration T] [--seed S]``: calibrate the book of a
    config (default: the LOB defaults) and print the ``market`` values (3 significant digits)."""
    import argparse

    from .config import load_env_config

    p = argparse.ArgumentParser(prog="python -m mmgym.calibrate", description=main.__doc__)
    p.add_argument("config", nargs="?", default=None, help="experiment or env YAML (default: LOB defaults)")
    p.add_argument("--duration", type=float, default=3600.0, help="time units recorded after the warm-up")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    cfg = load_env_config(args.config) if args.config else None
    c = calibrate_book(cfg, args.duration, args.seed)
    print(f"# per side: A_bid={c.A_bid:.4g} k_bid={c.k_bid:.4g} A_ask={c.A_ask:.4g} k_ask={c.k_ask:.4g}")
    print(f"market: {{sigma: {c.sigma:.3g}, A: {c.A:.3g}, k: {c.k:.3g}}}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

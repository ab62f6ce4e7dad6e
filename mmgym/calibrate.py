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

- From a recording (:func:`calibrate_recording`, ``--data``): the grid is the depths where a quote
  can sit, the touch and whole ticks behind it, not a grid from 0 to a quantile of the depths
  (below). Each market order is the run of recorded trades with one trade time and one aggressor
  (Binance reports one trade per maker order matched); it reached ``j`` ticks behind the touch
  when its deepest price is ``j`` ticks past the best opposite price before it (every market order
  reaches the touch: a trade received after the depth update it caused counts at the touch).
  lambda_j = #{orders reaching >= j ticks} / T is the rate at which a quote at depth
  delta_j = h + j tick is reached, h the median half-spread. A, k are the weighted least-squares
  fit of ln lambda_j = ln A - k delta_j over j = 0..fit_ticks (weights: the counts, whose Poisson
  variance makes var(ln lambda_j) ~ 1 / count), by default the touch and one tick behind it, so the
  fit reproduces the observed rates there (tests/test_calibrate.py holds it to 2 % on the BTC
  excerpt). Why: on the Binance captures ~80 % of market orders stop at the touch and the rest walk
  several ticks (sweeps), so lambda falls by ~5x from the touch to one tick behind and then barely
  decays. A grid from 0 to the 95th percentile depth puts most of its points in that flat tail and
  fits A 3-4x below the observed touch rate (USDⓈ-M BTCUSDT: 1.9 vs 7.8 /s). No single exponential
  describes both the touch and the tail: the printed table shows the fit against the observed
  rates deeper in the book.

- From a simulated book's tape (:func:`calibrate_book`): the same counting with depths from the
  mid, on the lattice of quote depths delta_j = (j + 1/2) tick, j = 0..5 (:func:`lattice_grid`;
  count weights). The old grid (20 points from 0 to the 95th percentile) put points between the
  depths orders can reach, where the count is the next lattice depth's, and fitted A 10-25 % below
  the observed rates; on the lattice the fit is within 10 % of them (tests/test_calibrate.py).
  ``grid="quantile"`` keeps the old fit (``configs/lob.yaml``'s values).

- From our own fills (:func:`calibrate_probes`, ``--probe``): the tape says how often market
  orders *reach* a price; a quote at the back of a FIFO queue fills less often. Probe quotes of our
  own, one lot on both sides at a fixed depth, on many books at once through the env's own step
  kernel (:func:`probe_fills`), measure the per-step fill probability p_j at each depth; A, k are
  fitted to that curve with the config's ``market.fill_rule`` (:func:`fit_fill_curve`), and the
  one-sided fills measure the adverse selection xi_j (the mid's move against the fill over its
  step). :func:`model_vs_book` compares each calibrated model's V0 with what the book pays
  (docs/LOB.md, "Fills the baselines can believe").

Command line (prints the ``market:`` values for a config's book, or for a recording)::

    python -m mmgym.calibrate configs/lob.yaml --duration 3600 --seed 0
    python -m mmgym.calibrate configs/lob.yaml --probe [--fill-rule poisson] [--evaluate 1000]
    python -m mmgym.calibrate --data FILE.gz   # or a python -m mmgym.data convert file
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Calibration", "BookTape", "estimate_sigma", "estimate_intensity", "calibrate", "calibrate_book",
           "record_book", "MarketOrders", "market_orders", "mid_series", "fit_touch", "calibrate_recording",
           "RecordingCalibration", "lattice_grid", "fill_probability", "FillFit", "fit_fill_curve",
           "ProbeFills", "probe_fills", "ProbeCalibration", "calibrate_probes", "model_vs_book", "revaluation_split", "PROBE_TICKS",
           "probe_config"]


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


def lattice_grid(tick: float, fit_ticks: int = 5) -> np.ndarray:
    """The depths from the mid where a quote can sit on a tick grid, ``(j + 1/2) tick`` for
    ``j = 0..fit_ticks``: the touch and j ticks behind it when the mid is half-way between two ticks
    (a 1-tick spread), and the prices the baselines' quotes map to (bid = floor((mid - delta) / tick)).
    A market order reached such a quote iff its depth from the mid is at least ``delta_j``."""
    if not tick > 0.0 or fit_ticks < 1:
        raise ValueError(f"lattice grid: need tick > 0 and fit_ticks >= 1 (got {tick!r}, {fit_ticks!r})")
    return (np.arange(fit_ticks + 1) + 0.5) * tick


def estimate_intensity(depths: np.ndarray, duration: float, grid: np.ndarray | None = None,
                       min_count: int = 10, weighted: bool = False) -> tuple[float, float, np.ndarray, np.ndarray]:
    """Fit lambda(delta) = A exp(-k delta) to the depths market orders reached.

    Args:
        depths: (m,) float64, |deepest price - mid before the order| per market order.
        duration: time covered by the tape (time units).
        grid: depth grid (default: 20 points from 0 to the 95th percentile of ``depths``, for
            continuous prices; on a tick grid use :func:`lattice_grid`, module docstring).
        min_count: grid points with fewer orders reaching them are left out of the fit.
        weighted: weight each point by its count (Poisson: var(ln lambda_j) ~ 1 / count).

    Returns:
        (A, k, grid, rates) with rates = #{depth >= grid} / duration.
    """
    depths = np.asarray(depths, dtype=np.float64)
    if depths.size == 0 or not duration > 0.0:
        raise ValueError(f"need market orders and a positive duration (got {depths.size} orders, "
                         f"duration {duration!r})")
    if grid is None:
        grid = np.linspace(0.0, np.quantile(depths, 0.95), 20)
    grid = np.asarray(grid, dtype=np.float64)
    counts = (depths[None, :] >= grid[:, None] - 1e-9 * max(1.0, float(np.max(np.abs(grid))))).sum(axis=1)
    rates = counts / duration
    ok = counts >= min_count
    if ok.sum() < 2:
        raise ValueError(f"too few market orders to fit the intensity ({counts.tolist()} reaching the "
                         f"grid's depths, {min_count} needed at two of them)")
    w = np.sqrt(counts[ok].astype(float)) if weighted else None  # polyfit squares the weights
    slope, intercept = np.polyfit(grid[ok], np.log(rates[ok]), 1, w=w)
    return float(np.exp(intercept)), float(-slope), grid, rates


def calibrate(mid: np.ndarray, interval: float, trade_px: np.ndarray, trade_mid: np.ndarray,
              duration: float, grid: np.ndarray | None = None,
              trade_side: np.ndarray | None = None, tick: float | None = None,
              fit_ticks: int = 5) -> Calibration:
    """sigma from the mid series, (A, k) from the trade tape (module docstring).

    Args:
        mid, interval: mids sampled every ``interval`` time units.
        trade_px, trade_mid: (m,) deepest price reached and mid before each market order.
        duration: time covered by the tape.
        grid: depth grid of the intensity fit. Default: with ``tick``, the lattice of quote depths
            (:func:`lattice_grid`, j = 0..fit_ticks) and count weights; without, 20 points from 0
            to the 95th percentile of the pooled depths (continuous prices; on a tick grid that
            grid puts points between the depths orders can reach and fits A 10-25 % below the
            observed rates, docs/LOB.md).
        trade_side: (m,) +1 buyer-initiated / -1 seller-initiated; given, A and k are the means of
            the per-side fits (the per-quote intensity of AS 2008); None pools both sides.
        tick, fit_ticks: the price tick and the lattice's last j (above).
    """
    sigma = estimate_sigma(mid, interval)
    depth = np.abs(np.asarray(trade_px, dtype=np.float64) - np.asarray(trade_mid, dtype=np.float64))
    weighted = grid is None and tick is not None
    if grid is None:
        grid = lattice_grid(tick, fit_ticks) if tick is not None else np.linspace(0.0, np.quantile(depth, 0.95), 20)
    A, k, g, rates = estimate_intensity(depth, duration, grid, weighted=weighted)
    if trade_side is None:
        return Calibration(sigma=sigma, A=A, k=k, depths=g, rates=rates)
    side = np.asarray(trade_side)
    A_b, k_b, _, _ = estimate_intensity(depth[side < 0], duration, grid, weighted=weighted)
    A_a, k_a, _, _ = estimate_intensity(depth[side > 0], duration, grid, weighted=weighted)
    return Calibration(sigma=sigma, A=0.5 * (A_b + A_a), k=0.5 * (k_b + k_a), depths=g, rates=rates,
                       A_bid=A_b, k_bid=k_b, A_ask=A_a, k_ask=k_a)


def calibrate_book(config=None, duration: float = 3600.0, seed: int = 0, grid: str = "lattice",
                   fit_ticks: int = 5) -> Calibration:
    """Per-side calibration of the simulated book of ``config`` (an EnvConfig; None: the LOB
    defaults): :func:`record_book` then :func:`calibrate` with mids every time unit.

    ``grid``: 'lattice' (the quote depths ``(j + 1/2) tick``, j = 0..fit_ticks, count weights:
    the fitted rate is within 10 % of the observed rate at each of them, tests/test_calibrate.py)
    or 'quantile' (the old grid from 0 to the 95th percentile of the depths, which
    ``configs/lob.yaml``'s ``market.sigma``, ``A`` and ``k`` still come from: duration 3600, seed 0).
    """
    t = record_book(config, duration=duration, sample_dt=1.0, seed=seed)
    if grid not in ("lattice", "quantile"):
        raise ValueError(f"grid: must be 'lattice' or 'quantile' (got {grid!r})")
    tick = None
    if grid == "lattice":
        from .scenarios.lob import default_lob_config

        tick = (default_lob_config() if config is None else config).market.tick_size
    return calibrate(t.mid, 1.0, t.trade_px, t.trade_mid, t.duration, trade_side=t.trade_side, tick=tick,
                     fit_ticks=fit_ticks)


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
    BK.book_record(st.book, 0, duration, sample_dt, st.lam, st.theta, fp, out_mid2,
                   tape, st.flow)
    m = int(tape.n[0])
    tick = cfg.market.tick_size
    return BookTape(
        mid_t=(np.arange(n) + 1) * sample_dt, mid=out_mid2 * (0.5 * tick), trade_t=tape.t[:m].copy(),
        trade_side=np.where(tape.side[:m] == BK.BUY, 1, -1), trade_px=tape.px[:m] * tick,
        trade_qty=tape.qty[:m].copy(), trade_mid=tape.mid2[:m] * (0.5 * tick), duration=duration,
    )


# ------------------------------------------------------------------------ probe fills ---
#: The probes' default depths in ticks from the mid: the touch and 1..5 ticks behind it at a 1-tick spread.
PROBE_TICKS = (0.5, 1.5, 2.5, 3.5, 4.5, 5.5)

def fill_probability(A: float, k: float, depth: np.ndarray, dt: float, fill_rule: str = "linear") -> np.ndarray:
    """The intensity market's per-step fill probability of a quote at ``depth``:
    ``min(1, A e^{-k delta} dt)`` (``fill_rule`` 'linear', AS 2008) or ``1 - exp(-A e^{-k delta} dt)``
    ('poisson') (:class:`mmgym.schema.MarketConfig.fill_rule`)."""
    lam_dt = A * np.exp(-k * np.asarray(depth, dtype=np.float64)) * dt
    if fill_rule == "linear":
        return np.minimum(1.0, lam_dt)
    if fill_rule == "poisson":
        return -np.expm1(-lam_dt)
    raise ValueError(f"fill_rule: must be 'linear' or 'poisson' (got {fill_rule!r})")


@dataclass(frozen=True)
class FillFit:
    """:func:`fit_fill_curve`'s result.

    Attributes:
        A, k: the intensity model's lambda(delta) = A e^{-k delta} (per time unit, per price unit).
        A_se, k_se: their standard errors (delta method on ln A; the covariance is inflated by the
            reduced chi-square when it exceeds 1, i.e. when the curve is not exactly the model).
        fill_rule: 'linear' or 'poisson'. fitted: (J,) the model's fill probability at each depth.
        chi2, dof: the weighted fit's chi-square and degrees of freedom (points used - 2).
        used: (J,) bool, points in the fit (0 < p < 1 with a positive standard error).
    """

    A: float
    k: float
    A_se: float
    k_se: float
    fill_rule: str
    fitted: np.ndarray
    chi2: float
    dof: int
    used: np.ndarray


def fit_fill_curve(depths: np.ndarray, p: np.ndarray, p_se: np.ndarray, dt: float,
                   fill_rule: str = "linear") -> FillFit:
    """Fit the intensity model's A, k to measured per-step fill probabilities.

    The fill rule is linearised in delta: ``ln p = ln(A dt) - k delta`` ('linear', below saturation)
    or ``ln(-ln(1 - p)) = ln(A dt) - k delta`` ('poisson'), and fitted by weighted least squares with
    weights 1 / var of the transformed point (delta method: ``se_y = |dy/dp| se_p``).

    Args:
        depths: (J,) depths from the mid (price units). p, p_se: (J,) measured fill probabilities
            per step and their standard errors. dt: the step length. fill_rule: 'linear' or 'poisson'.

    Raises:
        ValueError: mismatched shapes, a non-positive dt, or fewer than two usable points.
    """
    depths, p, p_se = (np.asarray(x, dtype=np.float64) for x in (depths, p, p_se))
    if not (depths.ndim == 1 and depths.shape == p.shape == p_se.shape):
        raise ValueError(f"depths, p and p_se must be 1-d of one length (got shapes {depths.shape}, "
                         f"{p.shape}, {p_se.shape})")
    if not dt > 0.0:
        raise ValueError(f"dt: must be > 0 (got {dt!r})")
    fill_probability(1.0, 1.0, depths[:0], dt, fill_rule)  # validates the rule
    used = (p > 0.0) & (p < 1.0) & (p_se > 0.0) & np.isfinite(depths)
    if used.sum() < 2:
        raise ValueError(f"too few fill probabilities strictly between 0 and 1 to fit A, k "
                         f"({int(used.sum())} of {p.size}: {np.round(p, 4).tolist()})")
    d, pu, su = depths[used], p[used], p_se[used]
    if fill_rule == "linear":
        y, dy = np.log(pu), 1.0 / pu
    else:
        lam = -np.log1p(-pu)
        y, dy = np.log(lam), 1.0 / ((1.0 - pu) * lam)
    w = 1.0 / (dy * su) ** 2
    X = np.stack([np.ones_like(d), -d], axis=1)
    xtw = X.T * w
    cov = np.linalg.inv(xtw @ X)
    beta = cov @ (xtw @ y)
    chi2 = float(np.sum(w * (y - X @ beta) ** 2))
    dof = d.size - 2
    if dof > 0:
        cov = cov * max(1.0, chi2 / dof)
    A = float(np.exp(beta[0]) / dt)
    k = float(beta[1])
    return FillFit(A=A, k=k, A_se=float(A * np.sqrt(cov[0, 0])), k_se=float(np.sqrt(cov[1, 1])),
                   fill_rule=fill_rule, fitted=fill_probability(A, k, depths, dt, fill_rule), chi2=chi2,
                   dof=dof, used=used)


@dataclass(frozen=True)
class ProbeFills:
    """What :func:`probe_fills` measured, per env (row r quotes ``depths[r // envs_per_depth]``).

    Attributes:
        ticks: (J,) the probed depths in ticks from the mid; depths: (J,) in price units.
        envs_per_depth, steps, dt: rows per depth, steps per row, step length.
        fills_bid, fills_ask, fills_both: (N,) steps in which our bid / ask / both filled.
        sxy, sxx: (N,) per-row sums of dS x and x^2 over steps inside an episode, x = 1_ask - 1_bid
            (the one-fill outcomes), dS the mid's change over the step (for xi).
        sxy_next, sxx_next: the same with the next step's dS (the mid's drift after the fill's step).
    """

    ticks: np.ndarray
    depths: np.ndarray
    envs_per_depth: int
    steps: int
    dt: float
    fills_bid: np.ndarray
    fills_ask: np.ndarray
    fills_both: np.ndarray
    sxy: np.ndarray
    sxx: np.ndarray
    sxy_next: np.ndarray
    sxx_next: np.ndarray


def probe_config(config=None, max_inventory: int = 1_000_000):
    """The probe's copy of a book config (None: the LOB defaults): the inventory bound widened so
    a probe that keeps filling one side is never switched off; everything else as configured."""
    from .scenarios.lob import default_lob_config

    cfg = default_lob_config() if config is None else config
    if getattr(cfg, "book", None) is None:
        raise ValueError(f"probe calibration needs a limit order book config (env.book); got {cfg.id}")
    return cfg.model_copy(update={"market": cfg.market.model_copy(update={"max_inventory": max_inventory})})


def probe_fills(config=None, ticks=PROBE_TICKS, envs_per_depth: int = 200, steps: int = 900,
                seed: int = 0, spawn_key: tuple[int, ...] = ()) -> ProbeFills:
    """Rest probe quotes of our own on the simulated book and count their fills, per step.

    ``len(ticks) * envs_per_depth`` books (:class:`~mmgym.envs.market.BatchMarket`, the book's own
    step kernel: one numba call per step for all rows) each quote one lot on both sides at the
    fixed depth ``ticks[j] * tick`` from the mid, every step, through the env's raw-depth action
    (the mapping the baselines' quotes go through: bid = floor((mid - delta) / tick), ask = ceil).
    A quote whose price is unchanged keeps its queue position; one whose price moved is cancelled
    and joins the back of the queue at its new price; a filled quote is re-posted next step. With
    ``ticks = j + 1/2`` the quote sits j ticks behind the touch when the spread is 1 or 2 ticks.
    Rows autoreset at the horizon (a fresh book and warm-up, as for the baselines). Row r is
    seeded with ``seed + r`` (in the stream family ``spawn_key``: :meth:`BatchMarket.seed_rows`;
    the named baseline ``book_model`` probes on the tuning streams, never an evaluation's). The
    inventory bound is widened (:func:`probe_config`).
    """
    from .envs.market import BatchMarket

    cfg = probe_config(config)
    ticks = np.asarray(ticks, dtype=np.float64)
    if ticks.ndim != 1 or ticks.size < 1 or not np.all(np.isfinite(ticks)):
        raise ValueError(f"ticks: must be a non-empty list of finite depths in ticks (got {ticks.tolist()})")
    if envs_per_depth < 2 or steps < 1:
        raise ValueError(f"envs_per_depth must be >= 2 and steps >= 1 (got {envs_per_depth}, {steps})")
    tick = cfg.market.tick_size
    n = ticks.size * envs_per_depth
    market = BatchMarket(cfg, n, raw_depths=True)
    market.seed_rows(list(range(seed, seed + n)), spawn_key=tuple(spawn_key))
    market.reset()
    depth = np.repeat(ticks * tick, envs_per_depth)
    actions = np.zeros((n, market.action_dim))
    actions[:, 0] = depth
    actions[:, 1] = depth
    ib, ia, im = (market.aux_names.index(c) for c in ("fill_bid", "fill_ask", "quote_mid"))
    fb = np.zeros(n, dtype=np.int64)
    fa = np.zeros(n, dtype=np.int64)
    f2 = np.zeros(n, dtype=np.int64)
    sxy = np.zeros(n)
    sxx = np.zeros(n)
    sxy1 = np.zeros(n)
    sxx1 = np.zeros(n)
    x_prev = np.zeros(n)  # last step's x (0 at an episode's first step)
    for _ in range(steps):
        out = market.step(actions)
        b = out.aux[:, ib] > 0
        a = out.aux[:, ia] > 0
        fb += b
        fa += a
        f2 += b & a
        x = a.astype(np.float64) - b
        ds = market.field("mid")[:, 0] - out.aux[:, im]
        live = ~out.done  # a finished row's mid is already the next episode's
        sxy += np.where(live, x * ds, 0.0)
        sxx += np.where(live, x * x, 0.0)
        sxy1 += np.where(live, x_prev * ds, 0.0)
        sxx1 += np.where(live, x_prev * x_prev, 0.0)
        x_prev = np.where(live, x, 0.0)
    return ProbeFills(ticks, ticks * tick, envs_per_depth, steps, cfg.market.dt, fb, fa, f2, sxy, sxx,
                      sxy1, sxx1)


@dataclass(frozen=True)
class ProbeCalibration:
    """:func:`calibrate_probes`'s result: the measured fill curve, its fit and the jump on fill.

    Attributes:
        probes: the raw :class:`ProbeFills`.
        p, p_se: (J,) per-step fill probability per side (bid and ask pooled) and its standard
            error (across rows: each row's own frequency, rows independent).
        p_bid, p_ask, p_both: (J,) the bid's, the ask's, and both in one step.
        fit: the :class:`FillFit` of A, k with the config's ``market.fill_rule`` (or the one asked for).
        max_abs_dev: max_j |p_j - fitted_j| over the fitted points (probability units).
        xi, xi_se: (J,) the mid's move against a one-sided fill over the fill's step: the
            no-intercept regression coefficient in dS = xi (1_ask - 1_bid) + noise, the jump on fill
            of Guéant, Lehalle & Fernandez-Tapia (2013, sec. 5) as the DP (``market.adverse_jump``)
            uses it; its standard error is the cluster (per row) sandwich.
    """

    probes: ProbeFills
    p: np.ndarray
    p_se: np.ndarray
    p_bid: np.ndarray
    p_ask: np.ndarray
    p_both: np.ndarray
    fit: FillFit
    max_abs_dev: float
    xi: np.ndarray
    xi_se: np.ndarray


def calibrate_probes(config=None, ticks=PROBE_TICKS, envs_per_depth: int = 200,
                     steps: int = 900, seed: int = 0, fill_rule: str | None = None,
                     spawn_key: tuple[int, ...] = ()) -> ProbeCalibration:
    """:func:`probe_fills` (``spawn_key``: its stream family), then A, k fitted to the measured fill curve (:func:`fit_fill_curve`,
    ``fill_rule`` default: the config's ``market.fill_rule``) and xi per depth (module docstring)."""
    cfg = probe_config(config)
    rule = cfg.market.fill_rule if fill_rule is None else fill_rule
    pf = probe_fills(cfg, ticks, envs_per_depth, steps, seed, spawn_key)
    J, R = pf.ticks.size, envs_per_depth
    per_row = 0.5 * (pf.fills_bid + pf.fills_ask).reshape(J, R) / steps
    p = per_row.mean(axis=1)
    p_se = per_row.std(axis=1, ddof=1) / np.sqrt(R)
    fit = fit_fill_curve(pf.depths, p, p_se, pf.dt, rule)
    sxy, sxx = pf.sxy.reshape(J, R), pf.sxx.reshape(J, R)
    with np.errstate(invalid="ignore", divide="ignore"):
        xi = sxy.sum(axis=1) / sxx.sum(axis=1)  # dS = xi x + noise: the mid moves against the fill
        resid = sxy - xi[:, None] * sxx
        xi_se = np.sqrt((resid ** 2).sum(axis=1) * R / (R - 1)) / sxx.sum(axis=1)
    dev = float(np.max(np.abs(p - fit.fitted)[fit.used]))
    return ProbeCalibration(pf, p, p_se, pf.fills_bid.reshape(J, R).mean(axis=1) / steps,
                            pf.fills_ask.reshape(J, R).mean(axis=1) / steps,
                            pf.fills_both.reshape(J, R).mean(axis=1) / steps, fit, dev, xi, xi_se)



def model_vs_book(config, calibration: ProbeCalibration, episodes: int = 200, seed: int = 0,
                  xi_depth: int = 1, split: bool = False) -> dict[str, dict[str, Any]]:
    """Each model's V0 against what the book pays its optimal policy (same episodes, seed + e).

    Models, all with the probes' A, k and fill rule (and the config's sigma, reward):
    ``optimal`` (the intensity model, no adverse selection: the DP of :mod:`mmgym.baselines.optimal`),
    ``optimal_jump`` (the same with the jump on fill of Guéant, Lehalle & Fernandez-Tapia 2013 sec. 5,
    xi = ``calibration.xi[xi_depth]``; solved on the intensity market since the book refuses
    ``market.adverse_jump``) and ``book_model`` (:class:`mmgym.baselines.book_model.BookModelPolicy`:
    zero-mean informed fills, xi per depth). Returns name -> {v0, book, book_se, ratio, fills, xi};
    with ``split``, ``optimal_jump`` also has ``split``, its :func:`revaluation_split`.
    """
    import warnings

    from .baselines import make_baseline
    from .baselines.book_model import BookModelPolicy
    from .evaluation.runner import run_evaluation
    from .schema import EnvConfig

    fit = calibration.fit
    m = config.market.model_copy(update={"A": fit.A, "k": fit.k, "A_bid": None, "A_ask": None,
                                         "k_bid": None, "k_ask": None, "fill_rule": fit.fill_rule})
    book = config.model_copy(update={"market": m})
    xi = float(calibration.xi[xi_depth])

    def intensity(jump: float) -> EnvConfig:
        return EnvConfig.model_validate({"id": "mmgym/MarketMaking-v0",
                                         "market": {**m.model_dump(), "adverse_jump": jump},
                                         "reward": config.reward.model_dump(),
                                         "action": config.action.model_dump()})

    with warnings.catch_warnings():  # the DP on a tick grid the mid leaves: tick-free, said in docs
        warnings.simplefilter("ignore")
        pols = {"optimal": make_baseline("optimal", intensity(0.0)),
                "optimal_jump": make_baseline("optimal", intensity(xi)),
                "book_model": BookModelPolicy(book, calibration)}
    res = run_evaluation(book, pols, episodes=episodes, seed=seed)
    out = {}
    for name, pol in pols.items():
        mm = res.metrics[name]
        out[name] = {"v0": float(pol.v0), "book": float(mm["objective_mean"]), "book_se": float(mm["objective_se"]),
                     "ratio": float(pol.v0 / mm["objective_mean"]), "fills": float(mm["fills_mean"]),
                     "xi": 0.0 if name == "optimal" else (xi if name == "optimal_jump" else float("nan"))}
    if split:
        out["optimal_jump"]["split"] = revaluation_split(book, pols["optimal_jump"], episodes, seed, fit.A, fit.k,
                                                         fit.fill_rule, xi)
    return out


def revaluation_split(config, policy, episodes: int = 200, seed: int = 0, A: float | None = None,
                      k: float | None = None, fill_rule: str | None = None,
                      xi: float = 0.0) -> dict[str, tuple[float, float]]:
    """Where a policy's PnL on the book comes from, against the jump-on-fill intensity model.

    One episode per row (row e seeded ``seed + e``), stepping the book with ``policy`` (a
    :class:`~mmgym.baselines.DepthPolicy`). Per step, with q the inventory before the step's fills,
    q' after, delta the quotes' depths from the quote mid and dS the mid's change over the step,
    the book's wealth change is ``delta_b 1_b + delta_a 1_a + (1_b - 1_a) dS + q dS``: the spread
    captured, the revaluation of the lots just filled, and that of the inventory already held. The
    model's expectation of each given the same states (A, k, ``fill_rule``: default the config's;
    jump xi, independent sides) is ``p_b delta_b + p_a delta_a``, ``-xi (p_b (1 - p_a) + p_a (1 - p_b))``
    and ``xi q (p_a (1 - p_b) - p_b (1 - p_a))``. Returns name -> (book, model), per episode.
    """
    from .envs.market import BatchMarket

    m = config.market
    A = m.A if A is None else A
    k = m.k if k is None else k
    rule = m.fill_rule if fill_rule is None else fill_rule
    market = BatchMarket(config, episodes, raw_depths=True)
    market.seed_rows(list(range(seed, seed + episodes)))
    market.reset()
    names = market.aux_names
    ib, ia, db, da, im = (names.index(c) for c in ("fill_bid", "fill_ask", "depth_bid", "depth_ask", "quote_mid"))
    i_pnl = list(market.term_names).index("pnl")
    Q = m.max_inventory
    book = np.zeros(3)  # per-step sums over rows
    model = np.zeros(3)
    for _ in range(m.n_steps):
        q = market.inventory[:, 0].astype(np.float64)
        act = policy.act(market)
        out = market.step(act)
        fb, fa = out.aux[:, ib], out.aux[:, ia]
        cap = np.nan_to_num(fb * out.aux[:, db]) + np.nan_to_num(fa * out.aux[:, da])
        q1 = q + fb - fa
        ds = market.field("mid")[:, 0] - out.aux[:, im]
        # a finished row's mid is the next episode's: dS from its wealth change, q' dS = pnl - capture
        reval = out.terms[:, i_pnl] - cap
        end = out.done
        ds[end] = np.divide(reval[end], q1[end], out=np.zeros(int(end.sum())), where=q1[end] != 0)
        book += (cap.sum(), ((fb - fa) * ds).sum(), (q * ds).sum())
        # the model at the depths actually quoted (from the quote mid; NaN: the side is off)
        d_b = np.nan_to_num(out.aux[:, db], nan=np.inf)
        d_a = np.nan_to_num(out.aux[:, da], nan=np.inf)
        pb = np.where((q < Q) & np.isfinite(d_b), fill_probability(A, k, np.minimum(d_b, 1e9), m.dt, rule), 0.0)
        pa = np.where((q > -Q) & np.isfinite(d_a), fill_probability(A, k, np.minimum(d_a, 1e9), m.dt, rule), 0.0)
        model += (np.where(pb > 0, pb * d_b, 0.0).sum() + np.where(pa > 0, pa * d_a, 0.0).sum(),
                  (-xi * (pb * (1 - pa) + pa * (1 - pb))).sum(),
                  (xi * q * (pa * (1 - pb) - pb * (1 - pa))).sum())
    book /= episodes
    model /= episodes
    return {"spread captured": (book[0], model[0]), "revaluation of the lots filled": (book[1], model[1]),
            "revaluation of the inventory held": (book[2], model[2])}

# ------------------------------------------------------------------- recordings ---
@dataclass(frozen=True)
class MarketOrders:
    """Market orders of a recording (runs of trades with one trade time and one aggressor).

    Attributes:
        t: (m,) float64 seconds since the recording's first event (of the run's first trade).
        side: (m,) int64 +1 buyer-initiated, -1 seller-initiated.
        px: (m,) float64 deepest price reached. qty: (m,) float64 size (base units).
        mid: (m,) float64 recorded mid before the order. half_spread: (m,) float64 before it.
        beyond: (m,) int64 ticks past the best opposite price before it (>= 0).
        event: (m,) int64 index of the run's first trade event.
    """

    t: np.ndarray
    side: np.ndarray
    px: np.ndarray
    qty: np.ndarray
    mid: np.ndarray
    half_spread: np.ndarray
    beyond: np.ndarray
    event: np.ndarray


def market_orders(rec) -> MarketOrders:
    """The market orders of ``rec`` (a :class:`mmgym.data.Recording`), those with a two-sided book
    before them (module docstring)."""
    from .data import EMPTY_ASK, EMPTY_BID
    from .data.binance import TRADE

    tr = np.flatnonzero(rec.kind == TRADE)
    if tr.size == 0:
        raise ValueError(f"{rec.meta.get('source')}: no trades")
    side = rec.side[tr].astype(np.int64)
    ex = rec.exch_ns[tr]
    new = np.ones(tr.size, dtype=bool)
    new[1:] = (ex[1:] != ex[:-1]) | (side[1:] != side[:-1])
    gid = np.cumsum(new) - 1
    n = int(gid[-1]) + 1
    px = rec.px[tr]
    hi = np.full(n, np.iinfo(np.int64).min)
    lo = np.full(n, np.iinfo(np.int64).max)
    np.maximum.at(hi, gid, px)
    np.minimum.at(lo, gid, px)
    qty = np.zeros(n)
    np.add.at(qty, gid, rec.qty[tr] * rec.lot_size)
    first = tr[new]
    buy = side[new] == 0
    prev = np.maximum(first - 1, 0)
    bb, ba = rec.best_bid[prev], rec.best_ask[prev]
    ok = (first > 0) & (bb != EMPTY_BID) & (ba != EMPTY_ASK)
    deep = np.where(buy, hi, lo)
    beyond = np.maximum(0, np.where(buy, deep - ba, bb - deep))
    tick = rec.tick_size
    t = (rec.t_ns[first] - rec.t0_ns) / 1e9
    return MarketOrders(t=t[ok], side=np.where(buy, 1, -1)[ok], px=deep[ok] * tick, qty=qty[ok],
                        mid=0.5 * (bb + ba)[ok] * tick, half_spread=0.5 * (ba - bb)[ok] * tick,
                        beyond=beyond[ok].astype(np.int64), event=first[ok])


def mid_series(rec, interval: float) -> tuple[np.ndarray, np.ndarray]:
    """(times s, mids) of the recorded mid every ``interval`` seconds while the book is two-sided."""
    two = rec.two_sided()
    idx = np.flatnonzero(two)
    t_ok = (rec.t_ns[idx[0]] - rec.t0_ns) / 1e9
    grid = np.arange(t_ok, rec.duration, interval)
    tt = (rec.t_ns - rec.t0_ns) / 1e9
    j = np.searchsorted(tt, grid, side="right") - 1
    keep = two[j]
    j = j[keep]
    return grid[keep], 0.5 * (rec.best_bid[j] + rec.best_ask[j]) * rec.tick_size


def fit_touch(beyond: np.ndarray, duration: float, half_spread: float, tick: float, fit_ticks: int = 1,
              table_ticks: int = 5, min_count: int = 10) -> tuple[float, float, np.ndarray, np.ndarray]:
    """Fit lambda(delta) = A exp(-k delta) on the depths where a quote can sit (module docstring).

    Args:
        beyond: (m,) ticks past the touch each order reached (>= 0). duration: seconds covered.
        half_spread: h, the touch's depth from the mid. tick: price tick.
        fit_ticks: fit over j = 0..fit_ticks ticks behind the touch. table_ticks: rates reported
            over j = 0..table_ticks. min_count: points with fewer orders are left out of the fit.

    Returns:
        (A, k, depths delta_j, observed rates lambda_j) for j = 0..table_ticks.
    """
    beyond = np.asarray(beyond)
    j = np.arange(table_ticks + 1)
    counts = (beyond[None, :] >= j[:, None]).sum(axis=1)
    depths = half_spread + j * tick
    rates = counts / duration
    use = (j <= fit_ticks) & (counts >= min_count)
    if use.sum() < 2:
        raise ValueError(f"too few market orders to fit the intensity ({counts[: fit_ticks + 1].tolist()} "
                         f"reaching 0..{fit_ticks} ticks behind the touch)")
    w = np.sqrt(counts[use].astype(float))  # polyfit squares the weights: weights = counts
    slope, intercept = np.polyfit(depths[use], np.log(rates[use]), 1, w=w)
    return float(np.exp(intercept)), float(-slope), depths, rates


@dataclass(frozen=True)
class RecordingCalibration:
    """:func:`calibrate_recording`'s result: the fit and the table it came from.

    Attributes:
        cal: the :class:`Calibration` (A, k: means of the per-side fits).
        tick_size, half_spread: the recording's tick and median half-spread at market orders.
        depths: (J + 1,) delta_j; rates_bid, rates_ask: (J + 1,) observed lambda_j per side.
        duration: seconds covered; n_bid, n_ask: market orders per side.
    """

    cal: Calibration
    tick_size: float
    half_spread: float
    depths: np.ndarray
    rates_bid: np.ndarray
    rates_ask: np.ndarray
    duration: float
    n_bid: int
    n_ask: int

    def fitted(self, side: str) -> np.ndarray:
        """A e^{-k delta_j} of one side ('bid' or 'ask')."""
        c = self.cal
        A, k = (c.A_bid, c.k_bid) if side == "bid" else (c.A_ask, c.k_ask)
        return A * np.exp(-k * self.depths)


def calibrate_recording(rec, interval: float = 1.0, fit_ticks: int = 1, table_ticks: int = 5) -> RecordingCalibration:
    """sigma from the recorded mid every ``interval`` s, per-side A, k from its market orders
    (:func:`fit_touch`); time unit: seconds. ``rec``: a :class:`mmgym.data.Recording`."""
    _, mid = mid_series(rec, interval)
    sigma = estimate_sigma(mid, interval)
    mo = market_orders(rec)
    h = float(np.median(mo.half_spread))
    tick = rec.tick_size
    T = rec.duration
    fits = {}
    for name, sgn in (("bid", -1), ("ask", 1)):  # the bid is reached by sellers
        fits[name] = fit_touch(mo.beyond[mo.side == sgn], T, h, tick, fit_ticks, table_ticks)
    (A_b, k_b, depths, r_b), (A_a, k_a, _, r_a) = fits["bid"], fits["ask"]
    cal = Calibration(sigma=sigma, A=0.5 * (A_b + A_a), k=0.5 * (k_b + k_a), depths=depths, rates=r_b + r_a,
                      A_bid=A_b, k_bid=k_b, A_ask=A_a, k_ask=k_a)
    return RecordingCalibration(cal, tick, h, depths, r_b, r_a, T, int((mo.side < 0).sum()),
                                int((mo.side > 0).sum()))


def _print_recording(path: str, rc: RecordingCalibration, rec) -> None:
    c = rc.cal
    print(f"# {rec.meta.get('source')}: {rec.meta.get('market')} {rec.meta.get('symbol')}, {rc.duration:.1f} s, "
          f"{rc.n_bid} sell / {rc.n_ask} buy market orders, median half-spread {rc.half_spread:.4g}")
    print("# ticks behind touch | depth | observed bid /s | fitted bid /s | observed ask /s | fitted ask /s")
    fb, fa = rc.fitted("bid"), rc.fitted("ask")
    for j, d in enumerate(rc.depths):
        print(f"# {j:>2} | {d:.4g} | {rc.rates_bid[j]:.4g} | {fb[j]:.4g} | {rc.rates_ask[j]:.4g} | {fa[j]:.4g}")
    print(f"# per side: A_bid={c.A_bid:.4g} k_bid={c.k_bid:.4g} A_ask={c.A_ask:.4g} k_ask={c.k_ask:.4g}")
    print(f"# env.replay.path: {path}")
    print(f"market: {{tick_size: {rc.tick_size:g}, sigma: {c.sigma:.3g}, A: {c.A:.3g}, k: {c.k:.3g}, "
          f"A_bid: {c.A_bid:.3g}, k_bid: {c.k_bid:.3g}, A_ask: {c.A_ask:.3g}, k_ask: {c.k_ask:.3g}}}")


def _print_probes(pc: ProbeCalibration, tick: float, sigma: float) -> None:
    f, pf = pc.fit, pc.probes
    print(f"# probe fills: {pf.envs_per_depth} books per depth x {pf.steps} steps of dt={pf.dt:g}, one lot "
          f"per side at each depth, fill rule {f.fill_rule}")
    print("# ticks from mid | depth | P(fill)/step | se | fitted | P(both) | xi (mid move against a fill) | se")
    for j, d in enumerate(pf.depths):
        print(f"# {pf.ticks[j]:>4g} | {d:.4g} | {pc.p[j]:.4f} | {pc.p_se[j]:.4f} | {f.fitted[j]:.4f} | "
              f"{pc.p_both[j]:.4f} | {pc.xi[j]:.4g} | {pc.xi_se[j]:.2g}")
    print(f"# A={f.A:.4g} +- {f.A_se:.2g}, k={f.k:.4g} +- {f.k_se:.2g} (chi2 {f.chi2:.4g} on {f.dof} dof); "
          f"max |measured - fitted| = {pc.max_abs_dev:.4f}")
    print(f"market: {{sigma: {sigma:.3g}, A: {f.A:.3g}, k: {f.k:.3g}, fill_rule: {f.fill_rule}}}")


def main(argv: list[str] | None = None) -> int:
    """``python -m mmgym.calibrate [CONFIG] [--duration T] [--seed S] [--grid lattice|quantile]``:
    calibrate the book of a config (default: the LOB defaults) from its market-order tape and print
    the ``market`` values (3 significant digits).
    ``python -m mmgym.calibrate [CONFIG] --probe [--ticks J] [--envs R] [--steps S] [--fill-rule RULE]``:
    A, k from the fills of our own probe quotes on the book (:func:`calibrate_probes`).
    ``python -m mmgym.calibrate --data FILE``: calibrate from a recording (a Binance capture or a
    ``python -m mmgym.data convert`` file); time unit: seconds."""
    import argparse
    import sys

    from .cli import add_overrides_argument, overrides_of
    from .config import ConfigError, load_env_config

    p = argparse.ArgumentParser(prog="python -m mmgym.calibrate", description=main.__doc__)
    add_overrides_argument(p)
    p.add_argument("config", nargs="?", default=None, help="experiment or env YAML (default: LOB defaults)")
    p.add_argument("--duration", type=float, default=3600.0, help="time units recorded after the warm-up")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--grid", choices=("lattice", "quantile"), default="lattice",
                   help="tape fit: the quote depths (j + 1/2) tick (default) or the old quantile grid")
    p.add_argument("--probe", action="store_true", help="fit A, k to the fills of probe quotes on the book")
    p.add_argument("--ticks", type=int, default=6, help="--probe: depths (j + 1/2) tick, j = 0..TICKS-1")
    p.add_argument("--envs", type=int, default=200, help="--probe: books per depth")
    p.add_argument("--steps", type=int, default=900, help="--probe: steps per book")
    p.add_argument("--fill-rule", choices=("linear", "poisson"), default=None,
                   help="--probe: the fill rule fitted (default: the config's market.fill_rule)")
    p.add_argument("--evaluate", type=int, default=0, metavar="EPISODES",
                   help="--probe: also each calibrated model's V0 against what the book pays its policy")
    p.add_argument("--data", default=None, help="a recording: Binance capture .gz or converted .npz")
    p.add_argument("--interval", type=float, default=1.0, help="--data: seconds between mid samples for sigma")
    p.add_argument("--fit-ticks", type=int, default=1, help="--data: fit over the touch and this many ticks behind it")
    args = p.parse_args(argv)
    if args.data is not None:
        from .data import DataError, load

        try:
            if args.interval <= 0:
                raise DataError(f"--interval: must be > 0 (got {args.interval})")
            if args.fit_ticks < 1:
                raise DataError(f"--fit-ticks: must be >= 1 (got {args.fit_ticks})")
            rec = load(args.data)
            rc = calibrate_recording(rec, args.interval, args.fit_ticks, max(5, args.fit_ticks))
        except (DataError, ValueError) as exc:
            print(f"python -m mmgym.calibrate: error: {exc}", file=sys.stderr)
            return 2
        _print_recording(args.data, rc, rec)
        return 0
    try:
        overrides = overrides_of(args)
        if args.config:
            cfg = load_env_config(args.config, overrides or None)
        elif overrides:
            from .scenarios.lob import default_lob_config

            cfg = load_env_config(default_lob_config(), overrides)
        else:
            cfg = None
        if args.probe:
            if args.ticks < 2:
                raise ValueError(f"--ticks: must be >= 2 (got {args.ticks})")
            pc = calibrate_probes(cfg, 0.5 + np.arange(args.ticks), args.envs, args.steps, args.seed,
                                  args.fill_rule)
            c = calibrate_book(cfg, args.duration, args.seed)
            _print_probes(pc, probe_config(cfg).market.tick_size, c.sigma)
            if args.evaluate > 0:
                from .scenarios.lob import default_lob_config

                rows = model_vs_book(cfg if cfg is not None else default_lob_config(), pc, args.evaluate,
                                     args.seed, split=True)
                print(f"# model | xi | V0 (model) | book objective +- se ({args.evaluate} episodes) | "
                      f"V0 / book | fills")
                for name, r in rows.items():
                    print(f"# {name} | {r['xi']:.4g} | {r['v0']:.4f} | {r['book']:.4f} +- {r['book_se']:.4f} | "
                          f"{r['ratio']:.3f} | {r['fills']:.1f}")
                print("# optimal_jump's PnL per episode | on the book | in the jump model")
                for part, (on_book, in_model) in rows["optimal_jump"]["split"].items():
                    print(f"# {part} | {on_book:.3f} | {in_model:.3f}")
            return 0
        c = calibrate_book(cfg, args.duration, args.seed, grid=args.grid)
    except (ConfigError, ValueError, OSError) as exc:
        print(f"python -m mmgym.calibrate: error: {exc}", file=sys.stderr)
        return 2
    print(f"# per side: A_bid={c.A_bid:.4g} k_bid={c.k_bid:.4g} A_ask={c.A_ask:.4g} k_ask={c.k_ask:.4g}")
    print(f"market: {{sigma: {c.sigma:.3g}, A: {c.A:.3g}, k: {c.k:.3g}}}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""mmgym.calibrate on synthetic data with known sigma, A, k, and on the simulated book."""

from __future__ import annotations

import numpy as np

from mmgym.calibrate import calibrate, estimate_intensity, estimate_sigma, record_book


def test_synthetic_recovers_A_k_sigma():
    """Poisson market orders whose depths give lambda(delta) = A e^{-k delta} exactly: the number
    reaching >= delta is Poisson(A T e^{-k delta}) when depths are Exp(k) and arrivals Poisson(A).
    Tolerances: A within 10 %, k within 5 %, sigma within 3 % (T = 20000, 200k orders)."""
    rng = np.random.default_rng(0)
    A, k, sigma, T = 10.0, 50.0, 0.03, 20_000.0
    n = rng.poisson(A * T)
    depths = rng.exponential(1.0 / k, size=n)
    A_hat, k_hat, _, _ = estimate_intensity(depths, T, grid=np.linspace(0, 0.08, 17))
    assert abs(A_hat / A - 1) < 0.10 and abs(k_hat / k - 1) < 0.05
    mid = 100 + np.cumsum(sigma * rng.standard_normal(5000))
    assert abs(estimate_sigma(mid, 1.0) / sigma - 1) < 0.03


def test_calibration_on_simulated_book():
    """The recorder feeds the estimator: positive A, k, sigma of sensible size for a 0.01 tick."""
    tape = record_book(duration=1000.0, seed=1)
    assert tape.trade_t.size > 1000 and np.all(np.diff(tape.trade_t) >= 0)
    c = calibrate(tape.mid, 1.0, tape.trade_px, tape.trade_mid, tape.duration)
    assert 0.001 < c.sigma < 0.5 and c.A > 0 and 10 < c.k < 1000
    # buyer-initiated orders reach at or above the mid, sellers at or below
    assert np.all((tape.trade_px - tape.trade_mid) * tape.trade_side >= 0)

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


def test_per_side_fit_gives_the_per_quote_intensity():
    """Each side's orders reach depth delta at A e^{-k delta}: the per-side fit recovers A, the
    pooled fit about 2A."""
    rng = np.random.default_rng(1)
    A, k, T = 5.0, 40.0, 20_000.0
    n_b, n_a = rng.poisson(A * T, size=2)
    depth = np.concatenate([rng.exponential(1 / k, n_b), rng.exponential(1 / k, n_a)])
    side = np.concatenate([-np.ones(n_b), np.ones(n_a)])
    mid = 100 + np.cumsum(0.01 * rng.standard_normal(1000))
    grid = np.linspace(0, 0.1, 21)
    c = calibrate(mid, 1.0, 100 + side * depth, np.full(depth.size, 100.0), T, grid, trade_side=side)
    for a_hat, k_hat in ((c.A, c.k), (c.A_bid, c.k_bid), (c.A_ask, c.k_ask)):
        assert abs(a_hat / A - 1) < 0.1 and abs(k_hat / k - 1) < 0.05
    pooled = calibrate(mid, 1.0, 100 + side * depth, np.full(depth.size, 100.0), T, grid)
    assert abs(pooled.A / (2 * A) - 1) < 0.1


def test_configs_lob_yaml_holds_the_calibrated_values():
    """configs/lob.yaml's market.sigma, A, k are `python -m mmgym.calibrate configs/lob.yaml`
    (3600 s, seed 0) to three significant digits: re-run it when the book changes."""
    from pathlib import Path

    from mmgym.calibrate import calibrate_book
    from mmgym.config import load_env_config
    from mmgym.scenarios.lob import LOB_DEFAULTS

    cfg = load_env_config(Path(__file__).resolve().parents[1] / "configs" / "lob.yaml")
    c = calibrate_book(cfg, 3600.0, seed=0)
    for key in ("sigma", "A", "k"):
        assert float(f"{getattr(c, key):.3g}") == getattr(cfg.market, key) == LOB_DEFAULTS["market"][key]
    again = calibrate_book(cfg, 200.0, seed=0)  # seeded: the same tape twice
    assert again.sigma == calibrate_book(cfg, 200.0, seed=0).sigma


# ------------------------------------------------------------------------- recordings ---
def _reference_market_orders(path):
    """Independent count (plain json): runs of MARKET trades with one trade time and one side."""
    import gzip
    import json

    counts = {"buy": 0, "sell": 0}
    last = None
    with gzip.open(path, "rt") as f:
        for line in f:
            msg = json.loads(line.split(" ", 1)[1])
            d = msg.get("data", {})
            if d.get("e") != "trade" or d.get("X", "MARKET") != "MARKET":
                continue
            key = (d["T"], d["m"])
            if key != last:
                counts["sell" if d["m"] else "buy"] += 1
            last = key
    return counts


def test_recording_fit_describes_the_touch_rates():
    """On the shipped USDⓈ-M BTCUSDT excerpt: per side, the fitted A e^{-k delta} is within 2 % of
    the observed rate of market orders reaching the touch and one tick behind it (the depths where
    the baselines' quotes land), the touch rate is the independent count of market orders per
    second, and sigma is the std of 1-s mid changes."""
    from pathlib import Path

    from mmgym.calibrate import calibrate_recording, market_orders, mid_series
    from mmgym.data import load

    path = Path(__file__).parent / "data" / "binance" / "usdm_btcusdt_20240808_excerpt.gz"
    rec = load(str(path))
    rc = calibrate_recording(rec)
    ref = _reference_market_orders(path)
    mo = market_orders(rec)
    for side, n_ref, obs in (("bid", ref["sell"], rc.rates_bid), ("ask", ref["buy"], rc.rates_ask)):
        n = int((mo.side == (-1 if side == "bid" else 1)).sum())
        assert 0 <= n_ref - n <= 0.01 * n_ref  # orders before the book is two-sided are left out
        assert abs(obs[0] * rc.duration - n) < 1e-6  # every market order reaches the touch
        fit = rc.fitted(side)
        assert np.all(np.abs(fit[:2] / obs[:2] - 1) < 0.02)
        # deeper, the observed rate decays far slower than any exponential through the first two
        assert obs[3] > 3 * fit[3]
    # A at the mid = touch rate e^{k h}: above the touch rate, unlike the quantile-grid fit
    old = estimate_intensity(np.abs(mo.px - mo.mid)[mo.side < 0], rc.duration)[0]
    assert rc.cal.A_bid > rc.rates_bid[0] > 2 * old
    _, mid = mid_series(rec, 1.0)
    assert abs(rc.cal.sigma / (np.diff(mid).std(ddof=1)) - 1) < 1e-12 and mid.size > 40


def test_calibrate_cli_on_a_recording_and_bad_file(tmp_path, capsys):
    from pathlib import Path

    from mmgym.calibrate import main

    path = Path(__file__).parent / "data" / "binance" / "usdm_btcusdt_20240808_excerpt.gz"
    assert main(["--data", str(path)]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    import yaml

    section = yaml.safe_load(out[-1])["market"]
    assert section["tick_size"] == 0.1 and section["A"] > 0 and section["k"] > 0
    assert main(["--data", str(tmp_path / "missing.gz")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "missing.gz" in err[0]

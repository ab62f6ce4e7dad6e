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
    """configs/lob.yaml's market.sigma, A, k are `python -m mmgym.calibrate configs/lob.yaml
    --grid quantile` (3600 s, seed 0) to three significant digits: re-run it when the book changes."""
    from pathlib import Path

    from mmgym.calibrate import calibrate_book
    from mmgym.config import load_env_config
    from mmgym.scenarios.lob import LOB_DEFAULTS

    cfg = load_env_config(Path(__file__).resolve().parents[1] / "configs" / "lob.yaml")
    c = calibrate_book(cfg, 3600.0, seed=0, grid="quantile")  # the config predates the lattice grid
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


# ------------------------------------------------------------------ the tape on a tick grid ---
def test_lattice_grid_recovers_A_k_where_the_quantile_grid_does_not():
    """Depths on a tick grid: every order reaches the touch (h = tick / 2 from the mid) and j more
    ticks with probability e^{-k tick j}, so lambda((j + 1/2) tick) = A e^{-k (j + 1/2) tick} exactly.
    The lattice grid recovers A and k (within 5 % and 3 %, 60k orders). The old grid (20 points from
    0 to the 95th percentile) puts points between the depths orders can reach, where the count is
    that of the next lattice depth, and fits A more than 10 % low: the cause of the bias on the book."""
    from mmgym.calibrate import calibrate, lattice_grid

    rng = np.random.default_rng(3)
    A, k, tick, T = 3.0, 60.0, 0.01, 20_000.0
    n = rng.poisson(A * np.exp(-k * tick / 2) * T)
    beyond = rng.geometric(1 - np.exp(-k * tick), size=n) - 1
    depth = (beyond + 0.5) * tick
    mid = 100 + np.cumsum(0.01 * rng.standard_normal(1000))
    c = calibrate(mid, 1.0, 100 - depth, np.full(n, 100.0), T, tick=tick)
    assert abs(c.A / A - 1) < 0.05 and abs(c.k / k - 1) < 0.03
    assert np.allclose(c.depths, lattice_grid(tick, 5))
    old = calibrate(mid, 1.0, 100 - depth, np.full(n, 100.0), T)
    assert old.A < 0.9 * A


def test_book_tape_fit_within_10_percent_of_the_observed_rates():
    """Tolerance of the tape fit on configs/lob.yaml's book (3600 s, seed 0): per side, the fitted
    A e^{-k delta_j} is within 10 % of the observed rate of market orders reaching delta_j =
    (j + 1/2) tick, at every lattice depth j = 0..5 used; the quantile grid is more than 15 % low
    at the touch."""
    from pathlib import Path

    from mmgym.calibrate import calibrate, record_book
    from mmgym.config import load_env_config

    cfg = load_env_config(Path(__file__).resolve().parents[1] / "configs" / "lob.yaml")
    t = record_book(cfg, duration=3600.0, seed=0)
    tick = cfg.market.tick_size
    new = calibrate(t.mid, 1.0, t.trade_px, t.trade_mid, t.duration, trade_side=t.trade_side, tick=tick)
    old = calibrate(t.mid, 1.0, t.trade_px, t.trade_mid, t.duration, trade_side=t.trade_side)
    depth = np.abs(t.trade_px - t.trade_mid)
    for sgn, (A, k), (A0, k0) in ((-1, (new.A_bid, new.k_bid), (old.A_bid, old.k_bid)),
                                  (1, (new.A_ask, new.k_ask), (old.A_ask, old.k_ask))):
        d = depth[t.trade_side == sgn]
        observed = np.array([(d >= x - 1e-9).sum() for x in new.depths]) / t.duration
        assert observed[-1] * t.duration >= 10  # every lattice depth is in the fit
        assert np.all(np.abs(A * np.exp(-k * new.depths) / observed - 1) < 0.10)
        assert A0 * np.exp(-k0 * new.depths[0]) < 0.85 * observed[0]


# --------------------------------------------------------------------------- probe fills ---
def _unit_market_order_book(mu):
    """A book without limit orders: it starts empty and stays so, so our one-lot quotes are all
    the liquidity there is and every market order (size 1, rate mu per side) fills one of them."""
    from mmgym.scenarios.lob import default_lob_config

    return default_lob_config(market={"horizon": 100.0}, book={
        "limit_rates": [0.0], "cancel_rates": [0.5], "market_rate": mu, "market_size_mean": 1.0,
        "warmup": 5.0})


def test_probe_fill_probability_on_a_book_of_unit_market_orders():
    """Closed form: on :func:`_unit_market_order_book` our quote fills in a step iff at least one
    market order of its side arrives, P = 1 - e^{-mu dt}, at every depth (a unit order walks to us);
    the two sides are independent (P(both) = P^2) and the mid never moves (xi = 0). Within 4
    standard errors (50 books per depth x 200 steps)."""
    from mmgym.calibrate import probe_fills

    mu, R, S = 0.7, 50, 200
    pf = probe_fills(_unit_market_order_book(mu), (0.5, 1.5, 2.5), envs_per_depth=R, steps=S, seed=0)
    p = -np.expm1(-mu * pf.dt)
    for fills in (pf.fills_bid, pf.fills_ask, pf.fills_both):
        freq = fills.reshape(3, R) / S
        se = freq.std(axis=1, ddof=1) / np.sqrt(R)
        want = p * p if fills is pf.fills_both else p
        assert np.all(np.abs(freq.mean(axis=1) - want) < 4 * se), (freq.mean(axis=1), want, se)
    assert np.all(pf.sxy == 0.0) and np.all(pf.sxx > 0)


def test_probe_calibration_on_the_book():
    """configs/lob.yaml's book: the measured curve falls with depth, both sides agree within 4
    standard errors, the poisson fit describes it within 0.02 (probability units) at every depth,
    and the mid moves against a one-sided fill (xi > 0, more so deeper)."""
    from pathlib import Path

    from mmgym.calibrate import calibrate_probes
    from mmgym.config import load_env_config

    cfg = load_env_config(Path(__file__).resolve().parents[1] / "configs" / "lob.yaml")
    pc = calibrate_probes(cfg, (0.5, 1.5, 2.5, 3.5), envs_per_depth=40, steps=300, seed=0, fill_rule="poisson")
    assert np.all(np.diff(pc.p) < 0) and 0.6 < pc.p[0] < 0.9
    assert np.all(np.abs(pc.p_bid - pc.p_ask) < 4 * np.sqrt(2) * pc.p_se)
    assert pc.max_abs_dev < 0.02 and pc.fit.A > 0 and pc.fit.k > 0
    assert np.all(pc.xi > 3 * pc.xi_se) and pc.xi[-1] > pc.xi[0]


def test_fill_fit_recovers_known_A_k_within_its_standard_errors():
    """Synthetic fills with known A, k (each of R rows fills Binomial(S, p_j) times, p_j the fill
    rule at depth j): over 200 data sets per rule, the estimates fall within 2 standard errors of
    the truth in 88-99 % of them (95 % nominal), and are unbiased to 1 %."""
    from mmgym.calibrate import fill_probability, fit_fill_curve

    rng = np.random.default_rng(0)
    A, k, dt, R, S, n_sets = 2.0, 65.0, 1.0, 100, 400, 200
    depths = (np.arange(6) + 0.5) * 0.01
    for rule in ("linear", "poisson"):
        p_true = fill_probability(A, k, depths, dt, rule)
        freq = rng.binomial(S, p_true[None, :, None], size=(n_sets, depths.size, R)) / S
        est = []
        for f in freq:
            fit = fit_fill_curve(depths, f.mean(axis=1), f.std(axis=1, ddof=1) / np.sqrt(R), dt, rule)
            est.append((fit.A, fit.A_se, fit.k, fit.k_se))
        a_hat, a_se, k_hat, k_se = np.array(est).T
        for hat, se, true in ((a_hat, a_se, A), (k_hat, k_se, k)):
            cover = np.mean(np.abs(hat - true) < 2 * se)
            assert 0.88 <= cover <= 0.99, (rule, cover)
            assert abs(hat.mean() / true - 1) < 0.01


def test_probe_bad_input_is_one_clear_line(capsys):
    import pytest

    from mmgym.calibrate import fit_fill_curve, main, probe_fills

    with pytest.raises(ValueError, match="too few fill probabilities"):
        fit_fill_curve([0.005, 0.015], [1.0, 1.0], [0.01, 0.01], 1.0)
    with pytest.raises(ValueError, match="one length"):
        fit_fill_curve([0.005, 0.015], [0.5], [0.01], 1.0)
    with pytest.raises(ValueError, match="fill_rule"):
        fit_fill_curve([0.005, 0.015], [0.5, 0.2], [0.01, 0.01], 1.0, "cubic")
    with pytest.raises(ValueError, match="limit order book"):
        from mmgym.config import load_env_config

        probe_fills(load_env_config("configs/as2008.yaml"))
    for argv in (["configs/as2008.yaml", "--probe"], ["--probe", "--envs", "1"], ["--probe", "--ticks", "1"]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("python -m mmgym.calibrate: error:")


def test_probe_cli_prints_a_market_section(capsys):
    import yaml

    from mmgym.calibrate import main

    assert main(["configs/lob.yaml", "--probe", "--ticks", "3", "--envs", "4", "--steps", "30",
                 "--duration", "100"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    section = yaml.safe_load(out[-1])["market"]
    assert section["fill_rule"] == "linear" and section["A"] > 0 and section["k"] > 0
    assert len([x for x in out if x.startswith("#  ")]) == 3  # one table row per depth
    # --set reaches the book (a poisson fit asked for in the config itself)
    assert main(["configs/lob.yaml", "--set", "market.fill_rule=poisson", "--probe", "--ticks", "2",
                 "--envs", "4", "--steps", "30", "--duration", "100"]) == 0
    assert yaml.safe_load(capsys.readouterr().out.strip().splitlines()[-1])["market"]["fill_rule"] == "poisson"
    assert main(["configs/lob.yaml", "--set", "market.horizon=-1", "--probe"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "market.horizon" in err[0]


# ------------------------------------------------------------ the informed-fill book model ---
def _slow_informed_dp(p, xi, depths, n, Q, dt, phi, alpha):
    """Reference: the recursion of mmgym.baselines.book_model written out with loops."""
    V = [0.0] * (2 * Q + 1)
    for t in range(n - 1, -1, -1):
        W = [V[i] - phi * (i - Q) ** 2 * dt - (alpha * (i - Q) ** 2 if t == n - 1 else 0.0)
             for i in range(2 * Q + 1)]
        new = []
        for i in range(2 * Q + 1):
            best = -np.inf
            for jb in range(len(p)):
                for ja in range(len(p)):
                    pb = 0.0 if i == 2 * Q else p[jb]
                    pa = 0.0 if i == 0 else p[ja]
                    v = (pb * (depths[jb] - xi[jb] * (1 - pb)) + pa * (depths[ja] - xi[ja] * (1 - pa))
                         + (pb * pa + (1 - pb) * (1 - pa)) * W[i])
                    if pb * (1 - pa) > 0:
                        v += pb * (1 - pa) * W[i + 1]
                    if pa * (1 - pb) > 0:
                        v += pa * (1 - pb) * W[i - 1]
                    best = max(best, v)
            new.append(best)
        V = new
    return np.array(V)


def test_informed_lattice_dp_against_loops_and_a_closed_form():
    """The vectorised DP equals the loop reference on random cases; without selection and
    penalties (and Q beyond reach) V0 = n * 2 max_j p_j delta_j, and selection lowers it."""
    from mmgym.baselines.book_model import solve_informed_lattice

    rng = np.random.default_rng(5)
    for _ in range(5):
        J, Q, n = int(rng.integers(1, 5)), int(rng.integers(1, 4)), int(rng.integers(1, 6))
        p = rng.uniform(0.05, 0.95, J)
        xi = rng.uniform(0.0, 0.03, J)
        d = np.sort(rng.uniform(0.0, 0.05, J))
        phi, alpha = rng.uniform(0, 0.01), rng.uniform(0, 0.01)
        v, _, _ = solve_informed_lattice(p, xi, d, n, Q, 1.0, phi, alpha)
        assert np.allclose(v[0], _slow_informed_dp(p, xi, d, n, Q, 1.0, phi, alpha), rtol=1e-12, atol=1e-14)
    p = np.array([0.8, 0.5, 0.3])
    d = np.array([0.005, 0.015, 0.025])
    v, _, _ = solve_informed_lattice(p, np.zeros(3), d, 7, 10, 1.0, 0.0, 0.0)
    assert np.isclose(v[0, 10], 7 * 2 * np.max(p * d))
    v_sel, _, _ = solve_informed_lattice(p, np.full(3, 0.01), d, 7, 10, 1.0, 0.0, 0.0)
    assert v_sel[0, 10] < v[0, 10]
    import pytest

    with pytest.raises(ValueError, match="one length"):
        solve_informed_lattice(p, np.zeros(2), d, 7, 10, 1.0, 0.0, 0.0)


def test_model_vs_book_reports_each_model():
    """model_vs_book runs the three policies on the same book episodes and reports V0, the book's
    objective and their ratio (small probe run: the numbers themselves are in docs/LOB.md)."""
    from pathlib import Path

    from mmgym.calibrate import calibrate_probes, model_vs_book
    from mmgym.config import load_env_config

    cfg = load_env_config(Path(__file__).resolve().parents[1] / "configs" / "lob.yaml")
    pc = calibrate_probes(cfg, (0.5, 1.5, 2.5, 3.5), envs_per_depth=10, steps=100, seed=1, fill_rule="poisson")
    rows = model_vs_book(cfg, pc, episodes=8, seed=0)
    assert set(rows) == {"optimal", "optimal_jump", "book_model"}
    for r in rows.values():
        assert np.isfinite(r["v0"]) and np.isfinite(r["book"]) and r["fills"] > 0
    assert rows["optimal"]["v0"] > rows["optimal_jump"]["v0"] > rows["book_model"]["v0"]


def test_revaluation_split_adds_up_to_the_book_pnl():
    """The three parts of revaluation_split's book column sum to the episodes' PnL as run_policy
    measures it (same seeds); without a jump the model's revaluation parts are 0."""
    from pathlib import Path

    from mmgym.baselines import make_baseline
    from mmgym.calibrate import revaluation_split
    from mmgym.config import load_env_config
    from mmgym.evaluation import run_policy

    cfg = load_env_config(Path(__file__).resolve().parents[1] / "configs" / "lob.yaml")
    cfg = cfg.model_copy(update={"market": cfg.market.model_copy(update={"horizon": 40.0})})
    pol = make_baseline("glft", cfg)
    split = revaluation_split(cfg, pol, episodes=6, seed=3)
    book = sum(v[0] for v in split.values())
    assert np.isclose(book, run_policy(cfg, pol, 6, 3).pnl.mean(), rtol=0, atol=1e-9)
    assert split["spread captured"][1] > 0
    assert split["revaluation of the lots filled"][1] == 0 and split["revaluation of the inventory held"][1] == 0


def test_book_model_named_baseline_probes_on_the_tuning_streams(monkeypatch):
    """make_baseline("book_model") calibrates probe quotes on the tuning streams (never an
    evaluation's episodes) with the config's fill rule and solves the lattice model on them; a
    stream family changes the probes' fills for the same seeds; off the book: one clear error."""
    from pathlib import Path

    import pytest

    import mmgym.calibrate as cal
    from mmgym.baselines import make_baseline
    from mmgym.baselines.book_model import BookModelPolicy
    from mmgym.config import ConfigError, load_env_config
    from mmgym.envs.market import TUNING_STREAMS

    root = Path(__file__).resolve().parents[1] / "configs"
    cfg = load_env_config(root / "lob.yaml")
    small = dict(ticks=(0.5, 1.5, 2.5), envs_per_depth=6, steps=60)
    calls = []
    real = cal.calibrate_probes

    def spy(config, **kw):
        calls.append(kw)
        return real(config, **small, **kw)

    monkeypatch.setattr(cal, "calibrate_probes", spy)
    pol = make_baseline("book_model", cfg)
    assert calls == [{"spawn_key": TUNING_STREAMS}]
    ref = BookModelPolicy(cfg, real(cfg, **small, spawn_key=TUNING_STREAMS))
    assert pol.v0 == ref.v0 and np.array_equal(pol.j_bid, ref.j_bid)
    assert pol.describe()["model_v0"] == pol.v0 and pol.describe()["fill_rule"] == cfg.market.fill_rule
    a = cal.probe_fills(cfg, (0.5,), envs_per_depth=6, steps=60, seed=3)
    b = cal.probe_fills(cfg, (0.5,), envs_per_depth=6, steps=60, seed=3, spawn_key=TUNING_STREAMS)
    assert not (np.array_equal(a.fills_bid, b.fills_bid) and np.array_equal(a.fills_ask, b.fills_ask))
    from mmgym.evaluation import run_evaluation

    res = run_evaluation(cfg, {"book_model": pol, "as": "as"}, episodes=4, seed=100000)
    assert res.metrics["book_model"]["v0"] == pol.v0 and "optimal_v0" not in res.metadata
    with pytest.raises(ConfigError, match="book_model.*LOBMarketMaking"):
        make_baseline("book_model", load_env_config(root / "cjp.yaml"))

"""Risk limits and alerts of mmgym/PortfolioMarketMaking-v0 (issue 11): the kernel against a slow
scalar reference (suppression exactly when the rule says, the vol-shrunk limits, the alert flags and
counts), the invariant |q_a| <= L_a under suppress, alert counts against a hand count over the
recorded aux, alerts.jsonl and the per-fill audit reconciled with the env, and the one-line refusals."""

from __future__ import annotations

import json
import math
import types

import numpy as np
import pytest

import mmgym  # noqa: F401
from mmgym.config import ConfigError, load_env_config
from mmgym.envs.market import BatchMarket

from .reference_intensity import RefRng

ID = "mmgym/PortfolioMarketMaking-v0"


def _cfg(**sections):
    return load_env_config({"id": ID, **sections})


# ------------------------------------------------------------------ slow reference ---
class RefLimits:
    """One env of the portfolio market with risk limits, in scalar Python: the step of
    mmgym/scenarios/portfolio.py (raw depths) written again, with the limit rules of
    ``LimitsConfig`` spelled out as the docs state them:

    - limits in force this step, from the state before it: ``s_a = min(1, sigma_ref_a / sigma_hat_a)``,
      ``sigma_hat_a = sqrt(vol_var_a / dt)`` (the EWMA the observation reports), ``L_a s_a``;
      ``L_f min(1, min over assets with b_a != 0 of s_a)``;
    - suppress: a side is not quoted when its fill would make a limited quantity (q_a, or
      e = b_1^T q counted fill by fill) larger than its limit in absolute value *and* larger than
      before;
    - alerts after the step: breach ``|x| > L``, warn ``warn_at L <= |x| <= L``.
    """

    def __init__(self, cfg, rng: RefRng):
        from mmgym.scenarios.portfolio import factor_loadings

        pf, lim = cfg.portfolio, cfg.limits
        self.k = pf.assets
        self.a = pf.per_asset("A").tolist()
        self.kk = pf.per_asset("k").tolist()
        self.qmax = pf.per_asset("max_inventory").tolist()
        self.s0 = pf.per_asset("s0").tolist()
        sig = pf.sigma_matrix()
        self.chol = np.linalg.cholesky(sig) * math.sqrt(cfg.market.dt)
        self.sig = sig
        self.dt = cfg.market.dt
        self.decay = 1.0 - 0.5 ** (1.0 / cfg.observation.vol_halflife)
        self.n = cfg.market.n_steps
        self.phi = cfg.reward.inventory_penalty
        self.alpha = cfg.reward.terminal_penalty
        self.b = factor_loadings(pf)[0].tolist()
        pos = lim.position
        self.lpos = [math.inf] * self.k if pos is None else (pos if isinstance(pos, list) else [pos] * self.k)
        self.lfac = math.inf if lim.factor is None else lim.factor
        ref = lim.vol_ref
        self.ref = (np.sqrt(np.diag(sig)).tolist() if ref is None else ref if isinstance(ref, list) else [ref] * self.k)
        self.scaling = lim.vol_scaling
        self.suppress = lim.enabled and lim.on_breach == "suppress"
        self.flatten = lim.enabled and lim.on_breach == "flatten"
        im = cfg.impact
        self.h, self.eta = im.half_spread, im.eta
        g = pf.cross_impact if pf.cross_impact is not None else (np.eye(self.k) * im.nu).tolist()
        self.g = [list(map(float, row)) for row in g]
        self.hedge = cfg.action.hedge
        # the factor instrument (portfolio.factor_instrument), its defaults spelled out: w = b_1 /
        # sum(b_1), g_e = G w, the impact section's costs
        fi = pf.factor_instrument
        self.fi = fi is not None
        if self.fi:
            w = fi.weights if fi.weights is not None else [x / sum(self.b) for x in self.b]
            self.w = [float(x) for x in w]
            self.ge = (fi.cross_impact if fi.cross_impact is not None else
                       [sum(self.g[a][j] * self.w[j] for j in range(self.k)) for a in range(self.k)])
            self.he = im.half_spread if fi.half_spread is None else fi.half_spread
            self.etae = im.eta if fi.eta is None else fi.eta
            self.qemax = fi.max_position
        self.warn_at = lim.warn_at
        self.rng = rng
        self.reset()

    def reset(self):
        self.mid = list(self.s0)
        self.q = [0] * self.k
        self.qe = 0
        self.cash = 0.0
        self.t = 0
        self.var = [self.sig[a, a] * self.dt for a in range(self.k)]
        self.ep = {"alerts_breach": 0, "alerts_warn": 0, "max_abs_factor_exposure": 0.0}

    def limits(self):
        scale = []
        for a in range(self.k):
            s_hat = math.sqrt(self.var[a] / self.dt)
            scale.append(min(1.0, self.ref[a] / s_hat) if self.scaling and s_hat > 0 else 1.0)
        lpos = [self.lpos[a] * scale[a] for a in range(self.k)]
        fscale = min([1.0] + [scale[a] for a in range(self.k) if self.b[a] != 0.0])
        return lpos, self.lfac * fscale

    def exposure(self):
        """x = q + q_e w (lots per asset; q without the factor instrument)."""
        return [self.q[a] + (self.qe * self.w[a] if self.fi else 0.0) for a in range(self.k)]

    def step(self, depths):
        """Raw actions (K bid depths, K ask depths[, K market-order lots[, the factor instrument's
        units]]). Returns (reward, done, record) with the step's quote flags, orders, limits and
        alert flags."""
        k = self.k
        lpos, lfac = self.limits()
        bw = sum(self.b[a] * self.w[a] for a in range(k)) if self.fi else 0.0
        w0 = self.cash + sum(x * s for x, s in zip(self.exposure(), self.mid))
        e = bw * self.qe
        for a in range(k):
            e += self.b[a] * self.q[a]
        hedge = [0] * k
        impact = 0.0
        ve = 0
        if self.hedge:  # the agent's orders: rint(lots), clipped to the inventory bound
            for a in range(k):
                v = int(np.rint(depths[2 * k + a]))
                v = max(-self.qmax[a] - self.q[a], min(self.qmax[a] - self.q[a], v))
                hedge[a] = v
                e += self.b[a] * v
            if self.fi:  # the instrument's order: the next column, clipped to max_position
                ve = int(np.rint(depths[3 * k]))
                ve = max(-self.qemax - self.qe, min(self.qemax - self.qe, ve))
                e += bw * ve
        if self.flatten:
            # each asset back to sign(q) floor(L_a) ...
            for a in range(k):
                q = self.q[a] + hedge[a]
                if abs(q) > lpos[a]:
                    v = int(math.copysign(math.floor(lpos[a]), q)) - q
                    hedge[a] += v
                    e += self.b[a] * v
            # ... then lot by lot towards 0 in the asset that lowers |e| most, while |e| > L_f
            while abs(e) > lfac:
                cands = [a for a in range(k) if math.copysign(1.0, e) * self.b[a] * (self.q[a] + hedge[a]) > 0
                         and abs(self.b[a]) < 2 * abs(e)]
                if not cands:
                    break
                best = max(cands, key=lambda a: (abs(self.b[a]), -a))
                step = -1 if self.q[best] + hedge[best] > 0 else 1
                hedge[best] += step
                e += self.b[best] * step
        # Almgren & Chriss: the instrument's order at w^T s +- (h_e + eta_e |v_e|), each asset's at
        # s_a +- (h + eta |v_a|), all against the pre-trade mids; then every mid moves by (G v + g_e v_e)_a
        fmid = sum(self.w[a] * self.mid[a] for a in range(k)) if self.fi else math.nan
        if ve:
            cost = abs(ve) * (self.he + self.etae * abs(ve))
            self.cash -= ve * fmid + cost
            self.qe += ve
            impact += cost
        for a in range(k):
            v = hedge[a]
            if v:
                cost = abs(v) * (self.h + self.eta * abs(v))
                self.cash -= v * self.mid[a] + cost
                self.q[a] += v
                impact += cost
        if any(hedge) or ve:
            moves = [sum(self.g[a][j] * hedge[j] for j in range(k)) + (self.ge[a] * ve if ve else 0.0)
                     for a in range(k)]
            for a in range(k):
                self.mid[a] += moves[a]
        quoted = []
        for a in range(k):
            db, da = depths[a], depths[k + a]
            eb, ea = self.rng.exponential(), self.rng.exponential()
            q = self.q[a]
            qb = q + 1 <= self.qmax[a]
            qa = q - 1 >= -self.qmax[a]

            def adds(x, x_new, limit):
                return abs(x_new) > limit and abs(x_new) > abs(x)

            if self.suppress:
                qb = qb and not adds(q, q + 1, lpos[a]) and not adds(e, e + self.b[a], lfac)
                qa = qa and not adds(q, q - 1, lpos[a]) and not adds(e, e - self.b[a], lfac)
            ln_c = math.log(self.a[a] * self.dt)
            fb = int(qb and eb > self.kk[a] * db - ln_c)
            fa = int(qa and ea > self.kk[a] * da - ln_c)
            self.cash += fa * (self.mid[a] + da) - fb * (self.mid[a] - db)
            self.q[a] += fb - fa
            if self.suppress:
                e += self.b[a] * (fb - fa)
            quoted.append((qb, qa))
        z = [self.rng.normal() for _ in range(k)]
        for a in range(k):
            ds = sum(self.chol[a, j] * z[j] for j in range(k))
            self.mid[a] += ds
            self.var[a] += self.decay * (ds * ds - self.var[a])
        x = self.exposure()
        w1 = self.cash + sum(x[a] * self.mid[a] for a in range(k))
        risk = sum(x[a] * self.sig[a, j] * x[j] for a in range(k) for j in range(k))
        self.t += 1
        done = self.t >= self.n
        r = w1 - w0 - self.phi * risk * self.dt - (self.alpha * risk if done else 0.0)
        if done:  # the final mark: minus the liquidation's permanent impact 1/2 y^T G_joint y
            # G_joint: the impact of the K + 1 instruments' trades on their prices (assets, w^T S)
            if self.fi:
                y = list(self.q) + [self.qe]
                gj = [row + [self.ge[a]] for a, row in enumerate(self.g)]
                gj.append([sum(self.w[c] * self.g[c][j] for c in range(k)) for j in range(k)]
                          + [sum(self.w[c] * self.ge[c] for c in range(k))])
            else:
                y, gj = self.q, self.g
            liq = 0.5 * sum(y[a] * gj[a][j] * y[j] for a in range(len(y)) for j in range(len(y)))
            r -= liq
            impact += liq
        # alerts after the step
        e_end = sum(self.b[a] * self.q[a] for a in range(k)) + bw * self.qe
        breach = [abs(self.q[a]) > lpos[a] for a in range(k)] + [abs(e_end) > lfac]
        vals = [abs(x) for x in self.q] + [abs(e_end)]
        lims = lpos + [lfac]
        warn = [not br and v >= self.warn_at * lim for br, v, lim in zip(breach, vals, lims)]
        self.ep["alerts_breach"] += sum(breach)
        self.ep["alerts_warn"] += sum(warn)
        self.ep["max_abs_factor_exposure"] = max(self.ep["max_abs_factor_exposure"], abs(e_end))
        rec = {"quoted": quoted, "lpos": lpos, "lfac": lfac, "breach": breach, "warn": warn,
               "q": list(self.q), "e": e_end, "ep": dict(self.ep), "hedge": hedge, "impact": impact,
               "qe": self.qe, "ve": ve, "fmid": fmid, "risk": risk}
        if done:
            self.reset()
        return r, done, rec


CASES = [
    # (K, limits, vol_halflife): position only; factor only on a factor model; both, vol-scaled
    # with a reference below sigma (so that they shrink often); alert-only (no suppression)
    (2, {"position": 2}, 20.0),
    (3, {"factor": 1.7}, 20.0),
    (3, {"position": [2, 3, 1.5], "factor": 2.2, "vol_scaling": True, "vol_ref": 1.3, "warn_at": 0.7}, 3.0),
    (2, {"position": 2.5, "factor": 2.0, "on_breach": "alert", "vol_scaling": True}, 2.0),
    # flatten: vol-scaled position and factor limits on a factor model, with impact
    (3, {"position": [2, 3, 1.5], "factor": 2.2, "vol_scaling": True, "vol_ref": 1.3, "on_breach": "flatten"}, 3.0),
    (2, {"factor": 1.2, "on_breach": "flatten"}, 20.0),
    # the agent's market orders with a cross-impact matrix: alone, and under flatten limits
    (3, {}, 20.0),
    (3, {"position": 2, "factor": 2.0, "on_breach": "flatten", "vol_scaling": True}, 3.0),
    # the factor instrument (portfolio.factor_instrument) on a factor model, with the agent's orders:
    # its defaults (w = b_1 / sum b_1, g_e = G w) and no limits; given weights, impact and costs
    # under suppress limits (its position counts in the factor exposure)
    (3, {}, 20.0),
    (3, {"position": 3, "factor": 1.5}, 20.0),
]
FACTOR_CASES = {8: {"max_position": 6},
                9: {"weights": [0.5, 0.2, 0.3], "cross_impact": [0.01, -0.004, 0.02], "half_spread": 0.02,
                    "eta": 0.03, "max_position": 4}}


@pytest.mark.parametrize("case", range(len(CASES)))
def test_kernel_matches_reference_with_limits(case):
    """4 configs x 4 envs x 70 steps (20-step episodes, autoresets included): which sides quote
    (aux depth NaN = not quoted), inventories, rewards, the limits in force (vol-shrunk), the
    per-limit breach / warn flags, the alert counts and the episode statistics match the reference."""
    k, limits, halflife = CASES[case]
    rng = np.random.default_rng(500 + case)
    pf = {"assets": k, "A": 140.0, "k": 1.5, "max_inventory": 4, "s0": 100.0}
    if case in (1, 2, 4, 8, 9):
        pf.update(loadings=rng.uniform(0.3, 1.2, (k, 1)).round(2).tolist(), factor_vols=[1.8],
                  idio_vols=rng.uniform(0.5, 1.0, k).round(2).tolist())
    flatten = limits.get("on_breach") == "flatten"
    hedge = case >= 6
    if hedge:
        pf["cross_impact"] = [[0.03, 0.01, 0.0], [0.01, 0.02, -0.005], [0.02, 0.0, 0.04]]
    fi = case in FACTOR_CASES
    if fi:
        pf["factor_instrument"] = FACTOR_CASES[case]
    impact = {"half_spread": 0.05, "eta": 0.1} if (flatten or hedge) else {}
    if flatten and not hedge:
        impact["nu"] = 0.02
    cfg = _cfg(market={"horizon": 0.1, "dt": 0.005}, observation={"vol_halflife": halflife},
               reward={"inventory_penalty": 0.02, "terminal_penalty": 0.01}, portfolio=pf, limits=limits,
               impact=impact, action={"hedge": hedge})
    n = 4
    market = BatchMarket(cfg, n, raw_depths=True)
    market.seed_rows([case * 10 + i for i in range(n)])
    refs = [RefLimits(cfg, RefRng(int(market.rng[i, 0]), int(market.rng[i, 1]))) for i in range(n)]
    market.reset()
    col = {name: j for j, name in enumerate(market.aux_names)}
    stat = {name: j for j, name in enumerate(market.stat_names)}
    n_suppressed = n_breach = n_warn = n_hedged = n_factor = 0
    lim_on = cfg.limits.enabled
    for _ in range(70):
        depths = rng.uniform(-0.3, 0.8, size=(n, 2 * k))  # aggressive: fills often, limits bind
        if hedge:  # market orders of rint(x) lots, mostly 0 (and the instrument's units)
            kh = k + fi
            depths = np.concatenate([depths, rng.uniform(-2.6, 2.6, (n, kh)) * (rng.uniform(size=(n, kh)) < 0.3)], axis=1)
        b = market.step(depths)
        for i, ref in enumerate(refs):
            r, done, rec = ref.step(depths[i].tolist())
            assert b.reward[i] == pytest.approx(r, rel=1e-10, abs=1e-9)
            assert bool(b.done[i]) == done
            if not done:
                np.testing.assert_array_equal(market.inventory[i], rec["q"])
                np.testing.assert_allclose(market.mid[i], ref.mid, rtol=1e-13)
            for a in range(k):
                qb, qa = rec["quoted"][a]
                assert (not math.isnan(b.aux[i, col[f"depth_bid_{a}"]])) == qb
                assert (not math.isnan(b.aux[i, col[f"depth_ask_{a}"]])) == qa
                n_suppressed += (not qb) + (not qa)
                assert b.aux[i, col[f"inventory_{a}"]] == rec["q"][a]
                if lim_on:  # without limits these columns are not written (nor in info)
                    assert b.aux[i, col[f"limit_{a}"]] == pytest.approx(rec["lpos"][a], rel=1e-12)
                    assert b.aux[i, col[f"breach_{a}"]] == rec["breach"][a]
                    assert b.aux[i, col[f"warn_{a}"]] == rec["warn"][a]
            if flatten or hedge:
                for a in range(k):
                    assert b.aux[i, col[f"hedge_{a}"]] == rec["hedge"][a]
                n_hedged += sum(v != 0 for v in rec["hedge"])
                assert -b.terms[i, market.term_names.index("impact")] == pytest.approx(rec["impact"], abs=1e-12)
            if fi:  # the instrument's order, price, position, and the total-exposure variance
                assert b.aux[i, col["hedge_factor"]] == rec["ve"]
                assert b.aux[i, col["factor_mid"]] == pytest.approx(rec["fmid"], rel=1e-13)
                assert b.aux[i, col["factor_position"]] == rec["qe"]
                if not done:
                    assert market.field("factor_position")[i] == rec["qe"]
                assert b.aux[i, col["portfolio_variance"]] == pytest.approx(rec["risk"], rel=1e-10, abs=1e-12)
                n_factor += rec["ve"] != 0
            assert b.aux[i, col["factor_exposure"]] == pytest.approx(rec["e"], abs=1e-12)
            if lim_on:
                assert b.aux[i, col["limit_factor"]] == pytest.approx(rec["lfac"], rel=1e-12)
                assert b.aux[i, col["breach_factor"]] == rec["breach"][k]
                assert b.aux[i, col["warn_factor"]] == rec["warn"][k]
            assert b.aux[i, col["alerts_breach"]] == sum(rec["breach"])
            assert b.aux[i, col["alerts_warn"]] == sum(rec["warn"])
            n_breach += sum(rec["breach"])
            n_warn += sum(rec["warn"])
            if done:
                for name, value in rec["ep"].items():
                    assert b.final_stats[i, stat[name]] == pytest.approx(value, abs=1e-12), name
    assert n_warn > 0 or flatten or not cfg.limits.enabled  # the cases exercise the rules
    if cfg.limits.on_breach == "suppress":
        assert n_suppressed > 0
    if case in (2, 3, 4, 5):  # vol-shrunk limits, alert-only and flatten (fills after it) do breach
        assert n_breach > 0
    if flatten or hedge:
        assert n_hedged > 0
    if fi:
        assert n_factor > 0


def test_suppress_never_exceeds_static_limits():
    """on_breach: suppress without vol scaling: over 500 envs x 200 aggressive steps, |q_a| <= L_a and
    |b_1^T q| <= L_f after every step, and no breach is ever flagged; the same run with 'alert' does
    go beyond (the limits bind); with 'flatten' the inventories after its market orders (before the
    step's fills) are inside the limits on every step."""
    lim = {"position": [2, 3], "factor": 3.5}
    pf = {"assets": 2, "max_inventory": 6}
    out = {}
    for mode in ("suppress", "alert", "flatten"):
        cfg = _cfg(market={"horizon": 1.0}, portfolio=pf, limits={**lim, "on_breach": mode})
        m = BatchMarket(cfg, 500, raw_depths=True)
        m.seed_rows(list(range(500)))
        m.reset()
        col = {name: j for j, name in enumerate(m.aux_names)}
        rng = np.random.default_rng(3)
        worst_q = np.zeros(2)
        worst_e = 0.0
        breaches = 0
        for _ in range(200):
            b = m.step(rng.uniform(-0.5, 0.5, (500, 4)))
            q = b.aux[:, [col["inventory_0"], col["inventory_1"]]]
            if mode == "flatten":  # back out the step's fills: the inventory right after the orders
                q = q - b.aux[:, [col["fill_bid_0"], col["fill_bid_1"]]] + b.aux[:, [col["fill_ask_0"], col["fill_ask_1"]]]
                e = q @ m.params.fac_b
                assert np.all(np.abs(q) <= [2, 3]) and np.all(np.abs(e) <= 3.5 + 1e-12)
            worst_q = np.maximum(worst_q, np.abs(q).max(axis=0))
            worst_e = max(worst_e, float(np.abs(b.aux[:, col["factor_exposure"]]).max()))
            breaches += int(b.aux[:, col["alerts_breach"]].sum())
        out[mode] = (worst_q, worst_e, breaches)
    worst_q, worst_e, breaches = out["suppress"]
    assert np.all(worst_q <= [2, 3]) and worst_e <= 3.5 + 1e-12 and breaches == 0
    for mode in ("alert", "flatten"):
        worst_q, worst_e, breaches = out[mode]
        assert (np.any(worst_q > [2, 3]) or worst_e > 3.5) and breaches > 0


def test_vol_shrunk_limit_by_hand():
    """The limit in force on a step is L_a min(1, sigma_ref_a / sigma_hat_a) with sigma_hat_a =
    sqrt(vol_var_a / dt) read from the state before the step (hand formula on the track), and the
    factor limit L_f times the smallest of those factors (every loading non-zero here)."""
    cfg = _cfg(market={"horizon": 1.0}, observation={"vol_halflife": 2.0},
               limits={"position": [3.0, 5.0], "factor": 4.0, "vol_scaling": True, "vol_ref": [1.5, 2.5]})
    m = BatchMarket(cfg, 50, raw_depths=True)
    m.seed_rows(list(range(50)))
    m.reset()
    col = {name: j for j, name in enumerate(m.aux_names)}
    dt = cfg.market.dt
    shrunk = 0
    for _ in range(40):
        s_hat = np.sqrt(m.track.vol_var.copy() / dt)  # (N, K) before the step
        b = m.step(np.full((50, 4), 0.3))
        scale = np.minimum(1.0, np.array([1.5, 2.5]) / s_hat)
        np.testing.assert_allclose(b.aux[:, col["limit_0"]], 3.0 * scale[:, 0], rtol=1e-12)
        np.testing.assert_allclose(b.aux[:, col["limit_1"]], 5.0 * scale[:, 1], rtol=1e-12)
        np.testing.assert_allclose(b.aux[:, col["limit_factor"]], 4.0 * scale.min(axis=1), rtol=1e-12)
        shrunk += int((scale < 1).sum())
    assert shrunk > 0


def test_alert_counts_match_a_hand_count():
    """Episode statistics alerts_breach / alerts_warn equal the hand count over the recorded aux
    (per-asset |inventory_a| against limit_a, |factor_exposure| against limit_factor) of each
    finished episode."""
    cfg = _cfg(market={"horizon": 0.2}, observation={"vol_halflife": 3.0},
               limits={"position": 2.0, "factor": 2.5, "vol_scaling": True, "warn_at": 0.75, "on_breach": "alert"})
    m = BatchMarket(cfg, 20, raw_depths=True)
    m.seed_rows(list(range(20)))
    m.reset()
    col = {name: j for j, name in enumerate(m.aux_names)}
    stat = {name: j for j, name in enumerate(m.stat_names)}
    hand_b = np.zeros(20)
    hand_w = np.zeros(20)
    rng = np.random.default_rng(1)
    for _ in range(m.n_steps):
        b = m.step(rng.uniform(-0.2, 0.6, (20, 4)))
        for x, lim in (("inventory_0", "limit_0"), ("inventory_1", "limit_1"), ("factor_exposure", "limit_factor")):
            v, L = np.abs(b.aux[:, col[x]]), b.aux[:, col[lim]]
            hand_b += v > L
            hand_w += (v <= L) & (v >= 0.75 * L)
    assert b.done.all()
    np.testing.assert_array_equal(b.final_stats[:, stat["alerts_breach"]], hand_b)
    np.testing.assert_array_equal(b.final_stats[:, stat["alerts_warn"]], hand_w)
    assert hand_b.sum() > 0 and hand_w.sum() > 0


def test_factor_loadings_from_covariance_are_the_top_eigenvector():
    from mmgym.scenarios.portfolio import factor_loadings

    cfg = _cfg(portfolio={"assets": 3, "covariance": [[4.0, 1.0, 0.5], [1.0, 2.0, 0.3], [0.5, 0.3, 1.0]]})
    b, where = factor_loadings(cfg.portfolio)
    _, v = np.linalg.eigh(cfg.portfolio.sigma_matrix())
    assert where == "top eigenvector of Sigma"
    np.testing.assert_allclose(np.abs(b), np.abs(v[:, -1]), rtol=1e-12)
    assert b.sum() > 0 and np.linalg.norm(b) == pytest.approx(1.0)
    cfg = _cfg(portfolio={"assets": 2, "loadings": [[0.5, 1.0], [2.0, 0.0]]})
    np.testing.assert_array_equal(factor_loadings(cfg.portfolio)[0], [0.5, 2.0])


# ------------------------------------------------------------------ config ---
@pytest.mark.parametrize("limits, message", [
    ({"position": [1.0, 2.0, 3.0]}, "limits.position has 3 entries, expected portfolio.assets = 2"),
    ({"position": -1}, "limits: position = -1 must be > 0"),
    ({"position": [1.0, 0.0]}, "limits: position[1] = 0 must be > 0"),
    ({"factor": 0.0}, "limits: factor = 0 must be > 0"),
    ({"position": 2, "warn_at": 1.5}, "warn_at = 1.5 must be in (0, 1]"),
    ({"position": 2, "vol_ref": 1.0}, "vol_ref is set but vol_scaling is false"),
    ({"vol_scaling": True}, "vol_scaling needs a limit"),
    ({"position": 2, "on_breach": "panic"}, "limits.on_breach"),
    ({"position": 2, "bogus": 1}, "limits.bogus: unknown key"),
])
def test_bad_limits_config_is_one_line(limits, message):
    with pytest.raises(ConfigError) as exc:
        _cfg(limits=limits)
    assert message in str(exc.value) and "\n" not in str(exc.value), str(exc.value)


def test_unused_impact_and_dp_are_refused_in_one_line():
    """The impact section prices market orders only (set without them: refused); the K = 2 DP
    refuses flatten, a factor limit, vol scaling and limits below one lot, and keeps alert-only
    limits."""
    from mmgym.baselines import make_baseline

    with pytest.raises(ConfigError) as exc:
        BatchMarket(_cfg(limits={"position": 2}, impact={"eta": 0.1}), 1)
    assert str(exc.value).startswith("impact.eta: ") and "flatten" in str(exc.value) and "\n" not in str(exc.value)
    for limits in ({"position": 2, "on_breach": "flatten"}, {"factor": 2.0},
                   {"position": 2, "vol_scaling": True}, {"position": 0.5}):
        with pytest.raises(ConfigError, match="models only static per-asset position limits") as exc:
            make_baseline("optimal", _cfg(limits=limits))
        assert "\n" not in str(exc.value)
    # alert-only limits leave the dynamics unchanged: the DP stays available
    make_baseline("optimal", _cfg(market={"horizon": 0.05}, limits={"position": 2, "on_breach": "alert"}))


# ------------------------------------------------------------------ alerts and audit records ---
def _direct_run(cfg, policy, episodes):
    """The episodes ``run_policy`` runs (seeds 0..episodes-1, one chunk), stepped here by hand:
    per step the cash and inventories before it, the aux after it, the done flags and final stats."""
    m = BatchMarket(cfg, episodes, raw_depths=True)
    m.seed_rows(list(range(episodes)))
    m.reset()
    act = np.zeros((episodes, m.action_dim))
    steps = []
    for _ in range(m.n_steps):
        policy.act(m, out=act)
        cash0, inv0 = m.field("cash").copy(), m.inventory.copy()
        b = m.step(act)
        steps.append((cash0, inv0, b.aux.copy(), b.done.copy(), m.field("cash").copy()))
    return m, steps, b.final_stats.copy()


@pytest.mark.parametrize("mode", ["alert", "flatten", "hedge"])
def test_alerts_and_audit_reconcile_with_the_env(mode):
    """run_policy on a limited portfolio (per-asset AS; alert-only so that breaches happen, or
    flatten, or AS plus random market orders under a cross-impact matrix, whose orders are audited
    too: price and pre-trade mid by hand): every
    alert record is a flagged limit of the env's aux at its (episode, step) with the same value and
    limit, their count per episode is the episode statistic; the audit's fills per (episode, step,
    asset, side) are the aux fill columns, their signed sum per (episode, asset) is the final
    inventory, and the cash after a step's last fill is the env's cash after the step."""
    from mmgym.baselines import make_baseline
    from mmgym.evaluation import audit_columns, run_policy

    g = np.array([[0.01, 0.0], [0.0, 0.01]]) if mode != "hedge" else np.array([[0.02, 0.01], [0.005, 0.03]])
    cfg = _cfg(market={"horizon": 0.25}, reward={"inventory_penalty": 0.01, "maker_fee": 0.01},
               portfolio={"assets": 2, "A": [140.0, 100.0], "max_inventory": 6,
                          **({"cross_impact": g.tolist()} if mode == "hedge" else {})},
               limits={"position": [2, 3], "factor": 3.0, "vol_scaling": True, "warn_at": 0.6,
                       "on_breach": "alert" if mode == "hedge" else mode},
               impact={"half_spread": 0.1, "eta": 0.05, **({"nu": 0.01} if mode == "flatten" else {})}
               if mode != "alert" else {}, action={"hedge": mode == "hedge"})
    pol = make_baseline("as", cfg)
    if mode == "hedge":
        class Hedging(type(pol)):  # AS quotes plus random orders of -2..2 lots (fixed per step)
            def act(self, market, out=None):
                out = super().act(market, out)
                r = np.random.default_rng(int(market.step_count[0]))
                n = market.num_envs
                out[:, market.action_layout.hedge] = r.integers(-2, 3, (n, 2)) * (r.uniform(size=(n, 2)) < 0.2)
                return out

        pol.__class__ = Hedging
    eps = 12
    batch = run_policy(cfg, pol, eps, seed=0, audit=True, cache=False)
    m, steps, final = _direct_run(cfg, pol, eps)
    col = {name: j for j, name in enumerate(m.aux_names)}
    stat = {name: j for j, name in enumerate(m.stat_names)}
    # alerts
    assert batch.alerts, "the config should raise alerts"
    per_ep = np.zeros(eps)
    for rec in batch.alerts:
        aux = steps[rec["step"]][2][rec["episode"]]
        sfx = "factor" if rec["asset"] == "factor" else str(rec["asset"])
        assert aux[col[f"{rec['alert']}_{sfx}"]] == 1.0
        value = aux[col["factor_exposure"]] if sfx == "factor" else aux[col[f"inventory_{sfx}"]]
        assert rec["value"] == value and rec["limit"] == aux[col[f"limit_{sfx}"]]
        assert rec["limit_name"] == ("factor" if sfx == "factor" else "position")
        per_ep[rec["episode"]] += rec["alert"] == "breach"
    n_flags = sum(int(s[2][:, col["alerts_breach"]].sum() + s[2][:, col["alerts_warn"]].sum()) for s in steps)
    assert len(batch.alerts) == n_flags
    np.testing.assert_array_equal(per_ep, final[:, stat["alerts_breach"]])
    np.testing.assert_array_equal(batch.alerts_breach, final[:, stat["alerts_breach"]])
    # audit
    cols = audit_columns(cfg)
    rows = [dict(zip(cols, r)) for r in batch.audit]
    assert rows
    signed = np.zeros((eps, 2))
    count = {}
    last_cash = {}
    n_orders = 0
    for r in rows:
        signed[r["episode"], r["asset"]] += r["qty"] if r["side"] in ("bid", "market_buy") else -r["qty"]
        key = (r["episode"], r["step"], r["asset"], r["side"])
        count[key] = count.get(key, 0) + r["qty"]
        last_cash[(r["episode"], r["step"])] = r["cash_after"]
        aux = steps[r["step"]][2][r["episode"]]
        if r["side"].startswith("market"):  # the pre-trade mid: the quotes' mid before permanent impact
            vs = aux[[col["hedge_0"], col["hedge_1"]]]
            v = vs[r["asset"]]
            assert r["mid"] == pytest.approx(aux[col[f"quote_mid_{r['asset']}"]] - (g @ vs)[r["asset"]], abs=1e-12)
            assert r["price"] == pytest.approx(r["mid"] + np.sign(v) * (0.1 + 0.05 * abs(v)), abs=1e-12)
        else:
            assert r["mid"] == aux[col[f"quote_mid_{r['asset']}"]]
        assert r["inventory_after"] == signed[r["episode"], r["asset"]]  # every episode starts flat
    for t, (_, _, aux, done, cash_after) in enumerate(steps):
        for e in range(eps):
            for a in range(2):
                for side in ("bid", "ask"):
                    assert count.get((e, t, a, side), 0) == aux[e, col[f"fill_{side}_{a}"]]
                if mode != "alert":
                    v = count.get((e, t, a, "market_buy"), 0) - count.get((e, t, a, "market_sell"), 0)
                    assert v == aux[e, col[f"hedge_{a}"]]
                    n_orders += v != 0
            if (e, t) in last_cash and not done[e]:
                assert last_cash[(e, t)] == pytest.approx(cash_after[e], abs=1e-9)
    last = steps[-1][2]
    np.testing.assert_array_equal(signed, last[:, [col["inventory_0"], col["inventory_1"]]])
    assert (n_orders > 0) == (mode != "alert")


def test_evaluate_cli_writes_alerts_and_portfolio_audit(tmp_path, capsys):
    """evaluate.py on configs/portfolio2.yaml with limits: alerts.jsonl holds, per agent, as many
    breach lines as episodes x results.json's alerts_breach_mean; audit.csv has the portfolio's
    columns and each agent's fills match its mean fills."""
    import pandas as pd

    from agents.cli_evaluate import main

    out = tmp_path / "res"
    eps = 20
    rc = main(["configs/portfolio2.yaml", "--agents", "as", "begv", "--episodes", str(eps), "--out", str(out),
               "--audit", "--no-plots", "--set", "market.horizon=0.25", "limits.position=2",
               "limits.factor=2.5", "limits.vol_scaling=true", "limits.warn_at=0.8"])
    assert rc == 0
    res = json.loads((out / "results.json").read_text())["agents"]
    printed = capsys.readouterr().out
    assert (f"alerts per episode (breach / warn): as {res['as']['alerts_breach_mean']:.2f} / "
            f"{res['as']['alerts_warn_mean']:.2f}") in printed
    lines = [json.loads(x) for x in (out / "alerts.jsonl").read_text().splitlines()]
    for name in ("as", "begv"):
        mine = [x for x in lines if x["agent"] == name]
        assert sum(x["alert"] == "breach" for x in mine) == pytest.approx(eps * res[name]["alerts_breach_mean"])
        assert sum(x["alert"] == "warn" for x in mine) == pytest.approx(eps * res[name]["alerts_warn_mean"])
        assert set(mine[0]) == {"agent", "episode", "step", "asset", "limit_name", "alert", "value", "limit"}
    audit = pd.read_csv(out / "audit.csv")
    assert list(audit.columns) == ["agent", "episode", "step", "asset", "side", "price", "qty", "mid",
                                   "inventory_after", "cash_after"]
    for name in ("as", "begv"):
        assert audit[audit.agent == name].qty.sum() == pytest.approx(eps * res[name]["fills_mean"])
    # without limits: no alerts.jsonl
    out2 = tmp_path / "res2"
    assert main(["configs/portfolio2.yaml", "--agents", "as", "--episodes", "5", "--out", str(out2),
                 "--no-plots", "--set", "market.horizon=0.1"]) == 0
    assert not (out2 / "alerts.jsonl").exists()


def test_training_callback_logs_risk_scalars():
    """MarketStatsCallback on a limited portfolio logs ``risk/`` scalars: the alert counts per
    finished episode (episode statistics) and each limit's breach rate over the env-steps (a hand
    count over the aux); an env without limits logs none."""
    from agents.callbacks import MarketStatsCallback
    from agents.vec_env import MMVecEnv

    class Log:
        def __init__(self):
            self.values = {}

        def record(self, key, value, exclude=None):
            self.values[key] = value

    def run(limits):
        cfg = _cfg(market={"horizon": 0.1}, observation={"vol_halflife": 3.0}, limits=limits)
        env = MMVecEnv(cfg, num_envs=8, seed=0)
        cb = MarketStatsCallback(env)
        log = Log()
        cb.model = types.SimpleNamespace(logger=log, num_timesteps=0)  # an off-policy stand-in: records as episodes finish
        env.reset()
        rng = np.random.default_rng(0)
        col = {name: j for j, name in enumerate(env.market.aux_names)}
        breach = {"0": 0.0, "1": 0.0, "factor": 0.0}
        for _ in range(env.market.n_steps):
            _, _, done, infos = env.step(rng.uniform(-1.0, -0.5, (8, 4)).astype(np.float32))
            for label in breach if limits else ():
                breach[label] += env.market.buffers.aux[:, col[f"breach_{label}"]].sum()
            cb.locals = {"infos": infos}
            cb.on_step()
        assert done.all()
        eps = [info["mm_episode"] for info in infos]
        return log.values, eps, breach, 8 * env.market.n_steps

    values, eps, breach, n = run({"position": 1, "factor": 1.0, "vol_scaling": True, "on_breach": "alert"})
    assert values["risk/alerts_breach_per_episode"] == pytest.approx(np.mean([e["alerts_breach"] for e in eps]))
    assert values["risk/alerts_warn_per_episode"] == pytest.approx(np.mean([e["alerts_warn"] for e in eps]))
    assert values["risk/alerts_breach_per_episode"] > 0
    for label, count in breach.items():
        assert values[f"risk/breach_rate/{label}"] == pytest.approx(count / n)
    values, *_ = run({})
    assert not any(k.startswith("risk/") for k in values) and "mm/pnl" in values


def test_gym_make_with_limits_and_orders_passes_the_checkers():
    """gym.make with limits (flatten) and the hedge action (3K columns, cross-impact) passes
    Gymnasium's and SB3's checkers; info carries the alerts and the orders; make_vec runs."""
    import gymnasium as gym
    from gymnasium.utils.env_checker import check_env
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    kw = {"market": {"horizon": 0.1}, "action": {"hedge": True, "hedge_max_lots": 2},
          "portfolio": {"assets": 2, "cross_impact": [[0.02, 0.01], [0.01, 0.02]]},
          "impact": {"half_spread": 0.05, "eta": 0.05},
          "limits": {"position": 2, "factor": 2.0, "on_breach": "flatten", "vol_scaling": True}}
    env = gym.make(ID, **kw)
    assert env.action_space.shape == (6,)
    check_env(env.unwrapped, skip_render_check=True)
    sb3_check_env(gym.make(ID, **kw).unwrapped, warn=True)
    venv = gym.make_vec(ID, num_envs=3, vectorization_mode="vector_entry_point", **kw)
    venv.reset(seed=0)
    for _ in range(5):
        _, _, _, _, info = venv.step(venv.action_space.sample())
    for key in ("alerts_breach", "alerts_warn", "breach_factor", "limit_0", "hedge_1", "factor_exposure"):
        assert key in info, key
    no_limits = gym.make(ID, market={"horizon": 0.1})
    no_limits.reset(seed=0)
    info = no_limits.step(no_limits.action_space.sample())[4]
    assert "alerts_breach" not in info and "hedge_0" not in info and "inventory_0" in info


def test_dp_with_static_position_limits_is_exact():
    """K = 2, static position limits under suppress: ``optimal`` solves the market with the bounds
    min(Q_a, floor(L_a)); its V0 and the exact values of per-asset AS and begv on the limited env
    match their Monte Carlo within 4 SE (3000 episodes of 40 steps), and the limited optimum is
    below the unlimited one and above both baselines' exact values."""
    from mmgym.baselines import make_baseline
    from mmgym.evaluation import run_policy

    base = {"market": {"horizon": 0.2}, "reward": {"inventory_penalty": 0.05, "terminal_penalty": 0.01},
            "portfolio": {"assets": 2, "max_inventory": 5}}
    cfg = _cfg(**base, limits={"position": [2.5, 1.7]})
    opt = make_baseline("optimal", cfg)
    assert list(opt.q_max) == [2, 1]
    free = make_baseline("optimal", _cfg(**base))
    assert opt.v0 < free.v0
    for name in ("optimal", "as", "begv"):
        pol = opt if name == "optimal" else make_baseline(name, cfg)
        exact = pol.exact_objective()
        batch = run_policy(cfg, pol, 3000, seed=0, cache=False)
        se = batch.objective.std(ddof=1) / math.sqrt(batch.objective.size)
        assert abs(batch.objective.mean() - exact) < 4 * se, (name, batch.objective.mean(), exact, se)
        assert exact <= opt.v0 + 1e-9

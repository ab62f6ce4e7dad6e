r"""Hedging rules on the portfolio scenario (issue 11): quote with ``begv`` and add one market order
per asset through the env's per-asset market-order action (``action.hedge: true``; raw-depth
actions: ``rint(a)`` lots, clipped to the inventory bound by the env). ``begv_mv_hedge``,
``begv_threshold`` and ``begv_eoq`` trade the assets themselves; ``begv_factor_hedge`` trades only
the factor instrument (``portfolio.factor_instrument``), and sends no order in it the others.

Costs of an order ``v`` (K lots), as the env charges them (:mod:`mmgym.scenarios.portfolio`): the
temporary cost ``sum_a |v_a| (h + eta |v_a|)`` against the pre-trade mid (``h`` =
``impact.half_spread``, ``eta`` = ``impact.eta``), then every mid moves by ``G v`` (``G`` =
``portfolio.cross_impact`` or ``impact.nu I``), which revalues the post-trade position by
``(q + v)^T G v``.

==================  ==========================================================================
name                rule (``t`` the step, ``tau = (n_steps - t) dt`` the time to go at its start)
==================  ==========================================================================
begv_mv_hedge       mean-variance: ``v = -(M + eta I)^{-1} M q`` rounded, ``M = (phi tau + alpha) P``
begv_threshold      per asset, the lots whose marginal value from begv's ``-q^T A(t) q`` exceeds their marginal cost
begv_eoq            per asset, an EOQ band: when ``|q_a| >= b_a = round(sqrt(2 D_a S / H_a))``, hedge ``b_a`` lots
begv_factor_hedge   the factor instrument: ``v_e = -w^T M x / (w^T M w + eta_e)`` rounded, ``x = q + q_e w``
==================  ==========================================================================

**begv_mv_hedge** (derived here). The QP ``min_x 1/2 x^T Sigma x - r^T x`` with ``r = 0`` (no view on
the mids) has the minimum-variance position ``x* = 0``: what is hedged is the whole inventory
vector, towards 0, along the directions that carry the most variance. How much per step: the
one-step trade-off between the risk the position carries to the horizon if nothing else trades
(the objective's own penalties, ``phi (q+v)^T P (q+v) tau + alpha (q+v)^T P (q+v)``) and the
order's temporary quadratic cost ``eta v^T v``; the minimiser of ``(q+v)^T M (q+v) + eta v^T v`` is

.. math::  v^* = -(M + \eta I)^{-1} M\, q,\qquad M = (\phi\tau + \alpha) P,

rounded to whole lots (its eigenvalues are in (-1, 0]: it only ever shrinks q, never past 0 along
an eigenvector of P). Left out, on purpose: the half-spread ``h`` (linear; the threshold rule is
the one that prices it), the passive flow's mean reversion (no-flow value: this is the risk
manager's hedge, not a market maker's), and the permanent impact: with it the one-step QP is
``min (q+v)^T M (q+v) + eta v^T v - (q+v)^T G v``, ``v* = -(M + eta I - G)^{-1} (M - G/2) q``,
whose ``+G/2 q`` term makes it *add* to the position when ``M`` is small (near the horizon): the
mark-to-market gain of pushing the mids in its favour. Before the env's final mark charged the
liquidation's permanent impact ``1/2 q^T G q`` (:mod:`mmgym.scenarios.portfolio`, "The final mark")
that gain was paid at the end; measured then on portfolio8 (1000 episodes): -39.9 against begv,
impact 55.6, final risk-equivalent inventory 48.9 against begv's 14.7. The one-step QP still sees
only the step's revaluation, not the final mark, so G stays out of this rule.

**begv_threshold** (the no-trade band of Barzykin, Bergault & Guéant: a pure internalisation
region, an inventory threshold below which the dealer does not hedge, "Algorithmic market making
in dealer markets with hedging and market impact", Mathematical Finance 2023,
doi:10.1111/mafi.12367, and its multi-currency version, "Dealing with multi-currency inventory
risk in FX cash markets", arXiv:2207.04100; the papers' equations were not checked here, the rule
below is derived for this env). With begv's value ``theta(q) = -q^T A(t) q`` (its matrix Riccati
solution, quoting only), asset ``a`` is traded alone, in the direction ``s = -sign((A q)_a)`` that
lowers the risk; its ``n``-th lot changes ``theta`` by ``2|(Aq)_a| - (2n-1) A_aa``, costs
``h + eta (2n-1)`` (temporary) and gains ``s (G q)_a + (2n-1) G_aa`` (permanent, on the position
after it; ``(G^T q)_a`` in place of ``(G q)_a`` for a non-symmetric G). It is sent iff

.. math::  \Delta_n = 2|(Aq)_a| + s\,(Gq)_a - h - (2n-1)(A_{aa} + \eta - G_{aa}) > 0,

so ``n* = max(0, ceil(x) - 1)``, ``x = (c / d + 1)/2``, ``c = 2|(Aq)_a| + s (Gq)_a - h``,
``d = A_aa + eta - G_aa`` (> 0 required). ``n* = 0`` is the band ``2|(Aq)_a| + s (Gq)_a <= h + d``.
The assets' orders are computed independently from the same q (the cross terms ``v_a A_ab v_b``
of simultaneous orders are ignored). BBG's continuous-time rate has the same shape
(``(|p| - psi)_+ / (2 eta)``, as we recall it; not verified).

**begv_eoq** (the economic order quantity ``Q* = sqrt(2 D S / H)``, Harris 1913 / Wilson; its
application here is an assumption). Per asset: D_a, the flow to be hedged, is begv's one-side
passive fill rate at q = 0 and t = 0 (lots per time unit), ``A_a exp(-k_a (1/k_a + A_aa(0)))``;
S, the fixed cost per hedge, is the cost of a one-lot order ``h + eta`` (the env has no
per-order fee: assumption); H_a, the holding cost per lot per time unit, is the running penalty
of one lot held alone, ``phi P_aa`` (the env's penalty is quadratic, EOQ's linear: assumption).
The band ``b_a = max(1, round(sqrt(2 D_a S / H_a)))``: when ``|q_a| >= b_a``, one order of ``b_a``
lots towards 0 (EOQ's saw-tooth between 0 and the batch size). ``b_a > Q_a`` never hedges.

**begv_factor_hedge** (derived here). With the factor instrument (weights w, position q_e) the
position's risk is that of the total exposure ``x = q + q_e w``. Restricted to the instrument's
direction, the QP ``min_y 1/2 (q + y w)^T Sigma (q + y w)`` (``r = 0``) has the solution
``y* = -w^T Sigma q / (w^T Sigma w)``: the minimum-variance hedge ratio of a position hedged with
one futures contract (Johnson 1960, "The theory of hedging and speculation in commodity futures",
Rev. Econ. Stud. 27(3); Ederington 1979, "The hedging performance of the new futures markets",
J. Finance 34(1): ``h* = -Cov(dV_q, dF) / Var(dF)`` with ``dF = w^T dS``). How much per step, as
begv_mv_hedge: the minimiser over ``v`` of ``(x + v w)^T M (x + v w) + eta_e v^2`` with ``M = (phi
tau + alpha) P`` is

.. math::  v_e^* = -\frac{w^T M x}{w^T M w + \eta_e},

rounded to whole units; as ``eta_e -> 0`` (and P = Sigma) it trades straight to ``y*``. The quotes
are begv's with the whole inventory replaced by the total exposure after the order, ``x + v_e w``
(begv's value ``-x^T A x`` approximates the penalty on x, which is what the env charges;
our extension, not in BEGV 2021). Left out: the instrument's half-spread (linear) and its
permanent impact (as begv_mv_hedge).
"""

from __future__ import annotations

import math

import numpy as np

from ..config import ConfigError
from .portfolio import BEGV, _params


def _impact(config):
    from ..scenarios.portfolio import permanent_impact

    if not bool(config.action.hedge):
        raise ConfigError("hedging baselines need the market-order action: set action.hedge: true")
    im = config.impact
    return float(im.half_spread), float(im.eta), permanent_impact(config)


class HedgedBEGV(BEGV):
    """``begv`` quotes plus a market order per asset (:meth:`orders`)."""

    def __init__(self, config):
        super().__init__(config)
        self.h, self.eta, self.G = _impact(config)
        _, _, self.q_max, _, self.P = _params(config)
        self.phi = float(config.reward.inventory_penalty)
        self.alpha = float(config.reward.terminal_penalty)

    def orders(self, step, q) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def act(self, market, out=None):
        out = super().act(market, out)
        layout = market.action_layout
        k = self.k_assets
        out[:, layout.hedge.start:layout.hedge.start + k] = self.orders(market.step_count, market.inventory)
        return out

    def exact_objective(self):
        """None: the K = 2 exact recursion (:func:`~mmgym.baselines.portfolio.evaluate_portfolio_tables`)
        has no market orders, so it would score the quotes without the hedges; no exact value."""
        return None

    def _t(self, step, q):
        return np.clip(np.broadcast_to(np.asarray(step), q.shape[:-1]).astype(np.int64), 0, self.mp.n_steps)

    def describe(self):
        return {"name": self.name, "gamma": self.gamma, "half_spread": self.h, "eta": self.eta}


class MVHedge(HedgedBEGV):
    """``begv_mv_hedge`` (module docstring)."""

    name = "begv_mv_hedge"

    def __init__(self, config):
        super().__init__(config)
        k = self.k_assets
        if self.eta <= 0.0:
            raise ConfigError("begv_mv_hedge: needs impact.eta > 0 (without a quadratic cost it trades the whole inventory)")
        taus = (self.mp.n_steps - np.arange(self.mp.n_steps + 1)) * self.mp.dt
        self.gain = np.empty((len(taus), k, k))
        for t, tau in enumerate(taus):
            m = (self.phi * tau + self.alpha) * self.P
            self.gain[t] = -np.linalg.solve(m + self.eta * np.eye(k), m)

    def target(self, step, q) -> np.ndarray:
        """The unrounded ``v*`` (N, K)."""
        q = np.asarray(q, dtype=np.float64)
        return np.einsum("...ij,...j->...i", self.gain[self._t(step, q)], q)

    def orders(self, step, q):
        return np.rint(self.target(step, q))


def threshold_lots(aq, gq, a_diag, h, eta, g_diag) -> np.ndarray:
    """begv_threshold's signed order per asset from ``(Aq)_a``, ``(Gq)_a``, ``A_aa``, ``h``, ``eta``,
    ``G_aa`` (module docstring): ``s n*`` with ``s = -sign((Aq)_a)``."""
    s = -np.sign(aq)
    c = 2.0 * np.abs(aq) + s * gq - h
    d = a_diag + eta - g_diag
    x = (c / d + 1.0) / 2.0
    n = np.maximum(0.0, np.ceil(x) - 1.0)
    return np.where(s == 0.0, 0.0, s * n)


class ThresholdHedge(HedgedBEGV):
    """``begv_threshold`` (module docstring)."""

    name = "begv_threshold"

    def __init__(self, config):
        super().__init__(config)
        d = np.diagonal(self.A, axis1=-2, axis2=-1) + self.eta - np.diag(self.G)
        if d.min() <= 0.0:
            raise ConfigError("begv_threshold: A_aa + impact.eta - G_aa must be > 0 (permanent impact too large)")

    def orders(self, step, q):
        q = np.asarray(q, dtype=np.float64)
        a = self.A[self._t(step, q)]
        aq = np.einsum("...ij,...j->...i", a, q)
        gq = q @ self.G  # (G^T q)_a: the order v e_a revalues the post-trade position by (q + v)^T G v e_a
        return threshold_lots(aq, gq, np.diagonal(a, axis1=-2, axis2=-1), self.h, self.eta, np.diag(self.G))


def eoq_size(d: float | np.ndarray, s: float, h: float | np.ndarray) -> np.ndarray:
    """The economic order quantity ``sqrt(2 D S / H)``."""
    return np.sqrt(2.0 * np.asarray(d) * s / np.asarray(h))


class EOQHedge(HedgedBEGV):
    """``begv_eoq`` (module docstring); ``D``, ``S``, ``H``, ``band`` are attributes."""

    name = "begv_eoq"

    def __init__(self, config):
        super().__init__(config)
        a_, k_, _, _, _ = _params(config)
        self.D = a_ * np.exp(-k_ * (1.0 / k_ + np.diag(self.A[0])))
        self.S = self.h + self.eta
        self.H = self.phi * np.diag(self.P)
        self.size = eoq_size(self.D, self.S, self.H)
        self.band = np.maximum(1.0, np.rint(self.size))

    def orders(self, step, q):
        q = np.asarray(q, dtype=np.float64)
        return np.where(np.abs(q) >= self.band, -np.sign(q) * self.band, 0.0)

    def describe(self):
        return {**super().describe(), "D": self.D.tolist(), "S": self.S, "H": self.H.tolist(),
                "band": self.band.tolist()}


class FactorHedge(HedgedBEGV):
    """``begv_factor_hedge`` (module docstring): begv quotes on the total exposure, market orders in
    the factor instrument only."""

    name = "begv_factor_hedge"

    def __init__(self, config):
        from ..scenarios.portfolio import factor_instrument

        super().__init__(config)
        fi = factor_instrument(config)
        if fi is None:
            raise ConfigError("begv_factor_hedge: needs portfolio.factor_instrument")
        self.w = fi.w
        self.eta_e = fi.eta
        taus = (self.mp.n_steps - np.arange(self.mp.n_steps + 1)) * self.mp.dt
        mw = np.outer(self.phi * taus + self.alpha, self.P @ self.w)  # (n + 1, K): M w per step
        den = mw @ self.w + self.eta_e
        if (den <= 0.0).any():
            raise ConfigError("begv_factor_hedge: w^T M w + eta_e must be > 0 (set the instrument's eta or a penalty)")
        self.gain = -mw / den[:, None]  # v_e* = gain[t] . x

    def target(self, step, x) -> np.ndarray:
        """The unrounded ``v_e*`` (N,) at total exposure ``x`` (N, K)."""
        x = np.asarray(x, dtype=np.float64)
        return np.einsum("...i,...i->...", self.gain[self._t(step, x)], x)

    def act(self, market, out=None):
        if out is None:
            out = np.empty((market.num_envs, market.action_dim))
        layout = market.action_layout
        step = market.step_count
        x = market.inventory + market.field("factor_position")[:, None] * self.w
        ve = np.rint(self.target(step, x))
        out[:, layout.hedge] = 0.0
        out[:, layout.hedge.stop - 1] = ve
        d_b, d_a = self.depths(step, x + ve[:, None] * self.w)
        out[:, layout.bid] = d_b
        out[:, layout.ask] = d_a
        return out

    def describe(self):
        return {**super().describe(), "eta_factor": self.eta_e, "weights": self.w.tolist()}


HEDGE_BASELINES = {"begv_mv_hedge": MVHedge, "begv_threshold": ThresholdHedge, "begv_eoq": EOQHedge,
                   "begv_factor_hedge": FactorHedge}

r"""Baselines of the portfolio scenario (:mod:`mmgym.scenarios.portfolio`): the naive per-asset
closed forms, the multi-asset closed form of Bergault, Evangelista, Guéant & Vieira (2021), and the
exact backward DP for K = 2 (with the exact policy evaluation every K = 2 policy is scored by).

==========  ================================================================================
name        policy
==========  ================================================================================
as          Avellaneda & Stoikov (2008) eqs. (29)-(30) on each asset alone (``baselines.gamma``)
glft        Guéant, Lehalle & Fernandez-Tapia (2013) sec. 4 on each asset alone
begv        Bergault, Evangelista, Guéant & Vieira (2021): quadratic value function, matrix Riccati
optimal     K = 2: backward DP over (t, q1, q2) with the env's own discrete rules
==========  ================================================================================

All are :class:`~mmgym.baselines.base.DepthPolicy`: ``depths(step, q)`` with ``q`` of shape (N, K)
returns (N, K) bid and ask depths (the raw-depth action's column order: K bids, K asks).

**Per-asset (naive).** Asset a is quoted as if it were the intensity market
``mmgym/MarketMaking-v0`` with ``sigma_a = sqrt(Sigma_aa)``, ``A_a``, ``k_a``, ``Q_a``: the existing
:class:`~mmgym.baselines.analytic.AvellanedaStoikov` and :class:`~mmgym.baselines.analytic.GLFT`
are built on that single-asset config (:func:`asset_config`) and applied to ``q[:, a]``; nothing
of them is rewritten. Each asset's skew sees only its own inventory.

**begv** (BEGV 2021, sec. 3, the quadratic approximation of the Hamiltonian; derivation here, for
this env). The env's objective is risk neutral with the running penalty ``phi q^T P q dt`` (P = Sigma,
or diag(Sigma) with ``portfolio.penalty: per_asset``), i.e. BEGV's model with ``gamma/2 = phi`` and
``Sigma -> P``, lots of size Delta = 1, and symmetric exponential intensities ``Lambda_a(delta) =
A_a e^{-k_a delta}``. The one-side Hamiltonian is ``H_a(p) = sup_delta Lambda_a(delta)(delta - p) =
(A_a / (e k_a)) e^{-k_a p}``, attained at ``delta = p + 1/k_a``; its second-order expansion at p = 0
is ``alpha_0 - alpha_1 p + alpha_2 p^2 / 2`` with ``alpha_2 = k_a A_a / e``. Writing the value
``theta(t, q) = -q^T A(t) q - q^T B(t) - C(t)``, the bid of asset a sees
``p^b_a = theta(q) - theta(q + e_a) = 2 (A q)_a + A_aa + B_a`` and the ask
``p^a_a = -2 (A q)_a + A_aa - B_a``. Putting the expansion in the HJB equation
``0 = d_t theta - (gamma/2) q^T P q + sum_a [H_a(p^b_a) + H_a(p^a_a)]`` and matching the terms
quadratic in q gives the matrix Riccati equation

.. math::  A'(t) = 2 A D_+ A - (\gamma/2) P,\qquad D_+ = \mathrm{diag}(2 k_a A_a / e),

and the linear terms ``B' = 2 A D_+ B`` with ``B(T) = 0``, so ``B = 0`` (symmetric sides). With
``A(T) = 0`` (BEGV's case without terminal penalty) the solution is (REFERENCES.md, "Multi-asset
market making"; verified by substitution: ``M = D_+^{1/2} A D_+^{1/2}`` solves
``M' = 2 M^2 - Ahat^2/2`` and ``M = Ahat tanh(Ahat (T-t)) / 2`` does)

.. math::  A(t) = \tfrac12 D_+^{-1/2} \hat A \tanh(\hat A (T-t)) D_+^{-1/2},\qquad
           \hat A = \sqrt{\gamma}\,(D_+^{1/2} P D_+^{1/2})^{1/2}.

This module adds the env's terminal penalty ``alpha q^T P q`` (``A(T) = alpha P``; our extension,
not in BEGV): then ``M(T) = alpha Ahat^2 / gamma`` commutes with ``Ahat``, and in Ahat's eigenbasis
(eigenvalue lambda) each mode solves ``m' = 2 m^2 - lambda^2/2`` from ``m_T = alpha lambda^2/gamma``:
``m(tau) = (alpha lambda^2/gamma + (lambda/2) tanh(lambda tau)) / (1 + (2 alpha lambda/gamma)
tanh(lambda tau))`` (the addition formula of tanh; finite at lambda = 0). ``alpha = 0`` gives the
formula above. ``tests/test_portfolio.py`` checks A(t) against scipy's ODE solver.

The quotes are the Hamiltonian's maximisers at the approximated ``p`` (BEGV's greedy quotes):

.. math::  \delta^b_a = 1/k_a + A_{aa} + 2 (A q)_a,\qquad \delta^a_a = 1/k_a + A_{aa} - 2 (A q)_a,

so each asset's skew ``2 (A q)_a`` depends on the whole inventory vector. At K = 1 and t -> -inf
(``A -> sqrt(gamma sigma^2 / (4 D_+))``) this is Guéant (2017) eq. (4.6) at Delta = 1 and xi = 0:
``delta^b = 1/k + (2q + 1)/2 sqrt(gamma sigma^2 e / (2 A k))`` (checked in the tests). The equation
numbers of BEGV 2021 were not checked against the journal text here; the derivation above is
self-contained. Time to the horizon at the start of step t is ``(n_steps - t) dt``, as for ``as``.

**optimal** (K = 2): see :func:`solve_portfolio_dp`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numba import njit

from ..config import ConfigError, EnvConfig
from ..scenarios.portfolio import begv_mode
from .analytic import GLFT, AvellanedaStoikov
from .base import DepthPolicy

__all__ = ["BEGV", "BEGVRegime", "BEGVTuned", "PerAsset", "PortfolioOptimal", "asset_config", "begv_A", "solve_portfolio_dp",
           "evaluate_portfolio_tables", "PORTFOLIO_BASELINES"]


def _params(config):
    from ..scenarios.portfolio import penalty_matrix

    pf = config.portfolio
    return (pf.per_asset("A"), pf.per_asset("k"), pf.per_asset("max_inventory"), pf.sigma_matrix(),
            penalty_matrix(config))


def asset_config(config, a: int) -> EnvConfig:
    """Asset ``a`` of a portfolio config as the single-asset intensity market's config
    (``mmgym/MarketMaking-v0``): sigma_a = sqrt(Sigma_aa), A_a, k_a, Q_a, the same time grid; the
    reward's phi and alpha scaled by Sigma_aa (the portfolio's ``phi q^T P q`` at P = diag(Sigma),
    restricted to asset a, is the intensity market's ``phi_1 q_a^2`` with phi_1 = phi Sigma_aa)."""
    a_, k_, q_, sig, _ = _params(config)
    m, r = config.market, config.reward
    s2 = float(sig[a, a])
    return EnvConfig.model_validate({
        "id": "mmgym/MarketMaking-v0",
        "market": {"sigma": math.sqrt(s2), "A": float(a_[a]), "k": float(k_[a]),
                   "max_inventory": int(q_[a]), "dt": m.dt, "horizon": m.horizon,
                   "s0": float(config.portfolio.per_asset("s0")[a])},
        "reward": {"inventory_penalty": r.inventory_penalty * s2, "terminal_penalty": r.terminal_penalty * s2,
                   "maker_fee": r.maker_fee},
        "action": {"mode": "offsets"}})


class PortfolioPolicy(DepthPolicy):
    """Base of the portfolio baselines: (step, q (N, K)) -> (N, K) depths; exact values at K = 2
    (:meth:`exact_objective`)."""

    def __init__(self, config):
        super().__init__(config)
        self.k_assets = int(config.portfolio.assets)

    def act(self, market, out=None):
        """Raw-depth actions: the depths at the current inventories; with ``action.hedge`` no market
        order (zeros in the K order columns; these baselines only quote)."""
        if out is None:
            out = np.empty((market.num_envs, market.action_dim))
        layout = market.action_layout
        if layout.hedge is not None:
            out[:, layout.hedge] = 0.0
        d_b, d_a = self.depths(market.step_count, market.inventory)
        out[:, layout.bid] = d_b
        out[:, layout.ask] = d_a
        return out

    def tables(self):
        raise ConfigError(f"{self.name}: single-asset (t, q) tables do not exist on {self.config.id}")

    def depth_tables(self) -> tuple[np.ndarray, np.ndarray]:
        """K = 2: the depths over every (t, q1, q2), each ``(n_steps, 2Q1+1, 2Q2+1, 2)``."""
        if self.k_assets != 2:
            raise ConfigError(f"exact policy values: portfolio.assets must be 2 (got {self.k_assets})")
        q_max = dp_config(self.config, "exact policy values").portfolio.per_asset("max_inventory")
        q1, q2 = np.meshgrid(np.arange(-q_max[0], q_max[0] + 1), np.arange(-q_max[1], q_max[1] + 1),
                             indexing="ij")
        qs = np.stack([q1.ravel(), q2.ravel()], axis=1)
        n = self.mp.n_steps
        d_b = np.empty((n,) + q1.shape + (2,))
        d_a = np.empty_like(d_b)
        for t in range(n):
            b, a = self.depths(np.full(qs.shape[0], t), qs)
            d_b[t] = np.asarray(b).reshape(q1.shape + (2,))
            d_a[t] = np.asarray(a).reshape(q1.shape + (2,))
        return d_b, d_a

    def exact_objective(self) -> float:
        """K = 2: the policy's exact expected episode objective (:func:`evaluate_portfolio_tables`)."""
        return evaluate_portfolio_tables(dp_config(self.config, "exact policy values"), *self.depth_tables())


class PerAsset(PortfolioPolicy):
    """``as`` / ``glft`` on each asset alone (module docstring, "Per-asset")."""

    def __init__(self, config, kind: str, gamma: float):
        super().__init__(config)
        self.name = kind
        self.gamma = float(gamma)
        cls = {"as": AvellanedaStoikov, "glft": GLFT}[kind]
        self.parts = [cls(asset_config(config, a), gamma) for a in range(self.k_assets)]

    def _depths(self, step, q):
        q = np.asarray(q)
        step = np.broadcast_to(step, q.shape)
        d_b = np.empty(q.shape)
        d_a = np.empty(q.shape)
        for a, part in enumerate(self.parts):
            d_b[..., a], d_a[..., a] = part.depths(step[..., a], q[..., a])
        return d_b, d_a

    def describe(self):
        return {"name": self.name, "gamma": self.gamma, "per_asset": True}


def begv_A(tau: np.ndarray | float, d_plus: np.ndarray, p: np.ndarray, gamma: float,
           alpha: float = 0.0) -> np.ndarray:
    """A at time to go ``tau`` (module docstring, "begv"): ``(..., K, K)`` for ``tau`` of shape (...).

    Args:
        d_plus: (K,) the diagonal of D_+. p: (K, K) the penalty matrix. gamma: 2 phi.
        alpha: terminal penalty weight (A(T) = alpha P).
    """
    tau = np.asarray(tau, dtype=np.float64)
    s = np.sqrt(d_plus)
    m = s[:, None] * p * s[None, :]
    mu, v = np.linalg.eigh(0.5 * (m + m.T))
    lam = math.sqrt(gamma) * np.sqrt(np.clip(mu, 0.0, None))  # eigenvalues of Ahat (same V)
    th = np.tanh(lam * tau[..., None])
    mm = begv_mode(np.ascontiguousarray(np.broadcast_to(lam, th.shape)), th, float(gamma), float(alpha))
    a_hat = np.einsum("ij,...j,kj->...ik", v, mm, v)
    return a_hat / (s[:, None] * s[None, :])


class BEGV(PortfolioPolicy):
    """``begv``: Bergault, Evangelista, Guéant & Vieira (2021) closed-form multi-asset quotes (module
    docstring). ``gamma`` defaults to the env's ``2 phi`` (the objective's own risk aversion).

    Args:
        config: the env. gamma: the risk aversion (None: 2 phi).
        penalties: the penalty matrices the closed form is solved for, (K, K) or (R, K, K) (one per
            row class, chosen per row by ``_row_class``, which :class:`BEGVRegime` sets while acting);
            None: the env's nominal P. ``begv_regime``
            and ``begv_tuned`` are this rule at other penalties (:class:`BEGVRegime`,
            :class:`BEGVTuned`).
    """

    name = "begv"

    def __init__(self, config, gamma: float | None = None, penalties: np.ndarray | None = None):
        super().__init__(config)
        a_, k_, _, _, p = _params(config)
        phi = float(config.reward.inventory_penalty)
        self.gamma = 2.0 * phi if gamma is None else float(gamma)
        if self.gamma <= 0.0:
            raise ConfigError(f"{self.name}: needs a risk aversion > 0 (reward.inventory_penalty = {phi:g})")
        self.d_plus = 2.0 * k_ * a_ / math.e
        self.inv_k = 1.0 / k_
        taus = (self.mp.n_steps - np.arange(self.mp.n_steps + 1)) * self.mp.dt
        pens = np.asarray(p if penalties is None else penalties, dtype=np.float64)
        pens = pens.reshape((-1,) + pens.shape[-2:])
        alpha = float(config.reward.terminal_penalty)
        # (R, n_steps + 1, K, K): A(t) per penalty matrix
        self.A_all = np.stack([begv_A(taus, self.d_plus, pr, self.gamma, alpha) for pr in pens])
        self.A = self.A_all[0]
        self._row_class = None  # (N,) the rows' penalty index while acting (BEGVRegime)
        self._idle_class = 0  # the penalty index outside act (BEGVRegime: the initial regime)

    def _depths(self, step, q):
        q = np.asarray(q, dtype=np.float64)
        t = np.clip(np.broadcast_to(np.asarray(step), q.shape)[..., 0].astype(np.int64), 0, self.mp.n_steps)
        r = self._idle_class if self._row_class is None else np.broadcast_to(self._row_class, t.shape)
        a = self.A_all[r, t]
        skew = 2.0 * np.einsum("...ij,...j->...i", a, q)
        half = self.inv_k + np.diagonal(a, axis1=-2, axis2=-1)
        return half + skew, half - skew

    def describe(self):
        return {"name": self.name, "gamma": self.gamma}


class BEGVRegime(BEGV):
    """``begv_regime``: begv's rule solved for the penalty of the current correlation regime, P_r
    (``portfolio.correlation_regimes``; :func:`~mmgym.scenarios.portfolio.regime_penalties`), the
    regime read from the market before each step (the one that moves that step's mids), as
    ``optimal`` reads it on ``mmgym/RegimeMarketMaking-v0``. A(t) per regime is the closed form for a
    constant Sigma_r: it ignores that the regime may switch before the horizon (a quasi-static
    approximation). With ``correlation_regimes.observed: false`` the agent does not see the regime
    and this is an oracle (``label``); with ``observed: true`` it uses only what the agent observes.
    Without regimes it is ``begv``. ``penalties`` (R, K, K): other per-regime penalties (a search
    over regime-dependent multipliers, ``benchmarks/portfolio_regime_search.py``)."""

    name = "begv_regime"

    def __init__(self, config, penalties: np.ndarray | None = None):
        from ..scenarios.portfolio import regime_penalties

        super().__init__(config, penalties=regime_penalties(config) if penalties is None else penalties)
        cr = config.portfolio.correlation_regimes
        self.initial = 0 if cr is None else int(cr.initial)
        self._idle_class = self.initial  # outside act (a depth surface, a table): the initial regime
        self.label = None if cr is None or cr.observed else "oracle: reads the hidden correlation regime"

    def act(self, market, out=None):
        self._row_class = market.field("regime").astype(np.int64)
        try:
            return super().act(market, out)
        finally:
            self._row_class = None

    def describe(self):
        out = {"name": self.name, "gamma": self.gamma, "regimes": int(self.A_all.shape[0])}
        if self.label is not None:
            out["label"] = self.label
        return out


class BEGVTuned(BEGV):
    """``begv_tuned``: begv's rule for the penalty ``Sigma_m`` of ``action.mode: portfolio_hybrid``
    at constant multipliers (:func:`~mmgym.scenarios.portfolio.hybrid_penalty`: factor f's variance
    scaled by m_f, the idiosyncratic part by m_idio; :func:`~mmgym.scenarios.portfolio.risk_components`),
    i.e. the hybrid action ``a_j = ln m_j / ln(risk_multiplier_max)`` with zero skews held fixed.
    The multipliers are searched on the env itself by :func:`mmgym.baselines.tuned.tune` (family
    ``begv_tuned``); this class is one candidate.

    Args:
        config: the env. tuning: the search that chose the multipliers (None: a candidate).
        multipliers: ``m_factor_0`` ... ``m_idio`` (one per part of ``risk_components``; default 1).
    """

    name = "begv_tuned"

    def __init__(self, config, tuning=None, **multipliers: float):
        from ..scenarios.portfolio import hybrid_penalty, risk_components

        comps, names = risk_components(config.portfolio)
        unknown = set(multipliers) - {f"m_{n}" for n in names}
        if unknown:
            raise ConfigError(f"begv_tuned: unknown multipliers {sorted(unknown)} (valid: m_{', m_'.join(names)})")
        self.multipliers = {f"m_{n}": float(multipliers.get(f"m_{n}", 1.0)) for n in names}
        super().__init__(config, penalties=hybrid_penalty(comps, np.array(list(self.multipliers.values()))))
        self.tuning = tuning

    def describe(self):
        out = {"name": self.name, "gamma": self.gamma, **self.multipliers}
        if self.tuning is not None:
            out["tuning"] = self.tuning.describe()
        return out

    def report(self):
        from .tuned import _with_seconds

        return _with_seconds(self.describe(), self.tuning)


# ------------------------------------------------------------------------- K = 2 DP ---
def _grid(config):
    a_, k_, q_, _, p = _params(config)
    m = config.market
    c = a_ * m.dt
    q1 = np.arange(-q_[0], q_[0] + 1)
    q2 = np.arange(-q_[1], q_[1] + 1)
    g1, g2 = np.meshgrid(q1, q2, indexing="ij")
    risk = p[0, 0] * g1 * g1 + 2.0 * p[0, 1] * g1 * g2 + p[1, 1] * g2 * g2
    # p = 0 where a side would breach the bound: bid at q = +Q, ask at q = -Q
    open_b = np.stack([g1 < q_[0], g2 < q_[1]])
    open_a = np.stack([g1 > -q_[0], g2 > -q_[1]])
    return c, k_, q_, risk, open_b, open_a


def _shift(w: np.ndarray, d1: int, d2: int) -> np.ndarray:
    """w(q1 + d1, q2 + d2) on the grid (0 outside: those outcomes have probability 0)."""
    out = np.zeros_like(w)
    n1, n2 = w.shape[-2:]
    s1 = slice(max(0, -d1), n1 - max(0, d1))
    s2 = slice(max(0, -d2), n2 - max(0, d2))
    t1 = slice(max(0, d1), n1 - max(0, -d1))
    t2 = slice(max(0, d2), n2 - max(0, -d2))
    out[..., s1, s2] = w[..., t1, t2]
    return out


def _expect(ws, pb1, pa1, pb2, pa2):
    """E[W(q')] over the 16 fill outcomes; ``ws[d1+1][d2+1]`` = W(q1+d1, q2+d2)."""
    p1 = ((1 - pb1) * pa1, pb1 * pa1 + (1 - pb1) * (1 - pa1), pb1 * (1 - pa1))  # d1 = -1, 0, +1
    p2 = ((1 - pb2) * pa2, pb2 * pa2 + (1 - pb2) * (1 - pa2), pb2 * (1 - pa2))
    return sum(p1[i] * p2[j] * ws[i][j] for i in range(3) for j in range(3))


def _objective(ws, p, delta, fee):
    return sum(p[j] * (delta[j] - fee) for j in range(4)) + _expect(ws, *p)


@njit(cache=True)
def _dp_step(w, c, k, fee, q_max, sweeps, tol, out_v, out_d, out_p):
    """The per-state maximisation over (p_b1, p_a1, p_b2, p_a2) of one DP step
    (:func:`solve_portfolio_dp`), for every state of the (2Q1+1, 2Q2+1) grid.

    Args:
        w: (n1, n2) W_{t+1}. c, k: (2,) A dt and k per asset. fee: maker fee per lot.
        q_max: (2,) int64 bounds. sweeps, tol: the coordinate ascent's limits.
        out_v: (n1, n2) the step's value. out_d, out_p: (4, n1, n2) depths and fill probabilities
            (bid 1, ask 1, bid 2, ask 2).
    """
    n1, n2 = w.shape
    wn = np.zeros((3, 3))
    p = np.zeros(4)
    d = np.zeros(4)
    op = np.zeros(4, dtype=np.bool_)
    cs = np.array([c[0], c[0], c[1], c[1]])
    ks = np.array([k[0], k[0], k[1], k[1]])
    sat = np.log(cs) / ks
    for i1 in range(n1):
        for i2 in range(n2):
            for a in range(3):
                for b in range(3):
                    j1 = i1 + a - 1
                    j2 = i2 + b - 1
                    wn[a, b] = w[j1, j2] if (0 <= j1 < n1 and 0 <= j2 < n2) else 0.0
            op[0] = i1 < n1 - 1
            op[1] = i1 > 0
            op[2] = i2 < n2 - 1
            op[3] = i2 > 0
            best = -np.inf
            for corner in range(16):
                for j in range(4):
                    p[j] = 1.0 if (op[j] and (corner >> j) & 1) else 0.0
                    d[j] = 0.0
                for _ in range(sweeps):
                    change = 0.0
                    for j in range(4):
                        if not op[j]:
                            continue
                        # P(d2 = -1, 0, +1) of asset 2 and P(d1) of asset 1 at the current p
                        q2m = (1 - p[2]) * p[3]
                        q2p = p[2] * (1 - p[3])
                        q20 = 1.0 - q2m - q2p
                        q1m = (1 - p[0]) * p[1]
                        q1p = p[0] * (1 - p[1])
                        q10 = 1.0 - q1m - q1p
                        if j < 2:  # U1(d1) = E over asset 2 of W(d1, .)
                            um = q2m * wn[0, 0] + q20 * wn[0, 1] + q2p * wn[0, 2]
                            u0 = q2m * wn[1, 0] + q20 * wn[1, 1] + q2p * wn[1, 2]
                            up = q2m * wn[2, 0] + q20 * wn[2, 1] + q2p * wn[2, 2]
                            pb = p[0]
                            pa = p[1]
                        else:
                            um = q1m * wn[0, 0] + q10 * wn[1, 0] + q1p * wn[2, 0]
                            u0 = q1m * wn[0, 1] + q10 * wn[1, 1] + q1p * wn[2, 1]
                            up = q1m * wn[0, 2] + q10 * wn[1, 2] + q1p * wn[2, 2]
                            pb = p[2]
                            pa = p[3]
                        if j % 2 == 0:  # a bid: E[W | fill] - E[W | no fill], the ask at pa
                            e = (1 - pa) * (up - u0) + pa * (u0 - um)
                        else:
                            e = (1 - pb) * (um - u0) + pb * (u0 - up)
                        dj = max(1.0 / ks[j] - (e - fee), sat[j])
                        pj = min(1.0, cs[j] * np.exp(-ks[j] * dj))
                        change = max(change, abs(pj - p[j]))
                        p[j] = pj
                        d[j] = dj
                    if change < tol:
                        break
                q1m = (1 - p[0]) * p[1]
                q1p = p[0] * (1 - p[1])
                q2m = (1 - p[2]) * p[3]
                q2p = p[2] * (1 - p[3])
                pr1 = (q1m, 1.0 - q1m - q1p, q1p)
                pr2 = (q2m, 1.0 - q2m - q2p, q2p)
                v = 0.0
                for a in range(3):
                    for b in range(3):
                        v += pr1[a] * pr2[b] * wn[a, b]
                for j in range(4):
                    if op[j]:
                        v += p[j] * (d[j] - fee)
                if v > best:
                    best = v
                    for j in range(4):
                        out_d[j, i1, i2] = d[j] if op[j] else np.nan
                        out_p[j, i1, i2] = p[j]
            out_v[i1, i2] = best


def _shifts(w):
    return [[_shift(w, d1, d2) for d2 in (-1, 0, 1)] for d1 in (-1, 0, 1)]


def solve_portfolio_dp(config) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""The backward DP of the K = 2 portfolio env over (t, q1, q2).

    One step's reward is ``sum_j 1_j (delta_j - f) + q'^T dS - phi q'^T P q' dt - [t = n-1] alpha
    q'^T P q'`` (the kernel's rules, :mod:`mmgym.scenarios.portfolio`); dS is independent of the
    fills with mean 0, so ``E[q'^T dS] = 0`` and the expected reward depends on (t, q) only: the
    recursion ``V_t(q) = max_delta E[ sum_j 1_j (delta_j - f) + W_{t+1}(q') ]``, with
    ``W_{t+1}(q') = V_{t+1}(q') - phi q'^T P q' dt - [t = n-1] alpha q'^T P q'``, is the env's own
    objective. The four fills (bid/ask of each asset) are independent Bernoullis with
    ``p_j = min(1, A dt e^{-k delta_j})``, so ``E[W(q')] = sum_{d1, d2} P_1(d1) P_2(d2) W(q + d)``
    with ``P_a(+1) = p_ba (1 - p_aa)``, ``P_a(-1) = p_aa (1 - p_ba)``: multilinear in the four p's.

    **The per-state maximisation.** Given the three other sides, side j's problem is the one-side
    problem of the single-asset DP, ``max_p p (delta(p) - f + E_j)`` with ``E_j = E[W | j fills] -
    E[W | j does not]`` (exact: the objective is affine in p_j's Bernoulli), whose closed form is
    ``delta* = max(1/k - E_j + f, ln(A dt)/k)``. Block-coordinate ascent over the four sides
    (Gauss-Seidel, each step exact) increases the objective monotonically and stops at a point where
    no single side can improve; it is run from the 16 corners of the probability box and the best end
    point is kept per state. **What is exact and what is not:** V_0 is exactly the expected
    objective of the policy this DP returns (the recursion evaluates the chosen quotes with the
    env's exact transition), so its Monte Carlo must match V_0 within sampling error. That the
    per-state maximum is the *global* one is not proven for four sides (the single-asset DP's
    two-side argument does not extend as is); ``tests/test_portfolio.py`` checks it against a
    dense grid over the four depths on a small market, and the policy's value against a brute-force
    backward induction over all 16 outcomes.

    Returns:
        ``(V, depths, probs)``: V ``(n_steps + 1, 2Q1+1, 2Q2+1)``, depths and fill probabilities
        ``(n_steps, 4, 2Q1+1, 2Q2+1)`` in the order (bid 1, ask 1, bid 2, ask 2).
    """
    _check_k2(config)
    c, k, q_max, risk, _, _ = _grid(config)
    m, r = config.market, config.reward
    n = m.n_steps
    fee = float(r.maker_fee)
    v = np.zeros((n + 1,) + risk.shape)
    depths = np.zeros((n, 4) + risk.shape)
    probs = np.zeros((n, 4) + risk.shape)
    for t in range(n - 1, -1, -1):
        w = v[t + 1] - r.inventory_penalty * risk * m.dt - (r.terminal_penalty * risk if t == n - 1 else 0.0)
        _dp_step(np.ascontiguousarray(w), c, k, fee, q_max, 1000, 1e-13, v[t], depths[t], probs[t])
    return v, depths, probs


def evaluate_portfolio_tables(config, d_b: np.ndarray, d_a: np.ndarray) -> float:
    """The exact expected objective (V_0 at q = 0) of a K = 2 depth table: the recursion of
    :func:`solve_portfolio_dp` without the max (``d_b``, ``d_a``: ``(n_steps, 2Q1+1, 2Q2+1, 2)``)."""
    _check_k2(config)
    c, k, q_, risk, open_b, open_a = _grid(config)
    m, r = config.market, config.reward
    n = m.n_steps
    fee = float(r.maker_fee)
    v = np.zeros(risk.shape)
    for t in range(n - 1, -1, -1):
        w = v - r.inventory_penalty * risk * m.dt - (r.terminal_penalty * risk if t == n - 1 else 0.0)
        ds = (d_b[t, ..., 0], d_a[t, ..., 0], d_b[t, ..., 1], d_a[t, ..., 1])
        opens = (open_b[0], open_a[0], open_b[1], open_a[1])
        cs = (c[0], c[0], c[1], c[1])
        ks = (k[0], k[0], k[1], k[1])
        p = [np.where(opens[j], np.minimum(1.0, cs[j] * np.exp(-ks[j] * ds[j])), 0.0) for j in range(4)]
        v = _objective(_shifts(w), p, [np.where(opens[j], ds[j], 0.0) for j in range(4)], fee)
    return float(v[q_[0], q_[1]])


def dp_config(config, what: str):
    """The config the K = 2 recursion runs on for a portfolio config with risk limits.

    No limits, or ``limits.on_breach: alert`` (nothing enforced): ``config`` itself. Static
    per-asset position limits under ``suppress`` (no factor limit, no ``vol_scaling``): the same
    market with bounds ``Q'_a = min(Q_a, floor(L_a))`` and no limits. Exact: for integer q,
    suppress refuses a bid iff ``q + 1 > L_a`` iff ``q + 1 > floor(L_a)``, which is the inventory
    bound's rule at ``Q'_a`` (and likewise asks), and from q = 0 the inventories never leave
    ``|q_a| <= Q'_a``. Anything else (a factor limit, vol scaling, flatten): ConfigError."""
    if config.portfolio.correlation_regimes is not None:
        raise ConfigError(f"{what}: the K = 2 DP has one covariance; portfolio.correlation_regimes is set")
    lim = getattr(config, "limits", None)
    if lim is None or not lim.enabled or lim.on_breach == "alert":
        return config
    if lim.on_breach == "suppress" and lim.factor is None and not lim.vol_scaling:
        k = int(config.portfolio.assets)
        cap = np.floor(np.broadcast_to(np.asarray(lim.position, dtype=np.float64), (k,))).astype(np.int64)
        if cap.min() >= 1:
            q_new = np.minimum(config.portfolio.per_asset("max_inventory"), cap)
            data = config.model_dump()
            data["portfolio"]["max_inventory"] = [int(x) for x in q_new]
            data["limits"] = {}
            return type(config).model_validate(data)
    raise ConfigError(f"{what}: the K = 2 DP models only static per-asset position limits under "
                      f"'suppress' with floor(L_a) >= 1 (got limits.on_breach = {lim.on_breach!r}, "
                      f"factor = {lim.factor!r}, vol_scaling = {lim.vol_scaling!r}); 'alert' keeps it exact")


def _check_k2(config):
    if int(config.portfolio.assets) != 2:
        raise ConfigError(f"optimal: the exact DP is for portfolio.assets = 2 (got {config.portfolio.assets})")


class PortfolioOptimal(PortfolioPolicy):
    """``optimal`` (K = 2): :func:`solve_portfolio_dp`'s quotes; ``v0`` is V_0(0, 0), exactly the
    expected objective of this policy; that it is the optimum rests on the per-state maximisation
    (see :func:`solve_portfolio_dp`, numerically checked, not proven)."""

    name = "optimal"

    def __init__(self, config):
        super().__init__(config)
        _check_k2(config)
        dp = dp_config(config, "optimal")  # static position limits: tighter bounds (exact)
        self.value, self.depth_table, self.probs = solve_portfolio_dp(dp)
        self.q_max = dp.portfolio.per_asset("max_inventory")
        self.v0 = float(self.value[0, self.q_max[0], self.q_max[1]])
        self.exact = True

    def _depths(self, step, q):
        q = np.asarray(q).astype(np.int64)
        t = np.clip(np.broadcast_to(np.asarray(step), q.shape)[..., 0].astype(np.int64), 0, self.mp.n_steps - 1)
        i1 = np.clip(q[..., 0] + self.q_max[0], 0, 2 * self.q_max[0])
        i2 = np.clip(q[..., 1] + self.q_max[1], 0, 2 * self.q_max[1])
        d = self.depth_table[t, :, i1, i2]  # (..., 4)
        # a closed side's depth is irrelevant (the kernel does not quote it): any finite number
        d = np.where(np.isfinite(d), d, 1e3)
        return np.stack([d[..., 0], d[..., 2]], axis=-1), np.stack([d[..., 1], d[..., 3]], axis=-1)

    def exact_objective(self) -> float:
        return self.v0


#: name -> builder(env_config, baselines_config), the portfolio scenario's baselines
PORTFOLIO_BASELINES: dict[str, Any] = {
    "as": lambda env, bc: PerAsset(env, "as", bc.gamma),
    "glft": lambda env, bc: PerAsset(env, "glft", bc.gamma),
    "begv": lambda env, bc: BEGV(env),
    "begv_regime": lambda env, bc: BEGVRegime(env),
    "begv_tuned": lambda env, bc: _tuned("begv_tuned", env, bc),
    "optimal": lambda env, bc: PortfolioOptimal(env),
    # begv quotes plus market-order hedges per asset (mmgym/baselines/portfolio_hedge.py)
    "begv_mv_hedge": lambda env, bc: _hedge("begv_mv_hedge", env),
    "begv_threshold": lambda env, bc: _hedge("begv_threshold", env),
    "begv_eoq": lambda env, bc: _hedge("begv_eoq", env),
    "begv_factor_hedge": lambda env, bc: _hedge("begv_factor_hedge", env),
}


def _tuned(name, env, bc):
    from .tuned import make_tuned

    return make_tuned(name, env, bc)


def _hedge(name, env):
    from .portfolio_hedge import HEDGE_BASELINES

    return HEDGE_BASELINES[name](env)

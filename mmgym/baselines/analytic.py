"""Closed-form quoting rules: Avellaneda-Stoikov, its symmetric benchmark, a fixed spread, the
Guéant-Lehalle-Fernandez-Tapia asymptotic quotes and a hard inventory boundary.

Depth convention everywhere: ``delta_b = mid - bid`` and ``delta_a = ask - mid`` (price units,
positive away from the mid); the quoted spread is ``delta_b + delta_a``. With different bid/ask
intensities (``market.A_bid`` ...) each side uses its own ``A`` and ``k`` in the one-side terms;
the papers assume symmetric sides.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import optimize

from ..config import ConfigError, EnvConfig
from ..sim.quotes import as_depths_batch
from .base import DepthPolicy
from .optimal import evaluate_tables

__all__ = ["AvellanedaStoikov", "SymmetricAS", "FixedSpread", "GLFT", "GLFTDrift", "InventoryBoundary"]


class AvellanedaStoikov(DepthPolicy):
    r"""``as``: Avellaneda & Stoikov (2008), finite-horizon inventory strategy.

    Reservation price (AS 2008 eq. 29) and total spread (eq. 30)::

        r(s, q, t) = s - q gamma sigma^2 (T - t)
        delta_a + delta_b = gamma sigma^2 (T - t) + (2 / gamma) ln(1 + gamma / k)

    quoted symmetrically around r, so, with tau = T - t = (n_steps - step) dt::

        delta_b = q gamma sigma^2 tau + gamma sigma^2 tau / 2 + (1/gamma) ln(1 + gamma/k_b)
        delta_a = -q gamma sigma^2 tau + gamma sigma^2 tau / 2 + (1/gamma) ln(1 + gamma/k_a)

    This is the kernel's ``as_hybrid`` rule at skew 0, computed by the same function
    (:func:`mmgym.sim.quotes.as_depths`).

    Args:
        config: the environment. gamma: risk aversion (``baselines.gamma``).
    """

    name = "as"

    def __init__(self, config: EnvConfig, gamma: float):
        super().__init__(config)
        self.gamma = float(gamma)

    def _as_depths(self, step, q):
        """AS 2008 eqs. (29)-(30) elementwise over broadcast (step, q)."""
        mp = self.mp
        step, q = np.broadcast_arrays(np.asarray(step), np.asarray(q, dtype=np.float64))
        d_b = np.empty(q.shape)
        d_a = np.empty(q.shape)
        as_depths_batch(np.ascontiguousarray(q, dtype=np.float64).ravel(),
                        np.ascontiguousarray(mp.tau(step), dtype=np.float64).ravel(), self.gamma,
                        mp.sigma * mp.sigma, mp.k_bid, mp.k_ask, 0.0, d_b.reshape(-1),
                        d_a.reshape(-1))
        return d_b, d_a

    def _depths(self, step, q):
        return self._as_depths(step, q)

    def spread(self, step) -> np.ndarray:
        """Total spread gamma sigma^2 (T-t) + (2/gamma) ln(1 + gamma/k) (AS 2008 eq. 30)."""
        d_b, d_a = self._as_depths(step, np.zeros(np.shape(step)))
        return d_b + d_a

    def describe(self):
        return {"name": self.name, "gamma": self.gamma}


class SymmetricAS(AvellanedaStoikov):
    r"""``symmetric``: the benchmark of AS 2008 sec. 4, the inventory strategy's average spread, held
    constant and centred on the mid.

    AS 2008 sec. 4 compare the inventory strategy with a symmetric strategy that quotes the same
    spread centred around the mid-price; the journal's tables (Quant. Finance 8(3), 2008, tables for
    gamma = 0.1, 0.01, 1) report one average spread per strategy, the same for both. Here each side
    quotes, at every (t, q), the inventory strategy's q = 0 depth (AS 2008 eqs. (29)-(30), computed
    by :func:`mmgym.sim.quotes.as_depths`) averaged over the episode's steps, tau_t = (n_steps - t) dt::

        delta_b = mean_t[gamma sigma^2 tau_t / 2] + (1/gamma) ln(1 + gamma/k_b)
        delta_a = mean_t[gamma sigma^2 tau_t / 2] + (1/gamma) ln(1 + gamma/k_a)

    so the total is eq. (30) averaged over the steps and the average quoted spread equals the
    inventory strategy's (1.492, 1.349, 3.032 on ``configs/as2008.yaml``; the journal's 1.49, 1.35,
    3.02 average tau over (0, T], i.e. T/2 instead of (T + dt)/2).

    Why constant: the two readings of "the same spread" differ only through the gamma sigma^2 tau
    term, i.e. at gamma = 1. There the exact std(profit) and std(q_T) of the experiment are 10.73
    and 5.17 with the constant spread against the journal's 11.0 and 5.1 (within 1.1 standard
    errors of 1000 paths), and 9.63 and 5.83 with the time-varying one (5.7 and 5.2 standard errors
    off); at gamma = 0.1 and 0.01 both readings fit (docs/BASELINES.md, "AS 2008 reproduction").

    Args:
        config: the environment. gamma: risk aversion (``baselines.gamma``).
        time_varying: the other reading: eq. (30)'s spread at the current step, split equally
            around the mid (library only; not a baseline name).
    """

    name = "symmetric"

    def __init__(self, config: EnvConfig, gamma: float, time_varying: bool = False):
        super().__init__(config, gamma)
        self.time_varying = bool(time_varying)
        steps = np.arange(self.mp.n_steps)
        d_b, d_a = self._as_depths(steps, np.zeros(steps.shape))
        self.half_bid = float(d_b.mean())
        self.half_ask = float(d_a.mean())

    def _depths(self, step, q):
        shape = np.broadcast_shapes(np.shape(step), np.shape(q))
        if self.time_varying:
            return self._as_depths(step, np.zeros(shape))
        return np.full(shape, self.half_bid), np.full(shape, self.half_ask)

    def describe(self):
        return {"name": self.name, "gamma": self.gamma, "time_varying": self.time_varying}


class FixedSpread(DepthPolicy):
    """``fixed``: a constant symmetric half-spread, ``delta_b = delta_a = h`` at every (t, q).

    ``h`` is ``baselines.fixed_half_spread`` or, when that is None, the constant with the largest
    exact expected objective, found by bounded scalar search (scipy ``minimize_scalar``) over the
    exact policy value of :func:`mmgym.baselines.optimal.evaluate_tables` (the DP recursion with the
    policy held fixed; exact under the kernel's step rules).

    Args:
        config: the environment. half_spread: h, or None to search.
    """

    name = "fixed"

    def __init__(self, config: EnvConfig, half_spread: float | None = None):
        super().__init__(config)
        self.searched = half_spread is None
        self.half_spread = float(half_spread) if half_spread is not None else self._search()

    def _search(self) -> float:
        mp = self.mp
        j0 = self.config.market.q0 + mp.max_inventory

        def neg_value(h: float) -> float:
            return -float(evaluate_tables(self.config, np.full(1, h), np.full(1, h))[0, j0])

        k = min(mp.k_bid, mp.k_ask)
        hi = max(10.0 / k, 1.0)
        grid = np.linspace(-1.0 / k, hi, 41)
        vals = [neg_value(h) for h in grid]
        i = int(np.argmin(vals))
        lo_b, hi_b = grid[max(0, i - 1)], grid[min(len(grid) - 1, i + 1)]
        res = optimize.minimize_scalar(neg_value, bounds=(lo_b, hi_b), method="bounded",
                                       options={"xatol": 1e-6})
        return float(res.x if res.fun <= vals[i] else grid[i])

    def _depths(self, step, q):
        d = np.full(np.shape(q), self.half_spread)
        return d, d.copy()

    def describe(self):
        return {"name": self.name, "half_spread": self.half_spread, "searched": self.searched}


class GLFT(DepthPolicy):
    r"""``glft``: Guéant, Lehalle & Fernandez-Tapia (2013) asymptotic (T -> infinity) closed form,
    with the jump on fill of their sec. 5 when ``market.adverse_jump`` > 0.

    GLFT 2013 (Math. Finan. Econ. 7, sec. 4, closed-form approximations), with
    ``w = sqrt( sigma^2 gamma / (2 k A) (1 + gamma/k)^(1 + k/gamma) )``::

        delta_b = (1/gamma) ln(1 + gamma/k) + (2q + 1)/2 * w
        delta_a = (1/gamma) ln(1 + gamma/k) - (2q - 1)/2 * w

    Time-independent. Each side uses its own (A, k) when the sides differ.

    **Adverse selection** (GLFT 2013 sec. 5, ``dS = sigma dW + xi dN^a - xi dN^b``, xi =
    ``market.adverse_jump``). With ``a = k gamma sigma^2 / 2`` and
    ``eta = A (1 + gamma/k)^(-(1 + k/gamma))`` the sec. 5 system is (REFERENCES; the equation
    numbers of the paper were not checked here, the formulas below are derived from it)::

        dv_q/dt = a q^2 v_q - eta e^{-k xi/2} (v_{q-1} + v_{q+1}),   v_q(T) = exp(-k xi q^2 / 2)
        delta_b = (1/k) ln(v_q / v_{q+1}) + xi/2 + (1/gamma) ln(1 + gamma/k)   (ask: v_{q-1})

    Derivation: a bid fill changes ``x + q s`` by ``delta_b - xi (q+1)`` (the whole post-fill
    inventory is revalued by the jump), an ask fill by ``delta_a + xi (q-1)``; with
    ``theta_q = theta~_q + xi q^2 / 2`` both become ``delta - xi/2 + theta~_{q±1} - theta~_q``, so
    the jump problem is the driftless one in ``theta~ = (1/k) ln v`` with each depth shifted by xi/2,
    i.e. with the intensity ``A e^{-k xi/2} e^{-k (delta - xi/2)}``: ``eta -> eta e^{-k xi/2}``, and
    the terminal condition ``theta~(T) = -xi q^2 / 2``. The terminal condition is forgotten as
    T - t -> infinity, and the sec. 4 asymptotics of the driftless system apply with
    ``A -> A e^{-k xi/2}`` (w is ``sqrt(a/eta) / k``, so ``w -> w e^{k xi/4}``)::

        delta_b = xi/2 + (1/gamma) ln(1 + gamma/k) + (2q + 1)/2 * w e^{k xi/4}
        delta_a = xi/2 + (1/gamma) ln(1 + gamma/k) - (2q - 1)/2 * w e^{k xi/4}

    Each half-spread widens by xi/2 plus the widening of the spread term w/2, and the inventory
    skew ``q w`` grows by the factor ``e^{k xi/4}``. At xi = 0 these are the sec. 4 quotes, bit
    for bit. ``tests/test_baselines.py`` checks them against the ODE solved by matrix exponential.

    Args:
        config: the environment. gamma: risk aversion (``baselines.gamma``).
        adverse_jump: the xi the quotes assume (None: the env's ``market.adverse_jump``; 0 quotes
            as if the flow were not toxic).
    """

    name = "glft"

    def __init__(self, config: EnvConfig, gamma: float, adverse_jump: float | None = None):
        super().__init__(config)
        self.gamma = g = float(gamma)
        xi = float(config.market.adverse_jump if adverse_jump is None else adverse_jump)
        if xi < 0.0:
            raise ConfigError(f"glft: adverse_jump must be >= 0 (got {xi!r})")
        self.adverse_jump = xi
        mp = self.mp

        def side(a: float, k: float) -> tuple[float, float]:
            base = math.log1p(g / k) / g + 0.5 * xi
            w = math.sqrt(mp.sigma**2 * g / (2.0 * k * a) * (1.0 + g / k) ** (1.0 + k / g))
            return base, w * math.exp(0.25 * k * xi)

        self.base_b, self.w_b = side(mp.A_bid, mp.k_bid)
        self.base_a, self.w_a = side(mp.A_ask, mp.k_ask)

    def _depths(self, step, q):
        q = np.asarray(q, dtype=np.float64)
        return (self.base_b + (2.0 * q + 1.0) / 2.0 * self.w_b,
                self.base_a - (2.0 * q - 1.0) / 2.0 * self.w_a)

    def describe(self):
        return {"name": self.name, "gamma": self.gamma, "adverse_jump": self.adverse_jump}


class GLFTDrift(GLFT):
    r"""``glft_drift``: GLFT (2013) sec. 5's drift-adjusted quotes at the current alpha, on
    ``mmgym/AlphaMarketMaking-v0`` with ``alpha.observe_alpha: true``.

    With a drift mu (``dS = mu dt + sigma dW``) GLFT 2013 (Math. Finan. Econ. 7, sec. 5; the system as
    in REFERENCES, "Adverse selection and alpha"; equation numbers not checked here) replace the
    sec. 4 system by ``dv_q/dt = (a q^2 - k mu q) v_q - eta (v_{q-1} + v_{q+1})``, ``v_q(T) = 1``,
    with ``a = k gamma sigma^2 / 2``, and quote from v as without drift. Completing the square,
    ``a q^2 - k mu q = a (q - mu/(gamma sigma^2))^2 - const``: the drift shifts the inventory by
    ``mu / (gamma sigma^2)`` (the constant only rescales v and cancels from ``ln(v_q / v_{q+1})``),
    so the sec. 4 asymptotic closed form of :class:`GLFT` at ``q - mu/(gamma sigma^2)`` is the
    long-horizon answer (REFERENCES: "an alpha acts like an inventory offset of mu/(gamma sigma^2)")::

        delta_b = (1/gamma) ln(1 + gamma/k) + [-mu/(gamma sigma^2) + (2q + 1)/2] w
        delta_a = (1/gamma) ln(1 + gamma/k) + [ mu/(gamma sigma^2) - (2q - 1)/2] w

    The paper's mu is constant; here ``mu = alpha_t = n_t eps``, the current notch's drift (CJP
    2015 sec. 10.4's alpha is mean-reverting, which these quotes ignore). At ``eps = 0`` they are
    :class:`GLFT`'s, bit for bit. Its tables are per notch, (n_steps, 2m+1, 2Q+1), scored exactly by
    policy evaluation over (t, notch, q); ``tests/test_alpha.py`` checks the closed form against
    the drift system solved by matrix exponential at a long horizon.

    Args:
        config: an alpha env config with ``observe_alpha: true`` and ``market.sigma > 0``.
        gamma: risk aversion (``baselines.gamma``).
    """

    name = "glft_drift"

    def __init__(self, config: EnvConfig, gamma: float):
        if getattr(config, "alpha", None) is None:
            raise ConfigError(f"glft_drift: quotes on a drift alpha, which {config.id} does not have "
                              "(an env with an alpha section: mmgym/AlphaMarketMaking-v0)")
        if not config.alpha.observe_alpha:
            raise ConfigError("glft_drift: alpha.observe_alpha is false: the drift-adjusted quotes need "
                              "the observed alpha (set alpha.observe_alpha: true)")
        if config.market.sigma <= 0.0:
            raise ConfigError(f"glft_drift: market.sigma = {config.market.sigma:g}: the inventory shift "
                              "mu/(gamma sigma^2) needs sigma > 0")
        super().__init__(config, gamma, adverse_jump=0.0)
        self.notches = int(config.alpha.notches)
        self.epsilon = float(config.alpha.epsilon)
        #: inventory shift per notch, eps / (gamma sigma^2)
        self.shift = self.epsilon / (self.gamma * self.mp.sigma ** 2)
        self._notch: Any = None  # (N, 1) notches while acting, or a scalar while tabulating

    def act(self, market, out=None):
        self._notch = market.field("notch")[:, None]
        try:
            return super().act(market, out)
        finally:
            self._notch = None

    def _depths(self, step, q):
        q = np.asarray(q, dtype=np.float64)
        if self._notch is None:  # outside act (surfaces, plots): alpha = 0
            return super()._depths(step, q)
        notch = self._notch if np.ndim(self._notch) == 0 else np.reshape(self._notch, (-1,) + (1,) * (q.ndim - 1))
        return super()._depths(step, q - notch * self.shift)

    def tables(self):
        """Per-notch tables ``(n_steps, 2m+1, 2Q+1)`` (notch index ``n + m``)."""
        out = []
        try:
            for n in range(-self.notches, self.notches + 1):
                self._notch = n
                out.append(super().tables())
        finally:
            self._notch = None
        return tuple(np.stack([t[i] for t in out], axis=1) for i in range(3))

    def describe(self):
        return {"name": self.name, "gamma": self.gamma}


class InventoryBoundary(AvellanedaStoikov):
    """``boundary``: AS quotes inside a band, market orders back to flat beyond it.

    While ``|q| <= band`` it quotes Avellaneda & Stoikov (2008) eqs. (29)-(30) (see :class:`AvellanedaStoikov`).
    When ``|q| > band`` it sends a market order towards zero (at most ``action.hedge_max_lots`` per
    step), paying the configured Almgren & Chriss (2000) linear impact
    ``|v| (impact.half_spread + impact.eta |v|)``, and then quotes AS at the post-trade inventory.

    Needs the hedge action: building it on an env without ``env.action.hedge: true`` raises a
    :class:`~mmgym.config.ConfigError` (every agent of an evaluation must face the same action set,
    so the evaluator does not switch the hedge on behind the others' backs).

    Args:
        config: the environment. gamma: risk aversion. band: the band (None: max_inventory // 2).
    """

    name = "boundary"
    needs_hedge = True

    def __init__(self, config: EnvConfig, gamma: float, band: int | None = None):
        super().__init__(config, gamma)
        self.band = int(self.mp.max_inventory // 2 if band is None else band)
        self.max_lots = int(config.action.hedge_max_lots)

    def _hedge(self, step, q):
        q = np.asarray(q, dtype=np.int64)
        v = np.where(np.abs(q) > self.band, -q, 0)
        return np.clip(v, -self.max_lots, self.max_lots).astype(np.int64)

    def describe(self):
        return {"name": self.name, "gamma": self.gamma, "band": self.band}

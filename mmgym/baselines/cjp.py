r"""``cjp``: Cartea, Jaimungal & Penalva (2015), *Algorithmic and High-Frequency Trading*, ch. 10.

The continuous-time market maker of CJP 2015 sec. 10.2 maximises

.. math:: E\left[X_T + q_T S_T - \alpha q_T^2 - \phi \int_0^T q_u^2\,du\right]

with fills at rate :math:`\lambda^\pm e^{-k\delta^\pm}` and inventory kept in ``[-Q, Q]``. The ansatz
:math:`H = x + qs + h(t, q)`, :math:`h(T, q) = -\alpha q^2` and the substitution
:math:`h = \frac1k\ln\omega` linearise the HJB equation (CJP 2015 sec. 10.2.1) into
:math:`\partial_t\omega + A_m\omega = 0`, so

.. math:: \omega(t) = e^{A_m (T - t)} z,\qquad z_q = e^{-\alpha k q^2},

with :math:`A_m` tridiagonal over :math:`q \in \{-Q..Q\}`: diagonal :math:`-\phi k q^2`,
:math:`A_{q,q+1} = \lambda^- e^{-1}` (a bid fill, present for q < Q) and
:math:`A_{q,q-1} = \lambda^+ e^{-1}` (an ask fill, present for q > -Q). The optimal depths are
(CJP 2015 sec. 10.2.1, the feedback form of the optimal controls)

.. math:: \delta^{+*} = \frac1k - h(t, q-1) + h(t, q), \qquad \delta^{-*} = \frac1k - h(t, q+1) + h(t, q).

The matrix exponential is applied step by step with :math:`E = e^{A_m dt}` (scipy ``expm``), which
is exact on the step grid: :math:`\omega(t_i) = E^{n-i} z`, with the vector rescaled at each step and
the log-scale carried separately (``h`` only needs differences of logs, the value needs the scale).
Sanity limit (REFERENCES): :math:`\phi = \alpha = 0, Q\to\infty` gives :math:`h(0, 0) = 2\lambda T/(e k)`.

In the discrete-time env this policy is not exactly optimal (see ``optimal``); as ``dt -> 0`` with
the poisson fill rule its value converges to :math:`h(0, q_0)` (:meth:`CJP.value`).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.linalg import expm

from ..config import ConfigError, EnvConfig
from .base import DepthPolicy

__all__ = ["CJP"]


class CJP(DepthPolicy):
    """``cjp``: the exact continuous-time solution of CJP 2015 ch. 10 (module docstring).

    Uses ``reward.inventory_penalty`` as phi and ``reward.terminal_penalty`` as alpha; the bound
    Q is ``market.max_inventory``. The fill-intensity decay must be the same on both sides.

    Attributes:
        h: (n_steps + 1, 2Q+1) float64, h(t_i, q) on the step grid (row n is h(T, q) = -alpha q^2).
    """

    name = "cjp"

    def __init__(self, config: EnvConfig):
        super().__init__(config)
        mp = self.mp
        if abs(mp.k_bid - mp.k_ask) > 1e-12:
            raise ConfigError(f"cjp: needs k_bid == k_ask (got {mp.k_bid}, {mp.k_ask})")
        k = mp.k_bid
        self.k = k
        self.phi = float(config.reward.inventory_penalty)
        self.alpha = float(config.reward.terminal_penalty)
        q_max = mp.max_inventory
        qs = np.arange(-q_max, q_max + 1, dtype=np.float64)
        n_q = qs.size
        a_m = np.diag(-self.phi * k * qs**2)
        idx = np.arange(n_q - 1)
        a_m[idx, idx + 1] = mp.A_bid / math.e  # row q -> q+1: bid fill (q < Q)
        a_m[idx + 1, idx] = mp.A_ask / math.e  # row q -> q-1: ask fill (q > -Q)
        step_exp = expm(a_m * mp.dt)
        n = mp.n_steps
        log_omega = np.empty((n + 1, n_q))
        omega = np.exp(-self.alpha * k * qs**2)
        scale = 0.0
        log_omega[n] = -self.alpha * k * qs**2
        for i in range(n - 1, -1, -1):
            omega = step_exp @ omega
            top = omega.max()
            omega = omega / top
            scale += math.log(top)
            with np.errstate(divide="ignore"):
                log_omega[i] = np.log(omega) + scale
        self.h = log_omega / k
        h = self.h[:-1]
        self._d_b = np.full((n, n_q), 1.0 / k)
        self._d_a = np.full((n, n_q), 1.0 / k)
        self._d_b[:, :-1] = 1.0 / k - h[:, 1:] + h[:, :-1]
        self._d_a[:, 1:] = 1.0 / k - h[:, :-1] + h[:, 1:]

    def value(self, q0: int | None = None) -> float:
        """h(0, q0): the continuous-time optimal expected objective minus x + q s (CJP 2015 ch. 10)."""
        q0 = self.config.market.q0 if q0 is None else q0
        return float(self.h[0, q0 + self.mp.max_inventory])

    def _depths(self, step, q):
        j = np.asarray(q, dtype=np.int64) + self.mp.max_inventory
        t = np.minimum(np.asarray(step, dtype=np.int64), self.mp.n_steps - 1)
        return self._d_b[t, j], self._d_a[t, j]

    def describe(self):
        return {"name": self.name, "phi": self.phi, "alpha": self.alpha}

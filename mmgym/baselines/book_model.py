r"""``book_model``: the optimum of the book's calibrated intensity model with informed fills.

The intensity model of the baselines (Avellaneda & Stoikov 2008: a quote at depth ``delta`` fills in a
step with probability ``p(delta)``, from ``lambda = A e^{-k delta}`` and ``market.fill_rule``), with
A, k fitted to the fills of our own probe quotes on the book (:func:`mmgym.calibrate.calibrate_probes`),
and the book's adverse selection in the form the probes measure it: the mid's move over a step is a
martingale whatever we quote, and our fills are informative about it,

.. math::

    dS = \xi_a(\delta_a)\,(1_a - p_a) - \xi_b(\delta_b)\,(1_b - p_b) + \varepsilon,
    \qquad E[\varepsilon \mid \text{fills}] = 0,

with ``xi_j`` the probes' mean mid move against a one-sided fill at depth ``delta_j`` (the regression
of dS on ``1_a - 1_b`` with both sides at ``delta_j``, where ``p_a = p_b``). It differs from the jump on
fill of Guéant, Lehalle & Fernandez-Tapia (2013, sec. 5), ``dS = sigma dW + xi (1_a - 1_b)``
(``market.adverse_jump``), in the mean: there a skewed quote (``p_a > p_b``) makes the mid drift by
``xi (p_a - p_b)``, which pays the held inventory ``q xi (p_a - p_b)`` per step; on the book the held
inventory's revaluation is ~0 whatever the skew (docs/LOB.md), so that model overstates V0.

With fills independent across sides, one step's expected reward from inventory q (risk neutral, the
book's reward terms) is

.. math::

    p_b(\delta_b - \xi_b (1 - p_b)) + p_a(\delta_a - \xi_a (1 - p_a))
    + E[W(q')], \quad W(q') = V_{t+1}(q') - \phi q'^2 dt - [t = n-1]\,\alpha q'^2,

since ``E[q dS] = 0`` and ``E[1_b dS] = -\xi_b p_b (1 - p_b)``. The recursion over (t, q) is solved
exactly over the probed depths (the book quotes on a tick lattice: ``delta_j = (j + 1/2) tick``
from the mid is the touch and j ticks behind it at a 1-tick spread; the bid is off at ``q = Q``, the
ask at ``q = -Q``). ``v0`` is this model's value, not the book's; the policy runs on the book.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..schema import EnvConfig
from .base import DepthPolicy

__all__ = ["BookModelPolicy", "solve_informed_lattice"]


def solve_informed_lattice(p: np.ndarray, xi: np.ndarray, depths: np.ndarray, n_steps: int, q_max: int,
                           dt: float, phi: float, alpha: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Backward induction of the informed-fill lattice model (module docstring).

    Args:
        p, xi, depths: (J,) per-step fill probability, mid move against a one-sided fill, and depth
            from the mid (price units) of each lattice depth.
        n_steps, q_max, dt: the episode's steps, the inventory bound Q, the step length.
        phi, alpha: running (per time unit) and terminal inventory penalties.

    Returns:
        ``(value, j_bid, j_ask)``: V_t(q) as (n_steps + 1, 2Q + 1); the chosen depth indices as
        (n_steps, 2Q + 1) int64 (the side that cannot quote gets index 0, unused).
    """
    p, xi, depths = (np.asarray(x, dtype=np.float64) for x in (p, xi, depths))
    if not (p.ndim == 1 and p.shape == xi.shape == depths.shape and p.size >= 1):
        raise ValueError(f"p, xi, depths must be 1-d of one length (got {p.shape}, {xi.shape}, {depths.shape})")
    if np.any((p < 0) | (p > 1)) or not np.all(np.isfinite(xi)):
        raise ValueError(f"p must lie in [0, 1] and xi be finite (got p={p.tolist()}, xi={xi.tolist()})")
    n_q = 2 * q_max + 1
    q = np.arange(-q_max, q_max + 1, dtype=np.float64)
    gain = p * (depths - xi * (1.0 - p))  # (J,) one side's expected spread capture net of selection
    value = np.zeros((n_steps + 1, n_q))
    j_b = np.zeros((n_steps, n_q), dtype=np.int64)
    j_a = np.zeros((n_steps, n_q), dtype=np.int64)
    J = p.size
    for t in range(n_steps - 1, -1, -1):
        w = value[t + 1] - phi * q * q * dt - (alpha * q * q if t == n_steps - 1 else 0.0)
        w_up = np.append(w[1:], 0.0)  # W(q + 1); unused at q = Q, where the bid is off
        w_dn = np.insert(w[:-1], 0, 0.0)  # W(q - 1); unused at q = -Q
        # (q, jb, ja): bid off at q = Q, ask off at q = -Q
        pb = np.broadcast_to(p[None, :, None], (n_q, J, J)).copy()
        pa = np.broadcast_to(p[None, None, :], (n_q, J, J)).copy()
        gb = np.broadcast_to(gain[None, :, None], (n_q, J, J)).copy()
        ga = np.broadcast_to(gain[None, None, :], (n_q, J, J)).copy()
        pb[-1], gb[-1] = 0.0, 0.0
        pa[0], ga[0] = 0.0, 0.0
        up = pb * (1 - pa) * w_up[:, None, None]
        dn = pa * (1 - pb) * w_dn[:, None, None]
        stay = (pb * pa + (1 - pb) * (1 - pa)) * w[:, None, None]
        total = (gb + ga + up + dn + stay).reshape(n_q, J * J)
        best = np.argmax(total, axis=1)
        value[t] = total[np.arange(n_q), best]
        j_b[t], j_a[t] = np.divmod(best, J)
    return value, j_b, j_a


class BookModelPolicy(DepthPolicy):
    """The optimum of the informed-fill lattice model (module docstring), quoting on the book.

    Args:
        config: the book's env config (its ``market`` and ``reward`` sections; risk neutral).
        calibration: a :class:`mmgym.calibrate.ProbeCalibration` of this book: its fitted A, k give
            p at each probed depth (``fill_rule`` as fitted), its ``xi`` the selection per depth.
    """

    name = "book_model"
    #: ``v0`` is the lattice model's value, not the book's optimum: never an evaluation's "optimal V0"
    optimum_of_env = False

    def __init__(self, config: EnvConfig, calibration: Any):
        super().__init__(config)
        from ..calibrate import fill_probability

        m, r = config.market, config.reward
        pf, fit = calibration.probes, calibration.fit
        self.depth_grid = np.asarray(pf.depths, dtype=np.float64)
        self.p = fill_probability(fit.A, fit.k, self.depth_grid, m.dt, fit.fill_rule)
        self.xi = np.asarray(calibration.xi, dtype=np.float64)
        self.value, self.j_bid, self.j_ask = solve_informed_lattice(
            self.p, self.xi, self.depth_grid, m.n_steps, m.max_inventory, m.dt, r.inventory_penalty,
            r.terminal_penalty)
        self.v0 = float(self.value[0, m.q0 + m.max_inventory])
        self._params = {"A": fit.A, "k": fit.k, "fill_rule": fit.fill_rule,
                        "xi": [round(float(x), 6) for x in self.xi]}

    def _depths(self, step, q):
        t = np.minimum(np.asarray(step, dtype=np.int64), self.mp.n_steps - 1)
        i = np.clip(np.asarray(q, dtype=np.int64), -self.mp.max_inventory, self.mp.max_inventory) + self.mp.max_inventory
        return self.depth_grid[self.j_bid[t, i]], self.depth_grid[self.j_ask[t, i]]

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, **self._params, "model_v0": self.v0}

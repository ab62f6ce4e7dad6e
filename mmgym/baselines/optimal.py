r"""The exact optimum of the discrete-time intensity market, by backward induction over (t, q)
(and the regime, on a scenario with Markov regimes: "Regimes" below; the drift's notch on the
informed-flow scenario: "Arrival classes").

The objective is the environment's own: the expected summed reward of one episode under the
kernel's step rules (:mod:`mmgym.scenarios.intensity`), risk neutral. Writing one step's reward with
``q'`` the post-fill inventory and ``dS`` the mid's move,

.. math::

    r = \delta_b 1_b + \delta_a 1_a - f (1_b + 1_a) + q' dS - \phi q'^2 dt
        - [t = n-1]\, \alpha q'^2 - \eta_D \max(0, q' dS)
        \;-\; |v|(h + \eta |v| + f_\text{taker}) + \nu v (q + v),

(the wealth change ``d(cash + q mid)`` of step rules 0-5; the last line is the hedge's Almgren &
Chriss (2000) linear temporary cost and the revaluation of the held inventory by the permanent
impact). The fills are independent of ``dS`` and ``E[dS] = 0``, so ``E[q' dS] = 0`` and
``E[max(0, q' dS)] = |q'| E[dS^+]`` with ``E[dS^+] = \sigma\sqrt{dt}/\sqrt{2\pi}`` (gaussian) or
``\sigma\sqrt{dt}/2`` (binomial): the expected reward depends on the state only through (t, q), and
the Bellman recursion (REFERENCES: "seed 2's value recursion", V_t(x) = max_a {R_t(x,a) + E V_{t+1}})
over (step, inventory) is exact:

.. math::

    W_{t+1}(q') = V_{t+1}(q') - \phi q'^2 dt - [t = n-1]\alpha q'^2 - \eta_D |q'| E[dS^+],

    V_t(q) = \max_{\delta_b, \delta_a}\; W(q) + p_b(\delta_b - f + D_b) + p_a(\delta_a - f + D_a)
             - p_b p_a (D_b + D_a),

with ``D_b = W(q+1) - W(q)``, ``D_a = W(q-1) - W(q)``. This is the expectation over the four fill
outcomes (both: q, bid only: q+1, ask only: q-1, none: q); the sides couple only through the
product term. For a fixed ask the bid maximises ``p_b (\delta_b + E_b)`` with
``E_b = D_b - f - p_a (D_b + D_a)`` (and symmetrically), and the two best responses are iterated to
a fixed point. The product term can make the one-step problem non-concave, with several fixed
points (a strongly concave W rewards both sides filling together); the iteration therefore starts
from the four corners of (p_b, p_a) and keeps the best fixed point (:func:`_quote_step`). The one-side problem has a closed form:

* linear fills, ``p = min(1, c e^{-k\delta})``, ``c = A dt``: ``p (\delta + E)`` is increasing below
  the saturation depth ``\ln(c)/k`` (p = 1 there) and unimodal above it with stationary point
  ``1/k - E`` (the CJP 2015 sec. 10.2 form), so ``\delta^* = \max(1/k - E, \ln(c)/k)``;
* poisson fills, ``p = 1 - e^{-\lambda}``, ``\lambda = c e^{-k\delta}``: the first-order condition
  ``k\lambda(1-p)(\delta + E) = p`` becomes ``\ln\lambda + (e^\lambda - 1)/\lambda = \ln c + kE``,
  strictly increasing in ``\ln\lambda``; it is solved by safeguarded Newton.

**Adverse selection (jump on fill).** With ``market.adverse_jump`` = ``\xi > 0`` the mid's move is
``dS = \sigma\sqrt{dt} Z + \xi (1_a - 1_b)`` (step rule 4; the jump on fill of Guéant, Lehalle &
Fernandez-Tapia 2013, sec. 5, ``dS = \sigma dW + \xi dN^a - \xi dN^b``). ``Z`` is still independent
of the fills, so ``E[q' \sigma\sqrt{dt} Z] = 0`` as before, and the jump adds the known term

.. math::

    q' \xi (1_a - 1_b) = \xi\,[\,q (1_a - 1_b) - (1_a + 1_b) + 2\cdot 1_a 1_b\,]
    \qquad (q' = q + 1_b - 1_a),

i.e. ``-\xi(q+1)`` when the bid fills alone (the whole post-fill inventory q+1 loses ``\xi``),
``+\xi(q-1)`` when the ask fills alone, and 0 when both or neither fill (q' = q, no net jump). The
dampening term sees the same dS: per outcome, ``E[\max(0, q'(X + J))] = |q'|\,E[(X + \mathrm{sign}(q')
J)^+]`` with ``X = \sigma\sqrt{dt} Z``, ``J = \xi(1_a - 1_b)`` and ``E[(X + c)^+] = c\Phi(c/s) +
s\varphi(c/s)`` (gaussian, ``s = \sigma\sqrt{dt}``) or ``((c+s)^+ + (c-s)^+)/2`` (binomial); it differs
from W's ``|q'| E[X^+]`` only in the one-fill outcomes. Both corrections therefore depend on (q,
outcome) only and enter the recursion as shifts of the one-fill gains:

.. math::

    D_b = W(q+1) - W(q) - \xi(q+1) - \eta_D\,\big(|q+1|\,E[(X - \mathrm{sign}(q+1)\xi)^+] - |q+1| E[X^+]\big),

    D_a = W(q-1) - W(q) + \xi(q-1) - \eta_D\,\big(|q-1|\,E[(X + \mathrm{sign}(q-1)\xi)^+] - |q-1| E[X^+]\big),

and the expectation over the four outcomes keeps exactly the form above, product term
``-p_b p_a (D_b + D_a)`` included (the both-fill outcome gains ``\delta_b + \delta_a - 2f`` over W(q),
with no jump term). The state is still (t, q) and the same recursion, :func:`_quote_step` with the
shifts (:func:`_jump_corrections`; zeros at ``\xi = 0``, so the ``\xi = 0`` values are unchanged bit
for bit), is exact. The shifts change the coupling (without dampening ``D_b + D_a`` moves by
``-2\xi``), not its form: the one-step value ``G(p_b, p_a) = g_b(p_b) + g_a(p_a) - (D_b + D_a) p_b
p_a`` is bilinear in the two fill probabilities, with ``g`` concave in its own probability (linear:
``g'' = -1/(kp)``; poisson: checked numerically). Why the corner search finds its joint maximum:
with ``BR_a`` the (unique) best ask response, the profile ``h(p_b) = \max_{p_a} G`` has
``h'(p_b) > 0`` exactly where ``\varphi(p_b) = BR_b(BR_a(p_b)) > p_b``; ``\varphi`` is nondecreasing,
so the joint maximum is a fixed point where ``\varphi - \mathrm{id}`` crosses downward, iteration from
the corners reaches the least and the greatest fixed points, and ``h`` is monotone outside them. The
maximum is one of those two whenever ``\varphi(x) = x`` has at most three roots: for linear fills below
saturation (``BR(p) = C e^{-kSp}``) the roots are the zeros of ``\ln x - \ln C_b + k_b S C_a
e^{-k_a S x}``, concave for ``S < 0`` (at most two) and, in ``y = \ln x``, with a derivative that
vanishes at most twice for ``S > 0`` (at most three). Saturated linear fills and poisson fills are not
covered by that argument; ``tests/test_optimal.py`` checks the corner search against a dense 2-D grid
over random gains and shifts (any real ``D_b``, ``D_a``: the family with and without the jump is the
same) and the whole DP against a brute-force backward induction with ``\xi > 0``, and the optimal
policy's Monte Carlo through the kernel against V0.

The inventory bound removes a side at ``q = \pm Q`` (p = 0 there). With the hedge action
(``env.action.hedge``) the step first chooses a market order ``v`` over every lot count the kernel can
execute (``|v| \le`` ``hedge_max_lots``, clipped to the bound): ``V_t(q) = \max_v\{-|v|(h + \eta|v| +
f_\text{taker}) + \nu v (q+v) + \mathrm{Quote}_t(q+v)\}``.

**Tick size.** With ``tick > 0`` the kernel rounds quotes away from the mid
(:func:`mmgym.sim.processes.round_to_tick`): the depth it quotes is ``s - floor((s - \delta)/tick)
tick`` on the bid, which depends on the mid's position inside the tick, not only on (t, q). When
the mid stays on the tick grid (``s0`` a multiple of the tick, binomial noise with
``\sigma\sqrt{dt}``, permanent impact ``\nu`` and the jump on fill ``\xi`` multiples of it) that
position is always 0 and the effective depth is ``ceil(\delta/tick) tick``, a function of (t, q):
the DP restricts each side to the tick multiples (the one-side gain is unimodal, so the best grid
depth is the floor or ceiling of the continuous one) and the policy evaluation rounds the policy's
depths the same way: both are exact. Otherwise the mid's position inside the tick is a continuous state, correlated with q through
past fills, that the (t, q) recursion cannot carry (:func:`inexact_reason`); the DP then solves the
tick-free problem and quotes ``\delta^* - tick/2`` (rounding adds U(0, tick) on average), ``exact``
is False, and ``value`` and :func:`evaluate_tables` are the tick-free problem's, not this env's.

**Regimes.** On a scenario with Markov regimes (:mod:`mmgym.scenarios.regimes`,
``Scenario.dp_regimes``) the step of regime ``r`` uses ``\sigma_r``, ``A_r``, ``k_r``, ``\xi_r``, and
after the step's fills, mid move and reward the regime moves to ``r'`` with probability ``P[r, r']``
(``P = expm(Q dt)``), independently of the fills and of ``dS``. The state is (t, q, r) and the
recursion (REFERENCES: V_t(x) = max_a {R_t(x,a) + E V_{t+1}}, here with x = (q, r)) is the one above
with a regime-dependent W:

.. math::

    W_{t+1}(q', r) = \sum_{r'} P[r, r'] V_{t+1}(q', r') - \phi q'^2 dt - [t = n-1]\alpha q'^2
                     - \eta_D |q'| E[dS_r^+],

then the same one-step quote problem (:func:`_quote_step`) with regime r's ``c = A_r dt``, ``k_r`` and
jump shifts (``\xi_r``, ``\sigma_r``). The transition comes after the reward, so the reward of step t
depends on r_t only, and ``E[V_{t+1}]`` given (q', r) is the P-weighted sum because r_{t+1} is drawn
independently of the fills. The intensity market is one regime with ``P = [[1]]``: the sum is then
``1.0 * V_{t+1}``, so its values are unchanged bit for bit. The DP reads r_t: with a hidden regime
(``regimes.observed: false``) it is the full-information oracle, an upper bound on what an agent
that does not see the regime can reach (``Scenario.optimal_label``). :func:`evaluate_tables` scores a
(t, r, q) table, or a (t, q) table used in every regime (the static baselines), exactly.

**Scheduled events.** On a scenario with deterministic per-step parameters
(:mod:`mmgym.scenarios.events`, ``Scenario.dp_schedule``: ``(xi_t, s_t)``) step t's jump on fill is
``xi_t`` and its mid move is ``X + s_t Z_J + xi_t (1_a - 1_b)`` with ``Z_J`` a standard normal
independent of ``X`` and of the fills (``s_t = 0`` off event steps). Event times are known, so the
state stays (t, q) (R = 1) and the recursion is the one above with step-dependent constants:
``E[q' s_t Z_J] = 0``, so the event jump leaves the expected wealth unchanged; the jump on fill's shifts
use ``xi_t`` (:func:`_jump_corrections`); dampening's ``E[(X + J_t + c)^+]`` is the normal partial
expectation with ``X + s_t Z_J ~ N(0, \sigma^2 dt + s_t^2)`` (gaussian noise), or the mean of the two
normal partial expectations at ``c \pm \sigma\sqrt{dt}`` with std ``s_t`` (binomial noise)
(:func:`_positive_part_mean`). Without dampening a risk-neutral optimum ignores the zero-mean event
jump: the scenario's difficulty is then the window's ``xi_t`` only. Per-step constants are (n, R, ...)
arrays in :func:`_solve` for every scenario (the same values on every step without a schedule, so
those values are unchanged bit for bit).

**Risk where it is.** With ``reward.risk_penalty: variance`` (issue 9, scenario 5) the running
penalty of step t charges the step's own price variance, ``\phi q'^2 Var_t(dS)/\sigma^2`` with
``\sigma`` = ``market.sigma``: ``Var_t(dS)/\sigma^2 = dt\,\sigma_r^2/\sigma^2 + s_t^2/\sigma^2`` (the
regime's diffusion and the event jump's variance on its step; the jump on fill is our own fills'
doing, not the price's risk, and is left out). It is a known constant of (t, r), so W's
``\phi q'^2 dt`` becomes ``\phi q'^2\,\mathrm{pen}_{t,r}`` and the recursion is unchanged and still
exact; ``pen`` comes from the kernels' own rule (:func:`mmgym.sim.ledger.penalty_time`), and equals
``dt`` exactly when nothing varies.

**Arrival classes (informed flow).** On a scenario whose fills need an arriving market order
(:mod:`mmgym.scenarios.alpha`, ``Scenario.dp_arrivals``; Cartea, Jaimungal & Penalva 2015, sec.
10.4, discretised) each step of regime ``r`` (there: the drift's notch ``a``, ``alpha_a = a eps``)
draws an *arrival class* ``c`` with probability ``P_c`` before the fills: there ``c = (B, S)``, a buy
market order with probability ``p_B``, a sell one with ``p_S``, independently. Our bid can fill only
in a class with a sell order (``o^b_c = S``), our ask only with a buy order (``o^a_c = B``), each then
independently with probability ``f = \min(1, e^{-k\delta})``; the next regime is drawn from
``T[r, c, \cdot]`` (there: ``a + B - S`` clipped, then one notch towards 0 w.p. ``\zeta dt``),
independently of the fills, of ``Z`` and of the mid; the mid drifts by ``\mu_r = \alpha_a dt`` per
step. With

.. math::

    U_c(q') = W\Big(\sum_{r'} T[r, c, r'] V_{t+1}(q', r')\Big) + \mu_r q'

(``W`` the penalised continuation above; ``E[q' dS] = q' \mu_r`` because ``Z`` is independent of
everything else, and ``\mu_r q'`` is known given (r, q')), the expectation over the class and the
four fill outcomes of class c is, as in the one-class case,
``U_c(q) + S_c f_b (\delta_b - f + D^c_b) + B_c f_a (\delta_a - f + D^c_a) - S_c B_c f_b f_a (D^c_b +
D^c_a)`` with ``D^c_b = U_c(q+1) - U_c(q)``, ``D^c_a = U_c(q-1) - U_c(q)``. Summing over c with the
unconditional fill probabilities ``p_b = p^b f_b``, ``p^b = \sum_c P_c o^b_c`` (there ``p_S``), and
``p_a = p^a f_a``:

.. math::

    V_t(q, r) = \max_{\delta_b, \delta_a} \sum_c P_c U_c(q) + p_b(\delta_b - f + \bar D_b)
                + p_a(\delta_a - f + \bar D_a) - p_b p_a \bar S,

    \bar D_b = \sum_c P_c o^b_c D^c_b / p^b,\quad \bar D_a = \sum_c P_c o^a_c D^c_a / p^a,\quad
    \bar S = \sum_c P_c o^b_c o^a_c (D^c_b + D^c_a) / (p^b p^a)

(there ``\bar D_a = (1-p_S)(U_{10}(q-1) - U_{10}(q)) + p_S (U_{11}(q-1) - U_{11}(q))``, symmetrically
``\bar D_b`` with ``U_{01}``, ``U_{11}``, and ``\bar S = D^{11}_b + D^{11}_a``: the both-fill outcome
keeps q). This is the general one-step problem (:func:`_one_step`, :func:`_class_gains`) with the
fill probability ``p = \min(cap, c e^{-k\delta})``, ``c = cap = p^b``: for ``\delta \ge 0`` it is
``p^b e^{-k\delta}``, saturating at ``\delta = \ln(c/cap)/k = 0``, and the linear closed form of the
one-side problem holds with the saturation depth ``\ln(c/cap)/k`` (the intensity market's cap is 1,
so its values are unchanged bit for bit). The regime chain is the one-class case ``P = 1``,
``T[r, 0] = P[r]``, ``\mu = 0``, for which :func:`_class_gains` returns ``\bar D = D`` and
``\bar S = D_b + D_a`` exactly. :func:`evaluate_tables` scores a (t, a, q) policy or a static (t, q)
one (used in every notch) by the same recursion without the max. ``tests/test_alpha.py`` checks
the DP and the policy evaluation against a literal brute-force backward induction over every
outcome (B, S, both fills, the decay), and V0 against Monte Carlo through the kernel. Not covered
there (``ConfigError``): ``reward.dampening > 0`` (the drift makes ``E[\max(0, q' dS)]`` depend on
the sign of q'); the scenario itself refuses poisson fills, a jump on fill and a tick.

**Quote sizes.** With ``action.quote_size`` = m > 0 the action also chooses the lots each side
shows, ``m_b, m_a \in \{0..m\}``, clipped by the kernel to the room the bound leaves (``m_b \le Q - q``,
``m_a \le Q + q``; 0 = no quote, ``p = 0``). A fill takes the whole size with the side's usual
probability (it does not depend on the size: the env's modelling choice, :mod:`mmgym.sim.processes`),
the maker fee is per lot and the jump on fill comes once per fill event. Redoing the outcome algebra
of the step's reward (the wealth change is ``m_b\delta_b 1_b + m_a\delta_a 1_a + q'dS`` with
``q' = q + m_b 1_b - m_a 1_a``; ``dS = X + \xi(1_a - 1_b)``) outcome by outcome, relative to W(q):

* bid only, ``q' = q + m_b``: ``m_b(\delta_b - f) + D_b`` with
  ``D_b = W(q+m_b) - W(q) - \xi(q+m_b) - \eta_D|q+m_b|(E[(X - \mathrm{sign}(q+m_b)\xi)^+] - E[X^+])``;
* ask only, ``q' = q - m_a``: ``m_a(\delta_a - f) + D_a`` with
  ``D_a = W(q-m_a) - W(q) + \xi(q-m_a) - \eta_D|q-m_a|(E[(X + \mathrm{sign}(q-m_a)\xi)^+] - E[X^+])``;
* both, ``q' = q + m_b - m_a``: ``m_b(\delta_b - f) + m_a(\delta_a - f) + D_{both}`` with
  ``D_{both} = W(q+m_b-m_a) - W(q)``: the jump is ``\xi(1 - 1) = 0`` and dS = X, so neither the
  revaluation nor the dampening gets a shift (W already holds ``\eta_D|q'|E[X^+]``);
* none: 0.

With independent sides, ``E = p_b(1-p_a)[\text{bid}] + p_a(1-p_b)[\text{ask}] + p_b p_a[\text{both}]``
``= p_b(m_b(\delta_b - f) + D_b) + p_a(m_a(\delta_a - f) + D_a) - p_b p_a S``,
``S = D_b + D_a - D_{both}``: the general one-step problem :func:`_one_step` with lots per fill
(:func:`_step_gain`, :func:`_sized_gains`); with one lot ``D_{both} = 0`` and it is the recursion
above. The jump shifts depend on the post-fill inventory only, which is what
:func:`_jump_corrections` tabulates (its ``adj_b[j]`` is the bid-only shift ending at index ``j + 1``),
so ``m_b`` lots read ``adj_b[j + m_b - 1]``. The DP maximises over the finite size set inside the
per-inventory step (:func:`_sized_step`: one :func:`_one_step` per ``(m_b, m_a)``, ties within
1e-12 going to fewer lots), then over the depths; the recursion, the state (t, [r,] q) and the
penalties are unchanged, so the DP is exact whenever it is exact with one lot. In this model a
side that quotes has a positive expected gain at its best depth (``p(\delta^* + e) = p/k > 0`` for
linear fills), so 0 lots beats a far quote only within that tolerance: "stepping away" is the same,
to 1e-12, as quoting very deep. :func:`evaluate_tables` scores size tables by the same
:func:`_step_gain` rule (one lot per side by default: the static baselines). ``quote_size = 1``
differs from no sizes only by the option to show 0 lots (same values to that tolerance). Sizes are
solved for one arrival class (every scenario but :mod:`mmgym.scenarios.alpha`, which refuses them);
without them (``quote_size = 0``) the recursion is the one-lot code path, unchanged.

Not covered (``ConfigError``): ``reward.objective: cara`` (not risk neutral).
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
from numba import njit
from scipy import special

from ..config import ConfigError, EnvConfig
from ..sim.ledger import penalty_time, variance_ratio
from .base import DepthPolicy

__all__ = ["OptimalPolicy", "solve_optimal", "evaluate_tables", "policy_value", "inexact_reason",
           "DPSolution"]

_NEWTON_ITERS = 200
_FP_ITERS = 200
_FP_TOL = 1e-13


@njit(cache=True, inline="always")
def _prob(d, c, k, poisson, cap):
    """A side's fill probability at depth d: ``min(cap, c e^{-k d})`` (linear) or
    ``1 - exp(-c e^{-k d})`` (poisson; ``cap`` unused). The intensity market's cap is 1; the
    informed-flow market's (module docstring, "Arrival classes") is the arrival probability."""
    lam = c * math.exp(-k * d)
    if poisson:
        return -math.expm1(-lam)
    return min(cap, lam)


@njit(cache=True)
def _best_depth(e, c, k, poisson, tick, cap):
    """argmax_d p(d) (d + e) for one side (module docstring), on the tick grid if tick > 0."""
    if poisson:
        # root of h(x) = x + (exp(e^x) - 1) e^{-x} - C, x = ln(lambda), C = ln c + k e
        big_c = math.log(c) + k * e
        hi = big_c - 1.0  # h(C - 1) >= 0 since (e^l - 1)/l >= 1
        if hi < -30.0:
            d = (math.log(c) - hi) / k  # lambda ~ 0: the linear solution is exact to O(lambda)
        else:
            lo = -40.0
            while lo + 1.0 + 1e-300 > big_c:  # guarantees h(lo) < 0
                lo -= 20.0
            # safeguarded Newton (Numerical Recipes' rtsafe): bisect whenever the Newton step
            # leaves the bracket or does not halve it (the double exponential stalls plain Newton)
            hi = min(hi, math.log(2.0 * (big_c - 1.0 - lo)))  # g(l) >= 1 + l/2 bounds the root
            x = 0.5 * (lo + hi)
            dx_old = hi - lo
            dx = dx_old
            for _ in range(_NEWTON_ITERS):
                lam = math.exp(x)
                g = math.expm1(lam) / lam
                h = x + g - big_c
                dh = 1.0 + math.exp(lam) - g  # h'(x)
                if h > 0.0:
                    hi = x
                else:
                    lo = x
                if (not np.isfinite(h) or not np.isfinite(dh) or ((x - hi) * dh - h) * ((x - lo) * dh - h) > 0.0
                        or abs(2.0 * h) > abs(dx_old * dh)):
                    dx_old = dx
                    dx = 0.5 * (hi - lo)
                    x = lo + dx
                else:
                    dx_old = dx
                    dx = h / dh
                    x = x - dx
                if abs(dx) < 1e-13 * (1.0 + abs(x)) or hi - lo < 1e-13 * (1.0 + abs(x)):
                    break
            d = (math.log(c) - x) / k
    else:
        d = max(1.0 / k - e, math.log(c / cap) / k)  # saturation depth ln(c/cap)/k
    if tick > 0.0:
        lo_d = math.floor(d / tick) * tick
        hi_d = lo_d + tick
        g_lo = _prob(lo_d, c, k, poisson, cap) * (lo_d + e)
        g_hi = _prob(hi_d, c, k, poisson, cap) * (hi_d + e)
        d = lo_d if g_lo >= g_hi else hi_d
    return d


@njit(cache=True, inline="always")
def _step_gain(p_b, p_a, d_b, d_a, db_gain, da_gain, s, lots_b, lots_a, fee):
    """The one-step gain over doing nothing of quoting ``(d_b, d_a)`` that fill with probabilities
    ``(p_b, p_a)``: ``p_b (m_b (d_b - f) + D_b) + p_a (m_a (d_a - f) + D_a) - p_b p_a S`` (module
    docstring; ``m`` the lots a fill takes, ``S = D_b + D_a - D_both`` the coupling of the outcome
    where both sides fill). The one rule both the maximisation and the policy evaluation use."""
    return (p_b * (lots_b * (d_b - fee) + db_gain) + p_a * (lots_a * (d_a - fee) + da_gain)
            - p_b * p_a * s)


@njit(cache=True)
def _best_response_pair(p_start, bid_first, can_b, can_a, db_gain, da_gain, s, c_b, c_a, k_b, k_a,
                        poisson, fee, tick, lots_b, lots_a, cap_b, cap_a):
    """Iterate the two sides' best responses to a fixed point from one starting probability.

    Returns (d_b, d_a, gain) with gain = :func:`_step_gain`. For a fixed ask the bid maximises
    ``p_b (d_b - f + (D_b - p_a S) / m_b)``: :func:`_best_depth` with ``e = (D_b - p_a S)/m_b - f``.
    """
    p_b = p_start if not bid_first else 0.0
    p_a = p_start if bid_first else 0.0
    d_b = np.nan  # no previous iterate: the first pass never counts as converged
    d_a = np.nan
    for it in range(_FP_ITERS):
        if bid_first or it > 0:
            d_b_new = _best_depth((db_gain - p_a * s) / lots_b - fee, c_b, k_b, poisson, tick, cap_b)
            p_b = _prob(d_b_new, c_b, k_b, poisson, cap_b) if can_b else 0.0
        else:
            d_b_new = d_b
        d_a_new = _best_depth((da_gain - p_b * s) / lots_a - fee, c_a, k_a, poisson, tick, cap_a)
        p_a = _prob(d_a_new, c_a, k_a, poisson, cap_a) if can_a else 0.0
        if not bid_first and it == 0:
            d_b_new = _best_depth((db_gain - p_a * s) / lots_b - fee, c_b, k_b, poisson, tick, cap_b)
            p_b = _prob(d_b_new, c_b, k_b, poisson, cap_b) if can_b else 0.0
        done = (abs(d_b_new - d_b) <= _FP_TOL * (1.0 + abs(d_b))
                and abs(d_a_new - d_a) <= _FP_TOL * (1.0 + abs(d_a)))
        d_b = d_b_new
        d_a = d_a_new
        if done:
            break
    return d_b, d_a, _step_gain(p_b, p_a, d_b, d_a, db_gain, da_gain, s, lots_b, lots_a, fee)


@njit(cache=True)
def _one_step(db_gain, da_gain, s, can_b, can_a, c_b, c_a, k_b, k_a, poisson, fee, tick, lots_b,
              lots_a, cap_b, cap_a):
    """The general one-step quoting problem at one state: ``max`` over the two depths of
    :func:`_step_gain` (``D_b``, ``D_a`` the one-fill gains, ``S`` the coupling, ``m_b``, ``m_a`` the
    lots a fill takes; a side with ``can_* = False`` never fills). Every scenario's recursion calls
    this one solver with its own gains (the intensity market: ``S = D_b + D_a``, one lot).

    The product term can make the problem non-concave (with a strongly concave W, both sides
    filling together, which keeps q, can beat either alone): best-response iteration then has
    several fixed points. Each side's problem is concave in its own fill probability, and the joint
    problem is supermodular (S < 0) or submodular (S > 0) in (p_b, p_a), so its extreme fixed points
    are reached from the corners: the iteration is started from the four corners (bid or ask
    first, the other side's probability 0 or 1) and the best fixed point is kept.

    Returns:
        (d_b, d_a, gain): the best depths and their gain over not filling.
    """
    best = -np.inf
    best_b = 0.0
    best_a = 0.0
    for start in range(4):
        p_start = 1.0 if start % 2 == 1 else 0.0
        if (start < 2 and not can_a) or (start >= 2 and not can_b):
            if p_start > 0.0:
                continue  # that side never fills
        d_b, d_a, gain = _best_response_pair(p_start, start < 2, can_b, can_a, db_gain, da_gain,
                                             s, c_b, c_a, k_b, k_a, poisson, fee, tick, lots_b,
                                             lots_a, cap_b, cap_a)
        if gain > best:
            best = gain
            best_b = d_b
            best_a = d_a
    return best_b, best_a, best


@njit(cache=True, inline="always")
def _sized_gains(w, adj_b, adj_a, j, m_b, m_a):
    """The one-fill gains and the coupling of quoting ``m_b`` bid and ``m_a`` ask lots at inventory
    index ``j`` (module docstring, "Quote sizes"): ``(D_b, D_a, S)`` with ``D_b = W(q+m_b) - W(q)``
    plus the jump on fill's shift of the bid-only outcome, ``D_a`` likewise, ``S = D_b + D_a -
    D_both``, ``D_both = W(q+m_b-m_a) - W(q)``. A side with 0 lots has gain 0 and no coupling.

    ``adj_b[j']`` is the shift of the bid-only outcome ending at inventory index ``j' + 1`` (and
    ``adj_a[j']`` of the ask-only outcome ending at ``j' - 1``: :func:`_jump_corrections`): the
    shift depends on the post-fill inventory only, so ``m_b`` lots read ``adj_b[j + m_b - 1]``."""
    db_gain = w[j + m_b] - w[j] + adj_b[j + m_b - 1] if m_b > 0 else 0.0
    da_gain = w[j - m_a] - w[j] + adj_a[j - m_a + 1] if m_a > 0 else 0.0
    d_both = w[j + m_b - m_a] - w[j] if m_b > 0 and m_a > 0 else 0.0
    return db_gain, da_gain, db_gain + da_gain - d_both


@njit(cache=True)
def _sized_step(u, adj_b, adj_a, j, q_max, max_lots, c_b, c_a, k_b, k_a, poisson, fee, tick, cap_b,
                cap_a):
    """The quoting problem with sizes at inventory index ``j`` (module docstring, "Quote sizes"):
    the best of :func:`_one_step` over every ``(m_b, m_a)`` in ``{0..min(m, Q-q)} x
    {0..min(m, Q+q)}`` with :func:`_sized_gains` of the (one class's) continuation ``u``; a side
    with 0 lots never fills; ties within 1e-12 (relative) go to fewer lots.

    Returns:
        (d_b, d_a, gain, m_b, m_a).
    """
    q = j - q_max
    best = -np.inf
    best_b = 0.0
    best_a = 0.0
    best_mb = 0
    best_ma = 0
    for m_b in range(min(max_lots, q_max - q) + 1):
        for m_a in range(min(max_lots, q_max + q) + 1):
            db_gain, da_gain, s = _sized_gains(u, adj_b, adj_a, j, m_b, m_a)
            d_b, d_a, gain = _one_step(db_gain, da_gain, s, m_b > 0, m_a > 0, c_b, c_a, k_b, k_a,
                                       poisson, fee, tick, float(max(m_b, 1)), float(max(m_a, 1)),
                                       cap_b, cap_a)
            if gain > best + 1e-12 * (1.0 + abs(best)) or best == -np.inf:
                best = gain
                best_b = d_b
                best_a = d_a
                best_mb = m_b
                best_ma = m_a
    return best_b, best_a, best, best_mb, best_ma


@njit(cache=True)
def _quote_step(w, adj_b, adj_a, q_max, c_b, c_a, k_b, k_a, poisson, fee, tick, out_val, out_db,
                out_da):
    """One step's quoting problem at every inventory, given W (values after the step's penalties)
    and the jump on fill's corrections ``adj_b``, ``adj_a`` of the one-fill outcomes (module
    docstring, "Adverse selection"; zeros without it): :func:`_one_step` with one lot per fill and
    the coupling ``S = D_b + D_a`` (both fills keep q)."""
    n_q = w.shape[0]
    for j in range(n_q):
        q = j - q_max
        can_b = q + 1 <= q_max
        can_a = q - 1 >= -q_max
        db_gain = w[j + 1] - w[j] + adj_b[j] if can_b else 0.0
        da_gain = w[j - 1] - w[j] + adj_a[j] if can_a else 0.0
        d_b, d_a, best = _one_step(db_gain, da_gain, db_gain + da_gain, can_b, can_a, c_b, c_a, k_b,
                                   k_a, poisson, fee, tick, 1.0, 1.0, 1.0, 1.0)
        out_db[j] = d_b
        out_da[j] = d_a
        out_val[j] = w[j] + best


@njit(cache=True)
def _penalised(v_next, q_max, pen_dt, phi, alpha, last, damp_coef, out_w):
    """W of the module docstring: the continuation minus the running penalty ``phi q^2 pen_dt``
    (``pen_dt``: :func:`mmgym.sim.ledger.penalty_time`), the dampening and the terminal penalty."""
    for j in range(v_next.shape[0]):
        q = j - q_max
        out_w[j] = v_next[j] - phi * q * q * pen_dt - damp_coef * abs(q)
        if last:
            out_w[j] -= alpha * q * q


@njit(cache=True)
def _hedge_step(quote_val, q_max, h_max, half_spread, eta, taker, nu, out_val, out_v):
    n_q = quote_val.shape[0]
    for j in range(n_q):
        q = j - q_max
        best = quote_val[j]  # v = 0 is always feasible
        best_v = 0
        for v in range(-h_max, h_max + 1):
            q1 = q + v
            if v == 0 or q1 > q_max or q1 < -q_max:
                continue
            av = abs(v)
            val = quote_val[q1 + q_max] - av * (half_spread + eta * av + taker) + nu * v * q1
            # strictly better (ties go to the smaller order)
            if val > best + 1e-12 * (1.0 + abs(best)) or (val >= best - 1e-12 * (1.0 + abs(best)) and av < abs(best_v)):
                best = val
                best_v = v
        out_val[j] = best
        out_v[j] = best_v


@njit(cache=True)
def _continuation(v_next, p_row, out_mix):
    """``sum_{r'} P[r, r'] V_{t+1}(q, r')`` for every q (``v_next``: (R, 2Q+1)); with one regime
    (``P = [[1.0]]``) it is ``V_{t+1}`` exactly."""
    n_r = v_next.shape[0]
    for j in range(v_next.shape[1]):
        acc = p_row[0] * v_next[0, j]
        for rr in range(1, n_r):
            acc += p_row[rr] * v_next[rr, j]
        out_mix[j] = acc


@njit(cache=True)
def _class_gains(u, prob, bid_open, ask_open, adj_b, adj_a, drift, q_max, out_base, out_gb, out_ga,
                 out_s):
    """The one-step problem's constants at every inventory from the arrival classes' values
    (module docstring, "Arrival classes"): ``u`` (C, 2Q+1) holds ``U_c(q') = W_c(q')`` (class c's
    penalised continuation), ``prob`` (C,) the classes' probabilities in this regime, ``bid_open``,
    ``ask_open`` (C,) 1.0 where the class's flow can fill our bid / ask.

    Writes ``base(q) = sum_c P_c U_c(q) + drift q``, the one-fill gains
    ``D_b = sum_c P_c o^b_c (U_c(q+1) - U_c(q)) / p^b + drift + adj_b`` (and the ask's with
    ``-drift``), and the coupling ``S = D_b + D_a - X`` with
    ``X = sum_c P_c o^b_c (..)/p^b + sum_c P_c o^a_c (..)/p^a - sum_c P_c o^b_c o^a_c
    (U_c(q+1) + U_c(q-1) - 2 U_c(q)) / (p^b p^a)`` (0 for one class: the intensity market's
    ``S = D_b + D_a``, bit for bit), ``p^b = sum_c P_c o^b_c`` (and ``p^a``). A side
    whose flow never arrives (``p^b = 0``) or whose fill would breach the bound gets 0."""
    n_c = u.shape[0]
    n_q = u.shape[1]
    p_b = 0.0
    p_a = 0.0
    for c in range(n_c):
        p_b += prob[c] * bid_open[c]
        p_a += prob[c] * ask_open[c]
    for j in range(n_q):
        q = j - q_max
        acc = 0.0
        for c in range(n_c):
            acc += prob[c] * u[c, j]
        if drift != 0.0:
            acc += drift * q
        out_base[j] = acc
        can_b = q + 1 <= q_max and p_b > 0.0
        can_a = q - 1 >= -q_max and p_a > 0.0
        raw_b = 0.0
        raw_a = 0.0
        if can_b:
            for c in range(n_c):
                raw_b += prob[c] * bid_open[c] * (u[c, j + 1] - u[c, j])
            raw_b = raw_b / p_b
            if drift != 0.0:
                raw_b += drift
        if can_a:
            for c in range(n_c):
                raw_a += prob[c] * ask_open[c] * (u[c, j - 1] - u[c, j])
            raw_a = raw_a / p_a
            if drift != 0.0:
                raw_a -= drift
        gb = raw_b + adj_b[j] if can_b else 0.0
        ga = raw_a + adj_a[j] if can_a else 0.0
        x = 0.0
        if can_b and can_a:
            both = 0.0
            for c in range(n_c):
                both += prob[c] * bid_open[c] * ask_open[c] * ((u[c, j + 1] - u[c, j]) + (u[c, j - 1] - u[c, j]))
            x = (raw_b + raw_a) - both / (p_b * p_a)
        out_gb[j] = gb
        out_ga[j] = ga
        out_s[j] = gb + ga - x


@njit(cache=True)
def _class_values(v_next, trans_r, q_max, pen_dt, phi, alpha, last, damp_coef, out_u):
    """``U_c(q') = W(sum_{r'} trans[r, c, r'] V_{t+1}(q', r'))`` for every class c of regime r
    (``trans_r``: (C, R)); one class with ``P = [[1.0]]`` is the intensity market's W."""
    n_q = v_next.shape[1]
    mix = np.empty(n_q)
    for c in range(trans_r.shape[0]):
        _continuation(v_next, trans_r[c], mix)
        _penalised(mix, q_max, pen_dt, phi, alpha, last, damp_coef, out_u[c])


@njit(cache=True)
def _solve(n_steps, q_max, pen_dt, c_b, c_a, k_b, k_a, poisson, phi, alpha, damp_coef, adj_b, adj_a,
           trans, prob, bid_open, ask_open, cap_b, cap_a, drift, fee, tick, hedge_on, h_max,
           half_spread, eta, taker, nu, max_lots, out_value, out_db, out_da, out_v, out_lb, out_la):
    """Backward induction over (t, r, q) (module docstring, "Regimes", "Arrival classes"):
    per-regime parameters are (R,) arrays, the per-step ones (n, R) (``pen_dt``, ``damp_coef``) and
    (n, R, 2Q+1) (``adj_b``, ``adj_a``; "Scheduled events"); ``trans`` (R, C, R) the next regime's
    distribution given the regime and the arrival class, ``prob`` (R, C) the classes'
    probabilities, ``bid_open``/``ask_open`` (C,); ``max_lots`` the quote sizes' m (0: one lot;
    m > 0: "Quote sizes", one arrival class); the outputs carry the regime axis, ``out_value``
    (n_steps + 1, R, 2Q+1), the lots ``out_lb``, ``out_la`` (n_steps, R, 2Q+1) int64."""
    n_q = 2 * q_max + 1
    n_r = trans.shape[0]
    n_c = trans.shape[1]
    u = np.empty((n_c, n_q))
    base = np.empty(n_q)
    g_b = np.empty(n_q)
    g_a = np.empty(n_q)
    g_s = np.empty(n_q)
    quote_val = np.empty(n_q)
    for r in range(n_r):
        for j in range(n_q):
            out_value[n_steps, r, j] = 0.0
    for t in range(n_steps - 1, -1, -1):
        for r in range(n_r):
            _class_values(out_value[t + 1], trans[r], q_max, pen_dt[t, r], phi, alpha,
                          t == n_steps - 1, damp_coef[t, r], u)
            _class_gains(u, prob[r], bid_open, ask_open, adj_b[t, r], adj_a[t, r], drift[r], q_max,
                         base, g_b, g_a, g_s)
            for j in range(n_q):
                q = j - q_max
                if max_lots > 0:
                    d_b, d_a, best, m_b, m_a = _sized_step(
                        u[0], adj_b[t, r], adj_a[t, r], j, q_max, max_lots, c_b[r], c_a[r], k_b[r],
                        k_a[r], poisson, fee, tick, cap_b[r], cap_a[r])
                    out_lb[t, r, j] = m_b
                    out_la[t, r, j] = m_a
                else:
                    d_b, d_a, best = _one_step(g_b[j], g_a[j], g_s[j], q + 1 <= q_max,
                                               q - 1 >= -q_max, c_b[r], c_a[r], k_b[r], k_a[r],
                                               poisson, fee, tick, 1.0, 1.0, cap_b[r], cap_a[r])
                    out_lb[t, r, j] = 1 if q + 1 <= q_max else 0
                    out_la[t, r, j] = 1 if q - 1 >= -q_max else 0
                out_db[t, r, j] = d_b
                out_da[t, r, j] = d_a
                quote_val[j] = base[j] + best
            if hedge_on:
                _hedge_step(quote_val, q_max, h_max, half_spread, eta, taker, nu, out_value[t, r],
                            out_v[t, r])
            else:
                for j in range(n_q):
                    out_value[t, r, j] = quote_val[j]
                    out_v[t, r, j] = 0


@njit(cache=True)
def _evaluate(n_steps, q_max, pen_dt, c_b, c_a, k_b, k_a, poisson, phi, alpha, damp_coef, adj_b, adj_a,
              trans, prob, bid_open, ask_open, cap_b, cap_a, drift, fee, tick, hedge_on, half_spread,
              eta, taker, nu, d_b, d_a, hedge, lots_b, lots_a, out_value):
    """Expected summed reward of a fixed (t, r, q) policy: the same recursion without the max.
    ``lots_b``, ``lots_a``: (n, R, 2Q+1) int64 lots the policy shows, clipped here to the room the
    bound leaves as the kernel clips them; where that is one lot per side (or 0 at the bound) the
    one-lot gains are used, else :func:`_sized_gains` ("Quote sizes", one arrival class)."""
    n_q = 2 * q_max + 1
    n_r = trans.shape[0]
    n_c = trans.shape[1]
    u = np.empty((n_c, n_q))
    base = np.empty(n_q)
    g_b = np.empty(n_q)
    g_a = np.empty(n_q)
    g_s = np.empty(n_q)
    quote_val = np.empty(n_q)
    for r in range(n_r):
        for j in range(n_q):
            out_value[n_steps, r, j] = 0.0
    for t in range(n_steps - 1, -1, -1):
        for r in range(n_r):
            _class_values(out_value[t + 1], trans[r], q_max, pen_dt[t, r], phi, alpha,
                          t == n_steps - 1, damp_coef[t, r], u)
            _class_gains(u, prob[r], bid_open, ask_open, adj_b[t, r], adj_a[t, r], drift[r], q_max,
                         base, g_b, g_a, g_s)
            for j in range(n_q):
                q = j - q_max
                db = d_b[t, r, j]
                da = d_a[t, r, j]
                if tick > 0.0:
                    db = math.ceil(db / tick - 1e-9) * tick
                    da = math.ceil(da / tick - 1e-9) * tick
                m_b = max(0, min(lots_b[t, r, j], q_max - q))
                m_a = max(0, min(lots_a[t, r, j], q_max + q))
                p_b = _prob(db, c_b[r], k_b[r], poisson, cap_b[r]) if m_b > 0 else 0.0
                p_a = _prob(da, c_a[r], k_a[r], poisson, cap_a[r]) if m_a > 0 else 0.0
                if m_b == min(1, q_max - q) and m_a == min(1, q_max + q):  # one lot per side
                    quote_val[j] = base[j] + _step_gain(p_b, p_a, db, da, g_b[j], g_a[j], g_s[j],
                                                        1.0, 1.0, fee)
                else:
                    gb, ga, s = _sized_gains(u[0], adj_b[t, r], adj_a[t, r], j, m_b, m_a)
                    quote_val[j] = base[j] + _step_gain(p_b, p_a, db, da, gb, ga, s, float(m_b),
                                                        float(m_a), fee)
            for j in range(n_q):
                q = j - q_max
                v = hedge[t, r, j] if hedge_on else 0
                q1 = min(q_max, max(-q_max, q + v))
                v = q1 - q
                av = abs(v)
                out_value[t, r, j] = (quote_val[q1 + q_max] - av * (half_spread + eta * av + taker)
                                      + nu * v * q1)


class DPSolution:
    """Result of :func:`solve_optimal`.

    Attributes:
        value: (n_steps + 1, 2Q+1) float64, V_t(q): expected summed reward from step t (index q+Q);
            (n_steps + 1, R, 2Q+1), V_t(r, q), on a scenario with regimes.
        delta_b, delta_a: (n_steps, 2Q+1) float64, optimal depths at post-hedge inventory q
            ((n_steps, R, 2Q+1) with regimes).
        hedge: (n_steps, 2Q+1) int64, optimal market order at pre-hedge inventory q (idem).
        q_max: the bound Q. exact: False when tick rounding made the DP an approximation.
        regimes: R on a scenario with regimes (the middle axis above), else None.
        initial: the regime at the start of an episode (0 without regimes).
        lots_b, lots_a: (n_steps, 2Q+1) int64 (idem), the lots shown per side at post-hedge
            inventory q ("Quote sizes"; without ``action.quote_size``: 1, and 0 on the side the
            bound removes). None when not given (tables built by hand).
    """

    def __init__(self, value, delta_b, delta_a, hedge, q_max, exact, regimes=None, initial=0,
                 lots_b=None, lots_a=None):
        self.value = value
        self.lots_b = lots_b
        self.lots_a = lots_a
        self.delta_b = delta_b
        self.delta_a = delta_a
        self.hedge = hedge
        self.q_max = q_max
        self.exact = exact
        self.regimes = regimes
        self.initial = initial

    def v0(self, q0: int = 0) -> float:
        """V_0(q0) (in the initial regime): the optimal expected objective from inventory q0."""
        if self.regimes is None:
            return float(self.value[0, q0 + self.q_max])
        return float(self.value[0, self.initial, q0 + self.q_max])


def _regimes(config: EnvConfig) -> tuple[Any, bool]:
    """The regimes the DP runs over (:meth:`~mmgym.scenarios.base.Scenario.dp_regimes`) and whether
    the scenario has them; without, the one regime of the ``market`` section, P = [[1]]."""
    from ..scenarios import get as get_scenario
    from ..scenarios.base import RegimeTable

    tab = get_scenario(config.id).dp_regimes(config)
    if tab is not None:
        return tab, True
    m = config.market
    a_b, a_a, k_b, k_a = m.side_params()
    sigma, a_b, a_a, k_b, k_a, xi = (np.array([float(x)]) for x in (m.sigma, a_b, a_a, k_b, k_a,
                                                                     m.adverse_jump))
    return RegimeTable(sigma, a_b, a_a, k_b, k_a, xi, np.ones((1, 1)), 0), False


def _arrivals(config: EnvConfig, tab: Any) -> Any:
    """The arrival classes the DP runs over (:meth:`~mmgym.scenarios.base.Scenario.dp_arrivals`);
    without, one class that always arrives, ``c = A dt``, cap 1, no drift, the regimes' P."""
    from ..scenarios import get as get_scenario
    from ..scenarios.base import ArrivalTable

    arr = get_scenario(config.id).dp_arrivals(config)
    if arr is not None:
        return arr
    n_r = tab.sigma.size
    dt = config.market.dt
    return ArrivalTable(np.ones((n_r, 1)), np.ones(1), np.ones(1),
                        np.ascontiguousarray(np.asarray(tab.P, np.float64)[:, None, :]),
                        np.asarray(tab.a_bid * dt, np.float64), np.asarray(tab.a_ask * dt, np.float64),
                        np.ones(n_r), np.ones(n_r), np.zeros(n_r))


def _arrival_args(p: dict[str, Any]) -> tuple[np.ndarray, ...]:
    """The arrival classes' arrays in :func:`_solve`'s and :func:`_evaluate`'s argument order."""
    return tuple(np.ascontiguousarray(p[k], dtype=np.float64)
                 for k in ("prob", "bid_open", "ask_open", "cap_b", "cap_a", "drift"))


def _schedule(config: EnvConfig) -> tuple[np.ndarray, np.ndarray] | None:
    """The scenario's per-step ``(xi_t, s_t)`` (:meth:`~mmgym.scenarios.base.Scenario.dp_schedule`)."""
    from ..scenarios import get as get_scenario

    return get_scenario(config.id).dp_schedule(config)


def inexact_reason(config: EnvConfig) -> str | None:
    """Why the (t, q) DP of ``config`` is not exact (module docstring, "Tick size"), or None.

    The recursion is exact under the kernel's step rules except when ``market.tick_size > 0`` and
    the mid can leave the tick grid: then the rounded depths depend on the mid's position inside
    the tick. The mid stays on the grid when ``s0`` is a multiple of the tick and every move is one
    (binomial noise with ``sigma sqrt(dt)`` a multiple, or ``sigma = 0``; with the hedge action,
    also the permanent impact ``nu`` per lot; the jump on fill ``market.adverse_jump``), in every
    regime (``regimes.sigma[r]``, ``regimes.adverse_jump[r]``) on a scenario with regimes.
    """
    m, a, im = config.market, config.action, config.impact
    tick = float(m.tick_size)
    if tick <= 0.0:
        return None
    tab, has_regimes = _regimes(config)

    def on_grid(x: float) -> bool:
        return abs(x / tick - round(x / tick)) < 1e-9

    def key(name: str, r: int) -> str:
        return f"regimes.{name}[{r}]" if has_regimes else f"market.{name}"

    off = []
    if not on_grid(m.s0):
        off.append(f"market.s0={m.s0:g} is not a multiple of it")
    for r, sigma in enumerate(tab.sigma.tolist()):
        sq = sigma * math.sqrt(m.dt)
        if sigma != 0.0 and m.mid_noise != "binomial":
            off.append(f"market.mid_noise={m.mid_noise} moves the mid off it")
        elif sigma != 0.0 and not on_grid(sq):
            off.append(f"the mid's step {key('sigma', r)}*sqrt(dt)={sq:.6g} is not a multiple of it"
                       if has_regimes else f"the mid's step sigma*sqrt(dt)={sq:.6g} is not a multiple of it")
    if a.hedge and not on_grid(im.nu):
        off.append(f"impact.nu={im.nu:g} is not a multiple of it")
    for r, xi in enumerate(tab.xi.tolist()):
        if not on_grid(xi):
            off.append(f"{key('adverse_jump', r)}={xi:g} is not a multiple of it")
    sched = _schedule(config)
    if sched is not None:
        if np.any(sched[1] > 0.0):
            off.append("events.jump_std > 0: the gaussian event jump moves the mid off it")
        if not all(on_grid(x) for x in sched[0].tolist()):
            off.append("events.adverse_jump is not a multiple of it")
    if not off:
        return None
    off = list(dict.fromkeys(off))  # one line per reason
    return (f"market.tick_size={tick:g} but the mid leaves the tick grid ({'; '.join(off)}): the "
            f"kernel's rounded quotes then depend on the mid's position inside the tick, which the "
            f"DP over (t, q) does not track")


def _normal_partial(c: np.ndarray, sd: float) -> np.ndarray:
    """E[(c + sd Z)^+], Z ~ N(0, 1): ``c Phi(c/sd) + sd phi(c/sd)`` (the normal partial expectation)."""
    x = c / sd
    return c * special.ndtr(x) + sd * np.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)


def _positive_part_mean(c: np.ndarray, sd: float, binomial: bool, jump_sd: float = 0.0) -> np.ndarray:
    """E[(X + J + c)^+] for the mid's diffusive move X = sd Z (Z standard normal, or +-1 w.p. 1/2)
    plus an independent event jump J ~ N(0, jump_sd^2) (module docstring, "Scheduled events").

    Gaussian: the normal partial expectation with std ``sqrt(sd^2 + jump_sd^2)``; binomial:
    ``((c + sd)^+ + (c - sd)^+) / 2``, or with J the mean of the normal partial expectations at
    ``c +- sd`` with std ``jump_sd``; no noise: ``c^+``.
    """
    c = np.asarray(c, dtype=np.float64)
    if jump_sd > 0.0:
        if binomial:
            return 0.5 * (_normal_partial(c + sd, jump_sd) + _normal_partial(c - sd, jump_sd))
        return _normal_partial(c, math.sqrt(sd * sd + jump_sd * jump_sd))
    if sd == 0.0:
        return np.maximum(c, 0.0)
    if binomial:
        return 0.5 * (np.maximum(c + sd, 0.0) + np.maximum(c - sd, 0.0))
    x = c / sd
    return c * special.ndtr(x) + sd * np.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)


def _jump_corrections(q_max: int, xi: float, sd: float, binomial: bool,
                      damp: float, jump_sd: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """What the jump on fill adds to the one-fill outcomes' gains (module docstring, "Adverse
    selection"), per inventory q (index q + Q): ``(adj_b, adj_a)``, zeros when ``xi = 0``.

    ``adj_b = -xi (q+1) - eta_D (E[(q+1)(X - xi)]^+ - |q+1| E[X^+])`` (our bid fills alone: q' = q+1,
    the mid jumps by -xi), ``adj_a = xi (q-1) - eta_D (E[(q-1)(X + xi)]^+ - |q-1| E[X^+])``; X
    includes an event step's jump of std ``jump_sd`` ("Scheduled events").
    """
    n_q = 2 * q_max + 1
    if xi == 0.0:
        return np.zeros(n_q), np.zeros(n_q)
    q = np.arange(-q_max, q_max + 1, dtype=np.float64)
    e0 = float(_positive_part_mean(np.zeros(1), sd, binomial, jump_sd)[0])

    def damp_extra(q1: np.ndarray, jump: float) -> np.ndarray:
        # E[max(0, q1 (X + J))] = |q1| E[(X + sign(q1) J)^+] (X symmetric), minus W's |q1| E[X^+]
        return np.abs(q1) * (_positive_part_mean(np.sign(q1) * jump, sd, binomial, jump_sd) - e0)

    adj_b = -xi * (q + 1.0)
    adj_a = xi * (q - 1.0)
    if damp > 0.0:
        adj_b -= damp * damp_extra(q + 1.0, -xi)
        adj_a -= damp * damp_extra(q - 1.0, xi)
    return adj_b, adj_a


def _dp_params(config: EnvConfig) -> dict[str, Any]:
    """Kernel constants of the DP (module docstring), per step and regime (``damp_coef`` (n, R),
    ``adj_b``, ``adj_a`` (n, R, 2Q+1)), with tick handling and refusals."""
    m, r, a, im = config.market, config.reward, config.action, config.impact
    if r.objective != "risk_neutral":
        raise ConfigError("optimal: the DP solves the risk-neutral objective; reward.objective "
                          f"must be 'risk_neutral' (got {r.objective!r})")
    tab, has_regimes = _regimes(config)
    binomial = m.mid_noise == "binomial"
    n_r = tab.sigma.size
    n = m.n_steps
    damp_coef = np.empty((n, n_r))
    variance = r.risk_penalty == "variance"
    var_ratio = variance_ratio(tab.sigma, m.sigma) if variance else np.ones(n_r)
    pen_dt = np.empty((n, n_r))
    adj_b = np.empty((n, n_r, 2 * m.max_inventory + 1))
    adj_a = np.empty_like(adj_b)
    sched = _schedule(config)
    if sched is not None and n_r != 1:
        raise ConfigError("optimal: a per-step schedule with regimes is not supported")
    for g in range(n_r):
        sq = float(tab.sigma[g]) * math.sqrt(m.dt)
        e_pos = sq / 2.0 if binomial else sq / math.sqrt(2.0 * math.pi)
        damp_coef[:, g] = r.dampening * e_pos
        pen_dt[:, g] = penalty_time.py_func(variance, m.dt, float(var_ratio[g]), 0.0)
        adj_b[:, g], adj_a[:, g] = _jump_corrections(m.max_inventory, float(tab.xi[g]), sq, binomial,
                                                     float(r.dampening))
        if sched is None:
            continue
        done: dict[tuple[float, float], tuple[float, np.ndarray, np.ndarray]] = {}
        for t, (xi_t, sd_t) in enumerate(zip(sched[0].tolist(), sched[1].tolist())):
            if (xi_t, sd_t) not in done:
                e_t = e_pos if sd_t == 0.0 else float(_positive_part_mean(np.zeros(1), sq, binomial, sd_t)[0])
                done[xi_t, sd_t] = (r.dampening * e_t, *_jump_corrections(
                    m.max_inventory, xi_t, sq, binomial, float(r.dampening), sd_t))
            damp_coef[t, g], adj_b[t, g], adj_a[t, g] = done[xi_t, sd_t]
            if sd_t != 0.0:
                pen_dt[t, g] = penalty_time.py_func(variance, m.dt, float(var_ratio[g]),
                                                    sd_t ** 2 / m.sigma ** 2 if variance else 0.0)
    tick = float(m.tick_size)
    exact = inexact_reason(config) is None
    arr = _arrivals(config, tab)
    if a.quote_size > 0 and (np.asarray(arr.prob).shape[1] != 1 or np.any(np.asarray(arr.drift) != 0.0)):
        raise ConfigError("optimal: action.quote_size > 0 is solved for one arrival class (the "
                          f"intensity-market family); {config.id} has arrival classes")
    return dict(
        n_steps=m.n_steps, q_max=m.max_inventory, dt=m.dt, c_b=arr.c_b, c_a=arr.c_a,
        prob=arr.prob, bid_open=arr.bid_open, ask_open=arr.ask_open, cap_b=arr.cap_b,
        cap_a=arr.cap_a, drift=arr.drift,
        k_b=np.asarray(tab.k_bid, np.float64), k_a=np.asarray(tab.k_ask, np.float64),
        poisson=m.fill_rule == "poisson", phi=r.inventory_penalty,
        alpha=r.terminal_penalty, damp_coef=damp_coef, pen_dt=pen_dt, adj_b=adj_b, adj_a=adj_a,
        trans=np.ascontiguousarray(arr.trans, dtype=np.float64), fee=r.maker_fee,
        tick=tick if exact else 0.0, hedge_on=bool(a.hedge), h_max=a.hedge_max_lots,
        half_spread=im.half_spread, eta=im.eta, taker=r.taker_fee, nu=im.nu, exact=exact,
        raw_tick=tick, regimes=n_r if has_regimes else None, initial=int(tab.initial),
        max_lots=int(a.quote_size),
    )


def solve_optimal(config: EnvConfig) -> DPSolution:
    """Solve the exact discrete-time optimum of ``config`` (module docstring) by backward DP.

    Returns:
        :class:`DPSolution` with V_t(q), the depth tables, the hedge table and the lot tables (with
        a regime axis on a scenario with regimes).

    Raises:
        ConfigError: for a CARA objective.
    """
    p = _dp_params(config)
    n, q_max = p["n_steps"], p["q_max"]
    n_q = 2 * q_max + 1
    n_r = p["trans"].shape[0]
    value = np.empty((n + 1, n_r, n_q))
    d_b = np.empty((n, n_r, n_q))
    d_a = np.empty((n, n_r, n_q))
    hedge = np.zeros((n, n_r, n_q), dtype=np.int64)
    lots_b = np.zeros((n, n_r, n_q), dtype=np.int64)
    lots_a = np.zeros((n, n_r, n_q), dtype=np.int64)
    _solve(n, q_max, p["pen_dt"], p["c_b"], p["c_a"], p["k_b"], p["k_a"], p["poisson"], p["phi"],
           p["alpha"], p["damp_coef"], p["adj_b"], p["adj_a"], p["trans"], *_arrival_args(p), p["fee"], p["tick"],
           p["hedge_on"], p["h_max"], p["half_spread"], p["eta"], p["taker"], p["nu"],
           p["max_lots"], value, d_b, d_a, hedge, lots_b, lots_a)
    if not p["exact"]:
        warnings.warn(
            f"optimal: not exact: {inexact_reason(config)}; the DP solves the tick-free problem "
            "and quotes delta* - tick/2", stacklevel=2)
        d_b = d_b - 0.5 * p["raw_tick"]
        d_a = d_a - 0.5 * p["raw_tick"]
    if p["regimes"] is None:  # the intensity market: no regime axis
        value, d_b, d_a, hedge = value[:, 0], d_b[:, 0], d_a[:, 0], hedge[:, 0]
        lots_b, lots_a = lots_b[:, 0], lots_a[:, 0]
    return DPSolution(value, d_b, d_a, hedge, q_max, p["exact"], p["regimes"], p["initial"],
                      lots_b, lots_a)


def _tables(x: Any, n: int, n_r: int, n_q: int, dtype: type) -> np.ndarray:
    """A policy table as (n, R, 2Q+1): a (t, r, q) table as it is, a (t, q) one (or anything
    broadcasting to it) the same in every regime."""
    x = np.asarray(x, dtype=dtype)
    if x.ndim == 3:
        return np.ascontiguousarray(np.broadcast_to(x, (n, n_r, n_q)))
    x = np.broadcast_to(x, (n, n_q))
    return np.ascontiguousarray(np.broadcast_to(x[:, None, :], (n, n_r, n_q)))


def evaluate_tables(config: EnvConfig, delta_b: np.ndarray, delta_a: np.ndarray,
                    hedge: np.ndarray | None = None, lots_b: np.ndarray | None = None,
                    lots_a: np.ndarray | None = None) -> np.ndarray:
    """Exact expected summed reward V_t(q) of a fixed policy (same recursion, no max).

    Args:
        config: the environment.
        delta_b, delta_a: (n_steps, 2Q+1) depths at post-hedge inventory; on a scenario with
            regimes also (n_steps, R, 2Q+1), a regime-dependent policy (a (t, q) table is the same
            in every regime: the static baselines).
        hedge: (n_steps, 2Q+1) (or (n_steps, R, 2Q+1)) int market orders at pre-hedge inventory
            (ignored without the hedge action).
        lots_b, lots_a: (n_steps, 2Q+1) (or (n_steps, R, 2Q+1)) int lots shown per side at
            post-hedge inventory, clipped to the room the bound leaves as the kernel clips them
            (module docstring, "Quote sizes"); None: one lot (the static baselines' sizes). Lots
            above 1 need ``action.quote_size`` (a ValueError names the largest allowed).

    Returns:
        (n_steps + 1, 2Q+1) float64 values ((n_steps + 1, R, 2Q+1) with regimes). Exact when
        :func:`inexact_reason` is None (with a tick-aligned mid the policy's depths are rounded as
        the kernel rounds them); otherwise the values of the tick-free problem with the unrounded
        depths, not of this env.
    """
    p = _dp_params(config)
    n, q_max = p["n_steps"], p["q_max"]
    n_q = 2 * q_max + 1
    n_r = p["trans"].shape[0]
    delta_b = _tables(delta_b, n, n_r, n_q, np.float64)
    delta_a = _tables(delta_a, n, n_r, n_q, np.float64)
    hedge = np.zeros((n, n_r, n_q), np.int64) if hedge is None else _tables(hedge, n, n_r, n_q, np.int64)
    lots = []
    for name, x in (("lots_b", lots_b), ("lots_a", lots_a)):
        x = np.ones((n, n_r, n_q), np.int64) if x is None else _tables(x, n, n_r, n_q, np.int64)
        top = max(1, p["max_lots"])
        if x.min() < 0 or x.max() > top:
            raise ValueError(f"{name}: lots must be in 0..{top} (action.quote_size = "
                             f"{p['max_lots']}), got {x.min()}..{x.max()}")
        lots.append(x)
    value = np.empty((n + 1, n_r, n_q))
    _evaluate(n, q_max, p["pen_dt"], p["c_b"], p["c_a"], p["k_b"], p["k_a"], p["poisson"], p["phi"],
              p["alpha"], p["damp_coef"], p["adj_b"], p["adj_a"], p["trans"], *_arrival_args(p),
              p["fee"], p["raw_tick"] if p["exact"] else 0.0,
              p["hedge_on"], p["half_spread"], p["eta"], p["taker"], p["nu"], delta_b, delta_a,
              hedge, lots[0], lots[1], value)
    return value[:, 0] if p["regimes"] is None else value


def policy_value(config: EnvConfig, delta_b: np.ndarray, delta_a: np.ndarray,
                 hedge: np.ndarray | None = None, lots_b: np.ndarray | None = None,
                 lots_a: np.ndarray | None = None) -> float:
    """:func:`evaluate_tables` at the episode's start: V_0(q0) (in the initial regime)."""
    value = evaluate_tables(config, delta_b, delta_a, hedge, lots_b, lots_a)
    j0 = config.market.q0 + config.market.max_inventory
    if value.ndim == 3:
        return float(value[0, _regimes(config)[0].initial, j0])
    return float(value[0, j0])


class OptimalPolicy(DepthPolicy):
    """``optimal``: the exact optimum of the env's own discrete-time problem (module docstring).

    This is the physical limit an RL agent on the same env is measured against: no policy of the
    raw-depth action set (and of the normalised action sets, which are subsets of it) has a larger
    expected summed reward. ``v0`` is V_0(q0). On a scenario with regimes it quotes by the current
    regime (read from the market's ``regime`` field); when the agent does not observe the regime
    (``Scenario.optimal_label``) it is an oracle, an upper bound, not an achievable optimum.

    Args:
        config: the environment config (risk-neutral objective).
    """

    name = "optimal"

    def __init__(self, config: EnvConfig):
        super().__init__(config)
        from ..scenarios import get as get_scenario

        self.solution = solve_optimal(config)
        self.exact = self.solution.exact
        self.v0 = self.solution.v0(config.market.q0)
        self.label = get_scenario(config.id).optimal_label(config)
        self._regime = None  # (N, 1) the market's regimes while acting

    def act(self, market, out=None):
        if self.solution.regimes is None:
            return super().act(market, out)
        from ..scenarios import get as get_scenario

        self._regime = get_scenario(self.config.id).dp_state(market)[:, None]
        try:
            return super().act(market, out)
        finally:
            self._regime = None

    def _index(self, step, q):
        j = np.asarray(q, dtype=np.int64) + self.mp.max_inventory
        t = np.minimum(np.asarray(step, dtype=np.int64), self.mp.n_steps - 1)
        if self.solution.regimes is None:
            return t, j
        # outside act (surfaces, plots): the initial regime
        r = self.solution.initial if self._regime is None else self._regime
        return t, r, j

    def _depths(self, step, q):
        idx = self._index(step, q)
        return self.solution.delta_b[idx], self.solution.delta_a[idx]

    def _hedge(self, step, q):
        return self.solution.hedge[self._index(step, q)]

    def _lots(self, step, q):
        idx = self._index(step, q)
        return self.solution.lots_b[idx], self.solution.lots_a[idx]

    def tables(self):
        if self.solution.regimes is None:
            return super().tables()
        return self.solution.delta_b, self.solution.delta_a, self.solution.hedge

    def size_tables(self):
        if self.solution.regimes is None or self.config.action.quote_size == 0:
            return super().size_tables()
        return self.solution.lots_b, self.solution.lots_a

    def describe(self):
        out = {"name": self.name, "v0": self.v0, "exact": self.exact}
        if self.label is not None:
            out["label"] = self.label
        return out

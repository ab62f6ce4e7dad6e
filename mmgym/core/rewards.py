"""Reward terms shared by every market kernel (intensity market, limit order book).

One step's reward is the change in marked-to-market wealth minus the risk penalties of Cartea,
Jaimungal & Penalva (2015, ch. 10, eq. 10.2 discretised): ``dW - phi q^2 dt - [last] alpha q_T^2``,
optionally minus Spooner et al.'s (2018) asymmetric dampening ``max(0, eta q dS)``, and with a
CARA objective the wealth increments are replaced by the terminal utility
``(1 - exp(-g W_T)) / g`` of the episode's wealth change (exponent capped at 700 so that a huge
loss stays finite). Market-order impact and fees are inside ``dW``; they are reported as their own
terms and added back to ``pnl`` so that the terms sum to the reward.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, inline="always")
def reward_terms(dw, impact_cost, fees, q, ds, dt, phi, alpha, last, damp, cara, cara_gamma,
                 episode_wealth_change):
    """The step's reward terms, in the order of ``TERM_NAMES``.

    Args:
        dw: change of cash + q mid over the step, net of impact and fees (price units).
        impact_cost, fees: market-order cost against the pre-trade mid, and all fees (>= 0 costs).
        q: inventory after the step's fills (lots). ds: the mid's change over the step.
        dt, phi, alpha: step length, running and terminal inventory penalties.
        last: whether this is the episode's last step.
        damp: dampening eta (0 disables). cara, cara_gamma: CARA objective and its risk aversion.
        episode_wealth_change: W_T - W_0, used on the last step of a CARA objective.

    Returns:
        (pnl, impact, fees, inventory_penalty, terminal_penalty, dampening, utility, reward).
    """
    t_pnl = dw + impact_cost + fees
    t_inv = -phi * q * q * dt
    t_term = -alpha * q * q if last else 0.0
    t_damp = -max(0.0, damp * q * ds) if damp > 0.0 else 0.0
    t_util = 0.0
    if cara:
        t_util = -dw
        if last:
            t_util += -np.expm1(min(700.0, -cara_gamma * episode_wealth_change)) / cara_gamma
    reward = t_pnl - impact_cost - fees + t_inv + t_term + t_damp + t_util
    return t_pnl, -impact_cost, -fees, t_inv, t_term, t_damp, t_util, reward

"""Statistics of evaluation runs: per-policy summaries and paired differences with t intervals."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import special, stats

if TYPE_CHECKING:  # pragma: no cover
    from .runner import EpisodeBatch

__all__ = ["summarize", "paired_difference", "mean_se"]


def mean_se(x: np.ndarray) -> tuple[float, float, float]:
    """(mean, standard deviation, standard error of the mean) of a sample."""
    x = np.asarray(x, dtype=np.float64)
    n = x.size
    std = float(np.std(x, ddof=1)) if n > 1 else 0.0
    return float(np.mean(x)), std, std / math.sqrt(n) if n > 0 else float("nan")


def summarize(batch: EpisodeBatch, gamma: float) -> dict[str, Any]:
    """Summary metrics of one policy's episodes.

    ``certainty_equivalent`` is the CARA certainty equivalent of the episode PnL at risk aversion
    ``gamma``: CE = -(1/gamma) ln E[exp(-gamma PnL)] (the AS 2008 objective's utility, computed with
    scipy's logsumexp). ``sharpe`` is mean/std of the episode PnL (not annualised).
    """
    obj_mean, obj_std, obj_se = mean_se(batch.objective)
    pnl_mean, pnl_std, pnl_se = mean_se(batch.pnl)
    n = batch.pnl.size
    ce = float(-(special.logsumexp(-gamma * batch.pnl) - math.log(n)) / gamma)
    spread = batch.spread[np.isfinite(batch.spread)]
    return {
        "episodes": int(n),
        "objective_mean": obj_mean,
        "objective_std": obj_std,
        "objective_se": obj_se,
        "pnl_mean": pnl_mean,
        "pnl_std": pnl_std,
        "pnl_se": pnl_se,
        "sharpe": pnl_mean / pnl_std if pnl_std > 0 else float("nan"),
        "certainty_equivalent": ce,
        "spread_mean": float(spread.mean()) if spread.size else float("nan"),
        "final_inventory_mean": float(batch.final_inventory.mean()),
        "final_inventory_std": float(batch.final_inventory.std(ddof=1)) if n > 1 else 0.0,
        "abs_inventory_mean": float(batch.abs_inventory.mean()),
        "max_abs_inventory_mean": float(batch.max_abs_inventory.mean()),
        "fills_mean": float(batch.fills.mean()),
        "impact_cost_mean": float(batch.impact_cost.mean()),
        "fees_mean": float(batch.fees.mean()),
        "hedge_lots_mean": float(batch.hedge_lots.mean()),
        "inventory_penalty_mean": float(batch.inventory_penalty.mean()),
        "terminal_penalty_mean": float(batch.terminal_penalty.mean()),
    }


def paired_difference(x: np.ndarray, ref: np.ndarray, level: float = 0.95) -> dict[str, Any]:
    """Mean of the paired differences x - ref with its standard error and a t confidence interval."""
    d = np.asarray(x, dtype=np.float64) - np.asarray(ref, dtype=np.float64)
    mean, std, se = mean_se(d)
    n = d.size
    half = float(stats.t.ppf(0.5 + level / 2, n - 1)) * se if n > 1 else float("inf")
    return {"mean": mean, "se": se, "ci95": [mean - half, mean + half]}


# ---------------------------------------------------------------------------- evaluation ---

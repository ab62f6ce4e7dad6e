"""Statistics of evaluation runs: per-policy summaries and paired differences with t intervals,
and the same over several training seeds of one agent (:func:`across_seeds`,
:func:`paired_across_seeds`)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import special, stats

if TYPE_CHECKING:  # pragma: no cover
    from .runner import EpisodeBatch

__all__ = ["summarize", "paired_difference", "mean_se", "across_seeds", "paired_across_seeds"]


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


# -------------------------------------------------------------------------- training seeds ---
def across_seeds(x: np.ndarray, level: float = 0.95) -> dict[str, Any]:
    """One agent trained over S seeds, each run on the same E episodes: ``x`` is (S, E).

    Returns ``mean`` (the mean over seeds of the per-seed means), ``seed_means`` (S,),
    ``seeds_std`` (their standard deviation), ``seeds_ci95`` (the t-interval with S - 1 degrees of
    freedom over the per-seed means: the spread of training) and ``se`` (the episodes' standard
    error: of the seed-averaged value per episode, ``mean(x, axis=0)``, over the E episodes).
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"across_seeds: expected (seeds >= 2, episodes) values, got shape {x.shape}")
    seed_means = x.mean(axis=1)
    mean, std, se_seeds = mean_se(seed_means)
    half = float(stats.t.ppf(0.5 + level / 2, seed_means.size - 1)) * se_seeds
    return {"mean": mean, "seed_means": seed_means.tolist(), "seeds_std": std,
            "seeds_ci95": [mean - half, mean + half], "se": mean_se(x.mean(axis=0))[2]}


def paired_across_seeds(x: np.ndarray, ref: np.ndarray, level: float = 0.95) -> dict[str, Any]:
    """Paired difference of an agent over S training seeds (``x``, (S, E)) against one reference
    run on the same E episodes (``ref``, (E,)), with an interval for both sources of noise.

    ``mean`` is the mean over seeds of the per-seed paired means ``d_s = mean_e(x[s, e] - ref[e])``.
    Its standard error combines ``se_seeds`` (the SE of the mean of the S values d_s: training)
    and ``se_episodes`` (the SE over the E episodes of the seed-averaged difference
    ``mean_s(x[s, e] - ref[e])``: the episodes all seeds share), ``se = sqrt(se_seeds**2 +
    se_episodes**2)`` (conservative: the seed-by-episode interaction is in both terms); ``ci95`` is
    ``mean ± t(dof) * se`` with Welch–Satterthwaite degrees of freedom
    ``dof = se**4 / (se_seeds**4 / (S - 1) + se_episodes**4 / (E - 1))``, which lies between S - 1
    (training noise dominates) and S + E - 2 (episode noise dominates).
    """
    x = np.asarray(x, dtype=np.float64)
    d = x - np.asarray(ref, dtype=np.float64)[None, :]
    n_seeds, n_episodes = d.shape
    if n_seeds < 2 or n_episodes < 2:
        raise ValueError(f"paired_across_seeds: expected >= 2 seeds and >= 2 episodes, got shape {d.shape}")
    seed_means = d.mean(axis=1)
    mean, _, se_seeds = mean_se(seed_means)
    se_episodes = mean_se(d.mean(axis=0))[2]
    var = se_seeds**2 + se_episodes**2
    denom = se_seeds**4 / (n_seeds - 1) + se_episodes**4 / (n_episodes - 1)
    dof = var**2 / denom if denom > 0 else float(n_seeds + n_episodes - 2)
    half = float(stats.t.ppf(0.5 + level / 2, dof)) * math.sqrt(var)
    return {"mean": mean, "seed_means": seed_means.tolist(), "se": math.sqrt(var), "se_seeds": se_seeds,
            "se_episodes": se_episodes, "dof": dof, "ci95": [mean - half, mean + half]}

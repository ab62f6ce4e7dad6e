"""Evaluate policies on common random numbers: the runner, its statistics and its figures.

- :mod:`~mmgym.evaluation.runner`: run baselines and callables on identical scenarios
  (:func:`run_policy`, :func:`run_evaluation`, :func:`evaluate_agents`, :func:`depth_surface`);
- :mod:`~mmgym.evaluation.stats`: summaries and paired differences (:func:`summarize`,
  :func:`paired_difference`), and over training seeds (:func:`across_seeds`,
  :func:`paired_across_seeds`, applied to an evaluation by :func:`aggregate_seeds`);
- :mod:`~mmgym.evaluation.plots`: the figures (:func:`write_plots`, matplotlib imported lazily).

Trained stable-baselines3 models are loaded by :mod:`mmgym.agents.policies`.
"""

from .plots import write_plots
from .runner import (
                     AUDIT_COLUMNS,
                     EpisodeBatch,
                     EvaluationResult,
                     ObsPolicy,
                     Policy,
                     aggregate_seeds,
                     audit_columns,
                     clear_cache,
                     default_reference,
                     depth_surface,
                     evaluate_agents,
                     get_baseline,
                     run_evaluation,
                     run_policy,
)
from .stats import across_seeds, mean_se, paired_across_seeds, paired_difference, summarize

__all__ = [
    "AUDIT_COLUMNS",
    "EpisodeBatch",
    "EvaluationResult",
    "ObsPolicy",
    "Policy",
    "across_seeds",
    "aggregate_seeds",
    "audit_columns",
    "clear_cache",
    "default_reference",
    "depth_surface",
    "evaluate_agents",
    "get_baseline",
    "mean_se",
    "paired_across_seeds",
    "paired_difference",
    "run_evaluation",
    "run_policy",
    "summarize",
    "write_plots",
]

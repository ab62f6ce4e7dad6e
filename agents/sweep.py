"""Hyperparameter sweeps on Ray Tune: ``mmgym sweep SWEEP.yaml`` (``python -m mmgym.agents.sweep``).

It lives in ``agents/`` because its trials train (torch, stable-baselines3).

A sweep file names a base experiment and a search space over any of its config keys::

    base: ppo_cjp.yaml                 # the experiment (a path relative to this file)
    name: lr_sweep                     # the sweep's folder under storage
    storage: runs/sweeps               # where trials write (a shared path or URI on a cluster)
    space:                             # key path: one distribution
      agent.kwargs.learning_rate: {loguniform: [1.0e-4, 1.0e-3]}
      agent.kwargs.n_epochs: {choice: [5, 10]}
      agent.kwargs.clip_range: {grid: [0.1, 0.2]}   # every value (Ray's grid_search)
    seeds: [0, 1, 2]                   # training seeds: a grid axis (every sample x every seed)
    num_samples: 4                     # samples of the random part of the space
    chunks: 4                          # reports per trial (ASHA decides after each)
    set: [train.total_timesteps=200000]   # fixed overrides of the base
    scheduler: {asha: {grace_period: 1, reduction_factor: 2}}   # or `scheduler: none`

Each trial is a Ray Tune *function trainable* with one CPU: it builds the experiment from the base
plus its sample (``--set`` semantics, validated by the config schema), trains it with
:func:`mmgym.agents.train.train` in ``chunks`` parts (each part resumes the last: SB3 state, VecNormalize
statistics and the TensorBoard curves continue), and after each part reports:

- ``score``: the agent's final evaluation objective as a percentage of the exact optimum's
  (``optimal`` in ``train.eval_baselines`` and the env's DP exact for the config); otherwise the
  agent's objective minus the reference baseline's (``reference``, default ``as``);
- ``objective``, and each evaluated baseline's objective.

ASHA (Li et al. 2020, "A system for massively parallel hyperparameter tuning", MLSys) stops the
weaker trials early on ``score``. Evaluation seeds are the config's ``eval.seed`` scenarios,
disjoint from the training streams by construction (:data:`mmgym.envs.market.TRAINING_STREAMS`).

Locally ``ray.init()`` needs no set-up; ``--address`` (or ``RAY_ADDRESS``) joins a running cluster,
and ``storage`` must then be a path every node sees (NFS, S3 URI). The driver compiles the
scenario's kernels before any trial starts, so trials only read the numba cache (concurrent cache
writes are a known numba problem).

Output, in ``<storage>/<name>/``: each trial's run directory (``<trial>/run``: model, checkpoints,
``tb/``), so ``tensorboard --logdir <storage>/<name>`` shows every trial; ``results.csv`` and the
printed table (rank, sampled values, score mean ± 95 % CI over seeds, t-interval); ``best.yaml``,
the best configuration as a ready-to-run experiment (``python train.py best.yaml``).
"""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, field_validator

from mmgym.cli import OneLineParser
from mmgym.config import ConfigError, _validate, load_config, load_yaml
from mmgym.schema import Section

__all__ = ["SweepConfig", "load_sweep", "run_sweep", "summarize", "main"]

DISTRIBUTIONS = ("loguniform", "uniform", "choice", "grid", "randint")


class AshaConfig(Section):
    """ASHA early stopping (``ray.tune.schedulers.ASHAScheduler``) over the trial's reports."""

    grace_period: int = Field(1, ge=1)
    """Reports every trial gets before it can be stopped."""
    reduction_factor: float = Field(2.0, gt=1.0)
    """Keep the top 1/reduction_factor at each rung."""


class SchedulerConfig(Section):
    """The trial scheduler (``asha``, or none: every trial runs to the end)."""

    asha: AshaConfig | None = AshaConfig()


class SweepConfig(Section):
    """A sweep file (module docstring)."""

    base: str
    """The experiment YAML, relative to the sweep file (or absolute)."""
    name: str = Field("sweep", pattern=r"^[A-Za-z0-9_.-]+$")
    """The sweep's folder under ``storage``."""
    storage: str = "runs/sweeps"
    """Where trials write (relative to the current directory; a shared path or URI on a cluster)."""
    space: dict[str, dict[str, Any]] = {}
    """Config key path -> one distribution: loguniform/uniform [low, high], randint [low, high),
    choice [values], grid [values]."""
    seeds: list[int] = Field([0], min_length=1)
    """Training seeds (train.seed): a grid axis."""
    num_samples: int = Field(1, ge=1)
    """Samples of the random part of the space (each runs every seed and grid value)."""
    chunks: int = Field(4, ge=1)
    """Reports per trial: training is split into this many resumed parts."""
    set: list[str] = []
    """Fixed overrides of the base (KEY=VALUE, as train.py --set)."""
    reference: str = "as"
    """The baseline the score is measured against when there is no exact optimum."""
    scheduler: SchedulerConfig | None = SchedulerConfig()
    """Early stopping; ``none`` runs every trial to the end."""
    cpus_per_trial: float = Field(1.0, gt=0)
    """CPUs Ray reserves per trial (torch runs one thread)."""

    @field_validator("space")
    @classmethod
    def _one_distribution(cls, space: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        for key, dist in space.items():
            if len(dist) != 1 or next(iter(dist)) not in DISTRIBUTIONS:
                raise ValueError(f"{key}: one of {', '.join(DISTRIBUTIONS)} (got {dist!r})")
            kind, args = next(iter(dist.items()))
            if not isinstance(args, list) or not args:
                raise ValueError(f"{key}.{kind}: a non-empty list (got {args!r})")
            if kind in ("loguniform", "uniform", "randint"):
                if len(args) != 2 or not all(isinstance(a, (int, float)) for a in args) or not args[0] < args[1]:
                    raise ValueError(f"{key}.{kind}: [low, high] with low < high (got {args!r})")
                if kind == "loguniform" and args[0] <= 0:
                    raise ValueError(f"{key}.loguniform: low must be > 0 (got {args[0]!r})")
            if key == "train.seed":
                raise ValueError("train.seed: the seeds are the `seeds` axis, not a distribution")
        return space

    @field_validator("seeds")
    @classmethod
    def _distinct(cls, seeds: list[int]) -> list[int]:
        if len(set(seeds)) != len(seeds) or min(seeds) < 0:
            raise ValueError(f"distinct non-negative seeds (got {seeds!r})")
        return seeds


def load_sweep(path: str | Path) -> tuple[SweepConfig, Path]:
    """The validated sweep and the base experiment's path; one-line :class:`ConfigError` otherwise
    (also when a sampled key does not exist in the experiment schema)."""
    data = load_yaml(path)
    if isinstance(data.get("scheduler"), str) and data["scheduler"].lower() == "none":
        data["scheduler"] = None
    sweep = _validate(SweepConfig, data, str(path))
    base = Path(sweep.base)
    if not base.is_absolute():
        base = (Path(path).parent / base).resolve()
    # every key of the space must be a config key: try one value of each
    probe = list(sweep.set) + [f"{k}={json.dumps(_first_value(d))}" for k, d in sweep.space.items()]
    try:
        cfg = load_config(base, probe)
        from .algos import build_algo_kwargs  # SB3 keyword names are checked against the algorithm
        from .features import with_features

        with_features(cfg, build_algo_kwargs(cfg.agent, str(base))[1], str(base))
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return sweep, base


def _first_value(dist: dict[str, Any]) -> Any:
    kind, args = next(iter(dist.items()))
    if kind == "loguniform":
        return math.sqrt(args[0] * args[1])
    if kind == "uniform":
        return 0.5 * (args[0] + args[1])
    return args[0]


def _param_space(sweep: SweepConfig) -> dict[str, Any]:
    from ray import tune

    make = {"loguniform": lambda a: tune.loguniform(*a), "uniform": lambda a: tune.uniform(*a),
            "randint": lambda a: tune.randint(*a), "choice": tune.choice, "grid": tune.grid_search}
    space = {key: make[kind](args) for key, d in sweep.space.items() for kind, args in d.items()}
    space["train.seed"] = tune.grid_search(list(sweep.seeds))
    return space


def _overrides(params: dict[str, Any]) -> list[str]:
    return [f"{k}={json.dumps(v)}" for k, v in sorted(params.items())]


def score_of(final_eval: dict[str, dict[str, Any]], exact: bool, reference: str) -> float:
    """The trial's score (module docstring) from :class:`mmgym.agents.train.TrainResult`'s final_eval."""
    agent = final_eval["agent"]["objective_mean"]
    if exact and "optimal" in final_eval:
        return 100.0 * agent / final_eval["optimal"]["objective_mean"]
    if reference in final_eval:
        return agent - final_eval[reference]["objective_mean"]
    return agent


def _trial(params: dict[str, Any], *, base: str, fixed: list[str], chunks: int, reference: str) -> None:
    """One trial: train the sampled experiment in ``chunks`` resumed parts, report after each."""
    import torch
    from ray import tune

    from mmgym.baselines import inexact_reason
    from mmgym.scenarios import get as get_scenario

    from .train import train

    torch.set_num_threads(1)
    run_dir = Path(tune.get_context().get_trial_dir()) / "run"
    cfg = load_config(base, list(fixed) + _overrides(params) + [f"train.run_dir={run_dir}",
                                                                "train.progress_bar=false"])
    exact = get_scenario(cfg.env.id).dp_exact and inexact_reason(cfg.env) is None
    total = cfg.train.total_timesteps
    # each part ends on a checkpoint that the next part resumes from
    part_steps = math.ceil(total / chunks)
    freq = cfg.train.checkpoint_freq
    cfg = cfg.model_copy(update={"train": cfg.train.model_copy(
        update={"checkpoint_freq": part_steps if freq <= 0 else min(freq, part_steps)})})
    for part in range(1, chunks + 1):
        steps = math.ceil(total * part / chunks)
        part_cfg = cfg.model_copy(update={"train": cfg.train.model_copy(update={"total_timesteps": steps})})
        result = train(part_cfg, resume=part > 1, source=base, log=lambda _msg: None)
        final = result.final_eval
        metrics = {"score": score_of(final, exact, reference), "objective": final["agent"]["objective_mean"],
                   "num_timesteps": result.num_timesteps}
        metrics.update({f"baseline/{k}": v["objective_mean"] for k, v in final.items() if k != "agent"})
        tune.report(metrics)


def _warm_cache(base: Path, fixed: list[str]) -> None:
    """Compile (or load) the env's kernels in the driver before trials start."""
    import numpy as np

    from mmgym.make import make_market

    cfg = load_config(base, list(fixed))
    market = make_market(cfg.env, 2)
    market.seed_rows([0, 1])
    market.reset()
    market.step(np.zeros((2, market.action_dim)))


def run_sweep(sweep: SweepConfig, base: Path, address: str | None = None) -> Path:
    """Run the sweep; returns its folder (``<storage>/<name>``)."""
    import ray
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler

    _warm_cache(base, sweep.set)
    storage = sweep.storage if "://" in sweep.storage else str(Path(sweep.storage).resolve())
    if address or os.environ.get("RAY_ADDRESS"):
        ray.init(address=address or os.environ["RAY_ADDRESS"], ignore_reinit_error=True)
    else:
        ray.init(ignore_reinit_error=True, include_dashboard=False, log_to_driver=False)
    trainable = tune.with_parameters(_trial, base=str(base), fixed=list(sweep.set), chunks=sweep.chunks,
                                     reference=sweep.reference)
    scheduler = None
    if sweep.scheduler is not None and sweep.scheduler.asha is not None:
        a = sweep.scheduler.asha
        scheduler = ASHAScheduler(time_attr="training_iteration", max_t=sweep.chunks,
                                  grace_period=min(a.grace_period, sweep.chunks), reduction_factor=a.reduction_factor)
    tuner = tune.Tuner(
        tune.with_resources(trainable, {"cpu": sweep.cpus_per_trial}),
        param_space=_param_space(sweep),
        tune_config=tune.TuneConfig(metric="score", mode="max", scheduler=scheduler,
                                    num_samples=sweep.num_samples),
        run_config=tune.RunConfig(name=sweep.name, storage_path=storage, verbose=1),
    )
    grid = tuner.fit()
    out = Path(storage) / sweep.name if "://" not in storage else Path(sweep.name)
    rows = []
    for res in grid:
        if res.metrics is None or "score" not in res.metrics:
            continue
        params = {k.removeprefix("config/"): v for k, v in res.metrics_dataframe.iloc[-1].items()
                  if k.startswith("config/")} if res.metrics_dataframe is not None else {}
        params = params or dict(res.config)
        rows.append({"params": params, "score": float(res.metrics["score"]),
                     "objective": float(res.metrics["objective"]),
                     "iterations": int(res.metrics.get("training_iteration", 0)), "path": str(res.path)})
    table = summarize(rows, sweep.chunks)
    out.mkdir(parents=True, exist_ok=True)
    _write_outputs(table, rows, sweep, base, out)
    return out


def summarize(rows: list[dict[str, Any]], chunks: int) -> list[dict[str, Any]]:
    """Group trials by sampled values (all but ``train.seed``); the score's mean and 95 %
    t-interval over the seeds that ran to the end (trials ASHA stopped count as stopped)."""
    from scipy import stats

    groups: dict[str, dict[str, Any]] = {}
    for r in rows:
        params = {k: v for k, v in r["params"].items() if k != "train.seed"}
        key = json.dumps(params, sort_keys=True, default=str)
        g = groups.setdefault(key, {"params": params, "scores": [], "seeds": [], "stopped": 0})
        if r["iterations"] >= chunks:
            g["scores"].append(r["score"])
            g["seeds"].append(r["params"].get("train.seed"))
        else:
            g["stopped"] += 1
    table = []
    for g in groups.values():
        s = g["scores"]
        n = len(s)
        mean = sum(s) / n if n else float("nan")
        if n >= 2:
            sd = math.sqrt(sum((x - mean) ** 2 for x in s) / (n - 1))
            half = float(stats.t.ppf(0.975, n - 1)) * sd / math.sqrt(n)
        else:
            half = float("nan")
        table.append({**g, "n": n, "mean": mean, "ci95": half})
    table.sort(key=lambda g: (-(g["n"] > 0), -g["mean"] if g["n"] else 0.0))
    for rank, g in enumerate(table, 1):
        g["rank"] = rank
    return table


def _write_outputs(table, rows, sweep: SweepConfig, base: Path, out: Path) -> None:
    import csv

    with open(out / "results.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["rank", "params", "finished_seeds", "stopped", "score_mean", "score_ci95"])
        for g in table:
            w.writerow([g["rank"], json.dumps(g["params"], sort_keys=True), g["n"], g["stopped"],
                        g["mean"], g["ci95"]])
    cfg = load_config(base, list(sweep.set))
    from mmgym.baselines import inexact_reason
    from mmgym.scenarios import get as get_scenario

    exact = (get_scenario(cfg.env.id).dp_exact and inexact_reason(cfg.env) is None
             and "optimal" in cfg.train.eval_baselines)
    what = "% of the exact optimum" if exact else f"objective minus {sweep.reference}'s"
    print(f"sweep {sweep.name}: {len(rows)} trials; score = {what}, mean ± 95 % CI over the seeds "
          f"{sweep.seeds} (t-interval)")
    for g in table:
        ci = "" if math.isnan(g["ci95"]) else f" ± {g['ci95']:.3f}"
        print(f"  {g['rank']:>2}  {g['mean']:.3f}{ci}  (seeds finished {g['n']}, stopped {g['stopped']})  "
              + " ".join(f"{k}={v}" for k, v in sorted(g["params"].items())))
    best = next((g for g in table if g["n"] > 0), None)
    if best is None:
        print("  no trial finished (all stopped early)")
        return
    best_cfg = load_config(base, list(sweep.set) + _overrides(best["params"]))
    target = out / "best.yaml"
    text = (f"# best configuration of sweep {sweep.name} (score {best['mean']:.4f}, seeds {best['seeds']})\n"
            + yaml.safe_dump(best_cfg.model_dump(mode="json"), sort_keys=False))
    target.write_text(text)
    print(f"wrote {out / 'results.csv'}, {target}; tensorboard --logdir {out}")


def main(argv: list[str] | None = None) -> int:
    p = OneLineParser(prog="mmgym sweep", description="Hyperparameter sweep on Ray Tune (module docstring).")
    p.add_argument("sweep", help="sweep YAML (configs/sweep_smoke.yaml)")
    p.add_argument("--address", default=None, help="Ray cluster address (default: RAY_ADDRESS, else local)")
    args = p.parse_args(argv)
    try:
        sweep, base = load_sweep(args.sweep)
        try:
            import ray  # noqa: F401
        except ImportError:
            raise ConfigError("Ray Tune is not installed: pip install -e \".[sweep]\"") from None
        out = Path(sweep.storage) / sweep.name
        if out.exists() and any(out.iterdir()):
            raise ConfigError(f"{args.sweep}: name: {out} already holds a sweep; choose another name "
                              f"(got {sweep.name!r})")
    except ConfigError as exc:
        print(f"mmgym sweep: error: {exc}", file=sys.stderr)
        return 2
    run_sweep(sweep, base, args.address)
    return 0


if __name__ == "__main__":
    sys.exit(main())

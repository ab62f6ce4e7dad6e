#!/usr/bin/env python
"""Train a market-making agent from one YAML experiment (stable-baselines3 over the batched env).

Usage::

    python train.py CONFIG [--set key.path=value ...] [--run-dir DIR] [--resume] [--overwrite]
        [--seeds 0 1 2]

CONFIG holds ``env``, ``agent`` (algorithm + SB3 keyword arguments), ``train`` (steps, envs,
seed, evaluation and checkpoint frequency, run directory), ``baselines`` and ``eval`` sections;
``python -c "import mmgym.config as c; c.describe()"`` lists every key. The run directory gets the
resolved config, ``model.zip``, checkpoints, the best model and TensorBoard files
(``tensorboard --logdir RUN_DIR/tb``); see docs/TRAINING.md.

Ctrl-C stops at the next step and writes a checkpoint; ``--resume`` continues it at the same
step count. Bad input prints one line and exits with 2.

``--seeds 0 1 2`` trains one run per seed, one after the other, into ``RUN_DIR/seed<k>/`` (each with
``train.seed = k``, the config otherwise the same) and prints one line per seed at the end. Ctrl-C
checkpoints the current seed and stops; ``--resume`` skips the finished seeds and continues the
others. Evaluate them as one agent over seeds:
``evaluate.py CONFIG --agents <train.eval_baselines> 'NAME=RUN_DIR/seed*/model.zip'``.
"""

from __future__ import annotations

import argparse
import sys

from mmgym.cli import OneLineParser, add_overrides_argument, check_seeds, overrides_of
from mmgym.config import ConfigError, load_config


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="train.py", description=__doc__.split("\n\n")[0],
                      formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config", help="experiment YAML (configs/*.yaml)")
    p.add_argument("--run-dir", default=None, help="run directory (default: train.run_dir)")
    p.add_argument("--resume", action="store_true", help="continue from the run directory's latest checkpoint")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run in the run directory")
    p.add_argument("--seeds", nargs="+", type=int, default=None, metavar="SEED",
                   help="train one run per seed, one after the other, into RUN_DIR/seed<SEED> "
                        "(default: one run with train.seed in RUN_DIR)")
    add_overrides_argument(p)
    return p


def _note_defaults(path: str, overrides: list[str]) -> None:
    """Refuse an empty experiment file; say which training sections come from the defaults."""
    from mmgym.config import load_yaml

    data = load_yaml(path) or {}
    if not data:
        raise ConfigError(f"{path}: the file is empty (an experiment has env, agent and train sections; "
                          "see configs/ppo_cjp.yaml)")
    set_by_override = {o.split(".", 1)[0] for o in overrides}
    missing = [s for s in ("agent", "train") if s not in data and s not in set_by_override]
    if missing:
        print(f"train.py: note: {path} has no {' / '.join(missing)} section: using the defaults "
              "(python -c \"import mmgym.config as c; c.describe()\" lists them)", file=sys.stderr)


def _seed_override(overrides: list[str]) -> str | None:
    """The ``--set`` item that sets ``train.seed`` (directly or inside a ``train`` mapping), if any."""
    for item in overrides:
        key, _, value = item.partition("=")
        key = key.strip()
        if key == "train.seed" or (key == "train" and "seed" in value):
            return item
    return None


def _seeds_summary(plans, config: str) -> str | None:
    """One line over the seeds that have a final evaluation: mean and range of the objective, and
    the command that evaluates them over seeds."""
    done = [p.result.final_eval["agent"]["objective_mean"] for p in plans
            if p.status in ("trained", "skipped") and p.result is not None
            and p.result.final_eval.get("agent", {}).get("objective_mean") is not None]
    if len(done) < 2:
        return None
    ev = plans[0].cfg.eval
    refs = " ".join(plans[0].cfg.train.eval_baselines) or "as"  # the run's reference lines (the book: as_tuned)
    return (f"{len(done)} seeds: objective mean {sum(done) / len(done):.3f} (min {min(done):.3f}, max "
            f"{max(done):.3f}) on eval.episodes = {ev.episodes} of seed {ev.seed}; CIs over seeds on "
            f"held-out episodes: python evaluate.py {config} --agents {refs} "
            f"'{plans[0].run_dir.parent.name}={plans[0].run_dir.parent}/seed*/model.zip' --seed 100000")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    overrides = overrides_of(args)
    if args.run_dir is not None:
        overrides.append(f"train.run_dir={args.run_dir}")
    if args.resume and args.overwrite:
        print("train.py: error: --resume and --overwrite exclude each other", file=sys.stderr)
        return 2
    if args.seeds is not None and _seed_override(overrides) is not None:
        print(f"train.py: error: --seeds and --set {_seed_override(overrides)} exclude each other "
              f"(--seeds sets train.seed of each run; got --seeds {' '.join(map(str, args.seeds))})",
              file=sys.stderr)
        return 2
    try:
        if args.seeds is not None:
            check_seeds(args.seeds)
        cfg = load_config(args.config, overrides)
        _note_defaults(args.config, overrides)
        # torch is imported here, after the config is known good
        from mmgym.agents.train import plan_seeds, train, train_seeds

        if args.seeds is None:
            result = train(cfg, resume=args.resume, overwrite=args.overwrite, source=args.config)
        else:  # every seed's run directory is checked before the first one trains
            plans = plan_seeds(cfg, args.seeds, resume=args.resume, overwrite=args.overwrite)
            plans = train_seeds(plans, overwrite=args.overwrite, source=args.config)
    except ConfigError as exc:
        print(f"train.py: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # before training started (once it runs, Ctrl-C checkpoints)
        print("train.py: interrupted before training started; nothing to resume", file=sys.stderr)
        return 130
    if args.seeds is not None:
        for plan in plans:
            print(f"train.py: {plan.summary_line()}")
        line = _seeds_summary(plans, args.config)
        if line is not None:
            print(f"train.py: {line}")
        return 130 if any(p.status in ("interrupted", "not started") for p in plans) else 0
    print(f"train.py: {result.run_dir}: {result.summary_line()}")
    return 130 if result.interrupted else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python
"""Train a market-making agent from one YAML experiment (stable-baselines3 over the batched env).

Usage::

    python train.py CONFIG [--set key.path=value ...] [--run-dir DIR] [--resume] [--overwrite]

CONFIG holds ``env``, ``agent`` (algorithm + SB3 keyword arguments), ``train`` (steps, envs,
seed, evaluation and checkpoint frequency, run directory), ``baselines`` and ``eval`` sections;
``python -c "import mmgym.config as c; c.describe()"`` lists every key. The run directory gets the
resolved config, ``model.zip``, checkpoints, the best model and TensorBoard files
(``tensorboard --logdir RUN_DIR/tb``); see docs/TRAINING.md.

Ctrl-C stops at the next step and writes a checkpoint; ``--resume`` continues it at the same
step count. Bad input prints one line and exits with 2.
"""

from __future__ import annotations

import argparse
import sys

from mmgym.cli import OneLineParser, add_overrides_argument, overrides_of
from mmgym.config import ConfigError, load_config


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="train.py", description=__doc__.split("\n\n")[0],
                      formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config", help="experiment YAML (configs/*.yaml)")
    p.add_argument("--run-dir", default=None, help="run directory (default: train.run_dir)")
    p.add_argument("--resume", action="store_true", help="continue from the run directory's latest checkpoint")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run in the run directory")
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


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    overrides = overrides_of(args)
    if args.run_dir is not None:
        overrides.append(f"train.run_dir={args.run_dir}")
    if args.resume and args.overwrite:
        print("train.py: error: --resume and --overwrite exclude each other", file=sys.stderr)
        return 2
    try:
        cfg = load_config(args.config, overrides)
        _note_defaults(args.config, overrides)
        from agents.train import train  # torch is imported here, after the config is known good

        result = train(cfg, resume=args.resume, overwrite=args.overwrite, source=args.config)
    except ConfigError as exc:
        print(f"train.py: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # before training started (once it runs, Ctrl-C checkpoints)
        print("train.py: interrupted before training started; nothing to resume", file=sys.stderr)
        return 130
    print(f"train.py: {result.run_dir}: {result.summary_line()}")
    return 130 if result.interrupted else 0


if __name__ == "__main__":
    sys.exit(main())

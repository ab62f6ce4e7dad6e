"""The ``mmgym`` command (``mmgym sweep|calibrate|train|evaluate ...``, also ``python -m mmgym``) and
the pieces the command-line tools share (train.py, evaluate.py, python -m mmgym.calibrate,
benchmarks/train_cjp.py)."""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn, Sequence


class OneLineParser(argparse.ArgumentParser):
    """argparse with one-line errors (exit 2) and CONFIG found wherever it stands.

    Options that take a list (``--set``, ``--agents``) would swallow a CONFIG written after them;
    the first ``*.yaml``/``*.yml`` token without ``=`` is taken as CONFIG wherever it stands.
    """

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")

    def parse_args(self, args: Sequence[str] | None = None, namespace=None):  # type: ignore[override]
        argv = list(sys.argv[1:] if args is None else args)
        if argv and argv[0].startswith("-"):
            for i, token in enumerate(argv):
                if token.endswith((".yaml", ".yml")) and "=" not in token and not token.startswith("-"):
                    argv.insert(0, argv.pop(i))
                    break
        return super().parse_args(argv, namespace)


def add_overrides_argument(parser: argparse.ArgumentParser) -> None:
    """``--set KEY=VALUE [KEY=VALUE ...]``, repeatable (flattened by :func:`overrides_of`)."""
    parser.add_argument("--set", dest="overrides", nargs="+", action="append", default=[],
                        metavar="KEY=VALUE",
                        help="config overrides key.path=value (env sections may omit 'env.'); repeatable")


def overrides_of(args: argparse.Namespace) -> list[str]:
    """The flattened ``--set`` overrides."""
    return [item for group in args.overrides for item in group]


def check_seeds(seeds: Sequence[int], flag: str = "--seeds") -> None:
    """Refuse an empty list, a negative seed or a seed given twice (ConfigError naming ``flag``)."""
    from .config import ConfigError

    if not seeds:
        raise ConfigError(f"{flag}: give at least one seed")
    for k in seeds:
        if k < 0:
            raise ConfigError(f"{flag}: seeds are >= 0 (got {k})")
        if list(seeds).count(k) > 1:
            raise ConfigError(f"{flag}: seed {k} given twice (got {' '.join(map(str, seeds))})")


#: subcommand -> (module, what it does)
COMMANDS = {
    "train": ("mmgym.agents.cli_train", "train an agent from a YAML experiment (train.py)"),
    "evaluate": ("mmgym.agents.cli_evaluate", "evaluate agents against the baselines (evaluate.py)"),
    "calibrate": ("mmgym.calibrate", "fit sigma, A, k from mid and trade streams"),
    "sweep": ("mmgym.agents.sweep", "hyperparameter sweep on Ray Tune (the sweep extra)"),
}


def main(argv: Sequence[str] | None = None) -> int:
    """``mmgym COMMAND [ARGS]``: run a subcommand's ``main(ARGS)``."""
    import importlib

    argv = list(sys.argv[1:] if argv is None else argv)
    usage = "usage: mmgym {" + ",".join(COMMANDS) + "} ...\n\n" + "\n".join(
        f"  {name:10s} {what}" for name, (_, what) in COMMANDS.items())
    if not argv or argv[0] in ("-h", "--help"):
        print(usage)
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"mmgym: error: unknown command {name!r} (one of {', '.join(COMMANDS)})", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[name][0])
    return int(module.main(rest) or 0)

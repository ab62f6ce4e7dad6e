#!/usr/bin/env python
"""Compare agents on identical scenarios: analytic baselines, the exact optimum, trained models.

Usage::

    python evaluate.py CONFIG --agents as symmetric glft optimal [NAME=path/to/model.zip ...] \\
        [--episodes 1000] [--seed 0] [--out results/DIR] [--reference optimal] [--audit] \\
        [--set key.path=value ...]

Every agent runs the same ``--episodes`` scenarios (common random numbers: episode e uses seed
``seed + e``). Prints one table row per agent with paired differences against the reference
(``optimal`` when present, else the first agent) and writes ``results.json``, ``results.csv``,
plots (PNG) and, with ``--audit``, ``audit.csv`` into ``--out``.

Baseline names: as, symmetric, fixed, glft, cjp, optimal, boundary, as_tuned, glft_tuned (see
mmgym/baselines). The tuned ones search their parameters on this config first (exact DP policy
evaluation where it exists, else simulation on the seeds ``baselines.tuning.seed`` ..., by default
from 2**40 on); one line per tuned agent after the table says what was chosen, and an evaluation
whose seeds overlap the tuning seeds is refused.
``NAME=path.zip`` loads a stable-baselines3 model (PPO/SAC/... detected from the zip) and runs it
deterministically on the normalised-action env; a ``vecnormalize.pkl`` beside the zip is applied.

On ``configs/lob.yaml`` (the limit order book) the baselines quote with the intensity model whose
sigma, A, k are the config's ``market`` values, calibrated on that book
(``python -m mmgym.calibrate configs/lob.yaml``); their depths are mapped onto ticks by the env
(bid floored, ask ceiled). ``optimal`` is then the exact optimum of that intensity model, not of
the book, and ``exact E[obj]`` is blank (the model's value is ``objective_model`` in the JSON).
``exact E[obj]`` is also blank, with a one-line note, on an intensity-market config the DP does not
solve exactly (a tick with a mid that leaves the tick grid: ``metadata.not_exact`` says why).
``--audit`` is for the intensity market only.

Bad input (unknown agent, missing file, bad ``--set`` path, seeds overlapping the tuning seeds)
prints one line and exits with 2.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import warnings
from pathlib import Path
from typing import Any

from mmgym.cli import OneLineParser, add_overrides_argument, overrides_of
from mmgym.config import ConfigError, load_config


def _baseline_names() -> list[str]:
    from mmgym.baselines import BASELINES

    return list(BASELINES)


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="evaluate.py", description=__doc__.split("\n\n")[0],
                      formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config", help="experiment YAML (configs/*.yaml)")
    p.add_argument("--agents", nargs="+", default=["as", "symmetric", "glft", "optimal"],
                   help=f"baseline names ({', '.join(_baseline_names())}) and/or NAME=path/to/model.zip "
                        "(default: as symmetric glft optimal)")
    p.add_argument("--episodes", type=int, default=None, help="episodes per agent (default: eval.episodes)")
    p.add_argument("--seed", type=int, default=None, help="scenario seed (default: eval.seed)")
    p.add_argument("--num-envs", type=int, default=None, help="episodes stepped at once (default: eval.num_envs)")
    p.add_argument("--out", default=None, help="output directory (default: results/<config stem>)")
    p.add_argument("--reference", default=None, help="agent for paired differences (default: optimal, else the first)")
    p.add_argument("--audit", action="store_true", help="write audit.csv with one row per fill")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG figures")
    p.add_argument("--video", action="store_true",
                   help="write video_<agent>.gif: episode 0 of each agent, drawn as the envs' rgb_array frames")
    p.add_argument("--video-frames", type=int, default=100, help="frames per video, evenly spaced (default 100)")
    add_overrides_argument(p)
    return p


#: trained agents' model files of the last :func:`parse_agents` call (recorded in results.json)
model_paths: dict[str, str] = {}


def check_out_dir(out: Path) -> None:
    """Refuse an output path that cannot take the results, before anything runs (ConfigError)."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out}: exists and is not a directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".mmgym-write-test"
        probe.touch()
        probe.unlink()
    except OSError as exc:
        raise ConfigError(f"--out {out}: cannot write there ({exc.strerror or exc})") from None


def parse_agents(tokens: list[str], env_config) -> dict[str, Any]:
    """``name`` -> baseline name, ``NAME=path.zip`` -> loaded SB3 policy. Raises ConfigError."""
    from mmgym.baselines import BASELINES

    agents: dict[str, Any] = {}
    model_paths.clear()
    for tok in tokens:
        if tok.partition("=")[0] in agents:
            raise ConfigError(f"--agents: duplicate agent name {tok.partition('=')[0]!r}")
        if "=" in tok:
            name, _, path = tok.partition("=")
            if not name or not path:
                raise ConfigError(f"--agents {tok!r}: expected NAME=path/to/model.zip")
            if not Path(path).is_file():
                raise ConfigError(f"--agents {tok}: model file {path!r} not found")
            from agents.policies import load_sb3_policy

            agents[name] = load_sb3_policy(path, env_config)
            model_paths[name] = str(Path(path).resolve())
        else:
            if tok not in BASELINES:
                raise ConfigError(f"--agents: unknown agent {tok!r} (valid baselines: {', '.join(BASELINES)}; "
                                  "trained agents as NAME=path/to/model.zip)")
            agents[tok] = tok
    return agents


def _clean(x: Any) -> Any:
    """JSON-safe copy: NaN/inf become null."""
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def _fmt(x: Any, nd: int = 3) -> str:
    return "—" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:.{nd}f}"


#: (column, compact?): the compact layout keeps these in a terminal narrower than WIDE
_COLUMNS = (("agent", True), ("objective ± se", True), ("Δobj vs {ref} [95% CI]", True),
            ("exact E[obj]", True), ("PnL", False), ("std PnL", False), ("Sharpe", False), ("CE", False),
            ("spread", True), ("q_T", False), ("std q_T", False), ("mean |q|", False), ("fills", False),
            ("impact", False))
WIDE = 150


def print_table(metrics: dict[str, dict[str, Any]], reference: str, title: str) -> None:
    """The results table; in a terminal narrower than :data:`WIDE` columns, the compact layout
    (results.csv has every column)."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console()
    if not console.is_terminal:
        console.width = 200  # logs and pipes: do not squeeze the columns to 80 characters
    compact = console.width < WIDE
    keep = [not compact or c for _, c in _COLUMNS]
    table = Table(title=escape(title))
    for (col, _), k in zip(_COLUMNS, keep):
        if k:  # escaped: "[obj]" would be read as rich markup and vanish
            table.add_column(escape(col.format(ref=reference)), justify="left" if col == "agent" else "right")
    for name, m in metrics.items():
        lo, hi = m["objective_diff_ci95"]
        diff = "—" if name == reference else f"{m['objective_diff_mean']:+.3f} [{lo:+.3f}, {hi:+.3f}]"
        if m.get("label"):  # an oracle (optimal with a hidden regime): the title and a note say more
            name = f"{name} ({m['label'].split(' (')[0]})"
        cells = (
            name, f"{m['objective_mean']:.3f} ± {m['objective_se']:.3f}", diff,
            _fmt(m.get("objective_exact")), _fmt(m["pnl_mean"], 2), _fmt(m["pnl_std"], 2),
            _fmt(m["sharpe"], 2), _fmt(m["certainty_equivalent"], 2), _fmt(m["spread_mean"]),
            _fmt(m["final_inventory_mean"], 2), _fmt(m["final_inventory_std"], 2),
            _fmt(m["abs_inventory_mean"], 2), _fmt(m["fills_mean"], 1), _fmt(m["impact_cost_mean"], 3),
        )
        table.add_row(*(escape(c) for c, k in zip(cells, keep) if k))
    console.print(table)
    if compact:
        console.print(f"(compact layout for a {console.width}-column terminal; results.csv has every column)")


def write_outputs(result, out: Path, config_path: str, overrides: list[str]) -> None:
    import pandas as pd

    out.mkdir(parents=True, exist_ok=True)
    meta = dict(result.metadata, config_path=str(config_path), overrides=overrides,
                model_paths=dict(model_paths))
    (out / "results.json").write_text(json.dumps(_clean({"agents": result.metrics, "metadata": meta}),
                                                 indent=2))
    rows = []
    for name, m in result.metrics.items():
        row: dict[str, Any] = {"agent": name}
        for k, v in m.items():
            if k.endswith("_ci95"):
                row[k + "_lo"], row[k + "_hi"] = v
            elif isinstance(v, dict):
                row[k] = json.dumps(v)
            else:
                row[k] = v
        rows.append(row)
    pd.DataFrame(rows).to_csv(out / "results.csv", index=False)


def write_audit(result, out: Path) -> None:
    from mmgym.evaluation import AUDIT_COLUMNS

    with open(out / "audit.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(AUDIT_COLUMNS)
        for name, batch in result.batches.items():
            for rec in batch.audit or []:
                w.writerow((name, *rec[1:]))


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    return f"evaluate.py: warning: {message}\n"


def _file_safe(name: str) -> str:
    """An agent name as a file-name part."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def main(argv: list[str] | None = None) -> int:
    warnings.formatwarning = _one_line_warning  # library warnings as one line, no source path
    args = build_parser().parse_args(argv)
    overrides = overrides_of(args)
    try:
        cfg = load_config(args.config, overrides)
        episodes = args.episodes if args.episodes is not None else cfg.eval.episodes
        seed = args.seed if args.seed is not None else cfg.eval.seed
        num_envs = args.num_envs if args.num_envs is not None else cfg.eval.num_envs
        for flag, value, low in (("--episodes", episodes, 1), ("--seed", seed, 0), ("--num-envs", num_envs, 1),
                                 ("--video-frames", args.video_frames, 1)):
            if value < low:
                raise ConfigError(f"{flag} must be >= {low} (got {value})")
        out = Path(args.out) if args.out else Path("results") / Path(args.config).stem
        check_out_dir(out)
        agents = parse_agents(args.agents, cfg.env)
        if args.reference is not None and args.reference not in agents:
            raise ConfigError(f"--reference {args.reference!r} is not one of the agents ({', '.join(agents)})")
        from rich.console import Console

        from mmgym.evaluation import run_evaluation, write_plots

        console = Console(stderr=True)
        result = run_evaluation(cfg.env, agents, episodes=episodes, seed=seed,
                                baselines_config=cfg.baselines, num_envs=num_envs,
                                reference=args.reference, audit=args.audit,
                                progress=lambda n: console.log(f"running {n} ({episodes} episodes)"))
    except ConfigError as exc:
        print(f"evaluate.py: error: {exc}", file=sys.stderr)
        return 2
    if (out / "results.json").is_file():
        print(f"evaluate.py: note: replacing the results in {out} (--out DIR keeps them)", file=sys.stderr)
    title = f"{args.config}: {episodes} episodes, seed {seed}"
    if overrides:  # its own line: the table title is cut to the table's width
        print(f"{args.config} with --set {' '.join(overrides)}")
    model_only = "baseline_model" in result.metadata
    not_exact = result.metadata.get("not_exact")
    if "optimal_v0" in result.metadata:
        title += f", optimal V0 = {result.metadata['optimal_v0']:.4f}" + (
            " (intensity model)" if model_only else " (not exact)" if not_exact else "")
        if "optimal_label" in result.metadata:
            title += f", {result.metadata['optimal_label']}"
    print_table(result.metrics, result.reference, title)
    for pol in result.policies.values():  # the tuned baselines: what the search chose, and how
        tuning = getattr(pol, "tuning", None)
        if tuning is not None:
            print(f"tuned: {tuning.summary()}")
    if model_only:  # the limit order book: the baselines' model is not the env
        print(f"note: {result.metadata['baseline_model']}; 'exact E[obj]' does not apply "
              "(results.json: objective_model)")
    if "optimal_label" in result.metadata:  # optimal reads state the agent does not observe
        print(f"note: optimal is the {result.metadata['optimal_label']}: it reads the hidden regime, "
              "which an agent on this env does not observe")
    if not_exact:  # the intensity market with a config the DP does not solve exactly
        print(f"note: no exact values for this config: {not_exact}")
    write_outputs(result, out, args.config, overrides)
    if args.audit:
        write_audit(result, out)
    if not args.no_plots:
        write_plots(result, cfg.env, out)
    if args.video:
        from mmgym.evaluation.video import episode_frames, write_gif

        for name, policy in result.policies.items():
            frames = episode_frames(cfg.env, policy, seed, max_frames=args.video_frames,
                                    title=f"{cfg.env.id}: {name}, episode seed {seed}")
            write_gif(frames, out / f"video_{_file_safe(name)}.gif")
    print(f"wrote {out}/results.json, results.csv" + ("" if args.no_plots else ", plots")
          + (", audit.csv" if args.audit else "") + (", video_<agent>.gif" if args.video else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())

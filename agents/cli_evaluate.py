#!/usr/bin/env python
"""Compare agents on identical scenarios: analytic baselines, the exact optimum, trained models.

Usage::

    python evaluate.py CONFIG --agents as symmetric glft optimal [NAME=path/to/model.zip ...] \\
        [--episodes 1000] [--seed 0] [--out results/DIR] [--reference optimal] [--audit] \\
        [--set key.path=value ...]

Every agent runs the same ``--episodes`` scenarios (common random numbers: episode e uses seed
``seed + e``). Prints one table row per agent with paired differences against the reference
(``optimal`` where it is the env's exact optimum; ``as_tuned`` on the book and the OU mid, where
``optimal`` is only the intensity model's optimum; else the first agent) and writes ``results.json``, ``results.csv``,
plots (PNG) and, with ``--audit``, ``audit.csv`` into ``--out``.

Baseline names: as, symmetric, fixed, glft, cjp, optimal, boundary, as_tuned, glft_tuned (see
mmgym/baselines). The tuned ones search their parameters on this config first (exact DP policy
evaluation where it exists, else simulation on the seeds ``baselines.tuning.seed`` ..., by default
from 2**40 on, in a stream family of their own, ``TUNING_STREAMS``); one line per tuned agent after the table says what was chosen, and an evaluation
whose seeds overlap the tuning seeds is refused.
``NAME=path.zip`` loads a stable-baselines3 model (PPO/SAC/... detected from the zip) and runs it
deterministically on the normalised-action env; a ``vecnormalize.pkl`` beside the zip is applied.

``NAME=GLOB`` (quoted, e.g. ``'ppo=runs/ppo_cjp/seed*/model.zip'`` from ``train.py --seeds``) with
several matches is one agent trained over seeds: every match runs on the same episodes (its row
``NAME/<label>``, the label being the part of the path that differs, e.g. ``seed0``) and the row
``NAME (S seeds)`` gives the mean over seeds ± the episodes' standard error, a 95 % t-interval
(S - 1 degrees of freedom) over the per-seed means, and the paired difference against the reference:
the mean of the per-seed paired means with a t-interval whose standard error combines training and
episode noise (mmgym.evaluation.paired_across_seeds). One match is one model, as ``NAME=path.zip``;
no match is an error.

On ``configs/lob.yaml`` (the limit order book) the baselines quote with the intensity model whose
sigma, A, k are the config's ``market`` values, calibrated on that book
(``python -m mmgym.calibrate configs/lob.yaml``); their depths are mapped onto ticks by the env
(bid floored, ask ceiled). ``optimal`` is then the exact optimum of that intensity model, not of
the book, nor a bound on it, and ``exact E[obj]`` is blank (the model's value is
``objective_model`` in the JSON); the paired differences are against ``as_tuned`` when it is among
the agents (``--reference optimal`` is refused there).
``exact E[obj]`` is also blank, with a one-line note, on an intensity-market config the DP does not
solve exactly (a tick with a mid that leaves the tick grid: ``metadata.not_exact`` says why).
``--audit`` works on the intensity market and the portfolio (one row per fill with its asset and mid).
On a portfolio config with ``limits:``, ``alerts.jsonl`` gets one line per risk-limit breach or
near-breach (``limits.warn_at``) of every agent: agent, episode, step, asset (or "factor"), limit
name, alert, value, limit.

``--glass-box`` (a scenario with a hidden driver: regimes, events) also writes ``glass_box.png`` and
``glass_box.csv``: every agent's half-spread, skew per lot, mean gamma and |q| per bin of the driver,
recorded on the same episodes (mmgym.evaluation.glass_box; docs/TRAINING.md, "Glass box").

Bad input (unknown agent, missing file, a glob without matches, bad ``--set`` path, seeds
overlapping the tuning seeds) prints one line and exits with 2.
"""

from __future__ import annotations

import argparse
import csv
import glob
import json
import math
import re
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
                   help=f"baseline names ({', '.join(_baseline_names())}) and/or NAME=path/to/model.zip; "
                        "NAME='GLOB' with several matches is one agent over training seeds "
                        "(default: as symmetric glft optimal)")
    p.add_argument("--episodes", type=int, default=None, help="episodes per agent (default: eval.episodes)")
    p.add_argument("--seed", type=int, default=None, help="scenario seed (default: eval.seed)")
    p.add_argument("--num-envs", type=int, default=None, help="episodes stepped at once (default: eval.num_envs)")
    p.add_argument("--out", default=None, help="output directory (default: results/<config stem>)")
    p.add_argument("--reference", default=None, help="agent for paired differences (default: optimal where it is the env's exact optimum; "
                        "as_tuned on the book and the OU mid; else the first agent)")
    p.add_argument("--audit", action="store_true", help="write audit.csv with one row per fill")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG figures")
    p.add_argument("--video", action="store_true",
                   help="write video_<agent>.gif: episode 0 of each agent, drawn as the envs' rgb_array frames")
    p.add_argument("--video-frames", type=int, default=100, help="frames per video, evenly spaced (default 100)")
    p.add_argument("--glass-box", action="store_true",
                   help="write glass_box.png/.csv: each agent's half-spread, skew per lot and gamma per bin of "
                        "the scenario's hidden driver (regime, steps to the next event), on the same episodes")
    add_overrides_argument(p)
    return p


#: trained agents' model files of the last :func:`parse_agents` call (recorded in results.json):
#: a path, or for an agent over seeds the list of its seeds' paths
model_paths: dict[str, str | list[str]] = {}
#: agents over training seeds of the last :func:`parse_agents` call: NAME -> its seeds' agent names
seed_groups: dict[str, list[str]] = {}


def check_out_dir(out: Path) -> None:
    """Refuse an output path that cannot take the results, before anything runs (ConfigError)."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out}: exists and is not a directory")
    created = [p for p in (out, *out.parents) if not p.exists()]  # removed again: a refused run leaves nothing
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".mmgym-write-test"
        probe.touch()
        probe.unlink()
    except OSError as exc:
        raise ConfigError(f"--out {out}: cannot write there ({exc.strerror or exc})") from None
    finally:
        for p in created:
            try:
                p.rmdir()
            except OSError:
                break


def _natural_key(path: str) -> list:
    """Sort key: digit runs compare as numbers (seed2 before seed10)."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path)]


def seed_labels(paths: list[str]) -> list[str]:
    """Short names of several model paths: the path parts that differ (``seed0`` of
    ``runs/x/seed0/model.zip``), ``.zip`` dropped; the whole path where no part differs alone."""
    parts = [Path(p).parts for p in paths]
    if len({len(x) for x in parts}) != 1:
        return [str(Path(p).with_suffix("")) for p in paths]
    differ = [i for i in range(len(parts[0])) if len({x[i] for x in parts}) > 1]
    return ["/".join(str(Path(x[i]).with_suffix("")) if x[i].endswith(".zip") else x[i] for i in differ)
            for x in parts]


def parse_agents(tokens: list[str], env_config) -> dict[str, Any]:
    """``name`` -> baseline name, ``NAME=path.zip`` -> loaded SB3 policy; ``NAME=GLOB`` with
    several matches -> one loaded policy per match, named ``NAME/<label>`` (:func:`seed_labels`)
    and listed in :data:`seed_groups`. Raises ConfigError."""
    from mmgym.baselines import BASELINES

    agents: dict[str, Any] = {}
    model_paths.clear()
    seed_groups.clear()
    for tok in tokens:
        if tok.partition("=")[0] in agents or tok.partition("=")[0] in seed_groups:
            raise ConfigError(f"--agents: duplicate agent name {tok.partition('=')[0]!r}")
        if "=" in tok:
            name, _, path = tok.partition("=")
            if not name or not path:
                raise ConfigError(f"--agents {tok!r}: expected NAME=path/to/model.zip")
            paths = [path]
            if any(c in path for c in "*?["):
                paths = sorted((p for p in glob.glob(path, recursive=True) if Path(p).is_file()),
                               key=_natural_key)
                if not paths:
                    raise ConfigError(f"--agents {tok}: no model file matches {path!r}")
            elif not Path(path).is_file():
                raise ConfigError(f"--agents {tok}: model file {path!r} not found")
            from mmgym.agents.policies import load_sb3_policy

            if len(paths) == 1:  # one model, whether named or matched
                agents[name] = load_sb3_policy(paths[0], env_config)
                model_paths[name] = str(Path(paths[0]).resolve())
                continue
            seed_groups[name] = []
            model_paths[name] = []
            for label, p in zip(seed_labels(paths), paths):
                member = f"{name}/{label}"
                if member in agents:
                    raise ConfigError(f"--agents: duplicate agent name {member!r}")
                agents[member] = load_sb3_policy(p, env_config)
                seed_groups[name].append(member)
                model_paths[name].append(str(Path(p).resolve()))
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


#: the column of agents over training seeds (after "objective ± se", only when there is one; the
#: compact layout leaves it to the note under the table, :func:`seeds_note`)
SEEDS_COLUMN = ("95% CI over seeds", False)


def print_table(metrics: dict[str, dict[str, Any]], reference: str, title: str) -> None:
    """The results table; in a terminal narrower than :data:`WIDE` columns, the compact layout
    (results.csv has every column). An agent over training seeds (metrics with ``seeds``) is named
    ``NAME (S seeds)`` and fills :data:`SEEDS_COLUMN`."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console()
    if not console.is_terminal:
        console.width = 200  # logs and pipes: do not squeeze the columns to 80 characters
    compact = console.width < WIDE
    over_seeds = any("objective_seeds_ci95" in m for m in metrics.values())
    columns = list(_COLUMNS)
    if over_seeds:
        columns.insert(2, SEEDS_COLUMN)
    keep = [not compact or c for _, c in columns]
    table = Table(title=escape(title))
    for (col, _), k in zip(columns, keep):
        if k:  # escaped: "[obj]" would be read as rich markup and vanish
            table.add_column(escape(col.format(ref=reference)), justify="left" if col == "agent" else "right")
    for name, m in metrics.items():
        lo, hi = m["objective_diff_ci95"]
        diff = "—" if name == reference else f"{m['objective_diff_mean']:+.3f} [{lo:+.3f}, {hi:+.3f}]"
        name = name if "seeds" not in m else f"{name} ({m['seeds']} seeds)"
        if m.get("label"):  # an oracle (optimal with a hidden regime): the title and a note say more
            name = f"{name} ({m['label'].split(' (')[0]})"
        cells = [
            name, f"{m['objective_mean']:.3f} ± {m['objective_se']:.3f}", diff,
            _fmt(m.get("objective_exact")), _fmt(m["pnl_mean"], 2), _fmt(m["pnl_std"], 2),
            _fmt(m["sharpe"], 2), _fmt(m["certainty_equivalent"], 2), _fmt(m["spread_mean"]),
            _fmt(m["final_inventory_mean"], 2), _fmt(m["final_inventory_std"], 2),
            _fmt(m["abs_inventory_mean"], 2), _fmt(m["fills_mean"], 1), _fmt(m["impact_cost_mean"], 3),
        ]
        if over_seeds:
            ci = m.get("objective_seeds_ci95")
            cells.insert(2, "" if ci is None else f"[{ci[0]:.3f}, {ci[1]:.3f}]")
        table.add_row(*(escape(c) for c, k in zip(cells, keep) if k))
    console.print(table)
    if compact:
        console.print(f"(compact layout for a {console.width}-column terminal; results.csv has every column)")


def table_metrics(result) -> dict[str, dict[str, Any]]:
    """The table's rows: every agent of ``result``, and before the seeds of each agent over
    training seeds (:data:`seed_groups`) its aggregate row (:func:`mmgym.evaluation.aggregate_seeds`)."""
    from mmgym.evaluation import aggregate_seeds

    group_of = {member: name for name, members in seed_groups.items() for member in members}
    rows: dict[str, dict[str, Any]] = {}
    for name, m in result.metrics.items():
        group = group_of.get(name)
        if group is not None and group not in rows:
            rows[group] = aggregate_seeds(result, seed_groups[group])
        rows[name] = m
    return rows


def seeds_note(name: str, m: dict[str, Any]) -> str:
    """What the row of an agent over training seeds means, with its numbers (printed under the table)."""
    labels = ", ".join(member.split("/", 1)[1] for member in seed_groups[name])
    s = m["seeds"]
    lo, hi = m["objective_seeds_ci95"]
    return (f"{name}: {s} training seeds ({labels}), each on these episodes. Its row: mean over seeds ± "
            f"the episodes' SE; 95% CI over seeds [{lo:.3f}, {hi:.3f}] (t-interval, {s - 1} d.f., over the "
            f"per-seed means); Δobj: mean of the per-seed paired differences, CI ± "
            f"t({m['objective_diff_dof']:.1f} d.f.) × sqrt({m['objective_diff_se_seeds']:.3f}² seeds + "
            f"{m['objective_diff_se_episodes']:.3f}² episodes); other columns: means over seeds.")


def write_outputs(result, out: Path, config_path: str, overrides: list[str],
                  rows: dict[str, dict[str, Any]] | None = None) -> None:
    """results.json (an agent over seeds keeps its seeds under ``per_seed``: model path and
    metrics) and results.csv (one row per table row, :func:`table_metrics`)."""
    import pandas as pd

    out.mkdir(parents=True, exist_ok=True)
    rows = result.metrics if rows is None else rows
    meta = dict(result.metadata, config_path=str(config_path), overrides=overrides,
                model_paths=dict(model_paths), seed_groups=dict(seed_groups))
    members = {m for ms in seed_groups.values() for m in ms}
    agents: dict[str, dict[str, Any]] = {}
    for name, m in rows.items():
        if name in members:
            continue
        agents[name] = dict(m)
        if name in seed_groups:
            agents[name]["per_seed"] = {
                member.split("/", 1)[1]: dict(rows[member], model=path)
                for member, path in zip(seed_groups[name], model_paths[name])}
    (out / "results.json").write_text(json.dumps(_clean({"agents": agents, "metadata": meta}), indent=2))
    csv_rows = []
    for name, m in rows.items():
        row: dict[str, Any] = {"agent": name}
        for k, v in m.items():
            if k.endswith("_ci95"):
                row[k + "_lo"], row[k + "_hi"] = v
            elif isinstance(v, dict):
                row[k] = json.dumps(v)
            else:
                row[k] = v
        csv_rows.append(row)
    pd.DataFrame(csv_rows).to_csv(out / "results.csv", index=False)


def write_audit(result, out: Path, env_config) -> None:
    """``audit.csv``: one row per fill of every agent (the scenario's columns: the portfolio adds
    the asset and its mid)."""
    from mmgym.evaluation import audit_columns

    with open(out / "audit.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(audit_columns(env_config))
        for name, batch in result.batches.items():
            for rec in batch.audit or []:
                w.writerow((name, *rec[1:]))


def write_alerts(result, out: Path) -> bool:
    """``alerts.jsonl``: one JSON object per risk-limit alert of every agent's evaluated episodes
    (``agent``, ``episode``, ``step``, ``asset`` (index or ``"factor"``), ``limit_name``, ``alert``
    (``breach``/``warn``), ``value``, ``limit``); False (nothing written) when the env has no limits."""
    if all(batch.alerts is None for batch in result.batches.values()):
        return False
    with open(out / "alerts.jsonl", "w") as fh:
        for name, batch in result.batches.items():
            fh.writelines(json.dumps({"agent": name, **rec}) + "\n" for rec in batch.alerts or [])
    return True


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    return f"evaluate.py: warning: {message}\n"


def _file_safe(name: str) -> str:
    """An agent name as a file-name part."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def _reference(requested: str | None, agents: dict[str, Any], env_config: Any) -> str | None:
    """The reference of the paired differences: ``requested``, else
    :func:`mmgym.evaluation.default_reference` (``optimal`` where it is the env's exact optimum,
    ``as_tuned`` on the book and the OU mid, else the first agent); never an agent over seeds or
    one of its seeds (ConfigError)."""
    members = {m: name for name, ms in seed_groups.items() for m in ms}
    if requested is not None:
        if requested in seed_groups:
            raise ConfigError(f"--reference {requested!r}: an agent over training seeds cannot be the "
                              f"reference (use a baseline, or one model: {seed_groups[requested][0]!r} "
                              "as its own NAME=path)")
        if requested in members:
            raise ConfigError(f"--reference {requested!r}: one seed of the agent over seeds "
                              f"{members[requested]!r} cannot be its reference (use a baseline)")
        if requested not in agents:
            raise ConfigError(f"--reference {requested!r} is not one of the agents "
                              f"({', '.join([a for a in agents if a not in members] + list(seed_groups))})")
        return requested
    if not seed_groups:
        return None  # run_evaluation's default (mmgym.evaluation.default_reference)
    singles = [a for a in agents if a not in members]
    if not singles:
        raise ConfigError("--agents: an agent over training seeds needs a reference outside its seeds: "
                          "add a baseline (e.g. optimal) or a single model")
    from mmgym.evaluation import default_reference

    return default_reference(env_config, singles)


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
        reference = _reference(args.reference, agents, cfg.env)
        from rich.console import Console

        from mmgym.evaluation import run_evaluation, write_plots

        console = Console(stderr=True)
        result = run_evaluation(cfg.env, agents, episodes=episodes, seed=seed,
                                baselines_config=cfg.baselines, num_envs=num_envs,
                                reference=reference, audit=args.audit,
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
    rows = table_metrics(result)
    print_table(rows, result.reference, title)
    for name in seed_groups:
        print(seeds_note(name, rows[name]))
    for pol in result.policies.values():  # the tuned baselines: what the search chose, and how
        tuning = getattr(pol, "tuning", None)
        if tuning is not None:
            print(f"tuned: {tuning.summary()}")
    alert_rows = [(name, m) for name, m in result.metrics.items() if "alerts_breach_mean" in m]
    if alert_rows:  # risk limits: mean alerts per episode (details in alerts.jsonl)
        print("alerts per episode (breach / warn): " + ", ".join(
            f"{name} {m['alerts_breach_mean']:.2f} / {m['alerts_warn_mean']:.2f}" for name, m in alert_rows))
    if model_only:  # the limit order book: the baselines' model is not the env
        print(f"note: {result.metadata['baseline_model']}; 'exact E[obj]' does not apply "
              "(results.json: objective_model)")
    if "optimal_label" in result.metadata:  # optimal reads state the agent does not observe
        print(f"note: optimal is the {result.metadata['optimal_label']}: it reads the hidden regime, "
              "which an agent on this env does not observe")
    if not_exact:  # the intensity market with a config the DP does not solve exactly
        print(f"note: no exact values for this config: {not_exact}")
    write_outputs(result, out, args.config, overrides, rows)
    if args.audit:
        write_audit(result, out, cfg.env)
    alerts = write_alerts(result, out)
    if not args.no_plots:
        write_plots(result, cfg.env, out)
    if args.video:
        from mmgym.evaluation.video import episode_frames, write_gif

        for name, policy in result.policies.items():
            frames = episode_frames(cfg.env, policy, seed, max_frames=args.video_frames,
                                    title=f"{cfg.env.id}: {name}, episode seed {seed}")
            write_gif(frames, out / f"video_{_file_safe(name)}.gif")
    glass = False
    if args.glass_box:
        from mmgym.evaluation.glass_box import driver_of, record_glass_box, write_glass_box

        if driver_of(cfg.env) is None:
            print(f"evaluate.py: note: --glass-box: {cfg.env.id} has no hidden driver (nothing but t and q "
                  "drives its market); no glass_box.png written")
        else:
            records = {name: record_glass_box(cfg.env, pol, episodes, seed, num_envs)
                       for name, pol in result.policies.items()}
            write_glass_box(records, out, title=f"{args.config}: {episodes} episodes, seed {seed}")
            glass = True
    print(f"wrote {out}/results.json, results.csv" + ("" if args.no_plots else ", plots")
          + (", audit.csv" if args.audit else "") + (", alerts.jsonl" if alerts else "")
          + (", video_<agent>.gif" if args.video else "")
          + (", glass_box.png, glass_box.csv" if glass else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python
"""The README's table of scenarios x {as, as_tuned, glft (or its variant), ppo, optimal}.

Usage::

    python benchmarks/scenarios_table.py [--episodes 10000] [--seed 100000] [--runs runs]
        [--scenarios cjp toxic alpha regimes regimes_hidden events] [--out runs/scenarios_table]

For each scenario config ``configs/<name>.yaml`` it runs ``evaluate.py`` (the same code path a user
runs) on held-out episodes (``--seed``: episode e uses seed + e, disjoint from training and tuning
seeds) with the scenario's baselines and, when trained models exist, PPO over its training seeds:
``<runs>/bench_ppo_<name>/seed*/model.zip`` (the layout ``benchmarks/train_cjp.py --config
configs/ppo_<name>.yaml --seeds 0 1 2`` writes). Each cell is the agent's value as a percentage of
the exact optimum V0: the exact policy value where the DP gives one (static baselines), otherwise
the Monte Carlo mean (PPO: the mean over seeds, with the t-interval of the per-seed means). The
"paired" column estimates PPO's value as ``V0 + mean(ppo - optimal)`` on the same episodes: the
optimum's Monte Carlo return, whose mean V0 is known exactly, is a control variate (coefficient 1)
for PPO's, so the episodes' luck common to both cancels (its 95 % CI is the paired difference's,
over seeds and episodes). The last column is PPO's share of the gap between ``as_tuned`` and the
optimum it closes, from the paired estimate. On
``regimes_hidden`` the optimum is the full-information oracle (an upper bound), and the table says
so. Writes ``table.md`` and ``table.json`` into ``--out``.
"""

from __future__ import annotations

import argparse
import glob
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: scenario -> the glft column's baseline (the variant that honours the scenario)
GLFT = {"alpha": "glft_drift"}
DEFAULT = ("cjp", "toxic", "alpha", "regimes", "regimes_hidden", "events")


def _cell(agent: dict, v0: float) -> tuple[float, str]:
    exact = agent.get("objective_exact")
    if exact is not None:
        return 100.0 * exact / v0, f"{100.0 * exact / v0:.2f}"
    mean = agent["objective_mean"]
    if agent.get("seeds"):
        lo, hi = (100.0 * x / v0 for x in agent["objective_seeds_ci95"])
        return 100.0 * mean / v0, f"{100.0 * mean / v0:.2f} [{lo:.2f}, {hi:.2f}]"
    return 100.0 * mean / v0, f"{100.0 * mean / v0:.2f} ± {100.0 * agent['objective_se'] / v0:.2f}"


def run(name: str, args: argparse.Namespace) -> dict:
    cfg = ROOT / "configs" / f"{name}.yaml"
    glft = GLFT.get(name, "glft")
    agents = ["as", "as_tuned", glft, "optimal"]
    models = sorted(glob.glob(str(Path(args.runs) / f"bench_ppo_{name}" / "seed*" / "model.zip")))
    if models:
        # the PPO experiment's env section: the same market, with the agent's action columns
        # (the baselines quote raw depths and are unaffected)
        cfg = ROOT / "configs" / f"ppo_{name}.yaml"
        agents.append(f"ppo={Path(args.runs) / f'bench_ppo_{name}' / 'seed*' / 'model.zip'}")
    out = Path(args.out) / name
    cmd = [sys.executable, str(ROOT / "evaluate.py"), str(cfg), "--agents", *agents, "--episodes",
           str(args.episodes), "--seed", str(args.seed), "--out", str(out), "--no-plots"]
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)
    res = json.loads((out / "results.json").read_text())["agents"]
    v0 = res["optimal"]["objective_exact"]
    row = {"scenario": name, "v0": v0, "glft": glft, "cells": {}}
    for key in ("as", "as_tuned", glft, "ppo", "optimal"):
        if key in res:
            row["cells"][key] = _cell(res[key], v0)
    if "ppo" in res:
        ppo = res["ppo"]
        if ppo.get("reference") != "optimal":
            raise SystemExit(f"scenarios_table.py: {name}: PPO's paired difference is against "
                             f"{ppo.get('reference')!r}, not optimal")
        lo, hi = (100.0 * (1.0 + x / v0) for x in ppo["objective_diff_ci95"])
        paired = 100.0 * (1.0 + ppo["objective_diff_mean"] / v0)
        row["cells"]["ppo_paired"] = (paired, f"{paired:.2f} [{lo:.2f}, {hi:.2f}]")
        t = row["cells"]["as_tuned"][0]
        row["gap_closed"] = 100.0 * (paired - t) / (100.0 - t) if t < 100.0 else None
    return row


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--episodes", type=int, default=10_000)
    p.add_argument("--seed", type=int, default=100_000)
    p.add_argument("--runs", default=str(ROOT / "runs"))
    p.add_argument("--scenarios", nargs="+", default=list(DEFAULT))
    p.add_argument("--out", default=None, help="default: runs/scenarios_table/<date-time> (never reused)")
    args = p.parse_args(argv)
    if args.out is None:
        import time

        args.out = str(ROOT / "runs" / "scenarios_table" / time.strftime("%Y%m%d-%H%M%S"))
    missing = [s for s in args.scenarios if not (ROOT / "configs" / f"{s}.yaml").is_file()]
    if missing:
        print(f"scenarios_table.py: no config for {', '.join(missing)} in configs/", file=sys.stderr)
        return 2
    rows = [run(s, args) for s in args.scenarios]
    lines = ["| scenario | V₀ | as | as_tuned | glft (variant) | ppo (over seeds: mean [95 % CI]) "
             "| ppo, paired with optimal [95 % CI] | optimal | gap closed by ppo |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        c = r["cells"]
        oracle = " (oracle)" if r["scenario"].endswith("hidden") else ""
        g = r.get("gap_closed")
        lines.append(
            f"| {r['scenario']} | {r['v0']:.3f} | {c['as'][1]} | {c['as_tuned'][1]} | "
            f"{c[r['glft']][1]}{'' if r['glft'] == 'glft' else ' (' + r['glft'] + ')'} | "
            f"{c['ppo'][1] if 'ppo' in c else '—'} | {c['ppo_paired'][1] if 'ppo' in c else '—'} | "
            f"{c['optimal'][1]}{oracle} | "
            f"{'—' if g is None else f'{g:.0f} %'} |")
    text = "\n".join(lines)
    print(text)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "table.md").write_text(text + "\n")
    (out / "table.json").write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

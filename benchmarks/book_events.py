"""Background order-book events/s of several checkouts, interleaved round by round.

    git worktree add --detach /tmp/mmgym-old 20bb7de
    python benchmarks/book_events.py /tmp/mmgym-old . --rounds 10 [--informed]

Each round runs every tree once, in a fresh process (``PYTHONPATH=<tree>``), in the order given:
the default book's flow (``BookConfig()``; with ``--informed`` 30 % informed market orders,
``configs/lob_toxic.yaml``'s flow) for 7 runs of 20,000 time units, one env, one core; a tree's
figure is the median of the 7. The report gives each tree's median over rounds and, for each tree
after the first, the median (and range) of its per-round ratio to the first: on a shared, noisy
machine a ratio measured within one round is the least noisy figure (BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

PROBE = r'''
import json, statistics, sys, time
import numpy as np
from mmgym.scenarios.lob import BookConfig
from mmgym.sim import book as K

informed = sys.argv[1] == "1"
cfg = BookConfig(informed={"fraction": 0.3, "sigma": 0.02}) if informed else BookConfig()
b = K.new_book_state(1, cfg.n_levels, cfg.max_orders)
b.rng[0] = (12345, 678)
lam, theta = cfg.lam(), cfg.theta()
# the bare book through the same calls as before the informed flow existed (older trees too)
fp = cfg.flow_record(0.01) if informed else cfg.flow_record()
fs = (K.new_flow_state(1),) if informed else ()
K.init_book(b, 0, 10_000, lam, theta, 1, *fs)
K.book_flow(b, np.array([10.0]), lam, theta, fp, *fs)
rates, t_sim = [], 10.0
for _ in range(7):
    t0 = time.perf_counter()
    events = K.book_flow(b, np.array([t_sim + 20_000.0]), lam, theta, fp, *fs)
    rates.append(events / (time.perf_counter() - t0))
    t_sim += 20_000.0
print(json.dumps(statistics.median(rates)))
'''


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("trees", nargs="+", type=Path, help="checkouts to compare (the first is the base)")
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--informed", action="store_true", help="30 %% informed market orders")
    args = ap.parse_args(argv)
    for tree in args.trees:
        if not (tree / "mmgym" / "sim" / "book.py").is_file():
            print(f"book_events.py: error: {tree} is not an mmgym checkout with mmgym/sim/book.py",
                  file=sys.stderr)
            return 2
    rows = []
    for r in range(args.rounds):
        row = []
        for tree in args.trees:
            env = dict(os.environ, PYTHONPATH=str(tree.resolve()))
            out = subprocess.run([sys.executable, "-c", PROBE, "1" if args.informed else "0"],
                                 env=env, cwd="/", capture_output=True, text=True)
            if out.returncode != 0:
                last = (out.stderr.strip().splitlines() or ["(no output)"])[-1]
                print(f"book_events.py: error: the probe failed in {tree}: {last}", file=sys.stderr)
                return 1
            row.append(json.loads(out.stdout))
        rows.append(row)
        print(f"round {r + 1}: " + "  ".join(f"{v / 1e6:.2f} M" for v in row), flush=True)
    print(f"load average: {os.getloadavg()[0]:.2f}")
    for j, tree in enumerate(args.trees):
        med = statistics.median(row[j] for row in rows)
        line = f"{str(tree):<30} median {med / 1e6:.2f} M events/s"
        if j:
            ratios = [row[j] / row[0] for row in rows]
            line += (f"; against {args.trees[0]}: median ratio {statistics.median(ratios):.3f} "
                     f"({min(ratios):.3f}-{max(ratios):.3f})")
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())

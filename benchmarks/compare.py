"""Old commit against new code, side by side on one machine: speed and cold start.

Usage::

    git worktree add /tmp/mmgym-old <commit>
    python benchmarks/compare.py --old /tmp/mmgym-old [--new .] [--rounds 9] [--json out.json]
    python benchmarks/compare.py --old /tmp/mmgym-old --cold        # empty numba cache, per env

Each round runs one fresh process per checkout, in alternating order, each measuring (with its own
warm numba cache, compile time excluded):

- ``vector_env[1000]``: ``gym.make_vec(id, 1000, vectorization_mode="vector_entry_point")``'s
  ``step`` on ``mmgym/MarketMaking-v0``, env-steps/s (median of 5 repeats of 300 calls);
- ``single_env``: ``gym.make("mmgym/MarketMaking-v0")``'s ``step`` (default wrappers), steps/s;
- ``book_events``: background order-book events/s on one core (the default flow);
- ``lob_env[64]``: ``gym.make_vec("mmgym/LOBMarketMaking-v0", 64)``'s ``step``, env-steps/s.

The machine is shared and noisy: the report gives each metric's median over rounds for both
checkouts and the median of the per-round ratios new/old (a ratio measured within one round is
the least noisy figure). ``--cold`` instead times ``gym.make`` + ``reset`` + one ``step`` of each
registered env in a fresh process with an empty ``NUMBA_CACHE_DIR``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

PROBE = r'''
import json, statistics, sys, time
import numpy as np
import gymnasium as gym
import mmgym

def med(fn, calls, reps=5):
    fn()
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        out.append(time.perf_counter() - t0)
    return statistics.median(out) / calls

res = {}
n = 1000
venv = gym.make_vec("mmgym/MarketMaking-v0", num_envs=n, vectorization_mode="vector_entry_point")
venv.reset(seed=0)
a = np.random.default_rng(0).uniform(-1, 1, (n, 2)).astype(np.float32)
res["vector_env[1000]"] = n / med(lambda: venv.step(a), 300)

env = gym.make("mmgym/MarketMaking-v0")
env.reset(seed=0)
a1 = np.zeros(2, dtype=np.float32)
def single():
    term = env.step(a1)[2]
    if term:
        env.reset()
res["single_env"] = 1.0 / med(single, 4000)

try:  # the book engine: mmgym.sim.book (after the redesign) or mmgym.book.kernel (before)
    try:
        from mmgym.scenarios.lob import BookConfig
        from mmgym.sim import book as K
        new = True
    except ImportError:
        from mmgym.book import kernel as K
        from mmgym.book.config import BookConfig
        new = False
    cfg = BookConfig()
    b = K.new_book_state(1, cfg.n_levels, cfg.max_orders)
    b.rng[0] = (12345, 678)
    lam, theta = cfg.lam(), cfg.theta()
    fp = cfg.flow_record() if new else cfg.flow_params()
    K.init_book(b, 0, 10_000, lam, theta, 1)
    K.book_flow(b, np.array([10.0]), lam, theta, fp)
    best = []
    t_sim = 10.0
    for _ in range(5):
        t0 = time.perf_counter()
        events = K.book_flow(b, np.array([t_sim + 20_000.0]), lam, theta, fp)
        best.append(events / (time.perf_counter() - t0))
        t_sim += 20_000.0
    res["book_events"] = statistics.median(best)
    lob = gym.make_vec("mmgym/LOBMarketMaking-v0", num_envs=64, vectorization_mode="vector_entry_point")
    lob.reset(seed=0)
    al = np.zeros((64, 2), dtype=np.float32)
    res["lob_env[64]"] = 64 / med(lambda: lob.step(al), 40)
except Exception as exc:  # noqa: BLE001 - report what could not be measured
    res["book_error"] = repr(exc)
print(json.dumps(res))
'''

COLD = r'''
import json, sys, time
t0 = time.perf_counter()
import gymnasium as gym, mmgym
env = gym.make(sys.argv[1])
env.reset(seed=0)
env.step(env.action_space.sample())
print(json.dumps({"seconds": time.perf_counter() - t0}))
'''


def _run(tree: Path, code: str, args: list[str] = (), env: dict | None = None) -> dict:
    env = dict(os.environ if env is None else env, PYTHONPATH=str(tree), MPLBACKEND="Agg")
    out = subprocess.run([sys.executable, "-c", code, *args], cwd=tree, env=env, capture_output=True,
                         text=True, timeout=3600)
    if out.returncode != 0:
        raise RuntimeError(f"{tree}: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _env_ids(tree: Path) -> list[str]:
    code = ("import json, gymnasium as gym, mmgym\n"
            "print(json.dumps(sorted(i for i in gym.registry if i.startswith('mmgym/'))))")
    return _run(tree, code)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--old", required=True, help="checkout of the old commit")
    ap.add_argument("--new", default=str(Path(__file__).resolve().parents[1]), help="checkout of the new code")
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--cold", action="store_true", help="cold-start times instead of speed")
    ap.add_argument("--json", default=None, help="write the raw results here")
    args = ap.parse_args(argv)
    trees = {"old": Path(args.old).resolve(), "new": Path(args.new).resolve()}
    report: dict = {"machine": f"{platform.machine()} {os.cpu_count()} cores, python {platform.python_version()}",
                    "command": "python " + " ".join(sys.argv)}
    if args.cold:
        # interleaved: each env's old and new cold starts run back to back (alternating which goes
        # first), so a change of machine load between them is as small as it can be
        cold: dict = {}
        ids = {label: set(_env_ids(tree)) for label, tree in trees.items()}
        for n, env_id in enumerate(sorted(ids["old"] | ids["new"])):
            order = list(trees.items()) if n % 2 == 0 else list(trees.items())[::-1]
            for label, tree in order:
                if env_id not in ids[label]:
                    continue
                with tempfile.TemporaryDirectory() as cache:
                    env = dict(os.environ, NUMBA_CACHE_DIR=cache)
                    secs = _run(tree, COLD, [env_id], env)["seconds"]
                cold.setdefault(env_id, {})[label] = secs
                print(f"{label:4s} {env_id:32s} cold gym.make + reset + step: {secs:7.1f} s", flush=True)
            if len(cold.get(env_id, {})) == 2:
                print(f"     {env_id:32s} new/old {cold[env_id]['new'] / cold[env_id]['old']:.2f}", flush=True)
        report["cold"] = cold
    else:
        for tree in trees.values():  # warm each checkout's numba cache first
            _run(tree, PROBE)
        rounds: list[dict] = []
        for r in range(args.rounds):
            order = ["old", "new"] if r % 2 == 0 else ["new", "old"]
            row = {label: _run(trees[label], PROBE) for label in order}
            rounds.append(row)
            print(f"round {r + 1}: " + "  ".join(
                f"{k} {row['old'].get(k, float('nan')):.4g}/{row['new'].get(k, float('nan')):.4g}"
                for k in row["new"] if not k.endswith("error")), flush=True)
        summary = {}
        for key in rounds[0]["new"]:
            if key.endswith("error") or key not in rounds[0]["old"]:
                continue
            old = [r["old"][key] for r in rounds]
            new = [r["new"][key] for r in rounds]
            summary[key] = {"old_median": statistics.median(old), "new_median": statistics.median(new),
                            "ratio_median": statistics.median(n / o for n, o in zip(new, old))}
        print(f"\n{'metric':18s} {'old (median)':>14s} {'new (median)':>14s} {'new/old (median of rounds)':>28s}")
        for key, s in summary.items():
            print(f"{key:18s} {s['old_median']:14.4g} {s['new_median']:14.4g} {s['ratio_median']:28.3f}")
        report["rounds"] = rounds
        report["summary"] = summary
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

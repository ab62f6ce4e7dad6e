"""The order-book engine (:mod:`mmgym.sim.book`): cold compile per function, events/s, the env's
call pattern.

Usage::

    python benchmarks/book_engine.py compile [--repeats 1]
    python benchmarks/book_engine.py events [--seconds 20000] [--repeats 7]
    python benchmarks/book_engine.py env [--envs 64] [--steps 200] [--repeats 7] [--model power]

``compile``: cold compile of what the engine's users call, in a fresh subprocess with an empty
private ``NUMBA_CACHE_DIR``: ``init_book``, ``book_flow``, ``book_apply_ops`` and ``book_record``
from Python, then one jitted env-like caller (``_env`` below) that calls ``init_book``,
``run_flow``, ``own_cancel``, ``own_reduce``, ``take``, ``own_limit`` and ``maybe_recentre`` from
an ``@njit(cache=True, _nrt=False)`` function, as the env kernel does. Reports CPU seconds
(``time.process_time``: less disturbed by other load than wall time) per Python call and per
function compiled (numba ``numba:compile`` events, self time). numba's one-time start-up (a
trivial function compiled first) is excluded.

``events``: background events per second on one core, default ``BookConfig()`` flow from a seeded
state; medians over repeats. ``env``: the env's call pattern (quotes at the touch each step, a
market order every tenth step, ``maybe_recentre``, ``run_flow`` for one time unit per env).

The engine before the redesign (``mmgym.book.kernel``) was measured against this one side by side
with this file at commit f08619a (``--engines old new``); ``benchmarks/compare.py`` compares two
checkouts (old commit, new code) in separate processes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
from numba import njit

from mmgym.scenarios.lob import BookConfig
from mmgym.sim import book as NEW

BIG = np.int64(2**62)


def _new_fp(cfg: BookConfig):
    return cfg.flow_record()


# --------------------------------------------------------------- env-like jitted callers ---
@njit(cache=True, _nrt=False)
def _new_slot(b, i, side):
    for j in range(b.orders.shape[1]):
        if b.orders[i, j, NEW.ORD_QTY] > 0 and b.orders[i, j, NEW.ORD_SIDE] == side:
            return j
    return -1


@njit(cache=True, _nrt=False)
def _new_env(b, lam, theta, fp, tape, fs, n_steps, offset, reset):
    ev = np.int64(0)
    for k in range(n_steps):
        for i in range(b.time.shape[0]):
            if reset:
                NEW.init_book(b, i, np.int64(10_000), lam, theta, np.int64(1))
            t0 = b.time[i]
            bid_tick = b.best[i, NEW.BID] - offset
            ask_tick = b.best[i, NEW.ASK] + offset
            for side in range(2):
                j = _new_slot(b, i, side)
                tk = bid_tick if side == 0 else ask_tick
                if j >= 0 and b.orders[i, j, NEW.ORD_PX] != tk:
                    NEW.own_cancel(b, i, np.int64(j))
            if k % 10 == 0:
                q = b.inventory[i]
                if q != 0:
                    NEW.take(b, i, np.int64(1 if q > 0 else 0), np.int64(1),
                             NEW.NO_LIMIT_SELL if q > 0 else NEW.NO_LIMIT_BUY, NEW.OWN_TAKER)
            for side in range(2):
                j = _new_slot(b, i, side)
                tk = bid_tick if side == 0 else ask_tick
                if j >= 0:
                    NEW.own_reduce(b, i, np.int64(j), np.int64(1))
                else:
                    NEW.own_limit(b, i, np.int64(side), tk, np.int64(1), b.time[i])
            NEW.maybe_recentre(b, i, fp.margin)
            ev += NEW.run_flow(b, i, t0 + 1.0, BIG, lam, theta, fp, tape, fs)
    return ev


# ---------------------------------------------------------------------------- compile ---
def _compile_worker(engine: str) -> dict:
    """Cold-compile the workload of one engine in this (fresh) process; CPU seconds."""
    from numba.core import event as ev

    stack, rows = [], []

    class Listener(ev.Listener):
        def on_start(self, event):
            stack.append([event.data["dispatcher"].py_func.__name__, time.process_time(), 0.0])

        def on_end(self, event):
            name, t, child = stack.pop()
            dt = time.process_time() - t
            if stack:
                stack[-1][2] += dt
            rows.append((name, dt - child))

    @njit
    def _trivial(x):
        return x + 1

    _trivial(1)  # numba's one-time start-up, not counted
    ev.register("numba:compile", Listener())
    cfg = BookConfig()
    lam, theta = cfg.lam(), cfg.theta()
    K = NEW
    fp = _new_fp(cfg)
    b = K.new_book_state(2, cfg.n_levels, cfg.max_orders)
    b.rng[:] = 12345
    calls = []

    def call(name, fn):
        t, w = time.process_time(), time.perf_counter()
        fn()
        calls.append((name, time.process_time() - t, time.perf_counter() - w))

    call("init_book", lambda: K.init_book(b, 0, 10_000, lam, theta, 1))
    call("book_flow", lambda: K.book_flow(b, np.full(2, 5.0), lam, theta, fp))
    ops = np.zeros((2, 1, 5))
    ops[:, 0] = (K.OP_OWN_LIMIT, K.BID, b.best_bid[0], 1, 0.0)
    call("book_apply_ops", lambda: K.book_apply_ops(b, ops, 0, 2.0, np.zeros((2, 1), np.int64)))
    mid2 = np.zeros(10, dtype=np.int64)
    call("book_record", lambda: K.book_record(b, 0, 10.0, 1.0, lam, theta, fp, mid2,
                                              K.new_tape(100)))
    call("jitted env caller", lambda: _new_env(b, lam, theta, fp, K.new_tape(0), K.new_flow_state(2), 1, np.int64(0), True))
    per_fn: dict[str, float] = {}
    for name, self_t in rows:
        per_fn[name] = per_fn.get(name, 0.0) + self_t
    return {"calls": calls, "functions": sorted(per_fn.items(), key=lambda x: -x[1]),
            "n_compiles": len(rows)}


def compile_times(engines, repeats: int) -> None:
    for engine in engines:
        for r in range(repeats):
            with tempfile.TemporaryDirectory(prefix="book_engine_cache_") as cache:
                env = dict(os.environ, NUMBA_CACHE_DIR=cache)
                out = subprocess.run([sys.executable, __file__, "_compile_worker", engine], env=env,
                                     capture_output=True, text=True, check=True).stdout
            res = json.loads(out.strip().splitlines()[-1])
            total = sum(t for _, t, _ in res["calls"])
            wall = sum(w for _, _, w in res["calls"])
            print(f"\nengine, cold cache, run {r + 1}: {total:.2f} CPU s in total, {wall:.2f} s "
                  f"wall ({res['n_compiles']} compilations)")
            for name, t, w in res["calls"]:
                print(f"  first call {name:22s} {t:7.2f} CPU s {w:7.2f} s wall")
            print("  per function compiled (self time, summed over signatures):")
            for name, t in res["functions"]:
                print(f"    {name:28s} {t:7.2f} s")


# ----------------------------------------------------------------------------- speed ---
def _events_run(K, fp_of, sim_time: float):
    cfg = BookConfig()
    b = K.new_book_state(1, cfg.n_levels, cfg.max_orders)
    b.rng[0] = (12345, 678)
    lam, theta, fp = cfg.lam(), cfg.theta(), fp_of(cfg)
    K.init_book(b, 0, 10_000, lam, theta, 1)
    K.book_flow(b, np.array([10.0]), lam, theta, fp)
    t = time.perf_counter()
    n = K.book_flow(b, np.array([10.0 + sim_time]), lam, theta, fp)
    return n / (time.perf_counter() - t), b


def _report(label: str, xs: list[float], unit: str = "M events/s") -> None:
    print(f"{label}: median {np.median(xs) / 1e6:.2f} {unit} [{' '.join(f'{x / 1e6:.2f}' for x in xs)}]")


def events(seconds: float, repeats: int) -> None:
    _events_run(NEW, _new_fp, 10.0)  # compile / load
    _report(f"background flow, {seconds:g} time units x {repeats}",
            [_events_run(NEW, _new_fp, seconds)[0] for _ in range(repeats)])


def env_pattern(n_envs: int, steps: int, repeats: int, model: str, offset: int) -> None:
    cfg = BookConfig(queue_model=model)
    lam, theta = cfg.lam(), cfg.theta()

    def run(n):
        b = NEW.new_book_state(n_envs, cfg.n_levels, cfg.max_orders)
        b.rng[:] = np.random.default_rng(1).integers(1, 2**63, size=(n_envs, 2), dtype=np.uint64)
        for i in range(n_envs):
            NEW.init_book(b, i, 10_000, lam, theta, 1)
        t = time.perf_counter()
        ev = _new_env(b, lam, theta, _new_fp(cfg), NEW.new_tape(0), NEW.new_flow_state(b.time.shape[0]), n,
                      np.int64(offset), False)
        return ev / (time.perf_counter() - t)

    run(2)
    _report(f"env pattern ({model}, quotes {offset} ticks off the touch, {n_envs} envs x {steps} "
            f"steps) x {repeats}", [run(steps) for _ in range(repeats)])


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "_compile_worker":
        print(json.dumps(_compile_worker(sys.argv[2])))
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="what", required=True)
    c = sub.add_parser("compile")
    c.add_argument("--repeats", type=int, default=1)
    e = sub.add_parser("events")
    e.add_argument("--seconds", type=float, default=20_000.0, help="simulated time units per run")
    e.add_argument("--repeats", type=int, default=7)
    v = sub.add_parser("env")
    v.add_argument("--envs", type=int, default=64)
    v.add_argument("--steps", type=int, default=200)
    v.add_argument("--repeats", type=int, default=7)
    v.add_argument("--model", default="pessimistic", choices=["pessimistic", "power"])
    v.add_argument("--offset", type=int, default=0, help="quote this many ticks behind the touch")
    args = ap.parse_args()
    if args.what == "compile":
        compile_times(["new"], args.repeats)
    elif args.what == "events":
        events(args.seconds, args.repeats)
    else:
        env_pattern(args.envs, args.steps, args.repeats, args.model, args.offset)


if __name__ == "__main__":
    main()

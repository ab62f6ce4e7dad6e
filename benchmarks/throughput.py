"""Env-steps/s of the intensity market (N x steps per second), against a numpy reference.

Usage::

    python benchmarks/throughput.py [--repeats 5] [--quick] [--json out.json]

Measures, in one run and on one machine (report medians over repeats):

- the Gymnasium vector env (``gym.make_vec(..., vectorization_mode="vector_entry_point")``) through
  its ``step`` at N in {1, 64, 1000, 10000};
- the single env from ``gym.make`` (with Gymnasium's default wrappers);
- the stable-baselines3 VecEnv (``mmgym.agents.MMVecEnv``);
- the bare batched market (``BatchMarket.step``), serial and with both cores;
- a lean numpy-vectorised implementation of the same model (:class:`NumpyIntensityMarket`), the
  reference every ratio is quoted against;
- numba's first-call compile time (cold cache, in a subprocess) and the cached import time.
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
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import gymnasium as gym  # noqa: E402

import mmgym  # noqa: E402
from mmgym.config import load_env_config  # noqa: E402
from mmgym.envs.market import BatchMarket  # noqa: E402


class NumpyIntensityMarket:
    """The same model in lean vectorised numpy (as_hybrid action, linear fills, Gaussian mid).

    Quotes by AS 2008 eqs. (29)-(30) from the action's (gamma, skew); fills with probability
    min(1, A e^{-k delta} dt) (AS 2008 sec. 3); mid += sigma sqrt(dt) Z; reward d(wealth) - phi q^2 dt
    - alpha q_T^2; observation as in the env. One numpy Generator for the batch.
    """

    def __init__(self, config, num_envs, seed=0):
        m, r, a = config.market, config.reward, config.action
        self.n = num_envs
        self.s0, self.sigma, self.A, self.k, self.dt = m.s0, m.sigma, m.A, m.k, m.dt
        self.n_steps, self.Q = m.n_steps, m.max_inventory
        self.phi, self.alpha = r.inventory_penalty, r.terminal_penalty
        self.lg0, self.lg1, self.skew_max = np.log(a.gamma_min), np.log(a.gamma_max), a.skew_max
        self.decay = 1 - 0.5 ** (1 / config.observation.vol_halflife)
        self.rng = np.random.default_rng(seed)
        self.reset()

    def reset(self):
        n = self.n
        self.mid = np.full(n, self.s0)
        self.cash = np.zeros(n)
        self.q = np.zeros(n)
        self.step_i = np.zeros(n, dtype=np.int64)
        self.vol = np.full(n, self.sigma**2 * self.dt)
        self.ret = np.zeros(n)
        self.fb = np.zeros(n)
        self.fa = np.zeros(n)
        return self._obs()

    def _obs(self):
        return np.stack([
            self.q / self.Q, (self.n_steps - self.step_i) / self.n_steps,
            np.minimum(10.0, np.sqrt(self.vol / self.dt) / self.sigma), self.fb, self.fa,
            np.clip(self.ret / (self.sigma * np.sqrt(self.dt)), -10, 10),
        ], axis=1).astype(np.float32)

    def step(self, action):
        if not np.isfinite(action).all():
            raise ValueError("non-finite action")
        action = np.clip(action, -1.0, 1.0)
        gamma = np.exp(self.lg0 + 0.5 * (action[:, 0] + 1) * (self.lg1 - self.lg0))
        skew = action[:, 1] * self.skew_max
        tau = (self.n_steps - self.step_i) * self.dt
        s, q = self.mid, self.q
        w0 = self.cash + q * s
        shift = q * gamma * self.sigma**2 * tau - skew
        half = 0.5 * gamma * self.sigma**2 * tau + np.log1p(gamma / self.k) / gamma
        d_b, d_a = shift + half, -shift + half
        u = self.rng.random((2, self.n))
        fb = (u[0] < self.A * self.dt * np.exp(-self.k * d_b)) & (q + 1 <= self.Q)
        fa = (u[1] < self.A * self.dt * np.exp(-self.k * d_a)) & (q - 1 >= -self.Q)
        self.cash += fa * (s + d_a) - fb * (s - d_b)
        q = q + fb - fa
        ds = self.sigma * np.sqrt(self.dt) * self.rng.standard_normal(self.n)
        self.mid = s + ds
        self.step_i += 1
        done = self.step_i >= self.n_steps
        reward = self.cash + q * self.mid - w0 - self.phi * q * q * self.dt - done * self.alpha * q * q
        self.q, self.ret, self.fb, self.fa = q, ds, fb.astype(float), fa.astype(float)
        self.vol += self.decay * (ds * ds - self.vol)
        if done.any():
            self.mid[done], self.cash[done], self.q[done], self.step_i[done] = self.s0, 0.0, 0.0, 0
        return self._obs(), reward, done


def _time(fn, n_calls, repeats):
    fn()  # warm up
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(n_calls):
            fn()
        out.append(time.perf_counter() - t0)
    return statistics.median(out)


def _calls_for(n):
    return max(20, int(2_000_000 // max(n, 1) // 10)) if n > 1 else 20_000


def compile_times():
    """First-call compile (cold numba cache, fresh process) and cached first call."""
    code = ("import time; t=time.perf_counter(); import numpy as np, mmgym; "
            "from mmgym.envs.market import BatchMarket; m=BatchMarket(mmgym.load_env_config(), 4); "
            "m.reset(); m.step(np.zeros((4,2))); print(time.perf_counter()-t)")
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        cold = float(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                                    text=True, check=True).stdout)
        warm = float(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                                    text=True, check=True).stdout)
    return cold, warm


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="fewer calls (smoke run)")
    ap.add_argument("--json", default=None, help="write results here")
    args = ap.parse_args(argv)
    scale = 0.1 if args.quick else 1.0
    cfg = load_env_config()
    results: dict[str, dict] = {}

    def record(name, n, seconds, calls):
        sps = n * calls / seconds
        results[name] = {"num_envs": n, "steps_per_s": sps}
        print(f"{name:32s} N={n:6d}  {sps / 1e6:9.3f} M steps/s")

    for n in (1, 64, 1000, 10000):
        calls = max(5, int(_calls_for(n) * scale))
        ref = NumpyIntensityMarket(cfg, n)
        acts = np.random.default_rng(0).uniform(-1, 1, (n, 2))
        record(f"numpy_reference[{n}]", n, _time(lambda: ref.step(acts), calls, args.repeats), calls)
        venv = gym.make_vec("mmgym/MarketMaking-v0", num_envs=n, vectorization_mode="vector_entry_point")
        venv.reset(seed=0)
        a32 = acts.astype(np.float32)
        record(f"vector_env[{n}]", n, _time(lambda: venv.step(a32), calls, args.repeats), calls)
        market = BatchMarket(cfg, n)
        market.reset()
        record(f"batched_market[{n}]", n, _time(lambda: market.step(acts), calls, args.repeats), calls)
        if n >= 1000:
            pmarket = BatchMarket(cfg, n, parallel=True)
            pmarket.reset()
            record(f"batched_market_2cores[{n}]", n,
                   _time(lambda: pmarket.step(acts), calls, args.repeats), calls)
        if n in (64, 1000):
            from mmgym.agents import MMVecEnv

            sb3 = MMVecEnv(None, n, seed=0)
            sb3.reset()
            record(f"sb3_vec_env[{n}]", n, _time(lambda: sb3.step(a32), calls, args.repeats), calls)

    calls = int(20_000 * scale)
    env = gym.make("mmgym/MarketMaking-v0")
    env.reset(seed=0)
    a = np.zeros(2, dtype=np.float32)

    def single_step():
        _, _, term, _, _ = env.step(a)
        if term:
            env.reset()

    record("single_env_gym_make[1]", 1, _time(single_step, calls, args.repeats), calls)

    r = {k: v["steps_per_s"] for k, v in results.items()}
    ratios = {
        "vector_env[1000] / numpy[1000]": r["vector_env[1000]"] / r["numpy_reference[1000]"],
        "batched_market[1000] / numpy[1000]": r["batched_market[1000]"] / r["numpy_reference[1000]"],
        "vector_env[10000] / numpy[10000]": r["vector_env[10000]"] / r["numpy_reference[10000]"],
        "batched_market_2cores[10000] / numpy[10000]": r["batched_market_2cores[10000]"] / r["numpy_reference[10000]"],
        "single_env_gym_make / numpy[1]": r["single_env_gym_make[1]"] / r["numpy_reference[1]"],
    }
    print()
    for k, v in ratios.items():
        print(f"{k:48s} {v:6.2f}x")
    cold, warm = compile_times()
    print(f"\nnumba first call, cold cache: {cold:.2f} s; with cache: {warm:.2f} s (import included)")
    meta = {"machine": f"{platform.machine()} {platform.processor() or ''} {os.cpu_count()} cores",
            "python": platform.python_version(), "numpy": np.__version__,
            "mmgym": mmgym.__version__, "command": "python " + " ".join(sys.argv)}
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"results": results, "ratios": ratios, "compile_cold_s": cold,
                       "compile_cached_s": warm, "meta": meta}, fh, indent=2)


if __name__ == "__main__":
    main()

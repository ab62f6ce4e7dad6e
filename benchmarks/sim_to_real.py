"""Sim-to-real on a Binance capture: calibrate on its first part, train PPO on the calibrated book,
evaluate PPO and the baselines in simulation and on the replay of the rest, and of another capture.

Run: ``python benchmarks/sim_to_real.py [--data PATH.gz] [--other PATH.gz] [--ppo-steps N] [--split 0.5]
[--horizon 60] [--stride 10] [--figure docs/sim_to_real.png]``
(defaults: the USDⓈ-M BTCUSDT capture, the USDⓈ-M ETHUSDT capture as the other one, in
``../shared/data/binance`` beside the repository; ``--ppo-steps 0``: baselines only).

1. Calibration on the first ``--split`` of the recording (:func:`mmgym.calibrate.calibrate_recording`):
   sigma and per-side A, k (the as_hybrid rule's and the baselines' parameters).
2. ``as_tuned`` tuned by simulation on replay windows of that same first part (the tuning set).
3. The simulated book (``mmgym/LOBMarketMaking-v0``), from the same first part.
   *Calibrated*: ``market.tick_size`` and ``s0`` (the tape's tick, its mid 1 s in), ``sigma`` and
   ``A``/``k`` per side (step 1; on the book they only drive the as_hybrid rule and the baselines,
   not the flow), ``book.market_rate_buy``/``_sell`` (market orders per second per side: runs of
   trades with one trade time and aggressor, :func:`mmgym.calibrate.market_orders`),
   ``book.market_size_mean`` (their mean size in lots), and the touch depth: with
   ``--book-fit depth`` (default) the cancel rates theta(d) are scaled by one factor f so that the
   touch's steady state, lambda(1) m = f theta(1) x m + mu S (limit inflow = cancels + market
   orders; cancels are f theta(d) x_d events per second of m lots each), holds the recorded median
   touch depth x = D (lots at the best bid and ask, sampled every second); with ``--book-fit
   sigma`` f is instead bisected so the book's mid volatility (``as`` quoting, 20 episodes) equals
   the tape's sigma, and the script says when that is not reached.
   *Assumed*: ``limit_size_mean`` m = ``--book-inflow`` (2) x mu S / lambda(1) (the limit inflow at
   the touch twice the market orders' take), the Cont-Stoikov-Talreja (2010) shapes of the book's
   defaults (limit arrivals lambda(d) = 3.84 / d^0.52 over 10 levels, the cancel profile theta(d)
   up to f), geometric order sizes, ``max_size`` 50 x the mean sizes, 30 s of warm-up, no latency.
   *Not fitted*: the book's own mid volatility and touch fill rate (printed beside the tape's).
4. PPO (``--ppo-steps``) trained on that book with the project's path (``train.py`` on a YAML written
   to ``--run-dir``; one training seed, ``--seed``), as_hybrid action with the spread column, bounds
   in ticks (``--ppo-*`` options), episodes of ``--horizon`` s as on the replay.
5. Every agent (``as``, ``glft`` with ``--gamma``, ``as_tuned``, ``ppo``) evaluated (a) on the simulated
   book (``--sim-episodes`` episodes, common seeds), (b) on every ``--horizon``-s window (``--stride``
   apart) of the *rest* of the recording, one env per window (out of sample), (c) on the rest of the
   ``--other`` capture, recalibrated on *its* first part (sigma, A, k, as_tuned) with the price-unit
   settings (gamma, action bounds, penalties) rescaled by the tick ratio so every agent acts in the
   same ticks (the PPO network is not retrained).
   ``--model PATH`` evaluates a trained model.zip instead of training (same book options).
6. Per agent: objective (summed reward), PnL, fills, mean |q|, |q_T| and the mark-out of our passive
   fills after 1 s and 10 s: (mid(t + h) - price) for a bid fill, (price - mid(t + h)) for an ask
   fill, in ticks per lot, averaged over fills. On the replay t is the fill's recorded event time
   (fills whose t + h passes the recording's end are left out); in the simulator, which logs fills
   per step, mid(t + h) is the mid h steps after the start of the fill's step (h - 1 to h s after the
   fill; fills whose step + h passes the episode's end are left out). Negative: adverse selection.

PnL and objective are in price units x lots (USDT per 0.001-BTC lot on USDⓈ-M BTCUSDT; on the other
capture its own price and lot).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "binance"
DATA = str(DATA_DIR / "usdm_btcusdt_20240808.gz")
OTHER = str(DATA_DIR / "usdm_ethusdt_20240808.gz")
AGENTS = ("as", "glft", "as_tuned", "ppo")


def _head(rec, t_end_s: float):
    """The recording's events before ``t_end_s`` seconds (for calibration on the first part)."""
    from dataclasses import replace

    j = int(np.searchsorted(rec.t_ns, rec.t0_ns + int(t_end_s * 1e9)))
    cols = {k: getattr(rec, k)[:j] for k in ("t_ns", "exch_ns", "kind", "side", "px", "qty", "best_bid", "best_ask")}
    return replace(rec, **cols)


def touch_depth(rec) -> float:
    """Median lots at the best bid and ask, sampled every second (a dict book over the depth events)."""
    from mmgym.data.binance import CLEAR, CROSS_FIX, DEPTH, SNAPSHOT

    books = ({}, {})
    grid = rec.t0_ns + np.arange(1, int((rec.t_ns[-1] - rec.t0_ns) / 1e9)) * 10**9
    ends = np.searchsorted(rec.t_ns, grid, side="right")
    out, j = [], 0
    kind, side, px, qty = rec.kind.tolist(), rec.side.tolist(), rec.px.tolist(), rec.qty.tolist()
    for e in ends.tolist():
        while j < e:
            k = kind[j]
            if k == CLEAR:
                books[0].clear()
                books[1].clear()
            elif k in (DEPTH, SNAPSHOT, CROSS_FIX):
                if qty[j]:
                    books[side[j]][px[j]] = qty[j]
                else:
                    books[side[j]].pop(px[j], None)
            j += 1
        if e and books[0] and books[1]:
            out += [books[0].get(int(rec.best_bid[e - 1]), 0), books[1].get(int(rec.best_ask[e - 1]), 0)]
    return float(np.median(out))


def market_of(head, cal, args) -> dict:
    """The LOB env's ``market`` section: the tape's tick and mid, the calibrated sigma, A, k."""
    i = int(np.searchsorted(head.t_ns, head.t0_ns + 10**9))
    s0 = 0.5 * (head.best_bid[i] + head.best_ask[i]) * head.tick_size
    return {"s0": float(s0), "tick_size": head.tick_size, "dt": 1.0, "horizon": args.horizon, "max_inventory": 10,
            "sigma": cal.sigma, "A": cal.A, "k": cal.k, "A_bid": cal.A_bid, "k_bid": cal.k_bid,
            "A_ask": cal.A_ask, "k_ask": cal.k_ask}


def book_section(head, cal, args) -> tuple[dict, dict, str, float]:
    """The LOB env's ``market`` and ``book`` sections calibrated from ``head`` (module docstring, 3)."""
    from mmgym.calibrate import market_orders
    from mmgym.scenarios.lob import BookConfig

    mo = market_orders(head)
    T = (head.t_ns[-1] - head.t0_ns) / 1e9
    mu_b, mu_s = float((mo.side > 0).sum() / T), float((mo.side < 0).sum() / T)
    S = float(np.mean(mo.qty) / head.lot_size)
    D = touch_depth(head)
    bc = BookConfig()
    lam1, th = float(bc.lam()[0]), bc.theta()
    mu = 0.5 * (mu_b + mu_s)
    # limit inflow at the touch = --book-inflow x the market orders' take; cancels (theta(d) x_d events of
    # m lots each) scaled by f so the touch's steady state (lam1 m = f theta1 x m + mu S) holds x lots
    m = max(1.0, args.book_inflow * mu * S / lam1)

    def section(x: float) -> tuple[dict, float]:
        f = max(lam1 * m - mu * S, 1e-9) / (m * x * th[0])
        return {"market_rate_buy": mu_b, "market_rate_sell": mu_s, "market_size_mean": max(S, 1.0),
                "limit_size_mean": m, "cancel_rates": [float(v) for v in th * f],
                "max_size": int(50 * max(m, S)) + 1}, f

    x, fit = D, ""
    if args.book_fit == "sigma":  # bisection on log x: the book's mid volatility (as quoting) = the tape's
        from mmgym.baselines import make_baseline
        from mmgym.scenarios.lob import LOBEnvConfig

        lo, hi = 0.0, np.log(10 * D)
        for _ in range(14):
            x = float(np.exp(0.5 * (lo + hi)))
            cfg = LOBEnvConfig.model_validate({"id": "mmgym/LOBMarketMaking-v0", "market": market_of(head, cal, args),
                                               "book": section(x)[0]})
            sig = run(cfg, make_baseline("as", cfg), None, episodes=20, seed=20_000)["sigma_sim"]
            lo, hi = (lo, np.log(x)) if sig < cal.sigma else (np.log(x), hi)
        fit = f"; reached mid volatility {sig:.3g} against the tape's {cal.sigma:.3g}" + (
            " (NOT reached: this book shape cannot be that volatile)" if abs(sig / cal.sigma - 1) > 0.1 else "")
    book, f = section(x)
    market = market_of(head, cal, args)
    note = (f"market orders {mu_b:.2f} buy / {mu_s:.2f} sell per s, mean {S:.1f} lots; median touch depth {D:.0f} lots "
            f"-> limit_size_mean {m:.1f} lots, cancel rates x {f:.3g} (steady touch depth {x:.0f} lots, "
            f"fit to the tape's {args.book_fit}{fit})")
    return market, book, note, D


def ppo_action(tick: float, args, gscale: float = 1.0) -> dict:
    """The as_hybrid action with the spread column, bounds in ticks (``gscale`` rescales gamma)."""
    return {"mode": "as_hybrid", "gamma_min": args.ppo_gamma_min * gscale, "gamma_max": args.ppo_gamma_max * gscale,
            "skew_max": args.ppo_skew_ticks * tick, "spread": True, "spread_min": args.ppo_spread_min_ticks * tick,
            "spread_max": args.ppo_spread_max_ticks * tick}


def train_ppo(env: dict, args) -> tuple[str, float]:
    """Train PPO with train.py on ``env`` (a YAML in ``args.run_dir``); the model's path and the wall time."""
    import yaml

    n_envs = 200
    n_steps = round(args.horizon)
    exp = {"env": env, "baselines": {"gamma": args.gamma},
           "agent": {"algo": "ppo", "policy": "MlpPolicy",
                     "kwargs": {"n_steps": n_steps, "batch_size": n_envs * n_steps // 4, "n_epochs": 5, "gamma": 1.0,
                                "gae_lambda": 0.95, "learning_rate": "lin_3e-4", "clip_range": 0.2, "ent_coef": 0.0,
                                "policy_kwargs": {"net_arch": {"pi": [64, 64], "vf": [64, 64]}, "activation_fn": "tanh",
                                                  "log_std_init": -1.5}},
                     "normalize": False, "reward_scale": args.reward_scale},
           "train": {"total_timesteps": args.ppo_steps, "n_envs": n_envs, "seed": args.seed, "eval_freq": 0,
                     "eval_episodes": 200, "eval_baselines": ["as"], "checkpoint_freq": 0,
                     "run_dir": args.run_dir, "torch_threads": 1, "progress_bar": False}}
    run_dir = Path(args.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / "experiment.yaml"
    path.write_text(yaml.safe_dump(exp, sort_keys=False))
    envv = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    t = time.perf_counter()
    r = subprocess.run([sys.executable, str(ROOT / "train.py"), str(path), "--run-dir", str(run_dir), "--overwrite"],
                       env=envv, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t
    if r.returncode != 0:
        sys.exit(f"sim_to_real.py: error: train.py failed ({r.returncode}): {(r.stderr or r.stdout).strip().splitlines()[-1:]}")
    return str(run_dir / "model.zip"), wall


def load_ppo(path: str):
    from mmgym.agents.policies import sb3_policy_fn
    from stable_baselines3 import PPO

    return sb3_policy_fn(PPO.load(path, device="cpu"))


def _markouts(res: dict, markouts: dict) -> None:
    for h, (mo, w) in markouts.items():
        mo, w = np.concatenate(mo), np.concatenate(w)
        res[f"markout_{h}s"] = float((mo * w).sum() / max(w.sum(), 1))


def run(cfg, agent, recd=None, episodes: int = 0, seed: int = 0) -> dict:
    """Episodes of ``agent`` (a baseline: raw depths; else an obs -> action callable): statistics and
    mark-outs. On the replay (``recd`` the recording): one env per window of ``cfg``. In simulation
    (``recd`` None): ``episodes`` envs seeded ``seed + i``."""
    from mmgym.envs.market import BatchMarket
    from mmgym.sim.ledger import AUX_ASK_PX, AUX_BID_PX, AUX_FILL_ASK, AUX_FILL_BID, AUX_MID

    baseline = hasattr(agent, "act")
    if recd is not None:
        from mmgym.scenarios.replay import tape_of

        W = tape_of(cfg).win_ev.size
        seeds = list(range(W))
    else:
        W = episodes
        seeds = [seed + i for i in range(W)]
    m = BatchMarket(cfg, W, raw_depths=baseline)
    m.seed_rows(seeds)
    obs = m.reset()
    st = m.state
    T = cfg.market.n_steps
    ret, absq = np.zeros(W), np.zeros(W)
    fills, aux = [], np.zeros((T, W, 5))
    depth = []
    for s in range(T):
        if recd is None and s % 10 == 5:
            b = st.book
            rows = np.arange(W)
            depth += [b.bg[rows, 0, b.best[:, 0] - b.lower_tick], b.bg[rows, 1, b.best[:, 1] - b.lower_tick]]
        out = m.step(agent.act(m) if baseline else agent(obs))
        obs = out.obs
        ret += out.reward
        aux[s] = out.aux[:, [AUX_BID_PX, AUX_ASK_PX, AUX_FILL_BID, AUX_FILL_ASK, AUX_MID]]
        if recd is not None:
            for i in range(W):
                n = int(st.fill_n[i])
                if n:
                    fills.append(st.fills[i, :n].copy())
            st.fill_n[:] = 0
        if not out.done.all():
            absq += np.abs(m.inventory[:, 0])
    stats = dict(zip(m.stat_names, out.final_stats.T))
    res = {"windows": W, "objective": ret.mean(), "objective_se": ret.std(ddof=1) / np.sqrt(W),
           "pnl": stats["pnl"].mean(), "fills": stats["fills"].mean(), "mean_abs_q": absq.mean() / T,
           "abs_q_T": np.abs(stats["final_inventory"]).mean()}
    tick = cfg.market.tick_size
    mos = {1: ([], []), 10: ([], [])}
    if recd is not None:
        f = np.concatenate(fills) if fills else np.zeros((0, 5), np.int64)
        for how, name in enumerate(("through", "queue", "touch")):
            res[f"share_{name}"] = float(f[f[:, 4] == how, 3].sum() / max(f[:, 3].sum(), 1))
        mid2 = recd.best_bid + recd.best_ask
        for h in (1, 10):
            t = f[:, 0] + h * 10**9
            ok = t <= recd.t_ns[-1]
            j = np.searchsorted(recd.t_ns, t[ok], side="right") - 1
            sign = np.where(f[ok, 1] == 0, 1.0, -1.0)
            mos[h][0].append(sign * (0.5 * mid2[j] - f[ok, 2]))  # ticks
            mos[h][1].append(f[ok, 3].astype(float))
    else:
        res["touch_depth_sim"] = float(np.median(np.concatenate(depth)))
        res["sigma_sim"] = float(np.std(np.diff(aux[:, :, 4], axis=0)) / np.sqrt(cfg.market.dt))
        for h in (1, 10):
            dt_steps = round(h / cfg.market.dt)
            later = aux[dt_steps:, :, 4]
            for col, px, sign in ((2, 0, 1.0), (3, 1, -1.0)):
                lots = aux[: T - dt_steps, :, col]
                ok = lots > 0
                mos[h][0].append(sign * (later[ok] - aux[: T - dt_steps, :, px][ok]) / tick)
                mos[h][1].append(lots[ok])
    _markouts(res, mos)
    return res


def _row(name: str, r: dict) -> str:
    return (f"| {name} | {r['objective']:.3f} ± {r['objective_se']:.3f} | {r['pnl']:.3f} | {r['fills']:.1f} | "
            f"{r['mean_abs_q']:.2f} | {r['abs_q_T']:.2f} | {r['markout_1s']:+.2f} | {r['markout_10s']:+.2f} | "
            + (f"{r['share_through']:.0%} / {r['share_queue']:.0%} / {r['share_touch']:.0%} |" if "share_queue" in r else "- |"))


def capture_setup(path: str, args, tick_ref: float | None = None, sigma_ref: float | None = None):
    """Calibrate ``path``'s first part; the replay configs (tuning and test) and the scale factors."""
    from mmgym.calibrate import calibrate_recording
    from mmgym.scenarios import get
    from mmgym.scenarios.replay import recording

    rec = recording(path)
    t_split = args.split * rec.duration
    head = _head(rec, t_split)
    c = calibrate_recording(head).cal
    r = 1.0 if tick_ref is None else rec.tick_size / tick_ref
    gscale = 1.0 if sigma_ref is None else r * (sigma_ref / c.sigma) ** 2
    print(f"# {os.path.basename(path)}: {rec.duration:.1f} s, tick {rec.tick_size:g}; calibrated on [0, {t_split:.1f}) s: "
          f"sigma={c.sigma:.4g} A_bid={c.A_bid:.4g} k_bid={c.k_bid:.4g} A_ask={c.A_ask:.4g} k_ask={c.k_ask:.4g}"
          + ("" if tick_ref is None else f"; price-unit settings x {r:g}, gamma x {gscale:.4g}"))
    sc = get("mmgym/ReplayMarketMaking-v0")
    market = {**sc.defaults["market"], "tick_size": rec.tick_size, "horizon": args.horizon, "sigma": c.sigma,
              "A": c.A, "k": c.k, "A_bid": c.A_bid, "k_bid": c.k_bid, "A_ask": c.A_ask, "k_ask": c.k_ask}
    reward = {"inventory_penalty": args.inventory_penalty * r, "terminal_penalty": args.terminal_penalty * r}
    base = {**sc.defaults, "id": sc.id, "market": market, "reward": reward}
    common = {"path": path, "stride": args.stride, "queue_model": args.queue_model, "entry_latency": args.latency}
    train = sc.config_class.model_validate({**base, "replay": {**common, "end": t_split}})
    test = sc.config_class.model_validate({**base, "replay": {**common, "start": t_split, "start_mode": "sequential",
                                                             "fill_log": 10_000}})
    return rec, head, c, train, test, r, gscale, reward


def baselines(train, test, args, gscale: float = 1.0) -> dict:
    from mmgym.baselines import make_baseline
    from mmgym.config import BaselinesConfig

    bc = BaselinesConfig.model_validate({"gamma": args.gamma * gscale, "tuning": {
        "episodes": args.tuning_episodes, "gamma_min": 1e-7 * gscale, "gamma_max": 1e-1 * gscale, "method": "simulation"}})
    t = time.perf_counter()
    agents = {"as": make_baseline("as", test, bc), "glft": make_baseline("glft", test, bc),
              "as_tuned": make_baseline("as_tuned", train, bc)}
    print(f"# as_tuned tuned on {args.tuning_episodes} windows of the first part: "
          f"{getattr(agents['as_tuned'], 'describe', lambda: '')()} ({time.perf_counter() - t:.1f} s)")
    return agents


def with_action(cfg, action: dict):
    return type(cfg).model_validate({**cfg.model_dump(), "action": {**cfg.action.model_dump(), **action}})


def figure(results: dict, path: str, labels: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [a for a in AGENTS if any(a in results[s] for s in results)]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    width = 0.8 / len(results)
    for ax, (key, title) in zip(axes, (("objective", "objective (price x lots)"), ("markout_1s", "mark-out 1 s (ticks/lot)"),
                                       ("markout_10s", "mark-out 10 s (ticks/lot)"))):
        for j, (setting, res) in enumerate(results.items()):
            if key == "objective" and setting == "other":
                continue
            x = np.arange(len(names)) + j * width
            ax.bar(x, [res[a][key] if a in res else np.nan for a in names], width, label=labels[setting])
        ax.set_xticks(np.arange(len(names)) + width * (len(results) - 1) / 2, names)
        ax.axhline(0, color="k", lw=0.6)
        ax.set_title(title)
        if key == "objective":
            ax.set_yscale("symlog", linthresh=10)
    handles, texts = axes[1].get_legend_handles_labels()
    fig.legend(handles, texts, loc="lower center", ncol=len(texts), fontsize=9, frameon=False)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    fig.savefig(path, dpi=110)


def main() -> None:
    from mmgym.cli import OneLineParser

    ap = OneLineParser(prog="sim_to_real.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=DATA)
    ap.add_argument("--other", default=OTHER, help="a different capture to evaluate on ('' to skip)")
    ap.add_argument("--split", type=float, default=0.5, help="fraction of the recording used to calibrate and tune")
    ap.add_argument("--horizon", type=float, default=60.0)
    ap.add_argument("--stride", type=float, default=10.0)
    ap.add_argument("--gamma", type=float, default=1.0e-4, help="risk aversion of 'as' and 'glft'")
    ap.add_argument("--tuning-episodes", type=int, default=200)
    ap.add_argument("--queue-model", default="pessimistic", choices=["pessimistic", "power"])
    ap.add_argument("--latency", type=float, default=0.0, help="order-entry latency, seconds")
    ap.add_argument("--inventory-penalty", type=float, default=0.01)
    ap.add_argument("--terminal-penalty", type=float, default=0.1)
    ap.add_argument("--ppo-steps", type=int, default=1_000_000, help="PPO training steps on the calibrated book (0: no PPO)")
    ap.add_argument("--model", default=None, help="evaluate this PPO model.zip instead of training one")
    ap.add_argument("--run-dir", default="runs/sim_to_real", help="train.py's run directory")
    ap.add_argument("--seed", type=int, default=0, help="PPO training seed")
    ap.add_argument("--reward-scale", type=float, default=0.1)
    ap.add_argument("--ppo-gamma-min", type=float, default=1.0e-6)
    ap.add_argument("--ppo-gamma-max", type=float, default=1.0e-1)
    ap.add_argument("--ppo-skew-ticks", type=float, default=5.0)
    ap.add_argument("--ppo-spread-min-ticks", type=float, default=-0.5)
    ap.add_argument("--ppo-spread-max-ticks", type=float, default=1.5)
    ap.add_argument("--sim-episodes", type=int, default=200)
    ap.add_argument("--book-fit", default="depth", choices=["sigma", "depth"],
                    help="what the book's cancel rates are fitted to: the tape's mid volatility or its touch depth")
    ap.add_argument("--book-inflow", type=float, default=2.0,
                    help="the book's limit inflow at the touch / the market orders' take (sets limit_size_mean)")
    ap.add_argument("--figure", default=None, help="save the bar chart here (e.g. docs/sim_to_real.png)")
    args = ap.parse_args()
    for path in (args.data, args.other or None, args.model):
        if path and not Path(path).is_file():
            ap.error(f"no such file: {path}")
    if not 0.0 < args.split < 1.0:
        ap.error(f"--split must be in (0, 1), got {args.split:g}")
    if args.ppo_steps < 0 or args.sim_episodes < 2 or args.book_inflow <= 1 or args.horizon <= 0 or args.stride <= 0 or args.tuning_episodes < 1:
        ap.error("--ppo-steps must be >= 0, --sim-episodes >= 2, --book-inflow > 1, --horizon, --stride > 0, --tuning-episodes >= 1")
    if args.ppo_spread_max_ticks <= args.ppo_spread_min_ticks or args.ppo_gamma_max <= args.ppo_gamma_min:
        ap.error("--ppo-spread-max-ticks must exceed --ppo-spread-min-ticks, --ppo-gamma-max --ppo-gamma-min")
    try:
        _main(args)
    except Exception as exc:  # one line for bad data or settings (MMGYM_TRACEBACK=1: the traceback)
        if os.environ.get("MMGYM_TRACEBACK"):
            raise
        sys.exit(f"sim_to_real.py: error: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")


def _main(args) -> None:
    from mmgym.scenarios.lob import LOBEnvConfig

    t0 = time.perf_counter()
    rec, head, c, train, test, _, _, reward = capture_setup(args.data, args)
    market, book, note, D = book_section(head, c, args)
    print(f"# simulated book: {note}")
    lob_env = {"id": "mmgym/LOBMarketMaking-v0", "market": market, "reward": reward, "book": book,
               "action": ppo_action(rec.tick_size, args)}
    lob = LOBEnvConfig.model_validate(lob_env)
    agents = baselines(train, test, args)
    policy = None
    if args.model:
        policy = load_ppo(args.model)
        print(f"# ppo: {args.model} (not retrained)")
    elif args.ppo_steps:
        model, wall = train_ppo(lob_env, args)
        policy = load_ppo(model)
        print(f"# ppo: {args.ppo_steps:,} steps on the simulated book, one seed ({args.seed}), train.py wall {wall:.0f} s "
              f"({wall / 60:.1f} min), 1-min load after {os.getloadavg()[0]:.2f}; model {model}")
    if policy is not None:
        agents["ppo"] = policy
    ppo_test = with_action(test, lob_env["action"])
    results, labels = {}, {}

    def table(setting: str, label: str, short: str, cfg_of, recd, **kw) -> None:
        print(f"\n## {label}\n")
        print("| agent | objective ± se | PnL | fills/episode | mean abs q | abs q_T | mark-out 1 s | mark-out 10 s | "
              "fills: through / at price / touch |")
        print("|---|---|---|---|---|---|---|---|---|")
        results[setting], labels[setting] = {}, short
        for name, agent in agents.items():
            r = run(cfg_of(name), agent, recd, **kw)
            results[setting][name] = r
            print(_row(name, r))
        print(f"# episodes: {r['windows']}")

    table("sim", f"simulated book ({args.sim_episodes} episodes of {args.horizon:g} s)", "simulated book",
          lambda n: lob, None, episodes=args.sim_episodes, seed=10_000)
    ras = results["sim"]["as"]
    print(f"# the simulated book (as quoting): mid volatility {ras['sigma_sim']:.4g} per sqrt(s) (tape: {c.sigma:.4g}), "
          f"median touch depth {ras['touch_depth_sim']:.0f} lots (tape: {D:.0f})")
    table("replay", f"replay, {os.path.basename(args.data)}, windows of [{args.split * rec.duration:.1f}, {rec.duration:.1f}] s",
          f"replay {os.path.basename(args.data).split('.')[0]} (same capture)", lambda n: ppo_test if n == "ppo" else test, rec)
    if args.other:
        rec2, _, _, train2, test2, _, gscale, _ = capture_setup(args.other, args, rec.tick_size, c.sigma)
        agents.update(baselines(train2, test2, args, gscale))
        ppo_test2 = with_action(test2, ppo_action(rec2.tick_size, args, gscale))
        table("other", f"replay, {os.path.basename(args.other)} (other capture), windows of "
              f"[{args.split * rec2.duration:.1f}, {rec2.duration:.1f}] s",
              f"replay {os.path.basename(args.other).split('.')[0]} (other capture)", lambda n: ppo_test2 if n == "ppo" else test2, rec2)
    print(f"\n# gamma={args.gamma:g} for as/glft; queue model {args.queue_model}, latency {args.latency:g} s; mark-outs in "
          f"ticks per lot; total {time.perf_counter() - t0:.0f} s")
    if args.figure:
        figure(results, args.figure, labels)
        print(f"# figure: {args.figure}")


if __name__ == "__main__":
    main()

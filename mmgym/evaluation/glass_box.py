"""The glass box explains itself: the quotes a policy chose against the market's hidden driver.

A scenario with a hidden driver (a regime, the time to a scheduled event; its
:meth:`~mmgym.scenarios.base.Scenario.driver`, a :class:`~mmgym.scenarios.base.DriverSpec`) is run
with a policy over N episodes on the batched market, and every step of every row records

* the driver's value and bin, read before the step, the step count t and the inventory q before
  the step;
* the aux columns ``depth_bid`` and ``depth_ask`` (what every policy quotes), ``gamma`` and
  ``skew`` (the ``as_hybrid`` action's choice; NaN for raw-depth policies such as ``optimal``), and
  any size columns the market writes (aux columns named ``size*``).

:func:`summarize` reduces them per driver bin (all vectorised, one numpy pass per quantity):

=================  ==============================================================================
``steps``          row-steps in the bin; ``two_sided``: of them, with both sides quoted
``half_spread``    mean of (δb + δa)/2 over two-sided steps
``skew``           mean of (δb − δa)/2 over two-sided steps (positive: leaning to sell)
``skew_per_lot``   least-squares slope of (δb − δa)/2 on q over two-sided steps in the bin (NaN when
                   q does not vary there): how hard the quotes lean per lot held
``skew_q<q>``      mean of (δb − δa)/2 at inventory q, q in −2..2 (two-sided steps)
``gamma``          mean chosen risk aversion (as_hybrid agents; NaN otherwise)
``agent_skew``     mean chosen skew parameter of the as_hybrid action (NaN otherwise)
``abs_q``          mean |q| before the step
``<size col>``     mean of each size column, when the market has them
=================  ==============================================================================

:func:`write_glass_box` writes them as ``glass_box.csv`` (one row per agent and bin) and
``glass_box.png`` (one panel per quantity, x = driver bin, one line per agent). Episodes use the
seeds of :func:`~mmgym.evaluation.runner.run_policy` (episode e: seed + e), so every agent sees the
same scenarios. :class:`GlassBoxTracker` accumulates the same records step by step from a training
env (the ``mm/glass_box/`` TensorBoard scalars of :class:`mmgym.agents.callbacks.MarketStatsCallback`).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..config import ConfigError, EnvConfig
from ..make import make_market

__all__ = [
    "QUANTITIES",
    "Q_POINTS",
    "TB_QUANTITIES",
    "GlassBoxRecord",
    "GlassBoxTracker",
    "driver_of",
    "record_glass_box",
    "reference_scalars",
    "summarize",
    "tb_scalars",
    "write_glass_box",
]

#: the inventories at which ``skew_q<q>`` is reported
Q_POINTS = (-2, -1, 0, 1, 2)
#: the summary's per-bin quantities (:func:`summarize`), size columns aside
QUANTITIES = ("half_spread", "skew", "skew_per_lot", *(f"skew_q{q}" for q in Q_POINTS), "gamma",
              "agent_skew", "abs_q")
#: the quantities logged to TensorBoard as ``mm/glass_box/<quantity>/<bin>``
TB_QUANTITIES = ("gamma", "skew_per_lot", "half_spread")
#: the figure's panels: (quantity, y label)
_PANELS = (("half_spread", "half-spread (δb+δa)/2"), ("skew", "mean skew (δb−δa)/2 (> 0 leans to sell)"),
           ("skew_per_lot", "skew per lot: slope of (δb−δa)/2 on q"),
           ("gamma", "γ chosen (as_hybrid)"), ("agent_skew", "skew chosen (as_hybrid)"),
           ("abs_q", "mean |q| before the step"))


def driver_of(env_config: EnvConfig):
    """The scenario's :class:`~mmgym.scenarios.base.DriverSpec` for ``env_config``, or None."""
    from ..scenarios import get as get_scenario

    return get_scenario(env_config.id).driver(env_config)


class GlassBoxRecord:
    """Per-step records of one policy, flattened over (step, row): each attribute is (S,).

    Attributes:
        driver: the :class:`~mmgym.scenarios.base.DriverSpec`.
        value, bin: the driver's value and bin before the step. step: t before the step.
        q: inventory before the step. depth_bid, depth_ask, gamma, skew: the step's aux columns.
        sizes: name -> (S,) for size aux columns (may be empty).
    """

    def __init__(self, driver, value, bin_, step, q, depth_bid, depth_ask, gamma, skew, sizes=None):
        self.driver = driver
        self.value = value
        self.bin = bin_
        self.step = step
        self.q = q
        self.depth_bid = depth_bid
        self.depth_ask = depth_ask
        self.gamma = gamma
        self.skew = skew
        self.sizes = dict(sizes or {})


class GlassBoxTracker:
    """Accumulates glass-box records from a batched market stepped by someone else.

    Call :meth:`before_step` with the market before each step and :meth:`after_step` with the
    step's aux array after it; :meth:`record` returns what was gathered since the last
    :meth:`clear`. ``before_step`` may also be called once after a step for the next one (the
    state after a step, autoresets included, is the state before the next).
    """

    def __init__(self, market: Any, driver):
        self.driver = driver
        names = list(market.aux_names)
        self._col = {n: names.index(n) for n in ("depth_bid", "depth_ask", "gamma", "skew")}
        unused = getattr(market, "unused_aux", frozenset())  # without action.quote_size: no sizes
        self._sizes = {n: names.index(n) for n in names if n.startswith("size") and n not in unused}
        self._pre: tuple[np.ndarray, ...] | None = None
        self.clear()

    def clear(self) -> None:
        """Forget the records (the pending before-step state is kept)."""
        self._parts: list[tuple[np.ndarray, ...]] = []

    def before_step(self, market: Any) -> None:
        """Read the driver, t and q of every row now (before the step about to be taken)."""
        v = np.asarray(self.driver.values(market), dtype=np.float64).copy()
        self._pre = (v, np.asarray(self.driver.bin_of(v), dtype=np.int64),
                     market.step_count.copy(), market.inventory[:, 0].astype(np.float64))

    def after_step(self, aux: np.ndarray) -> None:
        """Store the step: the pending before-step state with this step's aux columns."""
        if self._pre is None:
            return
        c = self._col
        self._parts.append(self._pre + tuple(aux[:, c[n]].copy() for n in ("depth_bid", "depth_ask", "gamma", "skew"))
                           + tuple(aux[:, j].copy() for j in self._sizes.values()))
        self._pre = None

    @property
    def num_steps(self) -> int:
        """Row-steps recorded."""
        return sum(p[0].size for p in self._parts)

    def record(self) -> GlassBoxRecord:
        """What was recorded, as one :class:`GlassBoxRecord`."""
        n_cols = 8 + len(self._sizes)
        if self._parts:
            cols = [np.concatenate([p[j] for p in self._parts]) for j in range(n_cols)]
        else:
            cols = [np.empty(0, dtype=np.int64 if j in (1, 2) else np.float64) for j in range(n_cols)]
        sizes = dict(zip(self._sizes, cols[8:]))
        return GlassBoxRecord(self.driver, *cols[:8], sizes=sizes)


def record_glass_box(env_config: EnvConfig, policy: Any, episodes: int, seed: int = 0,
                     num_envs: int | None = None) -> GlassBoxRecord:
    """Run ``policy`` (a :class:`~mmgym.baselines.DepthPolicy`, or a callable obs -> normalised
    actions such as a loaded SB3 model) over ``episodes`` episodes (episode e: seed + e, as
    :func:`~mmgym.evaluation.runner.run_policy`) and record every step (module docstring).

    Raises:
        ConfigError: the scenario has no driver.
    """
    from ..baselines import DepthPolicy

    driver = driver_of(env_config)
    if driver is None:
        raise ConfigError(f"glass box: {env_config.id} has no hidden driver to plot the quotes against")
    is_depth = isinstance(policy, DepthPolicy)
    if not is_depth and not callable(policy):
        raise TypeError(f"policy must be a DepthPolicy or a callable, got {type(policy).__name__}")
    chunk = min(episodes, num_envs or 1000)
    n_steps = env_config.market.n_steps
    tracker = None
    for start in range(0, episodes, chunk):
        rows = min(chunk, episodes - start)
        market = make_market(env_config, rows, raw_depths=is_depth)
        actions = np.zeros((rows, market.action_dim))
        if tracker is None:
            tracker = GlassBoxTracker(market, driver)
        market.seed_rows([seed + start + i for i in range(rows)])
        obs = market.reset()
        for _ in range(n_steps):
            tracker.before_step(market)
            if is_depth:
                act = policy.act(market, out=actions)
            else:
                act = np.asarray(policy(obs), dtype=np.float64).reshape(rows, market.action_dim)
            buf = market.step(act)
            tracker.after_step(buf.aux)
            obs = buf.obs
    return tracker.record()


def _bin_mean(bins: np.ndarray, x: np.ndarray, mask: np.ndarray, n_bins: int) -> np.ndarray:
    """Mean of ``x[mask]`` per bin (NaN for an empty bin)."""
    b = bins[mask]
    cnt = np.bincount(b, minlength=n_bins).astype(np.float64)
    tot = np.bincount(b, weights=x[mask], minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(cnt > 0, tot / np.maximum(cnt, 1.0), np.nan)


def summarize(rec: GlassBoxRecord) -> dict[str, np.ndarray]:
    """Per-bin quantities of a record (module docstring): name -> (n_bins,) array, with
    ``steps`` and ``two_sided`` counts and one entry per size column."""
    n = len(rec.driver.labels)
    inside = rec.bin >= 0
    b = np.where(inside, rec.bin, 0)
    two = inside & np.isfinite(rec.depth_bid) & np.isfinite(rec.depth_ask)
    half = 0.5 * (rec.depth_bid + rec.depth_ask)
    skew = 0.5 * (rec.depth_bid - rec.depth_ask)
    half = np.where(two, half, 0.0)
    skew = np.where(two, skew, 0.0)
    out: dict[str, np.ndarray] = {
        "steps": np.bincount(b[inside], minlength=n).astype(np.int64),
        "two_sided": np.bincount(b[two], minlength=n).astype(np.int64),
        "half_spread": _bin_mean(b, half, two, n),
        "skew": _bin_mean(b, skew, two, n),
    }
    # slope of skew on q per bin: centred sums (no cancellation from large means)
    q_mean = _bin_mean(b, rec.q, two, n)
    dq = np.where(two, rec.q - np.nan_to_num(q_mean)[b], 0.0)
    ds = np.where(two, skew - np.nan_to_num(out["skew"])[b], 0.0)
    sqq = np.bincount(b[two], weights=(dq * dq)[two], minlength=n)
    sqs = np.bincount(b[two], weights=(dq * ds)[two], minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        out["skew_per_lot"] = np.where(sqq > 1e-12, sqs / np.where(sqq > 1e-12, sqq, 1.0), np.nan)
    for q in Q_POINTS:
        out[f"skew_q{q}"] = _bin_mean(b, skew, two & (rec.q == q), n)
    for name, x in (("gamma", rec.gamma), ("agent_skew", rec.skew)):
        ok = inside & np.isfinite(x)
        out[name] = _bin_mean(b, np.where(ok, x, 0.0), ok, n)
    out["abs_q"] = _bin_mean(b, np.abs(rec.q), inside, n)
    for name, x in rec.sizes.items():
        ok = inside & np.isfinite(x)
        out[name] = _bin_mean(b, np.where(ok, x, 0.0), ok, n)
    return out


def tb_scalars(summary: Mapping[str, np.ndarray], labels: tuple[str, ...], suffix: str = "") -> dict[str, float]:
    """``mm/glass_box/<quantity>/<bin><suffix>`` for :data:`TB_QUANTITIES` (finite values only)."""
    out = {}
    for qty in TB_QUANTITIES:
        for label, x in zip(labels, summary[qty]):
            if math.isfinite(float(x)):
                out[f"mm/glass_box/{qty}/{label}{suffix}"] = float(x)
    return out


def write_glass_box(records: Mapping[str, GlassBoxRecord], out_dir: str | Path, title: str = "") -> list[Path]:
    """``glass_box.csv`` (agent, bin, driver, the per-bin quantities) and ``glass_box.png`` (one
    panel per quantity with data, x = driver bin, one line per agent) in ``out_dir``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    names = list(records)
    driver = records[names[0]].driver
    labels = driver.labels
    summaries = {n: summarize(r) for n, r in records.items()}
    sizes = sorted({k for r in records.values() for k in r.sizes})
    fields = ["steps", "two_sided", *QUANTITIES, *sizes]
    csv_path = out / "glass_box.csv"
    with open(csv_path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["agent", "driver", "bin", *fields])
        for n, s in summaries.items():
            for i, label in enumerate(labels):
                row = []
                for f in fields:
                    x = s[f][i] if f in s else np.nan
                    row.append(int(x) if f in ("steps", "two_sided") else ("" if not np.isfinite(x) else f"{x:.6g}"))
                w.writerow([n, driver.name, label, *row])

    panels = [(q, lab) for q, lab in _PANELS if any(np.isfinite(s[q]).any() for s in summaries.values())]
    panels += [(sz, f"{sz} (mean)") for sz in sizes]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.3 * len(panels), 3.9), squeeze=False)
    x = np.arange(len(labels))
    step = max(1, len(labels) // 12)
    for ax, (qty, ylabel) in zip(axes[0], panels):
        for i, n in enumerate(names):
            y = summaries[n][qty]
            if np.isfinite(y).any():
                ax.plot(x, y, marker="o", ms=3, lw=1.4, color=plt.cm.tab10(i % 10), label=n)
        ax.set_xticks(x[::step])
        ax.set_xticklabels(labels[::step], fontsize=8)
        ax.set_xlabel(driver.name)
        ax.set_title(ylabel, fontsize=9)
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=8)
    fig.suptitle((title + "\n" if title else "") + driver.note, fontsize=9)
    fig.tight_layout()
    png = out / "glass_box.png"
    fig.savefig(png, dpi=110)
    plt.close(fig)
    return [csv_path, png]


def reference_scalars(env_config: EnvConfig, baselines_config: Any, episodes: int, seed: int,
                      name: str = "optimal") -> dict[str, float]:
    """A baseline's ``mm/glass_box/<quantity>/<bin>/<name>`` scalars over ``episodes`` episodes (the
    TensorBoard reference lines), ``{}`` when the scenario has no driver."""
    from .runner import get_baseline

    driver = driver_of(env_config)
    if driver is None:
        return {}
    rec = record_glass_box(env_config, get_baseline(name, env_config, baselines_config), episodes, seed)
    return tb_scalars(summarize(rec), driver.labels, suffix=f"/{name}")

"""Figures of an evaluation (matplotlib, drawn off-screen with the Agg backend)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..config import EnvConfig
from .runner import EvaluationResult, depth_surface

__all__ = ["write_plots"]


def write_plots(result: EvaluationResult, env_config: EnvConfig, out_dir: str | Path) -> list[Path]:
    """Write the evaluation figures (matplotlib, Agg) into ``out_dir``; returns their paths.

    * ``pnl_distribution.png``: histogram of episode PnL per agent.
    * ``inventory_distribution.png``: histogram of the final inventory per agent.
    * ``sample_path.png``: episode 0 (the same scenario for every agent): mid, bid/ask quotes,
      fills and inventory.
    * ``depth_surface.png``: bid and ask depth over (t, q), the reference/optimal policy beside
      each other agent (obs-policies are queried through the observation, :func:`depth_surface`).

    K > 1 assets (the portfolio) instead of the last three (:func:`_portfolio_plots`):

    * ``inventory_distribution.png``: histograms of the final factor exposures e_f = b_f^T x_T,
      one panel per factor (a scenario without a factor model: of its ``final_inventory``
      statistic, the portfolio's risk-equivalent inventory).
    * ``portfolio_path.png``: one row per agent, episode 0 (the same scenario for every agent): the
      K per-asset inventories (thin) and the factor exposures (thick), one y scale for all agents;
      with a factor model a last row with the mean |e_f(t)| over all episodes (band: ± 2 SE).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    names = list(result.batches)
    colors = {n: plt.cm.tab10(i % 10) for i, n in enumerate(names)}
    written: list[Path] = []

    def histograms(path: Path, values: dict[str, np.ndarray], bins: Any, labels: dict[str, str],
                   xlabel: str, title: str) -> None:
        fig, ax = plt.subplots(figsize=(8, 4.5))
        for n in names:
            ax.hist(values[n], bins=bins, histtype="step", lw=1.5, color=colors[n], label=labels[n])
        ax.set_xlabel(xlabel)
        ax.set_ylabel("episodes")
        ax.set_title(title)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)

    pnl = {n: result.batches[n].pnl for n in names}
    lo, hi = np.percentile(np.concatenate(list(pnl.values())), [0.5, 99.5])
    histograms(out / "pnl_distribution.png", pnl, np.linspace(lo, hi, 60) if hi > lo else 30,
               {n: f"{n} ({result.metrics[n]['pnl_mean']:.2f} ± {result.metrics[n]['pnl_std']:.2f})"
                for n in names}, "episode PnL", "PnL distribution (mean ± std)")

    from ..scenarios import get as get_scenario

    if get_scenario(env_config.id).assets(env_config) > 1:
        written += _portfolio_plots(result, env_config, out, names, colors, histograms, plt)
        return written  # the (t, q) depth surface is single-asset

    q_final = {n: result.batches[n].final_inventory for n in names}
    allq = np.concatenate(list(q_final.values()))
    qlo, qhi = int(allq.min()), int(allq.max())
    histograms(out / "inventory_distribution.png", q_final,
               np.arange(qlo - 0.5, qhi + 1.5, 1.0 if qhi - qlo <= 80 else (qhi - qlo) / 80),
               {n: f"{n} (std {result.metrics[n]['final_inventory_std']:.2f})" for n in names},
               "final inventory q_T (lots)", "Final inventory distribution")

    t = np.arange(env_config.market.n_steps) * env_config.market.dt
    fig, axes = plt.subplots(len(names), 2, figsize=(12, 2.6 * len(names)), squeeze=False,
                             sharex=True)
    for row, n in enumerate(names):
        p = result.batches[n].path
        ax = axes[row, 0]
        ax.plot(t, p["mid"], color="k", lw=1, label="mid")
        ax.plot(t, p["bid"], color="tab:green", lw=0.8, label="bid")
        ax.plot(t, p["ask"], color="tab:red", lw=0.8, label="ask")
        fb, fa = p["fill_bid"] > 0, p["fill_ask"] > 0
        ax.scatter(t[fb], p["bid"][fb], marker="^", s=12, color="tab:green", label="bid fill")
        ax.scatter(t[fa], p["ask"][fa], marker="v", s=12, color="tab:red", label="ask fill")
        ax.set_ylabel(n)
        if row == 0:
            ax.set_title("episode 0: quotes and fills")
            ax.legend(fontsize=7, ncol=5)
        ax = axes[row, 1]
        ax.step(t, p["inventory"], where="post", color=colors[n])
        ax.axhline(0, color="0.6", lw=0.5)
        if row == 0:
            ax.set_title("inventory")
    axes[-1, 0].set_xlabel("t")
    axes[-1, 1].set_xlabel("t")
    fig.tight_layout()
    written.append(out / "sample_path.png")
    fig.savefig(written[-1], dpi=110)
    plt.close(fig)

    m = env_config.market
    qp = min(m.max_inventory, 25)
    q_values = np.arange(-qp, qp + 1)
    t_values = np.arange(m.n_steps) if m.n_steps <= 400 else np.unique(np.linspace(0, m.n_steps - 1, 200).astype(int))
    first = "optimal" if "optimal" in names else result.reference
    order = [first] + [n for n in names if n != first]
    surfaces = {n: depth_surface(env_config, result.policies[n], q_values, t_values) for n in order}
    # one colour scale, set by the reference (optimal) policy's own range so that its structure
    # shows; other agents' depths beyond it saturate (the colour bar's arrows)
    finite = np.concatenate([np.ravel(s) for s in surfaces[first]])
    finite = finite[np.isfinite(finite)]
    vmin, vmax = (np.percentile(finite, [1, 99]) if finite.size else (0.0, 1.0))
    if vmax - vmin < 1e-9:
        vmin, vmax = vmin - 0.5, vmax + 0.5
    fig, axes = plt.subplots(2, len(order), figsize=(3.0 * len(order) + 1.2, 6), squeeze=False,
                             layout="constrained")
    extent = (t_values[0] * m.dt, (t_values[-1] + 1) * m.dt, -qp - 0.5, qp + 0.5)
    im = None
    for col, n in enumerate(order):
        for row, side in enumerate(("bid depth δ_b", "ask depth δ_a")):
            ax = axes[row, col]
            im = ax.imshow(surfaces[n][row].T, origin="lower", aspect="auto", extent=extent,
                           vmin=vmin, vmax=vmax, cmap="viridis")
            ax.set_title(f"{n}: {side}", fontsize=9)
            if col == 0:
                ax.set_ylabel("inventory q")
            if row == 1:
                ax.set_xlabel("t")
    fig.colorbar(im, ax=axes.ravel().tolist(), shrink=0.8, extend="both",
                 label=f"depth (price units; scale of {first})")
    written.append(out / "depth_surface.png")
    fig.savefig(written[-1], dpi=110)
    plt.close(fig)
    return written


def _portfolio_plots(result: EvaluationResult, env_config: EnvConfig, out: Path, names: list[str],
                     colors: dict, histograms: Any, plt: Any) -> list[Path]:
    """The K-asset figures of :func:`write_plots` (its docstring); returns their paths."""
    written: list[Path] = []
    batches = result.batches
    fnames = batches[names[0]].factor_names
    if fnames:
        nf = len(fnames)
        fig, axes = plt.subplots(1, nf, figsize=(6.5 * nf, 4.5), squeeze=False)
        for f, fname in enumerate(fnames):
            vals = np.concatenate([batches[n].final_factor_exposure[:, f] for n in names])
            bins = _lattice_bins(vals, 50)
            ax = axes[0, f]
            for n in names:
                e = batches[n].final_factor_exposure[:, f]
                ax.hist(e, bins=bins, histtype="step", lw=1.5, color=colors[n],
                        label=f"{n} (mean |e| {np.abs(e).mean():.2f})")
            ax.set_xlabel(f"final exposure to {fname}: e = b^T x_T (lots x loading)")
            ax.set_ylabel("episodes")
            ax.legend(fontsize=8)
        fig.suptitle("Final factor exposure distribution")
        fig.tight_layout()
        written.append(out / "inventory_distribution.png")
        fig.savefig(written[-1], dpi=110)
        plt.close(fig)
    else:
        histograms(out / "inventory_distribution.png", {n: batches[n].final_inventory for n in names}, 40,
                   {n: f"{n} (std {result.metrics[n]['final_inventory_std']:.2f})" for n in names},
                   "final_inventory (the scenario's episode statistic)", "Final inventory distribution")

    t = (np.arange(env_config.market.n_steps) + 1) * env_config.market.dt  # after step t
    rows = len(names) + (1 if fnames else 0)
    fig, axes = plt.subplots(rows, 1, figsize=(10, 2.4 * rows + 0.6), squeeze=False, sharex=True)
    lines = []
    for n in names:
        p = batches[n].path
        lines.append(p["inventory"])
        if "factor_exposure" in p:
            lines.append(p["factor_exposure"])
    ylo = min(float(np.min(v)) for v in lines)
    yhi = max(float(np.max(v)) for v in lines)
    pad = 0.05 * (yhi - ylo) + 0.5
    fcolors = ["k", "tab:purple", "tab:brown", "tab:olive"]
    for row, n in enumerate(names):
        p = batches[n].path
        ax = axes[row, 0]
        q = p["inventory"]
        for a in range(q.shape[1]):
            ax.step(t, q[:, a], where="post", lw=0.7, alpha=0.8, color=plt.cm.tab10(a % 10),
                    label="per-asset q_a" if a == 0 else None)
        if "factor_exposure" in p:
            for f, fname in enumerate(fnames):
                ax.step(t, p["factor_exposure"][:, f], where="post", lw=2.4, color=fcolors[f % len(fcolors)],
                        label=f"exposure {fname}")
        ax.axhline(0, color="0.6", lw=0.5)
        ax.set_ylim(ylo - pad, yhi + pad)
        ax.set_ylabel(n)
        if row == 0:
            ax.set_title(f"episode 0 (same scenario for every agent): {q.shape[1]} inventories (thin) "
                         "and factor exposures b_f^T x (thick)", fontsize=10)
            ax.legend(fontsize=7, ncol=4, loc="upper left")
    if fnames:
        ax = axes[-1, 0]
        styles = ["-", "--", ":", "-."]
        for n in names:
            b = batches[n]
            for f, fname in enumerate(fnames):
                mu, se = b.factor_exposure_t[:, f], b.factor_exposure_t_se[:, f]
                ax.plot(t, mu, color=colors[n], ls=styles[f % len(styles)], lw=1.5, label=f"{n}: |{fname}|")
                ax.fill_between(t, mu - 2 * se, mu + 2 * se, color=colors[n], alpha=0.2, lw=0)
        ax.set_ylabel("mean |exposure|")
        episodes = result.metadata.get("episodes", "?")
        ax.set_title(f"mean |factor exposure| over {episodes} episodes (band ± 2 SE)", fontsize=10)
        ax.legend(fontsize=7, ncol=len(names))
    axes[-1, 0].set_xlabel("t")
    fig.tight_layout()
    written.append(out / "portfolio_path.png")
    fig.savefig(written[-1], dpi=110)
    plt.close(fig)
    return written


def _lattice_bins(values: np.ndarray, target: int) -> Any:
    """About ``target`` histogram bins over the central 99 % of ``values``; when the values lie on
    a lattice (integer lots times loadings: fewer distinct values than half the sample), bins whose
    width is a multiple of the lattice step, centred on it, so that no bin is empty by aliasing."""
    lo, hi = np.percentile(values, [0.5, 99.5])
    if not hi > lo:
        return 30
    u = np.unique(np.round(values, 9))
    if u.size > max(values.size // 2, 2):
        return np.linspace(lo, hi, target)
    step = float(np.min(np.diff(u)))
    width = step * max(1, int(np.ceil((hi - lo) / (target * step))))
    start = u[0] + step * np.floor((lo - u[0]) / step) - step / 2
    return np.arange(start, hi + width, width)

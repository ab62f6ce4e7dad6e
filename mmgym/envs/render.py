"""Frames of a market-making episode: ``render_mode="rgb_array"`` / ``"human"``.

A :class:`EpisodeTrace` collects, for one env, what a frame shows: per step the mid the quotes
were computed from, our bid and ask quotes (NaN where a side did not quote), the fills and the inventory. It is
only created when a render mode that draws is asked for, so stepping without rendering does no
extra work. :class:`FrameRenderer` draws the trace with matplotlib's off-screen Agg canvas (one
figure, artists updated in place: a frame costs one canvas draw):

- top: the mid price and our quotes over the episode so far, fills marked (▲ our bid filled: we
  bought; ▼ our ask filled: we sold);
- bottom: our inventory at the start of each step;
- right, for scenarios that have an order book (:meth:`Scenario.ladder`): the depth ladder
  around the touch, background lots per level (bids left of 0, asks right), our resting lots
  drawn over them and each of our orders' queue position (background lots ahead of it).

``"human"`` shows the same frames in a matplotlib window (needs an interactive backend).
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["EpisodeTrace", "FrameRenderer"]

class EpisodeTrace:
    """Per-step values of one env's current episode, for frames (grows by doubling)."""

    FIELDS = ("mid", "bid", "ask", "fill_bid", "fill_ask", "inventory")

    def __init__(self, capacity: int = 256):
        self._data = np.full((len(self.FIELDS), max(2, capacity)), np.nan)
        self.n = 0

    def clear(self) -> None:
        self.n = 0

    def append(self, info: dict[str, Any], inventory: float) -> None:
        """One step: the mid the quotes were computed from, the quotes (NaN where a side did not
        quote), the fills (from the step's ``info``) and the inventory the step started with."""
        if self.n == self._data.shape[1]:
            self._data = np.concatenate([self._data, np.full_like(self._data, np.nan)], axis=1)
        self._data[:, self.n] = (info.get("quote_mid", np.nan), info.get("bid_px", np.nan),
                                 info.get("ask_px", np.nan), info.get("fill_bid", 0.0),
                                 info.get("fill_ask", 0.0), inventory)
        self.n += 1

    def __getitem__(self, name: str) -> np.ndarray:
        return self._data[self.FIELDS.index(name), : self.n]


class FrameRenderer:
    """Draws :class:`EpisodeTrace` frames (an RGB ``uint8`` array, ``(height, width, 3)``).

    Args:
        title: figure title (the env id). n_steps: the episode length (the x range).
        with_ladder: add the order-book panel. human: draw in a window instead of off-screen.
        size: figure size in inches; dpi: resolution (defaults give 800 x 450 pixels).
    """

    def __init__(self, title: str, n_steps: int, with_ladder: bool = False, human: bool = False,
                 size: tuple[float, float] = (8.0, 4.5), dpi: int = 100):
        from matplotlib.figure import Figure

        self.human = human
        self.n_steps = int(n_steps)
        if human:
            import matplotlib.pyplot as plt

            plt.ion()
            self.fig = plt.figure(figsize=size, dpi=dpi)
        else:
            from matplotlib.backends.backend_agg import FigureCanvasAgg

            self.fig = Figure(figsize=size, dpi=dpi)
            FigureCanvasAgg(self.fig)
        ncols = 2 if with_ladder else 1
        grid = self.fig.add_gridspec(2, ncols, height_ratios=(2.2, 1), width_ratios=(2.2, 1)[:ncols],
                                     hspace=0.08, wspace=0.25, left=0.09, right=0.98, top=0.9, bottom=0.11)
        self.ax_px = self.fig.add_subplot(grid[0, 0])
        self.ax_q = self.fig.add_subplot(grid[1, 0], sharex=self.ax_px)
        self.ax_book = self.fig.add_subplot(grid[:, 1]) if with_ladder else None
        self.fig.suptitle(title, fontsize=10)
        ax = self.ax_px
        (self.l_mid,) = ax.plot([], [], color="0.2", lw=1.2, label="mid")
        (self.l_bid,) = ax.plot([], [], color="tab:blue", lw=0.9, drawstyle="steps-post", label="our bid")
        (self.l_ask,) = ax.plot([], [], color="tab:red", lw=0.9, drawstyle="steps-post", label="our ask")
        (self.m_buy,) = ax.plot([], [], ls="none", marker="^", ms=5, color="tab:blue", label="bought")
        (self.m_sell,) = ax.plot([], [], ls="none", marker="v", ms=5, color="tab:red", label="sold")
        ax.legend(loc="upper left", fontsize=7, ncols=5, frameon=False)
        ax.set_ylabel("price", fontsize=8)
        ax.tick_params(labelbottom=False, labelsize=7)
        (self.l_q,) = self.ax_q.plot([], [], color="tab:green", lw=1.0, drawstyle="steps-post")
        self.ax_q.axhline(0.0, color="0.6", lw=0.6)
        self.ax_q.set_ylabel("inventory", fontsize=8)
        self.ax_q.set_xlabel("step", fontsize=8)
        self.ax_q.tick_params(labelsize=7)
        self.text = ax.text(0.99, 0.02, "", transform=ax.transAxes, ha="right", va="bottom", fontsize=7)

    def draw(self, trace: EpisodeTrace, status: str = "", ladder: dict[str, Any] | None = None) -> np.ndarray | None:
        """Update the artists from ``trace`` and draw; the frame (None in human mode)."""
        x = np.arange(1, trace.n + 1)
        mid, bid, ask = trace["mid"], trace["bid"], trace["ask"]
        self.l_mid.set_data(x, mid)
        self.l_bid.set_data(x, bid)
        self.l_ask.set_data(x, ask)
        fb, fa = trace["fill_bid"] > 0, trace["fill_ask"] > 0
        self.m_buy.set_data(x[fb], bid[fb])
        self.m_sell.set_data(x[fa], ask[fa])
        self.l_q.set_data(x, trace["inventory"])
        self.ax_px.set_xlim(0, max(self.n_steps, trace.n, 1))
        vals = np.concatenate([mid, bid, ask])
        vals = vals[np.isfinite(vals)]
        if vals.size:
            lo, hi = float(vals.min()), float(vals.max())
            pad = 0.05 * (hi - lo) + 1e-9 * max(1.0, abs(hi))
            self.ax_px.set_ylim(lo - pad, hi + pad)
        q = trace["inventory"]
        qmax = float(np.nanmax(np.abs(q))) if q.size else 0.0
        self.ax_q.set_ylim(-qmax - 1, qmax + 1)
        self.text.set_text(status)
        if self.ax_book is not None:
            self._draw_ladder(ladder)
        if self.human:
            import matplotlib.pyplot as plt

            self.fig.canvas.draw_idle()
            plt.pause(0.001)
            return None
        self.fig.canvas.draw()
        return np.asarray(self.fig.canvas.buffer_rgba())[..., :3].copy()

    def _draw_ladder(self, ladder: dict[str, Any] | None) -> None:
        """Bars created once per level slot and updated in place (a redraw, not a re-plot)."""
        if not ladder:
            return
        ax = self.ax_book
        px, tick = np.asarray(ladder["price"], float), float(ladder["tick"])
        n = px.size
        if getattr(self, "_bars", None) is None or len(self._bars[0]) != n:
            ax.cla()
            ax.set_title("book around the touch", fontsize=8)
            ax.tick_params(labelsize=7)
            zeros = np.zeros(n)
            h = 0.8 * tick
            self._bars = (ax.barh(px, zeros, height=h, color="tab:blue", alpha=0.35),
                          ax.barh(px, zeros, height=h, color="tab:red", alpha=0.35),
                          ax.barh(px, zeros, height=h, color="tab:blue", label="our bid lots"),
                          ax.barh(px, zeros, height=h, color="tab:red", label="our ask lots"))
            ax.axvline(0.0, color="0.3", lw=0.6)
            self._mid_line = ax.axhline(0.0, color="0.2", lw=0.8, ls=":")
            self._ahead = ax.text(0.02, 0.98, "", transform=ax.transAxes, ha="left", va="top", fontsize=6)
            ax.set_xlabel("lots (bids < 0 < asks)", fontsize=8)
            ax.legend(loc="lower right", fontsize=6, frameon=False)
        bid_bg, ask_bg = ladder["bid_bg"], ladder["ask_bg"]
        widths = (-bid_bg, ask_bg, -ladder["bid_own"], ladder["ask_own"])
        lefts = (0.0 * bid_bg, 0.0 * ask_bg, -bid_bg, ask_bg)
        for bars, w, left in zip(self._bars, widths, lefts):
            for rect, y, wi, le in zip(bars, px, w, left):
                rect.set_y(y - 0.4 * tick)
                rect.set_width(wi)
                rect.set_x(le)
        half = tick * (n / 2 + 0.5)
        ax.set_ylim(ladder["mid"] - half, ladder["mid"] + half)
        xmax = max(1.0, float(np.max(bid_bg + ladder["bid_own"], initial=0)),
                   float(np.max(ask_bg + ladder["ask_own"], initial=0)))
        ax.set_xlim(-1.05 * xmax, 1.05 * xmax)
        self._mid_line.set_ydata([ladder["mid"], ladder["mid"]])
        self._ahead.set_text("\n".join(
            f"{'bid' if side == 0 else 'ask'} {o_px:.6g}: {qty} lots, {ahead} ahead"
            for o_px, qty, ahead, side in ladder["orders"]))

    def close(self) -> None:
        if self.human:
            import matplotlib.pyplot as plt

            plt.close(self.fig)
        self.fig = None

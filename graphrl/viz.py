"""Pictures people would rather look at than read: attention maps and learning curves."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from torch import Tensor


def attention_figure(weights: Tensor, title: str = "", mask: Tensor | None = None) -> Figure:
    """One heat map per head of a single graph's attention.

    Args:
        weights: ``[heads, N, N]``, ``[h, i, j]`` = how much receiver ``i`` attends to ``j``.
        title: Figure title.
        mask: ``[N]`` bool real entities; padding rows/columns are cropped.

    Returns:
        A matplotlib figure (``SummaryWriter.add_figure`` takes it as it is).
    """
    w = weights.detach().float().cpu()
    if mask is not None:
        keep = mask.cpu()
        w = w[:, keep][:, :, keep]
    heads = w.shape[0]
    fig, axes = plt.subplots(1, heads, figsize=(2.6 * heads, 2.8), squeeze=False)
    for h, ax in enumerate(axes[0]):
        ax.imshow(w[h].numpy(), cmap="viridis", vmin=0.0)
        ax.set_title(f"head {h}", fontsize=9)
        ax.set_xlabel("sender j", fontsize=8)
        ax.set_ylabel("receiver i", fontsize=8)
        ax.tick_params(labelsize=6)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def figure_to_array(fig: Figure) -> np.ndarray:
    """Render a figure to an ``[H, W, 3]`` uint8 RGB array and close it."""
    fig.canvas.draw()
    rgba = np.asarray(fig.canvas.buffer_rgba())
    plt.close(fig)
    return rgba[..., :3].copy()


# ----------------------------------------------------------------------------- results figures
# One style for every results figure: a title naming the env (or task) and the budget, labelled
# axes with units, the legend below the panels (off the data), a chance or random-policy line
# where one is known, and the mean with the range over seeds where a run has several seeds.

CHANCE_STYLE = {"color": "0.45", "linestyle": ":", "linewidth": 1.5}


def results_figure(title: str, panels: int = 1, panel_size: tuple[float, float] = (5.2, 3.4)):
    """A figure of ``panels`` side-by-side axes with ``title`` (the env and the budget).

    Returns:
        ``(figure, [axes, ...])``.
    """
    fig, axes = plt.subplots(
        1, panels, figsize=(panel_size[0] * panels, panel_size[1] + 0.9), squeeze=False
    )
    fig.suptitle(title, fontsize=11)
    return fig, list(axes[0])


def label_axes(
    ax, xlabel: str, ylabel: str, ylim: tuple[float, float] | None = None, title: str = ""
) -> None:
    """Axis labels (with units), optional limits and panel title, a light grid."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if ylim is not None:
        ax.set_ylim(*ylim)
    if title:
        ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)


def env_steps_axis(ax) -> None:
    """Ticks of an env-step axis as ``200k`` / ``1.5M``."""
    from matplotlib.ticker import FuncFormatter

    def text(value: float, _: int) -> str:
        if abs(value) >= 1e6:
            return f"{value / 1e6:g}M"
        return f"{value / 1e3:g}k" if abs(value) >= 1e3 else f"{value:g}"

    ax.xaxis.set_major_formatter(FuncFormatter(text))


def chance_line(ax, value: float, label: str) -> None:
    """A horizontal line at the chance / random-policy level, in the legend as ``label``."""
    ax.axhline(value, label=label, **CHANCE_STYLE)


def seeds_curve(ax, x: np.ndarray, runs: np.ndarray, label: str, color: str | None = None):
    """One method's curve: the mean over seeds (rows of ``runs [S, T]``, NaN where a seed has
    no value) with its min-max range shaded; the label says how many seeds.

    Returns:
        The mean line.
    """
    runs = np.atleast_2d(np.asarray(runs, dtype=np.float64))
    seeds = len(runs)
    with np.errstate(all="ignore"):
        mean = np.nanmean(runs, 0)
        lo, hi = np.nanmin(runs, 0), np.nanmax(runs, 0)
    spread = f"{seeds} seeds, mean and range" if seeds > 1 else "1 seed"
    (line,) = ax.plot(x, mean, marker="o", markersize=3, label=f"{label} ({spread})", color=color)
    if seeds > 1:
        ax.fill_between(x, lo, hi, color=line.get_color(), alpha=0.2, linewidth=0)
    return line


def finish_figure(fig, path: str, columns: int = 2) -> None:
    """Put one legend below all panels (off the data), fit the layout, save ``path``, close."""
    handles, labels = [], []
    for ax in fig.axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            if label not in labels:
                handles.append(handle)
                labels.append(label)
    rows = -(-len(labels) // columns) if labels else 0
    height = fig.get_figheight()
    legend_in = 0.19 * rows + 0.1
    if labels:
        fig.legend(handles, labels, loc="lower center", ncol=columns, frameon=False, fontsize=8)
    fig.tight_layout(rect=(0, legend_in / height, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)

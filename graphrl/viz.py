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

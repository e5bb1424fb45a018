"""Draw the pipeline figure of the docs (``docs/assets/pipeline.svg``).

    python scripts/draw_pipeline.py [--out docs/assets/pipeline.svg]

One row of boxes, observation -> encoder -> topology -> processor -> readout -> head, each with
what it gives underneath, and the optional recurrent core between readout and head. The SVG
carries no date, so redrawing an unchanged figure gives the same file.
"""

from __future__ import annotations

import argparse

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

# (title, what it is, what it gives)
STAGES = [
    ("observation", "grid, pixels, entity set\nBox(N, F), Dict, Graph", "[B, ...]"),
    ("encoder", "grid · objects · pixels\nvectors", "entities\nx [B·N, D], mask [B, N]"),
    (
        "topology",
        "complete · self · grid4/8\nknn · radius · relative\ngiven · memory",
        "edges j → i\n(typed relations)",
    ),
    ("processor", "K layers: attention\ngnn · gcn · rgcn", "node features\n[B·N, D]"),
    ("readout", "max · mean · sum\nattention · own_node", "one vector\n[B, D]"),
    ("head", "class logits · pointer\npolicy + value", "answer / action"),
]
FILL = ["#eeeeee", "#dbe8f6", "#dcefdc", "#f6e6cf", "#ecdff3", "#f6dada"]


def draw(out: str) -> None:
    """Draw the figure into ``out`` (the format follows the suffix)."""
    fig, ax = plt.subplots(figsize=(12.5, 3.6))
    ax.set_xlim(0, len(STAGES) * 2.1)
    ax.set_ylim(0, 3.6)
    ax.axis("off")
    w, h, y = 1.7, 1.25, 1.55
    for i, ((title, body, gives), fill) in enumerate(zip(STAGES, FILL, strict=True)):
        x = 0.2 + i * 2.1
        ax.add_patch(
            FancyBboxPatch(
                (x, y),
                w,
                h,
                boxstyle="round,pad=0.02,rounding_size=0.12",
                facecolor=fill,
                edgecolor="#333333",
                linewidth=1.2,
            )
        )
        ax.text(
            x + w / 2, y + h - 0.22, title, ha="center", va="center", fontsize=12, fontweight="bold"
        )
        ax.text(x + w / 2, y + 0.45, body, ha="center", va="center", fontsize=8.5, linespacing=1.3)
        ax.text(
            x + w / 2,
            y - 0.38,
            gives,
            ha="center",
            va="center",
            fontsize=8.5,
            color="#444444",
            family="monospace",
            linespacing=1.3,
        )
        if i:
            ax.add_patch(
                FancyArrowPatch(
                    (x - 0.4 + 0.02, y + h / 2),
                    (x - 0.02, y + h / 2),
                    arrowstyle="-|>",
                    mutation_scale=14,
                    color="#333333",
                )
            )
    # The optional recurrent core, a detour from the readout to the head.
    readout_x, head_x = 0.2 + 4 * 2.1, 0.2 + 5 * 2.1
    cx, cy, cw, ch = (readout_x + w + head_x) / 2, 3.2, 1.3, 0.5
    ax.add_patch(
        FancyBboxPatch(
            (cx - cw / 2, cy - ch / 2),
            cw,
            ch,
            boxstyle="round,pad=0.02",
            facecolor="#fff7cc",
            edgecolor="#8a7a00",
            linestyle="--",
        )
    )
    ax.text(
        cx, cy, "core (optional)\nlstm · rmc", ha="center", va="center", fontsize=8, linespacing=1.2
    )
    for start, end in (
        ((readout_x + w / 2, y + h), (cx - cw / 2, cy)),
        ((cx + cw / 2, cy), (head_x + w / 2, y + h)),
    ):
        ax.add_patch(
            FancyArrowPatch(
                start,
                end,
                arrowstyle="-|>",
                mutation_scale=12,
                color="#8a7a00",
                linestyle="--",
                connectionstyle="arc3,rad=-0.25",
            )
        )
    ax.text(
        0.2,
        0.25,
        "encoder → topology → processor → readout: the backbone (GraphBackbone). "
        "Every part is chosen by name or by class path in config.",
        fontsize=9,
        color="#333333",
    )
    fig.tight_layout()
    fig.savefig(out, metadata={"Date": None} if out.endswith(".svg") else None)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="docs/assets/pipeline.svg", help="file to write")
    draw(parser.parse_args().out)


if __name__ == "__main__":
    main()

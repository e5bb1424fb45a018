"""Learning curves of RL runs from their TensorBoard logs: a PNG and a markdown table.

    python scripts/plot_rl.py --run attention=runs/boxworld/ppo_attention \\
        --run baseline=runs/boxworld/ppo_baseline --out results/rl/boxworld_small

Writes ``<out>.png`` (solve rate and episodic return against env steps) and ``<out>.md``
(solve rate averaged over windows of ``--window`` env steps, per run).
"""

from __future__ import annotations

import argparse
import os

import numpy as np
from matplotlib.ticker import FuncFormatter

from graphrl.logs import read_scalars
from graphrl.viz import plt


def curve(log_dir: str, tag: str) -> tuple[np.ndarray, np.ndarray]:
    """``(env_steps, values)`` of ``tag``, aligned on the logging step."""
    scalars = read_scalars(log_dir)
    steps = dict(scalars["train/env_steps"])
    pairs = [(steps[s], v) for s, v in scalars.get(tag, []) if s in steps]
    if not pairs:
        raise ValueError(f"{log_dir!r} has no {tag!r} logged")
    x, y = zip(*pairs)
    return np.asarray(x), np.asarray(y)


def smooth(y: np.ndarray, k: int = 10) -> np.ndarray:
    """Trailing mean over ``k`` points."""
    c = np.cumsum(np.insert(y, 0, 0.0))
    out = (c[k:] - c[:-k]) / k
    return np.concatenate([np.cumsum(y[: k - 1]) / np.arange(1, min(k, len(y) + 1))[: k - 1], out])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", action="append", required=True, help="label=log_dir")
    parser.add_argument("--out", required=True, help="output path without extension")
    parser.add_argument("--window", type=int, default=100_000)
    parser.add_argument("--title", default="")
    parser.add_argument(
        "--metric",
        default="charts/solve_rate",
        help="tag of the left panel and the table (e.g. charts/episodic_length for envs "
        "that report no solve flag)",
    )
    args = parser.parse_args()
    metric_name = args.metric.rsplit("/", 1)[-1].replace("_", " ")
    runs = dict(r.split("=", 1) for r in args.run)
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    rows = []
    for label, log_dir in runs.items():
        x, solve = curve(log_dir, args.metric)
        xr, ret = curve(log_dir, "charts/episodic_return")
        axes[0].plot(x, smooth(solve), label=label)
        axes[1].plot(xr, smooth(ret), label=label)
        edges = np.arange(0, x.max() + args.window, args.window)
        rows.append(
            (
                label,
                [
                    float(solve[(x >= lo) & (x < lo + args.window)].mean())
                    if ((x >= lo) & (x < lo + args.window)).any()
                    else None
                    for lo in edges[:-1]
                ],
                edges,
            )
        )
    for ax, name in zip(axes, (metric_name, "episodic return")):
        ax.set_xlabel("env steps")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v / 1000:g}k"))
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
    # One legend for both panels, below them: it never covers a curve.
    handles, labels = axes[0].get_legend_handles_labels()
    ncol = min(len(labels), 2)
    legend_rows = -(-len(labels) // ncol)
    fig.legend(handles, labels, loc="lower center", ncol=ncol, frameon=False, fontsize=9)
    if args.title:
        fig.suptitle(args.title)
    fig.tight_layout(rect=(0, 0.07 * legend_rows + 0.02, 1, 1))
    fig.savefig(args.out + ".png", dpi=110)
    longest = max(rows, key=lambda r: len(r[1]))[2]
    header = "| run | " + " | ".join(f"{int(lo) // 1000}k" for lo in longest[:-1]) + " |"
    lines = [header, "|---" * (len(longest)) + "|"]
    for label, values, _ in rows:
        cells = [f"{v:.2f}" if v is not None else "" for v in values]
        cells += [""] * (len(longest) - 1 - len(cells))
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    with open(args.out + ".md", "w") as f:
        f.write(
            f"{metric_name.capitalize()} per {args.window // 1000}k env steps "
            "(training episodes)\n\n"
        )
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"wrote {args.out}.png and {args.out}.md")


if __name__ == "__main__":
    main()

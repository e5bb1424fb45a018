"""Learning curves of RL runs from their TensorBoard logs: a PNG and a markdown table.

    python scripts/plot_rl.py --run attention=runs/boxworld/ppo_attention \\
        --run baseline=runs/boxworld/ppo_baseline --out results/rl/boxworld_small \\
        --title "Box-World Small (graphrl/BoxWorld-Small-v0), PPO, 1.5M env steps" --chance 0.055

Writes ``<out>.png`` (solve rate and episodic return against env steps, averaged over windows
of ``--window`` env steps; a label given for several runs is drawn as the mean and range over
those seeds) and ``<out>.md`` (the windowed solve rate, one row per run), in the shared style of
``graphrl.viz``.
"""

from __future__ import annotations

import argparse
import os

import numpy as np

from graphrl.logs import read_scalars
from graphrl.viz import (
    chance_line,
    env_steps_axis,
    finish_figure,
    label_axes,
    results_figure,
    seeds_curve,
)


def curve(log_dir: str, tag: str) -> tuple[np.ndarray, np.ndarray]:
    """``(env_steps, values)`` of ``tag``, aligned on the logging step."""
    scalars = read_scalars(log_dir)
    steps = dict(scalars["train/env_steps"])
    pairs = [(steps[s], v) for s, v in scalars.get(tag, []) if s in steps]
    if not pairs:
        raise ValueError(f"{log_dir!r} has no {tag!r} logged")
    x, y = zip(*pairs)
    return np.asarray(x), np.asarray(y)


def window_means(x: np.ndarray, y: np.ndarray, window: int) -> list[float | None]:
    """Mean of ``y`` over each window ``[lo, lo + window)`` of env steps (None: no value)."""
    edges = np.arange(0, x.max() + window, window)
    means = []
    for lo in edges[:-1]:
        inside = (x >= lo) & (x < lo + window)
        means.append(float(y[inside].mean()) if inside.any() else None)
    return means


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--run",
        action="append",
        required=True,
        help="label=log_dir; give one label several times for seeds (drawn as mean and range)",
    )
    parser.add_argument("--out", required=True, help="output path without extension")
    parser.add_argument("--window", type=int, default=100_000, help="env steps per table cell")
    parser.add_argument(
        "--title",
        required=True,
        help="the env and the budget, e.g. "
        "'Box-World Small (graphrl/BoxWorld-Small-v0), PPO, 1.5M env steps'",
    )
    parser.add_argument(
        "--metric",
        default="charts/solve_rate",
        help="tag of the left panel and the table (e.g. charts/episodic_length for envs "
        "that report no solve flag)",
    )
    parser.add_argument("--chance", type=float, default=None, help="chance / random-policy level")
    parser.add_argument("--chance_label", default="random policy")
    args = parser.parse_args()
    metric_name = args.metric.rsplit("/", 1)[-1].replace("_", " ")
    runs: dict[str, list[str]] = {}
    for item in args.run:
        label, log_dir = item.split("=", 1)
        runs.setdefault(label, []).append(log_dir)
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    fig, axes = results_figure(args.title, panels=2)
    rows = []
    for label, log_dirs in runs.items():
        for ax, tag in zip(axes, (args.metric, "charts/episodic_return")):
            per_seed = [window_means(*curve(d, tag), args.window) for d in log_dirs]
            cells = max(len(m) for m in per_seed)
            values = np.array([[np.nan if v is None else v for v in m] + [np.nan] * (cells - len(m))
                               for m in per_seed])  # fmt: skip
            centres = np.arange(cells) * args.window + args.window / 2
            keep = ~np.isnan(values).all(0)
            seeds_curve(ax, centres[keep], values[:, keep], label)
            if tag == args.metric:
                rows += [(f"{label}, seed {i}" if len(log_dirs) > 1 else label, list(m))
                         for i, m in enumerate(per_seed)]  # fmt: skip
    if args.chance is not None:
        chance_line(axes[0], args.chance, args.chance_label)
    xlabel = f"env steps (mean over windows of {args.window / 1000:g}k steps)"
    label_axes(axes[0], xlabel, f"{metric_name} of training episodes")
    label_axes(axes[1], xlabel, "episodic return of training episodes")
    for ax in axes:
        env_steps_axis(ax)
    finish_figure(fig, args.out + ".png", columns=1)
    cells = max(len(values) for _, values in rows)
    header = "| run | " + " | ".join(f"{i * args.window // 1000}k" for i in range(cells)) + " |"
    lines = [header, "|---" * (cells + 1) + "|"]
    for label, values in rows:
        shown = [f"{v:.2f}" if v is not None else "" for v in values]
        lines.append(f"| {label} | " + " | ".join(shown + [""] * (cells - len(shown))) + " |")
    with open(args.out + ".md", "w") as f:
        f.write(
            f"{metric_name.capitalize()} per {args.window // 1000}k env steps "
            "(training episodes)\n\n"
        )
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"wrote {args.out}.png and {args.out}.md (redraw: scripts/plot_results.py)")


if __name__ == "__main__":
    main()

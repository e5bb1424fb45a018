"""Redraw the learning-curve figures of results/ from the tables beside them, in the shared
style (graphrl.viz): a title naming the env and the budget, labelled axes, the legend below the
panels, a chance / random-policy line where one is known, mean and range over seeds.

    python scripts/plot_results.py              # every figure below
    python scripts/plot_results.py --only boxworld_small minigrid_memory_s7

Each figure is drawn from the windowed table ``scripts/plot_rl.py`` wrote with it (one row per
run, the metric averaged over windows of env steps), so nothing is retrained; rows of one
method with several seeds are drawn as their mean and range.
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from graphrl.viz import chance_line, env_steps_axis, finish_figure, label_axes, results_figure
from graphrl.viz import seeds_curve as draw_seeds

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

BOXWORLD = "graphrl/BoxWorld-Small-v0"
RANDOM_EPISODES, RANDOM_SEED = 200, 10_000  # as the topology ablation's random-policy line


def boxworld_random() -> tuple[float, str]:
    """The random-policy line of Box-World Small: uniform actions on 200 fresh levels."""
    from ablate_topology import random_solve_rate  # scripts/ is on the path of this script

    rate = random_solve_rate(BOXWORLD, RANDOM_EPISODES, RANDOM_SEED)
    return rate, f"random policy ({rate:.3f} on {RANDOM_EPISODES} fresh levels)"


@dataclass
class Figure:
    """One figure: its table, what to call things, and which rows are seeds of one method."""

    table: str
    title: str
    ylabel: str
    methods: dict[str, list[str]]  # legend label -> the table rows (one per seed)
    ylim: tuple[float, float] | None = None
    chance: Callable[[], tuple[float, str]] | tuple[float, str] | None = None
    notes: list[str] = field(default_factory=list)


FIGURES = {
    "boxworld_small": Figure(
        table="results/rl/boxworld_small.md",
        title="Box-World Small (graphrl/BoxWorld-Small-v0), PPO, up to 1.5M env steps",
        ylabel="solve rate of training episodes",
        methods={
            "relational agent, 64 envs (configs/boxworld/ppo_attention.yaml)": [
                "attention, 64 envs (configs/boxworld/ppo_attention.yaml)"
            ],
            "relational agent, 32 envs": ["attention, 32 envs"],
            "same agent without relations (self topology), 32 envs": [
                "same agent, self topology (32 envs)"
            ],
        },
        ylim=(0, 1.02),
        chance=boxworld_random,
    ),
    "minigrid_memory_s7": Figure(
        table="results/memory/minigrid_memory_s7.md",
        title="MiniGrid-MemoryS7-v0, PPO, 1M env steps (one run of 3M)",
        ylabel="solve rate of training episodes",
        methods={
            "LSTM agent (configs/minigrid/ppo_lstm_memory.yaml)": [
                "LSTM agent (ppo_lstm_memory), seed 0",
                "LSTM agent, seed 1",
            ],
            "Mott et al. attention agent (configs/minigrid/ppo_mott_memory.yaml)": [
                "Mott et al. attention agent (ppo_mott_memory), seed 0",
                "Mott et al. attention agent, seed 1",
            ],
            "Mott et al. attention agent, 3M env steps": [
                "Mott et al. attention agent, seed 0, 3M budget"
            ],
        },
        ylim=(0, 1.02),
        chance=(0.5, "chance (two doors: 0.5)"),
    ),
    "minigrid_memory_s7_pooled": Figure(
        table="results/memory/minigrid_memory_s7_pooled.md",
        title="MiniGrid-MemoryS7-v0, PPO, 1M env steps: Mott et al.'s agent with pooled input",
        ylabel="solve rate of training episodes",
        methods={
            "LSTM agent": ["LSTM agent (ppo_lstm_memory), seed 2"],
            "Mott et al. + max-pooled frame": [
                "Mott et al. + max-pooled frame (pooled_input), seed 0",
                *(f"Mott et al. + max-pooled frame, seed {s}" for s in range(1, 5)),
            ],
            "Mott et al. + 1 attention layer per frame": [
                "Mott et al. + 1 attention layer per frame, seed 0"
            ],
        },
        ylim=(0, 1.02),
        chance=(0.5, "chance (two doors: 0.5)"),
    ),
    "highway_fast": Figure(
        table="results/highway/highway_fast.md",
        title="highway-env highway-fast-v0, PPO, 5k env steps",
        ylabel="episode length (steps, at most 30)",
        methods={
            "ego-attention (configs/highway/ppo_attention.yaml)": ["ego_attention"],
            "MLP (configs/highway/ppo_mlp.yaml)": ["mlp"],
        },
        ylim=(0, 31),
    ),
    "highway_fast_20k": Figure(
        table="results/highway/highway_fast_20k.md",
        title="highway-env highway-fast-v0, PPO, 20k env steps",
        ylabel="episode length (steps, at most 30)",
        methods={
            "ego-attention (configs/highway/ppo_attention.yaml)": ["ego_attention"],
            "MLP (configs/highway/ppo_mlp.yaml)": ["mlp"],
        },
        ylim=(0, 31),
    ),
}


def read_window_table(path: str) -> tuple[np.ndarray, float, dict[str, np.ndarray]]:
    """A ``plot_rl.py`` table: ``(window starts [T], window size, {row label: values [T]})``
    (NaN where a run has no value)."""
    with open(path) as f:
        lines = [line.strip() for line in f if line.strip().startswith("|")]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")][1:]
    starts = np.array([float(re.fullmatch(r"([\d.]+)k", c).group(1)) * 1000 for c in header])
    window = float(starts[1] - starts[0]) if len(starts) > 1 else 1.0
    rows = {}
    for line in lines[2:]:
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        rows[cells[0]] = np.array([float(c) if c else np.nan for c in cells[1:]])
    return starts, window, rows


def draw(name: str, spec: Figure) -> str:
    """Draw ``spec`` next to its table as ``<name>.png``; returns the path."""
    starts, window, rows = read_window_table(os.path.join(ROOT, spec.table))
    fig, (ax,) = results_figure(spec.title, panel_size=(7.5, 3.6))
    centres = starts + window / 2
    for label, members in spec.methods.items():
        missing = [m for m in members if m not in rows]
        if missing:
            raise SystemExit(f"{spec.table} has no row {missing[0]!r}")
        runs = np.stack([rows[m] for m in members])
        keep = ~np.isnan(runs).all(0)
        draw_seeds(ax, centres[keep], runs[:, keep], label)
    if spec.chance is not None:
        chance_line(ax, *(spec.chance() if callable(spec.chance) else spec.chance))
    label_axes(
        ax,
        f"env steps (mean over windows of {window / 1000:g}k steps)",
        spec.ylabel,
        spec.ylim,
    )
    env_steps_axis(ax)
    path = os.path.join(ROOT, os.path.dirname(spec.table), f"{name}.png")
    finish_figure(fig, path, columns=1)
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", choices=list(FIGURES), default=list(FIGURES))
    args = parser.parse_args(argv)
    for name in args.only:
        print(f"wrote {os.path.relpath(draw(name, FIGURES[name]), ROOT)}")


if __name__ == "__main__":
    main()

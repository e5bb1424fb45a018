"""Box-World zero-shot: one table and one figure from ``graphrl evaluate --out`` files.

Each agent is a name and the ``--out`` prefix(es) of its ``graphrl evaluate`` runs; every
``PREFIX*.jsonl`` line (env_id, env_kwargs, solve_rate, episodes) becomes a condition: the
solution length when the row sets one ``goal_length`` on ``BoxWorld-Small-v0``, otherwise a
label from what the row changes (distractors, room size, preset). The figure plots solve rate
against solution length (trained lengths shaded) beside the other conditions as grouped bars.

Example (the commands that write the JSON lines are in results/generalisation/README.md):
    python scripts/plot_zero_shot.py --trained 1 3 \\
        --agent "attention, complete=results/generalisation/boxworld_zero_shot_complete" \\
        --agent "self topology=results/generalisation/boxworld_zero_shot_self" \\
        --out results/generalisation/boxworld_zero_shot
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
from typing import Any

SMALL = "graphrl/BoxWorld-Small-v0"


def condition(row: dict[str, Any]) -> tuple[str, int | None]:
    """``(label, solution length or None)`` of one evaluate row."""
    env, kwargs = row["env_id"], row["env_kwargs"]
    length = kwargs.get("goal_length")
    changed = {k: v for k, v in kwargs.items() if k not in ("color_ids", "num_colors")}
    if (
        env == SMALL
        and isinstance(length, int)
        and set(changed) <= {"goal_length", "num_distractors"}
    ):
        return f"path {length}", length
    if env != SMALL:
        return env.removeprefix("graphrl/BoxWorld-").removesuffix("-v0"), None
    parts = []
    if "n" in changed:
        parts.append(f"{changed['n']}x{changed['n']} room")
    if isinstance(changed.get("num_distractors"), int):
        parts.append(f"{changed['num_distractors']} distractors")
    return ", ".join(parts) or "training levels", None


def load(prefixes: list[str]) -> list[dict[str, Any]]:
    """Every row of ``PREFIX*.jsonl`` for the prefixes, in file order."""
    rows = []
    for prefix in prefixes:
        paths = sorted(glob.glob(f"{prefix}*.jsonl"))
        if not paths:
            sys.exit(f"error: no {prefix}*.jsonl: run graphrl evaluate --out {prefix}... first")
        for path in paths:
            with open(path) as f:
                rows += [json.loads(line) for line in f if line.strip()]
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--agent", action="append", required=True, help="NAME=PREFIX[,PREFIX...] (repeat)"
    )
    parser.add_argument("--out", required=True, help="writes OUT.md and OUT.png")
    parser.add_argument("--title", default=None, help="figure title (e.g. the action mode)")
    parser.add_argument("--trained", type=int, nargs=2, default=(1, 3), metavar=("MIN", "MAX"))
    args = parser.parse_args(argv)
    agents: dict[str, dict[str, dict[str, Any]]] = {}
    order: list[str] = []
    lengths: dict[str, int] = {}
    for spec in args.agent:
        name, sep, prefixes = spec.partition("=")
        if not sep or not prefixes:
            sys.exit(f"error: --agent {spec!r}: expected NAME=PREFIX")
        agents[name] = {}
        for row in load(prefixes.split(",")):
            label, length = condition(row)
            agents[name][label] = row
            if label not in order:
                order.append(label)
            if length is not None:
                lengths[label] = length
    path_labels = sorted(lengths, key=lengths.get)
    other = [c for c in order if c not in lengths]
    names = list(agents)
    lines = [
        "| condition | " + " | ".join(f"{n} (%)" for n in names) + " |",
        "|---|" + "---|" * len(names),
    ]
    for label in path_labels + other:
        cells = []
        for n in names:
            row = agents[n].get(label)
            cells.append("-" if row is None else f"{100 * row['solve_rate']:.1f}")
        trained = (
            " (trained)" if args.trained[0] <= lengths.get(label, 0) <= args.trained[1] else ""
        )
        lines.append(f"| {label}{trained} | " + " | ".join(cells) + " |")
    episodes = {row["episodes"] for a in agents.values() for row in a.values()}
    note = f"Fresh levels per cell: {', '.join(map(str, sorted(episodes)))} (greedy actions)."
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(f"{args.out}.md", "w") as f:
        f.write("\n".join(lines) + "\n\n" + note + "\n")
    print("\n".join(lines))

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(
        1, 2, figsize=(12, 4.2), gridspec_kw={"width_ratios": [1, 1.4]}
    )
    left.axvspan(args.trained[0] - 0.5, args.trained[1] + 0.5, color="0.9", label="trained")
    for n in names:
        xs = [lengths[c] for c in path_labels if c in agents[n]]
        ys = [100 * agents[n][c]["solve_rate"] for c in path_labels if c in agents[n]]
        left.plot(xs, ys, marker="o", label=n, color=f"C{names.index(n)}")
    left.set(
        xlabel="boxes on the solution path",
        ylabel="fresh levels solved (%)",
        title="Box-World: longer paths than trained",
        ylim=(0, 102),
    )
    left.set_xticks(sorted(lengths.values()))
    left.grid(alpha=0.3)
    width = 0.8 / max(1, len(names))
    for i, n in enumerate(names):
        ys = [100 * agents[n][c]["solve_rate"] if c in agents[n] else 0 for c in other]
        xs = [j + i * width for j in range(len(other))]
        right.bar(xs, ys, width, label=n, color=f"C{i}")
        for x, c in zip(xs, other):
            if c not in agents[n]:  # the agent cannot read these levels (or was not run)
                right.text(x, 1, "n/a", ha="center", va="bottom", fontsize=7, rotation=90)
    right.set_xticks([j + width * (len(names) - 1) / 2 for j in range(len(other))])
    right.set_xticklabels(other, rotation=20, ha="right", fontsize=8)
    right.set(ylabel="fresh levels solved (%)", title="other unseen levels", ylim=(0, 102))
    right.grid(alpha=0.3, axis="y")
    handles, labels = left.get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8)
    if args.title:
        fig.suptitle(args.title)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    fig.savefig(f"{args.out}.png", dpi=120)
    print(f"wrote {args.out}.md and {args.out}.png")


if __name__ == "__main__":
    main()

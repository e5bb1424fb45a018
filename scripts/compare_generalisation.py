"""Nth-farthest on more entities than trained: train variants for one budget, test at larger K.

A driver over ``scripts/compare_supervised.py``'s ``run_config`` (so every run is a ``graphrl
fit`` + ``test`` of a config plus CLI overrides). For each variant it records test accuracy at
every K of its DataModule, overall and on the ranks seen in training
(``test/acc_k16_seen_ranks``), appends one JSON line to ``--out/nth_farthest_k.jsonl`` (so a
partial sweep keeps what it measured), and writes the markdown table and the accuracy-vs-K plot
from every line of that file.

Examples:
    python scripts/compare_generalisation.py --max-minutes 3 --variants shipped count
    python scripts/compare_generalisation.py --max-minutes 30 --schedule-steps 28000 \
        --variants mixture_fraction
    python scripts/compare_generalisation.py --report-only   # table + plot from the JSON lines
"""

from __future__ import annotations

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from compare_supervised import budget_args, run_config

CONFIG = "configs/nth_farthest/attention.yaml"
GNN = "configs/nth_farthest/gnn.yaml"
MIXTURE = "configs/nth_farthest/attention_mixture.yaml"
NO_LABELS = "--data.init_args.label_features=false"
COUNT = "--model.backbone.processor.layer_kwargs={size_scaling: count, reference_size: 8}"
VARIANTS: dict[str, tuple[str, list[str], str]] = {
    "shipped": (CONFIG, [], "K=8, the shipped config (softmax average)"),
    "count": (CONFIG, [COUNT], "K=8, size_scaling: count"),
    "count_no_labels": (CONFIG, [COUNT, NO_LABELS], "K=8, count, no label one-hots"),
    "softmax_no_labels": (CONFIG, [NO_LABELS], "K=8, softmax, no label one-hots"),
    "log_no_labels": (
        CONFIG,
        ["--model.backbone.processor.layer_kwargs={size_scaling: log}", NO_LABELS],
        "K=8, logits scaled by log N, no label one-hots",
    ),
    "gnn_no_labels": (
        GNN,
        [NO_LABELS],
        "K=8, generic GNN (edge MLP, sum: can count), no label one-hots",
    ),
    "mixture": (
        MIXTURE,
        ["--data.init_args.rank_code=one_hot", "--model.scheduler.init_args.total_steps=5000"],
        "K ~ U{4..16}, count, no label one-hots",
    ),
    "mixture_fraction": (
        MIXTURE,
        [],  # the shipped attention_mixture.yaml: rank_code fraction
        "K ~ U{4..16}, count, no label one-hots, rank as a fraction n/(K-1)",
    ),
}


def collect(
    name: str, max_minutes: float, runs_dir: str, schedule_steps: int | None = None
) -> dict:
    """Fit and test one variant; return its row (accuracies in [0, 1]).

    ``schedule_steps`` sets the learning-rate schedule's ``total_steps`` (the configs decay
    over 5000 steps, which a budget of more than a few minutes outlasts).
    """
    config, extra, what = VARIANTS[name]
    if schedule_steps is not None:
        extra = [*extra, f"--model.scheduler.init_args.total_steps={schedule_steps}"]
    extra = [*budget_args(config, max_minutes, None, extra), *extra]
    result = run_config(config, name, extra, runs_dir)
    ks = [int(n[1:]) for n in result.eval_names]
    return {
        "name": name,
        "what": what,
        "command": f"graphrl fit --config {config} {' '.join(extra)}",
        "samples": result.samples,
        "wall_time_s": result.wall_time_s,
        "k": ks,
        "acc": [result.test.get(f"test/acc_k{k}") for k in ks],
        "acc_seen_ranks": [result.test.get(f"test/acc_k{k}_seen_ranks") for k in ks],
    }


def report(rows: list[dict], out: str) -> None:
    """Write ``nth_farthest_k.md`` and ``nth_farthest_acc_vs_k.png`` from the rows."""
    from graphrl.viz import CHANCE_STYLE, finish_figure, label_axes, results_figure, seeds_curve

    all_k = sorted({k for r in rows for k in r["k"]})
    head = ["variant", "training", "samples", "wall time"]
    head += [f"k{k} all / seen ranks" for k in all_k]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for r in rows:
        cells = [r["name"], r["what"], f"{r['samples']:,}", f"{r['wall_time_s'] / 60:.1f} min"]
        by_k = dict(zip(r["k"], zip(r["acc"], r["acc_seen_ranks"])))
        for k in all_k:
            a, s = by_k.get(k, (None, None))
            cells.append("-" if a is None else f"{100 * a:.1f} / {100 * s:.1f}")
        lines.append("| " + " | ".join(cells) + " |")
    with open(os.path.join(out, "nth_farthest_k.md"), "w") as f:
        f.write("\n".join(lines) + "\n\nCommands:\n\n")
        f.writelines(f"- `{r['name']}`: `{r['command']}`\n" for r in rows)
    minutes = sorted({round(r["wall_time_s"] / 60) for r in rows})
    budget = " or ".join(f"{m} min" for m in minutes)
    fig, axes = results_figure(
        f"Nth-farthest (supervised): test accuracy against the number of entities K "
        f"({budget} of training each)",
        panels=2,
        panel_size=(5.6, 3.6),
    )
    chance = list(range(min(all_k), max(all_k) + 1))
    for ax, key, title in zip(
        axes, ("acc", "acc_seen_ranks"), ("all ranks", "ranks asked in training")
    ):
        for r in rows:
            label = f"{r['what']} ({r['wall_time_s'] / 60:.0f} min, {r['samples']:,} samples)"
            seeds_curve(ax, r["k"], [100 * v for v in r[key]], label)
        ax.plot(chance, [100 / k for k in chance], label="chance (1/K)", **CHANCE_STYLE)
        label_axes(ax, "K (entities at test)", "test accuracy (%)", (0, 102), title)
    finish_figure(fig, os.path.join(out, "nth_farthest_acc_vs_k.png"), columns=1)
    print("\n".join(lines))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--max-minutes", type=float, default=3.0)
    parser.add_argument(
        "--schedule-steps",
        type=int,
        default=None,
        help="the lr schedule's total_steps (default: the config's); about 1,350 per minute here",
    )
    parser.add_argument("--out", default="results/generalisation")
    parser.add_argument("--runs-dir", default="runs/generalisation")
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "nth_farthest_k.jsonl")
    if not args.report_only:
        for name in args.variants:
            row = collect(name, args.max_minutes, args.runs_dir, args.schedule_steps)
            with open(path, "a") as f:
                f.write(json.dumps(row) + "\n")
    with open(path) as f:
        rows = {r["name"]: r for r in map(json.loads, f)}  # the latest run of each variant
    report(list(rows.values()), args.out)


if __name__ == "__main__":
    main()

"""Train each supervised config for the same budget and compare them: a markdown table and plots.

A thin driver over the ``graphrl`` CLI: every config runs through ``cli_main`` exactly as
``graphrl fit --config <file>`` would (then ``test`` on the trained weights in the same log
directory), and the numbers come back from the run's own ``metrics.json`` and TensorBoard
scalars. Nothing here trains or evaluates by itself.

Examples:
    python scripts/compare_supervised.py --task nth_farthest --max-minutes 8
    python scripts/compare_supervised.py --task sort_of_clevr --max-samples 500000 \\
        --configs configs/sort_of_clevr/attention.yaml configs/sort_of_clevr/mlp.yaml
    # an ablation: the same configs with extra CLI arguments, written under their own tag
    python scripts/compare_supervised.py --task nth_farthest --max-minutes 5 \\
        --configs configs/nth_farthest/attention.yaml --tag _no_edge_values \\
        --extra=--model.backbone.processor.edge_values=false

Outputs in ``--out``: ``{task}{tag}.md`` (the table), ``{task}{tag}.json`` (every number),
``{task}{tag}_acc_vs_samples.png`` and ``{task}{tag}_acc_vs_entities.png``. ``--from-json``
merges earlier result files into one table and plot without training.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import yaml

DEFAULT_CONFIGS = {
    "nth_farthest": ["attention", "gnn", "gcn", "rgcn", "deepsets", "mlp", "lstm"],
    "sort_of_clevr": ["attention", "gcn", "deepsets", "mlp"],
    "parity": ["attention", "attention_pe", "lstm"],
}
CHANCE_PERCENT = {"parity": 50.0}
"""Chance accuracy of label tasks whose chance is not 1/K (pointer answers over K entities)."""


@dataclass
class RunResult:
    """What one config reached within the budget.

    Attributes:
        name: Model name (the config's file stem plus the tag).
        config: The YAML file.
        log_dir: The run's log directory (``metrics.json``, TensorBoard events).
        params: Trainable parameters.
        samples: Training samples seen.
        wall_time_s: Wall time of ``fit`` (validation included).
        test: Test metrics (``test/acc_k8``, ``test/acc_shape_n6``, ...).
        curve: ``(samples, seconds into fit, val accuracy)`` of the first eval size at every
            validation.
        eval_names: Names of the eval dataloaders (``k8``, ``k12``, ... or ``n6``).
        question_types: Question types of the task.
        relational_types: The question types that need relations (the rest do not).
    """

    name: str
    config: str
    log_dir: str
    params: int
    samples: int
    wall_time_s: float
    test: dict[str, float]
    curve: list[tuple[int, float, float]] = field(default_factory=list)
    eval_names: list[str] = field(default_factory=list)
    question_types: list[str] = field(default_factory=list)
    relational_types: list[str] = field(default_factory=list)


def budget_args(
    config: str, max_minutes: float | None, max_samples: int | None, extra: list[str] = ()
) -> list[str]:
    """Trainer overrides that replace the config's own stopping rule by the budget.

    A sample budget becomes ``max_steps`` through the batch size of the config (or of a
    ``--data...batch_size=`` override among ``extra``).
    """
    if (max_minutes is None) == (max_samples is None):
        raise SystemExit("error: give exactly one of --max-minutes and --max-samples")
    args = ["--trainer.max_epochs=-1"]
    if max_minutes is not None:
        seconds = round(max_minutes * 60)
        h, rem = divmod(seconds, 3600)
        m, s = divmod(rem, 60)
        return [*args, "--trainer.max_steps=-1", f"--trainer.max_time=00:{h:02d}:{m:02d}:{s:02d}"]
    with open(config) as f:
        data = yaml.safe_load(f).get("data") or {}
    batch_size = data.get("init_args", {}).get("batch_size", 64)
    for arg in extra:
        if arg.startswith("--data.") and ".batch_size=" in arg:
            batch_size = int(arg.split("=", 1)[1])
    steps = math.ceil(max_samples / batch_size)
    return [*args, f"--trainer.max_steps={steps}", "--trainer.max_time=null"]


def read_curve(log_dir: str, tag: str, start: float) -> list[tuple[int, float, float]]:
    """``(samples, seconds since start, value)`` of the scalar ``tag`` from TensorBoard events.

    Steps are turned into samples with the logged ``train/samples`` scalar; ``start`` is the
    ``time.time()`` at which fit began.
    """
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(log_dir, size_guidance={"scalars": 0})
    events.Reload()
    scalars = events.Tags().get("scalars", [])
    if tag not in scalars:
        return []
    values = [(e.step, e.wall_time - start, e.value) for e in events.Scalars(tag)]
    if "train/samples" not in scalars:
        return [(int(step), t, float(v)) for step, t, v in values]
    logged = events.Scalars("train/samples")  # every log_every_n_steps steps
    steps = np.array([e.step for e in logged], dtype=float)
    samples = np.array([e.value for e in logged], dtype=float)
    per_step = samples[-1] / (steps[-1] + 1)  # fixed batch size: extrapolate past the ends
    at = np.interp([s for s, _, _ in values], steps, samples, left=np.nan, right=np.nan)
    return [
        (round(a) if np.isfinite(a) else round(per_step * (s + 1)), round(t, 1), float(v))
        for a, (s, t, v) in zip(at, values)
    ]


def run_config(config: str, name: str, extra: list[str], runs_dir: str) -> RunResult:
    """Fit then test one config through the CLI; collect its metrics."""
    from graphrl.cli import cli_main

    root = os.path.join(runs_dir, name)
    args = [
        "--config",
        config,
        f"--trainer.default_root_dir={root}",
        "--trainer.enable_progress_bar=false",
        *extra,
    ]
    print(f"[{name}] graphrl fit {' '.join(args)}", flush=True)
    cli = cli_main(args=args, run=False)
    start, wall_start = time.perf_counter(), time.time()
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    fit_seconds = time.perf_counter() - start  # validation included, as in the budget
    cli.trainer.test(cli.model, datamodule=cli.datamodule, verbose=False)
    log_dir = cli.trainer.log_dir or root
    with open(os.path.join(log_dir, "metrics.json")) as f:
        metrics = json.load(f)
    names = list(getattr(cli.datamodule, "eval_dataloader_names", [""]))
    result = RunResult(
        name=name,
        config=config,
        log_dir=log_dir,
        params=sum(p.numel() for p in cli.model.parameters() if p.requires_grad),
        samples=metrics["fit"]["samples_seen"],
        wall_time_s=round(fit_seconds, 1),
        test={k: v for k, v in metrics["test"]["metrics"].items() if k.startswith("test/")},
        curve=read_curve(log_dir, f"val/acc_{names[0]}" if names[0] else "val/acc", wall_start),
        eval_names=names,
        question_types=list(getattr(cli.datamodule, "question_types", [])),
        relational_types=list(getattr(cli.datamodule, "relational_question_types", [])),
    )
    return result


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def first_reach(curve: list[tuple[int, float, float]], target: float) -> str:
    """``"128,000 samples, 1.1 min"`` at the first validation with accuracy ``>= target``."""
    for samples, seconds, value in curve:
        if value >= target:
            return f"{samples:,} samples, {seconds / 60:.1f} min"
    return "not reached"


def markdown_table(results: list[RunResult], budget: str, target: float = 0.95) -> str:
    """One row per model: size, budget used, when validation first reached ``target``, test
    accuracy per eval size, the drop with more entities, and accuracy per question type."""
    names = results[0].eval_names
    first = names[0]
    qtypes = [q for q in results[0].question_types if len(results[0].question_types) > 1]
    relational = [q for q in qtypes if q in results[0].relational_types]
    head = ["model", "params", "samples", "wall time", f"val {first} >= {100 * target:g}%"]
    head += [f"test acc {n}" for n in names]
    if len(names) > 1:
        head += [f"drop {first}->{n}" for n in names[1:]]
    if relational:
        head += ["non-relational", "relational"]
    head += qtypes
    lines = [
        f"Budget: {budget}. Accuracy in %, test sets of the DataModule "
        f"(``{first}`` = the training size).",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "|".join("---" for _ in head) + "|",
    ]
    for r in results:
        acc = {n: r.test.get(f"test/acc_{n}") for n in names}
        row = [r.name, f"{r.params:,}", f"{r.samples:,}", f"{r.wall_time_s / 60:.1f} min"]
        row.append(first_reach(r.curve, target))
        row += [_pct(acc[n]) for n in names]
        if len(names) > 1:
            row += [
                "-"
                if acc[first] is None or acc[n] is None
                else f"{100 * (acc[first] - acc[n]):.1f}"
                for n in names[1:]
            ]
        per = {q: r.test.get(f"test/acc_{q}_{first}") for q in qtypes}
        if relational:  # types are equally likely, so the group accuracy is the types' mean
            for group in ([q for q in qtypes if q not in relational], relational):
                vals = [per[q] for q in group if per[q] is not None]
                row.append(_pct(sum(vals) / len(vals)) if vals else "-")
        row += [_pct(per[q]) for q in qtypes]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def plot(results: list[RunResult], task: str, prefix: str) -> list[str]:
    """Accuracy vs samples (validation curve) and accuracy vs entity count (test); PNG paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for r in results:
        if r.curve:
            xs, _, ys = zip(*r.curve)
            ax.plot(xs, [100 * y for y in ys], marker=".", label=r.name)
    ax.set_xlabel("training samples")
    ax.set_ylabel(f"validation accuracy {results[0].eval_names[0]} (%)")
    ax.set_title(f"{task}: accuracy vs samples")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    paths.append(f"{prefix}_acc_vs_samples.png")
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)

    names = results[0].eval_names
    if len(names) > 1:
        sizes = [int("".join(c for c in n if c.isdigit())) for n in names]
        fig, ax = plt.subplots(figsize=(6.4, 4.2))
        for r in results:
            ys = [r.test.get(f"test/acc_{n}") for n in names]
            pts = [(s, 100 * y) for s, y in zip(sizes, ys) if y is not None]
            if pts:
                ax.plot(*zip(*pts), marker="o", label=r.name)
        if task in CHANCE_PERCENT:
            ax.axhline(CHANCE_PERCENT[task], color="k", ls=":", label="chance")
        else:
            ax.plot(sizes, [100 / s for s in sizes], "k:", label="chance (1/K)")
        ax.set_xticks(sizes)
        ax.set_xlabel(f"entities at test time (trained on {sizes[0]})")
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(f"{task}: generalisation to more entities")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        paths.append(f"{prefix}_acc_vs_entities.png")
        fig.savefig(paths[-1], dpi=120)
        plt.close(fig)
    return paths


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--task", required=True, choices=sorted(DEFAULT_CONFIGS))
    parser.add_argument(
        "--configs", nargs="+", help="YAML files (default: every model of the task in configs/)"
    )
    budget = parser.add_mutually_exclusive_group(required=True)
    budget.add_argument("--max-minutes", type=float, help="wall-clock budget of each fit")
    budget.add_argument("--max-samples", type=int, help="training samples of each fit")
    budget.add_argument(
        "--from-json",
        nargs="+",
        metavar="JSON",
        help="train nothing: merge earlier results (files this script wrote) into one table",
    )
    parser.add_argument(
        "--models", nargs="+", help="with --from-json: keep only these model names, in this order"
    )
    parser.add_argument("--out", default="results/supervised", help="tables and plots go here")
    parser.add_argument("--runs", default="runs/compare", help="log directories go here")
    parser.add_argument("--tag", default="", help="suffix of model and output names")
    parser.add_argument(
        "--extra", action="append", default=[], help="extra CLI argument for every run (repeat)"
    )
    parser.add_argument(
        "--target", type=float, default=0.95, help="report when validation first reaches it"
    )
    parser.add_argument("--threads", type=int, default=1, help="torch threads (shared CPUs: 1)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> list[RunResult]:
    """Run the comparison; returns the results (also written to ``--out``)."""
    args = parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    configs = args.configs or [f"configs/{args.task}/{m}.yaml" for m in DEFAULT_CONFIGS[args.task]]
    missing = [c for c in [*configs, *(args.from_json or [])] if not os.path.isfile(c)]
    if missing:
        raise SystemExit(f"error: no such file: {', '.join(missing)}")
    os.makedirs(args.out, exist_ok=True)
    runs_dir = os.path.join(args.runs, args.task)
    results: list[RunResult] = []
    start = time.perf_counter()
    budgets = []
    for path in args.from_json or []:
        with open(path) as f:
            saved = json.load(f)
        budgets.append(saved["budget"])
        results += [
            RunResult(**{**r, "curve": [tuple(point) for point in r["curve"]]})
            for r in saved["results"]
        ]
    if args.models:
        by_name = {r.name: r for r in results}
        unknown = [m for m in args.models if m not in by_name]
        if unknown:
            raise SystemExit(f"error: no results named {unknown}; have: {', '.join(by_name)}")
        results = [by_name[m] for m in args.models]
    for config in [] if args.from_json else configs:
        name = os.path.splitext(os.path.basename(config))[0] + args.tag
        extra = budget_args(config, args.max_minutes, args.max_samples, args.extra) + args.extra
        results.append(run_config(config, name, extra, runs_dir))
        r = results[-1]
        accs = ", ".join(
            f"{k}={v:.3f}"
            for k, v in r.test.items()
            if k.startswith("test/acc_") and k.count("_") == 1
        )
        print(f"[{name}] {r.samples:,} samples in {r.wall_time_s:.0f}s: {accs}", flush=True)
    if args.from_json:
        budget = "; ".join(dict.fromkeys(budgets))
    else:
        budget = (
            f"{args.max_minutes:g} min of wall time per model"
            if args.max_minutes is not None
            else f"{args.max_samples:,} training samples per model"
        )
        budget += f" ({args.threads} torch thread{'s' if args.threads > 1 else ''}, this machine)"
    prefix = os.path.join(args.out, f"{args.task}{args.tag}")
    table = markdown_table(results, budget, args.target)
    with open(f"{prefix}.md", "w") as f:
        f.write(f"# {args.task}{args.tag}\n\n{table}")
    with open(f"{prefix}.json", "w") as f:
        json.dump(
            {"budget": budget, "argv": sys.argv, "results": [asdict(r) for r in results]},
            f,
            indent=1,
        )
    paths = plot(results, args.task, prefix)
    print(table)
    elapsed = time.perf_counter() - start
    print(f"wrote {prefix}.md, {prefix}.json, {', '.join(paths)} in {elapsed:.0f}s")
    return results


if __name__ == "__main__":
    main()

"""Topology ablation on Box-World, one command: train each variant for the same env steps with
``graphrl fit``, evaluate it with ``graphrl evaluate`` on fresh levels, write one table and one
plot.

    python scripts/ablate_topology.py                       # every variant, 300k env steps each
    python scripts/ablate_topology.py --variants complete self cnn --timesteps 500000
    python scripts/ablate_topology.py --quick               # smoke test: tiny runs, 4 episodes

Every graph variant is the shipped relational agent (``--config``, by default
``configs/boxworld/ppo_attention.yaml``: objects encoder, 3 attention layers, edge features)
with the flags that variant needs (see ``VARIANTS``; grid topologies need the grid encoder,
the R-GCN a typed topology); ``cnn`` is ``--cnn_config`` (``configs/boxworld/ppo_cnn.yaml``).
Every run gets the same ``total_timesteps``, rounded down to a multiple of every variant's
iteration size (``num_envs * num_steps``) so that each sees exactly the same env steps.

Writes, under ``--out`` (``results/ablation``; ``results/ablation/quick`` with ``--quick``):
``topology.md`` (variant, env steps, wall time of fit, solve rate on ``--episodes`` fresh
levels, the commands), ``topology.jsonl`` (one evaluation row per variant) and
``topology.png`` (solve rate on fresh levels; training solve rate against env steps). Runs go
to ``--runs_dir/<variant>`` (Lightning adds a new ``version_N`` per run: nothing is
overwritten); an existing table is kept unless ``--force``.
"""

from __future__ import annotations

import argparse
import glob
import json
import math
import os
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Any

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
POLICY = "--model.init_args.policy.init_args.backbone.init_args."
GRID = [f"{POLICY}encoder=grid", f"{POLICY}encoder_kwargs={{}}"]  # grid topologies need cells


@dataclass(frozen=True)
class Variant:
    """One row of the ablation: which config and which flags on top of it.

    Attributes:
        flags: ``graphrl fit`` overrides of the policy (on the relational config).
        cnn: Train ``--cnn_config`` instead of the relational config.
        what: How the variant differs from ``complete``, for the table.
    """

    flags: list[str] = field(default_factory=list)
    cnn: bool = False
    what: str = ""


VARIANTS: dict[str, Variant] = {
    "complete": Variant([], what="the shipped agent: every entity hears every entity"),
    "knn": Variant(
        [f"{POLICY}topology=knn", f'{POLICY}topology_kwargs={{"k": 4}}'],
        what="each entity hears its 4 nearest entities",
    ),
    "radius": Variant(
        [f"{POLICY}topology=radius", f'{POLICY}topology_kwargs={{"r": 1.5}}'],
        what="entities within 1.5 cells (the 8 neighbours)",
    ),
    "criss_cross": Variant(
        [*GRID, f"{POLICY}topology=criss_cross"],
        what="grid encoder; each cell hears its row and column",
    ),
    "grid8": Variant(
        [*GRID, f"{POLICY}topology=grid8"], what="grid encoder; each cell hears its 8 neighbours"
    ),
    "relative_rgcn": Variant(
        [
            *GRID,
            f"{POLICY}topology=relative",
            f'{POLICY}topology_kwargs={{"kernel_size": 3}}',
            f"{POLICY}processor.layer=rgcn",
        ],
        what="grid encoder; R-GCN, one relation per 3x3 offset (edge features unused)",
    ),
    "gcn": Variant(
        [f"{POLICY}processor.layer=gcn"],
        what="complete topology, GCN layers instead of attention (edge features unused)",
    ),
    "self": Variant([f"{POLICY}topology=self"], what="no relations: each entity hears itself"),
    "cnn": Variant(cnn=True, what="configs/boxworld/ppo_cnn.yaml: a CNN on the symbol grid"),
}
QUICK = {"num_envs": 4, "num_steps": 8, "num_minibatches": 2, "update_epochs": 1}
KIND_COLORS = {"attention": "tab:blue", "gcn": "tab:orange", "rgcn": "tab:green", "cnn": "tab:red"}


def fail(message: str) -> None:
    """One line on stderr, exit 2."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def iteration_size(config: str, quick: bool) -> int:
    """``num_envs * num_steps`` of ``config`` (as overridden by ``--quick``)."""
    with open(config) as f:
        args = yaml.safe_load(f)["model"]["init_args"]
    if quick:
        args = {**args, **QUICK}
    return int(args["num_envs"]) * int(args["num_steps"])


def equal_timesteps(requested: int, sizes: list[int]) -> int:
    """``requested`` rounded down to a multiple of every iteration size (at least one)."""
    step = math.lcm(*sizes)
    return max(step, requested // step * step)


def graphrl(*argv: str) -> subprocess.CompletedProcess:
    """Run ``graphrl ARGV`` as a user would (same interpreter), output captured."""
    return subprocess.run(
        [sys.executable, "-m", "graphrl", *argv], cwd=ROOT, capture_output=True, text=True
    )


def last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def fit(name: str, variant: Variant, args: argparse.Namespace, timesteps: int) -> dict[str, Any]:
    """Train one variant; ``{"log_dir", "ckpt", "env_steps", "wall_time_s", "command"}``."""
    config = args.cnn_config if variant.cnn else args.config
    root = os.path.join(args.runs_dir, name)
    flags = [] if variant.cnn else variant.flags
    quick = [f"--model.init_args.{k}={v}" for k, v in QUICK.items()] if args.quick else []
    argv = [
        "fit", "--config", config, *flags, *quick,
        f"--model.init_args.total_timesteps={timesteps}",
        f"--trainer.default_root_dir={root}", "--trainer.enable_progress_bar=false",
    ]  # fmt: skip
    before = set(glob.glob(os.path.join(root, "lightning_logs", "version_*")))
    result = graphrl(*argv)
    command = "graphrl " + " ".join(_quote(a) for a in argv)
    if result.returncode:
        return {
            "error": last_line(result.stderr) or f"exit {result.returncode}",
            "command": command,
        }
    (log_dir,) = set(glob.glob(os.path.join(root, "lightning_logs", "version_*"))) - before
    with open(os.path.join(log_dir, "metrics.json")) as f:
        summary = json.load(f)["fit"]
    return {
        "log_dir": log_dir,
        "ckpt": os.path.join(log_dir, "checkpoints", "last.ckpt"),
        "env_steps": summary["samples_seen"],
        "wall_time_s": summary["wall_time_s"],
        "command": command,
    }


def evaluate(ckpt: str, args: argparse.Namespace) -> dict[str, Any]:
    """``graphrl evaluate`` on ``--episodes`` fresh levels: its JSON row."""
    argv = ["evaluate", "--ckpt", ckpt, "--episodes", str(args.episodes)]
    argv += ["--seed", str(args.eval_seed), "--num_envs", str(min(8, args.episodes))]
    result = graphrl(*argv)
    if result.returncode:
        return {"error": last_line(result.stderr) or f"exit {result.returncode}"}
    return json.loads(last_line(result.stdout))


def _relative(path: str) -> str:
    """``path`` relative to the repository root when it lies inside it."""
    return os.path.relpath(path, ROOT) if path.startswith(ROOT + os.sep) else path


def _quote(arg: str) -> str:
    """``arg`` as a shell word, paths inside the repository relative to its root."""
    if "=" in arg:
        key, value = arg.split("=", 1)
        arg = f"{key}={_relative(value)}"
    else:
        arg = _relative(arg)
    return f"'{arg}'" if any(c in arg for c in ' {}"') else arg


def kind(name: str) -> str:
    """The layer family of a variant (colours the plot)."""
    if VARIANTS[name].cnn:
        return "cnn"
    for flag in VARIANTS[name].flags:
        if flag.startswith(f"{POLICY}processor.layer="):
            return flag.split("=", 1)[1]
    return "attention"


def write_table(rows: list[dict[str, Any]], args: argparse.Namespace, command: str) -> str:
    lines = [
        f"# Topology ablation on {args.env_label}",
        "",
        f"Reproduce: `{command}`",
        "",
        f"Every variant trained for the same env steps, then evaluated on {args.episodes} fresh "
        f"levels (`graphrl evaluate --episodes {args.episodes} --seed {args.eval_seed}`, "
        "sampled actions; training levels come from seeds 0..num_envs-1).",
        "",
        "| variant | env steps | wall time (fit) | solve rate (fresh levels) | what |",
        "|---|---:|---:|---:|---|",
    ]
    for row in rows:
        if "error" in row:
            lines.append(f"| {row['variant']} | | | failed: {row['error']} | {row['what']} |")
            continue
        wall = row["wall_time_s"]
        wall_text = f"{wall:.1f} s" if wall < 120 else f"{wall / 60:.1f} min"
        lines.append(
            f"| {row['variant']} | {row['env_steps']:,} | {wall_text} | "
            f"{row['solve_rate']:.3f} | {row['what']} |"
        )
    lines += ["", "Commands of each run:", ""]
    lines += [f"- {row['variant']}: `{row['command']}`" for row in rows]
    return "\n".join(lines) + "\n"


def _uniform_policy(num_actions: int) -> Any:
    """A policy of uniform random actions (zero logits): the random-policy line."""
    import torch
    from torch import nn

    class Uniform(nn.Module):
        def forward(self, obs: Any) -> tuple[torch.Tensor, torch.Tensor]:
            return torch.zeros(len(obs), num_actions), torch.zeros(len(obs))

    return Uniform()


def random_solve_rate(env_id: str, episodes: int, seed: int) -> float:
    """Solve rate of uniform random actions on the evaluation's fresh levels (the actions
    drawn from torch's generator seeded ``seed``: the same figure on every run)."""
    import torch

    from graphrl.envs.vector import env_spaces
    from graphrl.rl.evaluation import evaluate_policy

    _, actions = env_spaces(env_id, {})
    num_actions = int(actions.n)
    torch.manual_seed(seed)
    stats = evaluate_policy(_uniform_policy(num_actions), env_id, episodes, seed=seed)
    return float(stats.solved.mean())


def _training_curves(rows: list[dict[str, Any]]) -> dict[str, tuple[Any, Any]]:
    """``{variant: (env steps, training solve rate)}`` of the runs whose logs are here."""
    from graphrl.logs import read_scalars

    curves = {}
    for r in rows:
        try:
            scalars = read_scalars(os.path.join(ROOT, r["log_dir"]))
        except FileNotFoundError:
            continue
        env_steps = dict(scalars.get("train/env_steps", []))
        pairs = [
            (env_steps[s], v) for s, v in scalars.get("charts/solve_rate", []) if s in env_steps
        ]
        if pairs:
            curves[r["variant"]] = tuple(zip(*pairs))
    return curves


def plot(rows: list[dict[str, Any]], args: argparse.Namespace, path: str) -> None:
    """Left: solve rate on fresh levels per variant, with the random policy's; right (when the
    runs' logs are here): training solve rate against env steps."""
    from graphrl.viz import chance_line, env_steps_axis, finish_figure, label_axes, results_figure

    done = [r for r in rows if "error" not in r]
    curves = _training_curves(done)
    steps = sorted({r["env_steps"] for r in done})
    budget = ", ".join(f"{s:,}" for s in steps)
    fig, axes = results_figure(
        f"Topology ablation on {args.env_label}\n{budget} env steps per variant",
        panels=2 if curves else 1,
        panel_size=(6.0, 3.6),
    )
    bars = axes[0]
    names = [r["variant"] for r in done]
    colors = [KIND_COLORS[kind(n)] for n in names]
    drawn = bars.bar(names, [r["solve_rate"] for r in done], color=colors)
    bars.bar_label(drawn, fmt="%.3f", fontsize=8, padding=2)
    random = random_solve_rate(args.env_label, args.episodes, args.eval_seed)
    chance_line(bars, random, f"random policy ({random:.3f} on the same levels)")
    label_axes(
        bars, "variant", f"solve rate on {args.episodes} fresh levels", (0, 1.05),
        "after training (sampled actions, 1 seed each)",
    )  # fmt: skip
    bars.tick_params(axis="x", labelrotation=35, labelsize=8)
    for k in dict.fromkeys(kind(n) for n in names):  # the legend of layer kinds: empty bars
        label = "CNN" if k == "cnn" else f"{k} layers"
        bars.bar(names[:1], [0.0], color=KIND_COLORS[k], label=label)
    if curves:
        ax = axes[1]
        for i, (name, (x, y)) in enumerate(curves.items()):
            style = ["-", "--", ":", "-."][i % 4]
            ax.plot(x, y, label=name, color=KIND_COLORS[kind(name)], linestyle=style)
        label_axes(ax, "env steps", "training solve rate", (0, 1.05), "during training")
        env_steps_axis(ax)
    finish_figure(fig, path, columns=3)


def replot(args: argparse.Namespace) -> None:
    """Redraw ``topology.png`` from ``topology.jsonl`` under ``--out`` (nothing is trained)."""
    with open(os.path.join(args.out, "topology.jsonl")) as f:
        rows = [json.loads(line) for line in f]
    plot(rows, args, os.path.join(args.out, "topology.png"))
    print(f"wrote {os.path.join(args.out, 'topology.png')}")


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), help=", ".join(VARIANTS))
    parser.add_argument("--timesteps", type=int, default=300_000, help="env steps per variant")
    parser.add_argument("--episodes", type=int, default=200, help="fresh levels per evaluation")
    parser.add_argument("--eval_seed", type=int, default=10_000, help="evaluation env i: seed + i")
    parser.add_argument(
        "--config", default=os.path.join(ROOT, "configs/boxworld/ppo_attention.yaml")
    )
    parser.add_argument("--cnn_config", default=os.path.join(ROOT, "configs/boxworld/ppo_cnn.yaml"))
    parser.add_argument("--out", default=None, help="results directory")
    parser.add_argument("--runs_dir", default=None, help="training runs directory")
    parser.add_argument("--quick", action="store_true", help="smoke test: 2 tiny iterations")
    parser.add_argument("--force", action="store_true", help="overwrite an existing table")
    parser.add_argument(
        "--replot", action="store_true", help="redraw topology.png from --out's topology.jsonl"
    )
    args = parser.parse_args(argv)
    args.variants = [v for item in args.variants for v in item.split(",") if v]
    unknown = [v for v in args.variants if v not in VARIANTS]
    if unknown:
        fail(f"unknown variant {unknown[0]!r}: pass --variants from {', '.join(VARIANTS)}")
    if args.quick:
        args.timesteps = 2 * QUICK["num_envs"] * QUICK["num_steps"]
        args.episodes = min(args.episodes, 4)
    if args.timesteps < 1 or args.episodes < 1:
        fail("--timesteps and --episodes must be >= 1")
    for flag in ("config", "cnn_config"):
        if not os.path.isfile(getattr(args, flag)):
            fail(f"--{flag} {getattr(args, flag)!r} does not exist")
        setattr(args, flag, os.path.abspath(getattr(args, flag)))
    quick = ["quick"] if args.quick else []
    args.out = os.path.abspath(args.out or os.path.join(ROOT, "results", "ablation", *quick))
    args.runs_dir = os.path.abspath(args.runs_dir or os.path.join(ROOT, "runs", "ablation", *quick))
    with open(args.config) as f:
        args.env_label = yaml.safe_load(f)["model"]["init_args"]["env_id"]
    return args


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    args = parse(argv)
    if args.replot:
        replot(args)
        return []
    table = os.path.join(args.out, "topology.md")
    if os.path.exists(table) and not args.force:
        fail(f"{table} exists: pass --force to overwrite it, or another --out")
    sizes = [
        iteration_size(args.cnn_config if VARIANTS[v].cnn else args.config, args.quick)
        for v in args.variants
    ]
    timesteps = equal_timesteps(args.timesteps, sizes)
    command = "python scripts/ablate_topology.py " + " ".join(
        _quote(a) for a in (sys.argv[1:] if argv is None else argv)
    )
    rows = []
    for name in args.variants:
        print(f"[{name}] training {timesteps:,} env steps", flush=True)
        row = {"variant": name, "what": VARIANTS[name].what, **fit(name, VARIANTS[name], args,
                                                                   timesteps)}  # fmt: skip
        if "error" not in row:
            result = evaluate(row["ckpt"], args)
            if "error" in result:
                row["error"] = result["error"]
            else:
                row.update(solve_rate=result["solve_rate"], evaluation=result)
        print(json.dumps({k: v for k, v in row.items() if k != "command"}), flush=True)
        rows.append(row)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "topology.jsonl"), "w") as f:
        for row in rows:
            shown = {k: _relative(v) if k in ("log_dir", "ckpt") else v for k, v in row.items()}
            f.write(json.dumps(shown) + "\n")
    with open(table, "w") as f:
        f.write(write_table(rows, args, command.strip()))
    plot(rows, args, os.path.join(args.out, "topology.png"))
    print(f"wrote {table}, topology.jsonl and topology.png")
    failed = [r["variant"] for r in rows if "error" in r]
    if failed:
        fail(f"variant(s) {', '.join(failed)} failed (see {table})")
    return rows


if __name__ == "__main__":
    main()

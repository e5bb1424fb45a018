"""Project commands beside Lightning's: ``graphrl evaluate`` and ``graphrl render``.

    graphrl evaluate --ckpt runs/boxworld/.../checkpoints/last.ckpt --episodes 200 \\
        [--env_id graphrl/BoxWorld-Small-v0] [--env_kwargs '{"goal_length": 3}'] [--greedy]
    graphrl evaluate --ckpt .../last.ckpt --env_id graphrl/BoxWorld-Small-v0 \\
        graphrl/BoxWorld-Medium-v0,graphrl/BoxWorld-12x12-v0 --out results/zero_shot  # a table
    graphrl render --ckpt .../last.ckpt --out episode.gif [--seed 0]
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
from typing import Any

import torch

from graphrl.cli import check_checkpoint


def load_agent(path: str):  # -> OnPolicyModule
    """Load a trained RL LightningModule (PPO, A2C, ...) from a checkpoint, on the CPU."""
    check_checkpoint(path)
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    class_path = ckpt.get("graphrl_module_class", "graphrl.rl.PPO")
    module_name, _, cls_name = class_path.rpartition(".")
    cls = getattr(importlib.import_module(module_name), cls_name)
    if not hasattr(cls, "evaluate"):
        raise SystemExit(
            f"error: {path!r} holds a {cls_name}, not an RL agent: evaluate/render need a "
            "checkpoint written by a PPO or A2C run"
        )
    agent = cls.load_from_checkpoint(path, map_location="cpu")
    agent.eval()
    return agent


def _json_dict(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not JSON ({exc.msg}): {text!r}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r}")
    return value


def evaluate_command(argv: list[str]) -> dict[str, Any] | list[dict[str, Any]]:
    """``graphrl evaluate``: one JSON line per env (env_id, env_kwargs, solve_rate,
    mean_return, mean_length, episodes) and, for several envs, a markdown table; the row (one
    env) or the rows."""
    parser = argparse.ArgumentParser(
        prog="graphrl evaluate", description="Evaluate a trained agent on fresh levels."
    )
    parser.add_argument("--ckpt", required=True, help="checkpoint of a PPO/A2C run")
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument(
        "--env_id",
        nargs="+",
        default=None,
        help="env id(s), space- or comma-separated (one row each); default: the training env",
    )
    parser.add_argument(
        "--out", default=None, help="also write the rows to OUT.jsonl and a table to OUT.md"
    )
    parser.add_argument("--force", action="store_true", help="overwrite existing --out files")
    parser.add_argument(
        "--env_kwargs",
        type=_json_dict,
        default={},
        help="JSON overrides, e.g. '{\"goal_length\": 3}'",
    )
    parser.add_argument("--seed", type=int, default=10_000, help="env i is seeded seed + i")
    parser.add_argument("--greedy", action="store_true", help="argmax actions (default: sample)")
    parser.add_argument("--num_envs", type=int, default=8)
    args = parser.parse_args(argv)
    from graphrl.rl.evaluation import evaluate_presets, markdown_table

    env_ids = [e for arg in args.env_id for e in arg.split(",") if e] if args.env_id else [None]
    paths = [f"{args.out}.jsonl", f"{args.out}.md"] if args.out else []
    existing = [path for path in paths if os.path.exists(path) and not args.force]
    if existing:
        raise SystemExit(f"error: {existing[0]!r} exists: pass another --out or --force")
    torch.set_num_threads(1)
    agent = load_agent(args.ckpt)
    rows = evaluate_presets(
        agent,
        env_ids,
        episodes=args.episodes,
        seed=args.seed,
        greedy=args.greedy,
        num_envs=args.num_envs,
        env_kwargs=args.env_kwargs,
    )
    lines = [json.dumps(row) for row in rows]
    print("\n".join(lines))
    if len(rows) > 1:
        print(markdown_table(rows))
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(paths[0], "w") as f:
            f.write("\n".join(lines) + "\n")
        with open(paths[1], "w") as f:
            f.write(markdown_table(rows) + "\n")
    return rows[0] if len(rows) == 1 else rows


def render_command(argv: list[str]) -> str:
    """``graphrl render``: a GIF of one episode with the agent's attention over the grid."""
    from graphrl.render import render_episode

    parser = argparse.ArgumentParser(
        prog="graphrl render", description="Write a GIF of one episode with attention overlays."
    )
    parser.add_argument("--ckpt", required=True)
    parser.add_argument("--out", default="episode.gif")
    parser.add_argument("--env_id", default=None)
    parser.add_argument("--env_kwargs", type=_json_dict, default={})
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--greedy", action="store_true")
    parser.add_argument("--max_steps", type=int, default=200)
    parser.add_argument("--force", action="store_true", help="overwrite an existing --out")
    args = parser.parse_args(argv)
    if os.path.exists(args.out) and not args.force:
        raise SystemExit(f"error: {args.out!r} exists: pass another --out or --force")
    agent = load_agent(args.ckpt)
    env_id = args.env_id or agent.hparams.env_id
    env_kwargs = {**(agent.hparams.env_kwargs or {}), **args.env_kwargs}
    summary = render_episode(
        agent.policy,
        env_id,
        env_kwargs,
        args.out,
        seed=args.seed,
        greedy=args.greedy,
        max_steps=args.max_steps,
    )
    print(json.dumps({"gif": os.path.abspath(args.out), **summary}))
    return args.out

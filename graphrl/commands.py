"""Project commands beside Lightning's: ``graphrl evaluate`` and ``graphrl render``.

    graphrl evaluate --ckpt runs/boxworld/.../checkpoints/last.ckpt --episodes 200 \\
        [--env_id graphrl/BoxWorld-Small-v0] [--env_kwargs '{"goal_length": 3}'] [--greedy]
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


def evaluate_command(argv: list[str]) -> dict[str, float]:
    """``graphrl evaluate``: one JSON line with solve_rate, mean_return, mean_length, episodes."""
    parser = argparse.ArgumentParser(
        prog="graphrl evaluate", description="Evaluate a trained agent on fresh levels."
    )
    parser.add_argument("--ckpt", required=True, help="checkpoint of a PPO/A2C run")
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--env_id", default=None, help="default: the training env")
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
    torch.set_num_threads(1)
    agent = load_agent(args.ckpt)
    result = agent.evaluate(
        args.env_id,
        episodes=args.episodes,
        seed=args.seed,
        greedy=args.greedy,
        num_envs=args.num_envs,
        **args.env_kwargs,
    )
    result = {"env_id": args.env_id or agent.hparams.env_id, **result}
    print(json.dumps(result))
    return result


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

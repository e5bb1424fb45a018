"""Mini Pac-Man baselines: the uniform random policy and the scripted greedy player, per mode.

Each policy plays ``--episodes`` episodes of every mode, episode ``i`` reset with seed
``--seed + i`` (the same levels for both policies). Neither policy reads the observation (the
scripted player reads the game state, see ``graphrl/envs/minipacman_scripted.py``), so a
mode's full and viewport presets give the same figures and one row serves both ids. One JSON
line per mode and policy, then a markdown table::

    python scripts/minipacman_baselines.py --episodes 20
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable

import numpy as np

from graphrl.envs import MINIPACMAN_PRESETS, make_env
from graphrl.envs.minipacman import REWARD_MODES, MiniPacman
from graphrl.envs.minipacman_scripted import ScriptedPacman

POLICIES = ("random", "scripted")


def mode_ids(mode: str) -> list[str]:
    """The registered ids of ``mode`` (full view first, then the viewport)."""
    ids = [i for i, kwargs in MINIPACMAN_PRESETS.items() if kwargs["mode"] == mode]
    return sorted(ids, key=lambda i: "Viewport" in i)


def play(env: MiniPacman, act: Callable[[], int], seed: int) -> tuple[float, int, int]:
    """One episode from ``reset(seed=seed)``: (return, length, levels cleared)."""
    env.reset(seed=seed)
    total, length = 0.0, 0
    while True:
        _, reward, terminated, truncated, info = env.step(act())
        total += reward
        length += 1
        if terminated or truncated:
            return total, length, int(info["levels_cleared"])


def evaluate(mode: str, policy: str, episodes: int, seed: int, max_steps: int | None) -> dict:
    """``episodes`` seeded episodes of ``policy`` on ``mode``: mean and spread."""
    kwargs = {} if max_steps is None else {"max_steps": max_steps}
    env = make_env(mode_ids(mode)[0], **kwargs).unwrapped
    player = ScriptedPacman(mode)
    start = time.perf_counter()
    rows = []
    for i in range(episodes):
        if policy == "random":
            env.action_space.seed(seed + i)
            rows.append(play(env, lambda: int(env.action_space.sample()), seed + i))
        else:
            rows.append(play(env, lambda: player.act(env.state), seed + i))
    returns, lengths, cleared = (np.array(column, dtype=np.float64) for column in zip(*rows))
    return {
        "mode": mode,
        "env_ids": mode_ids(mode),
        "policy": policy,
        "episodes": episodes,
        "max_steps": env.max_steps,
        "mean_return": round(float(returns.mean()), 2),
        "std_return": round(float(returns.std()), 2),
        "mean_length": round(float(lengths.mean()), 1),
        "mean_levels_cleared": round(float(cleared.mean()), 2),
        "solve_rate": round(float((cleared > 0).mean()), 3),
        "seconds": round(time.perf_counter() - start, 1),
    }


def table(records: list[dict]) -> str:
    """A markdown table of the records."""
    lines = [
        "| mode | policy | return (mean ± std) | length | levels cleared | solve rate |",
        "|---|---|---|---|---|---|",
    ]
    for r in records:
        lines.append(
            f"| {r['mode']} | {r['policy']} | {r['mean_return']:.1f} ± {r['std_return']:.1f} "
            f"| {r['mean_length']:.0f} | {r['mean_levels_cleared']:.2f} | {r['solve_rate']:.2f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modes", nargs="+", default=list(REWARD_MODES), choices=REWARD_MODES)
    parser.add_argument("--policies", nargs="+", default=list(POLICIES), choices=POLICIES)
    parser.add_argument("--episodes", type=int, default=20, help="episodes per mode and policy")
    parser.add_argument("--seed", type=int, default=0, help="episode i is reset with seed + i")
    parser.add_argument(
        "--max_steps", type=int, default=None, help="truncate episodes here (default: the preset's)"
    )
    args = parser.parse_args(argv)
    if args.episodes < 1:
        parser.error("--episodes must be >= 1")
    if args.max_steps is not None and args.max_steps < 1:
        parser.error("--max_steps must be >= 1")
    records = []
    for mode in args.modes:
        for policy in args.policies:
            record = evaluate(mode, policy, args.episodes, args.seed, args.max_steps)
            print(json.dumps(record), flush=True)
            records.append(record)
    print(table(records))
    return records


if __name__ == "__main__":
    main(sys.argv[1:])

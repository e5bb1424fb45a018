"""Environments: Box-World (registered as ``graphrl/BoxWorld-*``) and MiniGrid adapters.

Importing this package registers every Box-World preset with gymnasium (idempotently).
:func:`make_env` builds any Box-World id or any ``MiniGrid-*`` id, with a symbolic
``[H, W, C]`` uint8 observation and ``env.symbol_counts`` on the returned object.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from graphrl.envs.boxworld import (
    BOXWORLD_PRESETS,
    BOXWORLD_VIEWPORT_PRESETS,
    BoxWorld,
    observation_to_ansi,
    observation_to_rgb,
)
from graphrl.envs.boxworld_levels import Level, LevelConfig, generate_level, roles_from_colors
from graphrl.envs.minigrid import (
    MiniGridActions,
    MiniGridSolvedInfo,
    MiniGridSymbolicObs,
    make_minigrid,
)
from graphrl.envs.solver import SolverResult, UnsolvableError, run_solver, solver_action

BOXWORLD_IDS: tuple[str, ...] = tuple(BOXWORLD_PRESETS)


def register_envs() -> None:
    """Register every Box-World preset with gymnasium; ids already registered are skipped.

    ``order_enforce`` is off because :class:`BoxWorld` refuses ``step`` before ``reset`` itself,
    so ``gymnasium.make(id, disable_env_checker=True)`` returns the bare env.
    """
    for env_id, kwargs in {**BOXWORLD_PRESETS, **BOXWORLD_VIEWPORT_PRESETS}.items():
        if env_id not in gym.registry:
            gym.register(
                id=env_id,
                entry_point="graphrl.envs.boxworld:BoxWorld",
                kwargs=kwargs,
                order_enforce=False,
            )


def make_env(env_id: str, seed: int | None = None, **kwargs: Any) -> gym.Env:
    """Make a Box-World or MiniGrid env with a symbolic observation.

    Box-World ids return the bare :class:`BoxWorld`; ``MiniGrid-*`` ids are wrapped by
    :func:`~graphrl.envs.minigrid.make_minigrid` (options ``fully_observable`` and
    ``max_actions``). Either way ``env.symbol_counts`` holds the number of values per
    observation channel (after more wrappers, read it with
    ``env.get_wrapper_attr("symbol_counts")``). Episode statistics are left to the caller.

    Args:
        env_id: A Box-World id (see ``BOXWORLD_IDS``) or a registered ``MiniGrid-*`` id.
        seed: If given, the env is reset with it now and its action space seeded, so a later
            ``reset()`` without a seed continues one reproducible stream of levels.
        **kwargs: Passed to the env constructor (e.g. ``render_mode``, ``max_steps``).

    Returns:
        The env.
    """
    if env_id in BOXWORLD_PRESETS or env_id in BOXWORLD_VIEWPORT_PRESETS:
        env = gym.make(env_id, disable_env_checker=True, **kwargs)
    elif env_id.startswith("MiniGrid-"):
        env = make_minigrid(env_id, **kwargs)
    else:
        raise ValueError(
            f"unknown environment id {env_id!r}; use a Box-World id ({', '.join(BOXWORLD_IDS)}) "
            f"or any registered MiniGrid-* id (e.g. MiniGrid-DoorKey-5x5-v0)"
        )
    if seed is not None:
        env.reset(seed=seed)
        env.action_space.seed(seed)
    return env


register_envs()

__all__ = [
    "BOXWORLD_IDS",
    "BOXWORLD_PRESETS",
    "BOXWORLD_VIEWPORT_PRESETS",
    "BoxWorld",
    "Level",
    "LevelConfig",
    "MiniGridActions",
    "MiniGridSolvedInfo",
    "MiniGridSymbolicObs",
    "SolverResult",
    "UnsolvableError",
    "generate_level",
    "make_env",
    "make_minigrid",
    "observation_to_ansi",
    "observation_to_rgb",
    "register_envs",
    "roles_from_colors",
    "run_solver",
    "solver_action",
]

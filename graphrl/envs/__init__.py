"""Environments: making any env by id, Box-World, Mini Pac-Man, MiniGrid adapters, and how envs
are drawn.

This package is the one place that knows envs. Importing it registers every Box-World preset
(symbolic ``graphrl/BoxWorld-*-v0`` and RGB ``graphrl/BoxWorld-*-Pixels-v0``) and every Mini
Pac-Man preset (``graphrl/MiniPacman-*``) with gymnasium, idempotently. :func:`make_env` builds
every id the project takes (``fit``, ``evaluate``, ``render``): graphrl's own, ``MiniGrid-*``
(symbolic ``[H, W, 4]`` observations), any registered gymnasium id, and gymnasium's
``module:EnvId`` form for envs in a user's module.
:class:`ObservationDrawer` draws any env's observations with the env's own drawing methods.
"""

from __future__ import annotations

import importlib
from typing import Any

import gymnasium as gym

from graphrl.envs.boxworld import (
    BOXWORLD_PRESETS,
    BOXWORLD_VIEWPORT_PRESETS,
    PIXEL_PRESETS,
    BoxWorld,
    observation_to_ansi,
    observation_to_rgb,
)
from graphrl.envs.boxworld_levels import Level, LevelConfig, generate_level, roles_from_colors
from graphrl.envs.drawing import ObservationDrawer
from graphrl.envs.minigrid import (
    MiniGridActions,
    MiniGridSolvedInfo,
    MiniGridSymbolicObs,
    make_minigrid,
)
from graphrl.envs.minipacman import MINIPACMAN_PRESETS, MiniPacman, PacmanState
from graphrl.envs.solver import SolverResult, UnsolvableError, run_solver, solver_action

BOXWORLD_IDS: tuple[str, ...] = tuple(BOXWORLD_PRESETS)
BOXWORLD_PIXEL_IDS: tuple[str, ...] = tuple(PIXEL_PRESETS)
MINIPACMAN_IDS: tuple[str, ...] = tuple(MINIPACMAN_PRESETS)
_ENTRY_POINTS = {
    **{env_id: "graphrl.envs.boxworld:BoxWorld" for env_id in BOXWORLD_PRESETS},
    **{env_id: "graphrl.envs.boxworld:BoxWorld" for env_id in PIXEL_PRESETS},
    **{env_id: "graphrl.envs.boxworld:BoxWorld" for env_id in BOXWORLD_VIEWPORT_PRESETS},
    **{env_id: "graphrl.envs.minipacman:MiniPacman" for env_id in MINIPACMAN_PRESETS},
}


def register_envs() -> None:
    """Register every Box-World and Mini Pac-Man preset with gymnasium; ids already registered
    are skipped.

    ``order_enforce`` is off because :class:`BoxWorld` and :class:`MiniPacman` refuse ``step``
    before ``reset`` themselves, so ``gymnasium.make(id, disable_env_checker=True)`` returns the
    bare env.
    """
    for env_id, kwargs in {
        **BOXWORLD_PRESETS,
        **PIXEL_PRESETS,
        **BOXWORLD_VIEWPORT_PRESETS,
        **MINIPACMAN_PRESETS,
    }.items():
        if env_id not in gym.registry:
            gym.register(
                id=env_id,
                entry_point=_ENTRY_POINTS[env_id],
                kwargs=kwargs,
                order_enforce=False,
            )


def make_env(env_id: str, seed: int | None = None, **kwargs: Any) -> gym.Env:
    """Make any env the project takes, by id, seeded the same way whatever its origin.

    - ``graphrl/BoxWorld-*`` and ``graphrl/MiniPacman-*`` ids return the bare
      :class:`BoxWorld` / :class:`MiniPacman`;
    - ``MiniGrid-*`` ids are wrapped by :func:`~graphrl.envs.minigrid.make_minigrid`
      (options ``fully_observable`` and ``max_actions``);
    - any other registered gymnasium id goes to ``gymnasium.make``;
    - ``module:EnvId`` imports ``module`` first (which registers the id), as
      ``gymnasium.make`` does, then makes ``EnvId`` by the rules above.

    Symbolic envs set ``env.symbol_counts`` (values per observation channel; after more
    wrappers read it with ``env.get_wrapper_attr("symbol_counts")``). Episode statistics are
    left to the caller.

    Args:
        env_id: An id as above.
        seed: If given, the env is reset with it now and its action space seeded, so a later
            ``reset()`` without a seed continues one reproducible stream of episodes.
        **kwargs: Passed to the env constructor (e.g. ``render_mode``, ``max_steps``).

    Returns:
        The env.

    Raises:
        ValueError: if the id is not registered (naming the forms that are accepted).
    """
    name = env_id
    if ":" in env_id:
        module, _, name = env_id.partition(":")
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise ValueError(
                f"env id {env_id!r}: cannot import module {module!r} ({exc}); put it on "
                "PYTHONPATH or fix --env_id"
            ) from None
    if name in _ENTRY_POINTS:
        env = gym.make(name, disable_env_checker=True, **kwargs)
    elif name.startswith("MiniGrid-"):
        env = make_minigrid(name, **kwargs)
    elif name in gym.registry:
        env = gym.make(name, **kwargs)
    else:
        from graphrl.errors import did_you_mean

        raise ValueError(
            f"unknown environment id {env_id!r}{did_you_mean(name, gym.registry, '{!r}')} "
            "Use a Box-World id (graphrl/BoxWorld-Small-v0, ...; -Pixels-v0 and -Viewport-v0 "
            "twins), a Mini Pac-Man id (graphrl/MiniPacman-v0, graphrl/MiniPacman-Viewport-v0, "
            "...), a MiniGrid-* id, any registered gymnasium id, or module:EnvId for an env "
            "your own module registers"
        )
    if seed is not None:
        env.reset(seed=seed)
        env.action_space.seed(seed)
    return env


register_envs()

__all__ = [
    "BOXWORLD_IDS",
    "BOXWORLD_PIXEL_IDS",
    "BOXWORLD_PRESETS",
    "BOXWORLD_VIEWPORT_PRESETS",
    "MINIPACMAN_IDS",
    "MINIPACMAN_PRESETS",
    "PIXEL_PRESETS",
    "BoxWorld",
    "Level",
    "LevelConfig",
    "MiniGridActions",
    "MiniGridSolvedInfo",
    "MiniGridSymbolicObs",
    "MiniPacman",
    "ObservationDrawer",
    "PacmanState",
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

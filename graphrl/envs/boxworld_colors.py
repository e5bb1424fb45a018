"""Box-World's colours seen by an agent trained on fewer of them: the relabelling that lets
an agent embed the levels of a preset with more colours (zero-shot evaluation)."""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from graphrl.envs import make_env
from graphrl.envs.boxworld_levels import FIRST_KEY_COLOR
from graphrl.envs.vector import env_spaces

__all__ = ["fit_symbols"]


def fit_symbols(
    trained_space: gym.spaces.Box, env_id: str, env_kwargs: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Env kwargs under which ``env_id``'s symbols stay inside the ones a policy embeds.

    An agent trained on levels with few colours embeds only those colour ids. When ``env_id``
    draws from more colours (Box-World's Medium and 12x12 presets use 20) but each of its
    levels uses no more colours than the agent knows, every level's colours are relabelled at
    random into the agent's ids (``color_ids``): a colour-permutation-invariant task is
    unchanged by it. When the levels need more colours than that, the error says so.

    Args:
        trained_space: The agent's observation space (``high[..., c] = symbol_counts[c] - 1``).
        env_id: The env to evaluate on.
        env_kwargs: Its keyword arguments.

    Returns:
        ``env_kwargs``, with ``color_ids`` added when needed.

    Raises:
        ValueError: The env's observations cannot be mapped into the agent's symbols.
    """
    kwargs = dict(env_kwargs or {})
    space, _ = env_spaces(env_id, kwargs)
    if space.shape[-1:] != trained_space.shape[-1:] or len(space.shape) != 3:
        return kwargs  # not a symbol grid like the training one; the policy checks the rest
    known = trained_space.high.reshape(-1, space.shape[-1]).max(0).astype(int) + 1
    needed = space.high.reshape(-1, space.shape[-1]).max(0).astype(int) + 1
    if (needed <= known).all():
        return kwargs
    env = make_env(env_id, **kwargs)
    try:
        levels = getattr(env.unwrapped, "levels", None)
    finally:
        env.close()
    colors = int(known[0]) - FIRST_KEY_COLOR
    if levels is None or (needed[1:] > known[1:]).any():
        raise ValueError(
            f"{env_id} observations hold symbol values {tuple(needed)} per channel but the "
            f"agent embeds {tuple(known)}: evaluate it on envs with its training symbols"
        )
    most = max(config.colors_needed for config in levels.configs)
    if most > colors:
        raise ValueError(
            f"the agent knows {colors} key colours but {env_id} levels use up to {most}: "
            f"train with env_kwargs color_ids: 26 (configs/boxworld/zero_shot.yaml)"
        )
    return {**kwargs, "color_ids": colors}

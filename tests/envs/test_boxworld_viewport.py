"""The partially observable Box-World preset: an egocentric 5x5 window plus the held key."""

import numpy as np
import pytest

from graphrl.envs import BOXWORLD_VIEWPORT_PRESETS, make_env
from graphrl.envs.boxworld_levels import AGENT, HELD_SLOT, WALL
from graphrl.envs.boxworld_viewport import egocentric_view

VIEWPORT = "graphrl/BoxWorld-Small-Viewport-v0"


def test_viewport_is_centred_on_the_agent_pads_with_wall_and_shows_the_held_key() -> None:
    env = make_env(VIEWPORT, seed=0)
    full = make_env("graphrl/BoxWorld-Small-v0", seed=0)
    obs, _ = env.reset(seed=3)
    level, _ = full.reset(seed=3)  # same generator stream: the same level
    assert obs.shape == (6, 5, 2) == env.observation_space.shape
    assert env.observation_space.contains(obs)
    assert obs[2, 2, 0] == AGENT  # the agent at the window's centre
    row, col = np.argwhere(level[..., 0] == AGENT)[0]
    for dr in range(-2, 3):
        for dc in range(-2, 3):
            r, c = row + dr, col + dc
            inside = 0 <= r < level.shape[0] and 0 <= c < level.shape[1]
            expected = level[r, c] if inside else (WALL, 1)
            assert tuple(obs[2 + dr, 2 + dc]) == tuple(expected)
    assert tuple(obs[5, 0]) == tuple(level[HELD_SLOT])
    # walk both envs with the same actions: the held key row always matches the full level
    rng = np.random.default_rng(0)
    for _ in range(200):
        action = int(rng.integers(4))
        obs, r1, t1, u1, _ = env.step(action)
        level, r2, t2, u2, _ = full.step(action)
        assert (r1, t1, u1) == (r2, t2, u2)
        assert tuple(obs[5, 0]) == tuple(level[HELD_SLOT])
        assert obs[2, 2, 0] == AGENT
        if t1 or u1:
            obs, _ = env.reset()
            level, _ = full.reset()


def test_view_outside_the_level_is_wall_and_bad_sizes_fail() -> None:
    level = np.zeros((4, 4, 2), np.uint8)
    view = egocentric_view(level, (0, 0), 3)
    assert (view[0, :, 0] == WALL).all() and (view[:3, 0, 0] == WALL).all()
    assert (view[1:3, 1:3, 0] == 0).all()
    with pytest.raises(ValueError, match="viewport must be an odd int"):
        make_env(VIEWPORT, viewport=4)
    assert BOXWORLD_VIEWPORT_PRESETS[VIEWPORT]["viewport"] == 5

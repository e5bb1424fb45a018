"""One ``make_env`` for every id (graphrl, MiniGrid, gymnasium, ``module:EnvId``), seeded the
same way; envs draw themselves and say where their agent is; Box-World's pixel mode."""

from __future__ import annotations

import sys

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from graphrl.envs import (
    BOXWORLD_PIXEL_IDS,
    BoxWorld,
    ObservationDrawer,
    make_env,
    observation_to_rgb,
    solver_action,
)
from graphrl.envs import make_env as make_single_env
from graphrl.envs.boxworld import PALETTE
from graphrl.envs.vector import env_spaces

SMALL, SMALL_PIXELS = "graphrl/BoxWorld-Small-v0", "graphrl/BoxWorld-Small-Pixels-v0"


def _stream(env: gym.Env, steps: int = 12) -> list[bytes]:
    out = [env.reset()[0].tobytes()]
    for _ in range(steps):
        obs, *_ = env.step(env.action_space.sample())
        out.append(obs.tobytes())
    return out


@pytest.mark.parametrize("env_id", [SMALL, "MiniGrid-Empty-5x5-v0", "user_env:UserCoin-v0"])
def test_every_id_form_is_seeded_the_same_way(env_id) -> None:
    a, b, c = make_env(env_id, seed=3), make_env(env_id, seed=3), make_env(env_id, seed=4)
    assert _stream(a) == _stream(b)
    assert _stream(a) != _stream(c) or env_id.startswith("MiniGrid-Empty")  # a fixed layout


def test_module_form_imports_the_users_module_and_goes_through_rollout() -> None:
    sys.modules.pop("user_env", None)
    env = make_single_env("user_env:UserCoin-v0", seed=0, max_steps=2)
    assert type(env.unwrapped).__name__ == "UserCoin" and env.unwrapped.max_steps == 2
    assert env_spaces("user_env:UserCoin-v0")[1] == gym.spaces.Discrete(3)
    assert isinstance(make_env("CartPole-v1", seed=0).action_space, gym.spaces.Discrete)


def test_unknown_ids_and_modules_fail_with_one_line() -> None:
    with pytest.raises(ValueError, match=r"graphrl/BoxWorld-Small-v0.*MiniGrid-\*.*module:EnvId"):
        make_env("NoSuchEnv-v0")
    with pytest.raises(ValueError, match="cannot import module 'no_such_module'"):
        make_env("no_such_module:Env-v0")


def test_pixel_mode_is_the_rgb_of_the_symbolic_state_with_the_held_key() -> None:
    for env_id in BOXWORLD_PIXEL_IDS:
        check_env(make_env(env_id))
    symbols, pixels = make_env(SMALL, seed=5), make_env(SMALL_PIXELS, seed=5)
    assert pixels.observation_space == gym.spaces.Box(0, 255, (8, 8, 3), np.uint8)
    with pytest.raises(AttributeError):
        pixels.get_wrapper_attr("symbol_counts")  # policies must not embed pixels as symbols
    obs_s, _ = symbols.reset(seed=5)
    obs_p, _ = pixels.reset(seed=5)
    held = []
    for action in np.random.default_rng(0).integers(4, size=60):
        np.testing.assert_array_equal(obs_p, observation_to_rgb(obs_s))
        held.append(pixels.unwrapped.describe_observation(obs_p))
        assert held[-1] == symbols.unwrapped.describe_observation(obs_s)
        obs_s, _, term, trunc, _ = symbols.step(int(action))
        obs_p, _, term_p, trunc_p, _ = pixels.step(int(action))
        assert (term, trunc) == (term_p, trunc_p)
        if term or trunc:
            break
    assert held[0] == "held key: none"
    with pytest.raises(ValueError, match="obs_mode must be one of symbols, pixels"):
        BoxWorld(n=6, goal_length=2, num_distractors=1, obs_mode="rgb")


def test_a_picked_key_shows_in_the_top_left_pixel() -> None:
    env = make_env(SMALL_PIXELS)
    obs, _ = env.reset(seed=0)
    base = env.unwrapped
    for _ in range(200):  # follow the scripted solver until a key is held
        if base._held >= 0:
            break
        obs, *_ = env.step(solver_action(base._obs))
    assert base._held >= 0
    assert tuple(obs[0, 0]) == tuple(PALETTE[base._held])
    assert base.describe_observation(obs) != "held key: none"


@pytest.mark.parametrize(
    ("env_id", "kwargs", "shape"),
    [
        (SMALL, {}, (8, 8, 2)),
        (SMALL_PIXELS, {}, (8, 8, 3)),
        ("MiniGrid-DoorKey-5x5-v0", {"fully_observable": True}, (5, 5, 4)),
        ("MiniGrid-DoorKey-5x5-v0", {}, (7, 7, 4)),
    ],
)
def test_envs_draw_themselves_and_say_where_the_agent_is(env_id, kwargs, shape) -> None:
    env = make_env(env_id, seed=1, **kwargs)
    obs, _ = env.reset(seed=1)
    assert obs.shape == shape
    drawer = ObservationDrawer(env)
    frame = drawer.draw(obs, 6)
    assert frame.shape == (shape[0] * 6, shape[1] * 6, 3) and frame.dtype == np.uint8
    row, col = drawer.agent_cell(obs)
    if env_id.startswith("graphrl/"):
        assert (row, col) == env.unwrapped._agent
    elif kwargs:
        assert (col, row) == tuple(env.unwrapped.agent_pos)
    else:
        assert (row, col) == (6, 3)  # egocentric view: bottom centre
    assert drawer.action_name(0) in ("up", "left") and drawer.describe(obs)


def test_envs_without_drawing_methods_still_get_a_picture() -> None:
    env = make_env("user_env:UserCoin-v0", seed=0)
    obs, _ = env.reset(seed=0)
    drawer = ObservationDrawer(env)
    assert drawer.draw(obs, 4).shape == (4, 12, 3)
    assert drawer.agent_cell(obs) is None and drawer.describe(obs) == ""
    assert drawer.action_name(2) == "2"

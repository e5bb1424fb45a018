"""MiniGrid adapters: symbolic observation, solved flag, action subset, make_env dispatch."""

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from minigrid.core.constants import COLOR_TO_IDX, OBJECT_TO_IDX
from minigrid.wrappers import FullyObsWrapper

from graphrl.envs import BoxWorld, MiniGridSymbolicObs, make_env

LEFT, RIGHT, FORWARD = 0, 1, 2


@pytest.mark.parametrize(
    ("env_id", "kwargs"),
    [
        ("MiniGrid-DoorKey-5x5-v0", {}),
        ("MiniGrid-Empty-8x8-v0", {}),
        ("MiniGrid-DoorKey-5x5-v0", {"fully_observable": True, "max_actions": 6}),
    ],
)
def test_check_env_on_wrapped_minigrid(env_id, kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.filterwarnings("ignore", message=".*different from the unwrapped version.*")
        check_env(make_env(env_id, **kwargs), skip_render_check=True)


def test_partial_view_is_the_transposed_image_plus_direction():
    env = make_env("MiniGrid-DoorKey-5x5-v0")
    obs, info = env.reset(seed=0)
    assert obs.shape == (7, 7, 4) and obs.dtype == np.uint8 and info["solved"] is False
    assert env.observation_space.contains(obs)
    assert env.symbol_counts == (len(OBJECT_TO_IDX), len(COLOR_TO_IDX), 4, 4)
    for action in (LEFT, FORWARD, RIGHT, RIGHT, FORWARD):
        obs, *_ = env.step(action)
        raw = env.unwrapped.gen_obs()
        np.testing.assert_array_equal(obs[..., :3], raw["image"].transpose(1, 0, 2))
        assert (obs[..., 3] == env.unwrapped.agent_dir).all()
        assert (obs.reshape(-1, 4).max(0) < np.array(env.symbol_counts)).all()
    # The agent sits at the bottom centre of its own view, as MiniGrid draws it.
    assert obs[6, 3, 0] != OBJECT_TO_IDX["unseen"]


def test_full_grid_view_matches_minigrid_fully_obs_wrapper():
    env = make_env("MiniGrid-DoorKey-8x8-v0", fully_observable=True)
    reference = FullyObsWrapper(gym.make("MiniGrid-DoorKey-8x8-v0"))
    obs, ref = env.reset(seed=0)[0], reference.reset(seed=0)[0]
    for action in (LEFT, FORWARD, FORWARD, RIGHT, FORWARD):
        assert obs.shape == (8, 8, 4)
        np.testing.assert_array_equal(obs[..., :3], ref["image"].transpose(1, 0, 2))
        assert (obs[..., 3] == ref["direction"]).all()
        obs, ref = env.step(action)[0], reference.step(action)[0]
    x, y = env.unwrapped.agent_pos
    assert obs[y, x, 0] == OBJECT_TO_IDX["agent"] and obs[y, x, 2] == env.unwrapped.agent_dir


def test_solved_only_when_the_goal_is_reached():
    env = make_env("MiniGrid-Empty-5x5-v0")
    env.reset(seed=0)
    for action in (FORWARD, FORWARD, RIGHT, FORWARD):
        *_, terminated, truncated, info = env.step(action)
        assert not terminated and info["solved"] is False
    _, reward, terminated, truncated, info = env.step(FORWARD)
    assert terminated and reward > 0 and info["solved"] is True
    env = make_env("MiniGrid-DistShift1-v0")  # lava two cells ahead: terminated, reward 0
    env.reset(seed=0)
    env.step(FORWARD)
    _, reward, terminated, truncated, info = env.step(FORWARD)
    assert terminated and reward == 0 and info["solved"] is False
    env = make_env("MiniGrid-Empty-5x5-v0", max_steps=2)
    env.reset(seed=0)
    env.step(LEFT)
    *_, terminated, truncated, info = env.step(LEFT)
    assert truncated and not terminated and info["solved"] is False


def test_max_actions_restricts_the_action_space():
    env = make_env("MiniGrid-Empty-8x8-v0", max_actions=3)
    assert env.action_space == gym.spaces.Discrete(3)
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"action must be in \[0, 3\)"):
        env.step(5)  # toggle exists in MiniGrid but was not kept
    assert make_env("MiniGrid-Empty-8x8-v0").action_space == gym.spaces.Discrete(7)
    for bad in (0, 8):
        with pytest.raises(ValueError, match="max_actions must be"):
            make_env("MiniGrid-Empty-8x8-v0", max_actions=bad)


def test_seeded_minigrid_is_reproducible_and_vectorises():
    a, b = make_env("MiniGrid-DoorKey-5x5-v0", seed=5), make_env("MiniGrid-DoorKey-5x5-v0", seed=5)
    for _ in range(3):
        np.testing.assert_array_equal(a.reset()[0], b.reset()[0])
    envs = gym.vector.SyncVectorEnv(
        [lambda i=i: make_env("MiniGrid-DoorKey-5x5-v0", seed=i) for i in range(4)]
    )
    envs.reset(seed=0)
    for _ in range(100):
        obs, *_, info = envs.step(envs.action_space.sample())
        assert obs.shape == (4, 7, 7, 4) and "solved" in info
    envs.close()


def test_bad_ids_and_envs_fail_clearly():
    with pytest.raises(ValueError, match=r"unknown MiniGrid id .*MiniGrid-"):
        make_env("MiniGrid-NoSuchThing-v0")
    with pytest.raises(ValueError, match="'image' and 'direction'"):
        MiniGridSymbolicObs(BoxWorld(n=6, goal_length=2, num_distractors=1))


def test_drawn_key_and_ball_of_one_colour_differ():
    """MiniGrid-Memory's cue and choices are a key and a ball of the same green: the board
    draws their shapes, so a picture tells them apart (at 1 pixel a cell, colour only)."""
    env = make_env("MiniGrid-MemoryS7-v0")
    env.reset(seed=0)
    obs = np.zeros((3, 3, 4), np.uint8)  # the agent's own cell is the bottom centre
    obs[0, [0, 2], 0] = OBJECT_TO_IDX["key"], OBJECT_TO_IDX["ball"]
    obs[0, [0, 2], 1] = COLOR_TO_IDX["green"]
    drawer = env.get_wrapper_attr("draw_observation")
    small = drawer(obs, 1)
    np.testing.assert_array_equal(small[0, 0], small[0, 2])
    image = drawer(obs, 16)
    key, ball = image[:16, :16], image[:16, 32:]
    assert image.shape == (48, 48, 3) and not np.array_equal(key, ball)
    green = np.all(ball == ball[8, 8], axis=-1)  # the ball's centre is its colour
    assert np.all(key == ball[8, 8], axis=-1).sum() < green.sum()  # a thin key, a full disc
    assert not green[0, 0] and not np.array_equal(key[0, 0], ball[8, 8])  # corners: background

"""Box-World: API conformance, determinism, level generation, rules, rendering, errors."""

import importlib
import pickle
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import graphrl.envs
from graphrl.envs import (
    BOXWORLD_IDS,
    BOXWORLD_PRESETS,
    BoxWorld,
    Level,
    make_env,
    observation_to_ansi,
    observation_to_rgb,
    roles_from_colors,
    run_solver,
    solver_action,
)
from graphrl.envs.boxworld import PALETTE
from graphrl.envs.boxworld_levels import (
    AGENT,
    FIRST_KEY_COLOR,
    FLOOR,
    GEM,
    ROLE_CONTENT,
    ROLE_GEM,
    ROLE_HELD,
    ROLE_KEY,
    ROLE_LOCK,
    WALL,
)
from graphrl.envs.solver import UnsolvableError

UP, DOWN, LEFT, RIGHT = range(4)
SMALL = "graphrl/BoxWorld-Small-v0"


def color(letter: str) -> int:
    return GEM if letter == "*" else FIRST_KEY_COLOR + ord(letter.lower()) - ord("a")


def make_level(rows: list[str], path: str) -> Level:
    """Room rows: ``.`` floor, ``@`` agent, ``*`` gem, lowercase key/content, uppercase lock."""
    size = len(rows) + 2
    colors = np.full((size, size), WALL, dtype=np.uint8)
    agent = (0, 0)
    for r, line in enumerate(rows, start=1):
        for c, char in enumerate(line, start=1):
            colors[r, c] = FLOOR if char in ".@" else color(char)
            if char == "@":
                agent = (r, c)
    return Level(colors=colors, agent=agent, path_contents=frozenset(color(x) for x in path))


# Start key a opens A; the box (b, A) is on the path, (d, A) a distractor; b opens the gem box.
HAND_LEVEL = make_level(["@a...", ".....", "bA.dA", ".....", "*B..."], path="b*")


def hand_env(max_steps: int = 120) -> BoxWorld:
    env = BoxWorld(n=5, goal_length=2, num_distractors=1, num_colors=4, max_steps=max_steps)
    env.reset(options={"level": HAND_LEVEL})
    return env


def play(env: BoxWorld, actions: list[int]) -> tuple[np.ndarray, list[float], bool, bool, dict]:
    rewards = []
    for action in actions:
        obs, reward, terminated, truncated, info = env.step(action)
        rewards.append(reward)
    return obs, rewards, terminated, truncated, info


@pytest.mark.parametrize("env_id", BOXWORLD_IDS)
def test_check_env_passes_without_warnings(env_id):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(make_env(env_id, render_mode="rgb_array"))
        check_env(make_env(env_id))


@pytest.mark.parametrize("env_id", BOXWORLD_IDS)
def test_observation_matches_space_and_symbol_counts(env_id):
    env = make_env(env_id, seed=0)
    n = BOXWORLD_PRESETS[env_id]["n"]
    obs, info = env.reset()
    assert obs.shape == (n + 2, n + 2, 2) and obs.dtype == np.uint8
    assert env.observation_space.contains(obs) and info == {"solved": False}
    assert env.symbol_counts == (4 + BOXWORLD_PRESETS[env_id]["num_colors"], 8)
    for _ in range(300):
        try:
            action = (
                solver_action(obs) if env.np_random.random() < 0.5 else env.action_space.sample()
            )
        except UnsolvableError:
            action = env.action_space.sample()
        obs, _, terminated, truncated, _ = env.step(action)
        assert (obs.reshape(-1, 2).max(0) < np.array(env.symbol_counts)).all()
        if terminated or truncated:
            obs, _ = env.reset()


def test_same_seed_same_levels_and_trajectories():
    actions = np.random.default_rng(0).integers(4, size=300)
    runs = []
    for _ in range(2):
        env = make_env("graphrl/BoxWorld-12x12-v0")
        trace = [env.reset(seed=7)[0]]
        for action in actions:
            obs, reward, terminated, truncated, _ = env.step(action)
            trace += [obs, reward, terminated]
            if terminated or truncated:
                trace.append(env.reset()[0])
        runs.append(trace)
    for a, b in zip(*runs, strict=True):
        np.testing.assert_array_equal(a, b)
    firsts = {make_env(SMALL).reset(seed=s)[0].tobytes() for s in range(10)}
    assert len(firsts) == 10


def test_make_env_seed_gives_a_reproducible_stream():
    a, b = make_env(SMALL, seed=3), make_env(SMALL, seed=3)
    for _ in range(3):
        np.testing.assert_array_equal(a.reset()[0], b.reset()[0])
    assert a.action_space.sample() == b.action_space.sample()
    assert not np.array_equal(
        make_env(SMALL, seed=4).reset()[0], make_env(SMALL, seed=3).reset()[0]
    )


def test_pickled_env_continues_identically():
    env = make_env("graphrl/BoxWorld-Medium-v0", seed=11)
    env.reset()
    for action in (UP, LEFT, DOWN, RIGHT, RIGHT):
        env.step(action)
    clone = pickle.loads(pickle.dumps(env))
    actions = np.random.default_rng(1).integers(4, size=400)
    for action in actions:
        out, out_clone = env.step(action), clone.step(action)
        np.testing.assert_array_equal(out[0], out_clone[0])
        assert out[1:] == out_clone[1:]
        if out[2] or out[3]:
            np.testing.assert_array_equal(env.reset()[0], clone.reset()[0])


@pytest.mark.parametrize("env_id", BOXWORLD_IDS)
def test_generated_levels_are_solvable_within_max_steps(env_id):
    env = make_env(env_id)
    preset = BOXWORLD_PRESETS[env_id]
    for seed in range(300 if "Small" in env_id else 60):
        result = run_solver(env, seed=seed)
        assert result.solved, f"seed {seed} not solved"
        assert result.total_reward == 10 + preset["goal_length"]
        assert result.steps <= preset["max_steps"]


def read_tree(obs: np.ndarray) -> tuple[list[int], list[list[int]]]:
    """Path key colours from the loose key, and each distractor branch as its lock colours."""
    colors, roles = obs[..., 0], obs[..., 1]
    boxes: dict[int, list[int]] = {}
    for row, col in np.argwhere(roles == ROLE_LOCK):
        boxes.setdefault(int(colors[row, col]), []).append(int(colors[row, col - 1]))

    def reaches_gem(key: int) -> bool:
        return any(c == GEM or reaches_gem(c) for c in boxes.get(key, []))

    path = [int(colors[roles == ROLE_KEY][0])]
    while GEM not in boxes[path[-1]]:
        path.append(next(c for c in boxes[path[-1]] if reaches_gem(c)))
    branches = []
    for key in path:
        for content in boxes[key]:
            if content != GEM and not reaches_gem(content):
                branch = [key]
                while content in boxes:
                    branch.append(content)
                    (content,) = boxes[content]
                branches.append(branch)
    return path, branches


@pytest.mark.parametrize(
    "env_id", ["graphrl/BoxWorld-Small-Hard-v0", "graphrl/BoxWorld-12x12-Hard-v0"]
)
def test_generated_levels_have_the_configured_tree(env_id):
    preset = BOXWORLD_PRESETS[env_id]
    goal_length = preset["goal_length"]
    num_boxes = goal_length + preset["num_distractors"] * preset["distractor_length"]
    env = make_env(env_id)
    attached_at = set()
    for seed in range(50):
        obs, _ = env.reset(seed=seed)
        roles, colors = obs[..., 1], obs[..., 0]
        assert (roles == ROLE_LOCK).sum() == num_boxes
        assert (roles == ROLE_CONTENT).sum() + (roles == ROLE_GEM).sum() == num_boxes
        assert (roles == ROLE_GEM).sum() == 1 and (roles == ROLE_KEY).sum() == 1
        assert (colors == AGENT).sum() == 1 and colors[0, 0] == WALL and roles[0, 0] == ROLE_HELD
        contents = colors[(roles == ROLE_CONTENT) | (roles == ROLE_KEY)]
        assert len(set(contents.tolist())) == contents.size  # every key colour appears once
        np.testing.assert_array_equal(roles_from_colors(colors), roles)
        path, branches = read_tree(obs)
        assert len(path) == goal_length and len(branches) == preset["num_distractors"]
        assert all(len(branch) == preset["distractor_length"] for branch in branches)
        attached_at |= {path.index(branch[0]) for branch in branches}
    assert attached_at == set(range(goal_length))  # branches hang off every path key


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(3, 10),
    goal_length=st.integers(1, 6),
    num_distractors=st.integers(0, 4),
    distractor_length=st.integers(1, 3),
    seed=st.integers(0, 2**31),
)
def test_any_accepted_size_generates_solvable_levels(
    n, goal_length, num_distractors, distractor_length, seed
):
    try:
        env = BoxWorld(n, goal_length, num_distractors, distractor_length, max_steps=1000)
    except ValueError as error:
        assert "room" in str(error) or "crowded" in str(error)
        return
    result = run_solver(env, seed=seed)
    assert result.solved and result.total_reward == 10 + goal_length


def test_roles_follow_the_local_rule_while_boxes_open():
    rng = np.random.default_rng(0)
    for env_id in (SMALL, "graphrl/BoxWorld-12x12-Hard-v0"):
        env = make_env(env_id)
        obs, _ = env.reset(seed=0)
        for _ in range(600):
            try:
                action = solver_action(obs) if rng.random() < 0.7 else int(rng.integers(4))
            except UnsolvableError:
                action = int(rng.integers(4))
            obs, _, terminated, truncated, _ = env.step(action)
            np.testing.assert_array_equal(roles_from_colors(obs[..., 0]), obs[..., 1])
            if terminated or truncated:
                obs, _ = env.reset()


def test_walls_and_closed_boxes_block():
    env = hand_env()
    start = env.reset(options={"level": HAND_LEVEL})[0]
    for action in (UP, LEFT):  # border walls
        obs, reward, terminated, truncated, _ = env.step(action)
        np.testing.assert_array_equal(obs, start)
        assert (reward, terminated, truncated) == (0.0, False, False)
    before, *_ = play(env, [DOWN, RIGHT])  # next to lock A at (3, 2), holding nothing
    after, rewards, *_ = play(env, [DOWN])
    np.testing.assert_array_equal(after, before)
    after, rewards, *_ = play(env, [LEFT, DOWN])  # onto the box content (3, 1): blocked
    assert after[2, 1, 0] == AGENT and after[3, 1, 0] == color("b") and rewards == [0.0, 0.0]


def test_key_pickup_path_box_and_gem():
    env = hand_env()
    obs, rewards, *_ = play(env, [RIGHT])
    assert obs[0, 0, 0] == color("a") and obs[0, 0, 1] == ROLE_HELD and obs[1, 1, 0] == FLOOR
    obs, rewards, terminated, _, info = play(env, [DOWN, DOWN])  # open (b, A)
    assert rewards == [0.0, 1.0] and not terminated and not info["solved"]
    assert obs[3, 2, 0] == AGENT and obs[0, 0, 0] == WALL  # the key is used up
    assert obs[3, 1, 0] == color("b") and obs[3, 1, 1] == ROLE_KEY  # content now loose
    obs, rewards, terminated, truncated, info = play(env, [LEFT, DOWN, RIGHT, DOWN])
    assert rewards == [0.0, 0.0, 0.0, 11.0]
    assert terminated and not truncated and info["solved"]
    assert obs[5, 1, 0] == FLOOR and obs[5, 2, 0] == AGENT and (obs[..., 0] != GEM).all()
    with pytest.raises(RuntimeError, match="reset"):
        env.step(UP)


def test_wrong_key_blocks_and_distractor_ends_the_episode():
    env = hand_env()
    before, *_ = play(env, [RIGHT, DOWN, DOWN, LEFT, UP, RIGHT, RIGHT, RIGHT, RIGHT])
    assert before[0, 0, 0] == color("b") and before[2, 5, 0] == AGENT
    after, rewards, *_ = play(env, [DOWN])  # lock A of the distractor while holding b
    np.testing.assert_array_equal(after, before)
    env.reset(options={"level": HAND_LEVEL})
    obs, rewards, terminated, truncated, info = play(env, [RIGHT, DOWN, RIGHT, RIGHT, RIGHT, DOWN])
    assert rewards[-1] == -1.0 and sum(rewards) == -1.0
    assert terminated and not truncated and not info["solved"]
    assert obs[3, 4, 1] == ROLE_KEY  # the dead-end key is loose, and useless


def test_step_limit_truncates_without_terminating():
    env = hand_env(max_steps=3)
    *_, terminated, truncated, info = play(env, [UP, UP])
    assert not truncated
    *_, terminated, truncated, info = play(env, [UP])
    assert truncated and not terminated and not info["solved"]


def test_step_before_reset_and_bad_actions_fail():
    env = BoxWorld(n=6, goal_length=2, num_distractors=1)
    with pytest.raises(RuntimeError, match="reset"):
        env.step(0)
    with pytest.raises(RuntimeError, match="reset"):
        env.render()
    env.reset(seed=0)
    with pytest.raises(ValueError, match="action must be 0-3"):
        env.step(4)
    with pytest.raises(ValueError, match="Level"):
        env.reset(options={"level": "not a level"})
    with pytest.raises(ValueError, match="grid"):
        env.reset(options={"level": HAND_LEVEL})


def test_rgb_and_ansi_renders():
    env = make_env(SMALL, render_mode="rgb_array")
    obs, _ = env.reset(seed=0)
    frame = env.render()
    assert frame.shape == (8 * 8, 8 * 8, 3) and frame.dtype == np.uint8
    np.testing.assert_array_equal(frame, observation_to_rgb(obs, cell_px=8))
    row, col = np.argwhere(obs[..., 0] == AGENT)[0]
    np.testing.assert_array_equal(frame[row * 8 + 3, col * 8 + 5], (64, 64, 64))
    batch = observation_to_rgb(np.stack([obs, obs, obs]))
    assert batch.shape == (3, 8, 8, 3)
    assert len({tuple(c) for c in PALETTE}) == len(PALETTE)
    text = make_env(SMALL, render_mode="ansi", seed=0)
    text.reset()
    lines = text.render().splitlines()
    assert (
        len(lines) == 9 and all(len(line) == 8 for line in lines[:8]) and "step 0/120" in lines[8]
    )
    hand_obs, _ = hand_env().reset(options={"level": HAND_LEVEL})
    assert observation_to_ansi(hand_obs).splitlines()[:4] == [
        "#######",
        "#@a...#",
        "#.....#",
        "#bA.dA#",
    ]
    with pytest.raises(ValueError, match=r"\[\.\.\., H, W, 2\]"):
        observation_to_rgb(obs[..., 0])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(n=1), "n must be"),
        (dict(goal_length=0), "goal_length must be"),
        (dict(num_distractors=-1), "num_distractors must be"),
        (dict(distractor_length=0), "distractor_length must be"),
        (dict(num_colors=3), "num_colors=3 is too few"),
        (dict(num_colors=27), "num_colors must be an int in"),
        (dict(n=4), "4x4 room cannot hold"),
        (dict(n=6, goal_length=5, num_distractors=3, num_colors=8), "too crowded"),
        (dict(max_steps=0), "max_steps must be"),
        (dict(render_mode="human"), "render_mode must be"),
        (dict(cell_px=0), "cell_px must be"),
    ],
)
def test_bad_construction_args_fail_clearly(kwargs, message):
    with pytest.raises(ValueError, match=message):
        BoxWorld(**{"n": 8, "goal_length": 3, "num_distractors": 1, **kwargs})


def test_sync_vector_env_steps():
    envs = gym.vector.SyncVectorEnv([lambda i=i: make_env(SMALL, seed=i) for i in range(4)])
    obs, info = envs.reset(seed=0)
    assert obs.shape == (4, 8, 8, 2) and "solved" in info
    for _ in range(300):
        obs, reward, *_, info = envs.step(envs.action_space.sample())
        assert obs.shape == (4, 8, 8, 2) and reward.shape == (4,) and "solved" in info
    assert envs.get_attr("symbol_counts") == ((10, 8),) * 4
    envs.close()


def test_registration_is_idempotent_and_unknown_ids_fail():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        importlib.reload(graphrl.envs)
        graphrl.envs.register_envs()
    for env_id in BOXWORLD_IDS:
        assert isinstance(gym.make(env_id).unwrapped, BoxWorld)
    with pytest.raises(ValueError, match=r"graphrl/BoxWorld-Small-v0.*MiniGrid-\*"):
        make_env("BoxWorld-Small-v0")

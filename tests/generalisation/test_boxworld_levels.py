"""Box-World level distributions (sizes drawn per episode) and per-episode colour relabelling."""

from __future__ import annotations

import numpy as np
import pytest

from graphrl.envs import make_env
from graphrl.envs.boxworld_levels import (
    FIRST_KEY_COLOR,
    LevelConfig,
    LevelDistribution,
    generate_level,
)
from graphrl.envs.solver import run_solver


def _path_length(env) -> int:
    return len(env.unwrapped._path_contents)  # gem + path keys = goal_length boxes


def test_listed_sizes_are_drawn_per_episode() -> None:
    env = make_env("graphrl/BoxWorld-Small-v0", goal_length=[1, 2, 3], num_distractors=[0, 1, 2])
    lengths, boxes = set(), set()
    for seed in range(60):
        obs, _ = env.reset(seed=seed)
        lengths.add(_path_length(env))
        boxes.add(int((obs[..., 1] == 4).sum()))  # ROLE_LOCK cells: one per box
    assert lengths == {1, 2, 3}
    assert boxes == {1, 2, 3, 4, 5}
    assert env.unwrapped.symbol_counts == (4 + 6, 8)


def test_one_config_without_relabelling_gives_the_old_levels() -> None:
    config = LevelConfig(6, 2, 1, 1, 6)
    levels = LevelDistribution.build(6, 2, 1, 1, 6)
    for seed in range(5):
        old = generate_level(config, np.random.default_rng(seed))
        new = levels.sample(np.random.default_rng(seed))
        np.testing.assert_array_equal(old.colors, new.colors)


def test_relabelled_levels_use_all_ids_stay_solvable_and_pair_colours_freely() -> None:
    env = make_env("graphrl/BoxWorld-Small-v0", color_ids=26)
    assert env.unwrapped.symbol_counts == (4 + 26, 8)
    seen, pairs = set(), set()
    for seed in range(40):
        result = run_solver(env, seed=seed)
        assert result.solved, seed
        obs, _ = env.reset(seed=seed)
        colours = obs[..., 0]
        seen |= set(np.unique(colours[colours >= FIRST_KEY_COLOR]).tolist())
        start = obs[..., 0][obs[..., 1] == 3]  # the loose key
        pairs.add(int(start[0]))
    assert max(seen) >= FIRST_KEY_COLOR + 20 and len(seen) >= 24
    assert len(pairs) >= 15  # the start key is any colour, not one of 6


def test_bad_level_distributions_fail_clearly() -> None:
    with pytest.raises(ValueError, match=r"color_ids must be an int in \[3, 26\]"):
        make_env("graphrl/BoxWorld-Small-v0", color_ids=2)
    with pytest.raises(ValueError, match="goal_length must be an int or a non-empty list"):
        make_env("graphrl/BoxWorld-Small-v0", goal_length=[])
    with pytest.raises(ValueError, match="goal_length must be an int >= 1"):
        make_env("graphrl/BoxWorld-Small-v0", goal_length=[0, 1])

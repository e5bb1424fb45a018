"""Mini Pac-Man: API conformance, determinism, pickling, the rules on hand-made states, the
viewport, drawing, the scripted player and one PPO iteration of the relational agent."""

from __future__ import annotations

import functools
import pickle
import warnings

import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

from graphrl.envs import MINIPACMAN_IDS, MINIPACMAN_PRESETS, ObservationDrawer, make_env
from graphrl.envs.minipacman import (
    CORRIDOR,
    DOWN,
    EDIBLE_GHOST,
    EMPTY,
    GHOST,
    ITEM_FOOD,
    ITEM_PILL,
    LEFT,
    PACMAN,
    RIGHT,
    STAY,
    UP,
    WALL,
    MiniPacman,
    PacmanState,
)
from graphrl.envs.minipacman_scripted import ScriptedPacman, maze_distances
from graphrl.models import GraphActorCritic
from graphrl.nn import ProcessorConfig
from graphrl.rl import PPO
from graphrl.trainers import quiet_trainer

FULL, VIEWPORT = "graphrl/MiniPacman-v0", "graphrl/MiniPacman-Viewport-v0"
FAR_FOOD = (13, 17)  # a corridor cell far from the hand-made action, so levels do not end


def frozen(mode: str = "regular", **kwargs) -> MiniPacman:
    """An env whose ghosts never move unless a test asks for speed."""
    options = {"ghost_speed": 0.0, "ghost_speed_increase": 0.0, **kwargs}
    return MiniPacman(mode=mode, **options)


def state(
    pacman: tuple[int, int],
    ghosts: list[tuple[int, int, int]] = ((13, 1, RIGHT),),
    food: list[tuple[int, int]] = (FAR_FOOD,),
    pills: list[tuple[int, int]] = (),
    **kwargs,
) -> PacmanState:
    """A hand-made state: ``ghosts`` as ``(row, col, heading)``, food and pills on the listed
    cells only."""
    food_grid, pill_grid = np.zeros_like(CORRIDOR), np.zeros_like(CORRIDOR)
    for cell in food:
        food_grid[cell] = True
    for cell in pills:
        pill_grid[cell] = True
    return PacmanState(
        pacman=pacman,
        ghosts=np.array([g[:2] for g in ghosts], dtype=np.int64).reshape(-1, 2),
        headings=np.array([g[2] for g in ghosts], dtype=np.int64),
        food=food_grid,
        pills=pill_grid,
        **kwargs,
    )


def test_every_mode_has_a_full_and_a_viewport_preset() -> None:
    assert len(MINIPACMAN_IDS) == 10
    for mode in ("regular", "avoid", "hunt", "ambush", "rush"):
        presets = [kw for kw in MINIPACMAN_PRESETS.values() if kw["mode"] == mode]
        assert sorted(kw.get("viewport") or 0 for kw in presets) == [0, 5]


@pytest.mark.parametrize("env_id", MINIPACMAN_IDS)
def test_check_env_passes_without_warnings(env_id: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(make_env(env_id, render_mode="rgb_array"))
        check_env(make_env(env_id))


def test_observation_fits_space_and_symbol_counts_and_the_level_is_laid_out() -> None:
    env = make_env(FULL)
    obs, info = env.reset(seed=0)
    assert obs.shape == (15, 19, 3) and env.observation_space.contains(obs)
    assert info == {"level": 1, "levels_cleared": 0, "solved": False}
    assert env.symbol_counts == (7, 3, 21)
    assert ((obs[..., 0] == WALL) == ~CORRIDOR).all()  # the maze's walls, nothing else
    assert (obs[..., 0] == PACMAN).sum() == 1 and (obs[..., 0] == GHOST).sum() == 1
    assert (obs[..., 1] == ITEM_PILL).sum() == 2
    assert (obs[..., 1] > 0).sum() == CORRIDOR.sum()  # food on every corridor cell
    pac = np.argwhere(obs[..., 0] == PACMAN)[0]
    ghost = np.argwhere(obs[..., 0] == GHOST)[0]
    assert np.abs(pac - ghost).max() >= 5
    rng = np.random.default_rng(0)
    for _ in range(400):
        obs, _, terminated, truncated, _ = env.step(int(rng.integers(5)))
        assert (obs.reshape(-1, 3).max(0) < np.array(env.symbol_counts)).all()
        if terminated or truncated:
            env.reset()


def test_same_seed_same_episodes_and_different_seeds_differ() -> None:
    actions = np.random.default_rng(0).integers(5, size=500)
    runs = []
    for _ in range(2):
        env = make_env(FULL)
        trace = [env.reset(seed=7)[0]]
        for action in actions:
            obs, reward, terminated, truncated, info = env.step(action)
            trace += [obs, reward, terminated, info["level"]]
            if terminated or truncated:
                trace.append(env.reset()[0])
        runs.append(trace)
    for a, b in zip(*runs, strict=True):
        np.testing.assert_array_equal(a, b)
    firsts = {make_env(FULL).reset(seed=s)[0].tobytes() for s in range(10)}
    assert len(firsts) == 10


def test_pickled_env_continues_identically() -> None:
    env = make_env(FULL, seed=11)
    for action in (RIGHT, UP, LEFT, STAY, DOWN):
        env.step(action)
    clone = pickle.loads(pickle.dumps(env))
    for action in np.random.default_rng(1).integers(5, size=600):
        out, out_clone = env.step(action), clone.step(action)
        np.testing.assert_array_equal(out[0], out_clone[0])
        assert out[1:] == out_clone[1:]
        if out[2] or out[3]:
            np.testing.assert_array_equal(env.reset()[0], clone.reset()[0])


def test_moving_eats_food_walls_block_and_the_mode_prices_food() -> None:
    for mode, price in (("regular", 1.0), ("ambush", -0.1), ("hunt", 0.0)):
        env = frozen(mode)
        env.reset(seed=0, options={"state": state((3, 1), food=[(3, 2), FAR_FOOD])})
        obs, reward, terminated, _, _ = env.step(RIGHT)
        assert reward == pytest.approx(price) and not terminated
        assert env.state.pacman == (3, 2) and not env.state.food[3, 2]
        assert obs[3, 2, 0] == PACMAN and obs[3, 2, 1] == 0 and obs[3, 1, 0] == EMPTY
        obs, reward, _, _, _ = env.step(UP)  # (2, 2) is wall
        assert env.state.pacman == (3, 2) and reward == 0.0
    avoid = frozen("avoid")
    avoid.reset(seed=0, options={"state": state((3, 1), food=[(3, 2), FAR_FOOD])})
    assert avoid.step(RIGHT)[1] == pytest.approx(0.1 - 0.1)  # step reward plus food price


def test_a_pill_makes_ghosts_edible_and_eating_one_scores() -> None:
    env = frozen("regular")
    env.reset(seed=0, options={"state": state((3, 1), ghosts=[(3, 3, LEFT)], pills=[(3, 2)])})
    obs, reward, terminated, _, _ = env.step(RIGHT)
    assert reward == 2.0 and not terminated
    assert obs[3, 3, 0] == EDIBLE_GHOST and (obs[..., 2] == 20).all()
    assert ObservationDrawer(env).describe(obs) == "power: 20 steps"
    obs, reward, terminated, _, _ = env.step(RIGHT)
    assert reward == 5.0 and not terminated
    assert len(env.state.ghosts) == 0 and obs[3, 3, 0] == PACMAN
    assert (obs[..., 2] == 19).all()
    # hunt: the last ghost eaten ends the level; level 2 keeps one ghost, level 3 has two
    hunt = frozen("hunt")
    hunt.reset(seed=0, options={"state": state((3, 2), ghosts=[(3, 3, LEFT)], power=5)})
    obs, reward, terminated, _, info = hunt.step(RIGHT)
    assert reward == 10.0 and not terminated
    assert info == {"level": 2, "levels_cleared": 1, "solved": True}
    assert len(hunt.state.ghosts) == 1 and hunt.state.power == 0
    assert hunt.state.food.sum() == CORRIDOR.sum() and hunt.state.pills.sum() == 2


def test_caught_by_a_ghost_ends_the_episode_with_the_modes_price() -> None:
    for mode, price in (("regular", 0.0), ("hunt", -20.0), ("avoid", 0.1 - 20.0)):
        env = frozen(mode)
        env.reset(seed=0, options={"state": state((3, 1), ghosts=[(3, 2, LEFT)])})
        _, reward, terminated, truncated, info = env.step(RIGHT)  # walks into the ghost
        assert terminated and not truncated and reward == pytest.approx(price)
        assert info["solved"] is False
        with pytest.raises(RuntimeError, match="call reset"):
            env.step(STAY)
    # a moving ghost keeps its heading along a corridor and lands on Pac-Man
    env = MiniPacman(ghost_speed=1.0, ghost_randomness=0.0)
    env.reset(seed=0, options={"state": state((3, 1), ghosts=[(3, 3, LEFT)])})
    assert not env.step(STAY)[2] and tuple(env.state.ghosts[0]) == (3, 2)
    assert env.step(STAY)[2]


def test_ghosts_at_a_junction_chase_pacman_and_flee_while_he_is_powered() -> None:
    env = MiniPacman(ghost_speed=1.0, ghost_randomness=0.0)
    # (3, 5) is a crossing and Pac-Man is straight to the right; the ghost heads right, so it
    # may go right, up or down but not back left.
    env.reset(seed=0, options={"state": state((3, 9), ghosts=[(3, 5, RIGHT)])})
    env.step(STAY)
    assert tuple(env.state.ghosts[0]) == (3, 6)  # towards Pac-Man
    env.reset(seed=0, options={"state": state((3, 9), ghosts=[(3, 5, RIGHT)], power=10)})
    for _ in range(8):  # a powered Pac-Man halves the ghosts' speed: wait until it moves
        env.step(STAY)
        ghost = tuple(env.state.ghosts[0])
        if ghost != (3, 5):
            break
    assert ghost in {(2, 5), (4, 5)}  # away from him, never back the way it came


def test_eating_the_last_food_clears_the_level_and_the_next_is_harder() -> None:
    env = MiniPacman()
    env.reset(seed=0, options={"state": state((3, 1), food=[(3, 2)], level=2)})
    obs, reward, terminated, _, info = env.step(RIGHT)
    assert reward == 1.0 and not terminated  # the food; clearing the level adds nothing
    assert info == {"level": 3, "levels_cleared": 1, "solved": True}
    new = env.state
    assert new.food.sum() == CORRIDOR.sum() and new.pills.sum() == 2 and new.level_steps == 0
    assert len(new.ghosts) == 2  # 1 + (3 - 1) // 2
    assert (obs[..., 0] == GHOST).sum() >= 1 and (obs[..., 1] == ITEM_FOOD).sum() > 100
    assert env.ghost_speed_at(1) == 0.5 and env.ghost_speed_at(3) == pytest.approx(0.7)
    assert env.ghost_speed_at(20) == 1.0
    # rush: the last pill ends the level
    rush = frozen("rush")
    rush.reset(seed=0, options={"state": state((3, 1), pills=[(3, 2)])})
    _, reward, _, _, info = rush.step(RIGHT)
    assert reward == 10.0 and info["level"] == 2


def test_avoid_levels_end_after_128_steps() -> None:
    env = frozen("avoid")
    env.reset(seed=0, options={"state": state((3, 1))})
    total = sum(env.step(STAY)[1] for _ in range(127))
    assert env.state.level == 1 and total == pytest.approx(12.7)
    _, _, _, _, info = env.step(STAY)
    assert info["level"] == 2 and info["solved"]


def test_time_limit_truncates() -> None:
    env = frozen(max_steps=5)
    env.reset(seed=0, options={"state": state((3, 1))})
    flags = [env.step(STAY)[2:4] for _ in range(5)]
    assert flags == [(False, False)] * 4 + [(False, True)]


def test_bad_arguments_and_states_fail_with_one_clear_line() -> None:
    with pytest.raises(ValueError, match="mode must be one of"):
        MiniPacman(mode="chase")
    with pytest.raises(ValueError, match="viewport must be an odd int"):
        make_env(VIEWPORT, viewport=4)
    env = MiniPacman()
    with pytest.raises(ValueError, match="wall cell"):
        env.reset(options={"state": state((0, 0))})
    with pytest.raises(ValueError, match="action must be 0-4"):
        env.reset(seed=0)
        env.step(5)


def test_viewport_is_a_5x5_window_centred_on_pacman() -> None:
    env, full = make_env(VIEWPORT), make_env(FULL)
    obs, _ = env.reset(seed=3)
    maze, _ = full.reset(seed=3)  # the same generator stream: the same level
    rng = np.random.default_rng(0)
    for _ in range(300):
        assert obs.shape == (5, 5, 3) == env.observation_space.shape
        assert env.observation_space.contains(obs) and obs[2, 2, 0] == PACMAN
        row, col = np.argwhere(maze[..., 0] == PACMAN)[0]
        for dr in range(-2, 3):
            for dc in range(-2, 3):
                r, c = row + dr, col + dc
                inside = 0 <= r < 15 and 0 <= c < 19
                expected = maze[r, c] if inside else (WALL, 0, maze[0, 0, 2])
                assert tuple(obs[2 + dr, 2 + dc]) == tuple(expected)
        action = int(rng.integers(5))
        obs, r1, t1, u1, _ = env.step(action)
        maze, r2, t2, u2, _ = full.step(action)
        assert (r1, t1, u1) == (r2, t2, u2)
        if t1 or u1:
            obs, _ = env.reset()
            maze, _ = full.reset()
    # at the maze's edge the window shows wall beyond it
    edge = MiniPacman(viewport=5)
    obs, _ = edge.reset(seed=0, options={"state": state((1, 1))})
    assert (obs[:2, :, 0] == WALL).all() and (obs[:, :2, 0] == WALL).all()
    assert obs[2, 3, 0] == EMPTY and obs[2, 2, 0] == PACMAN


@pytest.mark.parametrize("env_id", [FULL, VIEWPORT])
def test_drawing_gives_an_rgb_image_of_the_observation(env_id: str) -> None:
    env = make_env(env_id, seed=0, render_mode="rgb_array", cell_px=4)
    obs, _ = env.reset(seed=0)
    drawer = ObservationDrawer(env)
    h, w = obs.shape[:2]
    for cell_px in (1, 3, 8):
        image = drawer.draw(obs, cell_px)
        assert image.shape == (h * cell_px, w * cell_px, 3) and image.dtype == np.uint8
    row, col = drawer.agent_cell(obs)
    assert obs[row, col, 0] == PACMAN
    if env_id == VIEWPORT:
        assert (row, col) == (2, 2)
    image = drawer.draw(obs, 8)
    assert image[row * 8 + 4, col * 8 + 4].tolist() == [255, 230, 0]  # Pac-Man's colour
    assert drawer.describe(obs) == "power: off" and drawer.action_name(0) == "stay"
    assert env.render().shape == (15 * 4, 19 * 4, 3)  # the whole maze whatever the view
    text = make_env(env_id, seed=0, render_mode="ansi").render()
    assert text.count("C") == 1 and text.splitlines()[0] == "#" * 19


def test_maze_distances_are_shortest_paths() -> None:
    dist = maze_distances()
    flat = lambda r, c: r * 19 + c  # noqa: E731
    assert dist[flat(3, 1), flat(3, 2)] == 1 and dist[flat(3, 1), flat(3, 1)] == 0
    assert dist[flat(1, 1), flat(13, 17)] == 12 + 16  # corners: no shorter path than Manhattan
    assert dist[flat(0, 0), flat(3, 1)] >= 10_000  # walls are unreachable


def test_scripted_player_beats_random_by_a_clear_margin() -> None:
    returns = {"random": [], "scripted": []}
    env = make_env(FULL, max_steps=400)
    player = ScriptedPacman("regular")
    for seed in range(3):
        for policy in returns:
            env.reset(seed=seed)
            env.action_space.seed(seed)
            total, done = 0.0, False
            while not done:
                action = (
                    player.act(env.state) if policy == "scripted" else env.action_space.sample()
                )
                _, reward, terminated, truncated, _ = env.step(action)
                total, done = total + reward, terminated or truncated
            returns[policy].append(total)
    scripted, random = np.mean(returns["scripted"]), np.mean(returns["random"])
    assert scripted > 100 and scripted > 5 * random


def test_ppo_runs_an_iteration_of_the_relational_agent_on_the_viewport() -> None:
    torch.manual_seed(0)
    policy = functools.partial(
        GraphActorCritic,
        channels=16,
        encoder="objects",
        encoder_kwargs={"background": [EMPTY, WALL], "compact": True},
        processor=ProcessorConfig(layer="attention", num_layers=1, heads=2),
        hidden=16,
    )
    model = PPO(
        VIEWPORT,
        policy=policy,
        num_envs=2,
        num_steps=16,
        total_timesteps=32,
        num_minibatches=2,
        update_epochs=1,
        seed=0,
    )
    before = [p.detach().clone() for p in model.parameters()]
    quiet_trainer(max_epochs=-1).fit(model)
    assert model.iteration == 1 and model.env_steps == 32
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))

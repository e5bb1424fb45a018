"""Episode pictures: each frame reads on its own (board with the agent, one panel per head,
heat scaled to the weights) and the GIF works for every env kind ``make_env`` takes."""

from __future__ import annotations

import imageio.v2 as imageio
import numpy as np
import pytest
import torch

from graphrl.envs import ObservationDrawer, make_env
from graphrl.envs.vector import env_spaces
from graphrl.models import GraphActorCritic
from graphrl.nn import ProcessorConfig
from graphrl.render import CELL_PX, agent_attention, episode_frame, render_episode

CASES = {
    "symbols": ("graphrl/BoxWorld-Small-v0", {}, "grid", {}),
    "objects": ("graphrl/BoxWorld-Small-v0", {}, "objects", {"background": [0, 1],
                                                             "compact": True}),
    "pixels": ("graphrl/BoxWorld-Small-Pixels-v0", {}, "pixels", {}),
    "minigrid": ("MiniGrid-DoorKey-5x5-v0", {"fully_observable": True}, "grid", {}),
}  # fmt: skip


def _policy(case: str, heads: int = 2) -> tuple[GraphActorCritic, str, dict]:
    env_id, env_kwargs, encoder, encoder_kwargs = CASES[case]
    space, num_actions = env_spaces(env_id, env_kwargs)
    policy = GraphActorCritic(
        space, num_actions, channels=8, encoder=encoder, encoder_kwargs=encoder_kwargs,
        processor=ProcessorConfig(num_layers=1, heads=heads), hidden=0,
    )  # fmt: skip
    return policy, env_id, env_kwargs


@pytest.mark.parametrize("case", list(CASES))
def test_attention_is_drawn_from_the_agents_cell_on_the_board(case) -> None:
    policy, env_id, env_kwargs = _policy(case)
    env = make_env(env_id, seed=2, **env_kwargs)
    obs, _ = env.reset(seed=2)
    drawer = ObservationDrawer(env)
    heat = agent_attention(policy, obs, drawer.agent_cell(obs))
    assert heat.shape == (2, *obs.shape[:2])
    assert np.all(heat >= 0)
    if case != "pixels":  # one weight per entity: a softmax over the agent's senders
        np.testing.assert_allclose(heat.sum(axis=(1, 2)), 1.0, rtol=1e-5)
    assert agent_attention(policy, obs, None) is None


def test_a_frame_has_a_board_panel_and_one_panel_per_head() -> None:
    env = make_env("graphrl/BoxWorld-Small-v0", seed=0)
    obs, _ = env.reset(seed=0)
    drawer = ObservationDrawer(env)
    widths = {}
    for heads in (1, 4):
        policy, *_ = _policy("symbols", heads)
        frame = episode_frame(policy, obs, drawer, "step 0")
        assert frame.dtype == np.uint8 and frame.ndim == 3
        widths[heads] = frame.shape[1]
    assert widths[4] > widths[1] + 2 * 2.3 * 80  # three more 2.3-inch panels at 80 dpi
    no_attention = episode_frame(torch.nn.Identity(), obs, drawer, "step 0")
    assert no_attention.shape[1] < widths[1]  # the board alone, no colour bar
    # The board is drawn by the env itself: its agent pixels appear in the frame.
    board = drawer.draw(obs, CELL_PX)
    row, col = drawer.agent_cell(obs)
    agent_rgb = board[row * CELL_PX + 2, col * CELL_PX + 2]
    assert (frame.reshape(-1, 3) == agent_rgb).all(-1).any()


@pytest.mark.parametrize("case", ["objects", "pixels", "minigrid"])
def test_render_episode_writes_a_gif_of_same_size_frames(case, tmp_path) -> None:
    policy, env_id, env_kwargs = _policy(case)
    out = str(tmp_path / "episode.gif")
    summary = render_episode(policy, env_id, env_kwargs, out, seed=1, max_steps=3)
    frames = imageio.mimread(out)
    assert summary["frames"] == len(frames) == summary["length"] + 1
    assert len({f.shape for f in frames}) == 1

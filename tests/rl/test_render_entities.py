"""`graphrl render` and the training pictures draw entity observations (a `Box(N, F)` set, a
`Dict` with an entity set, a `Graph`) as points with the policy's attention, captions whole."""

from __future__ import annotations

import functools
from pathlib import Path

import gymnasium as gym
import imageio.v2 as imageio
import lightning as L
import numpy as np
import pytest
import torch
from lightning.pytorch.loggers import Logger

from graphrl.callbacks import AttentionPictures
from graphrl.envs import ObservationDrawer, make_env
from graphrl.envs.vector import env_spaces
from graphrl.models import GraphActorCritic
from graphrl.nn import ProcessorConfig
from graphrl.render import entity_figure, frame_figure, render_episode
from graphrl.rl import PPO

HEADS = 2
ENVS = {
    "set": ("toy_envs:EntityPick-v0", {"encoder_kwargs": {"presence": 0}}),
    "dict": ("toy_envs:EntityGoalPick-v0", {}),
    "graph": ("toy_envs:GraphPick-v0", {"topology": "given", "action_head": "pointer"}),
}
LONG_CAPTION = "  |  ".join(f"part {i} of a caption that must be read whole" for i in range(9))


def _policy(env_id: str, options: dict) -> GraphActorCritic:
    torch.manual_seed(0)
    processor = ProcessorConfig(num_layers=1, heads=HEADS)
    return GraphActorCritic(
        *env_spaces(env_id, {}), channels=8, processor=processor, hidden=0, **options
    )


def _colour_pixels(frame: np.ndarray) -> int:
    """Pixels whose channels differ (a grey picture has none)."""
    rgb = frame[..., :3].astype(int)
    return int((rgb.max(-1) - rgb.min(-1) > 40).sum())


@pytest.mark.parametrize("kind", list(ENVS))
def test_entity_observations_are_drawn_as_points_with_attention_panels(kind, tmp_path) -> None:
    env_id, options = ENVS[kind]
    out = tmp_path / f"{kind}.gif"
    summary = render_episode(_policy(env_id, options), env_id, {}, str(out), max_steps=3)
    frames = imageio.mimread(str(out))
    assert len(frames) == summary["frames"] == summary["length"] + 1
    assert len({f.shape for f in frames}) == 1
    assert summary["panels"] == [f"head {h}: mean attention received" for h in (1, 2)]
    assert _colour_pixels(frames[0]) > 500  # coloured points and heat, not a grey raw array


def test_the_observation_panel_places_each_present_entity_at_its_features() -> None:
    env = make_env("toy_envs:EntityPick-v0", seed=0)
    obs, _ = env.reset(seed=0)
    drawer = ObservationDrawer(env)
    fig = entity_figure(obs, drawer, None, "step 0")
    points = fig.axes[0].collections[0].get_offsets()
    present = obs[(obs != 0).any(-1)]
    np.testing.assert_allclose(np.asarray(points), present[:, :2])
    assert fig.axes[0].get_title() == f"entity set: {len(present)} entities"
    env.close()


class _Board(gym.Env):
    """A grid observation and no agent (no ``agent_cell``)."""

    observation_space = gym.spaces.Box(0, 3, (4, 5, 1), np.int64)
    action_space = gym.spaces.Discrete(2)


def test_captions_are_whole_and_inside_the_frame() -> None:
    env = make_env("toy_envs:EntityPick-v0", seed=0)
    obs, _ = env.reset(seed=0)
    board = np.arange(20).reshape(4, 5, 1)
    for fig in (
        entity_figure(obs, ObservationDrawer(env), None, LONG_CAPTION),
        frame_figure(board, ObservationDrawer(_Board()), None, (), LONG_CAPTION),
    ):
        fig.canvas.draw()
        (caption,) = [t for t in fig.texts if "part 0" in t.get_text()]
        words = [w for w in caption.get_text().split() if w != "|"]  # a line break replaces |
        assert words == [w for w in LONG_CAPTION.split() if w != "|"]
        box, frame = caption.get_window_extent(), fig.bbox
        assert frame.x0 <= box.x0 and box.x1 <= frame.x1 and box.y1 <= frame.y1
    # No agent: the panel is titled by what it shows, not "board (agent boxed)".
    assert fig.axes[0].get_title() == "observation"
    env.close()


class _Images(Logger):
    """Keeps the pictures logged through ``experiment.add_image``."""

    def __init__(self) -> None:
        super().__init__()
        self.images: list[tuple[str, np.ndarray, int]] = []

    name, version = "images", 0

    @property
    def experiment(self) -> _Images:
        return self

    def add_image(self, tag, image, step, dataformats="CHW") -> None:
        self.images.append((tag, image, step))

    def log_metrics(self, metrics, step=None) -> None:
        pass

    def log_hyperparams(self, params, *args, **kwargs) -> None:
        pass


@pytest.mark.parametrize("kind", ["set", "dict"])
def test_training_pictures_of_entity_envs_are_logged_at_env_steps(kind, tmp_path: Path) -> None:
    env_id, options = ENVS[kind]
    processor = ProcessorConfig(num_layers=1, heads=HEADS)
    policy = functools.partial(
        GraphActorCritic, channels=8, processor=processor, hidden=0, **options
    )
    agent = PPO(env_id, policy=policy, num_envs=2, num_steps=4, total_timesteps=16,
                num_minibatches=2, update_epochs=1)  # fmt: skip
    logger = _Images()
    trainer = L.Trainer(
        accelerator="cpu", devices=1, logger=logger, max_epochs=1, log_every_n_steps=1,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        callbacks=[AttentionPictures(every_n_iterations=1)], default_root_dir=tmp_path,
    )  # fmt: skip
    trainer.fit(agent)
    assert [step for *_, step in logger.images] == [8, 16]
    assert all(_colour_pixels(image) > 500 for _, image, _ in logger.images)


def test_graphrl_render_draws_a_dict_agent_checkpoint(tmp_path: Path, capsys) -> None:
    import json

    from graphrl.commands import render_command

    env_id, options = ENVS["dict"]
    policy = functools.partial(GraphActorCritic, channels=8, hidden=0, **options)
    agent = PPO(env_id, policy=policy, num_envs=2, num_steps=4, total_timesteps=8,
                num_minibatches=2, update_epochs=1)  # fmt: skip
    trainer = L.Trainer(
        accelerator="cpu", devices=1, logger=False, max_epochs=1, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path,
    )  # fmt: skip
    trainer.fit(agent)
    ckpt = tmp_path / "agent.ckpt"
    trainer.save_checkpoint(ckpt)
    capsys.readouterr()
    gif = tmp_path / "dict.gif"
    render_command(["--ckpt", str(ckpt), "--out", str(gif), "--max_steps", "2"])
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["panels"] == [f"head {h}: mean attention received" for h in range(1, 5)]
    assert _colour_pixels(imageio.mimread(str(gif))[0]) > 500

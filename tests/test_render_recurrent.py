"""Recurrent policies in pictures: one titled panel per query (Mott et al.'s agent) or per
memory slot (the RMC-core agent), weights that are distributions over the frame's entities,
the state carried through an episode and reset at its end, and the same picture logged to
TensorBoard during training; envs without a board are refused in one line."""

from __future__ import annotations

import functools
import json

import imageio.v2 as imageio
import lightning as L
import numpy as np
import pytest
import torch

from graphrl.callbacks import AttentionPictures
from graphrl.envs import ObservationDrawer, make_env
from graphrl.envs.vector import env_spaces
from graphrl.models import MottAttentionAgent, RecurrentActorCritic
from graphrl.nn import ProcessorConfig
from graphrl.render import (
    PolicyStepper,
    board_heat,
    can_draw_attention,
    episode_frame,
    frame_figure,
    render_episode,
)
from graphrl.rl import PPO

MEMORY = "MiniGrid-MemoryS7-v0"
MEMORY_KWARGS = {"max_actions": 3}
VIEWPORT = "graphrl/BoxWorld-Small-Viewport-v0"
OBJECTS = {"encoder": "objects", "encoder_kwargs": {"background": [0, 1], "compact": True}}
mott = functools.partial(
    MottAttentionAgent, channels=8, key_size=8, value_size=8, hidden_size=16, hidden=0, **OBJECTS
)


def _mott(num_queries: int = 3) -> MottAttentionAgent:
    torch.manual_seed(0)
    return mott(*env_spaces(MEMORY, MEMORY_KWARGS), num_queries=num_queries)


def _first_obs(env_id: str, env_kwargs: dict, seed: int = 3):
    env = make_env(env_id, seed=seed, **env_kwargs)
    obs, _ = env.reset(seed=seed)
    return env, obs, ObservationDrawer(env)


def test_mott_frames_have_one_titled_panel_per_query_in_figure_and_gif(tmp_path) -> None:
    agent = _mott(3)
    assert can_draw_attention(agent)
    env, obs, drawer = _first_obs(MEMORY, MEMORY_KWARGS)
    attention = PolicyStepper(agent).peek(obs)
    heat = board_heat(attention, drawer.agent_cell(obs), obs.shape[:2])
    fig = frame_figure(obs, drawer, heat, attention.titles, "step 0")
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == ["board (agent boxed)", "query 1", "query 2", "query 3"]
    summary = render_episode(agent, MEMORY, MEMORY_KWARGS, str(tmp_path / "m.gif"), max_steps=3)
    assert summary["panels"] == ["query 1", "query 2", "query 3"]
    frames = imageio.mimread(str(tmp_path / "m.gif"))
    assert len(frames) == summary["frames"] == summary["length"] + 1
    # Each query is drawn: one more query, one more 2.3-inch panel at 80 dpi.
    narrow = episode_frame(_mott(2), obs, drawer)
    assert frames[0].shape[1] >= narrow.shape[1] + 2.3 * 80 - 2
    env.close()


def test_each_query_is_a_distribution_over_the_present_entities_on_the_board() -> None:
    agent = _mott(3)
    env, obs, drawer = _first_obs(MEMORY, MEMORY_KWARGS)
    stepper = PolicyStepper(agent)
    for _ in range(3):  # also from states reached after a few steps
        _, attention = stepper.step(obs)
        weights, mask = attention.weights[0], attention.mask[0]
        assert weights.shape == (3, mask.shape[0])
        torch.testing.assert_close(weights[:, mask].sum(-1), torch.ones(3))
        assert (weights[:, ~mask] == 0).all()
        heat = board_heat(attention, drawer.agent_cell(obs), obs.shape[:2])
        np.testing.assert_allclose(heat.sum(axis=(1, 2)), 1.0, rtol=1e-5)
        empty = np.isin(obs[..., 0], [0, 1])  # unseen or empty cells are no entity
        assert (heat[:, empty] == 0).all()
        obs, *_ = env.step(2)
    env.close()


def test_two_episodes_render_as_each_alone_because_the_state_resets(tmp_path) -> None:
    agent = _mott(2)
    render = functools.partial(render_episode, agent, MEMORY, MEMORY_KWARGS, greedy=True)
    both = render(str(tmp_path / "both.gif"), seed=5, episodes=2, max_steps=4)
    alone = [render(str(tmp_path / f"{s}.gif"), seed=s, max_steps=4) for s in (5, 6)]
    assert [e["seed"] for e in both["episodes"]] == [5, 6]
    assert both["frames"] == sum(a["frames"] for a in alone)
    frames = imageio.mimread(str(tmp_path / "both.gif"))
    expected = [f for s in (5, 6) for f in imageio.mimread(str(tmp_path / f"{s}.gif"))]
    assert all(np.array_equal(a, b) for a, b in zip(frames, expected, strict=True))
    # ... which it must do: the state reached in episode 5 asks other questions of seed 6.
    env, first, _ = _first_obs(MEMORY, MEMORY_KWARGS, seed=6)
    carried = PolicyStepper(agent)
    env5, obs, _ = _first_obs(MEMORY, MEMORY_KWARGS, seed=5)
    for _ in range(4):
        carried.step(obs)
        obs, *_ = env5.step(2)
    fresh = PolicyStepper(agent).peek(first).weights
    assert not torch.allclose(carried.peek(first).weights, fresh)
    carried.reset()
    torch.testing.assert_close(carried.peek(first).weights, fresh)
    env.close()
    env5.close()


@pytest.mark.parametrize(
    ("options", "titles"),
    [
        (  # the RMC reads the entity set: each slot's attention on the entities
            {"core": "rmc", "core_input": "entities",
             "core_kwargs": {"mem_slots": 2, "head_size": 4, "heads": 2}},
            ["slot 1 (mean of heads)", "slot 2 (mean of heads)"],
        ),
        (  # an attention layer per frame: its heads, from the agent's entity
            {"processor": ProcessorConfig(num_layers=1, heads=2),
             "core_kwargs": {"hidden_size": 8}},
            ["head 1: agent attends to", "head 2: agent attends to"],
        ),
        ({"core_kwargs": {"hidden_size": 8}}, []),  # an LSTM on pooled entities: no attention
    ],
)  # fmt: skip
def test_the_recurrent_relational_agent_draws_the_attention_it_computes(
    options, titles, tmp_path
) -> None:
    torch.manual_seed(0)
    agent = RecurrentActorCritic(*env_spaces(VIEWPORT, {}), channels=8, hidden=0, **OBJECTS,
                                 **options)  # fmt: skip
    assert can_draw_attention(agent) == bool(titles)
    summary = render_episode(agent, VIEWPORT, {}, str(tmp_path / "r.gif"), max_steps=3)
    assert summary["panels"] == titles
    if not titles:
        return
    env, obs, drawer = _first_obs(VIEWPORT, {})
    heat = board_heat(PolicyStepper(agent).peek(obs), drawer.agent_cell(obs), obs.shape[:2])
    sums = heat.sum(axis=(1, 2))
    assert (sums > 0).all() and (sums <= 1 + 1e-5).all()  # slots also attend to the memory
    if "processor" in options:
        np.testing.assert_allclose(sums, 1.0, rtol=1e-5)
    env.close()


class _Images(L.pytorch.loggers.Logger):
    """A logger whose experiment records ``add_image`` calls."""

    def __init__(self) -> None:
        super().__init__()
        self.images: list[tuple[str, np.ndarray, int]] = []

    name = "images"
    version = 0

    @property
    def experiment(self):
        return self

    def add_image(self, tag, image, step, dataformats="CHW") -> None:
        assert dataformats == "HWC"
        self.images.append((tag, image, step))

    def log_metrics(self, metrics, step=None) -> None:
        pass

    def log_hyperparams(self, params, *args, **kwargs) -> None:
        pass


def test_callback_logs_the_query_picture_during_recurrent_training(tmp_path) -> None:
    L.seed_everything(0, verbose=False)
    policy = functools.partial(mott, num_queries=3)
    model = PPO(MEMORY, policy=policy, env_kwargs=MEMORY_KWARGS, num_envs=2, num_steps=4,
                total_timesteps=16, num_minibatches=2, update_epochs=1)  # fmt: skip
    logger = _Images()
    trainer = L.Trainer(
        accelerator="cpu", devices=1, logger=logger, max_epochs=1, log_every_n_steps=1,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        callbacks=[AttentionPictures(every_n_iterations=1)], default_root_dir=tmp_path,
    )  # fmt: skip
    trainer.fit(model)
    assert len(logger.images) == 2  # one picture per iteration (2 iterations of 8 steps)
    assert [step for *_, step in logger.images] == [8, 16]  # at env steps, as the scalars
    env, obs, drawer = _first_obs(MEMORY, MEMORY_KWARGS)
    board_only = episode_frame(torch.nn.Identity(), obs, drawer)
    for tag, image, _ in logger.images:
        assert tag == "attention/agent_cell" and image.dtype == np.uint8
        assert image.shape[1] >= board_only.shape[1] + 3 * 2.3 * 80  # three query panels
    env.close()


def test_the_tensorboard_logger_takes_the_picture(tmp_path) -> None:
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    L.seed_everything(0, verbose=False)
    model = PPO(
        MEMORY,
        policy=functools.partial(mott, num_queries=2),
        env_kwargs=MEMORY_KWARGS,
        num_envs=2,
        num_steps=4,
        total_timesteps=8,
        num_minibatches=2,
        update_epochs=1,
    )
    logger = L.pytorch.loggers.TensorBoardLogger(str(tmp_path))
    trainer = L.Trainer(
        accelerator="cpu", devices=1, logger=logger, max_epochs=1, log_every_n_steps=1,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        callbacks=[AttentionPictures(every_n_iterations=1)],
    )  # fmt: skip
    trainer.fit(model)
    events = EventAccumulator(logger.log_dir, size_guidance={"images": 0})
    events.Reload()
    assert "attention/agent_cell" in events.Tags()["images"]
    assert len(events.Images("attention/agent_cell")) == 1


def test_graphrl_render_draws_a_trained_mott_checkpoint(tmp_path, capsys) -> None:
    from graphrl.cli import cli_main
    from graphrl.commands import render_command

    cli_main(
        ["fit", "--config", "configs/minigrid/ppo_mott_memory.yaml",
         "--model.init_args.num_envs=2", "--model.init_args.num_steps=4",
         "--model.init_args.num_minibatches=2",
         "--model.init_args.total_timesteps=8",
         "--model.init_args.policy.init_args.backbone.init_args.channels=8",
         "--model.init_args.policy.init_args.core.init_args.hidden_size=16",
         "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false",
         f"--trainer.default_root_dir={tmp_path}"]
    )  # fmt: skip
    last = next(tmp_path.glob("lightning_logs/version_*/checkpoints/last.ckpt"))
    capsys.readouterr()
    gif = str(tmp_path / "mott.gif")
    render_command(["--ckpt", str(last), "--out", gif, "--max_steps", "2", "--episodes", "2"])
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["panels"] == [f"query {k}" for k in (1, 2, 3, 4)]  # the config's 4 queries
    assert len(imageio.mimread(gif)) == line["frames"] == 6
    assert [e["seed"] for e in line["episodes"]] == [0, 1]

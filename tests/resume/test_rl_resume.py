"""RL resume is exact: N iterations equal N/2 + resume + N/2, parameters compared bit for bit."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
import torch

from graphrl.checkpoints import Checkpoint
from graphrl.rl import A2C, PPO

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:lightning")


def _fit(module: L.LightningModule, root: Path, ckpt_path: str | None = None) -> L.Trainer:
    trainer = L.Trainer(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        max_epochs=-1,
        default_root_dir=root,
        callbacks=[Checkpoint(every_n_iterations=1, save_top_k=-1, dirpath=root / "ckpt")],
    )
    trainer.fit(module, ckpt_path=ckpt_path)
    return trainer


def _checkpoint_at(folder: Path, iteration: int) -> Path:
    """The periodic checkpoint of ``folder`` written after ``iteration`` iterations."""
    (path,) = [
        p
        for p in folder.glob("*-step=*.ckpt")
        if torch.load(p, weights_only=True)["on_policy"]["iteration"] == iteration
    ]
    return path


def _module(algo: type, env_id: str, **overrides) -> L.LightningModule:
    options = dict(env_id=env_id, num_envs=3, num_steps=16, total_timesteps=3 * 16 * 6, seed=3)
    if algo is PPO:
        options.update(update_epochs=2, num_minibatches=4)
    options.update(overrides)
    return algo(**options)


@pytest.mark.parametrize(
    ("algo", "env_id"),
    [
        (PPO, "graphrl/BoxWorld-Small-v0"),
        (A2C, "graphrl/BoxWorld-Small-v0"),
        (PPO, "MiniGrid-DoorKey-5x5-v0"),
    ],
    ids=["ppo-boxworld", "a2c-boxworld", "ppo-minigrid"],
)
def test_resumed_run_equals_the_uninterrupted_one(algo, env_id, tmp_path: Path) -> None:
    torch.manual_seed(0)
    full = _module(algo, env_id)
    _fit(full, tmp_path / "full")
    assert full.iteration == 6
    half = _checkpoint_at(tmp_path / "full/ckpt", 3)

    torch.manual_seed(123)  # a different init and RNG: the checkpoint must override both
    resumed = _module(algo, env_id)
    _fit(resumed, tmp_path / "resumed", ckpt_path=str(half))
    assert resumed.iteration == 6 and resumed.env_steps == full.env_steps
    for (name, a), b in zip(full.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name


def test_async_envs_resume_with_fresh_seeded_envs_and_say_so(tmp_path: Path) -> None:
    """The documented minimum: counters, shuffle stream and RNG resume; envs restart seeded."""
    full = _module(PPO, "graphrl/BoxWorld-Small-v0", vector_mode="async", num_envs=2)
    _fit(full, tmp_path / "full")
    first = _checkpoint_at(tmp_path / "full/ckpt", 2)
    resumed = _module(PPO, "graphrl/BoxWorld-Small-v0", vector_mode="async", num_envs=2)
    with pytest.warns(UserWarning, match="resuming with fresh envs .* async envs"):
        _fit(resumed, tmp_path / "resumed", ckpt_path=str(first))
    assert resumed.iteration == full.iteration == 9 and resumed.env_steps == full.env_steps

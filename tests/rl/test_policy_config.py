"""A policy built in Python with a ``ProcessorConfig`` survives a checkpoint round trip."""

from __future__ import annotations

import functools
from pathlib import Path

import lightning as L
import torch

from graphrl.models import ActorCritic, GraphActorCritic, RelationalBackbone
from graphrl.nn import LSTMCore, ProcessorConfig
from graphrl.rl import PPO
from graphrl.rl.on_policy import policy_config


def _train_and_save(policy, tmp_path: Path) -> tuple[PPO, Path]:
    """One tiny PPO run on MiniGrid with ``policy``, saved to ``tmp_path / "agent.ckpt"``."""
    model = PPO(env_id="MiniGrid-Empty-5x5-v0", policy=policy, num_envs=2, num_steps=8,
                total_timesteps=16, num_minibatches=2)  # fmt: skip
    trainer = L.Trainer(
        max_epochs=-1, accelerator="cpu", logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False,
    )  # fmt: skip
    trainer.fit(model)
    path = tmp_path / "agent.ckpt"
    trainer.save_checkpoint(path)
    return model, path


def test_dataclass_arguments_are_stored_as_dicts() -> None:
    policy = functools.partial(GraphActorCritic, processor=ProcessorConfig(layer="gcn"))
    config = policy_config(policy)
    assert config is not None
    assert config["init_args"]["processor"]["layer"] == "gcn"
    assert isinstance(config["init_args"]["processor"], dict)


def test_checkpoint_of_a_python_built_policy_loads(tmp_path: Path) -> None:
    processor = ProcessorConfig(layer="attention", num_layers=1, heads=2)
    policy = functools.partial(GraphActorCritic, processor=processor, channels=16, hidden=16)
    model, path = _train_and_save(policy, tmp_path)
    loaded = PPO.load_from_checkpoint(path, map_location="cpu")
    assert loaded.policy.backbone.processor.layers[0].__class__.__name__ == "AttentionLayer"
    assert len(loaded.policy.backbone.processor.layers) == 1
    for a, b in zip(model.state_dict().values(), loaded.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_a_default_argument_shared_with_the_cli_default_policy_is_kept(tmp_path: Path) -> None:
    """GraphActorCritic's hidden default must not become MLPPolicy's on load."""
    model, path = _train_and_save(GraphActorCritic, tmp_path)
    loaded = PPO.load_from_checkpoint(path, map_location="cpu")
    assert loaded.policy.pi.linear.weight.shape == model.policy.pi.linear.weight.shape


def test_an_agent_with_injected_parts_is_stored_as_nested_configs(tmp_path: Path) -> None:
    """A Python-built ``ActorCritic`` (backbone and core as partials) loads from its checkpoint
    with ``weights_only=True``: the factory is stored as nested class paths."""
    backbone = functools.partial(
        RelationalBackbone, channels=16, processor=ProcessorConfig(layer="gcn", num_layers=1)
    )
    policy = functools.partial(
        ActorCritic, backbone=backbone, core=functools.partial(LSTMCore, hidden_size=8), hidden=8
    )
    config = policy_config(policy)
    assert (
        config["init_args"]["backbone"]["class_path"]
        == "graphrl.models.policy_backbones.RelationalBackbone"
    )
    assert config["init_args"]["backbone"]["init_args"]["processor"]["layer"] == "gcn"
    assert config["init_args"]["core"] == {
        "class_path": "graphrl.nn.recurrent.LSTMCore",
        "init_args": {"hidden_size": 8, "forget_bias": 1.0},
    }
    model, path = _train_and_save(policy, tmp_path)
    loaded = PPO.load_from_checkpoint(path, map_location="cpu", weights_only=True)
    assert isinstance(loaded.policy.core, LSTMCore) and loaded.policy.core.hidden_size == 8
    for a, b in zip(model.state_dict().values(), loaded.state_dict().values(), strict=True):
        assert torch.equal(a, b)

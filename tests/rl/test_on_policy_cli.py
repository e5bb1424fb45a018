"""The on-policy modules under LightningCLI: a policy factory from YAML, fit, reload."""

from __future__ import annotations

from pathlib import Path

import pytest
from lightning.pytorch import LightningModule
from lightning.pytorch.cli import LightningCLI

from graphrl.models import ActorCritic
from graphrl.rl import A2C, PPO, CNNPolicy, MLPPolicy

CONFIG = """
model:
  env_id: toy_envs:Countdown-v0
  num_envs: 2
  num_steps: 8
  total_timesteps: 32
  update_epochs: 1
  num_minibatches: 2
  policy:
    class_path: graphrl.rl.CNNPolicy
    init_args:
      hidden: 32
      channels: [4]
trainer:
  accelerator: cpu
  devices: 1
  logger: false
  enable_progress_bar: false
  enable_model_summary: false
"""


def cli(model_class: type[LightningModule] | None, args: list[str], **kwargs) -> LightningCLI:
    return LightningCLI(model_class, args=args, run=False, save_config_callback=None, **kwargs)


def test_yaml_policy_factory_is_called_with_the_env_spaces(tmp_path: Path) -> None:
    config = tmp_path / "ppo.yaml"
    config.write_text(CONFIG)
    parsed = cli(PPO, ["--config", str(config), f"--trainer.default_root_dir={tmp_path}"])
    model = parsed.model
    assert isinstance(model, PPO) and isinstance(model.policy, CNNPolicy)
    assert model.policy.pi.linear.in_features == 32
    assert model.policy.obs_shape == (1, 1, 2) and model.policy.spec.param_size == 3
    assert model.hparams.num_minibatches == 2

    parsed.trainer.fit(model)
    assert model.iteration == 2
    checkpoint = parsed.trainer.checkpoint_callback.best_model_path
    loaded = PPO.load_from_checkpoint(checkpoint, weights_only=True)
    assert isinstance(loaded.policy, CNNPolicy) and loaded.policy.pi.linear.in_features == 32
    assert loaded.iteration == 2


def test_command_line_policy_and_defaults() -> None:
    parsed = cli(
        A2C,
        [
            "--model.env_id=toy_envs:Corridor-v0",
            "--model.policy=graphrl.rl.MLPPolicy",
            "--model.policy.hidden=16",
            "--trainer.logger=false",
        ],
    )
    assert isinstance(parsed.model.policy, MLPPolicy)
    assert parsed.model.policy.backbone.mlp[0].out_features == 16
    assert parsed.model.hparams.optimizer == "rmsprop" and parsed.model.hparams.num_steps == 5


def test_subclass_mode_picks_the_algorithm() -> None:
    parsed = cli(
        None,
        [
            "--model=graphrl.rl.PPO",
            "--model.env_id=toy_envs:Corridor-v0",
            "--model.clip_coef=0.1",
            "--trainer.logger=false",
        ],
        subclass_mode_model=True,
    )
    assert isinstance(parsed.model, PPO) and parsed.model.hparams.clip_coef == 0.1
    assert isinstance(parsed.model.policy, ActorCritic)  # the default factory: the one agent


def test_unknown_hyperparameter_is_rejected() -> None:
    with pytest.raises(SystemExit):
        cli(PPO, ["--model.env_id=toy_envs:Corridor-v0", "--model.clip_coeff=0.1"])

"""The one agent learns on every kind of action space and carries over what the issue asked of it:
a Gaussian PPO solves a continuous task, a pointer agent acts on twice the entities it was
trained on, and the shipped recurrent configs train on a user's entity-set memory task with
only the env id swapped.
"""

from __future__ import annotations

import functools
from pathlib import Path

import lightning as L
import pytest
import torch
import yaml

from graphrl.cli import cli_main
from graphrl.commands import check_agent_reads_env
from graphrl.models import ActorCritic, RelationalBackbone
from graphrl.nn import ProcessorConfig
from graphrl.rl import PPO
from graphrl.trainers import quiet_trainer

ROOT = Path(__file__).resolve().parents[2]
RECURRENT_CONFIGS = sorted(
    p
    for p in ROOT.glob("configs/**/*.yaml")
    if "core:" in p.read_text() and "graphrl.rl." in p.read_text()
)


def _trainer() -> L.Trainer:
    return quiet_trainer(max_epochs=-1)


def test_gaussian_ppo_reaches_a_continuous_target() -> None:
    """``Box(2,)`` actions: a diagonal Gaussian head, samples clipped at the env only."""
    torch.manual_seed(0)
    backbone = functools.partial(RelationalBackbone, channels=32)
    module = PPO(
        env_id="toy_envs:ReachTarget-v0",
        policy=functools.partial(ActorCritic, backbone=backbone, hidden=32),
        num_envs=16,
        num_steps=8,
        total_timesteps=16 * 8 * 40,
        update_epochs=4,
        num_minibatches=4,
        learning_rate=3e-3,
        ent_coef=0.0,
        seed=0,
    )
    assert type(module.policy.pi).__name__ == "GaussianHead"
    before = module.evaluate(episodes=64, greedy=True)
    _trainer().fit(module)
    after = module.evaluate(episodes=64, greedy=True)
    # a random or untrained mean is about 0.55 from the target on average; trained: close
    assert before["mean_return"] < -0.4
    assert after["mean_return"] > -0.2 and after["solve_rate"] > 0.7
    assert module.policy.pi.log_std.mean() < 0.0  # the policy grew surer of itself


def test_a_pointer_agent_acts_on_twice_the_entities_it_was_trained_on() -> None:
    torch.manual_seed(0)
    backbone = functools.partial(
        RelationalBackbone,
        channels=32,
        encoder_kwargs={"presence": 0},
        processor=ProcessorConfig(layer="attention", num_layers=1, heads=2),
    )
    module = PPO(
        env_id="toy_envs:EntityPick-v0",
        env_kwargs={"num_slots": 6},
        policy=functools.partial(ActorCritic, backbone=backbone, hidden=32, action_head="pointer"),
        num_envs=4,
        num_steps=16,
        total_timesteps=4 * 16 * 10,
        num_minibatches=4,
        update_epochs=2,
        learning_rate=3e-3,
        seed=0,
    )
    _trainer().fit(module)
    trained = module.evaluate(episodes=32, greedy=True)
    check_agent_reads_env(module, "toy_envs:EntityPick-v0", {"num_slots": 12})
    twice = module.evaluate(episodes=32, greedy=True, num_slots=12)
    assert trained["mean_return"] >= 3.5  # 4 picks per episode
    assert twice["mean_return"] >= 3.5  # one logit per entity: the same rule on 12 entities


@pytest.mark.parametrize("path", RECURRENT_CONFIGS, ids=lambda p: p.stem)
def test_shipped_recurrent_configs_take_an_entity_set_memory_task(path: Path, tmp_path) -> None:
    """Swap the env id of a shipped recurrent config to a ``Box(2, 5)`` memory task: it builds
    and trains (grid encoders give way to the entity-set encoder, with a warning)."""
    args = [
        "--config",
        str(path),
        "--model.init_args.env_id=toy_envs:SetCueRecall-v0",
        "--model.init_args.env_kwargs=null",
        "--model.init_args.num_envs=4",
        "--model.init_args.num_steps=8",
        "--model.init_args.total_timesteps=64",
        "--model.init_args.num_minibatches=2",
        "--trainer.callbacks=[]",
        f"--trainer.default_root_dir={tmp_path}",
    ]
    with pytest.warns(UserWarning, match="using the 'vectors' encoder"):
        cli = cli_main(args=args, run=False)
    model = cli.model
    assert model.policy.is_recurrent
    quiet_trainer(max_epochs=-1, default_root_dir=tmp_path).fit(model)
    assert model.iteration == 2
    assert model.evaluate(episodes=4, num_envs=2)["episodes"] == 4


def test_six_recurrent_configs_ship() -> None:
    cores = {
        yaml.safe_load(p.read_text())["model"]["init_args"]["policy"]["init_args"]["core"][
            "class_path"
        ]
        for p in RECURRENT_CONFIGS
    }
    assert len(RECURRENT_CONFIGS) == 6
    assert cores == {
        "graphrl.nn.LSTMCore",
        "graphrl.nn.RelationalMemoryCore",
        "graphrl.nn.MottQueryCore",
    }


@pytest.mark.slow
def test_the_shipped_lstm_config_solves_the_entity_set_memory_task(tmp_path) -> None:
    """With only the env id swapped (and a budget for a toy), the attention + LSTM viewport
    agent remembers a cue seen three steps earlier: far above the 0.5 a memoryless policy
    reaches."""
    path = ROOT / "configs/boxworld/ppo_attention_lstm_viewport.yaml"
    args = [
        "--config",
        str(path),
        "--model.init_args.env_id=toy_envs:SetCueRecall-v0",
        "--model.init_args.env_kwargs=null",
        "--model.init_args.num_envs=16",
        "--model.init_args.num_steps=16",
        "--model.init_args.total_timesteps=40960",
        "--model.init_args.num_minibatches=4",
        "--trainer.callbacks=[]",
        f"--trainer.default_root_dir={tmp_path}",
    ]
    with pytest.warns(UserWarning):
        cli = cli_main(args=args, run=False)
    quiet_trainer(max_epochs=-1, default_root_dir=tmp_path).fit(cli.model)
    assert cli.model.evaluate(episodes=100, greedy=True)["solve_rate"] >= 0.9


def test_a_core_that_reads_only_sets_reads_the_entities_without_core_input(tmp_path) -> None:
    """``core_input`` left out: the Mott core (sets only) reads the backbone's entities, through
    the CLI's factories as through Python's."""
    path = ROOT / "configs/minigrid/ppo_mott_memory.yaml"
    text = path.read_text().replace("        core_input: entities\n", "")
    assert "core_input" not in text
    config = tmp_path / "mott.yaml"
    config.write_text(text)
    cli = cli_main(args=["--config", str(config), "--trainer.callbacks=[]",
                         f"--trainer.default_root_dir={tmp_path}"], run=False)  # fmt: skip
    assert cli.model.policy.core_input == "entities"

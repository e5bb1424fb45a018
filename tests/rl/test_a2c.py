"""A2C as a LightningModule: one RMSprop step per rollout, shared plumbing with PPO, learning."""

from __future__ import annotations

import functools

import lightning as L
import pytest
import torch
from toy_envs import CorridorOracle

from graphrl.models import GraphActorCritic
from graphrl.nn import ProcessorConfig
from graphrl.rl import A2C, PPO, MLPPolicy, OnPolicyModule, evaluate_policy

CORRIDOR = "toy_envs:Corridor-v0"
COUNTDOWN = "toy_envs:Countdown-v0"


def test_a2c_takes_one_step_per_rollout_and_changes_parameters(make_trainer) -> None:
    model = A2C(COUNTDOWN, num_envs=2, num_steps=5, total_timesteps=30)
    before = [p.detach().clone() for p in model.parameters()]
    trainer = make_trainer()
    trainer.fit(model)
    assert model.iteration == 3 and trainer.global_step == 3
    assert all(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    optimizer = trainer.optimizers[0]
    assert isinstance(optimizer, torch.optim.RMSprop)
    assert optimizer.defaults["alpha"] == 0.99 and optimizer.defaults["eps"] == 1e-5
    logged = set(trainer.logged_metrics)
    assert {"losses/policy_loss", "losses/value_loss", "losses/entropy"} <= logged
    assert {"losses/explained_variance", "charts/SPS", "train/env_steps"} <= logged
    assert "losses/clipfrac" not in logged  # no ratio in A2C


def test_a2c_optimizer_is_configurable(make_trainer) -> None:
    model = A2C(COUNTDOWN, num_envs=2, num_steps=5, total_timesteps=10, optimizer="adam")
    trainer = make_trainer()
    trainer.fit(model)
    assert isinstance(trainer.optimizers[0], torch.optim.Adam)
    with pytest.raises(ValueError, match="optimizer must be 'adam' or 'rmsprop'"):
        A2C(COUNTDOWN, optimizer="sgd")  # type: ignore[arg-type]


def test_ppo_and_a2c_share_the_base_module() -> None:
    assert issubclass(PPO, OnPolicyModule) and issubclass(A2C, OnPolicyModule)
    assert "training_step" not in vars(PPO) and "training_step" not in vars(A2C)


def test_a2c_learns_the_corridor(make_trainer) -> None:
    L.seed_everything(0, verbose=False)
    kwargs = {"length": 8}
    model = A2C(
        CORRIDOR,
        policy=MLPPolicy,
        env_kwargs=kwargs,
        num_envs=8,
        num_steps=8,
        total_timesteps=8192,
        learning_rate=3e-3,
    )
    make_trainer().fit(model)
    result = model.evaluate(episodes=32, greedy=True)
    optimal = evaluate_policy(
        CorridorOracle(), CORRIDOR, episodes=32, greedy=True, env_kwargs=kwargs
    )
    assert result["solve_rate"] == 1.0
    assert result["mean_length"] == pytest.approx(optimal.lengths.mean())


def test_a2c_with_the_relational_policy_improves_the_corridor_return(make_trainer) -> None:
    """A2C at its defaults, with an attention policy, beats the untrained policy in seconds."""
    L.seed_everything(0, verbose=False)
    policy = functools.partial(
        GraphActorCritic,
        channels=16,
        encoder="grid",
        processor=ProcessorConfig(layer="attention", num_layers=1, heads=2),
        hidden=32,
    )
    model = A2C(
        CORRIDOR,
        policy=policy,
        env_kwargs={"length": 8},
        num_envs=8,
        num_steps=8,
        total_timesteps=6144,
        ent_coef=0.01,
        gae_lambda=0.95,
        norm_adv=True,
    )
    before = model.evaluate(episodes=32, greedy=False)
    make_trainer(max_epochs=-1).fit(model)
    after = model.evaluate(episodes=32, greedy=False)
    assert after["mean_return"] >= 0.95 > before["mean_return"]
    assert after["mean_length"] < 0.5 * before["mean_length"]

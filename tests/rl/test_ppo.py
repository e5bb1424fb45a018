"""PPO as a LightningModule: the training plan, logging, learning, failure modes, checkpoints."""

from __future__ import annotations

import functools
import inspect
import math

import gymnasium as gym
import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint, OnExceptionCheckpoint
from torch import Tensor, nn
from toy_envs import CorridorOracle

from graphrl.rl import PPO, CNNPolicy, MLPPolicy, evaluate_policy, on_policy
from graphrl.rl.functional import compute_gae
from graphrl.rl.on_policy import policy_config

CORRIDOR = "toy_envs:Corridor-v0"
COUNTDOWN = "toy_envs:Countdown-v0"

CLEANRL_METRICS = {
    "charts/episodic_return",
    "charts/episodic_length",
    "charts/solve_rate",
    "charts/SPS",
    "charts/learning_rate",
    "losses/value_loss",
    "losses/policy_loss",
    "losses/entropy",
    "losses/approx_kl",
    "losses/clipfrac",
    "losses/explained_variance",
    "train/env_steps",
}


def params(module: nn.Module) -> list[Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def small_ppo(**overrides) -> PPO:
    options = {
        "env_id": COUNTDOWN,
        "num_envs": 2,
        "num_steps": 8,
        "total_timesteps": 48,
        "update_epochs": 2,
        "num_minibatches": 2,
    }
    options.update(overrides)
    return PPO(**options)


def test_total_timesteps_drives_iterations_and_parameters_change(make_trainer) -> None:
    model = small_ppo()
    before = params(model)
    trainer = make_trainer(max_epochs=None)  # total_timesteps alone ends the run
    trainer.fit(model)
    assert model.iteration == 3 and model.env_steps == 48
    assert trainer.global_step == 3 * 2 * 2  # iterations x update_epochs x num_minibatches
    assert all(not torch.equal(a, b) for a, b in zip(before, params(model)))
    assert model.collector is None  # envs closed in teardown


def test_max_steps_counts_optimizer_steps(make_trainer) -> None:
    model = small_ppo()
    trainer = make_trainer(max_steps=4)
    trainer.fit(model)
    assert model.iteration == 1 and trainer.global_step == 4


def test_logs_cleanrl_metrics_and_progress_bar(make_trainer) -> None:
    model = small_ppo(env_kwargs={"length": 3})
    trainer = make_trainer()
    trainer.fit(model)
    logged = trainer.logged_metrics
    assert CLEANRL_METRICS <= set(logged)
    # Countdown(length=3): every episode returns 1 + 2 + 3 in 3 steps and is solved.
    assert logged["charts/episodic_return"].item() == 6.0
    assert logged["charts/episodic_length"].item() == 3.0
    assert logged["charts/solve_rate"].item() == 1.0
    assert logged["train/env_steps"].item() == 48
    assert {"ret", "solve"} <= set(trainer.progress_bar_metrics)


def test_learning_rate_is_annealed_linearly_to_zero(make_trainer) -> None:
    model = small_ppo(learning_rate=0.01, total_timesteps=64)  # 4 iterations
    trainer = make_trainer()
    trainer.fit(model)
    assert trainer.logged_metrics["charts/learning_rate"].item() == pytest.approx(0.01 / 4)
    assert trainer.optimizers[0].param_groups[0]["lr"] == pytest.approx(0.0)
    assert isinstance(trainer.optimizers[0], torch.optim.Adam)
    assert trainer.optimizers[0].defaults["eps"] == 1e-5


def test_target_kl_stops_update_epochs_early(make_trainer) -> None:
    model = small_ppo(update_epochs=5, target_kl=1e-12, learning_rate=0.01)
    trainer = make_trainer()
    trainer.fit(model)
    assert trainer.global_step == 3 * 2  # one epoch of 2 minibatches per iteration


def test_ppo_learns_the_corridor(make_trainer) -> None:
    L.seed_everything(0, verbose=False)
    kwargs = {"length": 8}
    model = PPO(
        CORRIDOR,
        env_kwargs=kwargs,
        num_envs=8,
        num_steps=32,
        total_timesteps=16384,
        learning_rate=3e-3,
    )
    optimal = evaluate_policy(
        CorridorOracle(), CORRIDOR, episodes=32, greedy=True, env_kwargs=kwargs
    )
    untrained = model.evaluate(episodes=32, greedy=True)
    assert untrained["mean_length"] > optimal.lengths.mean()  # the task is not solved by chance
    make_trainer().fit(model)
    result = model.evaluate(episodes=32, greedy=True)
    assert result["solve_rate"] == 1.0
    assert result["mean_length"] == pytest.approx(optimal.lengths.mean())
    assert result["episodes"] == 32


def test_non_finite_loss_raises_and_leaves_parameters_clean(
    make_trainer, tmp_path, monkeypatch
) -> None:
    # NaN returns with finite env data (a NaN from the env itself stops the run earlier, naming
    # the env: tests/faults/test_env_faults.py)
    def nan_gae(*args, **kwargs):
        return tuple(x * math.nan for x in compute_gae(*args, **kwargs))

    monkeypatch.setattr(on_policy, "compute_gae", nan_gae)
    model = small_ppo()
    before = params(model)
    trainer = make_trainer(
        enable_checkpointing=True, callbacks=[OnExceptionCheckpoint(tmp_path, filename="crash")]
    )
    with pytest.raises(FloatingPointError, match=r"losses/value_loss=nan.*Lower .*learning_rate"):
        trainer.fit(model)
    assert all(torch.equal(a, b) for a, b in zip(before, params(model)))
    saved = torch.load(tmp_path / "crash.ckpt")["state_dict"]
    assert all(torch.isfinite(t).all() for t in saved.values())


def test_checkpoint_round_trip(make_trainer, tmp_path) -> None:
    model = small_ppo(policy=functools.partial(CNNPolicy, hidden=16))
    checkpoint = ModelCheckpoint(tmp_path)
    trainer = make_trainer(enable_checkpointing=True, callbacks=[checkpoint])
    trainer.fit(model)
    loaded = PPO.load_from_checkpoint(checkpoint.best_model_path, weights_only=True)
    assert isinstance(loaded.policy, CNNPolicy) and loaded.policy.pi.linear.in_features == 16
    assert loaded.iteration == 3 and loaded.env_steps == 48
    assert all(torch.equal(a, b) for a, b in zip(params(model), params(loaded)))


def test_evaluate_runs_exactly_the_requested_episodes() -> None:
    model = small_ppo(env_kwargs={"length": 4})
    result = model.evaluate(episodes=5, num_envs=2, greedy=False)
    assert result == {"solve_rate": 1.0, "mean_return": 10.0, "mean_length": 4.0, "episodes": 5}
    # Another env id (its own kwargs only); this one reports no "solved".
    other = model.evaluate(COUNTDOWN, episodes=3, length=2, truncate=True)
    assert math.isnan(other["solve_rate"]) and other["mean_length"] == 2.0
    assert model.policy.training  # restored after evaluation
    with pytest.raises(RuntimeError, match="did not finish 2 episodes in 1 steps"):
        evaluate_policy(model.policy, COUNTDOWN, episodes=2, max_steps=1)
    with pytest.raises(ValueError, match="episodes must be >= 1"):
        model.evaluate(episodes=0)


def test_bad_configuration_fails_with_a_clear_message(make_trainer) -> None:
    with pytest.raises(ValueError, match="num_minibatches must be in"):
        small_ppo(num_minibatches=17)
    with pytest.raises(ValueError, match="gamma must be in"):
        small_ppo(gamma=1.5)
    with pytest.raises(ValueError, match="max_grad_norm must be > 0"):
        small_ppo(max_grad_norm=0.0)
    with pytest.raises(ValueError, match="total_timesteps=10 is less than one iteration"):
        make_trainer().fit(small_ppo(total_timesteps=10))
    with pytest.raises(TypeError, match=r"expected an nn\.Module"):
        small_ppo(policy=lambda space, n: "not a module")


def test_policy_factory_receives_the_env_spaces(make_trainer, tmp_path) -> None:
    seen = {}

    def factory(space, action_space):
        seen.update(shape=space.shape, actions=action_space)
        return MLPPolicy(space, action_space, hidden=8)

    model = small_ppo(policy=factory)
    assert seen == {"shape": (1, 1, 2), "actions": gym.spaces.Discrete(3)}
    assert model.policy.backbone.mlp[0].out_features == 8
    # A plain function is not stored in the checkpoint; it is given again to load it.
    assert model.hparams.policy.startswith("not stored")
    trainer = make_trainer(max_steps=1, enable_checkpointing=True, default_root_dir=tmp_path)
    trainer.fit(model)
    path = trainer.checkpoint_callback.best_model_path
    with pytest.raises(TypeError, match=r"load_from_checkpoint\(path, policy=\.\.\.\)"):
        PPO.load_from_checkpoint(path)
    loaded = PPO.load_from_checkpoint(path, policy=factory)
    assert all(torch.equal(a, b) for a, b in zip(params(model), params(loaded)))


def test_policy_config_describes_classes_and_partials() -> None:
    hidden = inspect.signature(MLPPolicy).parameters["hidden"].default
    config = policy_config(MLPPolicy)
    assert config["class_path"] == "graphrl.models.legacy.MLPPolicy"
    assert config["init_args"]["hidden"] == hidden  # defaults are stored too
    partial = functools.partial(CNNPolicy, hidden=16)
    assert policy_config(partial)["init_args"]["hidden"] == 16
    assert policy_config(lambda space, n: MLPPolicy(space, n)) is None


@pytest.mark.parametrize("env_id", ["graphrl/BoxWorld-Small-v0", "MiniGrid-Empty-5x5-v0"])
def test_ppo_runs_on_project_envs(make_trainer, env_id: str) -> None:
    model = PPO(env_id, policy=CNNPolicy, num_envs=2, num_steps=16, total_timesteps=64)
    before = params(model)
    trainer = make_trainer()
    trainer.fit(model)
    assert model.iteration == 2
    assert all(not torch.equal(a, b) for a, b in zip(before, params(model)))
    assert math.isfinite(trainer.logged_metrics["losses/value_loss"].item())
    result = model.evaluate(episodes=2)
    assert result["episodes"] == 2 and 0.0 <= result["solve_rate"] <= 1.0

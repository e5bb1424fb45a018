"""One agent for every observation kind, memory core and action space.

Every combination goes through what a run does with an agent: collect a rollout, update (PPO),
evaluate (greedy and sampled), render an episode, save a checkpoint and resume from it. The
observation kinds are crossed with the cores on ``Discrete`` actions, and the action kinds with
the cores on entity sets, at tiny sizes (``toy_envs:AllKinds-v0``).
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

import gymnasium as gym
import pytest
import torch

from graphrl.checkpoints import Checkpoint
from graphrl.models import ActorCritic, RelationalBackbone
from graphrl.models.distributions import ActionSpec
from graphrl.nn import LSTMCore, MottQueryCore, ProcessorConfig, RelationalMemoryCore
from graphrl.render import render_episode
from graphrl.rl import PPO

ENV = "toy_envs:AllKinds-v0"
OBS_KINDS = ("grid", "pixels", "set", "dict", "graph")
ACTION_KINDS = ("discrete", "multi_discrete", "box")
CORES = {
    "none": (None, None),
    "lstm": (functools.partial(LSTMCore, hidden_size=16), "pooled"),
    "rmc": (functools.partial(RelationalMemoryCore, mem_slots=2, head_size=8, heads=2), "entities"),
    "mott": (
        functools.partial(MottQueryCore, num_queries=2, key_size=8, value_size=8, hidden_size=16),
        "entities",
    ),
}
CASES = sorted(
    {(obs, core, "discrete") for obs in OBS_KINDS for core in CORES}
    | {("set", core, action) for core in CORES for action in ACTION_KINDS}
)


def agent_factory(obs_kind: str, core: str):
    encoder = {"pixels": "pixels", "grid": "objects"}.get(obs_kind)
    backbone = functools.partial(
        RelationalBackbone,
        channels=16,
        encoder=encoder,
        encoder_kwargs={"background": [0]} if encoder == "objects" else None,
        topology="given" if obs_kind == "graph" else "complete",
        processor=ProcessorConfig(layer="attention", num_layers=1, heads=2),
    )
    core_factory, core_input = CORES[core]
    return functools.partial(
        ActorCritic, backbone=backbone, core=core_factory, core_input=core_input, hidden=16
    )


def small_ppo(obs_kind: str, core: str, action_kind: str, **overrides) -> PPO:
    options = {
        "env_id": ENV,
        "env_kwargs": {"obs_kind": obs_kind, "action_kind": action_kind},
        "policy": agent_factory(obs_kind, core),
        "num_envs": 2,
        "num_steps": 4,
        "total_timesteps": 8,
        "update_epochs": 1,
        "num_minibatches": 2,
    }
    return PPO(**{**options, **overrides})


def params(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


@pytest.mark.parametrize(
    ("obs_kind", "core", "action_kind"), CASES, ids=["-".join(c) for c in CASES]
)
def test_collect_update_evaluate_render_and_resume(
    obs_kind: str, core: str, action_kind: str, make_trainer, tmp_path: Path
) -> None:
    model = small_ppo(obs_kind, core, action_kind)
    assert model.policy.is_recurrent == (core != "none")
    spec = model.action_spec
    before = params(model)
    trainer = make_trainer(
        max_epochs=-1,
        default_root_dir=tmp_path,
        enable_checkpointing=True,
        callbacks=[Checkpoint(dirpath=tmp_path / "ckpt")],
    )
    trainer.fit(model)
    assert model.iteration == 1
    assert any(not torch.equal(a, b) for a, b in zip(before, params(model))), "no update"
    buffer = model.collector.buffer if model.collector is not None else None
    assert buffer is None or buffer.actions.shape[2:] == spec.shape
    for key in ("losses/policy_loss", "losses/value_loss", "losses/entropy"):
        assert math.isfinite(float(trainer.logged_metrics[key])), key
    for greedy in (True, False):
        result = model.evaluate(episodes=2, num_envs=2, greedy=greedy)
        assert result["episodes"] == 2 and result["mean_length"] == 3

    gif = tmp_path / "episode.gif"
    if obs_kind in ("dict", "graph"):
        pytest.importorskip("graphrl.render")  # rendering these kinds is checked elsewhere
    else:
        summary = render_episode(model.policy, ENV, model.hparams.env_kwargs, str(gif))
        assert gif.exists() and summary["length"] == 3

    checkpoint = tmp_path / "ckpt" / "last.ckpt"
    resumed = small_ppo(obs_kind, core, action_kind, total_timesteps=16)
    make_trainer(max_epochs=-1, default_root_dir=tmp_path).fit(resumed, ckpt_path=checkpoint)
    assert resumed.iteration == 2 and resumed.env_steps == 16


@pytest.mark.parametrize("action_kind", ACTION_KINDS)
def test_the_head_follows_the_action_space(action_kind: str) -> None:
    env = gym.make(ENV, obs_kind="set", action_kind=action_kind)
    agent = agent_factory("set", "none")(env.observation_space, env.action_space)
    spec = ActionSpec.from_space(env.action_space)
    params_, value = agent(torch.randn(5, 4, 3))
    assert params_.shape == (5, spec.param_size) and value.shape == (5,)
    head = type(agent.pi).__name__
    assert (
        head
        == {
            "discrete": "CategoricalHead",
            "multi_discrete": "MultiCategoricalHead",
            "box": "GaussianHead",
        }[action_kind]
    )
    dist = spec.distribution(params_)
    actions = dist.sample()
    assert actions.shape == (5, *spec.shape) and dist.log_prob(actions).shape == (5,)
    assert dist.entropy().shape == (5,)
    for action in spec.to_env(actions):
        assert env.action_space.contains(action)


def test_gaussian_head_starts_near_zero_mean_with_the_configured_log_std() -> None:
    space = gym.spaces.Box(-1.0, 1.0, (4, 3))
    actions = gym.spaces.Box(-2.0, 2.0, (3,))
    agent = ActorCritic(space, actions, backbone=functools.partial(RelationalBackbone, channels=8))
    params_, _ = agent(torch.randn(6, 4, 3))
    mean, log_std = params_.chunk(2, dim=-1)
    assert mean.abs().max() < 0.1  # gain-0.01 initialisation: a near-zero first mean
    torch.testing.assert_close(log_std, torch.zeros(6, 3))
    # the log-std is a state-independent parameter that the update trains
    agent.pi.log_std.data.fill_(-1.0)
    torch.testing.assert_close(agent(torch.randn(2, 4, 3))[0][:, 3:], torch.full((2, 3), -1.0))


def test_box_actions_are_clipped_at_the_env_and_scored_unclipped() -> None:
    spec = ActionSpec.from_space(gym.spaces.Box(-1.0, 1.0, (2,)))
    params_ = torch.tensor([[3.0, -3.0, 0.0, 0.0]])  # mean far outside the bounds, std 1
    dist = spec.distribution(params_)
    action = torch.tensor([[2.5, -2.0]])
    expected = torch.distributions.Normal(params_[:, :2], 1.0).log_prob(action).sum(-1)
    torch.testing.assert_close(dist.log_prob(action), expected)
    assert spec.to_env(action).tolist() == [[1.0, -1.0]]


def test_multi_discrete_actions_score_each_dimension() -> None:
    spec = ActionSpec.from_space(gym.spaces.MultiDiscrete([2, 3], start=[1, 0]))
    logits = torch.log(torch.tensor([[0.25, 0.75, 0.2, 0.3, 0.5]]))
    dist = spec.distribution(logits)
    action = torch.tensor([[1, 2]])
    torch.testing.assert_close(dist.log_prob(action), torch.log(torch.tensor([0.75 * 0.5])))
    assert dist.mode().tolist() == [[1, 2]]
    assert spec.to_env(action).tolist() == [[2, 2]]  # offset by the space's start
    expected = -(0.25 * math.log(0.25) + 0.75 * math.log(0.75))
    expected += -(0.2 * math.log(0.2) + 0.3 * math.log(0.3) + 0.5 * math.log(0.5))
    torch.testing.assert_close(dist.entropy(), torch.tensor([expected]))


def test_unsupported_action_spaces_fail_in_one_line() -> None:
    with pytest.raises(TypeError, match=r"cannot take action space Tuple.*accepted: Discrete"):
        ActionSpec.from_space(gym.spaces.Tuple([gym.spaces.Discrete(2)]))
    with pytest.raises(TypeError, match="accepted"):
        ActionSpec.from_space(gym.spaces.Box(0, 1, (2, 2)))  # a matrix of actions


def test_a_head_of_ones_own_by_class_path_or_in_python(tmp_path: Path) -> None:
    from toy_envs import TwoLayerLogits

    from graphrl.cli import cli_main

    env = gym.make(ENV, obs_kind="set", action_kind="discrete")
    head = functools.partial(TwoLayerLogits, hidden=6)
    agent = ActorCritic(env.observation_space, env.action_space, hidden=16, head=head)
    assert isinstance(agent.pi, TwoLayerLogits) and agent.pi.net[0].out_features == 6
    assert agent(torch.randn(3, 4, 3))[0].shape == (3, 4)
    cli = cli_main(
        args=[
            "--model=graphrl.rl.PPO",
            f"--model.env_id={ENV}",
            '--model.env_kwargs={"obs_kind": "set"}',
            "--model.policy=graphrl.models.ActorCritic",
            "--model.policy.head=toy_envs.TwoLayerLogits",
            "--model.policy.head.hidden=5",
            "--model.num_envs=2",
            "--model.num_steps=4",
            "--model.total_timesteps=8",
            "--model.num_minibatches=2",
            f"--trainer.default_root_dir={tmp_path}",
            "--trainer.callbacks=[]",
        ],
        run=False,
    )
    assert isinstance(cli.model.policy.pi, TwoLayerLogits)
    assert cli.model.policy.pi.net[0].out_features == 5

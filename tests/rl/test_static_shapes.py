"""GPU-readiness of the Box-World agent: static graph sizes per rollout, no host sync per call,
the fast short-row softmax, and the ``compile`` option (issue 11)."""

from __future__ import annotations

from collections.abc import Iterator

import lightning as L
import numpy as np
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from graphrl.envs.vector import env_spaces, make_vector_env
from graphrl.models import GraphActorCritic
from graphrl.nn import ProcessorConfig
from graphrl.nn.attention import softmax_last
from graphrl.rl import PPO

ENV = "graphrl/BoxWorld-Small-v0"


class HostSyncs(TorchDispatchMode):
    """Counts ops that copy a tensor value to the host (``int(t)``, ``bool(t)``, ``t.item()``)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func in (torch.ops.aten._local_scalar_dense.default, torch.ops.aten.is_nonzero.default):
            self.calls.append(str(func))
        return func(*args, **(kwargs or {}))


def boxworld_policy(space=None, num_actions=None, **overrides) -> GraphActorCritic:
    """A small Box-World relational agent; also a PPO policy factory ``(space, num_actions)``."""
    if space is None:
        space, num_actions = env_spaces(ENV, None)
    kwargs = dict(
        channels=16,
        encoder="objects",
        encoder_kwargs={"background": [0, 1], "compact": True},
        topology="complete",
        processor=ProcessorConfig(
            layer="attention", num_layers=2, heads=2, edge_features="offset_distance",
            edge_values=True,
        ),
        hidden=16,
    )  # fmt: skip
    kwargs.update(overrides)
    return GraphActorCritic(space, num_actions, **kwargs)


@pytest.fixture(scope="module")
def rollout_obs() -> torch.Tensor:
    """``[T=6, B=8, H, W, C]`` observations of random play, as a rollout buffer holds them."""
    envs = make_vector_env(ENV, list(range(8)), "sync", {})
    obs, _ = envs.reset(seed=0)
    frames = []
    for _ in range(6):
        frames.append(obs)
        obs, *_ = envs.step(envs.action_space.sample())
    envs.close()
    return torch.as_tensor(np.stack(frames))


@pytest.fixture(autouse=True)
def _no_debug(monkeypatch) -> Iterator[None]:
    monkeypatch.delenv("GRAPHRL_DEBUG", raising=False)
    yield


def test_static_shapes_fix_the_slots_and_keep_the_outputs(rollout_obs) -> None:
    policy = boxworld_policy().eval()
    encoder = policy.backbone.encoder
    flat = rollout_obs.flatten(0, 1)
    counts = encoder.entity_mask(flat).flatten(1).sum(1)
    # a batch with fewer objects (three cleared to floor) gets fewer slots on its own than
    # inside the rollout's context
    small = flat[:4].clone()
    for sample in small:
        cells = encoder.entity_mask(sample[None])[0].nonzero()[:3]
        sample[cells[:, 0], cells[:, 1]] = 0
    assert encoder(small).nodes_per_graph < int(counts.max())
    free = policy(small)
    with policy.static_shapes(rollout_obs):
        assert encoder(small).nodes_per_graph == int(counts.max())
        fixed = policy(small)
    assert encoder.fixed_slots is None  # restored on exit
    for a, b in zip(free, fixed, strict=True):  # padding slots change nothing
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_no_host_sync_per_call_after_the_first(rollout_obs) -> None:
    policy = boxworld_policy()
    flat = rollout_obs.flatten(0, 1)
    with policy.static_shapes(rollout_obs):
        logits, value = policy(flat)  # first call per shape: value checks may sync
        (logits.sum() + value.sum()).backward()
        with HostSyncs() as syncs:
            logits, value = policy(flat)
            (logits.sum() + value.sum()).backward()
    assert syncs.calls == []
    # without the fixed slots the compact encoder needs the batch's largest entity count
    with HostSyncs() as syncs:
        policy(flat)
    assert len(syncs.calls) == 1


def test_debug_flag_checks_values_on_every_call(rollout_obs, monkeypatch) -> None:
    policy = boxworld_policy()
    flat = rollout_obs.flatten(0, 1)
    policy(flat)
    bad = flat.clone()
    # a symbol one past channel 0's count: still inside the embedding table (it reads channel
    # 1's first row), so only the value check can catch it
    bad[0, 0, 0, 0] = policy.backbone.encoder.embed.symbol_counts[0]
    with policy.static_shapes(rollout_obs):
        policy(bad)  # same shape as before: not re-checked (documented trade-off)
        monkeypatch.setenv("GRAPHRL_DEBUG", "1")
        with pytest.raises(ValueError, match="symbols out of range"):
            policy(bad)


@pytest.mark.parametrize("n", [3, 8, 15, 16, 40])
def test_softmax_last_equals_softmax(n: int) -> None:
    x = torch.randn(5, 4, 7, n, dtype=torch.float64, requires_grad=True)
    x_ref = x.detach().clone().requires_grad_()
    masked = torch.rand(5, 4, 7, n) < 0.3
    masked[..., 0] = False
    y = softmax_last(x.masked_fill(masked, float("-inf")))
    y_ref = x_ref.masked_fill(masked, float("-inf")).softmax(-1)
    torch.testing.assert_close(y, y_ref)
    g = torch.randn_like(y)
    y.backward(g)
    y_ref.backward(g)
    torch.testing.assert_close(x.grad, x_ref.grad)


def test_ppo_updates_with_static_shapes_inside(make_trainer, monkeypatch) -> None:
    """PPO's update runs inside ``policy.static_shapes(rollout)``: every minibatch of a rollout
    has the rollout's slot count."""
    seen: list[int] = []
    module = PPO(ENV, policy=boxworld_policy, num_envs=4, num_steps=8, total_timesteps=64,
                 update_epochs=1, num_minibatches=4)  # fmt: skip
    encoder = module.policy.backbone.encoder
    forward = type(encoder).forward

    def spy(self, obs, mask=None, pos=None):
        graph = forward(self, obs, mask, pos)
        if torch.is_grad_enabled():
            seen.append((self.fixed_slots, graph.nodes_per_graph))
        return graph

    monkeypatch.setattr(type(encoder), "forward", spy)
    make_trainer().fit(module)
    assert len(seen) == 2 * 4  # two iterations of 4 minibatches
    assert all(fixed is not None and fixed == n for fixed, n in seen)


def test_compile_option_keeps_one_copy_of_the_parameters() -> None:
    eager = PPO(ENV, policy=boxworld_policy, num_envs=2, num_steps=4, total_timesteps=64)
    compiled = PPO(ENV, policy=boxworld_policy, num_envs=2, num_steps=4, total_timesteps=64,
                   compile=True)  # fmt: skip
    assert compiled._compiled_policy is not None and eager._compiled_policy is None
    assert compiled.state_dict().keys() == eager.state_dict().keys()
    assert compiled.hparams.compile is True


@pytest.mark.slow
def test_compiled_update_equals_eager(make_trainer) -> None:
    results = []
    for compile in (False, True):
        L.seed_everything(0)
        module = PPO(ENV, policy=boxworld_policy, num_envs=4, num_steps=8, total_timesteps=64,
                     update_epochs=1, num_minibatches=2, seed=0, compile=compile)  # fmt: skip
        make_trainer().fit(module)
        results.append([p.detach().clone() for p in module.policy.parameters()])
    for a, b in zip(*results, strict=True):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


def test_bf16_autocast_run_learns(make_trainer) -> None:
    """``--trainer.precision=bf16-mixed``: the rollout and the update run under bf16 autocast
    (Lightning's precision plugin wraps ``training_step``) and PPO still solves a task."""
    from toy_envs import CorridorOracle

    from graphrl.rl import evaluate_policy

    L.seed_everything(0, verbose=False)
    kwargs = {"length": 8}
    model = PPO("toy_envs:Corridor-v0", env_kwargs=kwargs, num_envs=8, num_steps=32,
                total_timesteps=16384, learning_rate=3e-3)  # fmt: skip
    dtypes: list[torch.dtype] = []
    model.policy.register_forward_hook(lambda _m, _i, out: dtypes.append(out[0].dtype))
    untrained = model.evaluate(episodes=32, greedy=True)
    make_trainer(precision="bf16-mixed").fit(model)
    assert torch.bfloat16 in dtypes  # autocast was on for the policy's matmuls
    optimal = evaluate_policy(CorridorOracle(), "toy_envs:Corridor-v0", episodes=32, greedy=True,
                              env_kwargs=kwargs)  # fmt: skip
    result = model.evaluate(episodes=32, greedy=True)
    assert untrained["mean_length"] > optimal.lengths.mean()
    assert result["solve_rate"] == 1.0
    assert next(model.policy.parameters()).dtype == torch.float32  # master weights stay fp32

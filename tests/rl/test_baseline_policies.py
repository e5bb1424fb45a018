"""Baseline policies: shapes, input handling, SB3 parity, bad input."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from graphrl.rl.policies import CNNPolicy, MLPPolicy

GRID = gym.spaces.Box(0, np.broadcast_to(np.array([9, 7], np.uint8), (5, 6, 2)), dtype=np.uint8)


def random_grid_obs(batch: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    high = torch.tensor([9, 7])
    return (torch.rand(batch, 5, 6, 2, generator=g) * (high + 1)).to(torch.uint8)


@pytest.mark.parametrize("policy_cls", [MLPPolicy, CNNPolicy])
def test_policy_shapes_and_gradients(policy_cls: type) -> None:
    policy = policy_cls(GRID, 4)
    logits, value = policy(random_grid_obs(3))
    assert logits.shape == (3, 4) and value.shape == (3,)
    (logits.sum() + value.sum()).backward()
    assert all(p.grad is not None for p in policy.parameters())


def test_mlp_policy_has_the_shape_of_sb3_mlp_policy() -> None:
    sb3 = pytest.importorskip("stable_baselines3.common.policies")
    space = gym.spaces.Box(-1.0, 1.0, (7,), np.float32)
    ours = MLPPolicy(space, 3)
    theirs = sb3.ActorCriticPolicy(space, gym.spaces.Discrete(3), lambda _: 1e-3)
    shapes = sorted(tuple(p.shape) for p in ours.parameters())
    assert shapes == sorted(tuple(p.shape) for p in theirs.parameters())
    assert sum(isinstance(m, torch.nn.Tanh) for m in ours.modules()) == 4  # 2 per network
    # Separate actor and critic: the value does not depend on the actor's weights.
    _, value = ours(torch.randn(2, 7))
    value.sum().backward()
    assert all(p.grad is None for p in ours.pi.parameters())


def test_mlp_policy_scales_integer_observations_by_the_space_bound() -> None:
    policy = MLPPolicy(GRID, 2)
    obs = torch.tensor(np.broadcast_to(GRID.high, GRID.shape).copy()).unsqueeze(0)
    params, value = policy(obs)  # every cell at its bound: forward must feed ones to the nets
    ones = torch.ones(1, obs[0].numel())
    torch.testing.assert_close(params, policy.pi(policy.backbone.mlp(ones)))
    torch.testing.assert_close(value, policy.vf(policy.critic.mlp(ones)).squeeze(-1))
    unscaled = policy.vf(policy.critic.mlp(obs.reshape(1, -1).float())).squeeze(-1)
    assert not torch.allclose(value, unscaled)
    float_space = gym.spaces.Box(-5.0, 5.0, (3,), np.float32)
    float_policy = MLPPolicy(float_space, 2)  # float observations go in as they are
    x = torch.tensor([[4.0, -3.0, 0.5]])
    expected = float_policy.vf(float_policy.critic.mlp(x)).squeeze(-1)
    torch.testing.assert_close(float_policy(x)[1], expected)


def test_cnn_policy_embeds_each_channel_separately() -> None:
    policy = CNNPolicy(GRID, 4)
    assert policy.backbone.symbol_counts == (10, 8)
    assert policy.backbone.embedding.num_embeddings == 18
    # The same symbol in different channels maps to different embeddings.
    a = torch.zeros(1, 5, 6, 2, dtype=torch.uint8)
    b = a.clone()
    a[0, 0, 0, 0] = 3
    b[0, 0, 0, 1] = 3
    assert not torch.allclose(policy(a)[0], policy(b)[0])
    assert "symbol_counts=(10, 8)" in repr(policy)


def test_cnn_policy_accepts_explicit_symbol_counts() -> None:
    loose = gym.spaces.Box(0, 255, (5, 6, 2), np.uint8)
    assert CNNPolicy(loose, 4).backbone.embedding.num_embeddings == 512
    counted = CNNPolicy(loose, 4, symbol_counts=[10, 8])
    assert counted.backbone.embedding.num_embeddings == 18
    with pytest.raises(ValueError, match="symbol_counts has 3 entries but the grid has 2"):
        CNNPolicy(loose, 4, symbol_counts=[1, 2, 3])


def test_policies_reject_bad_spaces() -> None:
    with pytest.raises(TypeError, match="needs a Box observation space"):
        MLPPolicy(gym.spaces.Discrete(3), 2)
    with pytest.raises(ValueError, match="integer \\(H, W, C\\) grid"):
        CNNPolicy(gym.spaces.Box(0.0, 1.0, (4,), np.float32), 2)
    with pytest.raises(ValueError, match="have to be positive"):
        MLPPolicy(GRID, 0)

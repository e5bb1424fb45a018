"""The relational actor-critic: shapes on real envs, batching, swaps, attention maps."""

import numpy as np
import pytest
import torch

from graphrl.envs import make_env
from graphrl.envs.vector import env_spaces
from graphrl.models import GraphActorCritic
from graphrl.models.policy_backbones import symbol_counts_from_space
from graphrl.nn import ProcessorConfig

BOXWORLD = "graphrl/BoxWorld-Small-v0"


def _obs(env_id: str, n: int, **kw) -> torch.Tensor:
    env = make_env(env_id, **kw)
    return torch.as_tensor(np.stack([env.reset(seed=i)[0] for i in range(n)]))


@pytest.mark.parametrize(
    ("encoder", "encoder_kwargs", "topology", "layer"),
    [
        ("grid", {}, "complete", "attention"),
        ("objects", {"background": [0, 1], "compact": True}, "complete", "attention"),
        ("objects", {"background": [0, 1]}, "grid4", "gnn"),
        ("grid", {}, "relative", "rgcn"),
        ("grid", {}, "grid8", "gcn"),
        ("objects", {"background": [0, 1], "compact": True}, "self", "gnn"),
    ],
)
def test_policy_outputs_and_batch_independence(encoder, encoder_kwargs, topology, layer):
    torch.manual_seed(0)
    space, num_actions = env_spaces(BOXWORLD, {})
    policy = GraphActorCritic(
        space,
        num_actions,
        channels=32,
        encoder=encoder,
        encoder_kwargs=encoder_kwargs,
        topology=topology,
        processor=ProcessorConfig(layer=layer, num_layers=2, heads=2),
    ).eval()
    obs = _obs(BOXWORLD, 6)
    logits, value = policy(obs)
    assert logits.shape == (6, num_actions.n) and value.shape == (6,)
    assert torch.isfinite(logits).all() and torch.isfinite(value).all()
    # compaction pads each batch to its largest object count: results must not depend on it
    alone_logits, alone_value = policy(obs[2:3])
    torch.testing.assert_close(logits[2:3], alone_logits, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(value[2:3], alone_value, rtol=1e-4, atol=1e-5)


def test_symbol_counts_come_from_the_space_and_minigrid_works():
    space, num_actions = env_spaces("MiniGrid-DoorKey-5x5-v0", {})
    counts = symbol_counts_from_space(space)
    assert len(counts) == space.shape[-1] and all(c > 1 for c in counts)
    policy = GraphActorCritic(space, num_actions, channels=32)
    logits, _ = policy(_obs("MiniGrid-DoorKey-5x5-v0", 3))
    assert logits.shape == (3, num_actions.n)


def test_attention_maps_rows_are_distributions_over_real_objects():
    space, num_actions = env_spaces(BOXWORLD, {})
    policy = GraphActorCritic(
        space,
        num_actions,
        channels=32,
        encoder="objects",
        encoder_kwargs={"background": [0, 1], "compact": True},
        processor=ProcessorConfig(layer="attention", num_layers=2, heads=2),
    )
    obs = _obs(BOXWORLD, 4)
    maps = policy.attention_maps(obs)
    assert len(maps) == 2
    graph = policy.backbone.encoder(obs)
    w = maps[-1]  # [B, heads, N, N]
    real = graph.mask
    assert w.shape[:2] == (4, 2) and w.shape[-1] == real.shape[1]
    sums = w.sum(-1)  # real receivers attend over real senders only
    torch.testing.assert_close(
        sums[real.unsqueeze(1).expand_as(sums)],
        torch.ones_like(sums[real.unsqueeze(1).expand_as(sums)]),
    )
    assert (w.masked_select(~real[:, None, None, :].expand_as(w)) == 0).all()


def test_wrong_observations_fail_clearly():
    space, num_actions = env_spaces(BOXWORLD, {})
    policy = GraphActorCritic(space, num_actions, channels=16)
    with pytest.raises(ValueError, match="expects observations"):
        policy(torch.zeros(2, 8, 8, 3, dtype=torch.uint8))
    with pytest.raises(ValueError, match="out of range"):
        policy(torch.full((1, 8, 8, 2), 200, dtype=torch.uint8))
    with pytest.raises(ValueError, match="unknown topology"):
        GraphActorCritic(space, num_actions, topology="nope")

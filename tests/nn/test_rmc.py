"""Relational Memory Core: its attention step is MHDPA of slots over [memory; input]."""

import pytest
import torch
from torch import nn

from graphrl.graphs.batch import EntityGraph
from graphrl.graphs.topologies import Memory
from graphrl.nn import RelationalMemoryCore


def _mha_like(layer) -> nn.MultiheadAttention:
    mha = nn.MultiheadAttention(layer.in_channels, layer.heads, batch_first=True)
    with torch.no_grad():
        mha.in_proj_weight.copy_(layer.in_proj.weight)
        mha.in_proj_bias.copy_(layer.in_proj.bias)
        mha.out_proj.weight.copy_(layer.out_proj.weight)
        mha.out_proj.bias.copy_(layer.out_proj.bias)
    return mha


def test_attend_equals_slots_querying_memory_and_input():
    torch.manual_seed(0)
    core = RelationalMemoryCore(6, mem_slots=3, head_size=4, heads=2, gate_style="none").eval()
    block = core.blocks[0]
    memory, x = torch.randn(5, 3, 8), torch.randn(5, 8)
    keys = torch.cat([memory, x.unsqueeze(1)], dim=1)
    attended, _ = _mha_like(block)(memory, keys, keys)
    h = block.norm1(memory + attended)
    expected = block.norm2(h + block.mlp(h))
    torch.testing.assert_close(core.attend(memory, x), expected, rtol=1e-5, atol=1e-5)


def test_shapes_and_sequence_unroll_match_steps():
    torch.manual_seed(0)
    core = RelationalMemoryCore(7, mem_slots=2, head_size=8, heads=2)
    xs = torch.randn(4, 5, 7)
    outputs, memory = core.forward_sequence(xs)
    assert outputs.shape == (4, 5, core.output_size) and memory.shape == (4, 2, 16)
    m = None
    for t in range(5):
        out, m = core(xs[:, t], m)
    torch.testing.assert_close(out, outputs[:, -1])
    torch.testing.assert_close(m, memory)


def test_saturated_forget_gate_keeps_memory_and_batch_is_independent():
    torch.manual_seed(0)
    core = RelationalMemoryCore(
        3, mem_slots=2, head_size=4, heads=1, forget_bias=50.0, input_bias=-50.0
    )
    memory = torch.randn(2, 2, 4)
    _, new = core(torch.randn(2, 3), memory)
    torch.testing.assert_close(new, memory, rtol=1e-4, atol=1e-4)
    core2 = RelationalMemoryCore(3, mem_slots=2, head_size=4, heads=1)
    x = torch.randn(3, 3)
    full, _ = core2(x)
    alone, _ = core2(x[1:2])
    torch.testing.assert_close(full[1:2], alone, rtol=1e-5, atol=1e-5)


def test_initial_state_is_padded_identity_and_bad_input_fails():
    core = RelationalMemoryCore(3, mem_slots=2, head_size=2, heads=2)
    (init,) = core.initial_state(1)
    init = init[0]
    torch.testing.assert_close(init, torch.tensor([[1.0, 0, 0, 0], [0, 1.0, 0, 0]]))
    with pytest.raises(ValueError, match="expects x"):
        core(torch.randn(2, 4))
    with pytest.raises(ValueError, match="gate_style"):
        RelationalMemoryCore(3, gate_style="lstm")


def test_attend_equals_the_attention_layer_on_the_memory_topology():
    """The fast path is the project's AttentionLayer on the ``memory`` graph, read at the slots."""
    torch.manual_seed(0)
    core = RelationalMemoryCore(6, mem_slots=3, head_size=4, heads=2, gate_style="none").eval()
    memory, x = torch.randn(5, 3, 8), torch.randn(5, 8)
    nodes = torch.cat([memory, x.unsqueeze(1)], dim=1)  # [B, S + 1, D]
    graph = Memory(num_slots=3)(
        EntityGraph(
            x=nodes.reshape(-1, 8),
            pos=torch.zeros(5 * 4, 2),
            mask=torch.ones(5, 4, dtype=torch.bool),
            num_graphs=5,
        )
    )
    expected = graph.dense_x(core.blocks[0].forward_graph(graph, graph.x))[:, :3]
    torch.testing.assert_close(core.attend(memory, x), expected, rtol=1e-5, atol=1e-5)


def test_step_with_attention_is_the_step_and_its_weights_are_distributions():
    torch.manual_seed(0)
    core = RelationalMemoryCore(6, mem_slots=3, head_size=4, heads=2, num_blocks=2)
    x = torch.randn(4, 5, 6)
    mask = torch.rand(4, 5) > 0.4
    mask[:, 0] = True
    state = (torch.randn(4, 3, 8),)
    out, (memory,) = core.step(x, state, mask)
    out_w, (memory_w,), weights = core.step_with_attention(x, state, mask)
    torch.testing.assert_close(out_w, out, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(memory_w, memory, rtol=1e-5, atol=1e-5)
    assert weights.shape == (4, 2, 2, 3, 3 + 5)  # [B, blocks, heads, slots, slots + inputs]
    torch.testing.assert_close(weights.sum(-1), torch.ones(4, 2, 2, 3))
    absent = ~mask[:, None, None, None, :].expand(-1, 2, 2, 3, -1)
    assert (weights[..., 3:][absent] == 0).all()

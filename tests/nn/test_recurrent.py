"""Recurrent cores (LSTM, RMC) behind one interface: steps, resets, unrolls, set inputs."""

import pytest
import torch
from torch import nn

from graphrl.nn import LSTMCore, RelationalMemoryCore, build_core, select_state


def _cores():
    torch.manual_seed(0)
    return [LSTMCore(5, hidden_size=12), RelationalMemoryCore(5, mem_slots=3, head_size=4, heads=2)]


@pytest.mark.parametrize("index", [0, 1])
def test_unroll_with_resets_equals_steps_from_initial_state(index: int) -> None:
    core = _cores()[index]
    t, b = 6, 4
    xs = torch.randn(t, b, 5)
    starts = torch.zeros(t, b, dtype=torch.bool)
    starts[2, 1] = starts[4, 0] = starts[4, 3] = True
    state = tuple(s + 0.3 * torch.randn_like(s) for s in core.initial_state(b))
    outputs, final = core.unroll(xs, state, starts)
    assert outputs.shape == (t, b, core.output_size)
    for row in range(b):  # each row alone, restarted by hand from the initial state
        s = select_state(state, slice(row, row + 1))
        for step in range(t):
            if starts[step, row]:
                s = core.initial_state(1)
            out, s = core.step(xs[step, row : row + 1], s)
            torch.testing.assert_close(out, outputs[step, row : row + 1], rtol=1e-5, atol=1e-5)
        for a, c in zip(s, select_state(final, slice(row, row + 1))):
            torch.testing.assert_close(a, c, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("index", [0, 1])
def test_gradient_reaches_the_first_step_and_rows_do_not_mix(index: int) -> None:
    core = _cores()[index]
    xs = torch.randn(8, 3, 5, requires_grad=True)
    outputs, _ = core.unroll(xs, core.initial_state(3))
    outputs[-1, 0].sum().backward()
    grad = xs.grad
    assert grad[0, 0].abs().sum() > 0  # BPTT reaches step 0 of row 0
    assert grad[:, 1:].abs().sum() == 0  # ... and never another row


def test_lstm_core_is_torch_lstm_and_reset_zeroes_the_state() -> None:
    core = _cores()[0]
    xs = torch.randn(7, 2, 5)
    expected, _ = core.lstm(xs)
    got, _ = core.unroll(xs, core.initial_state(2))
    torch.testing.assert_close(got, expected)
    h, c = core.reset((torch.ones(2, 12), torch.ones(2, 12)), torch.tensor([True, False]))
    assert h[0].abs().sum() == 0 and c[0].abs().sum() == 0 and torch.equal(h[1], torch.ones(12))


def test_rmc_set_input_ignores_padding_and_a_set_of_one_is_the_vector_input() -> None:
    core = _cores()[1]
    state = core.initial_state(2)
    entities = torch.randn(2, 3, 5)
    mask = torch.tensor([[True, True, False], [True, False, False]])
    out, _ = core.step(entities, state, mask)
    garbage = entities.clone()
    garbage[~mask] = 100.0
    torch.testing.assert_close(core.step(garbage, state, mask)[0], out)
    row1, _ = core.step(entities[1:, :1], select_state(state, slice(1, 2)))
    torch.testing.assert_close(out[1:], row1, rtol=1e-5, atol=1e-5)
    vector, _ = core.step(entities[1:, 0], select_state(state, slice(1, 2)))
    torch.testing.assert_close(vector, row1)
    # the unroll takes sets too, with a [T, B, K] mask
    outs, _ = core.unroll(entities.unsqueeze(0), state, mask=mask.unsqueeze(0))
    torch.testing.assert_close(outs[0], out)


def test_rmc_step_equals_the_paper_update_written_with_multihead_attention() -> None:
    """Reference: MHDPA of the slots over [M; Wx] (torch's MHA), post-norm MLP, then gates."""
    torch.manual_seed(1)
    core = RelationalMemoryCore(6, mem_slots=2, head_size=4, heads=2)
    block = core.blocks[0]
    mha = nn.MultiheadAttention(8, 2, batch_first=True)
    with torch.no_grad():
        mha.in_proj_weight.copy_(block.in_proj.weight)
        mha.in_proj_bias.copy_(block.in_proj.bias)
        mha.out_proj.weight.copy_(block.out_proj.weight)
        mha.out_proj.bias.copy_(block.out_proj.bias)
    x = torch.randn(3, 6)
    (memory,) = core.initial_state(3)
    memory = memory + torch.randn_like(memory)
    proj = core.input_proj(x)
    keys = torch.cat([memory, proj.unsqueeze(1)], dim=1)
    h = block.norm1(memory + mha(memory, keys, keys)[0])
    candidate = block.norm2(h + block.mlp(h))
    i, f = (core.gate_input(proj).unsqueeze(1) + core.gate_memory(torch.tanh(memory))).chunk(2, -1)
    expected = torch.sigmoid(i) * torch.tanh(candidate) + torch.sigmoid(f + 1.0) * memory
    out, (new,) = core.step(x, (memory,))
    torch.testing.assert_close(new, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out, expected.flatten(1), rtol=1e-5, atol=1e-5)


def test_build_core_by_name_and_bad_names_fail() -> None:
    assert isinstance(build_core("lstm", 4, hidden_size=8), LSTMCore)
    assert isinstance(build_core("rmc", 4, mem_slots=2), RelationalMemoryCore)
    with pytest.raises(ValueError, match="unknown core 'gru'; choose one of: lstm, mott, rmc"):
        build_core("gru", 4)
    with pytest.raises(ValueError, match="mask must be"):
        _cores()[1].step(torch.randn(2, 3, 5), _cores()[1].initial_state(2), torch.ones(2, 2))

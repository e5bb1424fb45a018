"""The fused RMC unroll (one autograd node, hand-written backward) against autograd through the
per-step path: the same outputs, final memory and every gradient."""

import itertools

import pytest
import torch

from graphrl.nn import RelationalMemoryCore, rmc_fused


def _run(core, xs, memory, starts, mask, fused, out_weight, memory_weight):
    """Outputs, final memory and the gradients of a fixed linear loss of both."""
    core.fused = fused
    core.zero_grad(set_to_none=True)
    xs = xs.detach().requires_grad_()
    memory = memory.detach().requires_grad_()
    outputs, (final,) = core.unroll(xs, (memory,), starts=starts, mask=mask)
    loss = (outputs * out_weight).sum()
    if memory_weight is not None:
        loss = loss + (final * memory_weight).sum()
    loss.backward()
    grads = {name: p.grad for name, p in core.named_parameters()}
    return outputs.detach(), final.detach(), xs.grad, memory.grad, grads, outputs.grad_fn


def _compare(core, steps, batch, inputs, starts, mask, atol, final_loss=True):
    gen = torch.Generator().manual_seed(1)
    dtype = next(core.parameters()).dtype
    xs = torch.randn(steps, batch, inputs, core.input_size, generator=gen, dtype=dtype)
    memory = core.initial_state(batch)[0].to(dtype)
    memory = memory + 0.1 * torch.randn(memory.shape, generator=gen, dtype=dtype)
    out_weight = torch.randn(steps, batch, core.output_size, generator=gen, dtype=dtype)
    memory_weight = torch.randn(memory.shape, generator=gen, dtype=dtype) if final_loss else None
    args = (xs, memory, starts, mask)
    reference = _run(core, *args, False, out_weight, memory_weight)
    fused = _run(core, *args, True, out_weight, memory_weight)
    assert type(fused[-1]).__name__ == "_FusedUnrollBackward"
    assert type(reference[-1]).__name__ != "_FusedUnrollBackward"
    for ours, theirs in zip(fused[:4], reference[:4]):
        torch.testing.assert_close(ours, theirs, atol=atol, rtol=atol)
    assert fused[4].keys() == reference[4].keys()
    for name, grad in reference[4].items():
        assert fused[4][name] is not None, name
        torch.testing.assert_close(fused[4][name], grad, atol=atol, rtol=atol, msg=name)


@pytest.mark.parametrize(
    ("gate_style", "num_blocks", "masked", "resets"),
    [
        *itertools.product(("unit", "memory", "none"), (1,), (False, True), (False, True)),
        ("unit", 2, True, True),
        ("memory", 2, False, False),
    ],
)
def test_fused_unroll_equals_autograd_through_the_steps(gate_style, num_blocks, masked, resets):
    torch.manual_seed(0)
    core = RelationalMemoryCore(
        5, mem_slots=3, head_size=4, heads=2, num_blocks=num_blocks, gate_style=gate_style
    ).double()
    steps, batch, inputs = 6, 4, 2
    gen = torch.Generator().manual_seed(2)
    mask = torch.rand(steps, batch, inputs, generator=gen) > 0.3 if masked else None
    starts = torch.rand(steps, batch, generator=gen) > 0.6 if resets else None
    _compare(core, steps, batch, inputs, starts, mask, atol=1e-10)


@pytest.mark.parametrize("form", ["flash", "matmul"])
def test_fused_unroll_with_many_keys_agrees_on_each_attention_form(form, monkeypatch):
    """4 slots x (4 + 12) keys is past the broadcast form's size: on CPU the flash kernel,
    elsewhere batched matmuls (forced here to test both)."""
    probe = torch.zeros(2, 4, 8)
    assert rmc_fused._attention_form(probe, 5) == "broadcast"
    assert rmc_fused._attention_form(probe, 16) == "flash"
    monkeypatch.setattr(rmc_fused, "_attention_form", lambda q, keys: form)
    torch.manual_seed(0)
    core = RelationalMemoryCore(6, mem_slots=4, head_size=4, heads=2).double()
    mask = torch.rand(3, 2, 12, generator=torch.Generator().manual_seed(3)) > 0.5
    _compare(core, 3, 2, 12, None, mask, atol=1e-10)


def test_fused_unroll_in_float32_matches_and_a_loss_on_the_last_memory_only():
    """fp32 runs oneDNN's matmuls (40 x 4 slots = 160 rows, over its 128-row threshold) and
    the sigmoid form of tanh: equal to ~1e-5, not bitwise."""
    assert 40 * 4 >= rmc_fused._ONEDNN_MIN_ROWS
    torch.manual_seed(0)
    core = RelationalMemoryCore(16, mem_slots=4, head_size=8, heads=4)
    _compare(core, 8, 40, 1, None, None, atol=2e-4)
    starts = torch.zeros(8, 40, dtype=torch.bool)
    starts[3, ::2] = True
    _compare(core, 8, 40, 1, starts, None, atol=2e-4, final_loss=False)


def test_fused_unroll_without_grad_and_unsupported_blocks_fall_back():
    torch.manual_seed(0)
    core = RelationalMemoryCore(5, mem_slots=2, head_size=4, heads=2)
    xs = torch.randn(4, 3, 5)
    state = core.initial_state(3)
    with torch.no_grad():
        fast, _ = core.unroll(xs, state)
        core.fused = False
        slow, _ = core.unroll(xs, state)
    torch.testing.assert_close(fast, slow, atol=1e-5, rtol=1e-5)
    core.fused = True
    outputs, _ = core.unroll(xs, state)
    assert type(outputs.grad_fn).__name__ == "_FusedUnrollBackward"
    core.blocks[0].mlp = None  # a block the hand-written backward does not cover
    outputs, _ = core.unroll(xs, state)
    assert type(outputs.grad_fn).__name__ != "_FusedUnrollBackward"
    outputs.sum().backward()  # autograd through the steps still works


def test_compiled_steps_agree_with_the_eager_fused_unroll():
    """compile_steps=True runs the same step functions through torch.compile (inductor)."""
    torch.manual_seed(0)
    core = RelationalMemoryCore(8, mem_slots=2, head_size=4, heads=2, compile_steps=True)
    gen = torch.Generator().manual_seed(4)
    xs = torch.randn(5, 3, 8, generator=gen)
    starts = torch.rand(5, 3, generator=gen) > 0.7
    results = []
    for compiled in (False, True):
        core.compile_steps = compiled
        core.zero_grad(set_to_none=True)
        outputs, _ = core.unroll(xs, core.initial_state(3), starts=starts)
        (outputs * torch.linspace(-1, 1, outputs.numel()).view_as(outputs)).sum().backward()
        results.append([outputs.detach()] + [p.grad for p in core.parameters()])
    if rmc_fused._compiled_steps()[0].failed:
        pytest.skip("torch.compile is unavailable here (the core warned and ran eagerly)")
    for compiled, eager in zip(results[1], results[0]):
        torch.testing.assert_close(compiled, eager, atol=1e-5, rtol=1e-4)

"""``RelationalMemoryCore(compile_steps=True)``: the step through ``torch.compile`` gives the
eager unroll's outputs, memory and gradients, and falls back to eager when compiling fails."""

from __future__ import annotations

import pytest
import torch

from graphrl.nn import RelationalMemoryCore


def _unroll_and_grads(core: RelationalMemoryCore, xs, mask, starts):
    xs = xs.clone().requires_grad_(True)
    outputs, (memory,) = core.unroll(xs, core.initial_state(xs.shape[1]), starts, mask)
    (outputs.square().mean() + memory.sum()).backward()
    grads = [p.grad.clone() for p in core.parameters()]
    core.zero_grad()
    return outputs.detach(), memory.detach(), xs.grad, grads


@pytest.mark.slow
def test_compiled_steps_agree_with_the_eager_unroll() -> None:
    torch.manual_seed(0)
    eager = RelationalMemoryCore(8, mem_slots=3, head_size=4, heads=2)
    compiled = RelationalMemoryCore(8, mem_slots=3, head_size=4, heads=2, compile_steps=True)
    compiled.load_state_dict(eager.state_dict())
    xs = torch.randn(5, 4, 6, 8)  # [T, B, K, F]: a set per step
    mask = torch.rand(5, 4, 6) > 0.3
    starts = torch.zeros(5, 4, dtype=torch.bool)
    starts[2, 1] = True
    for a, b in zip(
        _unroll_and_grads(eager, xs, mask, starts), _unroll_and_grads(compiled, xs, mask, starts)
    ):
        for x, y in zip(a if isinstance(a, list) else [a], b if isinstance(b, list) else [b]):
            torch.testing.assert_close(x, y, rtol=1e-4, atol=1e-5)


def test_a_failing_compile_falls_back_to_eager_with_a_warning(monkeypatch) -> None:
    torch.manual_seed(0)
    core = RelationalMemoryCore(8, mem_slots=2, head_size=4, heads=2, compile_steps=True)

    def broken(fn, **_):
        def call(*args):
            raise RuntimeError("no C++ compiler")

        return call

    monkeypatch.setattr(torch, "compile", broken)
    xs = torch.randn(3, 2, 8)
    with pytest.warns(UserWarning, match="torch.compile failed .*no C\\+\\+ compiler"):
        outputs, _ = core.unroll(xs, core.initial_state(2))
    core.compile_steps = False
    expected, _ = core.unroll(xs, core.initial_state(2))
    torch.testing.assert_close(outputs, expected)

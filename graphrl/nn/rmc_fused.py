"""The Relational Memory Core's unroll as one autograd node, with a hand-written backward.

Autograd records ~40 nodes per RMC step (projections, the attention, two layer norms, the
MLP, the gates), and on CPU at the sizes a recurrent agent uses (``B * S`` rows of width
``D ~ 64``) the engine's bookkeeping and the small kernels' fixed cost weigh as much as the
arithmetic. Here the forward runs the recurrence without building a graph and keeps what the
backward needs; the backward walks the steps in reverse with the matching formulas (torch's
own ``*_backward`` kernels where they exist), accumulating each weight's gradient in place.
The maths is that of :meth:`graphrl.nn.rmc.RelationalMemoryCore._update` (one or more
post-norm :class:`graphrl.nn.attention.AttentionLayer` blocks with keys and values from
``[memory; inputs]``, then the gates); ``tests/nn/test_rmc_fused.py`` checks outputs and every
gradient against autograd through the per-step path (to 1e-10 in float64).

Where it leaves torch's usual path, for speed on CPU (each measured in the docstrings below):
the matmuls call oneDNN rather than MKL, ``tanh`` is ``2 sigmoid(2x) - 1``, and with a
handful of slots and keys (``S * J <= 32``, ``J = S + K``) the attention is written out on
``[B, S, J, H]`` logits with broadcast products, since there ``scaled_dot_product_attention``
and batched matmuls cost more in per-call overhead than the arithmetic. With more keys it
calls torch's CPU flash-attention kernel and its backward directly (batched matmuls on other
devices).

Not covered: double backward, and blocks without an MLP (the core then records every step
with autograd).
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["FusedSpec", "block_params", "forward_steps", "fused_unroll", "supports"]

_BLOCK_PARAMS = 12  # per block: see block_params()


@dataclass(frozen=True)
class FusedSpec:
    """The static shape of one core: what the fused unroll needs besides tensors."""

    heads: int
    num_blocks: int
    gated: bool  # False: gate_style "none" (the candidate is the next memory)
    eps1: tuple[float, ...]  # per block, layer norm eps
    eps2: tuple[float, ...]
    compiled: bool = False  # run the step functions through torch.compile


# ---------------------------------------------------------------------- matmuls
def _onednn_linear():
    """oneDNN's fp32 linear op, or None where this torch build lacks it.

    On CPU ``torch.addmm`` calls MKL, whose fp32 GEMM on non-Intel x86 (this project's AMD
    machine) runs at about 60% of oneDNN's speed at these sizes; ``nn.LSTM``'s fused kernel
    is oneDNN too. ``op(x, w, b, "relu", [], "")`` also applies a ReLU and
    ``op.binary(x, other, w, b, "add")`` adds ``other``, in the same call. Same fp32
    arithmetic as ``addmm`` (checked at import on a small product).
    """
    op = getattr(getattr(torch.ops, "mkldnn", None), "_linear_pointwise", None)
    if op is None or not torch.backends.mkldnn.is_available():
        return None
    try:
        x, w = torch.arange(6.0).view(2, 3), torch.arange(12.0).view(4, 3)
        if not torch.equal(op(x, w, None, "none", [], ""), x @ w.t()):
            return None
        if not torch.equal(op.binary(x, x @ w.t(), w, None, "add"), 2 * (x @ w.t())):
            return None
    except (RuntimeError, NotImplementedError, AttributeError):
        return None
    return op


_ONEDNN_LINEAR = _onednn_linear()
# oneDNN's call costs ~10 us more than addmm's: below this many rows addmm is faster
# (measured here: 4 rows 13.8 vs 3.3 us; 256 rows x 64 -> 192 42 vs 71 us).
_ONEDNN_MIN_ROWS = 128


def _linear(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    *,
    add: Tensor | None = None,
    relu: bool = False,
) -> Tensor:
    """``x [N, in] @ weight[out, in].T (+ bias) (+ add)``, then a ReLU if asked -> ``[N, out]``.

    ``add`` and ``relu`` are not combined (no caller needs both).
    """
    if (
        _ONEDNN_LINEAR is not None
        and x.shape[0] >= _ONEDNN_MIN_ROWS
        and not torch.compiler.is_compiling()  # inductor has no rule for the dense-weight op
        and x.dtype == torch.float32
        and x.device.type == "cpu"
    ):
        if add is not None:
            return _ONEDNN_LINEAR.binary(x, add, weight, bias, "add")
        return _ONEDNN_LINEAR(x, weight, bias, "relu" if relu else "none", [], "")
    out = torch.addmm(bias, x, weight.t()) if bias is not None else x @ weight.t()
    if add is not None:
        out = out.add_(add)
    return out.relu_() if relu else out


class _Constants:
    """0-dim tensors for the scalars of the recurrence, made once per call: a Python number
    in an eager op is wrapped into a new tensor each time (three extra ops per use)."""

    def __init__(self, like: Tensor, head_size: int) -> None:
        self.two = like.new_tensor(2.0)
        self.minus_one = like.new_tensor(-1.0)
        self.scale = like.new_tensor(1.0 / math.sqrt(head_size))


def _tanh(x: Tensor, c: _Constants) -> Tensor:
    """``tanh(x) = 2 sigmoid(2x) - 1``: on this CPU build ``torch.tanh`` of a ``[64, 4, 64]``
    float tensor takes ~45 us and this ~14 us (max difference 2e-7 for fp32)."""
    return torch.addcmul(c.minus_one, torch.sigmoid(x + x), c.two)


# ---------------------------------------------------------------------- attention
_FLASH_CPU = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)
_FLASH_CPU_BACKWARD = getattr(
    torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu_backward", None
)


def _attention_form(q: Tensor, keys: int) -> str:
    """How :func:`_attend` computes the attention of ``q [B, S, D]`` over ``keys`` keys.

    ``broadcast`` (broadcast products and sums) for few slots x keys; otherwise torch's CPU
    flash kernel and its backward (what ``scaled_dot_product_attention`` runs on CPU), or
    batched matmuls on other devices. Measured here (``B = 64``, ``D = 64``, 4 heads): with
    4 slots and 5 keys the broadcast form's forward + backward is ~2.4x faster than the
    matmuls'; with 14 keys they are about even, and from there the matmuls win (7x at 8 slots
    x 58 keys).
    """
    if q.shape[1] * keys <= 32:
        return "broadcast"
    if q.device.type == "cpu" and _FLASH_CPU is not None and _FLASH_CPU_BACKWARD is not None:
        return "flash"
    return "matmul"


def _attend(q: Tensor, k: Tensor, v: Tensor, key_bias: Tensor | None, heads: int):
    """Softmax attention per head; ``q`` comes already scaled by ``1 / sqrt(head_size)``.

    Shapes:
        q: ``[B, S, D]``; k, v: ``[B, J, D]``; key_bias: ``[B, J]`` (0 for keys to attend
        to, ``-inf`` for masked ones) or None -> out ``[B, S, D]`` and what the backward
        needs (the weights ``[B, S, J, H]`` or ``[B, H, S, J]``, or the flash kernel's output
        and log-sum-exp).
    """
    b, s, d = q.shape
    j, dh = k.shape[1], d // heads
    form = _attention_form(q, j)
    if form == "broadcast":
        logits = (q.unsqueeze(2) * k.unsqueeze(1)).view(b, s, j, heads, dh).sum(-1)
        if key_bias is not None:
            logits = logits + key_bias.view(b, 1, j, 1)
        weights = logits.softmax(2)
        out = (weights.unsqueeze(-1) * v.view(b, 1, j, heads, dh)).sum(2)
        return out.view(b, s, d), weights
    qh, kh, vh = (t.view(b, -1, heads, dh).transpose(1, 2) for t in (q, k, v))
    bias = None if key_bias is None else key_bias.view(b, 1, 1, j)
    if form == "flash":
        out, lse = _FLASH_CPU(qh, kh, vh, 0.0, False, attn_mask=bias, scale=1.0)
        return out.transpose(1, 2).reshape(b, s, d), (out, lse, bias)
    logits = torch.matmul(qh, kh.transpose(-1, -2))  # [B, H, S, J]
    if bias is not None:
        logits = logits + bias
    weights = logits.softmax(-1)
    return torch.matmul(weights, vh).transpose(1, 2).reshape(b, s, d), weights


def _attend_backward(
    d_out: Tensor, q: Tensor, k: Tensor, v: Tensor, saved, heads: int
) -> tuple[Tensor, Tensor, Tensor]:
    """Gradients of :func:`_attend` for (the scaled) ``q [B, S, D]``, ``k, v [B, J, D]``;
    ``saved`` is what :func:`_attend` returned beside its output."""
    b, s, d = q.shape
    j, dh = k.shape[1], d // heads
    form = _attention_form(q, j)
    if form == "broadcast":
        weights = saved
        d_out = d_out.view(b, s, 1, heads, dh)
        d_weights = (d_out * v.view(b, 1, j, heads, dh)).sum(-1)  # [B, S, J, H]
        d_v = (weights.unsqueeze(-1) * d_out).sum(1).view(b, j, d)
        d_logits = torch.ops.aten._softmax_backward_data(d_weights, weights, 2, weights.dtype)
        d_logits = d_logits.unsqueeze(-1)  # [B, S, J, H, 1]
        d_q = (d_logits * k.view(b, 1, j, heads, dh)).sum(2).view(b, s, d)
        d_k = (d_logits * q.view(b, s, 1, heads, dh)).sum(1).view(b, j, d)
        return d_q, d_k, d_v
    qh, kh, vh, d_oh = (t.view(b, -1, heads, dh).transpose(1, 2) for t in (q, k, v, d_out))
    if form == "flash":
        out, lse, bias = saved
        grads = _FLASH_CPU_BACKWARD(
            d_oh, qh, kh, vh, out, lse, 0.0, False, attn_mask=bias, scale=1.0
        )
    else:
        weights = saved
        d_weights = torch.matmul(d_oh, vh.transpose(-1, -2))  # [B, H, S, J]
        d_v = torch.matmul(weights.transpose(-1, -2), d_oh)
        d_logits = torch.ops.aten._softmax_backward_data(d_weights, weights, -1, weights.dtype)
        grads = (torch.matmul(d_logits, kh), torch.matmul(d_logits.transpose(-1, -2), qh), d_v)
    return tuple(t.transpose(1, 2).reshape(b, -1, d) for t in grads)


# ---------------------------------------------------------------------- one block
def _block_forward(
    x: Tensor, kv_in: Tensor, key_bias: Tensor | None, p: list[Tensor], spec: FusedSpec, i: int
):
    """One relational block on the slots ``x [B, S, D]``; returns ``(x2, saved)``.

    ``p`` is :func:`block_params` with the query rows of ``in_proj`` (weight and bias)
    already multiplied by ``1 / sqrt(head_size)``, so ``q`` arrives scaled."""
    b, s, d = x.shape
    in_w, in_b, out_w, out_b, ln1_w, ln1_b, fc1_w, fc1_b, fc2_w, fc2_b, ln2_w, ln2_b = p
    x2d = x.reshape(b * s, d)
    qkv = _linear(x2d, in_w, in_b).view(b, s, 3 * d)
    q = qkv[..., :d]
    kv = torch.cat([qkv[..., d:], kv_in], dim=1)  # [B, J, 2D]
    k, v = kv[..., :d], kv[..., d:]
    attended, weights = _attend(q, k, v, key_bias, spec.heads)
    a2d = attended.reshape(b * s, d)
    y1 = _linear(a2d, out_w, out_b, add=x2d)
    x1, mean1, rstd1 = torch.native_layer_norm(y1, [d], ln1_w, ln1_b, spec.eps1[i])
    hidden = _linear(x1, fc1_w, fc1_b, relu=True)
    y2 = _linear(hidden, fc2_w, fc2_b, add=x1)
    x2, mean2, rstd2 = torch.native_layer_norm(y2, [d], ln2_w, ln2_b, spec.eps2[i])
    saved = (x2d, q, k, v, weights, a2d, y1, mean1, rstd1, x1, hidden, y2, mean2, rstd2)
    return x2.view(b, s, d), saved


def _block_backward(
    d_x2: Tensor,
    saved,
    p: list[Tensor],
    transposed: list[Tensor],
    g: list[Tensor],
    spec: FusedSpec,
    c: _Constants,
):
    """Backward of one block: returns ``d_x [B, S, D]`` and ``d_kv_in [B, K, 2D]``, and adds
    the parameter gradients into ``g`` (in :func:`block_params` order; the four linear biases'
    entries are ``[B * S, out]`` row accumulators, summed once after the last step).

    Weight gradients are accumulated step by step (``addmm_``) rather than in one matmul over
    all steps: concatenating the steps' activations costs more memory traffic than it saves.
    ``transposed`` holds the block's four weights transposed (contiguous), made once per
    backward.
    """
    x2d, q, k, v, weights, a2d, y1, mean1, rstd1, x1, hidden, y2, mean2, rstd2 = saved
    ln1_w, ln1_b, ln2_w, ln2_b = p[4], p[5], p[10], p[11]
    in_wt, out_wt, fc1_wt, fc2_wt = transposed
    b, s, d = q.shape
    all_three = [True, True, True]
    d_y2, d_ln2_w, d_ln2_b = torch.ops.aten.native_layer_norm_backward(
        d_x2.reshape(b * s, d), y2, [d], mean2, rstd2, ln2_w, ln2_b, all_three
    )
    g[10].add_(d_ln2_w)
    g[11].add_(d_ln2_b)
    # y2 = x1 + fc2(relu(fc1(x1)))
    g[8].addmm_(d_y2.t(), hidden)
    g[9].add_(d_y2)
    d_hidden = torch.ops.aten.threshold_backward(_linear(d_y2, fc2_wt), hidden, 0)
    g[6].addmm_(d_hidden.t(), x1)
    g[7].add_(d_hidden)
    d_x1 = _linear(d_hidden, fc1_wt, add=d_y2)
    d_y1, d_ln1_w, d_ln1_b = torch.ops.aten.native_layer_norm_backward(
        d_x1, y1, [d], mean1, rstd1, ln1_w, ln1_b, all_three
    )
    g[4].add_(d_ln1_w)
    g[5].add_(d_ln1_b)
    # y1 = x + out_proj(attended)
    g[2].addmm_(d_y1.t(), a2d)
    g[3].add_(d_y1)
    d_attended = _linear(d_y1, out_wt)
    d_q, d_k, d_v = _attend_backward(d_attended.view(b, s, d), q, k, v, weights, spec.heads)
    d_q = d_q * c.scale  # q was scaled inside the projection
    # qkv = in_proj(x): q from the slots, and the slots' own keys and values
    d_qkv = torch.cat([d_q, d_k[:, :s], d_v[:, :s]], dim=-1).reshape(b * s, 3 * d)
    d_kv_in = torch.cat([d_k[:, s:], d_v[:, s:]], dim=-1)
    g[0].addmm_(d_qkv.t(), x2d)
    g[1].add_(d_qkv)
    d_x = _linear(d_qkv, in_wt, add=d_y1)
    return d_x.view(b, s, d), d_kv_in


# ---------------------------------------------------------------------- one step
def _step_forward(
    memory: Tensor,
    kv_ins: list[Tensor],
    key_bias: Tensor | None,
    gate_row: Tensor | None,
    start: Tensor | None,
    init: Tensor | None,
    per_block: list[list[Tensor]],
    gate_w: Tensor | None,
    gate_b: Tensor | None,
    spec: FusedSpec,
    c: _Constants,
):
    """One step: ``memory [B, S, D]`` -> ``(next memory, what the backward needs)``.

    ``kv_ins``: per block the inputs' keys and values ``[B, K, 2D]``; ``gate_row``: the
    inputs' gate terms per slot row ``[B * S, 2G]``; ``start``: ``[B, 1, 1]`` bool, reset to
    ``init [S, D]`` first where set.
    """
    if start is not None:
        memory = torch.where(start, init, memory)
    candidate, blocks_saved = memory, []
    for i in range(spec.num_blocks):
        candidate, block_saved = _block_forward(
            candidate, kv_ins[i], key_bias, per_block[i], spec, i
        )
        blocks_saved.append(block_saved)
    if not spec.gated:
        return candidate, (memory, blocks_saved, None, None, None)
    b, s, d = memory.shape
    tanh_memory = _tanh(memory, c)
    pre = _linear(tanh_memory.reshape(b * s, d), gate_w, gate_b, add=gate_row)
    gates = torch.sigmoid(pre).view(b, s, -1)
    input_gate, forget_gate = gates.chunk(2, dim=-1)
    tanh_candidate = _tanh(candidate, c)
    new_memory = torch.addcmul(forget_gate * memory, input_gate, tanh_candidate)
    return new_memory, (memory, blocks_saved, tanh_memory, gates, tanh_candidate)


def _step_backward(
    d_memory: Tensor,
    step_saved,
    per_block: list[list[Tensor]],
    transposed: list[list[Tensor]],
    block_grads: list[list[Tensor]],
    gate_wt: Tensor | None,
    gate_grads: list[Tensor],
    spec: FusedSpec,
    c: _Constants,
):
    """Backward of :func:`_step_forward` from ``d_memory [B, S, D]`` (the next memory's
    gradient): ``(gradient of the step's (reset) memory, per block d_kv_in [B, K, 2D], the
    inputs' gate-term gradient [B, 2G] or None)``; adds parameter gradients in place."""
    memory, blocks_saved, tanh_memory, gates, tanh_candidate = step_saved
    b, s, d = memory.shape
    d_gate, d_prev = None, None
    if spec.gated:
        input_gate, forget_gate = gates.chunk(2, dim=-1)
        d_input = d_memory * tanh_candidate
        d_forget = d_memory * memory
        if input_gate.shape[-1] == 1:  # gate_style "memory": one gate per slot
            d_input = d_input.sum(-1, keepdim=True)
            d_forget = d_forget.sum(-1, keepdim=True)
        d_pre = torch.ops.aten.sigmoid_backward(torch.cat([d_input, d_forget], -1), gates)
        d_gate = d_pre.sum(1)
        d_pre2d = d_pre.reshape(b * s, -1)
        gate_grads[0].addmm_(d_pre2d.t(), tanh_memory.reshape(b * s, d))
        gate_grads[1].add_(d_pre2d)
        d_tanh_memory = _linear(d_pre2d, gate_wt).view(b, s, d)
        d_candidate = torch.ops.aten.tanh_backward(d_memory * input_gate, tanh_candidate)
        d_prev = torch.addcmul(
            torch.ops.aten.tanh_backward(d_tanh_memory, tanh_memory), d_memory, forget_gate
        )
    else:
        d_candidate = d_memory
    d_kvs = [None] * spec.num_blocks
    for i in reversed(range(spec.num_blocks)):
        d_candidate, d_kvs[i] = _block_backward(
            d_candidate, blocks_saved[i], per_block[i], transposed[i], block_grads[i], spec, c
        )
    # block 0 read the (reset) memory, and so did the gates
    return (d_candidate if d_prev is None else d_prev + d_candidate), d_kvs, d_gate


# ---------------------------------------------------------------------- compiled steps
class _CompiledStep:
    """A step function through ``torch.compile`` (inductor: its CPU kernels fuse the
    elementwise ops and skip the per-op Python dispatch), falling back to the eager function
    for good, with one warning, if compiling fails (e.g. no C++ compiler on the machine)."""

    def __init__(self, fn: Callable) -> None:
        self.eager = fn
        self.compiled = torch.compile(fn, dynamic=False)
        self.failed = False

    def __call__(self, *args):
        if not self.failed:
            try:
                return self.compiled(*args)
            except Exception as error:  # any compile failure: run eagerly
                self.failed = True
                first_line = (str(error).strip().splitlines() or [""])[0][:200]
                warnings.warn(
                    f"RelationalMemoryCore(compile_steps=True): torch.compile failed "
                    f"({type(error).__name__}: {first_line}); the fused steps run eagerly",
                    RuntimeWarning,
                    stacklevel=2,
                )
        return self.eager(*args)


@functools.cache
def _compiled_steps() -> tuple[_CompiledStep, _CompiledStep]:
    """The compiled forward and backward step, made once per process (shapes and the
    :class:`FusedSpec` constants are guards: a new batch size compiles again)."""
    return _CompiledStep(_step_forward), _CompiledStep(_step_backward)


def _steps(spec: FusedSpec) -> tuple[Callable, Callable]:
    """The forward and backward step functions ``spec`` asks for."""
    return _compiled_steps() if spec.compiled else (_step_forward, _step_backward)


# ---------------------------------------------------------------------- the recurrence
def _split_params(params, spec: FusedSpec) -> tuple[list[list[Tensor]], list[Tensor]]:
    """Per block the 12 tensors of :func:`block_params`, and the memory gate's weight and bias
    (empty when ungated)."""
    per_block = [
        list(params[i * _BLOCK_PARAMS : (i + 1) * _BLOCK_PARAMS]) for i in range(spec.num_blocks)
    ]
    return per_block, list(params[spec.num_blocks * _BLOCK_PARAMS :])


def forward_steps(memory, kvs, gate_x, keep, starts, init, params, spec, save: bool):
    """Run the recurrence; returns ``(outputs [T, B, S*D], memory, per-step saved)``."""
    steps = kvs[0].shape[0]
    per_block, gate_params = _split_params(params, spec)
    gate_w, gate_b = gate_params if spec.gated else (None, None)
    b, s, d = memory.shape
    c = _Constants(memory, d // spec.heads)
    for p in per_block:  # fold the attention's 1 / sqrt(head_size) into the query rows
        p[0] = torch.cat([p[0][:d] * c.scale, p[0][d:]])
        p[1] = torch.cat([p[1][:d] * c.scale, p[1][d:]])
    # Per-step views made once (unbind) rather than one indexing op per step and tensor.
    kv_steps = list(zip(*(kv.unbind(0) for kv in kvs)))
    none = [None] * steps
    if keep is None:
        bias_steps = none
    else:  # additive: 0 for keys to attend to, -inf for masked ones
        bias = torch.zeros(keep.shape, dtype=memory.dtype, device=memory.device)
        bias_steps = bias.masked_fill_(~keep, float("-inf")).unbind(0)
    start_steps = none if starts is None else starts.view(steps, b, 1, 1).unbind(0)
    gate_steps = none
    if spec.gated:  # the inputs' gate terms per slot row, for all steps in one copy
        gate_steps = gate_x.unsqueeze(2).expand(-1, -1, s, -1).reshape(steps, b * s, -1).unbind(0)
    outputs, saved = [], []
    step_forward = _steps(spec)[0]
    for t in range(steps):
        memory, step_saved = step_forward(
            memory,
            kv_steps[t],
            bias_steps[t],
            gate_steps[t],
            start_steps[t],
            init,
            per_block,
            gate_w,
            gate_b,
            spec,
            c,
        )
        if save:
            saved.append(step_saved)
        outputs.append(memory.reshape(b, s * d))
    return torch.stack(outputs), memory, saved


class _FusedUnroll(torch.autograd.Function):
    @staticmethod
    def forward(ctx, spec, memory, starts, keep, init, gate_x, *tensors):
        kvs, params = list(tensors[: spec.num_blocks]), tensors[spec.num_blocks :]
        outputs, memory_out, saved = forward_steps(
            memory, kvs, gate_x, keep, starts, init, params, spec, save=True
        )
        ctx.spec = spec
        ctx.saved = saved
        ctx.starts = starts
        ctx.save_for_backward(*params)
        return outputs, memory_out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, d_outputs, d_memory_out):
        if ctx.saved is None:
            raise RuntimeError(
                "the fused RMC unroll's backward ran twice (retain_graph); build the core "
                "with fused=False to backpropagate through the same graph more than once"
            )
        spec, saved, params = ctx.spec, ctx.saved, ctx.saved_tensors
        steps = len(saved)
        memory0 = saved[0][0]
        b, s, d = memory0.shape
        c = _Constants(memory0, d // spec.heads)
        per_block, gate_params = _split_params(params, spec)
        transposed = [[block[i].t().contiguous() for i in (0, 2, 6, 8)] for block in per_block]
        gate_wt = gate_params[0].t().contiguous() if spec.gated else None
        # Linear biases get [B * S, out] row accumulators: one add per step, one sum at the end.
        biases = [i * _BLOCK_PARAMS + j for i in range(spec.num_blocks) for j in (1, 3, 7, 9)]
        biases += [len(params) - 1] if spec.gated else []
        grads = [
            p.new_zeros(b * s, p.numel()) if i in biases else torch.zeros_like(p)
            for i, p in enumerate(params)
        ]
        block_grads, gate_grads = _split_params(grads, spec)
        # (nothing below writes into d_memory in place, so the incoming gradient is not copied)
        d_memory = torch.zeros_like(memory0) if d_memory_out is None else d_memory_out
        d_out_steps = None if d_outputs is None else d_outputs.view(steps, b, s, d).unbind(0)
        carry_steps = None  # where an episode starts, no gradient flows to the step before
        if ctx.starts is not None:
            carry_steps = (~ctx.starts).to(memory0.dtype).view(steps, b, 1, 1).unbind(0)
        d_kv_steps, d_gate_steps = [], []
        step_backward = _steps(spec)[1]
        for t in reversed(range(steps)):  # the recurrence, last step first
            if d_out_steps is not None:
                d_memory = d_memory + d_out_steps[t]
            d_memory, d_kvs, d_gate = step_backward(
                d_memory, saved[t], per_block, transposed, block_grads, gate_wt, gate_grads, spec, c
            )
            if carry_steps is not None:
                d_memory = d_memory * carry_steps[t]
            d_kv_steps.append(d_kvs)
            d_gate_steps.append(d_gate)
        grads = [g.sum(0) if i in biases else g for i, g in enumerate(grads)]
        d_kvs = [torch.stack(block[::-1]) for block in zip(*d_kv_steps)]
        d_gate_x = torch.stack(d_gate_steps[::-1]) if spec.gated else None
        ctx.saved = None
        return (None, d_memory, None, None, None, d_gate_x, *d_kvs, *grads)


def fused_unroll(
    spec: FusedSpec,
    memory: Tensor,
    kvs: list[Tensor],
    gate_x: Tensor | None,
    params: list[Tensor],
    starts: Tensor | None = None,
    keep: Tensor | None = None,
    init: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Unroll the RMC recurrence as one autograd node.

    Args:
        spec: Heads, blocks, whether gated, layer norm eps.
        memory: ``[B, S, D]`` the state before step 0.
        kvs: Per block, the inputs' keys and values ``[T, B, K, 2D]``.
        gate_x: ``[T, B, 2G]`` the inputs' gate terms (biases folded in), or None (ungated).
        params: Per block the 12 tensors of :data:`_BLOCK_PARAMS`, then the memory gate's
            weight ``[2G, D]`` and bias when gated.
        starts: ``[T, B]`` bool, reset to ``init`` before step ``t`` where set.
        keep: ``[T, B, S + K]`` bool: which keys each step may attend to.
        init: ``[S, D]`` the reset memory (needed with ``starts``).

    Returns:
        ``(outputs [T, B, S * D], memory [B, S, D])``.
    """
    if gate_x is None:
        gate_x = memory.new_zeros(0)
    outputs, memory = _FusedUnroll.apply(spec, memory, starts, keep, init, gate_x, *kvs, *params)
    return outputs, memory


def block_params(block) -> list[Tensor]:
    """The 12 tensors of one :class:`AttentionLayer` block, in the fused unroll's order."""
    fc1, fc2 = block.mlp[0], block.mlp[2]
    return [
        block.in_proj.weight,
        block.in_proj.bias,
        block.out_proj.weight,
        block.out_proj.bias,
        block.norm1.weight,
        block.norm1.bias,
        fc1.weight,
        fc1.bias,
        fc2.weight,
        fc2.bias,
        block.norm2.weight,
        block.norm2.bias,
    ]


def supports(block) -> bool:
    """Whether the fused unroll computes exactly what ``RelationalMemoryCore._block`` does
    with this block: an MLP of two linears around a ReLU, affine layer norms."""
    mlp = block.mlp
    return (
        mlp is not None
        and len(mlp) == 3
        and isinstance(mlp[1], torch.nn.ReLU)
        and block.norm1.elementwise_affine
        and block.norm2.elementwise_affine
    )

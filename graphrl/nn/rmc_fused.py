"""The Relational Memory Core's unroll as one autograd node, with a hand-written backward.

Autograd records ~40 nodes per RMC step (projections, the attention, two layer norms, the
MLP, the gates), and on CPU at the sizes a recurrent agent uses (``B * S`` rows of width
``D ~ 64``) the engine's bookkeeping and the small kernels' fixed cost weigh as much as the
arithmetic. Here the forward runs the recurrence without building a graph, keeps what the
backward needs, and the backward walks the steps in reverse with the matching formulas,
accumulating each weight's gradient in place. The maths is exactly
:meth:`graphrl.nn.rmc.RelationalMemoryCore._update` (one or more post-norm
:class:`graphrl.nn.attention.AttentionLayer` blocks with keys and values from
``[memory; inputs]``, then the gates); ``tests/nn/test_rmc_fused.py`` checks outputs and every
gradient against autograd through the per-step path.

The attention is written out on ``[B, S, J, H]`` logits (``J = S + K`` keys) with broadcast
products rather than ``scaled_dot_product_attention`` or batched matmuls: with a handful of
slots and keys per head both of those cost more in per-call overhead than the arithmetic.

Not covered: double backward, and blocks without an MLP (the core then records every step
with autograd).
"""

from __future__ import annotations

import math
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
def _broadcast_attention(slots: int, keys: int) -> bool:
    """Whether :func:`_attend` uses broadcast products (few slots x keys) or batched matmuls.

    Measured here (``B = 64``, ``D = 64``, 4 heads): with 4 slots and 5 keys the broadcast
    form's forward + backward is ~2.4x faster than the matmuls'; with 14 keys they are about
    even and from there the matmuls win (7x at 8 slots x 58 keys).
    """
    return slots * keys <= 32


def _attend(q: Tensor, k: Tensor, v: Tensor, keep: Tensor | None, heads: int):
    """Softmax attention per head; ``q`` comes already scaled by ``1 / sqrt(head_size)``.

    Shapes:
        q: ``[B, S, D]``; k, v: ``[B, J, D]``; keep: ``[B, J]`` bool or None
        -> out ``[B, S, D]``, weights ``[B, S, J, H]`` (broadcast form) or ``[B, H, S, J]``.
    """
    b, s, d = q.shape
    j, dh = k.shape[1], d // heads
    if _broadcast_attention(s, j):
        logits = (q.unsqueeze(2) * k.unsqueeze(1)).view(b, s, j, heads, dh).sum(-1)
        if keep is not None:
            logits = logits.masked_fill(~keep[:, None, :, None], float("-inf"))
        weights = logits.softmax(2)
        out = (weights.unsqueeze(-1) * v.view(b, 1, j, heads, dh)).sum(2)
        return out.view(b, s, d), weights
    qh, kh, vh = (t.view(b, -1, heads, dh).transpose(1, 2) for t in (q, k, v))
    logits = torch.matmul(qh, kh.transpose(-1, -2))  # [B, H, S, J]
    if keep is not None:
        logits = logits.masked_fill(~keep[:, None, None, :], float("-inf"))
    weights = logits.softmax(-1)
    return torch.matmul(weights, vh).transpose(1, 2).reshape(b, s, d), weights


def _attend_backward(
    d_out: Tensor, q: Tensor, k: Tensor, v: Tensor, weights: Tensor, heads: int
) -> tuple[Tensor, Tensor, Tensor]:
    """Gradients of :func:`_attend` for (the scaled) ``q [B, S, D]``, ``k, v [B, J, D]``."""
    b, s, d = q.shape
    j, dh = k.shape[1], d // heads
    if _broadcast_attention(s, j):
        d_out = d_out.view(b, s, 1, heads, dh)
        d_weights = (d_out * v.view(b, 1, j, heads, dh)).sum(-1)  # [B, S, J, H]
        d_v = (weights.unsqueeze(-1) * d_out).sum(1).view(b, j, d)
        d_logits = torch.ops.aten._softmax_backward_data(d_weights, weights, 2, weights.dtype)
        d_logits = d_logits.unsqueeze(-1)  # [B, S, J, H, 1]
        d_q = (d_logits * k.view(b, 1, j, heads, dh)).sum(2).view(b, s, d)
        d_k = (d_logits * q.view(b, s, 1, heads, dh)).sum(1).view(b, j, d)
        return d_q, d_k, d_v
    qh, kh, vh, d_oh = (t.view(b, -1, heads, dh).transpose(1, 2) for t in (q, k, v, d_out))
    d_weights = torch.matmul(d_oh, vh.transpose(-1, -2))  # [B, H, S, J]
    d_v = torch.matmul(weights.transpose(-1, -2), d_oh)
    d_logits = torch.ops.aten._softmax_backward_data(d_weights, weights, -1, weights.dtype)
    d_q = torch.matmul(d_logits, kh)
    d_k = torch.matmul(d_logits.transpose(-1, -2), qh)
    return tuple(t.transpose(1, 2).reshape(b, -1, d) for t in (d_q, d_k, d_v))


# ---------------------------------------------------------------------- one block
def _block_forward(x: Tensor, kv_in: Tensor, keep: Tensor | None, p: list[Tensor], spec, i):
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
    attended, weights = _attend(q, k, v, keep, spec.heads)
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


# ---------------------------------------------------------------------- the recurrence
def forward_steps(memory, kvs, gate_x, keep, starts, init, params, spec, save: bool):
    """Run the recurrence; returns ``(outputs [T, B, S*D], memory, per-step saved)``."""
    steps = kvs[0].shape[0]
    per_block = [
        list(params[i * _BLOCK_PARAMS : (i + 1) * _BLOCK_PARAMS]) for i in range(spec.num_blocks)
    ]
    gate_w, gate_b = params[spec.num_blocks * _BLOCK_PARAMS :] if spec.gated else (None, None)
    outputs, saved = [], []
    b, s, d = memory.shape
    c = _Constants(memory, d // spec.heads)
    if spec.gated:  # the inputs' gate terms per slot row, for all steps in one copy
        gate_rows = gate_x.unsqueeze(2).expand(-1, -1, s, -1).reshape(steps, b * s, -1)
    for p in per_block:  # fold the attention's 1 / sqrt(head_size) into the query rows
        p[0] = torch.cat([p[0][:d] * c.scale, p[0][d:]])
        p[1] = torch.cat([p[1][:d] * c.scale, p[1][d:]])
    for t in range(steps):
        if starts is not None:
            memory = torch.where(starts[t].view(b, 1, 1), init, memory)
        keep_t = None if keep is None else keep[t]
        candidate, blocks_saved = memory, []
        for i in range(spec.num_blocks):
            candidate, block_saved = _block_forward(
                candidate, kvs[i][t], keep_t, per_block[i], spec, i
            )
            blocks_saved.append(block_saved)
        if spec.gated:
            tanh_memory = _tanh(memory, c)
            pre = _linear(tanh_memory.reshape(b * s, d), gate_w, gate_b, add=gate_rows[t])
            gates = torch.sigmoid(pre).view(b, s, -1)
            input_gate, forget_gate = gates.chunk(2, dim=-1)
            tanh_candidate = _tanh(candidate, c)
            new_memory = torch.addcmul(forget_gate * memory, input_gate, tanh_candidate)
            step_saved = (memory, blocks_saved, tanh_memory, gates, tanh_candidate)
        else:
            new_memory = candidate
            step_saved = (memory, blocks_saved, None, None, None)
        if save:
            saved.append(step_saved)
        memory = new_memory
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
        ctx.kv_shapes = [kv.shape for kv in kvs]
        ctx.save_for_backward(*params)
        ctx.mark_non_differentiable()
        return outputs, memory_out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, d_outputs, d_memory_out):
        spec, saved, params = ctx.spec, ctx.saved, ctx.saved_tensors
        steps = len(saved)
        memory0 = saved[0][0]
        b, s, d = memory0.shape
        c = _Constants(memory0, d // spec.heads)
        per_block = [
            list(params[i * _BLOCK_PARAMS : (i + 1) * _BLOCK_PARAMS])
            for i in range(spec.num_blocks)
        ]
        transposed = [[block[i].t().contiguous() for i in (0, 2, 6, 8)] for block in per_block]
        if spec.gated:
            gate_wt = params[-2].t().contiguous()
        # Linear biases get [B * S, out] row accumulators: one add per step, one sum at the end.
        biases = [i * _BLOCK_PARAMS + j for i in range(spec.num_blocks) for j in (1, 3, 7, 9)]
        biases += [len(params) - 1] if spec.gated else []
        grads = [
            p.new_zeros(b * s, p.numel()) if i in biases else torch.zeros_like(p)
            for i, p in enumerate(params)
        ]
        block_grads = [
            grads[i * _BLOCK_PARAMS : (i + 1) * _BLOCK_PARAMS] for i in range(spec.num_blocks)
        ]
        d_memory = torch.zeros_like(memory0) if d_memory_out is None else d_memory_out.clone()
        d_kv_steps: list[list[Tensor]] = [[] for _ in range(spec.num_blocks)]
        d_gate_steps = []
        # The recurrence, last step first.
        for t in reversed(range(steps)):
            memory, blocks_saved, tanh_memory, gates, tanh_candidate = saved[t]
            if d_outputs is not None:
                d_memory = d_memory + d_outputs[t].view(b, s, d)
            if spec.gated:
                input_gate, forget_gate = gates.chunk(2, dim=-1)
                d_input = d_memory * tanh_candidate
                d_forget = d_memory * memory
                if input_gate.shape[-1] == 1:  # gate_style "memory": one gate per slot
                    d_input = d_input.sum(-1, keepdim=True)
                    d_forget = d_forget.sum(-1, keepdim=True)
                d_pre = torch.ops.aten.sigmoid_backward(torch.cat([d_input, d_forget], -1), gates)
                d_gate_steps.append(d_pre.sum(1))
                d_pre2d = d_pre.reshape(b * s, -1)
                grads[-2].addmm_(d_pre2d.t(), tanh_memory.reshape(b * s, d))
                grads[-1].add_(d_pre2d)
                d_tanh_memory = _linear(d_pre2d, gate_wt).view(b, s, d)
                d_candidate = torch.ops.aten.tanh_backward(d_memory * input_gate, tanh_candidate)
                d_prev = torch.addcmul(
                    torch.ops.aten.tanh_backward(d_tanh_memory, tanh_memory), d_memory, forget_gate
                )
            else:
                d_candidate, d_prev = d_memory, torch.zeros_like(d_memory)
            for i in reversed(range(spec.num_blocks)):
                d_candidate, d_kv = _block_backward(
                    d_candidate,
                    blocks_saved[i],
                    per_block[i],
                    transposed[i],
                    block_grads[i],
                    spec,
                    c,
                )
                d_kv_steps[i].append(d_kv)
            d_memory = d_prev + d_candidate  # block 0 read the (reset) memory
            if ctx.starts is not None:
                d_memory = d_memory.masked_fill(ctx.starts[t].view(b, 1, 1), 0.0)
        grads = [g.sum(0) if i in biases else g for i, g in enumerate(grads)]
        d_kvs = [torch.stack(steps_[::-1]) for steps_ in d_kv_steps]
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

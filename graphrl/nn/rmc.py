"""Relational Memory Core (Santoro et al., 2018): memory slots that attend over themselves and
the new input, gated like an LSTM.

The attention step is this project's :class:`AttentionLayer` block (its parameters, its
residuals and layer norms) with the queries restricted to the ``S`` memory slots and the keys
and values taken from ``[memory; inputs]``: on the ``memory`` topology (slots receive from
every slot and every input, inputs receive nothing) that is exactly the layer's output on the
slots. Run this way a step is one batched ``scaled_dot_product_attention`` with no graph
object built, and an unroll projects all the inputs of the sequence (their keys, values and
gate terms) in one matmul before the recurrence. The recurrence runs one step per time step
with autograd; ``compile_steps=True`` puts the whole recurrence through ``torch.compile``
(public APIs only: no hand-written backward, nothing that depends on torch's private
operators).

The input of a step is one vector (the paper) or a *set* of ``K`` entity vectors with a mask
(what an entity agent sees); the gates read the masked mean of the projected inputs.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from graphrl.nn.attention import AttentionLayer
from graphrl.nn.recurrent import CORES, RecurrentCore, State

GATE_STYLES = ("unit", "memory", "none")

__all__ = ["GATE_STYLES", "RelationalMemoryCore"]


@CORES.register("rmc")
class RelationalMemoryCore(RecurrentCore):
    r"""One step: :math:`\tilde M = g_\theta(\mathrm{MHDPA}(M, [M; x]))` (``num_blocks`` relational
    blocks, residual and layer norm inside), then LSTM-style gates

    .. math::
        i, f = \sigma(W \bar x + U \tanh M + b), \qquad M' = i \odot \tanh \tilde M + f \odot M

    with :math:`\bar x` the (masked mean of the) projected input(s). Every block's keys and
    values come from the current slots and the projected inputs.

    Args:
        input_size: Width of each input vector (or input entity).
        mem_slots: Number of memory slots ``S``.
        head_size: Width per head; the slot width is ``D = heads * head_size``.
        heads: Attention heads.
        num_blocks: Attention + MLP blocks per step (parameters shared across steps).
        gate_style: ``unit`` (a gate per slot unit), ``memory`` (one per slot) or ``none``.
        forget_bias: Added to the forget gate's pre-activation (remember by default).
        input_bias: Added to the input gate's pre-activation.
        compile_steps: Run the recurrence of :meth:`unroll` (all its steps) through
            ``torch.compile``: forward and backward each become one generated kernel sequence.
            Needs a C++ compiler on CPU; each new sequence length and batch size compiles once;
            falls back to eager with a warning if compiling fails. The numbers agree with
            eager to float rounding.

    Shapes:
        x: ``[B, input_size]`` or a set ``[B, K, input_size]`` with mask ``[B, K]``;
        memory: ``[B, S, D]`` -> output ``[B, S * D]``, memory ``[B, S, D]``.
    """

    takes_sets = True
    returns_attention = True  # frame_attention: what the slots attended to

    def __init__(
        self,
        input_size: int,
        mem_slots: int = 4,
        head_size: int = 32,
        heads: int = 4,
        num_blocks: int = 1,
        gate_style: str = "unit",
        forget_bias: float = 1.0,
        input_bias: float = 0.0,
        compile_steps: bool = False,
    ) -> None:
        super().__init__()
        if gate_style not in GATE_STYLES:
            raise ValueError(
                f"unknown gate_style {gate_style!r}; choose one of: {', '.join(GATE_STYLES)}"
            )
        if mem_slots < 1 or num_blocks < 1:
            raise ValueError("RelationalMemoryCore needs mem_slots >= 1 and num_blocks >= 1")
        self.input_size = input_size
        self.mem_slots = mem_slots
        self.mem_size = heads * head_size
        self.heads = heads
        self.head_size = head_size
        self.gate_style = gate_style
        self.forget_bias = forget_bias
        self.input_bias = input_bias
        self.compile_steps = compile_steps
        self._compiled: Callable[..., tuple[Tensor, Tensor]] | None = None
        self.input_proj = nn.Linear(input_size, self.mem_size)
        self.blocks = nn.ModuleList(
            [AttentionLayer(self.mem_size, heads=heads) for _ in range(num_blocks)]
        )
        if gate_style != "none":
            gates = self.mem_size if gate_style == "unit" else 1
            self.gate_input = nn.Linear(self.mem_size, 2 * gates)
            self.gate_memory = nn.Linear(self.mem_size, 2 * gates)

    @property
    def output_size(self) -> int:  # type: ignore[override]
        """``S * D``: the flattened memory."""
        return self.mem_slots * self.mem_size

    def initial_state(self, batch_size: int, device: torch.device | None = None) -> State:
        """The paper's initial memory: an identity matrix, padded or cut to ``([B, S, D],)``."""
        eye = torch.eye(self.mem_slots, device=device)
        if self.mem_size > self.mem_slots:
            eye = F.pad(eye, (0, self.mem_size - self.mem_slots))
        else:
            eye = eye[:, : self.mem_size]
        return (eye.expand(batch_size, -1, -1).clone(),)

    # ------------------------------------------------------------------ input side
    def _as_set(self, x: Tensor, mask: Tensor | None, lead: int) -> tuple[Tensor, Tensor | None]:
        """Check ``x`` and view a single vector per row as a set of one (``K = 1``)."""
        if x.dim() == lead + 1:
            x = x.unsqueeze(-2)
        if x.dim() != lead + 2 or x.shape[-1] != self.input_size:
            raise ValueError(
                f"RelationalMemoryCore expects x [B, {self.input_size}] or a set "
                f"[B, K, {self.input_size}], got {tuple(x.shape)}"
            )
        if mask is not None and mask.shape != x.shape[:-1]:
            raise ValueError(
                f"RelationalMemoryCore mask must be {tuple(x.shape[:-1])}, got {tuple(mask.shape)}"
            )
        return x, mask

    def _project_inputs(self, inputs: Tensor, mask: Tensor | None) -> tuple[list[Tensor], Tensor]:
        """Per-block keys/values ``[..., K, 2D]`` and the gate term ``[..., 2G]`` of inputs."""
        kvs = []
        d = self.mem_size
        for block in self.blocks:
            w, b = block.in_proj.weight, block.in_proj.bias
            kvs.append(F.linear(inputs, w[d:], b[d:]))
        if self.gate_style == "none":
            return kvs, inputs.new_zeros(0)
        if mask is None:
            pooled = inputs.mean(-2)
        else:
            weights = mask.to(inputs.dtype).unsqueeze(-1)
            pooled = (inputs * weights).sum(-2) / weights.sum(-2).clamp(min=1.0)
        # The constant gate biases are folded in here, once per sequence, not once per step.
        gates = self.gate_input(pooled)
        bias = gates.new_tensor([self.input_bias, self.forget_bias])
        return kvs, gates + bias.repeat_interleave(gates.shape[-1] // 2)

    # ------------------------------------------------------------------ memory side
    def _block(
        self,
        block: AttentionLayer,
        memory: Tensor,
        kv_in: Tensor,
        mask: Tensor | None,
        weights_out: list[Tensor] | None = None,
    ):
        """One relational block on the slots ``[B, S, D]``; input keys/values ``[B, K, 2D]``.

        With ``weights_out`` the attention ``[B, H, S, S + K]`` is computed explicitly and
        appended to it (the same output; for pictures, not for training speed).
        """
        b, s, d = memory.shape
        h, dh = self.heads, self.head_size
        qkv = block.in_proj(memory)  # [B, S, 3D]: q from the slots, k/v of the slots
        q = qkv[..., :d].reshape(b, s, h, dh).transpose(1, 2)
        kv = torch.cat([qkv[..., d:], kv_in], dim=1)  # [B, S + K, 2D]
        k, v = kv.reshape(b, -1, 2, h, dh).permute(2, 0, 3, 1, 4)  # 2 x [B, H, S + K, dh]
        attn_mask = None
        if mask is not None:
            keep = torch.cat([mask.new_ones(b, s), mask.bool()], dim=1)
            attn_mask = keep[:, None, None, :]
        if weights_out is None:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
        else:
            logits = q @ k.transpose(-2, -1) / dh**0.5  # [B, H, S, S + K]
            if attn_mask is not None:
                logits = logits.masked_fill(~attn_mask, float("-inf"))
            weights = logits.softmax(-1)
            weights_out.append(weights)
            out = weights @ v
        out = block.out_proj(out.transpose(1, 2).reshape(b, s, d))
        x = block.norm1(memory + out)
        if block.mlp is not None:
            x = block.norm2(x + block.mlp(x))
        return x

    def _update(
        self,
        memory: Tensor,
        kvs: list[Tensor],
        gate_x: Tensor,
        mask: Tensor | None,
        weights_out: list[Tensor] | None = None,
    ) -> Tensor:
        """The next memory ``[B, S, D]`` from projected inputs (each block's attention appended
        to ``weights_out`` when given)."""
        candidate = memory
        for block, kv_in in zip(self.blocks, kvs):
            candidate = self._block(block, candidate, kv_in, mask, weights_out)
        if self.gate_style == "none":
            return candidate
        # One matmul for both gates (input and forget), the input side precomputed.
        gates = torch.sigmoid(gate_x.unsqueeze(1) + self.gate_memory(torch.tanh(memory)))
        input_gate, forget_gate = gates.chunk(2, dim=-1)
        return torch.addcmul(forget_gate * memory, input_gate, torch.tanh(candidate))

    def attend(self, memory: Tensor, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """Slots attend over ``[memory; inputs]`` (inputs already projected to ``D``).

        Shapes:
            memory ``[B, S, D]``, x ``[B, D]`` or ``[B, K, D]`` -> ``[B, S, D]``.
        """
        inputs = x.unsqueeze(1) if x.dim() == 2 else x
        kvs, _ = self._project_inputs(inputs, mask)
        candidate = memory
        for block, kv_in in zip(self.blocks, kvs):
            candidate = self._block(block, candidate, kv_in, mask)
        return candidate

    def step_with_attention(
        self, x: Tensor, state: State, mask: Tensor | None = None
    ) -> tuple[Tensor, State, Tensor]:
        """:meth:`step`, also returning what the slots attended to.

        Returns:
            ``(output, state, weights [B, num_blocks, H, S, S + K])``: ``[b, l, h, s, j]`` is
            how much slot ``s`` attends to key ``j`` in block ``l``, head ``h``; keys ``j < S``
            are the slots, ``j >= S`` the ``K`` inputs (zero where ``mask`` is False).
        """
        x, mask = self._as_set(x, mask, lead=1)
        inputs = self.input_proj(x)
        kvs, gate_x = self._project_inputs(inputs, mask)
        weights: list[Tensor] = []
        memory = self._update(state[0], kvs, gate_x, mask, weights)
        return memory.flatten(1), (memory,), torch.stack(weights, 1)

    def frame_attention(
        self, x: Tensor, state: State, mask: Tensor | None = None, **inputs: Tensor
    ) -> tuple[Tensor, State, Tensor, tuple[str, ...]]:
        """:meth:`step_with_attention`, read as one panel per slot: ``weights [B, S, K]`` is
        slot ``s``'s attention on each input entity (the last block's, averaged over heads;
        the rest of its weight is on the slots)."""
        out, state, slots = self.step_with_attention(x, state, mask)
        s = slots.shape[-2]
        weights = slots[:, -1, :, :, s:].mean(1)
        return out, state, weights, tuple(f"slot {k + 1} (mean of heads)" for k in range(s))

    # ------------------------------------------------------------------ the core interface
    def step(self, x: Tensor, state: State, mask: Tensor | None = None) -> tuple[Tensor, State]:
        x, mask = self._as_set(x, mask, lead=1)
        inputs = self.input_proj(x)
        kvs, gate_x = self._project_inputs(inputs, mask)
        memory = self._update(state[0], kvs, gate_x, mask)
        return memory.flatten(1), (memory,)

    def unroll(
        self,
        xs: Tensor,
        state: State,
        starts: Tensor | None = None,
        mask: Tensor | None = None,
    ) -> tuple[Tensor, State]:
        xs, mask = self._as_set(xs, mask, lead=2)
        inputs = self.input_proj(xs)  # [T, B, K, D]: the whole sequence in one matmul
        kvs, gate_x = self._project_inputs(inputs, mask)
        recurrence = self._compiled_recurrence() if self.compile_steps else self._recurrence
        outputs, memory = recurrence(state[0], kvs, gate_x, starts, mask)
        return outputs, (memory,)

    def _recurrence(
        self,
        memory: Tensor,
        kvs: list[Tensor],
        gate_x: Tensor,
        starts: Tensor | None,
        mask: Tensor | None,
    ) -> tuple[Tensor, Tensor]:
        """The steps of :meth:`unroll` after the input projections: ``(outputs [T, B, S * D],
        last memory [B, S, D])`` from ``memory [B, S, D]``, keys/values ``[T, B, K, D]`` per
        block and the gates' input terms ``[T, B, 2 G]``."""
        steps = kvs[0].shape[0]
        # unbind once: indexing [t] per step would make autograd fill a [T, ...] zero gradient
        # per step (quadratic in T); unbind's backward is a single stack.
        kv_steps = list(zip(*(kv.unbind(0) for kv in kvs)))
        gate_steps = gate_x.unbind(0) if gate_x.numel() else [gate_x] * steps
        mask_steps = [None] * steps if mask is None else mask.unbind(0)
        outputs = []
        for t in range(steps):  # the recurrence: one step per time step
            if starts is not None:
                (memory,) = self.reset((memory,), starts[t])
            memory = self._update(memory, list(kv_steps[t]), gate_steps[t], mask_steps[t])
            outputs.append(memory.flatten(1))
        return torch.stack(outputs), memory

    def _compiled_recurrence(self) -> Callable[..., tuple[Tensor, Tensor]]:
        """:meth:`_recurrence` through ``torch.compile`` (built once; one graph per sequence
        length and batch size), or eagerly with a warning when compiling fails."""
        if self._compiled is None:
            compiled = torch.compile(self._recurrence, dynamic=False)

            def recurrence(*args: Any) -> tuple[Tensor, Tensor]:
                try:
                    return compiled(*args)
                except Exception as exc:  # no compiler, unsupported backend: stay correct
                    warnings.warn(
                        f"RelationalMemoryCore: torch.compile failed ({type(exc).__name__}: "
                        f"{str(exc).splitlines()[0][:120]}); running eagerly "
                        "(set compile_steps=false to silence this)",
                        stacklevel=2,
                    )
                    self._compiled = self._recurrence
                    return self._recurrence(*args)

            self._compiled = recurrence
        return self._compiled

    def forward(
        self, x: Tensor, memory: Tensor | None = None, mask: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """One step; ``memory=None`` starts from :meth:`initial_state`.

        Returns:
            ``(output [B, S * D], memory [B, S, D])``.
        """
        state = self.initial_state(x.shape[0], x.device) if memory is None else (memory,)
        out, (new_memory,) = self.step(x, state, mask)
        return out, new_memory

    def forward_sequence(
        self, xs: Tensor, memory: Tensor | None = None, mask: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """Unroll batch-first: ``xs [B, T, input_size] -> (outputs [B, T, S * D], memory)``."""
        state = self.initial_state(xs.shape[0], xs.device) if memory is None else (memory,)
        seq_mask = None if mask is None else mask.transpose(0, 1)
        outputs, (memory,) = self.unroll(xs.transpose(0, 1), state, mask=seq_mask)
        return outputs.transpose(0, 1), memory

    def extra_repr(self) -> str:
        return (
            f"input_size={self.input_size}, mem_slots={self.mem_slots}, "
            f"gate={self.gate_style}, compile_steps={self.compile_steps}"
        )



"""Relational Memory Core (Santoro et al., 2018): memory slots that attend over themselves and
the new input, gated like an LSTM.

The attention step is this project's :class:`AttentionLayer` on the ``memory`` topology: a graph
of ``S`` memory slots plus the input entity, in which slots receive from every slot and from
the input, and the input receives nothing. So the RMC is literally "a GNN over memory slots".
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from graphrl.graphs.batch import EntityGraph
from graphrl.graphs.topologies import Memory
from graphrl.nn.attention import AttentionLayer

GATE_STYLES = ("unit", "memory", "none")


class RelationalMemoryCore(nn.Module):
    r"""One step: :math:`\tilde M = g_\theta(\mathrm{MHDPA}(M, [M; x]))` (``num_blocks`` relational
    blocks, residual and layer norm inside), then LSTM-style gates

    .. math::
        i, f = \sigma(W x + U \tanh M + b), \qquad M' = i \odot \tanh \tilde M + f \odot M

    Args:
        input_size: Width of each input ``x_t``.
        mem_slots: Number of memory slots ``S``.
        head_size: Width per head; the slot width is ``D = heads * head_size``.
        heads: Attention heads.
        num_blocks: Attention + MLP blocks per step (parameters shared across steps).
        gate_style: ``unit`` (a gate per slot unit), ``memory`` (one per slot) or ``none``.
        forget_bias: Added to the forget gate's pre-activation (remember by default).
        input_bias: Added to the input gate's pre-activation.

    Shapes:
        x: ``[B, input_size]``, memory: ``[B, S, D]`` -> output ``[B, S * D]``,
        memory ``[B, S, D]``.
    """

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
        self.gate_style = gate_style
        self.forget_bias = forget_bias
        self.input_bias = input_bias
        self.input_proj = nn.Linear(input_size, self.mem_size)
        self.topology = Memory(num_slots=mem_slots)
        self.blocks = nn.ModuleList(
            [AttentionLayer(self.mem_size, heads=heads) for _ in range(num_blocks)]
        )
        if gate_style != "none":
            gates = self.mem_size if gate_style == "unit" else 1
            self.gate_input = nn.Linear(self.mem_size, 2 * gates)
            self.gate_memory = nn.Linear(self.mem_size, 2 * gates)

    @property
    def output_size(self) -> int:
        """``S * D``: the flattened memory."""
        return self.mem_slots * self.mem_size

    def initial_state(self, batch_size: int, device: torch.device | None = None) -> Tensor:
        """The paper's initial memory: an identity matrix, padded or cut to ``[B, S, D]``."""
        eye = torch.eye(self.mem_slots, device=device)
        if self.mem_size > self.mem_slots:
            eye = nn.functional.pad(eye, (0, self.mem_size - self.mem_slots))
        else:
            eye = eye[:, : self.mem_size]
        return eye.expand(batch_size, -1, -1).clone()

    def attend(self, memory: Tensor, x: Tensor) -> Tensor:
        """Slots attend over ``[memory; input]``: ``[B, S, D], [B, D] -> [B, S, D]``."""
        b, s, d = memory.shape
        nodes = torch.cat([memory, x.unsqueeze(1)], dim=1)  # [B, S + 1, D]
        graph = self.topology(
            EntityGraph(
                x=nodes.reshape(b * (s + 1), d),
                pos=nodes.new_zeros(b * (s + 1), 2),
                mask=torch.ones(b, s + 1, dtype=torch.bool, device=nodes.device),
                num_graphs=b,
            )
        )
        h = graph.x
        for block in self.blocks:
            h = block.forward_graph(graph, h)
        return graph.dense_x(h)[:, :s]

    def forward(self, x: Tensor, memory: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """One step; ``memory=None`` starts from :meth:`initial_state`."""
        if x.dim() != 2 or x.shape[-1] != self.input_size:
            raise ValueError(
                f"RelationalMemoryCore expects x [B, {self.input_size}], got {tuple(x.shape)}"
            )
        if memory is None:
            memory = self.initial_state(x.shape[0], x.device)
        x = self.input_proj(x)
        candidate = self.attend(memory, x)
        if self.gate_style == "none":
            new_memory = candidate
        else:
            gates = self.gate_input(x).unsqueeze(1) + self.gate_memory(torch.tanh(memory))
            input_gate, forget_gate = gates.chunk(2, dim=-1)
            input_gate = torch.sigmoid(input_gate + self.input_bias)
            forget_gate = torch.sigmoid(forget_gate + self.forget_bias)
            new_memory = input_gate * torch.tanh(candidate) + forget_gate * memory
        return new_memory.flatten(1), new_memory

    def forward_sequence(self, xs: Tensor, memory: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Unroll over time: ``xs [B, T, input_size] -> (outputs [B, T, S * D], memory)``."""
        outputs = []
        for t in range(xs.shape[1]):  # recurrence: one step per time step
            out, memory = self(xs[:, t], memory)
            outputs.append(out)
        assert memory is not None
        return torch.stack(outputs, dim=1), memory

    def extra_repr(self) -> str:
        return f"input_size={self.input_size}, mem_slots={self.mem_slots}, gate={self.gate_style}"

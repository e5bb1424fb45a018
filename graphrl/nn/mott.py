"""Mott et al. (2019)'s attention core: the policy LSTM asks each frame for what it needs.

Per step, ``num_queries`` queries come from the LSTM's *previous* output; each query scores
every entity of the frame (keys from the entity features plus a spatial basis, Fourier
features of the entity's board position), takes one softmax over the entities and reads a
weighted sum of their values. The answers and the queries are the LSTM's input; the output is
the LSTM's. The weights of every query are what :meth:`MottQueryCore.frame_attention` gives.

Until the queries have learned where to look, a softmax read-out is close to the *mean* of the
values, so a lone cue among many unchanging entities reaches the LSTM diluted by their number.
``pooled_input=True`` also gives the LSTM the frame's max-pooled entities, which are not
diluted (an extension; Mott et al.'s LSTM reads answers and queries only).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from graphrl.nn.recurrent import CORES, LSTMCore, RecurrentCore, State

__all__ = ["MottQueryCore", "spatial_basis"]


def spatial_basis(coords: Tensor, num_frequencies: int) -> Tensor:
    """Mott et al.'s spatial basis: ``cos(pi u x') cos(pi v y')`` for ``u, v < F``.

    Args:
        coords: ``[..., 2]`` coordinates in ``[-1, 1]`` (mapped to ``x' = (x + 1) / 2``).
        num_frequencies: ``F``, frequencies per axis.

    Returns:
        ``[..., F * F]`` features (the first is the constant 1).
    """
    freqs = torch.arange(num_frequencies, device=coords.device, dtype=coords.dtype) * math.pi
    waves = torch.cos(((coords + 1.0) / 2.0).unsqueeze(-1) * freqs)  # [..., 2, F]
    return (waves[..., 0, :, None] * waves[..., 1, None, :]).flatten(-2)


@CORES.register("mott")
class MottQueryCore(RecurrentCore):
    """Recurrent queries over a set of entities, then an LSTM.

    It reads entity sets only (``takes_vectors = False``), with their board positions
    (``uses_positions``); entities without positions (an entity-set env) get the basis of the
    board's centre, the same for all, so the keys come from the features alone.

    Args:
        input_size: Entity width ``D``.
        num_queries: Queries per step ``Q``.
        key_size: Width of keys and queries ``d_k``.
        value_size: Width of values (answers) ``d_v``.
        basis_frequencies: ``F``: the spatial basis has ``F * F`` channels.
        hidden_size: The LSTM's width (and the output's).
        pooled_input: The LSTM also reads the entities max-pooled over the frame ``[B, D]``.

    Shapes:
        step: x ``[B, K, D]``, mask ``[B, K]``, pos ``[B, K, 2]`` -> output ``[B, hidden_size]``.
    """

    takes_sets = True
    takes_vectors = False
    uses_positions = True
    returns_attention = True

    def __init__(
        self,
        input_size: int,
        num_queries: int = 4,
        key_size: int = 32,
        value_size: int = 32,
        basis_frequencies: int = 4,
        hidden_size: int = 128,
        pooled_input: bool = False,
    ) -> None:
        super().__init__()
        if num_queries < 1 or basis_frequencies < 1:
            raise ValueError("MottQueryCore needs num_queries >= 1 and basis_frequencies >= 1")
        self.input_size = input_size
        self.output_size = hidden_size
        self.num_queries, self.key_size, self.value_size = num_queries, key_size, value_size
        self.basis_frequencies = basis_frequencies
        self.pooled_input = pooled_input
        entity_width = input_size + basis_frequencies**2
        self.keys = nn.Linear(entity_width, key_size)
        self.values = nn.Linear(entity_width, value_size)
        self.queries = nn.Linear(hidden_size, num_queries * key_size)
        lstm_input = num_queries * (key_size + value_size) + (input_size if pooled_input else 0)
        self.lstm = LSTMCore(lstm_input, hidden_size)

    def initial_state(self, batch_size: int, device: torch.device | None = None) -> State:
        """The LSTM's zero state ``(h, c)``."""
        return self.lstm.initial_state(batch_size, device)

    def reset(self, state: State, starts: Tensor) -> State:
        return self.lstm.reset(state, starts)

    def _step(
        self, x: Tensor, state: State, mask: Tensor | None, pos: Tensor | None
    ) -> tuple[Tensor, State, Tensor]:
        """Query with the previous output, read the answers, step the LSTM."""
        if x.dim() != 3 or x.shape[-1] != self.input_size:
            raise ValueError(
                f"MottQueryCore reads entity sets [B, K, {self.input_size}], got {tuple(x.shape)}"
            )
        b, k = x.shape[:2]
        if mask is None:
            mask = torch.ones(b, k, dtype=torch.bool, device=x.device)
        if pos is None:
            pos = x.new_zeros(b, k, 2)
        features = torch.cat([x, spatial_basis(pos.to(x.dtype), self.basis_frequencies)], -1)
        keys, values = self.keys(features), self.values(features)
        queries = self.queries(state[0]).view(b, self.num_queries, self.key_size)
        logits = queries @ keys.transpose(1, 2) / math.sqrt(self.key_size)  # [B, Q, K]
        weights = logits.masked_fill(~mask.unsqueeze(1), float("-inf")).softmax(-1)
        answers = weights @ values  # [B, Q, d_v]
        inputs = [answers.flatten(1), queries.flatten(1)]
        if self.pooled_input:
            inputs.append(x.masked_fill(~mask.unsqueeze(-1), float("-inf")).amax(1))
        out, state = self.lstm.step(torch.cat(inputs, -1), state)
        return out, state, weights

    def step(
        self, x: Tensor, state: State, mask: Tensor | None = None, pos: Tensor | None = None
    ) -> tuple[Tensor, State]:
        out, state, _ = self._step(x, state, mask, pos)
        return out, state

    def frame_attention(
        self, x: Tensor, state: State, mask: Tensor | None = None, **inputs: Tensor
    ) -> tuple[Tensor, State, Tensor, tuple[str, ...]]:
        """:meth:`step`, also giving every query's weights ``[B, Q, K]`` over the entities."""
        out, state, weights = self._step(x, state, mask, inputs.get("pos"))
        return out, state, weights, tuple(f"query {q + 1}" for q in range(self.num_queries))

    def unroll(
        self,
        xs: Tensor,
        state: State,
        starts: Tensor | None = None,
        mask: Tensor | None = None,
        pos: Tensor | None = None,
    ) -> tuple[Tensor, State]:
        outputs = []
        for t in range(xs.shape[0]):  # the queries read the previous output: one step at a time
            if starts is not None:
                state = self.reset(state, starts[t])
            out, state, _ = self._step(
                xs[t], state, None if mask is None else mask[t], None if pos is None else pos[t]
            )
            outputs.append(out)
        return torch.stack(outputs), state

    def extra_repr(self) -> str:
        return (
            f"input_size={self.input_size}, num_queries={self.num_queries}, "
            f"pooled_input={self.pooled_input}"
        )

"""Recurrent cores behind one interface: initial state, one step, reset by a done mask, unroll.

A core maps an input (a vector, or a *set* of entity vectors with a mask) and a state to an
output vector and the next state. States are tuples of tensors whose first dimension is the
batch, so callers (rollout storage, BPTT minibatching, checkpoints) handle every core alike:
index them with :func:`select_state`, reset them with :meth:`RecurrentCore.reset`.

Two cores: :class:`LSTMCore` (torch's ``nn.LSTM``; its unroll is one cuDNN / fused call
between episode boundaries) and ``graphrl.nn.rmc.RelationalMemoryCore``.
"""

from __future__ import annotations

import itertools
from abc import ABC, abstractmethod

import torch
from torch import Tensor, nn

from graphrl.registry import Registry

__all__ = ["CORES", "LSTMCore", "RecurrentCore", "State", "build_core", "select_state"]

State = tuple[Tensor, ...]
"""A core's state: tensors with the batch first (``[B, ...]`` each)."""


def select_state(state: State, index: Tensor | slice) -> State:
    """The state of the batch rows ``index`` (one gather per tensor)."""
    return tuple(s[index] for s in state)


class RecurrentCore(nn.Module, ABC):
    """What every recurrent core gives: sizes, an initial state, a step, a reset, an unroll.

    What a core takes and gives is declared by these attributes, which agents read:

    Attributes:
        input_size: Width of one input vector (or of one entity of an input set).
        output_size: Width of the output of a step.
        takes_sets: Whether :meth:`step` accepts a set ``[B, K, input_size]`` with a mask.
        takes_vectors: Whether :meth:`step` accepts one vector ``[B, input_size]`` per step.
        uses_positions: Whether :meth:`step` and :meth:`unroll` take the entities' board
            positions ``pos [B, K, 2]`` (``[T, B, K, 2]``) as a keyword.
        returns_attention: Whether :meth:`frame_attention` gives what the core attended to
            in the input set.
    """

    input_size: int
    output_size: int
    takes_sets: bool = False
    takes_vectors: bool = True
    uses_positions: bool = False
    returns_attention: bool = False

    @abstractmethod
    def initial_state(self, batch_size: int, device: torch.device | None = None) -> State:
        """The state before the first step of an episode, ``[B, ...]`` per tensor."""

    @abstractmethod
    def step(self, x: Tensor, state: State, mask: Tensor | None = None) -> tuple[Tensor, State]:
        """One step.

        Args:
            x: ``[B, input_size]``, or ``[B, K, input_size]`` for a set (``takes_sets``).
            state: The current state.
            mask: ``[B, K]`` bool, True for real entities of a set input.

        Returns:
            ``(output [B, output_size], next state)``.
        """

    def reset(self, state: State, starts: Tensor) -> State:
        """Replace the state of rows where ``starts [B]`` is set by the initial state.

        Works for any core whose initial state is the same for every row, so the reset is
        one ``where`` per tensor (no Python loop over rows).
        """
        init = self.initial_state(1, starts.device)
        keep = ~starts.bool()
        return tuple(
            torch.where(keep.view(-1, *([1] * (s.dim() - 1))), s, i.to(s.dtype))
            for s, i in zip(state, init)
        )

    def unroll(
        self,
        xs: Tensor,
        state: State,
        starts: Tensor | None = None,
        mask: Tensor | None = None,
    ) -> tuple[Tensor, State]:
        """Run over a sequence, resetting rows where an episode starts.

        Args:
            xs: ``[T, B, input_size]`` (or ``[T, B, K, input_size]`` for sets).
            state: The state before step 0.
            starts: ``[T, B]``: the state of row ``b`` is reset *before* step ``t`` where set
                (``obs[t]`` is the first observation of an episode); None: no resets.
            mask: ``[T, B, K]`` bool for set inputs.

        Returns:
            ``(outputs [T, B, output_size], state after the last step)``.
        """
        outputs = []
        for t in range(xs.shape[0]):  # the recurrence: one step per time step
            if starts is not None:
                state = self.reset(state, starts[t])
            out, state = self.step(xs[t], state, None if mask is None else mask[t])
            outputs.append(out)
        return torch.stack(outputs), state

    def frame_attention(
        self, x: Tensor, state: State, mask: Tensor | None = None, **inputs: Tensor
    ) -> tuple[Tensor, State, Tensor, tuple[str, ...]]:
        """:meth:`step` on a set, also giving what the core attended to in it.

        Returns:
            ``(output, state, weights [B, P, K], titles)``: one panel ``p`` per query or memory
            slot, its weight on each of the ``K`` inputs, and a title per panel.
        """
        raise ValueError(
            f"{type(self).__name__} gives no attention over its input (returns_attention is "
            "False): draw attention from the backbone's layers or use a core that declares it"
        )

    def forward(
        self, x: Tensor, state: State | None = None, mask: Tensor | None = None
    ) -> tuple[Tensor, State]:
        """One step from ``state`` (the initial state when None)."""
        if state is None:
            state = self.initial_state(x.shape[0], x.device)
        return self.step(x, state, mask)


CORES: Registry[RecurrentCore] = Registry("core")
"""Core name -> class; every core is built as ``core(input_size, **its_own_arguments)``."""


@CORES.register("lstm")
class LSTMCore(RecurrentCore):
    """torch's LSTM as a core; the state is ``(h [B, hidden], c [B, hidden])``.

    Between resets the unroll is a single ``nn.LSTM`` call over the whole span, so sequences
    without episode ends cost what a plain ``nn.LSTM`` costs.

    Args:
        input_size: Width of each input.
        hidden_size: Width of ``h`` and ``c`` (and of the output).
        forget_bias: Added to the forget gate's bias at init (1.0, as in Jozefowicz et al.).
    """

    def __init__(self, input_size: int, hidden_size: int = 128, forget_bias: float = 1.0) -> None:
        super().__init__()
        self.input_size = input_size
        self.hidden_size = self.output_size = hidden_size
        self.lstm = nn.LSTM(input_size, hidden_size)
        with torch.no_grad():  # gate order i, f, g, o
            self.lstm.bias_ih_l0[hidden_size : 2 * hidden_size].add_(forget_bias)

    def initial_state(self, batch_size: int, device: torch.device | None = None) -> State:
        zeros = torch.zeros(batch_size, self.hidden_size, device=device)
        return zeros, zeros.clone()

    def reset(self, state: State, starts: Tensor) -> State:
        keep = (~starts.bool()).unsqueeze(-1).to(state[0].dtype)
        return tuple(s * keep for s in state)

    def step(self, x: Tensor, state: State, mask: Tensor | None = None) -> tuple[Tensor, State]:
        if x.dim() != 2 or x.shape[-1] != self.input_size:
            raise ValueError(f"LSTMCore expects x [B, {self.input_size}], got {tuple(x.shape)}")
        out, (h, c) = self.lstm(x.unsqueeze(0), (state[0].unsqueeze(0), state[1].unsqueeze(0)))
        return out[0], (h[0], c[0])

    def unroll(
        self,
        xs: Tensor,
        state: State,
        starts: Tensor | None = None,
        mask: Tensor | None = None,
    ) -> tuple[Tensor, State]:
        h, c = state[0].unsqueeze(0), state[1].unsqueeze(0)
        if starts is None or not bool(starts[1:].any()):
            if starts is not None:
                h, c = (s.unsqueeze(0) for s in self.reset(state, starts[0]))
            out, (h, c) = self.lstm(xs, (h, c))
            return out, (h[0], c[0])
        # Split at the steps where some row starts an episode: one nn.LSTM call per span.
        cuts = [0, *torch.nonzero(starts[1:].any(1)).flatten().add(1).tolist(), xs.shape[0]]
        outputs = []
        for begin, end in itertools.pairwise(cuts):
            h, c = (s.unsqueeze(0) for s in self.reset((h[0], c[0]), starts[begin]))
            out, (h, c) = self.lstm(xs[begin:end], (h, c))
            outputs.append(out)
        return torch.cat(outputs), (h[0], c[0])

    def extra_repr(self) -> str:
        return f"input_size={self.input_size}, hidden_size={self.hidden_size}"


def build_core(name: str, input_size: int, **kwargs: object) -> RecurrentCore:
    """Build a core by name (``lstm``, ``rmc``, ``mott``) or class path, with its own keyword
    arguments."""
    return CORES.get(name)(input_size, **kwargs)

"""What a policy attends to in one frame, in a form pictures can place on the board.

A policy that can show its attention declares ``returns_attention = True``; a recurrent one
then returns a :class:`FrameAttention` as the fourth output of
``forward(obs, state, starts, return_attention=True)``. ``graphrl render`` and the TensorBoard
callback read that declaration (never the class name) and draw one panel per row of
``weights``, titled by ``titles``.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from graphrl.models.backbones import BackboneOutput

__all__ = ["FrameAttention", "declares_attention"]


@dataclass
class FrameAttention:
    """Attention over the entities of a batch of frames, one panel per row.

    Attributes:
        weights: ``[B, P, N]`` (panel ``p``'s weight on entity ``n``: a query, a memory slot) or
            ``[B, P, N, N]`` (``[b, p, i, j]``: how much entity ``i`` attends to ``j`` in head
            ``p``; pictures show the agent's own entity ``i``). Zero on absent entities.
        mask: ``[B, N]`` bool, real entities.
        pos: ``[B, N, 2]`` each entity's board cell ``(row, col)``.
        titles: ``P`` panel titles.
        grid_shape: ``(h, w)`` when the entities are the cells of a feature map that covers the
            board (pixel encoders), else None.
    """

    weights: Tensor
    mask: Tensor
    pos: Tensor
    titles: tuple[str, ...]
    grid_shape: tuple[int, int] | None = None

    @property
    def per_receiver(self) -> bool:
        """Whether ``weights`` has a receiving entity axis (``[B, P, N, N]``)."""
        return self.weights.dim() == 4

    @classmethod
    def of_backbone(cls, out: BackboneOutput, weights: Tensor, titles: tuple[str, ...]):
        """Attention ``weights`` over the entities of a graph backbone's output ``out``."""
        assert out.graph is not None
        grid = out.graph.grid_shape
        return cls(
            weights, out.mask, out.graph.dense_pos(), titles, None if grid is None else tuple(grid)
        )


def declares_attention(policy: object) -> bool:
    """Whether ``policy`` declares that it returns a :class:`FrameAttention`."""
    return bool(getattr(policy, "returns_attention", False))

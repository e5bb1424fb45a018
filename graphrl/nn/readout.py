"""Readouts: a per-graph vector ``[B, D]`` from node features, ignoring padding nodes."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from graphrl.graphs.batch import EntityGraph
from graphrl.registry import Registry

READOUTS: Registry[nn.Module] = Registry("readout")


class Readout(nn.Module):
    """Base: ``readout(graph, x) -> [B, D_out]`` over the real nodes of each graph.

    All readouts work on the dense ``[B, N, D]`` view with the ``[B, N]`` mask (a reshape, no
    scatter), which equals PyG's ``global_*_pool`` on the real nodes.
    """

    out_channels: int

    def forward(self, graph: EntityGraph, x: Tensor) -> Tensor:
        raise NotImplementedError


@READOUTS.register("max")
class MaxReadout(Readout):
    """Feature-wise max over entities (Zambaldi et al.'s output module)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.out_channels = channels

    def forward(self, graph: EntityGraph, x: Tensor) -> Tensor:
        dense = graph.dense_x(x).masked_fill(~graph.mask.unsqueeze(-1), float("-inf"))
        out = dense.amax(dim=1)
        return out.masked_fill(~graph.mask.any(1, keepdim=True), 0.0)


@READOUTS.register("sum")
class SumReadout(Readout):
    """Sum over entities."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.out_channels = channels

    def forward(self, graph: EntityGraph, x: Tensor) -> Tensor:
        return (graph.dense_x(x) * graph.mask.unsqueeze(-1)).sum(dim=1)


@READOUTS.register("mean")
class MeanReadout(SumReadout):
    """Mean over entities."""

    def forward(self, graph: EntityGraph, x: Tensor) -> Tensor:
        count = graph.mask.sum(dim=1, keepdim=True).clamp(min=1)
        return super().forward(graph, x) / count


@READOUTS.register("own_node")
class OwnNodeReadout(Readout):
    """The first entity's features: the agent's own node (highway-env lists the ego vehicle
    first). After an attention layer on a complete graph this is Leurent & Mercat's (2019)
    ego-attention: the ego's query over every vehicle."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.out_channels = channels

    def forward(self, graph: EntityGraph, x: Tensor) -> Tensor:
        return graph.dense_x(x)[:, 0]


@READOUTS.register("attention")
class AttentionReadout(Readout):
    r"""Multi-head attention pooling with a learned query, or a query given by the caller
    (Mott et al., 2019, where an LSTM's state asks the question).

    .. math::
        a_h = \sum_i \mathrm{softmax}_i\big(q_h^\top W_k x_i / \sqrt{d_h}\big) W_v x_i

    Args:
        channels: Node width ``D`` (output width too).
        heads: Number of query heads.
        query_channels: Width of a caller-given query (0: a learned query only).

    Shapes:
        x: ``[B * N, D]``, query: ``[B, query_channels]`` -> ``[B, D]``; weights ``[B, heads, N]``.
    """

    def __init__(self, channels: int, heads: int = 4, query_channels: int = 0) -> None:
        super().__init__()
        if channels % heads:
            raise ValueError(f"AttentionReadout: channels={channels} not divisible by {heads}")
        self.out_channels = channels
        self.heads = heads
        self.head_dim = channels // heads
        self.query = nn.Parameter(torch.randn(heads, self.head_dim) / math.sqrt(self.head_dim))
        self.query_proj = nn.Linear(query_channels, channels) if query_channels else None
        self.key = nn.Linear(channels, channels)
        self.value = nn.Linear(channels, channels)

    def forward(
        self,
        graph: EntityGraph,
        x: Tensor,
        query: Tensor | None = None,
        return_attention_weights: bool = False,
    ) -> Tensor | tuple[Tensor, Tensor]:
        b, n = graph.mask.shape
        dense = graph.dense_x(x)
        k = self.key(dense).view(b, n, self.heads, self.head_dim)
        v = self.value(dense).view(b, n, self.heads, self.head_dim)
        q = self.query.expand(b, -1, -1)  # [B, H, dh]
        if query is not None:
            if self.query_proj is None:
                raise ValueError("AttentionReadout got a query but was built with query_channels=0")
            q = q + self.query_proj(query).view(b, self.heads, self.head_dim)
        logits = torch.einsum("bhd,bnhd->bhn", q, k) / math.sqrt(self.head_dim)
        logits = logits.masked_fill(~graph.mask.unsqueeze(1), float("-inf"))
        weights = torch.nan_to_num(logits.softmax(-1), nan=0.0)  # graphs with no entity -> 0
        out = torch.einsum("bhn,bnhd->bhd", weights, v).reshape(b, -1)
        return (out, weights) if return_attention_weights else out


def build_readout(name: str, channels: int, **kwargs) -> Readout:
    """Build the readout registered as ``name`` for node width ``channels``."""
    return READOUTS.build(name, channels=channels, **kwargs)

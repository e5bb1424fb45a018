"""Graph convolution (Kipf & Welling, 2017) in the lecture's form and in Kipf's."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch_geometric.nn import GCNConv, MessagePassing

from graphrl.nn.base import LAYERS, GraphLayerMixin, check_edge_index, check_node_features

GCN_NORMS = ("mean", "symmetric")


@LAYERS.register("gcn")
class GCNLayer(GraphLayerMixin, MessagePassing):
    r"""Graph convolution.

    ``norm="mean"`` is the lecture's GCN, a GNN with linear ``f_e`` and no root term whose
    topology matrix averages over in-neighbours including a self-loop:

    .. math::
        v'_i = \frac{1}{|\mathcal{N}(i) \cup \{i\}|} \sum_{j \in \mathcal{N}(i) \cup \{i\}}
        \mathbf{B}^\top v_j + b

    ``norm="symmetric"`` is Kipf & Welling's :math:`\hat D^{-1/2} \hat A \hat D^{-1/2} X B`,
    PyG's :class:`~torch_geometric.nn.GCNConv` (which holds the parameters and propagates).
    The non-linearity is applied by the :class:`Processor` between layers.

    Both norms treat self-loops as PyG's ``add_remaining_self_loops`` does (every node gets
    exactly one), but without dropping the given self-loops from the edge list, which would be
    a data-dependent shape (a host sync): they get weight 0 and each node's own term is added.

    Args:
        in_channels: Node feature width.
        out_channels: Output width.
        norm: ``"mean"`` or ``"symmetric"``.
        bias: Learn an additive bias.

    Shapes:
        x: ``[num_nodes, in_channels]``, edge_index: ``[2, E]`` -> ``[num_nodes, out_channels]``.
    """

    def __init__(
        self, in_channels: int, out_channels: int, norm: str = "mean", bias: bool = True
    ) -> None:
        super().__init__(aggr="add")
        if norm not in GCN_NORMS:
            raise ValueError(f"unknown GCN norm {norm!r}; choose one of: {', '.join(GCN_NORMS)}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.norm = norm
        if norm == "symmetric":
            # The normalisation is computed here (sync-free); the conv only propagates.
            self.conv: GCNConv | None = GCNConv(
                in_channels, out_channels, bias=bias, add_self_loops=False, normalize=False
            )
        else:
            self.conv = None
            self.lin = nn.Linear(in_channels, out_channels, bias=bias)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        super().reset_parameters()
        if self.conv is not None:
            self.conv.reset_parameters()
        else:
            self.lin.reset_parameters()

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        """``x: [num_nodes, in] -> [num_nodes, out]`` over ``edge_index: [2, E]`` (``j -> i``)."""
        check_node_features(x, self.in_channels, type(self).__name__)
        check_edge_index(edge_index, x.shape[0], type(self).__name__, owner=self)
        num_nodes = x.shape[0]
        src, dst = edge_index
        weight = (src != dst).to(x.dtype)  # [E]: a given self-loop counts once, as its own term
        degree = x.new_ones(num_nodes).index_add_(0, dst, weight)  # |N(i) u {i}|: [N]
        if self.conv is not None:
            inv_sqrt = degree.rsqrt()
            weight = inv_sqrt[src] * weight * inv_sqrt[dst]
            loops = torch.arange(num_nodes, device=x.device).expand(2, num_nodes)
            edge_index = torch.cat([edge_index, loops], dim=1)
            return self.conv(x, edge_index, torch.cat([weight, inv_sqrt.square()]))
        # Transform first (fewer columns to average when out < in): mean(B^T v_j) + b.
        h = nn.functional.linear(x, self.lin.weight)
        out = (self.propagate(edge_index, x=h, weight=weight) + h) / degree.unsqueeze(-1)
        return out if self.lin.bias is None else out + self.lin.bias

    def message(self, x_j: Tensor, weight: Tensor) -> Tensor:
        return weight.unsqueeze(-1) * x_j

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.in_channels}, {self.out_channels}, norm={self.norm})"

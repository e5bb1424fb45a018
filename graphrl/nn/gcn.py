"""Graph convolution (Kipf & Welling, 2017) in the lecture's form and in Kipf's."""

from __future__ import annotations

from torch import Tensor, nn
from torch_geometric.nn import GCNConv, MessagePassing
from torch_geometric.utils import add_remaining_self_loops

from graphrl.nn.base import GraphLayerMixin, check_edge_index, check_node_features

GCN_NORMS = ("mean", "symmetric")


class GCNLayer(GraphLayerMixin, MessagePassing):
    r"""Graph convolution.

    ``norm="mean"`` is the lecture's GCN, a GNN with linear ``f_e`` and no root term whose
    topology matrix averages over in-neighbours including a self-loop:

    .. math::
        v'_i = \frac{1}{|\mathcal{N}(i) \cup \{i\}|} \sum_{j \in \mathcal{N}(i) \cup \{i\}}
        \mathbf{B}^\top v_j + b

    ``norm="symmetric"`` is Kipf & Welling's :math:`\hat D^{-1/2} \hat A \hat D^{-1/2} X B`,
    delegated to PyG's :class:`~torch_geometric.nn.GCNConv`. The non-linearity is applied by
    the :class:`Processor` between layers.

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
        super().__init__(aggr="mean")
        if norm not in GCN_NORMS:
            raise ValueError(f"unknown GCN norm {norm!r}; choose one of: {', '.join(GCN_NORMS)}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.norm = norm
        if norm == "symmetric":
            self.conv: GCNConv | None = GCNConv(in_channels, out_channels, bias=bias)
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
        check_node_features(x, self.in_channels, type(self).__name__)
        check_edge_index(edge_index, x.shape[0], type(self).__name__)
        if self.conv is not None:
            return self.conv(x, edge_index)
        edge_index, _ = add_remaining_self_loops(edge_index, num_nodes=x.shape[0])
        # Transform first (fewer columns to average when out < in): mean(B^T v_j) + b.
        h = nn.functional.linear(x, self.lin.weight)
        out = self.propagate(edge_index, x=h)
        return out if self.lin.bias is None else out + self.lin.bias

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.in_channels}, {self.out_channels}, norm={self.norm})"

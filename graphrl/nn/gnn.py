"""The generic graph-network block (Battaglia et al., 2018): edge, aggregate, node update."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch_geometric.nn import MLP, MessagePassing

from graphrl.nn.base import LAYERS, GraphLayerMixin, check_edge_index, check_node_features


@LAYERS.register("gnn")
class GNNLayer(GraphLayerMixin, MessagePassing):
    r"""Generic GNN layer (Battaglia et al., 2018), as in the lecture:

    .. math::
        e'_{ji} = f_e(e_{ji}, v_j, v_i) \quad \forall (j, i) \in \mathcal{E}, \qquad
        \bar e_i = \bigoplus_{(j, i) \in \mathcal{E}} e'_{ji}, \qquad
        v'_i = f_v(v_i, \bar e_i)

    with :math:`\bigoplus` a sum by default. ``f_e`` and ``f_v`` are MLPs (``mlp_layers=1``
    makes them linear: then, with mean aggregation, this is a GCN).

    Args:
        in_channels: Node feature width.
        out_channels: Output node width.
        edge_dim: Edge feature width (0: no edge features, ``f_e(v_j, v_i)``).
        hidden_channels: Hidden width of both MLPs (default ``out_channels``).
        message_channels: Width of ``e'`` (default ``out_channels``).
        mlp_layers: Layers per MLP (1 = linear).
        aggr: ``"sum"`` (Battaglia), ``"mean"`` or ``"max"``.

    Shapes:
        x: ``[num_nodes, in_channels]``, edge_index: ``[2, E]`` (``j -> i``),
        edge_attr: ``[E, edge_dim]`` -> ``[num_nodes, out_channels]``.
    """

    uses_edge_attr = True

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        edge_dim: int = 0,
        hidden_channels: int | None = None,
        message_channels: int | None = None,
        mlp_layers: int = 2,
        aggr: str = "sum",
    ) -> None:
        super().__init__(aggr={"sum": "add"}.get(aggr, aggr))
        if mlp_layers < 1:
            raise ValueError(f"GNNLayer needs mlp_layers >= 1, got {mlp_layers}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.edge_dim = edge_dim
        hidden = hidden_channels or out_channels
        message = message_channels or out_channels

        def mlp(i: int, o: int) -> nn.Module:
            if mlp_layers == 1:
                return nn.Linear(i, o)
            return MLP([i] + [hidden] * (mlp_layers - 1) + [o], norm=None, act="relu")

        self.edge_mlp = mlp(edge_dim + 2 * in_channels, message)
        self.node_mlp = mlp(in_channels + message, out_channels)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        super().reset_parameters()
        self.edge_mlp.reset_parameters()
        self.node_mlp.reset_parameters()

    def forward(self, x: Tensor, edge_index: Tensor, edge_attr: Tensor | None = None) -> Tensor:
        check_node_features(x, self.in_channels, type(self).__name__)
        check_edge_index(edge_index, x.shape[0], type(self).__name__, owner=self)
        if (edge_attr is None) != (self.edge_dim == 0):
            raise ValueError(
                f"GNNLayer built with edge_dim={self.edge_dim} got "
                f"{'no' if edge_attr is None else 'some'} edge_attr: make them agree"
            )
        aggregated = self.propagate(edge_index, x=x, edge_attr=edge_attr)
        return self.node_mlp(torch.cat([x, aggregated], dim=-1))

    def message(self, x_j: Tensor, x_i: Tensor, edge_attr: Tensor | None) -> Tensor:
        parts = [x_j, x_i] if edge_attr is None else [edge_attr, x_j, x_i]
        return self.edge_mlp(torch.cat(parts, dim=-1))

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.in_channels}, {self.out_channels}, "
            f"edge_dim={self.edge_dim}, aggr={self.aggr})"
        )

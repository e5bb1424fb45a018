"""What every graphrl message-passing layer shares: the graph-level call used by ``Processor``.

Layers keep PyG's call signature, ``layer(x, edge_index, ...)``, so they drop into PyG code;
``forward_graph(graph, x, edge_attr)`` is the entity-graph call that lets a layer pick a path
(the attention layer runs complete graphs densely).
"""

from __future__ import annotations

from torch import Tensor

from graphrl.checks import value_check_due
from graphrl.graphs.batch import EntityGraph
from graphrl.registry import Registry

LAYERS: Registry[type] = Registry("layer")
"""Layer name -> class; each layer registers itself with ``@LAYERS.register(name)``."""


def check_node_features(x: Tensor, in_channels: int, who: str) -> None:
    """Fail clearly when ``x`` is not ``[num_nodes, in_channels]``."""
    if x.dim() != 2 or x.shape[-1] != in_channels:
        raise ValueError(
            f"{who} expects node features [num_nodes, {in_channels}]; got shape {tuple(x.shape)} "
            "(check the encoder's out_channels against the layer's in_channels)"
        )


def check_edge_index(
    edge_index: Tensor, num_nodes: int, who: str, owner: object | None = None
) -> None:
    """Fail clearly when ``edge_index`` is not a ``[2, E]`` tensor of valid node ids.

    The shape is checked on every call. The node ids (a host sync: ``edge_index.min()`` and
    ``max()``) are checked on every call when ``owner`` is None, else only when
    :func:`~graphrl.checks.value_check_due` says so: on ``owner``'s first call with these
    shapes, and on every call under ``--debug`` / ``GRAPHRL_DEBUG=1``.

    Args:
        edge_index: ``[2, E]`` edges ``(source j, target i)``.
        num_nodes: Rows of the node features the ids index.
        who: Name of the caller, for the message.
        owner: The module calling (it keeps its record of shapes already checked).
    """
    if edge_index.dim() != 2 or edge_index.shape[0] != 2:
        raise ValueError(f"{who} expects edge_index [2, E]; got shape {tuple(edge_index.shape)}")
    if edge_index.numel() == 0:
        return
    if owner is not None and not value_check_due(
        owner, ("edge_index", num_nodes, tuple(edge_index.shape))
    ):
        return
    low, high = int(edge_index.min()), int(edge_index.max())
    if low < 0:
        raise ValueError(f"{who}: edge_index has a negative node id ({low})")
    if high >= num_nodes:
        raise ValueError(f"{who}: edge_index refers to node {high} but x has {num_nodes} nodes")


class GraphLayerMixin:
    """Default entity-graph call: the PyG-style forward on the graph's edge list.

    Class attributes declare what a layer takes and gives; :class:`~graphrl.nn.Processor` and
    :func:`~graphrl.nn.processor.build_layer` read them (never the layer's name):

    Attributes:
        uses_edge_type: The constructor takes ``num_relations``; forward takes ``edge_type``.
        uses_edge_attr: The constructor takes ``edge_dim``; forward takes ``edge_attr``
            ``[E, edge_dim]`` (the processor's ``edge_features``).
        uses_heads: The constructor takes ``heads``.
        uses_edge_values: The constructor takes ``edge_values`` (edge features in messages).
        returns_attention: ``forward_graph(graph, x, edge_attr, return_attention_weights,
            edge_features)`` can also return ``[B, heads, N, N]`` weights.
        includes_residual: The layer adds its own residual and norm (the processor does not).
        same_channels: The constructor takes one ``channels`` (input = output width) instead
            of ``(in_channels, out_channels)``.
    """

    uses_edge_type: bool = False
    uses_edge_attr: bool = False
    uses_heads: bool = False
    uses_edge_values: bool = False
    returns_attention: bool = False
    includes_residual: bool = False
    same_channels: bool = False

    def forward_graph(
        self, graph: EntityGraph, x: Tensor, edge_attr: Tensor | None = None
    ) -> Tensor:
        """``x: [B * N, D_in] -> [B * N, D_out]`` on ``graph``'s edges."""
        kwargs = {}
        if self.uses_edge_type:
            kwargs["edge_type"] = graph.edge_types()
        if self.uses_edge_attr and edge_attr is not None:
            kwargs["edge_attr"] = edge_attr
        return self(x, graph.edge_index, **kwargs)  # type: ignore[operator]

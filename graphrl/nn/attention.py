"""Multi-head dot-product attention as a GNN with a learned topology (Zambaldi et al., 2019)."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch_geometric.utils import scatter, softmax

from graphrl.graphs.batch import EntityGraph
from graphrl.nn.base import LAYERS, check_edge_index, check_node_features

ATTENTION_PATHS = ("auto", "dense", "sparse")
SIZE_SCALINGS = ("none", "log", "count")
"""How attention adapts to the number ``n_i`` of nodes a node attends over (``size_scaling``)."""


def softmax_last(logits: Tensor) -> Tensor:
    """``logits.softmax(-1)``, fast for short rows too.

    ATen's CPU softmax over a last dim shorter than one vector register (16 floats) is 4-6x
    slower than the same softmax over an outer dim (measured fwd+bwd, ``[512, 4, 8, 8]``:
    4.2 ms against 0.67 ms); entity sets are often that small. Rows that short are reduced over
    dim 1 of a permuted view instead (``movedim``); the result is the same.

    Shapes:
        logits: ``[..., N]`` (at least 2-D) -> ``[..., N]``.
    """
    if logits.shape[-1] >= 16 or logits.dim() < 2 or logits.is_cuda:
        return logits.softmax(-1)
    return logits.movedim(-1, 1).softmax(1).movedim(1, -1)


@LAYERS.register("attention")
class AttentionLayer(nn.Module):
    r"""Zambaldi et al.'s relational block: multi-head dot-product attention over each node's
    incoming edges, then a row-wise MLP :math:`g_\theta`, each with a residual and layer norm.

    The attention block is the lecture's "fully connected R-GCN with learned weights": head
    ``k`` builds the topology matrix
    :math:`W^k_{ij} = \mathrm{softmax}_j(q_i^{k\top} k^k_j / \sqrt{d_k} + \beta^k_{ji})` over the
    incoming edges of ``i`` and sends :math:`W^k V B^k`; heads are concatenated and projected
    (exactly ``torch.nn.MultiheadAttention`` on a complete graph). The optional bias
    :math:`\beta^k_{ji} = w_k^\top e_{ji}` comes from edge features. With ``edge_values`` the
    edge features also enter the messages, as in PyG's ``TransformerConv``:
    :math:`\sum_j W^k_{ij} (v^k_j + U^k e_{ji})`, so a node that attends to ``j`` also receives
    its geometric relation to ``j`` (e.g. its distance), not only ``j``'s features.

    .. math::
        h = \mathrm{LN}(x + \mathrm{MHA}(x)), \qquad x' = \mathrm{LN}(h + g_\theta(h))

    Two paths give the same numbers: a **dense** one through
    ``scaled_dot_product_attention`` on ``[B, N, D]`` with an adjacency mask (complete
    topologies, and any topology with at most ``dense_max_nodes`` nodes per graph), and a
    **sparse** one, a softmax over each node's incoming edges (large sparse graphs). Dense wins
    on CPU at every size measured (``scripts/bench_layers.py``; docs/architecture.md, "Measured
    choices"): PyG's ``TransformerConv`` on complete graphs is 26x slower at N=49.

    Args:
        channels: Node width ``D`` (input = output, for the residual).
        heads: Number of heads; ``D`` must be divisible by it.
        mlp_channels: Hidden width of :math:`g_\theta` (default ``D``); 0 drops the MLP.
        edge_dim: Width of edge features biasing the logits (0: none).
        edge_values: Also add a linear map of the edge features to every message (needs
            ``edge_dim > 0``; the weights are then computed explicitly, not by SDPA).
        dropout: Dropout on attention weights and on both residual branches.
        norm_first: Pre-norm (``x + MHA(LN(x))``) instead of Zambaldi's post-norm.
        path: ``"auto"`` (dense whenever the graph allows and ``N <= dense_max_nodes`` or the
            topology is complete), ``"dense"`` or ``"sparse"``.
        dense_max_nodes: Largest ``N`` run densely for non-complete topologies.
        size_scaling: Set-size awareness, with ``n_i`` the number of nodes ``i`` attends over:
            ``"none"`` (a softmax average, blind to ``n_i``), ``"log"`` (queries, hence the
            logits, scaled by ``log n_i / log reference_size``: attention stays as sharp on
            larger sets) or ``"count"`` (the softmax average times ``n_i / reference_size``,
            a weighted *sum* that can count, e.g. how many nodes are farther than ``i``).
        reference_size: The ``n`` at which both scalings are the identity (the training size).

    Shapes:
        x: ``[num_nodes, D]``, edge_index: ``[2, E]`` (``j -> i``), edge_attr: ``[E, edge_dim]``
        -> ``[num_nodes, D]``; attention weights: ``[E, heads]`` (sparse call) or
        ``[B, heads, N, N]`` (entity-graph call; ``[b, h, i, j]`` = weight of ``j -> i``).
    """

    # What the processor reads (see graphrl.nn.base.GraphLayerMixin).
    uses_edge_type: bool = False
    uses_edge_attr: bool = True
    uses_heads: bool = True
    uses_edge_values: bool = True
    returns_attention: bool = True
    includes_residual: bool = True
    same_channels: bool = True

    def __init__(
        self,
        channels: int,
        heads: int = 4,
        mlp_channels: int | None = None,
        edge_dim: int = 0,
        dropout: float = 0.0,
        norm_first: bool = False,
        path: str = "auto",
        dense_max_nodes: int = 256,
        edge_values: bool = False,
        size_scaling: str = "none",
        reference_size: int = 8,
    ) -> None:
        super().__init__()
        if size_scaling not in SIZE_SCALINGS:
            raise ValueError(
                f"unknown size_scaling {size_scaling!r}; choose one of: {', '.join(SIZE_SCALINGS)}"
            )
        if reference_size < 2:
            raise ValueError(f"reference_size must be >= 2, got {reference_size}")
        self.size_scaling = size_scaling
        self.reference_size = reference_size
        if edge_values and not edge_dim:
            raise ValueError(
                "AttentionLayer(edge_values=True) needs edge features: set the processor's "
                "edge_features (e.g. distance)"
            )
        if channels % heads:
            raise ValueError(f"AttentionLayer: channels={channels} not divisible by heads={heads}")
        if path not in ATTENTION_PATHS:
            raise ValueError(f"unknown path {path!r}; choose one of: {', '.join(ATTENTION_PATHS)}")
        self.in_channels = self.out_channels = channels
        self.heads = heads
        self.head_dim = channels // heads
        self.edge_dim = edge_dim
        self.dropout = dropout
        self.norm_first = norm_first
        self.path = path
        self.dense_max_nodes = dense_max_nodes
        # One [3D, D] projection, laid out like nn.MultiheadAttention.in_proj_weight.
        self.in_proj = nn.Linear(channels, 3 * channels)
        self.out_proj = nn.Linear(channels, channels)
        self.edge_bias = nn.Linear(edge_dim, heads, bias=False) if edge_dim else None
        self.edge_value = nn.Linear(edge_dim, channels, bias=False) if edge_values else None
        mlp_channels = channels if mlp_channels is None else mlp_channels
        self.mlp = (
            nn.Sequential(
                nn.Linear(channels, mlp_channels), nn.ReLU(), nn.Linear(mlp_channels, channels)
            )
            if mlp_channels
            else None
        )
        self.norm1 = nn.LayerNorm(channels)
        self.norm2 = nn.LayerNorm(channels) if self.mlp is not None else None
        self.drop = nn.Dropout(dropout)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.xavier_uniform_(self.in_proj.weight)
        nn.init.zeros_(self.in_proj.bias)
        self.out_proj.reset_parameters()
        nn.init.zeros_(self.out_proj.bias)
        if self.edge_bias is not None:
            nn.init.zeros_(self.edge_bias.weight)
        if self.edge_value is not None:
            self.edge_value.reset_parameters()

    # ------------------------------------------------------------------ attention block
    def _size_factor(self, counts: Tensor) -> Tensor:
        """Per-node factor of ``size_scaling`` from the number of attended nodes ``counts``."""
        counts = counts.clamp(min=1).to(torch.get_default_dtype())
        if self.size_scaling == "log":
            return counts.clamp(min=2).log() / math.log(self.reference_size)
        return counts / self.reference_size

    def _qkv(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``[..., D] -> 3 x [..., heads, head_dim]``."""
        q, k, v = self.in_proj(x).chunk(3, dim=-1)
        shape = (*x.shape[:-1], self.heads, self.head_dim)
        return q.reshape(shape), k.reshape(shape), v.reshape(shape)

    def attend_sparse(
        self,
        x: Tensor,
        edge_index: Tensor,
        edge_attr: Tensor | None = None,
        return_attention_weights: bool = False,
    ) -> Tensor | tuple[Tensor, Tensor]:
        """The attention block on an edge list: softmax over each node's incoming edges.

        Nodes without incoming edges receive zeros (then the residual keeps them).

        Shapes:
            x: ``[num_nodes, D]``, edge_index: ``[2, E]`` -> ``[num_nodes, D]``
            (and weights ``[E, heads]``).
        """
        src, dst = edge_index
        q, k, v = self._qkv(x)  # [num_nodes, H, dh]
        factor = None
        if self.size_scaling != "none":
            counts = torch.bincount(dst, minlength=x.shape[0])  # [num_nodes]
            factor = self._size_factor(counts).to(x.dtype).view(-1, 1, 1)
            if self.size_scaling == "log":
                q = q * factor
        logits = (q.index_select(0, dst) * k.index_select(0, src)).sum(-1)  # [E, H]
        logits = logits / math.sqrt(self.head_dim)
        if self.edge_bias is not None:
            logits = logits + self.edge_bias(edge_attr)
        alpha = softmax(logits, dst, num_nodes=x.shape[0])  # PyG's segment softmax
        alpha_d = nn.functional.dropout(alpha, self.dropout, self.training)
        values = v.index_select(0, src)  # [E, H, dh]
        if self.edge_value is not None:
            values = values + self.edge_value(edge_attr).view(-1, self.heads, self.head_dim)
        messages = alpha_d.unsqueeze(-1) * values
        out = scatter(messages, dst, dim=0, dim_size=x.shape[0], reduce="sum")
        if self.size_scaling == "count":
            out = out * factor
        out = self.out_proj(out.reshape(x.shape[0], -1))
        return (out, alpha) if return_attention_weights else out

    def attend_dense(
        self,
        x: Tensor,
        attn_mask: Tensor | None = None,
        edge_bias_features: Tensor | None = None,
        return_attention_weights: bool = False,
    ) -> Tensor | tuple[Tensor, Tensor]:
        """The attention block on dense sets through ``scaled_dot_product_attention``.

        Args:
            x: ``[B, N, D]``.
            attn_mask: ``[B, 1, N, N]`` bool (True = ``j -> i`` exists) or None (all pairs).
                Rows without any True are treated as nodes without incoming edges: zeros.
            edge_bias_features: ``[B, N, N, edge_dim]`` pair features (``[b, i, j]``).
            return_attention_weights: Also return ``[B, heads, N, N]`` weights.

        Returns:
            ``[B, N, D]`` (and the weights).
        """
        b, n, _ = x.shape
        q, k, v = (t.transpose(1, 2) for t in self._qkv(x))  # [B, H, N, dh]
        empty_rows = None
        if attn_mask is not None:  # empty rows get a self-loop, zeroed afterwards (no branch
            empty_rows = ~attn_mask.any(-1, keepdim=True)  # on the data: no host sync)
            eye = torch.eye(n, dtype=torch.bool, device=x.device)
            attn_mask = attn_mask | (eye & empty_rows)  # [B, 1, N, N]
        factor = None
        if self.size_scaling != "none":
            counts = (
                torch.full((1, 1, n), n, device=x.device)
                if attn_mask is None
                else attn_mask.sum(-1).expand(b, 1, n)
            )
            factor = self._size_factor(counts).to(x.dtype).unsqueeze(-1)  # [B or 1, 1, N, 1]
            if self.size_scaling == "log":
                q = q * factor
        mask: Tensor | None = attn_mask
        if self.edge_bias is not None:
            bias = self.edge_bias(edge_bias_features).permute(0, 3, 1, 2)  # [B, H, N, N]
            mask = bias if attn_mask is None else bias.masked_fill(~attn_mask, float("-inf"))
        if return_attention_weights or self.edge_value is not None:
            logits = (q * (1.0 / math.sqrt(self.head_dim))) @ k.transpose(-1, -2)
            if mask is not None:
                logits = (
                    logits.masked_fill(~mask, float("-inf"))
                    if mask.dtype == torch.bool
                    else logits + mask
                )
            weights = softmax_last(logits)
            if empty_rows is not None:
                weights = weights.masked_fill(empty_rows, 0.0)
            weights_d = nn.functional.dropout(weights, self.dropout, self.training)
            out = weights_d @ v
            if self.edge_value is not None:
                edge_out = self._dense_edge_messages(weights_d, edge_bias_features)
        else:
            out = nn.functional.scaled_dot_product_attention(
                q, k, v, attn_mask=mask, dropout_p=self.dropout if self.training else 0.0
            )
        if self.size_scaling == "count":
            out = out * factor
        if empty_rows is not None:
            out = out.masked_fill(empty_rows, 0.0)
        out = out.transpose(1, 2).reshape(b, n, -1)  # [B, N, H * dh]
        if self.edge_value is not None:  # U^h e messages, folded into the output projection
            if self.size_scaling == "count":
                edge_out = edge_out * factor[:, 0]
            out = torch.cat([out, edge_out], dim=-1)
            return self._out_with_edges(out, weights if return_attention_weights else None)
        out = self.out_proj(out)
        return (out, weights) if return_attention_weights else out

    def _dense_edge_messages(self, weights: Tensor, pair: Tensor) -> Tensor:
        """``sum_j w[b, h, i, j] e[b, i, j]`` per head: the edge features each node receives.

        Messages ``U^h e`` are linear in ``e``, so the weights contract the ``edge_dim``-wide
        features first and ``U^h`` is applied once per node (see :meth:`_out_with_edges`),
        never materialising ``[B, N, N, D]``.

        Shapes:
            weights: ``[B, H, N, N]``, pair: ``[B, N, N, edge_dim]`` -> ``[B, N, H * edge_dim]``.
        """
        b, h, n, _ = weights.shape
        mixed = torch.einsum("bhij,bijf->bihf", weights, pair)
        return mixed.reshape(b, n, h * self.edge_dim)  # [B, i, H * edge_dim]

    def _out_with_edges(
        self, heads_out: Tensor, weights: Tensor | None
    ) -> Tensor | tuple[Tensor, Tensor]:
        """``out_proj([w V ; w E] )`` with the edge-value maps folded in: one matmul.

        ``W_o (w V + U e)`` per head equals ``[W_o ; W_o blockdiag(U^h)] [w V ; w e]``.

        Shapes:
            heads_out: ``[B, N, H * dh + H * edge_dim]`` -> ``[B, N, D]``.
        """
        u = self.edge_value.weight.view(self.heads, self.head_dim, self.edge_dim)
        w_o = self.out_proj.weight.view(-1, self.heads, self.head_dim)  # [D, H, dh]
        w_e = torch.einsum("ohd,hdf->ohf", w_o, u).reshape(w_o.shape[0], -1)  # [D, H * F]
        out = nn.functional.linear(
            heads_out, torch.cat([self.out_proj.weight, w_e], dim=1), self.out_proj.bias
        )
        return (out, weights) if weights is not None else out

    # ------------------------------------------------------------------ the block
    def _block(self, x: Tensor, attend) -> tuple[Tensor, Tensor | None]:
        """Residual + norm around ``attend`` then around ``g_theta``."""
        h_in = self.norm1(x) if self.norm_first else x
        a = attend(h_in)
        a, weights = a if isinstance(a, tuple) else (a, None)
        h = x + self.drop(a)
        if not self.norm_first:
            h = self.norm1(h)
        if self.mlp is not None:
            m = self.mlp(self.norm2(h) if self.norm_first else h)
            h = h + self.drop(m)
            if not self.norm_first:
                h = self.norm2(h)
        return h, weights

    def forward(
        self,
        x: Tensor,
        edge_index: Tensor,
        edge_attr: Tensor | None = None,
        return_attention_weights: bool = False,
    ) -> Tensor | tuple[Tensor, Tensor]:
        """PyG-style call on an edge list (the sparse path)."""
        check_node_features(x, self.in_channels, type(self).__name__)
        check_edge_index(edge_index, x.shape[0], type(self).__name__, owner=self)
        self._check_edge_attr(edge_attr)
        out, weights = self._block(
            x, lambda h: self.attend_sparse(h, edge_index, edge_attr, return_attention_weights)
        )
        return (out, weights) if return_attention_weights else out

    def uses_dense_path(self, graph: EntityGraph) -> bool:
        """Which path :meth:`forward_graph` takes on ``graph``."""
        if self.path != "auto":
            return self.path == "dense"
        return graph.complete or (
            graph.has_dense_adjacency and graph.nodes_per_graph <= self.dense_max_nodes
        )

    def forward_graph(
        self,
        graph: EntityGraph,
        x: Tensor,
        edge_attr: Tensor | None = None,
        return_attention_weights: bool = False,
        edge_features: str = "none",
    ) -> Tensor | tuple[Tensor, Tensor]:
        """Entity-graph call; picks the dense or the sparse path.

        Args:
            graph: The batch (its topology decides the edges).
            x: ``[B * N, D]`` node features.
            edge_attr: ``[E, edge_dim]`` edge features for the sparse path.
            return_attention_weights: Also return ``[B, heads, N, N]`` weights.
            edge_features: Kind of geometric features (see ``pairwise_edge_features``) for the
                dense path's logit bias; must match ``edge_attr`` on the sparse path.
        """
        check_node_features(x, self.in_channels, type(self).__name__)
        if self.uses_dense_path(graph):
            if not graph.has_dense_adjacency:
                raise ValueError(
                    f"AttentionLayer(path='dense') cannot run topology {graph.topology!r}: "
                    "it has no dense adjacency; use path='auto' or 'sparse'"
                )
            pair = graph.dense_edge_attr(edge_features) if self.edge_bias is not None else None
            self._check_edge_attr(pair)
            mask = graph.dense_attention_mask()
            out, weights = self._block(
                graph.dense_x(x),
                lambda h: self.attend_dense(h, mask, pair, return_attention_weights),
            )
            out = out.reshape_as(x)
        else:
            self._check_edge_attr(edge_attr)
            out, alpha = self._block(
                x,
                lambda h: self.attend_sparse(
                    h, graph.edge_index, edge_attr, return_attention_weights
                ),
            )
            weights = None
            if return_attention_weights:
                weights = _dense_weights(graph, alpha)
        return (out, weights) if return_attention_weights else out

    def _check_edge_attr(self, edge_attr: Tensor | None) -> None:
        if self.edge_dim and (edge_attr is None or edge_attr.shape[-1] != self.edge_dim):
            got = None if edge_attr is None else edge_attr.shape[-1]
            raise ValueError(
                f"AttentionLayer built with edge_dim={self.edge_dim} got edge features of width "
                f"{got}: set the processor's edge_features to match"
            )

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.in_channels}, heads={self.heads}, "
            f"edge_dim={self.edge_dim}, path={self.path!r}"
            + (", edge_values=True" if self.edge_value is not None else "")
            + (f", size_scaling={self.size_scaling!r})" if self.size_scaling != "none" else ")")
        )


def _dense_weights(graph: EntityGraph, alpha: Tensor) -> Tensor:
    """Scatter per-edge weights ``[E, H]`` into ``[B, H, N, N]`` (``[b, h, i, j]``: ``j -> i``)."""
    n, b = graph.nodes_per_graph, graph.num_graphs
    src, dst = graph.edge_index
    dense = alpha.new_zeros(b, n, n, alpha.shape[1])
    dense[dst // n, dst % n, src % n] = alpha
    return dense.permute(0, 3, 1, 2)

"""Relational graph convolution (Schlichtkrull et al., 2018): one weight per edge type."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from graphrl.checks import value_check_due
from graphrl.graphs.batch import EntityGraph
from graphrl.nn.base import LAYERS, GraphLayerMixin, check_edge_index, check_node_features


@LAYERS.register("rgcn")
class RGCNLayer(GraphLayerMixin, nn.Module):
    r"""R-GCN: each relation (edge type) ``r`` has its own weight ``W_r``.

    .. math::
        v'_i = W_0^\top v_i + \sum_{r} \frac{1}{c_{i,r}} \sum_{j \in \mathcal{N}_r(i)}
        W_r^\top v_j + b

    with :math:`c_{i,r} = 1` (``aggr="sum"``) or :math:`|\mathcal{N}_r(i)|` (``aggr="mean"``).
    On the ``relative`` topology (one relation per offset of a ``k x k`` window) with
    ``root_weight=False``, ``aggr="sum"`` and ``W_r`` the kernel's taps, this **is**
    ``Conv2d(kernel_size=k, padding=k // 2)``: "CNNs are R-GCNs on a grid".

    Implementation: when every node receives and sends at most one edge of each relation (as
    on ``relative``; the topology declares it, ``graph.one_edge_per_relation``, or the caller
    passes ``one_edge_per_relation=True``), a conv's path without the im2col matrix:
    ``H = x [W_1 .. W_R]`` in one matmul, then each node sums its ``R`` rows ``H[sender, r]``
    (absent senders: zero, a conv's padding; both aggregations coincide then); the backward
    gathers too (see
    :class:`_GatherMatmul`). Otherwise the same matmul, then one gather of ``H[j, r]`` per edge
    and one scatter-add into ``i``. This bypasses PyG's ``RGCNConv`` on purpose: its
    per-relation loop measured 3.4x ``Conv2d`` on a 7x7 grid batch and ``FastRGCNConv`` 150x
    (see ``scripts/bench_layers.py``).

    No host sync after the first call per shape: the node and relation ids (and the declared
    one-edge-per-relation) are checked then, and on every call under ``--debug``.

    Args:
        in_channels: Node feature width.
        out_channels: Output width.
        num_relations: Number of edge types ``R``.
        root_weight: Add the self term ``W_0^T v_i``.
        aggr: ``"sum"`` or ``"mean"`` (per relation, Schlichtkrull's normalisation).
        bias: Learn an additive bias.

    Shapes:
        x: ``[num_nodes, in_channels]``, edge_index: ``[2, E]``, edge_type: ``[E]`` in
        ``[0, R)`` -> ``[num_nodes, out_channels]``.
    """

    uses_edge_type = True

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        num_relations: int,
        root_weight: bool = True,
        aggr: str = "sum",
        bias: bool = True,
    ) -> None:
        super().__init__()
        if num_relations < 1:
            raise ValueError(f"RGCNLayer needs num_relations >= 1, got {num_relations}")
        if aggr not in ("sum", "mean"):
            raise ValueError(f"unknown RGCN aggr {aggr!r}; choose one of: sum, mean")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.num_relations = num_relations
        self.aggr = aggr
        self.weight = nn.Parameter(torch.empty(num_relations, in_channels, out_channels))
        self.root = nn.Linear(in_channels, out_channels, bias=False) if root_weight else None
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.in_channels * (self.num_relations + 1))
        nn.init.uniform_(self.weight, -bound, bound)
        if self.root is not None:
            self.root.reset_parameters()
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def forward(
        self,
        x: Tensor,
        edge_index: Tensor,
        edge_type: Tensor | None = None,
        one_edge_per_relation: bool = False,
    ) -> Tensor:
        """``x: [num_nodes, in] -> [num_nodes, out]``.

        Args:
            x: ``[num_nodes, in_channels]`` node features.
            edge_index: ``[2, E]`` edges ``(source j, target i)``.
            edge_type: ``[E]`` relation ids in ``[0, R)``; None for one relation.
            one_edge_per_relation: The caller declares that every node receives and sends at
                most one edge of each relation (the topology knows: ``relative`` on a grid);
                then the im2col path runs. Checked like the ids (first call per shape, every
                call under ``--debug``).
        """
        who = type(self).__name__
        check_node_features(x, self.in_channels, who)
        check_edge_index(edge_index, x.shape[0], who, owner=self)
        num_edges = edge_index.shape[1]
        if edge_type is None:
            if self.num_relations != 1:
                raise ValueError(
                    f"{who} has {self.num_relations} relations but the topology gives no "
                    "edge_type: use a typed topology (relative) or num_relations=1"
                )
            edge_type = torch.zeros(num_edges, dtype=torch.long, device=x.device)
        if edge_type.shape != (num_edges,):
            raise ValueError(f"{who}: edge_type must be [E]={num_edges}")
        key = ("edge_type", x.shape[0], num_edges, one_edge_per_relation)
        check_values = num_edges > 0 and value_check_due(self, key)
        if check_values:
            self._check_edge_type(edge_type)
        num_nodes, r, out_c = x.shape[0], self.num_relations, self.out_channels
        src, dst = edge_index
        if one_edge_per_relation:
            if check_values:
                self._check_one_edge_per_relation(edge_index, edge_type, num_nodes)
            tables = self._im2col_tables(edge_index, edge_type, num_nodes)
            out = _GatherMatmul.apply(x, self.weight, self.bias, *tables)  # bias included
        else:
            slot = dst * r + edge_type  # (receiver i, relation r) of every edge
            send_slot = src * r + edge_type  # (sender j, relation r) of every edge
            # [N, in] @ [in, R*out]: every relation's transform of every node, one matmul.
            weight = self.weight.permute(1, 0, 2).reshape(self.in_channels, r * out_c)
            h = (x @ weight).view(-1, out_c)
            messages = h.index_select(0, send_slot)  # H[j, r_ji]: [E, out]
            if self.aggr == "mean":
                ones = torch.ones_like(slot, dtype=x.dtype)
                counts = x.new_zeros(num_nodes * r).index_add_(0, slot, ones)  # [N * R]
                messages = messages / counts[slot].unsqueeze(-1)
            out = x.new_zeros(num_nodes, out_c).index_add_(0, dst, messages)
            if self.bias is not None:
                out = out + self.bias
        if self.root is not None:
            out = out + self.root(x)
        return out

    def forward_graph(
        self, graph: EntityGraph, x: Tensor, edge_attr: Tensor | None = None
    ) -> Tensor:
        """``x: [B * N, in] -> [B * N, out]`` on ``graph``'s typed edges; the im2col path when
        the topology declares ``one_edge_per_relation``."""
        return self(
            x,
            graph.edge_index,
            graph.edge_types(),
            one_edge_per_relation=graph.one_edge_per_relation,
        )

    def _im2col_tables(
        self, edge_index: Tensor, edge_type: Tensor, num_nodes: int
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Who sends each relation to whom, for :class:`_GatherMatmul`.

        Returns:
            ``rows [N, R]``: ``j * R + r`` for the node ``j`` that sends relation ``r`` to node
            ``i`` (row ``(j, r)`` of ``H = x [W_1 .. W_R]`` viewed ``[N * R, out]``), 0 where
            none does; ``present [N, R]`` float, 1 where one does; ``receiver [N * R]``: the
            node that ``j`` sends relation ``r`` to, ``N`` where none.

        Kept for the last edge list seen (the same tensors, unmodified: their version counters
        match), so a topology's cached edges cost one build per shape, not one per call.
        """
        if torch.compiler.is_compiling():  # a compiled graph builds them (no Python state)
            return self._build_im2col_tables(edge_index, edge_type, num_nodes)
        key = (edge_index._version, edge_type._version, num_nodes)
        cached = self.__dict__.get("_im2col_cache")
        if cached is not None and cached[0] is edge_index and cached[1] is edge_type:
            if cached[2] == key:
                return cached[3]
        tables = self._build_im2col_tables(edge_index, edge_type, num_nodes)
        self.__dict__["_im2col_cache"] = (edge_index, edge_type, key, tables)
        return tables

    def _build_im2col_tables(
        self, edge_index: Tensor, edge_type: Tensor, num_nodes: int
    ) -> tuple[Tensor, Tensor, Tensor]:
        r = self.num_relations
        src, dst = edge_index
        none = torch.full((num_nodes * r,), num_nodes, dtype=src.dtype, device=src.device)
        sender = none.index_put((dst * r + edge_type,), src).view(num_nodes, r)
        receiver = none.index_put((src * r + edge_type,), dst)
        present = sender < num_nodes
        relation = torch.arange(r, device=src.device)
        rows = torch.where(present, sender * r + relation, 0)
        return rows, present.to(torch.get_default_dtype()), receiver

    def _check_edge_type(self, edge_type: Tensor) -> None:
        """Relation ids in ``[0, R)`` (a host sync: run when a value check is due)."""
        low, high = int(edge_type.min()), int(edge_type.max())
        if low < 0 or high >= self.num_relations:
            raise ValueError(
                f"{type(self).__name__}: edge_type {high if high >= self.num_relations else low} "
                f"out of range for num_relations={self.num_relations} (set num_relations from "
                "the topology)"
            )

    def _check_one_edge_per_relation(
        self, edge_index: Tensor, edge_type: Tensor, num_nodes: int
    ) -> None:
        """Every (receiver, relation) and (sender, relation) at most once (a host sync)."""
        r = self.num_relations
        for role, node in (("receives", edge_index[1]), ("sends", edge_index[0])):
            counts = torch.bincount(node * r + edge_type, minlength=num_nodes * r)
            if bool((counts > 1).any()):
                worst, relation = divmod(int(counts.argmax()), r)
                raise ValueError(
                    f"{type(self).__name__}: one_edge_per_relation=True but node {worst} {role} "
                    f"{int(counts.max())} edges of relation {relation}: pass "
                    "one_edge_per_relation=False"
                )

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.in_channels}, {self.out_channels}, "
            f"num_relations={self.num_relations})"
        )


def _gather_rows(x: Tensor, index: Tensor) -> Tensor:
    """Rows ``[x; 0][index]``: index ``len(x)`` reads a zero row. ``[M] -> [M, D]``."""
    return torch.cat([x, x.new_zeros(1, x.shape[1])]).index_select(0, index)


class _GatherMatmul(torch.autograd.Function):
    """The im2col form of an R-GCN, ``out[i] = sum_r W_r^T x[sender(i, r)] + b``.

    Valid when each (receiver, relation) and each (sender, relation) occurs at most once, as on
    the ``relative`` topology. Forward: every relation's transform of every node in one matmul,
    ``H = x [W_1 .. W_R]`` (``[N, R * out]``), then one gather-and-sum of each node's ``R``
    rows ``H[sender(i, r), r]`` (``embedding_bag``; absent senders weigh 0). Backward: one
    gather, ``G[j, r] = grad_out[receiver(j, r)]`` (``[N, R * out]``, zeros where none), then
    ``grad_x = G [W_1^T .. W_R^T]`` and ``grad_W_r = x^T G[:, r]``, one matmul each: no
    scatter-add (autograd's backward of a gather would scatter ``[N * R, D]`` rows), and only
    ``x`` is kept for the backward. Measured against ``Conv2d`` in ``scripts/bench_layers.py``.

    Shapes:
        x: ``[N, in]``, weight: ``[R, in, out]``, bias: ``[out]`` or None, rows / present:
        ``[N, R]``, receiver: ``[N * R]`` (see :meth:`RGCNLayer._im2col_tables`) -> ``[N, out]``.
    """

    @staticmethod
    def forward(
        ctx,
        x: Tensor,
        weight: Tensor,
        bias: Tensor | None,
        rows: Tensor,
        present: Tensor,
        receiver: Tensor,
    ) -> Tensor:
        r, in_c, out_c = weight.shape
        h = x @ weight.permute(1, 0, 2).reshape(in_c, r * out_c)  # H[j, r] = W_r^T x_j
        out = nn.functional.embedding_bag(
            rows, h.view(-1, out_c), mode="sum", per_sample_weights=present.to(h.dtype)
        )
        ctx.save_for_backward(x, weight, receiver)
        return out if bias is None else out + bias.to(out.dtype)

    @staticmethod
    @once_differentiable
    def backward(
        ctx, grad_out: Tensor
    ) -> tuple[Tensor | None, Tensor | None, Tensor | None, None, None, None]:
        x, weight, receiver = ctx.saved_tensors
        r, in_c, out_c = weight.shape
        # Compute in the forward's dtype (autocast may have lowered it); autograd casts the
        # gradients back to the inputs' dtypes.
        dtype = grad_out.dtype
        grad_x = grad_weight = grad_bias = None
        grad_col = _gather_rows(grad_out, receiver).view(grad_out.shape[0], r * out_c)
        if ctx.needs_input_grad[0]:
            grad_x = grad_col @ weight.to(dtype).transpose(1, 2).reshape(r * out_c, in_c)
        if ctx.needs_input_grad[1]:
            grad_weight = (x.to(dtype).t() @ grad_col).view(in_c, r, out_c).transpose(0, 1)
        if ctx.needs_input_grad[2]:
            grad_bias = grad_out.sum(0)
        return grad_x, grad_weight, grad_bias, None, None, None

"""Relational graph convolution (Schlichtkrull et al., 2018): one weight per edge type."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from graphrl.nn.base import GraphLayerMixin, check_edge_index, check_node_features


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
    on ``relative``, detected from the edges), an exact im2col path: gather
    ``X_col[i, r] = x[sender of i by r]`` (zeros where there is none), then one
    ``[N, R * in] @ [R * in, out]`` matmul, as ``Conv2d`` does (both aggregations coincide
    then); its backward gathers too (see :class:`_GatherMatmul`). Otherwise all relations'
    transforms in one matmul, ``H = x [W_1 .. W_R]`` (``[num_nodes, R, out]``), then one gather
    of ``H[j, r]`` per edge and one scatter-add into ``i``. This bypasses PyG's ``RGCNConv`` on
    purpose: its per-relation loop measured 3.4x ``Conv2d`` on a 7x7 grid batch and
    ``FastRGCNConv`` 150x (see ``scripts/bench_layers.py``).

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

    def forward(self, x: Tensor, edge_index: Tensor, edge_type: Tensor | None) -> Tensor:
        who = type(self).__name__
        check_node_features(x, self.in_channels, who)
        check_edge_index(edge_index, x.shape[0], who)
        if edge_type is None:
            if self.num_relations != 1:
                raise ValueError(
                    f"{who} has {self.num_relations} relations but the topology gives no "
                    "edge_type: use a typed topology (relative) or num_relations=1"
                )
            edge_type = torch.zeros(edge_index.shape[1], dtype=torch.long, device=x.device)
        if edge_type.shape != (edge_index.shape[1],):
            raise ValueError(f"{who}: edge_type must be [E]={edge_index.shape[1]}")
        if edge_type.numel() and (
            int(edge_type.min()) < 0 or int(edge_type.max()) >= self.num_relations
        ):
            raise ValueError(
                f"{who}: edge_type {int(edge_type.max())} out of range for num_relations="
                f"{self.num_relations} (set num_relations from the topology)"
            )
        num_nodes, r, out_c = x.shape[0], self.num_relations, self.out_channels
        src, dst = edge_index
        slot = dst * r + edge_type  # (receiver i, relation r) of every edge
        send_slot = src * r + edge_type  # (sender j, relation r) of every edge
        counts = torch.bincount(slot, minlength=num_nodes * r)  # [N * R]
        if bool((counts <= 1).all()) and bool(
            (torch.bincount(send_slot, minlength=num_nodes * r) <= 1).all()
        ):
            # im2col; index N stands for "no such edge" (a zero row).
            sender = torch.full_like(counts, num_nodes).index_put_((slot,), src)
            receiver = torch.full_like(counts, num_nodes).index_put_((send_slot,), dst)
            out = _GatherMatmul.apply(x, self.weight, sender, receiver)
        else:
            # [N, in] @ [in, R*out]: every relation's transform of every node, one matmul.
            weight = self.weight.permute(1, 0, 2).reshape(self.in_channels, r * out_c)
            h = (x @ weight).view(-1, out_c)
            messages = h.index_select(0, src * r + edge_type)  # H[j, r_ji]: [E, out]
            if self.aggr == "mean":
                messages = messages / counts[slot].unsqueeze(-1).to(x.dtype)
            out = x.new_zeros(num_nodes, out_c).index_add_(0, dst, messages)
        if self.root is not None:
            out = out + self.root(x)
        if self.bias is not None:
            out = out + self.bias
        return out

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.in_channels}, {self.out_channels}, "
            f"num_relations={self.num_relations})"
        )


def _gather_rows(x: Tensor, index: Tensor) -> Tensor:
    """Rows ``[x; 0][index]``: index ``len(x)`` reads a zero row. ``[M] -> [M, D]``."""
    return torch.cat([x, x.new_zeros(1, x.shape[1])]).index_select(0, index)


class _GatherMatmul(torch.autograd.Function):
    """``X_col @ W`` with ``X_col[i, r] = x[sender[i, r]]``, the im2col form of an R-GCN.

    Valid when each (receiver, relation) and each (sender, relation) occurs at most once, as on
    the ``relative`` topology. Then the input gradient is a gather too, as in a transposed
    convolution: ``grad_x[j] = sum_r W_r grad_out[receiver[j, r]]``, one matmul and no
    scatter-add (autograd's backward of the gather would scatter ``[N * R, in]`` rows).

    Shapes:
        x: ``[N, in]``, weight: ``[R, in, out]``, sender / receiver: ``[N * R]`` node ids
        (``N`` = none) -> ``[N, out]``.
    """

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, sender: Tensor, receiver: Tensor) -> Tensor:
        r, in_c, out_c = weight.shape
        x_col = _gather_rows(x, sender).view(x.shape[0], r * in_c)
        ctx.save_for_backward(x_col, weight, receiver)
        return x_col @ weight.reshape(r * in_c, out_c)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out: Tensor) -> tuple[Tensor | None, Tensor | None, None, None]:
        x_col, weight, receiver = ctx.saved_tensors
        r, in_c, out_c = weight.shape
        # Compute in the forward's dtype (autocast may have lowered it); autograd casts the
        # gradients back to the inputs' dtypes.
        dtype = grad_out.dtype
        grad_x = grad_weight = None
        if ctx.needs_input_grad[0]:
            grad_col = _gather_rows(grad_out, receiver).view(grad_out.shape[0], r * out_c)
            grad_x = grad_col @ weight.to(dtype).transpose(1, 2).reshape(r * out_c, in_c)
        if ctx.needs_input_grad[1]:
            grad_weight = (x_col.to(dtype).t() @ grad_out).view(r, in_c, out_c)
        return grad_x, grad_weight, None, None

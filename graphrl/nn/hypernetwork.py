"""Question conditioning: concatenate the question to every entity, or let it generate weights.

The lecture's hypernetwork: a second view (here the question of a batch) does not enter the
entities as extra features but *writes the weights* of the layer that reads them, so each
question gets its own linear map of the entity features.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

QUESTION_INPUTS = ("concat", "hyper")


class HyperLinear(nn.Module):
    r"""A linear map of entity features whose weights are generated from a context vector.

    .. math::
        W(q) = \mathrm{reshape}(G q + g), \quad b(q) = H q + h, \quad
        y_i = W(q)\, x_i + b(q)

    One ``(in_features x out_features)`` matrix per sample, shared by its entities, so the
    layer stays permutation-equivariant over entities.

    Args:
        in_features: Entity feature width ``F``.
        out_features: Output width ``D``.
        context_features: Context (question) width ``Q``.

    Shapes:
        x: ``[B, N, F]``, context: ``[B, Q]`` -> ``[B, N, D]``.
    """

    def __init__(self, in_features: int, out_features: int, context_features: int) -> None:
        super().__init__()
        for name, value in (
            ("in_features", in_features),
            ("out_features", out_features),
            ("context_features", context_features),
        ):
            if value < 1:
                raise ValueError(f"HyperLinear: {name} must be >= 1, got {value}")
        self.in_features = in_features
        self.out_features = out_features
        self.context_features = context_features
        self.weight_generator = nn.Linear(context_features, in_features * out_features)
        self.bias_generator = nn.Linear(context_features, out_features)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Generated weights start like ``nn.Linear``'s (uniform, fan-in scaled) whatever ``q``."""
        bound = 1.0 / math.sqrt(self.in_features)
        nn.init.uniform_(self.weight_generator.bias, -bound, bound)
        nn.init.uniform_(self.weight_generator.weight, -bound / 4, bound / 4)
        nn.init.zeros_(self.bias_generator.weight)
        nn.init.uniform_(self.bias_generator.bias, -bound, bound)

    def forward(self, x: Tensor, context: Tensor) -> Tensor:
        if x.dim() != 3 or x.shape[-1] != self.in_features:
            raise ValueError(
                f"HyperLinear expects x [B, N, {self.in_features}], got {tuple(x.shape)}"
            )
        if context.shape != (x.shape[0], self.context_features):
            raise ValueError(
                f"HyperLinear expects context [B={x.shape[0]}, {self.context_features}], got "
                f"{tuple(context.shape)}"
            )
        weight = self.weight_generator(context).view(-1, self.in_features, self.out_features)
        return torch.bmm(x, weight) + self.bias_generator(context).unsqueeze(1)

    def extra_repr(self) -> str:
        return f"{self.in_features}, {self.out_features}, context={self.context_features}"


class QuestionInput(nn.Module):
    """Feeds a batch's question ``[B, Q]`` to a model of entity sets ``[B, N, F]``.

    - ``"concat"``: ``[x_i | q]`` for every entity (``out_features = F + Q``), the usual way;
    - ``"hyper"``: ``relu(W(q) x_i + b(q))`` (:class:`HyperLinear`, ``out_features = hidden``).

    Args:
        in_features: Entity feature width ``F``.
        question_features: Question width ``Q``.
        mode: ``"concat"`` or ``"hyper"``.
        hidden_features: Output width of the hypernetwork layer.
    """

    def __init__(
        self,
        in_features: int,
        question_features: int,
        mode: str = "concat",
        hidden_features: int = 64,
    ) -> None:
        super().__init__()
        if mode not in QUESTION_INPUTS:
            raise ValueError(
                f"unknown question_input {mode!r}; choose one of: {', '.join(QUESTION_INPUTS)}"
            )
        self.mode = mode
        self.question_features = question_features
        self.hyper = (
            HyperLinear(in_features, hidden_features, question_features)
            if mode == "hyper"
            else None
        )
        self.out_features = hidden_features if mode == "hyper" else in_features + question_features

    def forward(self, x: Tensor, question: Tensor) -> Tensor:
        """``x: [B, N, F]``, ``question: [B, Q]`` -> ``[B, N, out_features]``."""
        if self.hyper is not None:
            return torch.relu(self.hyper(x.float(), question.float()))
        q = question.float().unsqueeze(1).expand(-1, x.shape[1], -1)
        return torch.cat([x.float(), q], dim=-1)

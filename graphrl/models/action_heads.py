"""Policy heads: from an agent's features to the parameters of its action distribution.

Which head an agent gets follows from the env's action space (:func:`build_action_head`), so
no config names it: ``Discrete`` gets logits (or, when asked, a pointer over the entities),
``MultiDiscrete`` the logits of every dimension, ``Box`` a Gaussian mean with a learned,
state-independent log-std. :class:`~graphrl.models.distributions.ActionSpec` reads what they
give. Every head is called as ``head(features [B, W], out)`` with ``out`` the backbone's
:class:`~graphrl.models.backbones.BackboneOutput` (the pointer head reads its entities).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from graphrl.models.backbones import BackboneOutput
from graphrl.models.distributions import ActionSpec
from graphrl.models.heads import PointerHead
from graphrl.models.layers import layer_init
from graphrl.registry import Registry

HEADS: Registry[nn.Module] = Registry("head")
"""Head name -> class; :func:`build_action_head` picks one from the action space."""

__all__ = [
    "HEADS",
    "CategoricalHead",
    "GaussianHead",
    "MultiCategoricalHead",
    "PointerActionHead",
    "build_action_head",
]


@HEADS.register("categorical")
class CategoricalHead(nn.Module):
    """Logits ``[B, n]`` of ``Discrete(n)`` actions (also ``MultiDiscrete``: ``n = sum(nvec)``),
    one linear map initialised with gain 0.01 so the first policy is near uniform.

    Args:
        in_channels: Feature width ``W``.
        num_logits: ``n``.
    """

    def __init__(self, in_channels: int, num_logits: int) -> None:
        super().__init__()
        self.linear = layer_init(nn.Linear(in_channels, num_logits), gain=0.01)

    def forward(self, features: Tensor, out: BackboneOutput | None = None) -> Tensor:
        return self.linear(features)


@HEADS.register("multi_categorical")
class MultiCategoricalHead(CategoricalHead):
    """Logits of every dimension of ``MultiDiscrete(nvec)``, concatenated ``[B, sum(nvec)]``."""


@HEADS.register("gaussian")
class GaussianHead(nn.Module):
    """``Box(d,)`` actions: ``[mean, log_std]`` ``[B, 2 d]``, the log-std a learned vector that
    does not depend on the state (CleanRL's ``ppo_continuous_action.py``).

    Args:
        in_channels: Feature width ``W``.
        action_dim: ``d``.
        log_std_init: Initial log standard deviation.
    """

    def __init__(self, in_channels: int, action_dim: int, log_std_init: float = 0.0) -> None:
        super().__init__()
        self.mean = layer_init(nn.Linear(in_channels, action_dim), gain=0.01)
        self.log_std = nn.Parameter(torch.full((action_dim,), float(log_std_init)))

    def forward(self, features: Tensor, out: BackboneOutput | None = None) -> Tensor:
        mean = self.mean(features)
        return torch.cat([mean, self.log_std.expand_as(mean)], dim=-1)


@HEADS.register("pointer")
class PointerActionHead(nn.Module):
    """``Discrete`` actions that name an entity: one logit per entity from its own features and
    the pooled vector (:class:`~graphrl.models.heads.PointerHead`), ``-inf`` for absent ones.

    The logits' width is the number of entity slots of the batch, so an agent trained on ``N``
    entities acts on any number; when a batch has fewer slots than the env's ``num_actions``
    (padded graphs), the missing ones get ``-inf``.

    Args:
        channels: Entity width ``D``.
        hidden: Hidden width of the scoring MLP.
        num_actions: ``n`` of the training env's ``Discrete(n)``.
        skip_last_node: The backbone appends a global node after the entities (not an action).
        context_channels: Width of the vector read beside each entity (the pooled vector, or a
            core's output); default ``D``.
    """

    def __init__(
        self,
        channels: int,
        hidden: int,
        num_actions: int,
        skip_last_node: bool = False,
        context_channels: int | None = None,
    ) -> None:
        super().__init__()
        self.pointer = PointerHead(channels, hidden, context_channels)
        self.num_actions = num_actions
        self.skip_last_node = skip_last_node

    def forward(self, features: Tensor, out: BackboneOutput | None = None) -> Tensor:
        if out is None or out.nodes is None:
            raise ValueError("PointerActionHead needs a backbone that gives entities")
        slots = out.nodes.shape[1] - int(self.skip_last_node)
        head_in = BackboneOutput(out.nodes[:, :slots], out.pooled, out.mask[:, :slots])
        logits = self.pointer(head_in)  # [B, slots], -inf where absent
        logits = logits.masked_fill(~head_in.mask.any(1, keepdim=True), 0.0)  # no entity at all
        if slots >= self.num_actions:
            return logits
        pad = logits.new_full((logits.shape[0], self.num_actions - slots), float("-inf"))
        return torch.cat([logits, pad], dim=1)


def build_action_head(
    spec: ActionSpec,
    in_channels: int,
    pointer: bool = False,
    entity_channels: int | None = None,
    context_channels: int | None = None,
    hidden: int = 128,
    skip_last_node: bool = False,
) -> nn.Module:
    """The head for ``spec``'s action space.

    Args:
        spec: The env's action space, read.
        in_channels: Width of the features the head reads.
        pointer: ``Discrete`` actions name entities (one logit per entity).
        entity_channels: Entity width, for ``pointer``.
        context_channels: Width of the summary a pointer reads beside each entity.
        hidden: Hidden width of the pointer's MLP.
        skip_last_node: For ``pointer``: the last node is a global node, not an entity.

    Raises:
        ValueError: ``pointer`` with an action space other than ``Discrete``.
    """
    if pointer:
        if spec.kind != "discrete" or entity_channels is None:
            raise ValueError(
                f"action_head=pointer needs Discrete(N) actions over entities, got {spec.space}: "
                "use action_head=pooled"
            )
        return PointerActionHead(
            entity_channels, hidden, spec.param_size, skip_last_node, context_channels
        )
    if spec.kind == "discrete":
        return CategoricalHead(in_channels, spec.param_size)
    if spec.kind == "multi_discrete":
        return MultiCategoricalHead(in_channels, spec.param_size)
    return GaussianHead(in_channels, spec.param_size // 2)

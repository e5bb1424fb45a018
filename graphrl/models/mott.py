"""Mott et al. (2019)'s attention agent: the policy LSTM asks the frame for what it needs.

Per step, ``num_queries`` queries come from the LSTM's *previous* output; each query scores
every entity of the frame (keys from the entity features plus a spatial basis, Fourier
features of the entity's position), takes one softmax over the entities and reads a weighted
sum of their values. The answers and the queries are the LSTM's input; policy and value read
its output. The attention weights of every query are returned for pictures.

Until the queries have learned where to look, a softmax read-out is close to the *mean* of the
values, so a lone cue among many unchanging entities reaches the LSTM diluted by their number.
``pooled_input=True`` also gives the LSTM the frame's max-pooled entities, which are not
diluted (an extension; Mott et al.'s LSTM reads answers and queries only).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import gymnasium as gym
import torch
from torch import Tensor, nn

from graphrl.graphs.positional import normalized_coordinates
from graphrl.models.backbones import BackboneOutput
from graphrl.models.frame_attention import FrameAttention
from graphrl.models.recurrent_actor_critic import grid_backbone
from graphrl.nn import LSTMCore, ProcessorConfig
from graphrl.nn.recurrent import State
from graphrl.rl.policies import layer_init, mlp_trunk

__all__ = ["MottAttentionAgent", "spatial_basis"]


def spatial_basis(coords: Tensor, num_frequencies: int) -> Tensor:
    """Mott et al.'s spatial basis: ``cos(pi u x') cos(pi v y')`` for ``u, v < F``.

    Args:
        coords: ``[..., 2]`` coordinates in ``[-1, 1]`` (mapped to ``x' = (x + 1) / 2``).
        num_frequencies: ``F``, frequencies per axis.

    Returns:
        ``[..., F * F]`` features (the first is the constant 1).
    """
    freqs = torch.arange(num_frequencies, device=coords.device, dtype=coords.dtype) * math.pi
    waves = torch.cos(((coords + 1.0) / 2.0).unsqueeze(-1) * freqs)  # [..., 2, F]
    return (waves[..., 0, :, None] * waves[..., 1, None, :]).flatten(-2)


class MottAttentionAgent(nn.Module):
    """Recurrent queries over the entities of each frame, an LSTM, policy and value heads.

    Args:
        observation_space: The env's single observation space, ``Box (H, W, C)``.
        num_actions: Size of the discrete action space.
        channels: Entity width ``D`` from the encoder.
        encoder: ``grid``, ``objects`` or ``pixels``.
        encoder_kwargs: Extra encoder arguments.
        processor: Optional per-frame message passing before the queries (0 layers by default).
        num_queries: Queries per step ``Q``.
        key_size: Width of keys and queries ``d_k``.
        value_size: Width of values (answers) ``d_v``.
        basis_frequencies: ``F``: the spatial basis has ``F * F`` channels.
        hidden_size: The LSTM's width.
        hidden: Width of the MLP between LSTM and heads (0: heads on the LSTM output).
        pooled_input: The LSTM also reads the entities max-pooled over the frame ``[B, D]``.

    Shapes:
        step: obs ``[B, H, W, C]`` -> logits ``[B, A]``, value ``[B]``, and with
        ``return_attention`` a :class:`FrameAttention` of weights ``[B, Q, N]`` (panel ``k``:
        "query k").
    """

    is_recurrent: ClassVar[bool] = True
    returns_attention: ClassVar[bool] = True  # forward(..., return_attention=True)

    def __init__(
        self,
        observation_space: gym.spaces.Box,
        num_actions: int,
        channels: int = 64,
        encoder: str = "objects",
        encoder_kwargs: dict[str, Any] | None = None,
        processor: ProcessorConfig = ProcessorConfig(num_layers=0),  # noqa: B008 (a dataclass)
        num_queries: int = 4,
        key_size: int = 32,
        value_size: int = 32,
        basis_frequencies: int = 4,
        hidden_size: int = 128,
        hidden: int = 128,
        pooled_input: bool = False,
    ) -> None:
        super().__init__()
        if num_queries < 1 or basis_frequencies < 1:
            raise ValueError("MottAttentionAgent needs num_queries >= 1 and basis_frequencies >= 1")
        self.obs_shape = tuple(observation_space.shape)
        self.num_actions = num_actions
        self.num_queries, self.key_size, self.value_size = num_queries, key_size, value_size
        self.basis_frequencies = basis_frequencies
        self.pooled_input = pooled_input
        self.backbone = grid_backbone(
            observation_space, channels, encoder, encoder_kwargs, "complete", None, processor, "max"
        )
        entity_width = channels + basis_frequencies**2
        self.keys = nn.Linear(entity_width, key_size)
        self.values = nn.Linear(entity_width, value_size)
        self.queries = nn.Linear(hidden_size, num_queries * key_size)
        lstm_input = num_queries * (key_size + value_size) + (channels if pooled_input else 0)
        self.lstm = LSTMCore(lstm_input, hidden_size)
        self.trunk, width = mlp_trunk(hidden_size, hidden)
        self.pi = layer_init(nn.Linear(width, num_actions), gain=0.01)
        self.vf = layer_init(nn.Linear(width, 1), gain=1.0)

    def initial_state(self, batch_size: int, device: Any = None) -> State:
        """The LSTM's zero state ``(h, c)``."""
        return self.lstm.initial_state(batch_size, device)

    def entities(self, obs: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Keys ``[B, N, d_k]``, values ``[B, N, d_v]`` and mask ``[B, N]`` of frames."""
        return self._frame(obs)[:3]

    def _frame(self, obs: Tensor) -> tuple[Tensor, Tensor, Tensor, BackboneOutput]:
        """:meth:`entities` and the backbone output they came from (``pooled [B, D]``)."""
        out = self.backbone(obs)
        graph = out.graph
        assert graph is not None
        coords = normalized_coordinates(graph.pos, self.obs_shape[:2]).view(*out.mask.shape, 2)
        features = torch.cat([out.nodes, spatial_basis(coords, self.basis_frequencies)], -1)
        return self.keys(features), self.values(features), out.mask, out

    def _step(
        self, keys: Tensor, values: Tensor, mask: Tensor, pooled: Tensor, state: State
    ) -> tuple[Tensor, State, Tensor]:
        """Query with the previous output, read the answers, step the LSTM (``pooled [B, D]``
        is read only with ``pooled_input``)."""
        b = keys.shape[0]
        queries = self.queries(state[0]).view(b, self.num_queries, self.key_size)
        logits = queries @ keys.transpose(1, 2) / math.sqrt(self.key_size)  # [B, Q, N]
        weights = logits.masked_fill(~mask.unsqueeze(1), float("-inf")).softmax(-1)
        answers = weights @ values  # [B, Q, d_v]
        inputs = [answers.flatten(1), queries.flatten(1)] + ([pooled] if self.pooled_input else [])
        out, state = self.lstm.step(torch.cat(inputs, -1), state)
        return out, state, weights

    def _heads(self, features: Tensor) -> tuple[Tensor, Tensor]:
        h = self.trunk(features)
        return self.pi(h), self.vf(h).squeeze(-1)

    def forward(
        self, obs: Tensor, state: State, starts: Tensor, return_attention: bool = False
    ) -> tuple[Tensor, ...]:
        """One step: ``(logits [B, A], value [B], state)``, and with ``return_attention`` a
        :class:`FrameAttention` of every query's weights ``[B, Q, N]`` over the entities."""
        keys, values, mask, frame = self._frame(obs)
        state = self.lstm.reset(state, starts)
        out, state, weights = self._step(keys, values, mask, frame.pooled, state)
        logits, value = self._heads(out)
        if not return_attention:
            return logits, value, state
        titles = tuple(f"query {k + 1}" for k in range(self.num_queries))
        return logits, value, state, FrameAttention.of_backbone(frame, weights, titles)

    def unroll(self, obs: Tensor, state: State, starts: Tensor) -> tuple[Tensor, Tensor, State]:
        """Over a sequence: entities of all ``T * B`` frames at once, then the recurrence."""
        t, b = obs.shape[:2]
        keys, values, mask, frame = self._frame(obs.flatten(0, 1))
        per_step = (x.unflatten(0, (t, b)).unbind(0) for x in (keys, values, mask, frame.pooled))
        outputs = []
        for step, (k, v, m, p) in enumerate(zip(*per_step)):
            out, state, _ = self._step(k, v, m, p, self.lstm.reset(state, starts[step]))
            outputs.append(out)
        logits, values_out = self._heads(torch.stack(outputs))
        return logits, values_out, state

    def extra_repr(self) -> str:
        return (
            f"obs_shape={self.obs_shape}, num_queries={self.num_queries}, "
            f"pooled_input={self.pooled_input}"
        )

"""Recurrent agents: Mott et al.'s attention agent and the recurrent actor-critic."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from graphrl.models import MottAttentionAgent, RecurrentActorCritic
from graphrl.nn.mott import spatial_basis

SPACE = gym.spaces.Box(
    0, np.broadcast_to(np.array([5, 3], np.uint8), (5, 5, 2)).copy(), (5, 5, 2), np.uint8
)


def _obs(b: int, t: int | None = None) -> torch.Tensor:
    torch.manual_seed(0)
    shape = (b, 5, 5, 2) if t is None else (t, b, 5, 5, 2)
    obs = torch.randint(0, 4, shape, dtype=torch.uint8)
    obs[..., 0, 0, 0] = 2  # at least one non-background entity per frame
    return obs


def test_mott_queries_take_one_softmax_over_the_real_entities_per_query() -> None:
    torch.manual_seed(0)
    agent = MottAttentionAgent(SPACE, 4, channels=16, num_queries=3, hidden_size=16)
    obs = _obs(4)
    obs[1, ..., 0] = 0  # frame 1: only the forced entity (all else background)
    obs[1, 0, 0, 0] = 2
    logits, value, state, attention = agent(
        obs, agent.initial_state(4), torch.ones(4, dtype=torch.bool), return_attention=True
    )
    weights = attention.weights
    assert attention.titles == ("query 1", "query 2", "query 3")
    assert logits.shape == (4, 4) and value.shape == (4,) and state[0].shape == (4, 16)
    mask = agent.backbone(obs).mask
    assert weights.shape == (4, 3, mask.shape[1])
    torch.testing.assert_close(weights.sum(-1), torch.ones(4, 3))
    assert (weights.masked_select(~mask.unsqueeze(1)) == 0).all()
    torch.testing.assert_close(weights[1, :, 0], torch.ones(3))  # one entity: all weight on it


def test_mott_queries_come_from_the_previous_state() -> None:
    torch.manual_seed(0)
    agent = MottAttentionAgent(SPACE, 4, channels=16, num_queries=2, hidden_size=16)
    obs = _obs(2)
    no_start = torch.zeros(2, dtype=torch.bool)
    state = agent.initial_state(2)
    other = (torch.randn(2, 16), torch.zeros(2, 16))
    w1 = agent(obs, state, no_start, return_attention=True)[3].weights
    w2 = agent(obs, other, no_start, return_attention=True)[3].weights
    assert not torch.allclose(w1, w2)  # a different memory asks different questions
    w3 = agent(obs, other, torch.ones(2, dtype=torch.bool), return_attention=True)[3].weights
    torch.testing.assert_close(w3, w1)  # ... unless the episode starts: reset first


def test_mott_pooled_input_gives_the_lstm_the_max_pooled_entities() -> None:
    """The knob widens the LSTM input by ``D`` and the step then depends on the pooled frame,
    not only on the answers: with every attention weight pinned, a changed max still counts."""
    torch.manual_seed(0)
    plain = MottAttentionAgent(SPACE, 4, channels=16, num_queries=2, hidden_size=16)
    pooled = MottAttentionAgent(
        SPACE, 4, channels=16, num_queries=2, hidden_size=16, pooled_input=True
    )
    answers_and_queries = 2 * (32 + 32)
    assert plain.core.lstm.lstm.input_size == answers_and_queries
    assert pooled.core.lstm.lstm.input_size == answers_and_queries + 16
    for agent in (plain, pooled):
        frame = agent.backbone(_obs(2))
        seen = {}
        step = agent.core.lstm.step

        def spy(x, state, step=step, seen=seen):
            seen["x"] = x
            return step(x, state)

        agent.core.lstm.step = spy
        agent.core.step(frame.nodes, agent.initial_state(2), frame.mask, pos=frame.positions)
        # what the LSTM reads past the answers and queries: the masked max over the entities
        tail = seen["x"][:, answers_and_queries:]
        if agent is plain:
            assert tail.shape[1] == 0
        else:
            real = frame.nodes.masked_fill(~frame.mask.unsqueeze(-1), float("-inf"))
            torch.testing.assert_close(tail, real.amax(1))
            torch.testing.assert_close(tail, frame.pooled)  # = the backbone's max readout


@pytest.mark.parametrize(
    "make",
    [
        lambda: MottAttentionAgent(SPACE, 4, channels=16, hidden_size=16),
        lambda: MottAttentionAgent(SPACE, 4, channels=16, hidden_size=16, pooled_input=True),
        lambda: RecurrentActorCritic(
            SPACE,
            4,
            channels=16,
            core="rmc",
            core_input="entities",
            core_kwargs={"mem_slots": 2, "head_size": 8, "heads": 2},
        ),
        lambda: RecurrentActorCritic(SPACE, 4, channels=16, core_kwargs={"hidden_size": 16}),
    ],
)
def test_unroll_equals_steps_with_resets(make) -> None:
    torch.manual_seed(0)
    agent = make()
    obs = _obs(3, t=5)
    starts = torch.zeros(5, 3, dtype=torch.bool)
    starts[0] = True
    starts[3, 1] = True
    logits, values, final = agent.unroll(obs, agent.initial_state(3), starts)
    state = agent.initial_state(3)
    for t in range(5):
        step_logits, step_value, state = agent(obs[t], state, starts[t])
        torch.testing.assert_close(step_logits, logits[t], rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(step_value, values[t], rtol=1e-5, atol=1e-5)
    for a, b in zip(state, final):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_spatial_basis_is_a_2d_cosine_basis() -> None:
    coords = torch.tensor([[-1.0, -1.0], [1.0, 1.0], [0.0, 1.0]])
    basis = spatial_basis(coords, 3)
    assert basis.shape == (3, 9)
    torch.testing.assert_close(basis[:, 0], torch.ones(3))  # u = v = 0: the constant
    torch.testing.assert_close(basis[0], torch.ones(9))  # x' = y' = 0: every cosine is 1
    # (x', y') = (0.5, 1): cos(pi u / 2) cos(pi v)
    u, v = torch.meshgrid(torch.arange(3.0), torch.arange(3.0), indexing="ij")
    expected = (torch.cos(torch.pi * u * 0.5) * torch.cos(torch.pi * v)).flatten()
    torch.testing.assert_close(basis[2], expected, rtol=1e-5, atol=1e-6)


def test_entity_sets_need_a_core_that_takes_sets() -> None:
    with pytest.raises(ValueError, match="core LSTMCore reads one vector per step"):
        RecurrentActorCritic(SPACE, 4, core="lstm", core_input="entities")
    with pytest.raises(ValueError, match="core_input must be 'pooled' or 'entities', got 'frames'"):
        RecurrentActorCritic(SPACE, 4, core_input="frames")

"""RL math against naive per-element Python loops written from the definitions."""

from __future__ import annotations

import math

import pytest
import torch

from graphrl.rl.functional import (
    a2c_policy_loss,
    compute_gae,
    explained_variance,
    normalize_advantages,
    ppo_policy_loss,
    value_loss,
)


def naive_gae(rewards, values, terms, truncs, final_values, next_value, gamma, lam):
    """A_t = sum_l (gamma * lam)^l delta_{t+l}, summed up to and including the episode's end."""
    num_steps, num_envs = len(rewards), len(rewards[0])

    def delta(t: int, n: int) -> float:
        if terms[t][n]:
            successor = 0.0
        elif truncs[t][n]:
            successor = final_values[t][n]
        elif t + 1 < num_steps:
            successor = values[t + 1][n]
        else:
            successor = next_value[n]
        return rewards[t][n] + gamma * successor - values[t][n]

    advantages = [[0.0] * num_envs for _ in range(num_steps)]
    for n in range(num_envs):
        for t in range(num_steps):
            total, weight = 0.0, 1.0
            for k in range(t, num_steps):
                total += weight * delta(k, n)
                if terms[k][n] or truncs[k][n]:
                    break
                weight *= gamma * lam
            advantages[t][n] = total
    return advantages


def random_rollout(seed: int, num_steps: int = 9, num_envs: int = 4):
    g = torch.Generator().manual_seed(seed)
    rewards = torch.randn(num_steps, num_envs, generator=g, dtype=torch.float64)
    values = torch.randn(num_steps, num_envs, generator=g, dtype=torch.float64)
    terms = torch.rand(num_steps, num_envs, generator=g) < 0.2
    truncs = torch.rand(num_steps, num_envs, generator=g) < 0.2
    final_values = torch.randn(num_steps, num_envs, generator=g, dtype=torch.float64)
    next_value = torch.randn(num_envs, generator=g, dtype=torch.float64)
    return rewards, values, terms, truncs, final_values, next_value


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize(("gamma", "lam"), [(0.99, 0.95), (0.9, 1.0), (0.5, 0.0)])
def test_gae_matches_naive_loop(seed: int, gamma: float, lam: float) -> None:
    rollout = random_rollout(seed)
    advantages, returns = compute_gae(*rollout, gamma, lam)
    naive = naive_gae(*(x.tolist() for x in rollout), gamma, lam)
    expected = torch.tensor(naive, dtype=torch.float64)
    torch.testing.assert_close(advantages, expected)
    torch.testing.assert_close(returns, expected + rollout[1])


def test_gae_truncation_bootstraps_from_final_value_and_termination_does_not() -> None:
    # One env, three steps, reward 1 each, gamma 0.5, lambda 1 (Monte-Carlo): the episode
    # ends at t = 1, then a new one starts at t = 2.
    rewards = torch.ones(3, 1)
    values = torch.zeros(3, 1)
    final_values = torch.tensor([[0.0], [8.0], [0.0]])
    next_value = torch.tensor([4.0])
    no = torch.zeros(3, 1)
    end = torch.tensor([[0.0], [1.0], [0.0]])

    truncated, _ = compute_gae(rewards, values, no, end, final_values, next_value, 0.5, 1.0)
    # t=1: 1 + 0.5 * V(final obs) = 5; t=0: 1 + 0.5 * 5 = 3.5; t=2: 1 + 0.5 * V(s_3) = 3.
    torch.testing.assert_close(truncated.squeeze(1), torch.tensor([3.5, 5.0, 3.0]))

    terminated, _ = compute_gae(rewards, values, end, no, final_values, next_value, 0.5, 1.0)
    torch.testing.assert_close(terminated.squeeze(1), torch.tensor([1.5, 1.0, 3.0]))

    # Both flags: termination wins, the final value is not used.
    both, _ = compute_gae(rewards, values, end, end, final_values, next_value, 0.5, 1.0)
    torch.testing.assert_close(both, terminated)


def test_gae_does_not_leak_across_episode_boundary() -> None:
    rewards = torch.tensor([[0.0], [0.0], [100.0]])
    values = torch.zeros(3, 1)
    term = torch.tensor([[0.0], [1.0], [0.0]])
    advantages, _ = compute_gae(
        rewards, values, term, torch.zeros(3, 1), torch.zeros(3, 1), torch.zeros(1), 0.99, 0.95
    )
    assert advantages[0].item() == 0.0 and advantages[1].item() == 0.0
    assert advantages[2].item() == 100.0


def test_gae_rejects_mismatched_shapes() -> None:
    rewards, values, terms, truncs, final_values, next_value = random_rollout(0)
    with pytest.raises(ValueError, match="values must have the shape of rewards"):
        compute_gae(rewards, values[:-1], terms, truncs, final_values, next_value, 0.9, 0.9)
    with pytest.raises(ValueError, match="next_value must be"):
        compute_gae(rewards, values, terms, truncs, final_values, next_value[:2], 0.9, 0.9)


def test_ppo_policy_loss_matches_naive_loop() -> None:
    g = torch.Generator().manual_seed(0)
    old = torch.randn(64, generator=g, dtype=torch.float64)
    new = old + 0.4 * torch.randn(64, generator=g, dtype=torch.float64)
    adv = torch.randn(64, generator=g, dtype=torch.float64)
    clip = 0.2
    loss, approx_kl, clipfrac = ppo_policy_loss(new, old, adv, clip)

    losses, kls, clipped = [], [], 0
    for n, o, a in zip(new.tolist(), old.tolist(), adv.tolist()):
        ratio = math.exp(n - o)
        losses.append(max(-a * ratio, -a * min(max(ratio, 1 - clip), 1 + clip)))
        kls.append((ratio - 1) - (n - o))
        clipped += abs(ratio - 1) > clip
    assert loss.item() == pytest.approx(sum(losses) / 64)
    assert approx_kl.item() == pytest.approx(sum(kls) / 64)
    assert clipfrac.item() == pytest.approx(clipped / 64)
    assert 0 < clipfrac.item() < 1  # the case exercises both branches
    assert not approx_kl.requires_grad


def test_ppo_policy_loss_is_minus_advantage_at_ratio_one() -> None:
    logprob = torch.randn(10, requires_grad=True)
    adv = torch.randn(10)
    loss, approx_kl, clipfrac = ppo_policy_loss(logprob, logprob.detach(), adv, 0.2)
    assert loss.item() == pytest.approx(-adv.mean().item(), abs=1e-6)
    assert approx_kl.item() == 0.0 and clipfrac.item() == 0.0
    loss.backward()
    torch.testing.assert_close(logprob.grad, -adv / 10)  # d ratio / d logprob = 1 at ratio 1


@pytest.mark.parametrize("clip", [None, 0.1])
def test_value_loss_matches_naive_loop(clip: float | None) -> None:
    g = torch.Generator().manual_seed(1)
    new, old, ret = (torch.randn(32, generator=g, dtype=torch.float64) for _ in range(3))
    expected = []
    for v, v_old, r in zip(new.tolist(), old.tolist(), ret.tolist()):
        err = (v - r) ** 2
        if clip is not None:
            v_clipped = v_old + min(max(v - v_old, -clip), clip)
            err = max(err, (v_clipped - r) ** 2)
        expected.append(0.5 * err)
    assert value_loss(new, old, ret, clip).item() == pytest.approx(sum(expected) / 32)


def test_clipped_value_loss_is_pessimistic() -> None:
    g = torch.Generator().manual_seed(2)
    new, old, ret = (torch.randn(100, generator=g) for _ in range(3))
    assert value_loss(new, old, ret, 0.1) >= value_loss(new, old, ret, None)


def test_a2c_policy_loss_treats_advantages_as_constants() -> None:
    logprob = torch.tensor([-0.5, -1.0, -2.0], requires_grad=True)
    adv = torch.tensor([1.0, -2.0, 0.5], requires_grad=True)
    loss = a2c_policy_loss(logprob, adv)
    assert loss.item() == pytest.approx(-(1.0 * -0.5 + -2.0 * -1.0 + 0.5 * -2.0) / 3)
    loss.backward()
    assert adv.grad is None
    torch.testing.assert_close(logprob.grad, -adv.detach() / 3)


def test_normalize_advantages() -> None:
    adv = torch.tensor([1.0, 2.0, 3.0, 10.0])
    out = normalize_advantages(adv)
    assert out.mean().abs().item() < 1e-6
    assert out.std().item() == pytest.approx(1.0, abs=1e-6)
    torch.testing.assert_close(normalize_advantages(torch.tensor([5.0])), torch.tensor([0.0]))
    assert torch.isfinite(normalize_advantages(torch.ones(8))).all()


def test_explained_variance() -> None:
    y = torch.tensor([1.0, 2.0, 3.0, 4.0])
    assert explained_variance(y, y).item() == pytest.approx(1.0)
    assert explained_variance(torch.full_like(y, y.mean().item()), y).item() == pytest.approx(0.0)
    noisy = y + torch.tensor([0.5, -0.5, 0.5, -0.5])
    expected = 1 - torch.tensor([0.5, -0.5, 0.5, -0.5]).var(unbiased=False) / y.var(unbiased=False)
    assert explained_variance(noisy, y).item() == pytest.approx(expected.item())
    assert math.isnan(explained_variance(y, torch.ones(4)).item())

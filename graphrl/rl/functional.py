"""Pure on-policy RL math: generalised advantage estimation and the PPO / A2C losses.

Every function here is stateless tensor code, importable and tested against a naive Python
loop (``tests/rl/test_functional.py``), so no algorithm re-implements it. Shapes use ``T`` for
rollout steps, ``N`` for parallel environments and ``B`` for a (mini)batch of transitions.

Time-step convention (the one ``graphrl.rl.rollout`` fills in): at step ``t`` environment
``n`` was in ``obs[t, n]``, whose value estimate is ``values[t, n]``; the action taken there
earned ``rewards[t, n]`` and ended the episode if ``terminations[t, n]`` or
``truncations[t, n]`` is set. The observation that followed is ``obs[t + 1, n]`` unless the
episode ended, in which case ``obs[t + 1, n]`` is already the first observation of the next
episode (same-step autoreset) and the true successor is the episode's *final* observation.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = [
    "a2c_policy_loss",
    "compute_gae",
    "explained_variance",
    "normalize_advantages",
    "ppo_policy_loss",
    "value_loss",
]


def compute_gae(
    rewards: Tensor,
    values: Tensor,
    terminations: Tensor,
    truncations: Tensor,
    final_values: Tensor,
    next_value: Tensor,
    gamma: float,
    gae_lambda: float,
) -> tuple[Tensor, Tensor]:
    """Generalised advantage estimation (Schulman et al., 2016) with correct truncation.

    The one-step TD error of step ``t`` is ``delta_t = r_t + gamma * V(s'_t) - V(s_t)``, where
    the successor value ``V(s'_t)`` is

    * ``0`` if the episode *terminated* at ``t`` (a true end: no future reward);
    * ``final_values[t]``, the value of the episode's final observation, if it was *truncated*
      at ``t`` (a time limit is not an end of the task, so we bootstrap from where the agent
      actually was; treating it as a termination would teach the critic that running out of
      time is worth nothing, CleanRL issue #198 / SB3 ``handle_timeout_termination``);
    * ``values[t + 1]`` otherwise, and ``next_value`` after the last step.

    Advantages are ``A_t = delta_t + gamma * gae_lambda * (1 - done_t) * A_{t+1}``: the trace
    is cut at every episode boundary (terminated *or* truncated), because ``t + 1`` belongs to
    the next episode. Termination wins when both flags are set.

    Args:
        rewards: ``[T, N]`` rewards ``r_t``.
        values: ``[T, N]`` critic values ``V(s_t)`` recorded during the rollout.
        terminations: ``[T, N]`` 1 where the episode terminated at ``t`` (bool or float).
        truncations: ``[T, N]`` 1 where the episode was truncated at ``t`` (bool or float).
        final_values: ``[T, N]`` ``V(final observation)`` where truncated; ignored elsewhere.
        next_value: ``[N]`` ``V(s_T)``, the value of the observation after the last step.
        gamma: Discount factor.
        gae_lambda: GAE's lambda (1 = Monte-Carlo returns, 0 = one-step TD).

    Returns:
        ``(advantages, returns)``, both ``[T, N]``, with ``returns = advantages + values``
        (the critic's regression target).
    """
    if rewards.dim() != 2:
        raise ValueError(f"rewards must be [T, N], got shape {tuple(rewards.shape)}")
    for name, tensor in (
        ("values", values),
        ("terminations", terminations),
        ("truncations", truncations),
        ("final_values", final_values),
    ):
        if tensor.shape != rewards.shape:
            raise ValueError(
                f"{name} must have the shape of rewards {tuple(rewards.shape)}, "
                f"got {tuple(tensor.shape)}"
            )
    if next_value.shape != rewards.shape[1:]:
        raise ValueError(
            f"next_value must be [N] = {tuple(rewards.shape[1:])}, got {tuple(next_value.shape)}"
        )
    terminated = terminations.to(rewards.dtype)
    truncated = truncations.to(rewards.dtype) * (1.0 - terminated)
    done = torch.maximum(terminated, truncated)
    # Successor value: values[t + 1] within the episode, final_values[t] after a truncation,
    # 0 after a termination.
    following = torch.cat([values[1:], next_value.unsqueeze(0)], dim=0)
    successor = (1.0 - done) * following + truncated * final_values
    deltas = rewards + gamma * successor - values

    advantages = torch.empty_like(rewards)
    carry = torch.zeros_like(next_value, dtype=rewards.dtype)
    for t in range(rewards.shape[0] - 1, -1, -1):
        carry = deltas[t] + gamma * gae_lambda * (1.0 - done[t]) * carry
        advantages[t] = carry
    return advantages, advantages + values


def ppo_policy_loss(
    new_logprob: Tensor, old_logprob: Tensor, advantages: Tensor, clip_coef: float
) -> tuple[Tensor, Tensor, Tensor]:
    """PPO's clipped surrogate objective (Schulman et al., 2017), as a loss to minimise.

    ``loss = mean(max(-A * r, -A * clip(r, 1 - eps, 1 + eps)))`` with the probability ratio
    ``r = exp(new_logprob - old_logprob)``.

    Args:
        new_logprob: ``[B]`` log-probabilities of the taken actions under the current policy.
        old_logprob: ``[B]`` the same under the policy that collected the rollout.
        advantages: ``[B]`` advantage estimates (normalised or not).
        clip_coef: ``eps``, the ratio clipping range.

    Returns:
        ``(loss, approx_kl, clipfrac)``, scalars. ``approx_kl`` is the low-variance unbiased
        estimator ``mean((r - 1) - log r)`` of KL(old || new) (Schulman's "k3"), and
        ``clipfrac`` the fraction of samples with ``|r - 1| > clip_coef``; both are detached.
    """
    logratio = new_logprob - old_logprob
    ratio = logratio.exp()
    unclipped = -advantages * ratio
    clipped = -advantages * torch.clamp(ratio, 1.0 - clip_coef, 1.0 + clip_coef)
    loss = torch.max(unclipped, clipped).mean()
    with torch.no_grad():
        approx_kl = ((ratio - 1.0) - logratio).mean()
        clipfrac = ((ratio - 1.0).abs() > clip_coef).to(ratio.dtype).mean()
    return loss, approx_kl, clipfrac


def value_loss(
    new_value: Tensor, old_value: Tensor, returns: Tensor, clip_coef: float | None = None
) -> Tensor:
    """Critic regression loss ``0.5 * mean((V - R)^2)``, optionally clipped as in PPO2.

    With ``clip_coef`` the new value may move at most ``clip_coef`` away from the value
    recorded during the rollout, and the loss is the larger (pessimistic) of the clipped and
    unclipped squared errors: ``0.5 * mean(max((V - R)^2, (V_old + clip(V - V_old) - R)^2))``.

    Args:
        new_value: ``[B]`` values under the current critic.
        old_value: ``[B]`` values recorded during the rollout (used only when clipping).
        returns: ``[B]`` regression targets (GAE returns).
        clip_coef: Clipping range, or ``None`` for the plain squared error.

    Returns:
        Scalar loss.
    """
    unclipped = (new_value - returns).pow(2)
    if clip_coef is None:
        return 0.5 * unclipped.mean()
    clipped_value = old_value + torch.clamp(new_value - old_value, -clip_coef, clip_coef)
    clipped = (clipped_value - returns).pow(2)
    return 0.5 * torch.max(unclipped, clipped).mean()


def a2c_policy_loss(logprob: Tensor, advantages: Tensor) -> Tensor:
    """The vanilla policy-gradient (A2C) loss ``-mean(A * log pi(a|s))``.

    Args:
        logprob: ``[B]`` log-probabilities of the taken actions (with gradient).
        advantages: ``[B]`` advantage estimates, treated as constants.

    Returns:
        Scalar loss.
    """
    return -(advantages.detach() * logprob).mean()


def normalize_advantages(advantages: Tensor, eps: float = 1e-8) -> Tensor:
    """Standardise advantages to zero mean and unit standard deviation.

    Args:
        advantages: ``[B]`` (any shape; statistics are over all elements).
        eps: Added to the standard deviation to avoid division by zero.

    Returns:
        Tensor of the input's shape. A single element is only centred (its std is undefined).
    """
    if advantages.numel() < 2:
        return advantages - advantages.mean()
    return (advantages - advantages.mean()) / (advantages.std() + eps)


def explained_variance(y_pred: Tensor, y_true: Tensor) -> Tensor:
    """Fraction of the variance of ``y_true`` explained by ``y_pred``.

    ``1 - Var[y - y_hat] / Var[y]``.

    1 is a perfect critic, 0 is no better than predicting the mean, negative is worse.

    Args:
        y_pred: ``[B]`` predictions (critic values).
        y_true: ``[B]`` targets (returns).

    Returns:
        Scalar tensor; NaN when ``y_true`` has zero variance (as in CleanRL and SB3).
    """
    var_true = y_true.var(unbiased=False)
    explained = 1.0 - (y_true - y_pred).var(unbiased=False) / var_true
    return torch.where(var_true == 0, torch.full_like(explained, float("nan")), explained)

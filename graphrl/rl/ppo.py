"""Proximal Policy Optimization (Schulman et al., 2017): CleanRL's ``ppo.py`` in Lightning."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from graphrl.rl.functional import normalize_advantages, ppo_policy_loss, value_loss
from graphrl.rl.on_policy import OnPolicyModule
from graphrl.rl.recurrent import SequenceBatch, is_recurrent
from graphrl.rl.rollout import Transitions

__all__ = ["PPO"]


class PPO(OnPolicyModule):
    """PPO with a clipped surrogate, GAE, optional value clipping and early stop on KL.

    Each training step collects ``num_envs * num_steps`` transitions, then runs
    ``update_epochs`` passes over them in ``num_minibatches`` shuffled minibatches.

    Args:
        env_id: Environment id (``graphrl/BoxWorld-...``, ``MiniGrid-...`` or a gymnasium id).
        update_epochs: Passes over each rollout.
        num_minibatches: Minibatches per pass (a recurrent policy's minibatch is a set of envs).
        clip_coef: Surrogate clipping coefficient.
        clip_vloss: Clip the value loss with ``clip_coef`` as well.
        target_kl: Stop the update epochs early once the approximate KL exceeds it.
        **kwargs: Every argument of :class:`~graphrl.rl.on_policy.OnPolicyModule` (``policy``,
            ``num_envs``, ``num_steps``, ``learning_rate``, ...), with its defaults.
    """

    def __init__(
        self,
        env_id: str,
        update_epochs: int = 4,
        num_minibatches: int = 4,
        clip_coef: float = 0.2,
        clip_vloss: bool = True,
        target_kl: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(env_id=env_id, **kwargs)
        num_envs = self.hparams.num_envs
        if update_epochs < 1:
            raise ValueError(f"update_epochs must be >= 1, got {update_epochs}")
        if not 1 <= num_minibatches <= self.batch_size:
            raise ValueError(
                f"num_minibatches must be in [1, num_envs * num_steps = {self.batch_size}], "
                f"got {num_minibatches}"
            )
        if is_recurrent(self.policy) and num_minibatches > num_envs:
            raise ValueError(
                f"num_minibatches={num_minibatches} > num_envs={num_envs}: a recurrent policy "
                "trains on whole env sequences, so lower num_minibatches to at most num_envs"
            )
        if clip_coef <= 0:
            raise ValueError(f"clip_coef must be > 0, got {clip_coef}")
        if target_kl is not None and target_kl <= 0:
            raise ValueError(f"target_kl must be > 0 or None, got {target_kl}")

    def update(self, data: Transitions | SequenceBatch) -> dict[str, Tensor]:
        """``update_epochs`` passes of ``num_minibatches`` clipped-surrogate steps over ``data``.

        With a recurrent policy ``data`` holds env sequences and a minibatch is a set of envs.
        """
        hp = self.hparams
        history: dict[str, list[Tensor]] = {}
        for _ in range(hp.update_epochs):
            order = torch.randperm(len(data), generator=self._shuffle).to(self.device)
            for index in order.tensor_split(hp.num_minibatches):
                batch = data[index]
                logprob, entropy, value = self.evaluate_batch(batch)
                advantages = batch.advantages
                if hp.norm_adv:
                    advantages = normalize_advantages(advantages)
                policy_loss, approx_kl, clipfrac = ppo_policy_loss(
                    logprob, batch.logprobs, advantages, hp.clip_coef
                )
                v_loss = value_loss(
                    value, batch.values, batch.returns, hp.clip_coef if hp.clip_vloss else None
                )
                entropy = entropy.mean()
                loss = policy_loss - hp.ent_coef * entropy + hp.vf_coef * v_loss
                losses = {
                    "losses/policy_loss": policy_loss.detach(),
                    "losses/value_loss": v_loss.detach(),
                    "losses/entropy": entropy.detach(),
                    "losses/approx_kl": approx_kl,
                    "losses/clipfrac": clipfrac,
                }
                self.optimize(loss, losses)
                for name, tensor in losses.items():
                    history.setdefault(name, []).append(tensor)
            if hp.target_kl is not None:
                # Every rank must take the same decision, or DDP would wait forever.
                kl = self.trainer.strategy.reduce(approx_kl, reduce_op="mean")
                if kl > hp.target_kl:
                    break
        return {name: torch.stack(values).mean() for name, values in history.items()}

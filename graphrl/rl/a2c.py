"""Advantage Actor-Critic (Mnih et al., 2016), synchronous, with SB3's defaults."""

from __future__ import annotations

from typing import Any

from torch import Tensor

from graphrl.rl.functional import a2c_policy_loss, normalize_advantages, value_loss
from graphrl.rl.on_policy import OnPolicyModule, OptimizerName
from graphrl.rl.recurrent import SequenceBatch
from graphrl.rl.rollout import Transitions

__all__ = ["A2C"]


class A2C(OnPolicyModule):
    """A2C: one gradient step per short rollout on the policy-gradient + value + entropy loss.

    Defaults follow Stable-Baselines3 (5-step rollouts, RMSprop lr 7e-4, no GAE smoothing).

    Args:
        env_id: Environment id (``graphrl/BoxWorld-...``, ``MiniGrid-...`` or a gymnasium id).
        num_steps: Steps per env and rollout.
        gae_lambda: GAE lambda (1.0 = n-step returns, classic A2C).
        norm_adv: Normalise the advantages of each rollout.
        ent_coef: Entropy bonus coefficient.
        learning_rate: Optimizer learning rate.
        anneal_lr: Decay the learning rate linearly to 0 over the run.
        optimizer: ``rmsprop`` (alpha 0.99) or ``adam``.
        **kwargs: Every other argument of :class:`~graphrl.rl.on_policy.OnPolicyModule`
            (``policy``, ``num_envs``, ``vf_coef``, ...), with its defaults.
    """

    def __init__(
        self,
        env_id: str,
        num_steps: int = 5,
        gae_lambda: float = 1.0,
        norm_adv: bool = False,
        ent_coef: float = 0.0,
        learning_rate: float = 7e-4,
        anneal_lr: bool = False,
        optimizer: OptimizerName = "rmsprop",
        **kwargs: Any,
    ) -> None:
        super().__init__(
            env_id=env_id,
            num_steps=num_steps,
            gae_lambda=gae_lambda,
            norm_adv=norm_adv,
            ent_coef=ent_coef,
            learning_rate=learning_rate,
            anneal_lr=anneal_lr,
            optimizer=optimizer,
            **kwargs,
        )

    def update(self, data: Transitions | SequenceBatch) -> dict[str, Tensor]:
        """One gradient step on the whole rollout."""
        hp = self.hparams
        logprob, entropy, value = self.evaluate_batch(data)
        advantages = normalize_advantages(data.advantages) if hp.norm_adv else data.advantages
        policy_loss = a2c_policy_loss(logprob, advantages)
        v_loss = value_loss(value, data.values, data.returns)
        entropy = entropy.mean()
        loss = policy_loss - hp.ent_coef * entropy + hp.vf_coef * v_loss
        losses = {
            "losses/policy_loss": policy_loss.detach(),
            "losses/value_loss": v_loss.detach(),
            "losses/entropy": entropy.detach(),
        }
        self.optimize(loss, losses)
        return losses

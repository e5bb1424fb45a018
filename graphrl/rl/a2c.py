"""Advantage Actor-Critic (Mnih et al., 2016), synchronous, with SB3's defaults."""

from __future__ import annotations

from typing import Any, Literal

from torch import Tensor

from graphrl.rl.functional import a2c_policy_loss, normalize_advantages, value_loss
from graphrl.rl.on_policy import OnPolicyModule, OptimizerName
from graphrl.rl.policies import MLPPolicy, PolicyFactory
from graphrl.rl.recurrent import SequenceBatch
from graphrl.rl.rollout import Transitions

__all__ = ["A2C"]


class A2C(OnPolicyModule):
    """A2C: one gradient step per short rollout on the policy-gradient + value + entropy loss.

    Defaults follow Stable-Baselines3 (5-step rollouts, RMSprop lr 7e-4, no GAE smoothing).

    Args:
        env_id: Environment id (``graphrl/BoxWorld-...``, ``MiniGrid-...`` or a gymnasium id).
        policy: Policy factory ``policy(observation_space, num_actions) -> nn.Module``; in YAML a
            ``class_path`` with the policy's own ``init_args``.
        env_kwargs: Keyword arguments for every env.
        num_envs: Parallel envs per rank.
        num_steps: Steps per env and rollout.
        total_timesteps: Env steps of the whole run (all ranks); sets the number of iterations.
        gamma: Discount factor.
        gae_lambda: GAE lambda (1.0 = n-step returns, classic A2C).
        norm_adv: Normalise the advantages of each rollout.
        ent_coef: Entropy bonus coefficient.
        vf_coef: Value loss coefficient.
        max_grad_norm: Global gradient-norm clip (None: no clipping).
        learning_rate: Optimizer learning rate.
        anneal_lr: Decay the learning rate linearly to 0 over the run.
        optimizer: ``rmsprop`` (alpha 0.99) or ``adam``.
        optimizer_eps: Optimizer epsilon.
        seed: Seed of the envs (env ``i`` of rank ``r``: ``seed + r * num_envs + i``).
        vector_mode: ``sync`` (envs in this process) or ``async`` (a process per env).
        compile: Run the update's policy forward and backward through ``torch.compile``.
    """

    def __init__(
        self,
        env_id: str,
        policy: PolicyFactory = MLPPolicy,
        env_kwargs: dict[str, Any] | None = None,
        num_envs: int = 8,
        num_steps: int = 5,
        total_timesteps: int = 500_000,
        gamma: float = 0.99,
        gae_lambda: float = 1.0,
        norm_adv: bool = False,
        ent_coef: float = 0.0,
        vf_coef: float = 0.5,
        max_grad_norm: float | None = 0.5,
        learning_rate: float = 7e-4,
        anneal_lr: bool = False,
        optimizer: OptimizerName = "rmsprop",
        optimizer_eps: float = 1e-5,
        seed: int = 1,
        vector_mode: Literal["sync", "async"] = "sync",
        compile: bool = False,
    ) -> None:
        super().__init__(
            policy=policy,
            env_id=env_id,
            env_kwargs=env_kwargs,
            num_envs=num_envs,
            num_steps=num_steps,
            total_timesteps=total_timesteps,
            gamma=gamma,
            gae_lambda=gae_lambda,
            norm_adv=norm_adv,
            ent_coef=ent_coef,
            vf_coef=vf_coef,
            max_grad_norm=max_grad_norm,
            learning_rate=learning_rate,
            anneal_lr=anneal_lr,
            optimizer=optimizer,
            optimizer_eps=optimizer_eps,
            seed=seed,
            vector_mode=vector_mode,
            compile=compile,
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

"""How PPO and A2C combine their losses, pinned against a hand computation.

A real ``Trainer.fit`` of one iteration records, at every optimizer step, the minibatch, the
parameters it was evaluated with and the gradients the optimizer is about to apply. The test
recomputes ``policy - ent_coef * entropy + vf_coef * value`` from the definitions (clipped
surrogate, clipped value loss, advantage normalisation for PPO; plain policy gradient and
squared error for A2C), its gradient, and the clipping to ``max_grad_norm``, and requires the
same gradients. Coefficients are distinct and the clip is small, so a flipped sign, a dropped
or misplaced coefficient, or a missing clip changes the gradients.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch.distributions import Categorical
from torch.func import functional_call

from graphrl.rl import A2C, PPO, MLPPolicy

ENT_COEF, VF_COEF, CLIP_COEF, MAX_GRAD_NORM = 0.3, 0.7, 0.2, 0.05


class _Recording:
    """Mixin: keeps each minibatch, the parameters it met and the gradients stepped with."""

    def setup(self, stage: str) -> None:
        self.records: list[dict[str, Any]] = []
        super().setup(stage)

    def configure_optimizers(self) -> Any:
        configured = super().configure_optimizers()
        opt = configured if isinstance(configured, torch.optim.Optimizer) else configured[0][0]
        opt.register_step_pre_hook(self._record_gradients)
        return configured

    def evaluate_batch(self, batch: Any) -> Any:
        params = {n: p.detach().clone() for n, p in self.named_parameters()}
        self.records.append({"batch": batch, "params": params})
        return super().evaluate_batch(batch)

    def _record_gradients(self, opt: Any, args: Any, kwargs: Any) -> None:
        self.records[-1]["grads"] = {n: p.grad.clone() for n, p in self.named_parameters()}


class RecordingPPO(_Recording, PPO):
    pass


class RecordingA2C(_Recording, A2C):
    pass


def _evaluate(module, params: dict[str, torch.Tensor], batch: Any):
    logits, value = functional_call(module, params, (batch.obs,))
    dist = Categorical(logits=logits)
    return dist.log_prob(batch.actions), dist.entropy().mean(), value


def _ppo_loss(module, params, batch) -> torch.Tensor:
    logprob, entropy, value = _evaluate(module, params, batch)
    adv = batch.advantages
    adv = (adv - adv.mean()) / (adv.std() + 1e-8)
    ratio = (logprob - batch.logprobs).exp()
    surrogate = torch.min(adv * ratio, adv * ratio.clamp(1 - CLIP_COEF, 1 + CLIP_COEF))
    policy = -surrogate.mean()
    moved = batch.values + (value - batch.values).clamp(-CLIP_COEF, CLIP_COEF)
    squared = torch.max((value - batch.returns) ** 2, (moved - batch.returns) ** 2)
    return policy - ENT_COEF * entropy + VF_COEF * 0.5 * squared.mean()


def _a2c_loss(module, params, batch) -> torch.Tensor:
    logprob, entropy, value = _evaluate(module, params, batch)
    policy = -(batch.advantages * logprob).mean()
    return policy - ENT_COEF * entropy + VF_COEF * 0.5 * ((value - batch.returns) ** 2).mean()


@pytest.mark.parametrize(
    ("cls", "loss", "extra"),
    [
        (RecordingPPO, _ppo_loss, {"update_epochs": 2, "num_minibatches": 2,
                                   "clip_coef": CLIP_COEF, "learning_rate": 0.05}),
        (RecordingA2C, _a2c_loss, {}),
    ],
    ids=["ppo", "a2c"],
)  # fmt: skip
def test_the_update_steps_with_the_clipped_gradient_of_the_composed_loss(
    cls, loss, extra, make_trainer
) -> None:
    module = cls(
        env_id="Corridor-v0",
        policy=lambda space, n: MLPPolicy(space, n, hidden=8),
        num_envs=2,
        num_steps=4,
        total_timesteps=8,  # one iteration
        ent_coef=ENT_COEF,
        vf_coef=VF_COEF,
        max_grad_norm=MAX_GRAD_NORM,
        anneal_lr=False,
        **extra,
    )
    make_trainer(max_epochs=-1).fit(module)
    expected_steps = extra.get("update_epochs", 1) * extra.get("num_minibatches", 1)
    assert len(module.records) == expected_steps

    clipped_steps = 0
    for record in module.records:
        params = {n: p.clone().requires_grad_(True) for n, p in record["params"].items()}
        grads = torch.autograd.grad(loss(module, params, record["batch"]), list(params.values()))
        norm = torch.linalg.vector_norm(torch.stack([g.norm() for g in grads]))
        scale = min(1.0, MAX_GRAD_NORM / (float(norm) + 1e-6))  # clip_grad_norm_'s rule
        clipped_steps += scale < 1.0
        for name, grad in zip(params, grads):
            torch.testing.assert_close(record["grads"][name], grad * scale, rtol=1e-4, atol=1e-7)
    assert clipped_steps > 0  # the clip was exercised, not only the composition

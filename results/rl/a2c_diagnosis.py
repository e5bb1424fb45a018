"""What the first A2C Box-World config did to its features: RMSprop vs Adam, same everything else.

Trains the old ``configs/boxworld/a2c_attention.yaml`` agent (2 attention layers, 2 heads, no
edge features, 16 envs x 16 steps, lr 7e-4) for ``--iterations`` updates and prints, every
``--every`` updates, on the envs' current observations: the fraction of trunk ReLU units dead
on the whole batch, the spread (std over envs, averaged over channels) of the pooled features,
and the largest logit difference between envs (0 = the policy ignores the observation).

    python results/rl/a2c_diagnosis.py --optimizer rmsprop
    python results/rl/a2c_diagnosis.py --optimizer adam
"""

from __future__ import annotations

import argparse
import functools

import lightning as L
import torch

from graphrl.models import GraphActorCritic
from graphrl.nn import ProcessorConfig
from graphrl.rl import A2C


class FeatureProbe(L.Callback):
    def __init__(self, every: int) -> None:
        self.every = every

    def on_train_batch_end(self, trainer, module, *args) -> None:
        if module.iteration % self.every and module.iteration != 1:
            return
        obs = torch.as_tensor(module.collector.next_obs)
        with torch.no_grad():
            pooled = module.policy.backbone(obs).pooled
            hidden = module.policy.trunk(pooled)
            logits = module.policy.pi(hidden)
        dead = (hidden.max(0).values <= 0).float().mean().item()
        spread = pooled.std(0).mean().item()
        gap = (logits - logits.mean(0)).abs().max().item()
        entropy = trainer.callback_metrics["losses/entropy"].item()
        print(
            f"update {module.iteration:4d}  dead trunk units {dead:.2f}  pooled spread "
            f"{spread:.3f}  logit gap across envs {gap:.3f}  entropy {entropy:.3f}",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--optimizer", choices=["rmsprop", "adam"], default="rmsprop")
    parser.add_argument("--iterations", type=int, default=50)
    parser.add_argument("--every", type=int, default=25)
    args = parser.parse_args()
    torch.set_num_threads(1)
    L.seed_everything(0, verbose=False)
    policy = functools.partial(
        GraphActorCritic,
        channels=64,
        encoder="objects",
        encoder_kwargs={"background": [0, 1], "compact": True},
        topology="complete",
        processor=ProcessorConfig(layer="attention", num_layers=2, heads=2),
        readout="max",
        hidden=128,
    )
    model = A2C(
        "graphrl/BoxWorld-Small-v0",
        policy=policy,
        num_envs=16,
        num_steps=16,
        total_timesteps=256 * args.iterations,
        learning_rate=7e-4,
        gae_lambda=0.95,
        norm_adv=True,
        ent_coef=0.01,
        optimizer=args.optimizer,
        seed=0,
    )
    L.Trainer(
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        max_epochs=-1,
        callbacks=[FeatureProbe(args.every)],
    ).fit(model)


if __name__ == "__main__":
    main()

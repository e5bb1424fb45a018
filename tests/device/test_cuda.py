"""The agent and the PPO loop on a CUDA device (skipped without one; ``scripts/gpu_check.sh``
runs them when a GPU is there).

- the one agent gives the same outputs on CUDA as on the CPU (every observation kind it is
  built for in the wiring tests, feed-forward and recurrent);
- a Box-World PPO iteration on CUDA, after a warm-up iteration (value checks sync once per
  shape), runs its rollout and update under ``torch.cuda.set_sync_debug_mode("error")``: no
  hidden host-device synchronisation in the steady state.
"""

from __future__ import annotations

import functools

import gymnasium as gym
import pytest
import torch

from graphrl.models import ActorCritic, RelationalBackbone
from graphrl.nn import LSTMCore, ProcessorConfig
from graphrl.rl import PPO

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


def _agent(core: bool) -> ActorCritic:
    space = gym.spaces.Box(-1.0, 1.0, (6, 3))
    backbone = functools.partial(
        RelationalBackbone, channels=16, processor=ProcessorConfig(num_layers=2, heads=2)
    )
    lstm = functools.partial(LSTMCore, hidden_size=16) if core else None
    return ActorCritic(space, gym.spaces.Discrete(6), backbone=backbone, core=lstm, hidden=16)


@pytest.mark.parametrize("core", [False, True], ids=["feedforward", "lstm"])
def test_the_agent_gives_the_same_outputs_on_cuda(core: bool) -> None:
    torch.manual_seed(0)
    agent = _agent(core)
    obs = torch.randn(4, 6, 3)
    args = (agent.initial_state(4), torch.ones(4, dtype=torch.bool)) if core else ()
    cpu = agent(obs, *args)
    cuda_agent = agent.cuda()
    moved = tuple(a.cuda() if isinstance(a, torch.Tensor) else tuple(s.cuda() for s in a)
                  for a in args)  # fmt: skip
    gpu = cuda_agent(obs.cuda(), *moved)
    for a, b in zip(cpu[:2], gpu[:2]):
        torch.testing.assert_close(a, b.cpu(), rtol=1e-4, atol=1e-4)


def test_boxworld_iteration_makes_no_host_sync_after_warm_up() -> None:
    import lightning as L

    torch.manual_seed(0)
    backbone = functools.partial(
        RelationalBackbone,
        channels=32,
        encoder="objects",
        encoder_kwargs={"background": [0, 1], "compact": True},
        processor=ProcessorConfig(layer="attention", num_layers=2, heads=2),
    )
    model = PPO(
        env_id="graphrl/BoxWorld-Small-v0",
        policy=functools.partial(ActorCritic, backbone=backbone, hidden=32),
        num_envs=8,
        num_steps=16,
        total_timesteps=8 * 16 * 3,
        num_minibatches=2,
        update_epochs=1,
    )

    class SyncErrors(L.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
            if batch_idx >= 1:  # the first iteration checks values once per shape
                torch.cuda.set_sync_debug_mode("error")

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            torch.cuda.set_sync_debug_mode("default")

    trainer = L.Trainer(
        accelerator="gpu", devices=1, max_epochs=-1, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, callbacks=[SyncErrors()],
    )  # fmt: skip
    try:
        trainer.fit(model)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert model.iteration == 3

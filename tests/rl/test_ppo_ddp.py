"""Two real CPU DDP processes (gloo): distinct env seeds per rank, identical parameters."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import Callback

from graphrl.callbacks import MetricsCSV
from graphrl.rl import PPO


class RecordRank(Callback):
    """Saves, per rank, what the test compares: env seeds, the last rollout, parameters."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def on_train_end(self, trainer: L.Trainer, pl_module: PPO) -> None:
        collector = pl_module.collector
        record = {
            "seeds": collector.seeds,
            "env_seeds": list(collector.envs.get_attr("np_random_seed")),
            "obs": collector.buffer.obs.clone(),
            "params": [p.detach().clone() for p in pl_module.parameters()],
            "iteration": pl_module.iteration,
            "global_step": trainer.global_step,
            "env_steps": pl_module.env_steps,
            "logged": {k: v.item() for k, v in trainer.logged_metrics.items()},
        }
        torch.save(record, self.directory / f"rank{trainer.global_rank}.pt")


@pytest.mark.ddp
def test_ppo_ddp_two_ranks(tmp_path: Path) -> None:
    model = PPO(
        "toy_envs:Corridor-v0",
        num_envs=2,
        num_steps=16,
        total_timesteps=2 * 2 * 16 * 2,  # 2 iterations of 2 ranks x 2 envs x 16 steps
        update_epochs=2,
        num_minibatches=2,
        target_kl=1e-12,  # the early-stop decision is collective: both ranks stop after 1 epoch
        seed=7,
    )
    initial = [p.detach().clone() for p in model.parameters()]
    trainer = L.Trainer(
        accelerator="cpu",
        devices=2,
        strategy="ddp_spawn",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        log_every_n_steps=1,
        max_epochs=1,
        callbacks=[RecordRank(tmp_path), MetricsCSV()],
        default_root_dir=str(tmp_path),
    )
    trainer.fit(model)
    rank0, rank1 = (torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1))
    assert rank0["seeds"] == [7, 8] and rank1["seeds"] == [9, 10]
    assert rank0["env_seeds"] == [7, 8] and rank1["env_seeds"] == [9, 10]
    assert not torch.equal(rank0["obs"], rank1["obs"])  # each rank saw its own experience
    assert rank0["iteration"] == rank1["iteration"] == 2
    assert rank0["global_step"] == rank1["global_step"] == 2 * 2  # 1 epoch x 2 minibatches
    assert rank0["env_steps"] == rank1["env_steps"] == 128
    assert rank0["logged"]["train/env_steps"] == 128
    # Episode statistics are reduced over ranks, so every rank logs the same figures.
    assert rank0["logged"]["charts/episodic_length"] == rank1["logged"]["charts/episodic_length"]
    # The history is written once, by rank 0, on the env-step axis of the whole run.
    rows = (tmp_path / MetricsCSV.FILENAME).read_text().splitlines()
    assert rows[0].startswith("env_steps,iteration,")
    assert [row.split(",")[:2] for row in rows[1:]] == [["64", "1"], ["128", "2"]]
    for a, b in zip(rank0["params"], rank1["params"]):
        assert torch.equal(a, b)
    assert any(not torch.equal(a, init) for a, init in zip(rank0["params"], initial))

"""A real 2-process DDP run (CPU, gloo): each rank records the batches it trained on."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import lightning as L
import pytest
import torch
from torch import nn

from datamodules import NthFarthestDataModule

BATCH = 4
TRAIN_BATCHES = 5  # odd on purpose: 3 per rank, 6 global batches per epoch
VAL_BATCHES = 3


def batch_hash(batch: dict[str, torch.Tensor]) -> str:
    digest = hashlib.sha1()
    for key in sorted(batch):
        digest.update(batch[key].numpy().tobytes())
    return digest.hexdigest()


def make_datamodule() -> NthFarthestDataModule:
    return NthFarthestDataModule(
        num_entities=6,
        eval_num_entities=[6, 9],
        batch_size=BATCH,
        train_samples_per_epoch=BATCH * TRAIN_BATCHES,
        val_samples=BATCH * VAL_BATCHES,
        seed=11,
    )


class RecordingModule(L.LightningModule):
    """Trains a linear probe and writes what each rank saw to ``out_dir/rank{r}.json``."""

    def __init__(self, out_dir: str, num_features: int) -> None:
        super().__init__()
        self.out_dir = out_dir
        self.layer = nn.Linear(num_features, 1)
        self.seen: list[list] = []

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        self.seen.append(["train", self.current_epoch, batch_hash(batch)])
        return self.layer(batch["x"]).pow(2).mean()

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int, dataloader_idx=0):
        self.seen.append(["val", dataloader_idx, batch_hash(batch)])

    def on_fit_end(self) -> None:
        path = Path(self.out_dir) / f"rank{self.global_rank}.json"
        path.write_text(json.dumps({"world": self.trainer.world_size, "seen": self.seen}))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.01)


@pytest.mark.ddp
def test_two_ranks_train_on_disjoint_batches_that_cover_each_epoch(tmp_path: Path) -> None:
    dm = make_datamodule()
    trainer = L.Trainer(
        accelerator="cpu",
        devices=2,
        strategy="ddp_spawn",
        max_epochs=2,
        num_sanity_val_steps=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(RecordingModule(str(tmp_path), dm.num_features), datamodule=dm)

    runs = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    assert [run["world"] for run in runs] == [2, 2]
    reference = make_datamodule()
    train = reference.train_dataset()
    per_rank_epoch = (TRAIN_BATCHES + 1) // 2
    for epoch in range(2):
        seen = [[h for kind, e, h in run["seen"] if kind == "train" and e == epoch] for run in runs]
        assert [len(s) for s in seen] == [per_rank_epoch, per_rank_epoch]
        assert not set(seen[0]) & set(seen[1])
        global_ids = range(epoch * 2 * per_rank_epoch, (epoch + 1) * 2 * per_rank_epoch)
        assert set(seen[0]) | set(seen[1]) == {batch_hash(train[i]) for i in global_ids}
    for idx, k in enumerate([6, 9]):
        val = reference.eval_dataset("val", k)
        seen = [{h for kind, i, h in run["seen"] if kind == "val" and i == idx} for run in runs]
        assert seen[0] | seen[1] == {batch_hash(val[i]) for i in range(VAL_BATCHES)}

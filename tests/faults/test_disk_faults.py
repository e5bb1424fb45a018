"""A full disk or an I/O error while a checkpoint is written: one line naming the file and the
error, the previous checkpoint intact and loadable, no partial file left. The writer fails
part-way: the file opened for the checkpoint takes half the bytes, then raises."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import fsspec.implementations.local
import lightning as L
import pytest
import torch

from graphrl.checkpoints import Checkpoint, CheckpointWriteError
from graphrl.errors import describe
from graphrl.rl import PPO, MLPPolicy

ENV = "graphrl/BoxWorld-Small-v0"


class _FailingWrites:
    """``open`` for fsspec's local files whose writes after the first ``ok_writes`` files put
    half their bytes on disk and then raise ``OSError(code)``."""

    def __init__(self, code: int, ok_writes: int) -> None:
        self.code, self.ok_writes, self.opened = code, ok_writes, 0

    def __call__(self, path, mode="r", *args, **kwargs):
        handle = open(path, mode, *args, **kwargs)
        if "w" not in mode:
            return handle
        self.opened += 1
        if self.opened <= self.ok_writes:
            return handle
        code, write = self.code, handle.write

        def write_half_then_fail(data: bytes) -> int:
            write(data[: len(data) // 2])
            handle.flush()
            raise OSError(code, os.strerror(code))

        handle.write = write_half_then_fail
        return handle


def _module() -> PPO:
    return PPO(
        env_id=ENV,
        policy=lambda space, n: MLPPolicy(space, n, hidden=8),
        num_envs=2,
        num_steps=4,
        total_timesteps=8 * 6,
        update_epochs=1,
        num_minibatches=1,
    )


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EIO], ids=["ENOSPC", "EIO"])
def test_a_failing_write_keeps_the_previous_checkpoint_and_says_so_in_one_line(
    code: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "ckpt"
    writes = _FailingWrites(code, ok_writes=2)  # last.ckpt after iterations 1 and 2 succeed
    monkeypatch.setattr(fsspec.implementations.local, "open", writes, raising=False)
    trainer = L.Trainer(
        accelerator="cpu", max_epochs=-1, logger=False, enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[Checkpoint(every_n_iterations=1, save_top_k=0, dirpath=folder)],
    )  # fmt: skip
    with pytest.raises(CheckpointWriteError) as error:
        trainer.fit(_module())
    assert writes.opened == 3

    last = folder / "last.ckpt"
    name = errno.errorcode[code]
    assert str(error.value) == (
        f"could not write checkpoint {last}: {os.strerror(code)} ({name}); the previous "
        "last.ckpt there is intact. Free space on that disk or point "
        "--trainer.default_root_dir elsewhere, then resume with --ckpt_path last"
    )
    assert describe(error.value) == (str(error.value), 1)  # the CLI's line and exit status
    assert sorted(p.name for p in folder.iterdir()) == ["last.ckpt"]  # no partial file
    assert torch.load(last, weights_only=False)["on_policy"]["iteration"] == 2
    assert PPO.load_from_checkpoint(last, policy=lambda s, n: MLPPolicy(s, n, hidden=8))


def test_a_failing_first_write_says_there_was_no_earlier_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        fsspec.implementations.local, "open", _FailingWrites(errno.ENOSPC, 0), raising=False
    )
    trainer = L.Trainer(
        accelerator="cpu", max_epochs=-1, logger=False, enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[Checkpoint(every_n_iterations=1, save_top_k=0, dirpath=tmp_path)],
    )  # fmt: skip
    with pytest.raises(CheckpointWriteError, match="no earlier checkpoint is at that path"):
        trainer.fit(_module())
    assert list(tmp_path.iterdir()) == []

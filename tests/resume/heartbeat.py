"""Callbacks for the subprocess tests' runs: they write what each training batch finished."""

from __future__ import annotations

import os

import lightning as L


def _append(path: str, line: str) -> None:
    with open(path, "a") as f:
        f.write(f"{line}\n")
        f.flush()
        os.fsync(f.fileno())


class Heartbeat(L.Callback):
    """Appends ``"<iteration>\\n"`` to ``path`` after every training batch (one line each).

    Args:
        path: File to append to.
    """

    def __init__(self, path: str) -> None:
        self.path = path

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        _append(self.path, f"{pl_module.iteration}")


class RankHeartbeat(L.Callback):
    """Appends ``"<rank> <pid> <iteration>\\n"`` to ``path`` after every training batch, from
    every rank (so a test can signal one rank's process).

    Args:
        path: File to append to.
    """

    def __init__(self, path: str) -> None:
        self.path = path

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        _append(self.path, f"{trainer.global_rank} {os.getpid()} {pl_module.iteration}")


class SignalAt(L.Callback):
    """Sends ``signum`` to this process when optimizer step ``step`` begins (a preemption
    arriving mid-batch).

    Args:
        step: ``trainer.global_step`` at whose training batch the signal arrives.
        signum: The signal's number (15: SIGTERM, 10: SIGUSR1).
    """

    def __init__(self, step: int, signum: int) -> None:
        self.step = step
        self.signum = signum

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            os.kill(os.getpid(), self.signum)

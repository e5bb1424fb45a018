"""A callback for the SIGKILL test's subprocess: writes the iteration count after every batch."""

from __future__ import annotations

import os

import lightning as L


class Heartbeat(L.Callback):
    """Appends ``"<iteration>\\n"`` to ``path`` after every training batch (one line each).

    Args:
        path: File to append to.
    """

    def __init__(self, path: str) -> None:
        self.path = path

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        with open(self.path, "a") as f:
            f.write(f"{pl_module.iteration}\n")
            f.flush()
            os.fsync(f.fileno())

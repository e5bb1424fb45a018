"""A quiet Lightning Trainer for scripts that train in-process (benchmarks, sweeps)."""

from __future__ import annotations

from typing import Any

import lightning as L

__all__ = ["quiet_trainer"]


def quiet_trainer(**overrides: Any) -> L.Trainer:
    """One CPU device, no logger, checkpoints, progress bar or model summary; ``overrides``
    are any other ``L.Trainer`` arguments (e.g. ``max_epochs=1``)."""
    options: dict[str, Any] = {
        "accelerator": "cpu",
        "devices": 1,
        "logger": False,
        "enable_checkpointing": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
    }
    return L.Trainer(**{**options, **overrides})

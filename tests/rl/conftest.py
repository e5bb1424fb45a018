"""Shared fixtures for the RL tests: one torch thread, a quiet CPU Trainer factory."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import lightning as L
import pytest
import torch
import toy_envs  # noqa: F401  (registers the toy env ids in this process)


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def make_trainer() -> Callable[..., L.Trainer]:
    """``make_trainer(**overrides)``: a silent single-CPU Trainer that logs every iteration."""

    def factory(**overrides: Any) -> L.Trainer:
        options: dict[str, Any] = {
            "accelerator": "cpu",
            "devices": 1,
            "logger": False,
            "enable_checkpointing": False,
            "enable_progress_bar": False,
            "enable_model_summary": False,
            "log_every_n_steps": 1,
            "max_epochs": 1,
        }
        options.update(overrides)
        return L.Trainer(**options)

    return factory

"""Shared fixtures for the RL tests: one torch thread, a quiet CPU Trainer factory."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import lightning as L
import pytest
import torch
import toy_envs  # noqa: F401  (registers the toy env ids in this process)

from graphrl.trainers import quiet_trainer


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
        return quiet_trainer(**{"log_every_n_steps": 1, "max_epochs": 1, **overrides})

    return factory

"""What a run prints: plain progress lines when stdout is not a terminal (CI, ``| tee``, a
cluster job) instead of carriage-return bar frames, and no Lightning advertising or warnings
that do not apply to graphrl.
"""

from __future__ import annotations

import logging
import math
import sys
import time
import warnings
from typing import Any, TextIO

import lightning as L
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.callbacks.progress import ProgressBar

__all__ = ["LineProgressBar", "progress_bar_for", "quiet_lightning"]

# Lightning's own messages that say nothing about the run and ask nothing of the user: product
# tips, a warning about a saving scheme (pre-optimizer-step weights) that graphrl's manual
# optimisation does not use, and start-up notes about defaults and Lightning's internals.
_UNWANTED_LOGS = ("💡 Tip:",)
_UNWANTED_WARNINGS = (
    "Using ModelCheckpoint with manual optimization",
    "Couldn't infer the batch indices",  # predict: PredictionsFile does not use them
    "No seed found, seed set to",  # the seed is in the saved config.yaml either way
    "`max_epochs` was not set",  # RL runs stop at total_timesteps; a config may set max_epochs
    r"`isinstance\(treespec, LeafSpec\)` is deprecated",  # Lightning's _pytree calling torch's
)
_LIGHTNING_LOGGERS = ("lightning.pytorch", "lightning.fabric")


class _DropMessages(logging.Filter):
    def __init__(self, prefixes: tuple[str, ...]) -> None:
        super().__init__()
        self.prefixes = prefixes

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.getMessage()).startswith(self.prefixes)


class _InfoToStdout(logging.StreamHandler):
    """Lightning's info lines ("Seed set to 0", "GPU available") to stdout, its warnings to
    stderr, so that stderr holds only problems (an error is then the one line there)."""

    def emit(self, record: logging.LogRecord) -> None:
        # Looked up per record (tests swap sys.stdout); the old stream is not flushed: it may be
        # closed already.
        self.stream = sys.stdout if record.levelno < logging.WARNING else sys.stderr
        super().emit(record)


def quiet_lightning() -> None:
    """Drop Lightning's tips and its warnings that ask nothing of the user (``_UNWANTED_*``);
    send Lightning's info lines to stdout (idempotent)."""
    for name in _LIGHTNING_LOGGERS:
        logger = logging.getLogger(name)
        for i, handler in enumerate(logger.handlers):
            if type(handler) is logging.StreamHandler:  # the one Lightning adds on import
                replacement = _InfoToStdout()
                replacement.setFormatter(handler.formatter)
                replacement.setLevel(handler.level)
                logger.handlers[i] = replacement
        for handler in logger.handlers:
            if not any(isinstance(f, _DropMessages) for f in handler.filters):
                handler.addFilter(_DropMessages(_UNWANTED_LOGS))
    for message in _UNWANTED_WARNINGS:
        warnings.filterwarnings("ignore", message=message)


def _format(value: Any) -> str:
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


class LineProgressBar(ProgressBar):
    """Progress as one plain line every ``every_n_batches`` training batches (and one per
    validation / test), for output that is a file rather than a terminal.

    Args:
        every_n_batches: Lines period in training batches; ``None`` uses the Trainer's
            ``log_every_n_steps``.
        stream: Where lines go (default ``sys.stdout``).
    """

    def __init__(self, every_n_batches: int | None = None, stream: TextIO | None = None) -> None:
        super().__init__()
        self.every_n_batches = every_n_batches
        self.stream = stream
        self._enabled = True
        self._start = time.perf_counter()

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    def _line(self, text: str) -> None:
        if self._enabled and self.trainer.is_global_zero:
            print(text, file=self.stream or sys.stdout, flush=True)

    def _metrics(self, trainer: L.Trainer, pl_module: L.LightningModule) -> str:
        metrics = self.get_metrics(trainer, pl_module)
        metrics.pop("v_num", None)
        return " ".join(f"{k}={_format(v)}" for k, v in metrics.items())

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start = time.perf_counter()

    def on_train_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        every = self.every_n_batches or max(1, trainer.log_every_n_steps)
        total = self.total_train_batches
        known = isinstance(total, int) and not math.isinf(total) and total >= batch_idx + 1
        if (batch_idx + 1) % every and not (known and batch_idx + 1 == total):
            return
        of_total = f"/{total}" if known else ""
        elapsed = time.perf_counter() - self._start
        self._line(
            f"epoch {trainer.current_epoch} batch {batch_idx + 1}{of_total} "
            f"step {trainer.global_step} {elapsed:.0f}s {self._metrics(trainer, pl_module)}"
        )

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._line(f"validation step {trainer.global_step} {self._metrics(trainer, pl_module)}")

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._line(f"test {self._metrics(trainer, pl_module)}")


def progress_bar_for(
    config: dict[str, Any], callbacks: list[Callback], stream: TextIO | None = None
) -> Callback | None:
    """The progress bar a run gets when it names none: :class:`LineProgressBar` when ``stream``
    (stdout) is not a terminal, else ``None`` (Lightning's own bar).

    Args:
        config: The Trainer's arguments (``enable_progress_bar: false`` means no bar at all).
        callbacks: The callbacks the Trainer gets; one that is a ``ProgressBar`` wins.
    """
    stream = stream or sys.stdout
    if config.get("enable_progress_bar") is False or any(
        isinstance(c, ProgressBar) for c in [*callbacks, *(config.get("callbacks") or [])]
    ):
        return None
    isatty = getattr(stream, "isatty", None)
    if callable(isatty) and isatty():
        return None
    return LineProgressBar()

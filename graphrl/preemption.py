"""Preemption: SIGTERM or SIGUSR1 on any process of a ``graphrl fit`` run stops every rank at the
next safe point (the end of the training batch in flight: a PPO/A2C iteration or a supervised
optimizer step), rank 0 writes ``last.ckpt`` of that point atomically, and every process exits
with one line saying so and how to resume (``--ckpt_path last``), exit status ``128 + signal``.

Under DDP the ranks agree after every training batch with one all-reduce of two numbers (the
largest signal any rank received, and whether it was SLURM's requeue signal), so a signal sent
to one process stops them all at the same batch. On SLURM with Lightning's auto-requeue
(``SLURMEnvironment(auto_requeue=True)``, the default when SLURM is detected), the requeue
signal (SIGUSR1 unless ``requeue_signal`` says otherwise) also requeues the job with
``scontrol requeue`` after the checkpoint is written, as Lightning's own handler does; the
requeued job resumes when its command has ``--resume_or_start``. See docs/guides/checkpoints.md.

The handlers only set a flag (no I/O and no collectives inside a signal handler). They replace
Lightning's SIGTERM handler, which would stop only the rank it runs on, exit with status 0 and
save nothing.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from types import FrameType
from typing import Any

import lightning as L
import torch
from lightning.fabric.plugins.environments import SLURMEnvironment
from lightning.pytorch.callbacks import Callback, ModelCheckpoint

from graphrl.checkpoints import write_atomically
from graphrl.errors import RunFailure

__all__ = ["Preempted", "Preemption", "requeue_slurm_job"]

STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)
RESUME_HINT = "--ckpt_path last"


class Preempted(RunFailure):
    """The run stopped on a signal after saving a checkpoint (exit status ``128 + signal``)."""


def _requeue_settings(trainer: L.Trainer) -> signal.Signals | None:
    """SLURM's requeue signal when Lightning's auto-requeue is on for this run, else None."""
    environment = getattr(trainer.strategy, "cluster_environment", None)
    if environment is None:  # single-device strategies keep it on the connector only
        environment = getattr(trainer._accelerator_connector, "cluster_environment", None)
    if isinstance(environment, SLURMEnvironment) and environment.auto_requeue:
        return environment.requeue_signal or signal.SIGUSR1
    return None


def requeue_slurm_job() -> str:
    """``scontrol requeue`` this SLURM job (array task included), as Lightning's handler does.

    Returns:
        What happened, for the user's line (``"requeued SLURM job 42"`` or why not).
    """
    array_job = os.environ.get("SLURM_ARRAY_JOB_ID")
    if array_job is not None:
        job_id = f"{array_job}_{os.environ.get('SLURM_ARRAY_TASK_ID', '')}"
    else:
        job_id = os.environ.get("SLURM_JOB_ID", "")
    if not job_id.replace("_", "").isdigit():
        return f"SLURM job id {job_id!r} is not a number: not requeued"
    try:
        result = subprocess.run(
            ["scontrol", "requeue", job_id], capture_output=True, text=True, timeout=60
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"scontrol requeue {job_id} failed ({type(exc).__name__}): requeue it by hand"
    if result.returncode != 0:
        detail = " ".join(result.stderr.split()) or f"exit status {result.returncode}"
        return f"scontrol requeue {job_id} failed ({detail}): requeue it by hand"
    return f"requeued SLURM job {job_id}"


def last_checkpoint_path(trainer: L.Trainer) -> str:
    """Where ``--ckpt_path last`` will look: ``last.ckpt`` in the run's checkpoint folder."""
    callback = trainer.checkpoint_callback
    if isinstance(callback, ModelCheckpoint) and callback.dirpath:
        folder = str(callback.dirpath)
        name = f"{callback.CHECKPOINT_NAME_LAST}{callback.FILE_EXTENSION}"
    else:
        folder = os.path.join(trainer.log_dir or trainer.default_root_dir, "checkpoints")
        name = "last.ckpt"
    return os.path.join(folder, name)


class Preemption(Callback):
    """Stop on SIGTERM / SIGUSR1 at the next training-batch end, save ``last.ckpt``, exit.

    ``graphrl fit`` adds it to every run. Every rank installs the handlers; after each training
    batch the ranks all-reduce what they received (one collective of a 2-element tensor,
    nothing in one-process runs), and all stop at the same batch.
    """

    def __init__(self) -> None:
        self._received: set[int] = set()
        self._previous: dict[int, Any] = {}

    # ------------------------------------------------------------------ handlers

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._received.add(signum)

    def _signals(self, trainer: L.Trainer) -> tuple[int, ...]:
        requeue = _requeue_settings(trainer)
        extra = (requeue,) if requeue is not None and requeue not in STOP_SIGNALS else ()
        return (*STOP_SIGNALS, *extra)

    def _install(self, trainer: L.Trainer) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # signal handlers can only be set from the main thread
        for signum in self._signals(trainer):
            current = signal.getsignal(signum)
            if current != self._on_signal:
                self._previous.setdefault(signum, current)
                signal.signal(signum, self._on_signal)

    def _restore(self, trainer: L.Trainer) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        # Lightning's teardown (after on_exception) puts back the handlers it found when it
        # registered its own, which were ours: make it put back the ones from before the run.
        found = getattr(getattr(trainer, "_signal_connector", None), "_original_handlers", {})
        for signum, handler in self._previous.items():
            if found.get(signum) == self._on_signal:
                found[signum] = handler
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
        self._previous = {}

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage == "fit":
            self._received = set()
            self._install(trainer)  # before the envs are built and the checkpoint restored

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Lightning registers its own SIGTERM handler after setup; ours takes over again. A
        # SIGTERM its handler saw in between is kept (and taken from Lightning, whose loops
        # would otherwise end this rank alone with exit status 0).
        self._install(trainer)
        connector = getattr(trainer, "_signal_connector", None)
        if connector is not None and connector.received_sigterm:
            self._received.add(signal.SIGTERM)
            connector.received_sigterm = False

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        self._restore(trainer)

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage == "fit":
            self._restore(trainer)

    # ------------------------------------------------------------------ the safe point

    def _agreed(self, trainer: L.Trainer) -> tuple[int, bool]:
        """``(largest signal any rank received or 0, whether one was the requeue signal)``."""
        requeue = _requeue_settings(trainer)
        local = [max(self._received, default=0), int(requeue in self._received)]
        if trainer.world_size == 1:
            return local[0], bool(local[1])
        flags = torch.tensor(local, dtype=torch.int64, device=trainer.strategy.root_device)
        flags = trainer.strategy.reduce(flags, reduce_op="max")
        return int(flags[0]), bool(flags[1])

    def on_train_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        signum, requeue = self._agreed(trainer)
        if signum:
            self._stop(trainer, signal.Signals(signum), requeue)

    def _stop(self, trainer: L.Trainer, signum: signal.Signals, requeue: bool) -> None:
        path = last_checkpoint_path(trainer)
        write_atomically(
            trainer, path, lambda part: trainer.save_checkpoint(part, weights_only=False)
        )
        batches = trainer.fit_loop.epoch_loop.batch_progress.total.processed
        where = f"after training batch {batches} (optimizer step {trainer.global_step})"
        saved = f"saved {path}" if trainer.is_global_zero else f"rank 0 saved {path}"
        line = f"preempted by {signum.name}: stopped {where} and {saved}"
        if requeue and trainer.is_global_zero:
            line += f"; {requeue_slurm_job()}, which resumes from it when the job's command has "
            line += "--resume_or_start"
        else:
            line += f"; resume with the same command plus {RESUME_HINT}"
        raise Preempted(line, exit_code=128 + int(signum))

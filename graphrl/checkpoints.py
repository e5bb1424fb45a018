"""Checkpoints that resume exactly: finding ``last``, the config winning over the checkpoint,
the global RNG in the checkpoint, and a kill-safe, atomic periodic checkpoint callback.

Resume from the newest ``last.ckpt`` of a config's ``trainer.default_root_dir``:

    graphrl fit --config C --ckpt_path last              # fails in one line if there is none
    graphrl fit --config C --ckpt_path version_3         # last.ckpt of lightning_logs/version_3
    graphrl fit --config C --resume_or_start             # resume if there is one, else start

A resumed run logs into a *new* ``version_N`` directory (nothing of the old run is touched or
overwritten); its checkpoints carry on from the step it resumed at, so ``last`` next time finds
the newest of all.
"""

from __future__ import annotations

import errno
import glob
import os
import random
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from graphrl.errors import RunFailure

__all__ = [
    "Checkpoint",
    "CheckpointWriteError",
    "check_checkpoint_fits",
    "find_last_checkpoint",
    "global_rng_state",
    "resolve_ckpt_path",
    "set_global_rng_state",
    "write_atomically",
]

RESUME_FLAG = "resume_or_start"
"""Name of the CLI flag (``--resume_or_start``): resume from ``last`` if it exists, else start."""

_IGNORED_HPARAMS = ("_instantiator", "_class_path")


# ---------------------------------------------------------------------------- finding "last"


def find_last_checkpoint(root: str, version: str | None = None) -> str | None:
    """The newest ``last*.ckpt`` under ``root`` (any ``.../checkpoints`` folder), or None.

    Args:
        root: A run root (``trainer.default_root_dir``) or one run's version directory.
        version: Only look in version directories of this name (e.g. ``"version_3"``).

    Returns:
        The path of the most recently written match (by modification time).
    """
    pattern = (
        "**/checkpoints/last*.ckpt" if version is None else f"**/{version}/checkpoints/last*.ckpt"
    )
    found = glob.glob(os.path.join(glob.escape(root), pattern), recursive=True)
    if os.path.basename(os.path.normpath(root)) == version or version is None:
        found += glob.glob(os.path.join(glob.escape(root), "checkpoints", "last*.ckpt"))
    found = sorted(set(found), key=os.path.getmtime)
    return found[-1] if found else None


def resolve_ckpt_path(ckpt_path: str | None, root: str, resume_or_start: bool) -> str | None:
    """Turn ``--ckpt_path`` (``last``, ``version_N``, a run directory or a file) into a file.

    Args:
        ckpt_path: The value given on the command line or in the config (None: not given).
        root: The config's ``trainer.default_root_dir``.
        resume_or_start: Start fresh (return None) instead of failing when ``last`` finds
            nothing; implies ``ckpt_path="last"`` when no path is given.

    Returns:
        The checkpoint file to resume from, or None to start from scratch.

    Raises:
        SystemExit: one line naming what was searched, when nothing is found and
            ``resume_or_start`` is off.
    """
    if ckpt_path is None:
        ckpt_path = "last" if resume_or_start else None
    if ckpt_path is None or ckpt_path in ("best", "hpc", "registry") or os.path.isfile(ckpt_path):
        return ckpt_path
    if ckpt_path == "last":
        where, found = root, find_last_checkpoint(root)
    elif os.path.isdir(ckpt_path):
        where, found = ckpt_path, find_last_checkpoint(ckpt_path)
    elif ckpt_path.startswith("version_"):
        where, found = f"{root}/**/{ckpt_path}", find_last_checkpoint(root, ckpt_path)
    else:
        return ckpt_path  # a missing file: the CLI's checkpoint check names it
    if found is not None:
        print(f"resuming from {found}", file=sys.stderr)
        return found
    if resume_or_start:
        print(f"no last.ckpt under {where}: starting a new run", file=sys.stderr)
        return None
    raise SystemExit(
        f"error: --ckpt_path {ckpt_path}: no last.ckpt under {where}; train without --ckpt_path, "
        f"or add --{RESUME_FLAG} to start fresh when there is none"
    )


# ---------------------------------------------------------------------------- the config wins


def _flatten(tree: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in tree.items():
        if key in _IGNORED_HPARAMS:
            continue
        if isinstance(value, Mapping) and value:
            yield from _flatten(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def hparams_differences(saved: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """``"key: checkpoint has A, config asks B"`` for every hparam that differs, in order.

    Keys only one side has (e.g. added since) are not differences.
    """
    saved_flat = dict(_flatten(saved))
    return [
        f"{key}: checkpoint has {saved_flat[key]!r}, config asks {value!r}"
        for key, value in _flatten(current)
        if key in saved_flat and saved_flat[key] != value
    ]


def _first_weight_mismatch(saved: Mapping[str, torch.Tensor], model: L.LightningModule) -> str:
    current = model.state_dict()
    for name, tensor in current.items():
        if name not in saved:
            return f"the checkpoint has no parameter {name}"
        if tuple(saved[name].shape) != tuple(tensor.shape):
            return (
                f"parameter {name} is {list(saved[name].shape)} in the checkpoint, "
                f"{list(tensor.shape)} in the model"
            )
    extra = next((name for name in saved if name not in current), None)
    return "" if extra is None else f"the model has no parameter {extra} (in the checkpoint)"


def _class_path(model: L.LightningModule) -> str:
    cls = type(model)
    return f"{cls.__module__}.{cls.__qualname__}"


def check_checkpoint_fits(path: str, model: L.LightningModule) -> None:
    """Fail in one line unless the weights in ``path`` load into ``model`` (built from the config).

    The config and the command line decide the model: the checkpoint's saved hyperparameters
    are not applied. Where they differ but the weights still fit, a one-line note says so.

    Raises:
        SystemExit: naming the first differing hyperparameter (and flag) and the first
            parameter whose name or shape differs.
    """
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    saved_hparams = ckpt.get("hyper_parameters") or {}
    saved_class = saved_hparams.get("_class_path") or ckpt.get("graphrl_module_class")
    if saved_class and saved_class.rsplit(".", 1)[-1] != type(model).__name__:
        raise SystemExit(
            f"error: checkpoint {path!r} holds a {saved_class}, the config asks for "
            f"{_class_path(model)}: pass a --ckpt_path written by this config, or change --config"
        )
    differences = hparams_differences(saved_hparams, dict(model.hparams))
    mismatch = _first_weight_mismatch(ckpt.get("state_dict", {}), model)
    if mismatch:
        if differences:
            key = differences[0].split(":", 1)[0]
            more = f" (+{len(differences) - 3} more)" if len(differences) > 3 else ""
            raise SystemExit(
                f"error: checkpoint {path!r} does not fit the config: "
                f"{'; '.join(differences[:3])}{more}, so {mismatch}; set --model.{key} to the "
                "checkpoint's value, or pass another --ckpt_path"
            )
        raise SystemExit(
            f"error: checkpoint {path!r} does not fit the config: {mismatch}; pass the config "
            "that wrote it (its config.yaml) or another --ckpt_path"
        )
    if differences:
        print(
            f"note: the config differs from checkpoint {path}: {'; '.join(differences)} "
            "(the config wins)",
            file=sys.stderr,
        )


# ---------------------------------------------------------------------------- global RNG


def global_rng_state() -> dict[str, Any]:
    """torch's, NumPy's and Python's global RNG states, in types ``weights_only`` loading takes."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()  # noqa: NPY002 (the global one)
    version, internal, gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached],
        "python": [version, list(internal), gauss],
    }


def set_global_rng_state(state: Mapping[str, Any]) -> None:
    """Restore what :func:`global_rng_state` returned."""
    torch.set_rng_state(state["torch"])
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))  # noqa: NPY002
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))


# ---------------------------------------------------------------------------- atomic writes


class CheckpointWriteError(RunFailure):
    """A checkpoint could not be written (a full disk, an I/O error); the previous file at that
    path is untouched."""


def write_atomically(trainer: L.Trainer, filepath: str, write: Callable[[str], None]) -> None:
    """Write a checkpoint to ``<filepath>.part`` with ``write`` and rename it into place.

    The rename is atomic on POSIX, so ``filepath`` always holds the previous checkpoint or the
    new one, never half of one, whether the process is killed or the disk fills mid-write.
    Every rank calls this (``write`` is collective, e.g. ``trainer.save_checkpoint``); rank 0
    renames, then all ranks meet at a barrier.

    Args:
        trainer: The running Trainer.
        filepath: The checkpoint's final path (local; not ``s3://`` and such).
        write: Writes a checkpoint to the path it is given.

    Raises:
        CheckpointWriteError: one line naming the file, the error (``ENOSPC``, ``EIO``, ...)
            and what to do, when writing or renaming fails; the partial file is removed.
    """
    partial = f"{filepath}.part"
    try:
        write(partial)
        if trainer.is_global_zero:
            os.replace(partial, filepath)  # the old file or the new, never half
    except OSError as exc:
        if trainer.is_global_zero:
            try:
                os.remove(partial)
            except OSError:
                pass
        raise CheckpointWriteError(_write_failure(filepath, exc)) from exc
    trainer.strategy.barrier()


def _write_failure(filepath: str, exc: OSError) -> str:
    code = errno.errorcode.get(exc.errno, "") if exc.errno is not None else ""
    reason = f"{exc.strerror or exc} ({code})" if code else str(exc.strerror or exc)
    before = (
        f"the previous {os.path.basename(filepath)} there is intact"
        if os.path.isfile(filepath)
        else "no earlier checkpoint is at that path"
    )
    return (
        f"could not write checkpoint {filepath}: {reason}; {before}. Free space on that disk "
        "or point --trainer.default_root_dir elsewhere, then resume with --ckpt_path last"
    )


# ---------------------------------------------------------------------------- the callback


class Checkpoint(ModelCheckpoint):
    """``ModelCheckpoint`` that saves every N iterations and/or M minutes, atomically, with the
    global RNG state, so that a killed run resumed with ``--ckpt_path last`` loses at most one
    interval and continues exactly.

    An *iteration* is one Lightning training batch: one PPO/A2C iteration (a rollout and its
    update) in RL, one optimizer step in supervised training. Unlike ``every_n_train_steps``,
    this does not count optimizer steps, of which a PPO iteration takes many. Without either
    interval it saves every minute. The usual ``ModelCheckpoint`` arguments (``save_last``,
    ``dirpath``, ``save_top_k``, ...) pass through.

    Every file is written to ``<name>.part`` in the same folder and renamed into place, so a
    kill mid-write never leaves a half-written ``.ckpt``.

    Args:
        every_n_iterations: Save after every this many training batches (None: no such trigger).
        every_n_minutes: Save once this many minutes of training passed since the last save
            (None: no such trigger). Under DDP rank 0's clock decides for all ranks.
        **kwargs: ``ModelCheckpoint`` arguments (not ``every_n_train_steps`` or
            ``train_time_interval``).
    """

    def __init__(
        self,
        every_n_iterations: int | None = None,
        every_n_minutes: float | None = None,
        **kwargs: Any,
    ) -> None:
        for name in ("every_n_train_steps", "train_time_interval"):
            if kwargs.get(name):
                raise ValueError(
                    f"graphrl.checkpoints.Checkpoint takes every_n_iterations / every_n_minutes, "
                    f"not {name}"
                )
        if every_n_iterations is not None and every_n_iterations < 1:
            raise ValueError(f"every_n_iterations must be >= 1, got {every_n_iterations}")
        if every_n_minutes is not None and every_n_minutes <= 0:
            raise ValueError(f"every_n_minutes must be > 0, got {every_n_minutes}")
        if every_n_iterations is None and every_n_minutes is None:
            every_n_minutes = 1.0
        if kwargs.get("save_last") is None:  # ``last.ckpt`` is what ``--ckpt_path last`` finds
            kwargs["save_last"] = True
        super().__init__(**kwargs)
        self.every_n_iterations = every_n_iterations
        self.every_n_minutes = every_n_minutes
        self._last_save_time = time.monotonic()
        self._rng_to_restore: Mapping[str, Any] | None = None

    # ------------------------------------------------------------------ when to save

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._last_save_time = time.monotonic()
        if self._rng_to_restore is not None:
            # Applied here, right before the first batch, not at load time: nothing that runs in
            # between (sanity validation, setup) then shifts the streams.
            set_global_rng_state(self._rng_to_restore)
            self._rng_to_restore = None

    def _due(self, trainer: L.Trainer) -> bool:
        done = trainer.fit_loop.epoch_loop.batch_progress.total.processed
        by_count = self.every_n_iterations is not None and done % self.every_n_iterations == 0
        by_time = False
        if self.every_n_minutes is not None:
            by_time = time.monotonic() - self._last_save_time >= 60.0 * self.every_n_minutes
            by_time = bool(trainer.strategy.broadcast(by_time))
        return by_count or by_time

    def on_train_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        if self._should_skip_saving_checkpoint(trainer) or not self._due(trainer):
            return
        monitor_candidates = self._monitor_candidates(trainer)
        if self.monitor is not None and self.monitor not in monitor_candidates:
            return  # the monitored metric comes with validation, which saves on its own
        self._save_topk_checkpoint(trainer, monitor_candidates)
        self._save_last_checkpoint(trainer, monitor_candidates)
        self._last_save_time = time.monotonic()

    # ------------------------------------------------------------------ what and how

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "global_rng": global_rng_state()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state = dict(state_dict)
        self._rng_to_restore = state.pop("global_rng", None)
        super().load_state_dict(state)

    def _save_checkpoint(self, trainer: L.Trainer, filepath: str) -> None:
        if "://" in str(filepath):  # remote filesystems: Lightning's own (transactional) write
            super()._save_checkpoint(trainer, filepath)
            return
        write = super()._save_checkpoint
        write_atomically(trainer, filepath, lambda path: write(trainer, path))
        self._last_checkpoint_saved = filepath

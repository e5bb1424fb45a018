"""Callbacks every ``graphrl`` run gets: a ``metrics.json`` summary and the ``metrics.csv``
history in the log directory (and, for ``graphrl predict``, the answers in
``predictions.pt``)."""

from __future__ import annotations

import csv
import json
import math
import os
import time
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import BasePredictionWriter
from lightning.pytorch.loggers import CSVLogger


def _scalar(value: Any) -> float | None:
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            return None
        value = value.item()
    if isinstance(value, (int, float)) and math.isfinite(float(value)):
        return float(value)
    return None


class MetricsJSON(L.Callback):
    """Writes ``metrics.json`` (final value of every logged metric, the resolved config path,
    wall time, samples seen) into the run's log directory at the end of fit, validate and test,
    and prints its path.

    A later stage of the same run (``fit`` then ``test``) merges into the same file under its
    own key; nothing else in the directory is touched.

    Args:
        config_path: Path of the resolved config (the CLI passes the saved ``config.yaml``).
    """

    def __init__(self, config_path: str | None = None) -> None:
        self.config_path = config_path
        self._start: float | None = None

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start = time.perf_counter()

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.state.fn != "fit":  # validation inside fit keeps fit's clock
            self._start = time.perf_counter()

    def on_test_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start = time.perf_counter()

    def _write(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage == "validate" and trainer.state.fn == "fit":
            return  # validation inside fit is summarised by fit
        metrics = {k: _scalar(v) for k, v in trainer.callback_metrics.items() if k != "step"}
        log_dir = _log_dir(trainer)
        config = self.config_path or os.path.join(log_dir, "config.yaml")
        summary = {
            "stage": stage,
            "metrics": {k: v for k, v in sorted(metrics.items()) if v is not None},
            "config": os.path.abspath(config) if os.path.exists(config) else None,
            "wall_time_s": round(time.perf_counter() - (self._start or time.perf_counter()), 3),
            "samples_seen": int(getattr(pl_module, "samples_seen", 0)),
            "global_step": trainer.global_step,
        }
        if not trainer.is_global_zero:
            return
        os.makedirs(log_dir, exist_ok=True)
        path = os.path.join(log_dir, "metrics.json")
        data: dict[str, Any] = {}
        if os.path.exists(path):
            with open(path) as f:
                data = json.load(f)
        data[stage] = summary
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(data, f, indent=2)
        os.replace(tmp, path)  # atomic: a crash never leaves half a file
        print(f"metrics written to {path}")

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._write(trainer, pl_module, "fit")

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._write(trainer, pl_module, "validate")

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._write(trainer, pl_module, "test")


def _log_dir(trainer: L.Trainer) -> str:
    """The run's log directory (the logger's, else ``default_root_dir``)."""
    return trainer.log_dir or trainer.default_root_dir


class MetricsCSV(L.Callback):
    """Writes ``metrics.csv`` beside ``metrics.json``: the history of a run's metrics.

    - RL modules (those that keep their last iteration's scalars in ``iteration_metrics``, as
      :class:`~graphrl.rl.OnPolicyModule` does): one row per iteration, columns ``env_steps``,
      ``iteration``, then every scalar logged that iteration (``losses/...``, ``charts/...``);
    - other models: one row per validation during fit, columns ``step``, ``epoch``, then the
      metrics.

    A metric that first appears later (the return of the first finished episode) adds a
    column: the file is rewritten with it, earlier rows left empty there. Rank 0 writes; each
    fit starts the file afresh (a resumed run logs into a new version directory). With a
    ``CSVLogger`` in the same directory (``--trainer.logger=CSVLogger``), that logger's
    ``metrics.csv`` is the history (its ``step`` column is the env steps of RL runs) and this
    callback writes nothing.
    """

    FILENAME = "metrics.csv"

    def __init__(self) -> None:
        self._rows: list[dict[str, float]] = []
        self._columns: list[str] = []
        self.path: str | None = None

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._rows, self._columns = [], []
        self.path = os.path.abspath(os.path.join(_log_dir(trainer), self.FILENAME))
        written_by_logger = {
            os.path.abspath(os.path.join(logger.log_dir, self.FILENAME))
            for logger in trainer.loggers
            if isinstance(logger, CSVLogger)
        }
        if self.path in written_by_logger:
            self.path = None

    def on_train_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        row = getattr(pl_module, "iteration_metrics", None)
        if row is not None:
            self._add(trainer, dict(row))

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or trainer.state.fn != "fit":
            return
        if getattr(pl_module, "iteration_metrics", None) is not None:
            return  # RL: rows per iteration
        metrics = {k: _scalar(v) for k, v in trainer.callback_metrics.items() if k != "step"}
        row = {"step": trainer.global_step, "epoch": trainer.current_epoch}
        row.update({k: v for k, v in sorted(metrics.items()) if v is not None})
        self._add(trainer, row)

    def _add(self, trainer: L.Trainer, row: dict[str, float]) -> None:
        if not trainer.is_global_zero or self.path is None:
            return
        self._rows.append(row)
        new = [key for key in row if key not in self._columns]
        if new or len(self._rows) == 1:
            self._columns += new
            self._rewrite()
            return
        with open(self.path, "a", newline="") as f:
            csv.DictWriter(f, self._columns).writerow(row)

    def _rewrite(self) -> None:
        assert self.path is not None
        os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
        tmp = self.path + ".tmp"
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, self._columns)
            writer.writeheader()
            writer.writerows(self._rows)
        os.replace(tmp, self.path)  # atomic, as metrics.json


class PredictionsFile(BasePredictionWriter):
    """Writes ``predictions.pt`` into the run's log directory at the end of ``predict`` and
    prints its path: ``{dataloader_name: answers [num_samples]}`` (names from the DataModule's
    ``eval_dataloader_names`` when it has them, else ``"0"``, ``"1"``, ...).
    """

    def __init__(self) -> None:
        super().__init__(write_interval="epoch")

    def write_on_epoch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        predictions: Any,
        batch_indices: Any,
    ) -> None:
        if not trainer.is_global_zero or not predictions:
            return
        per_loader = predictions if isinstance(predictions[0], list) else [predictions]
        names = list(getattr(trainer.datamodule, "eval_dataloader_names", []))
        names += [str(i) for i in range(len(names), len(per_loader))]
        answers = {name: torch.cat(p).cpu() for name, p in zip(names, per_loader) if p}
        log_dir = _log_dir(trainer)
        os.makedirs(log_dir, exist_ok=True)
        path = os.path.join(log_dir, "predictions.pt")
        torch.save(answers, path + ".tmp")
        os.replace(path + ".tmp", path)  # atomic, as metrics.json
        sizes = ", ".join(f"{k}: {len(v)}" for k, v in answers.items())
        print(f"predictions ({sizes}) written to {path}")


class AttentionPictures(L.Callback):
    """Logs the RL agent's attention to TensorBoard every ``every_n_iterations`` PPO/A2C
    iterations, at the env-step index the scalars use: the same picture as ``graphrl render``
    for the next observation of the first env of the latest rollout (the observation, then one
    panel per head of the last layer, from the agent's own entity, or per recurrent query, from
    the state that env has reached).

    Which policies have attention to show is read from their declarations
    (:func:`graphrl.render.can_draw_attention`); others log nothing.

    Args:
        every_n_iterations: Logging period, in training iterations (Lightning steps).
    """

    def __init__(self, every_n_iterations: int = 50) -> None:
        self.every_n_iterations = every_n_iterations
        self._drawer: Any = None

    def on_train_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        from graphrl.render import PolicyStepper, attention_strip, can_draw_attention

        policy = getattr(pl_module, "policy", None)
        collector = getattr(pl_module, "collector", None)
        experiment = getattr(trainer.logger, "experiment", None)
        if (
            batch_idx % self.every_n_iterations
            or not trainer.is_global_zero
            or policy is None
            or not can_draw_attention(policy)
            or collector is None
            or getattr(collector, "next_obs", None) is None
            or not hasattr(experiment, "add_image")
        ):
            return
        from graphrl.envs import ObservationDrawer, make_env

        if self._drawer is None:  # the env draws its own observations
            hparams = pl_module.hparams
            env = make_env(hparams.env_id, **(hparams.env_kwargs or {}))
            self._drawer = ObservationDrawer(env)
            env.close()
        state = getattr(collector, "state", None)  # recurrent: the state each env has reached
        first = slice(0, 1)
        stepper = PolicyStepper(
            policy,
            None if state is None else tuple(s[first].detach() for s in state),
            None if state is None else collector.starts[first].detach(),
        )
        steps = _env_steps(trainer, pl_module)
        was_training = policy.training
        policy.eval()
        try:
            image = attention_strip(
                policy, _first_env(collector.next_obs), self._drawer, f"env steps {steps}", stepper
            )
        finally:
            policy.train(was_training)
        # On the env-step axis, as the scalars (see OnPolicyModule._log_iteration).
        experiment.add_image("attention/agent_cell", image, steps, dataformats="HWC")


def _first_env(obs: Any) -> Any:
    """The first env's observation of a vector env's (array, dict of arrays, tuple of graphs)."""
    return {k: v[0] for k, v in obs.items()} if isinstance(obs, dict) else obs[0]


def _env_steps(trainer: L.Trainer, pl_module: L.LightningModule) -> int:
    """The module's env steps (all ranks), else the optimizer step."""
    return int(getattr(pl_module, "samples_seen", trainer.global_step))

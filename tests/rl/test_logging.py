"""RL runs log every scalar against env steps (any Lightning logger) and keep their history in
``metrics.csv`` beside ``metrics.json``."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import CSVLogger, Logger

from graphrl.callbacks import MetricsCSV
from graphrl.rl import PPO
from graphrl.trainers import default_trainer

CORRIDOR = "toy_envs:Corridor-v0"
ITERATIONS = 3
NUM_ENVS, NUM_STEPS = 2, 8
BATCH = NUM_ENVS * NUM_STEPS


class RecordingLogger(Logger):
    """A Lightning logger that keeps every ``log_metrics`` call (what W&B or MLflow receive)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[int, dict[str, float]]] = []

    @property
    def name(self) -> str:
        return "recording"

    @property
    def version(self) -> int:
        return 0

    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        pass

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        self.calls.append((step, dict(metrics)))


def _ppo() -> PPO:
    return PPO(
        CORRIDOR,
        num_envs=NUM_ENVS,
        num_steps=NUM_STEPS,
        total_timesteps=ITERATIONS * BATCH,
        update_epochs=1,
        num_minibatches=2,
        env_kwargs={"length": 3},
    )


def _fit(tmp_path: Path, logger: Any) -> PPO:
    agent = _ppo()
    trainer = default_trainer(
        logger=logger,
        max_epochs=1,
        accelerator="cpu",
        devices=1,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=str(tmp_path),
    )
    trainer.fit(agent)
    return agent


def test_any_logger_receives_every_iteration_at_its_env_steps(tmp_path: Path) -> None:
    logger = RecordingLogger()
    _fit(tmp_path, logger)
    steps = [step for step, _ in logger.calls]
    assert steps == [BATCH * (i + 1) for i in range(ITERATIONS)]
    for step, metrics in logger.calls:
        assert "step" not in metrics  # the x-axis, not a scalar
        assert metrics["train/env_steps"] == step
        assert {"losses/value_loss", "losses/policy_loss", "charts/SPS"} <= set(metrics)


def test_csv_logger_history_is_indexed_by_env_steps(tmp_path: Path) -> None:
    logger = CSVLogger(str(tmp_path), name="csv")
    _fit(tmp_path, logger)
    with open(Path(logger.log_dir) / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == [BATCH * (i + 1) for i in range(ITERATIONS)]


def test_metrics_csv_has_one_row_per_iteration_beside_metrics_json(tmp_path: Path) -> None:
    logger = RecordingLogger()
    agent = _fit(tmp_path, logger)
    log_dir = tmp_path  # the logger has no directory of its own: the run's root
    with open(log_dir / MetricsCSV.FILENAME) as f:
        header = next(csv.reader(f))
        f.seek(0)
        rows = list(csv.DictReader(f))
    assert header[:2] == ["env_steps", "iteration"]
    assert [int(r["env_steps"]) for r in rows] == [BATCH * (i + 1) for i in range(ITERATIONS)]
    assert [int(r["iteration"]) for r in rows] == list(range(1, ITERATIONS + 1))  # done so far
    assert "losses/value_loss" in header and "step" not in header
    # Episodes of the 3-cell corridor end within the first iteration: returns are logged.
    assert all(r["charts/episodic_return"] for r in rows)
    summary = json.loads((log_dir / "metrics.json").read_text())["fit"]
    assert summary["samples_seen"] == agent.env_steps == ITERATIONS * BATCH
    assert "step" not in summary["metrics"]
    assert float(rows[-1]["losses/value_loss"]) == summary["metrics"]["losses/value_loss"]


CLI_CONFIG = f"""
model:
  class_path: graphrl.rl.PPO
  init_args:
    env_id: {CORRIDOR}
    env_kwargs: {{length: 3}}
    num_envs: {NUM_ENVS}
    num_steps: {NUM_STEPS}
    total_timesteps: {ITERATIONS * BATCH}
    update_epochs: 1
    num_minibatches: 2
trainer:
  accelerator: cpu
  devices: 1
  max_epochs: -1
  log_every_n_steps: 1
  enable_checkpointing: false
  enable_model_summary: false
  enable_progress_bar: false
"""


def test_cli_takes_any_lightning_logger_and_writes_metrics_csv(tmp_path: Path) -> None:
    from graphrl.cli import main

    config = tmp_path / "rl.yaml"
    config.write_text(CLI_CONFIG)
    common = ["fit", "--config", str(config), f"--trainer.default_root_dir={tmp_path}"]
    env_steps = [BATCH * (i + 1) for i in range(ITERATIONS)]
    main([*common, "--trainer.logger=CSVLogger", f"--trainer.logger.save_dir={tmp_path}/csv"])
    (history,) = (tmp_path / "csv").glob("lightning_logs/version_0/metrics.csv")
    with open(history) as f:
        assert [int(r["step"]) for r in csv.DictReader(f)] == env_steps
    main(common)  # the default logger (TensorBoard): metrics.csv is graphrl's own
    (ours,) = (tmp_path / "lightning_logs").glob("version_*/metrics.csv")
    with open(ours) as f:
        assert [int(r["env_steps"]) for r in csv.DictReader(f)] == env_steps

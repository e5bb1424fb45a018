"""Seconds per training iteration of every shipped config, and the checkpoint interval it implies.

For each YAML under ``configs/`` (or those given), trains a few iterations (RL: PPO/A2C
iterations; supervised: optimizer steps) through the ``graphrl`` CLI, times the iterations after
the first, and prints one JSON line per config: ``sec_per_iteration``, the config's checkpoint
``every_n_iterations`` / ``every_n_minutes``, and ``interval_s`` (the longest stretch of training
a SIGKILL can lose), with ``ratio_to_60s`` against the one-minute target, measured in the same run.

    OMP_NUM_THREADS=1 flock /tmp/graphrl_timed.lock python scripts/bench_checkpoint_interval.py \\
        [configs/boxworld/ppo_attention.yaml ...] [--iterations 4]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import lightning as L
import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from graphrl.cli import cli_main  # noqa: E402


class _Clock(L.Callback):
    def __init__(self) -> None:
        self.times: list[float] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.times.append(time.perf_counter())


def _checkpoint_settings(path: Path) -> dict[str, float | None]:
    cfg = yaml.safe_load(path.read_text()) or {}
    for cb in (cfg.get("trainer") or {}).get("callbacks") or []:
        if str(cb.get("class_path", "")).endswith("checkpoints.Checkpoint"):
            args = cb.get("init_args") or {}
            return {k: args.get(k) for k in ("every_n_iterations", "every_n_minutes")}
    return {"every_n_iterations": None, "every_n_minutes": None}


def measure(path: Path, iterations: int) -> dict[str, object]:
    cfg = yaml.safe_load(path.read_text())
    is_rl = "env_id" in (cfg["model"].get("init_args") or {})
    with tempfile.TemporaryDirectory() as tmp:
        args = [
            "--config",
            str(path),
            f"--trainer.default_root_dir={tmp}",
            "--trainer.logger=false",
            "--trainer.enable_progress_bar=false",
            "--trainer.enable_checkpointing=false",
            "--trainer.callbacks=[]",
        ]
        if is_rl:
            init = cfg["model"]["init_args"]
            per_iter = init.get("num_envs", 8) * init.get("num_steps", 128)
            args.append(f"--model.total_timesteps={per_iter * iterations}")
        else:
            args += [f"--trainer.max_steps={iterations}", "--trainer.limit_val_batches=0"]
        cli = cli_main(args=args, run=False)
        clock = _Clock()
        cli.trainer.callbacks.append(clock)
        cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    steps = clock.times
    sec = (steps[-1] - steps[0]) / (len(steps) - 1)
    settings = _checkpoint_settings(path)
    bounds = []
    if settings["every_n_iterations"]:
        bounds.append(settings["every_n_iterations"] * sec)
    if settings["every_n_minutes"]:
        bounds.append(60.0 * settings["every_n_minutes"] + sec)  # checked after each iteration
    interval = min(bounds) if bounds else None
    return {
        "config": str(path.relative_to(ROOT)),
        "sec_per_iteration": round(sec, 3),
        **settings,
        "interval_s": None if interval is None else round(interval, 1),
        "ratio_to_60s": None if interval is None else round(interval / 60.0, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("configs", nargs="*", type=Path)
    parser.add_argument("--iterations", type=int, default=4)
    opts = parser.parse_args()
    torch.set_num_threads(1)
    paths = [p.resolve() for p in opts.configs] or sorted(ROOT.glob("configs/**/*.yaml"))
    for path in paths:
        print(json.dumps(measure(path, opts.iterations)), flush=True)


if __name__ == "__main__":
    main()

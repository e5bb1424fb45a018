"""Kill-safe: a real ``graphrl fit`` SIGKILLed mid-run loses at most one checkpoint interval and
finishes when resumed with ``--ckpt_path last``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
EVERY = 5  # iterations between checkpoints
ITERATIONS = 150
HANG_GUARD_S = 300  # timeouts only stop a hung run; progress decides when to act
CONFIG = {
    "seed_everything": 0,
    "model": {
        "class_path": "graphrl.rl.PPO",
        "init_args": {
            "env_id": "graphrl/BoxWorld-Small-v0",
            "policy": {"class_path": "graphrl.rl.MLPPolicy", "init_args": {"hidden": 16}},
            "num_envs": 2,
            "num_steps": 8,
            "total_timesteps": 16 * ITERATIONS,
            "update_epochs": 1,
            "num_minibatches": 2,
        },
    },
    "trainer": {
        "max_epochs": -1,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "callbacks": [
            {
                "class_path": "graphrl.checkpoints.Checkpoint",
                "init_args": {"every_n_iterations": EVERY},
            }
        ],
    },
}


def _fit(tmp_path: Path, beat: Path, *extra: str) -> subprocess.Popen:
    cfg = {**CONFIG, "trainer": {**CONFIG["trainer"], "default_root_dir": str(tmp_path / "runs")}}
    cfg["trainer"]["callbacks"] = [
        *CONFIG["trainer"]["callbacks"],
        {"class_path": "heartbeat.Heartbeat", "init_args": {"path": str(beat)}},
    ]
    config = tmp_path / "ppo.yaml"
    config.write_text(yaml.safe_dump(cfg))
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(HERE)]),
        "OMP_NUM_THREADS": "1",
    }
    command = "from graphrl.cli import main; main()"
    return subprocess.Popen(
        [sys.executable, "-c", command, "fit", "--config", str(config), *extra],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _beats(path: Path) -> list[int]:
    return [int(line) for line in path.read_text().split()] if path.exists() else []


def test_sigkill_then_resume_from_last_loses_at_most_one_interval(tmp_path: Path) -> None:
    first, second = tmp_path / "first.txt", tmp_path / "second.txt"
    proc = _fit(tmp_path, first)
    deadline = time.monotonic() + HANG_GUARD_S
    while len(_beats(first)) < 3 * EVERY + 2:  # three checkpoints written, mid-interval
        assert proc.poll() is None, proc.stderr.read()
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"no progress within the {HANG_GUARD_S} s hang guard")
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)  # no handler runs: whatever is on disk is all there is
    proc.wait(timeout=HANG_GUARD_S)
    done_at_kill = max(_beats(first))
    assert EVERY * 3 < done_at_kill < ITERATIONS
    (last,) = (tmp_path / "runs").glob("lightning_logs/version_0/checkpoints/last.ckpt")
    assert not list((tmp_path / "runs").rglob("*.part"))
    saved = torch.load(last, weights_only=True)["on_policy"]["iteration"]
    assert 0 <= done_at_kill - saved <= EVERY  # at most one interval lost (+1 in flight)

    proc = _fit(tmp_path, second, "--ckpt_path=last")
    _, err = proc.communicate(timeout=HANG_GUARD_S)
    assert proc.returncode == 0, err
    beats = _beats(second)
    assert beats[0] == saved + 1 and beats[-1] == ITERATIONS  # continued, and finished
    (final,) = (tmp_path / "runs").glob("lightning_logs/version_1/checkpoints/last.ckpt")
    assert torch.load(final, weights_only=True)["on_policy"]["iteration"] == ITERATIONS

"""DDP under faults: a real 2-process gloo ``graphrl fit`` (Lightning's ``ddp`` strategy, the
second process relaunched by the first) whose one rank raises stops both ranks with that rank's
one-line message, no traceback and no hang (bounded by the subprocess timeout)."""

from __future__ import annotations

import glob
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tiny_configs import SUPERVISED

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
TIMEOUT_S = 120


def _config(rank: int) -> str:
    return SUPERVISED.replace(
        "  devices: 1\n  max_steps: 2\n",
        "  devices: 2\n  strategy: ddp\n  max_steps: 8\n  callbacks:\n"
        f"    - class_path: faults.NaNOnRank\n      init_args: {{rank: {rank}, batch: 1}}\n",
    ).replace("train_samples_per_epoch: 16", "train_samples_per_epoch: 128")


def _processes_running(text: str) -> list[str]:
    found = []
    for path in glob.glob("/proc/[0-9]*/cmdline"):
        try:
            with open(path, "rb") as f:
                if text.encode() in f.read():
                    found.append(path)
        except OSError:
            continue
    return found


@pytest.mark.ddp
@pytest.mark.parametrize(
    "rank", [1, pytest.param(0, marks=pytest.mark.slow)], ids=["child-rank", "main-rank"]
)
def test_one_rank_failing_stops_both_with_its_message(rank: int, tmp_path: Path) -> None:
    config = tmp_path / "ddp.yaml"
    config.write_text(_config(rank))
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{HERE}", "OMP_NUM_THREADS": "1"}
    for name in ("GRAPHRL_DEBUG", "LOCAL_RANK", "WORLD_SIZE", "RANK", "MASTER_PORT"):
        env.pop(name, None)
    command = [sys.executable, "-m", "graphrl", "fit", "--config", str(config)]
    command.append(f"--trainer.default_root_dir={tmp_path}")
    result = subprocess.run(
        command, capture_output=True, text=True, env=env, timeout=TIMEOUT_S, cwd=tmp_path
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    failed = f"error: [rank {rank}] train loss is nan at step 1"
    assert [line for line in errors if line.startswith(failed)], result.stderr
    assert "--model.init_args.optimizer.init_args.lr" in result.stderr
    other = f"error: [rank {1 - rank}] stopped: another rank failed"
    assert other in result.stderr or len(errors) == 1  # the observer may kill it first
    deadline = time.monotonic() + 15
    while _processes_running(str(config)) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not _processes_running(str(config)), "a rank outlived the run"

"""Long runs that show learning end to end through the CLI (`pytest -m slow`; CI runs them
after the fast suite, `make test-slow`)."""

import glob
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from graphrl.cli import cli_main
from graphrl.commands import evaluate_command

pytestmark = pytest.mark.slow


def test_attention_agent_solves_minigrid_doorkey(tmp_path):
    torch.set_num_threads(1)
    cli_main(
        [
            "fit",
            "--config",
            "configs/minigrid/ppo_attention.yaml",
            "--model.init_args.total_timesteps=120000",
            "--trainer.enable_progress_bar=false",
            f"--trainer.default_root_dir={tmp_path}",
        ]
    )
    (ckpt,) = glob.glob(
        str(tmp_path / "lightning_logs" / "version_0" / "checkpoints" / "last.ckpt")
    )
    result = evaluate_command(["--ckpt", ckpt, "--episodes", "100"])
    assert result["solve_rate"] >= 0.9


def test_attention_answers_sort_of_clevr_relational_questions(tmp_path):
    torch.set_num_threads(1)
    cli = cli_main(
        [
            "fit",
            "--config",
            "configs/sort_of_clevr/attention.yaml",
            "--trainer.enable_progress_bar=false",
            f"--trainer.default_root_dir={tmp_path}",
        ]
    )
    cli.trainer.test(cli.model, datamodule=cli.datamodule, verbose=False)
    with open(os.path.join(cli.trainer.log_dir, "metrics.json")) as f:
        test = json.load(f)["test"]["metrics"]
    for question in ("nearest_shape", "farthest_shape", "count"):
        assert test[f"test/acc_{question}_n6"] >= 0.95


ROOT = Path(__file__).resolve().parents[1]


def test_the_demo_trains_the_shipped_boxworld_agent_far_above_chance(tmp_path):
    """``scripts/demo.py`` end to end, shortened to 3 minutes of ``graphrl fit`` (2 DDP
    processes where 2 cores exist): the shipped config's agent solves fresh levels far above
    the 0.055 of uniform random actions, and the GIF and the learning curve are written."""
    done = subprocess.run(
        [sys.executable, "scripts/demo.py", "--minutes", "3", "--episodes", "100",
         "--root", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    (line,) = [x for x in done.stdout.splitlines() if x.startswith("{") and "solve_rate" in x]
    result = json.loads(line)
    assert result["episodes"] == 100
    assert result["solve_rate"] >= 0.3, result
    steps = int(re.search(r"trained ([\d,]+) env steps", done.stdout).group(1).replace(",", ""))
    assert steps > 100_000
    assert glob.glob(str(tmp_path / "lightning_logs" / "version_*" / "episode.gif"))
    assert glob.glob(str(tmp_path / "lightning_logs" / "version_*" / "learning_curve.png"))

"""Long runs that show learning end to end through the CLI (`pytest -m slow`, not in CI)."""

import glob
import json
import os

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

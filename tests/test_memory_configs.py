"""The Nth-farthest sequential configs (RMC and LSTM) train two steps through the CLI."""

import json

import pytest

from graphrl.cli import cli_main


@pytest.mark.parametrize("name", ["rmc_sequential", "lstm_sequential"])
def test_sequential_config_trains_two_steps(name, tmp_path) -> None:
    cli_main(
        args=[
            "fit",
            "--config",
            f"configs/nth_farthest/{name}.yaml",
            "--trainer.max_steps=2",
            "--trainer.limit_val_batches=1",
            "--trainer.enable_progress_bar=false",
            "--trainer.enable_model_summary=false",
            f"--trainer.default_root_dir={tmp_path}",
        ]
    )
    (metrics,) = tmp_path.glob("**/metrics.json")
    fit = json.loads(metrics.read_text())["fit"]
    assert fit["global_step"] == 2 and fit["samples_seen"] == 256

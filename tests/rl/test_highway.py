"""highway-env (an optional extra, ``.[highway]``): both shipped configs train through the CLI."""

from __future__ import annotations

import glob
import json
import os

import pytest

pytest.importorskip("highway_env")

from graphrl.cli import cli_main

HIGHWAY_CONFIGS = sorted(glob.glob("configs/highway/*.yaml"))


@pytest.mark.parametrize("config", HIGHWAY_CONFIGS, ids=os.path.basename)
def test_highway_config_trains_two_iterations(config: str, tmp_path) -> None:
    cli_main(
        [
            "fit",
            "--config",
            config,
            "--model.init_args.num_envs=2",
            "--model.init_args.num_steps=4",
            "--model.init_args.total_timesteps=16",
            "--model.init_args.vector_mode=sync",
            "--trainer.enable_progress_bar=false",
            "--trainer.enable_model_summary=false",
            f"--trainer.default_root_dir={tmp_path}",
        ]
    )
    (metrics,) = glob.glob(os.path.join(tmp_path, "lightning_logs", "version_*", "metrics.json"))
    with open(metrics) as f:
        assert json.load(f)["fit"]["samples_seen"] == 16

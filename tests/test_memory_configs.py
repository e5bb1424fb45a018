"""The Nth-farthest sequential configs (RMC and LSTM): they train through the CLI, and the
answer flag swaps their read-out."""

import json

import pytest
import torch

from datamodules import NthFarthestDataModule
from graphrl.cli import cli_main
from graphrl.models.heads import LabelHead, PointerHead


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


@pytest.mark.parametrize("answer, head", [("pointer", PointerHead), ("label", LabelHead)])
def test_answer_flag_swaps_the_read_out(answer, head, tmp_path) -> None:
    """``--data.init_args.answer=label`` gives Santoro et al.'s read-out: class logits of the
    answer's step from the last output alone; ``pointer`` scores every step's output."""
    cli = cli_main(
        args=[
            "--config",
            "configs/nth_farthest/rmc_sequential.yaml",
            f"--data.init_args.answer={answer}",
            f"--trainer.default_root_dir={tmp_path}",
        ],
        run=False,
    )
    assert isinstance(cli.model.head, head)
    batch = cli.datamodule.task.sample(4, 8, torch.Generator().manual_seed(0))
    logits, _ = cli.model(batch)
    assert logits.shape == (4, 8 if answer == "pointer" else 16)
    if answer == "label":
        # The label head reads the pooled (last) output only, not [node, pooled].
        assert cli.model.head.mlp[0].in_features == cli.model.backbone.out_channels


def test_unknown_answer_names_the_flag() -> None:
    with pytest.raises(ValueError, match=r"unknown answer 'labels'.*--data.init_args.answer"):
        NthFarthestDataModule(answer="labels")

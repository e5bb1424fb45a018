"""What a real run prints and writes: plain progress lines off a terminal, no Lightning tips,
``graphrl predict`` answers, and the console script's exit codes with and without --debug."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch
from lightning.pytorch.callbacks import TQDMProgressBar

from datamodules import NthFarthestDataModule
from graphrl.cli import main
from graphrl.console import LineProgressBar, progress_bar_for
from graphrl.models import RelationalClassifier

ROOT = Path(__file__).resolve().parents[2]


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_line_progress_bar_is_chosen_only_off_a_terminal() -> None:
    assert progress_bar_for({}, [], stream=_Terminal()) is None
    assert isinstance(progress_bar_for({}, [], stream=io.StringIO()), LineProgressBar)
    assert progress_bar_for({"enable_progress_bar": False}, [], stream=io.StringIO()) is None
    chosen = TQDMProgressBar()
    assert progress_bar_for({}, [chosen], stream=io.StringIO()) is None
    assert progress_bar_for({"callbacks": [chosen]}, [], stream=io.StringIO()) is None


def test_fit_off_a_terminal_writes_plain_lines_and_no_tips(files, tmp_path, capsys) -> None:
    main(
        [
            "fit",
            "--config",
            files["SUP"],
            "--trainer.enable_progress_bar=true",
            "--trainer.max_steps=4",
            f"--trainer.default_root_dir={tmp_path}",
        ]
    )
    captured = capsys.readouterr()
    out = captured.out + captured.err
    assert "\r" not in out  # no bar frames
    assert "Tip:" not in out and "litlogger" not in out and "litmodels" not in out
    lines = [line for line in captured.out.splitlines() if line.startswith("epoch ")]
    # log_every_n_steps=1: one line per training batch, each naming batch and step.
    assert [line.split()[5] for line in lines] == ["1", "2", "3", "4"]
    assert "batch 1/2" in lines[0] and "train/acc_step=" in lines[0]
    assert any(line.startswith("validation step") for line in captured.out.splitlines())


def test_predict_writes_the_answers_of_the_test_sets(files, tmp_path, capsys) -> None:
    main(
        [
            "predict",
            "--config",
            files["SUP"],
            "--ckpt_path",
            files["SUP_CKPT"],
            f"--trainer.default_root_dir={tmp_path}",
        ]
    )
    (path,) = tmp_path.glob("lightning_logs/version_*/predictions.pt")
    assert str(path) in capsys.readouterr().out
    answers = torch.load(path)
    data = NthFarthestDataModule(
        num_entities=4, max_entities=4, eval_num_entities=[4], batch_size=8, test_samples=8
    )
    assert list(answers) == data.eval_dataloader_names
    model = RelationalClassifier.load_from_checkpoint(files["SUP_CKPT"]).eval()
    batch = data.eval_dataset("test", 4)[0]
    with torch.no_grad():
        expected = model(batch)[0].argmax(-1)
    assert torch.equal(answers[data.eval_dataloader_names[0]], expected)


def _graphrl(*args: str, debug_env: bool = False) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    env.pop("GRAPHRL_DEBUG", None)
    if debug_env:
        env["GRAPHRL_DEBUG"] = "1"
    return subprocess.run(
        [sys.executable, "-m", "graphrl", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


@pytest.mark.parametrize("debug", ["none", "flag", "env"])
def test_console_script_exit_code_and_traceback_only_with_debug(files, debug) -> None:
    args = ["fit", "--config", files["SUP"], "--model.backbone.channels=0"]
    result = _graphrl(*args, *(["--debug"] if debug == "flag" else []), debug_env=debug == "env")
    assert result.returncode != 0
    if debug == "none":
        assert result.returncode == 2
        assert result.stderr.strip().splitlines() == [
            "error: channels must be >= 1, got 0: change "
            "--model.init_args.backbone.init_args.channels"
        ]
    else:
        assert "Traceback" in result.stderr and "channels must be >= 1" in result.stderr


def test_project_command_exit_code(files) -> None:
    result = _graphrl("evaluate", "--ckpt", files["TMP"] + "/missing.ckpt")
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "--ckpt" in result.stderr


def test_manual_optimisation_checkpoint_warning_does_not_reach_the_user(files, tmp_path) -> None:
    config = tmp_path / "rl.yaml"
    config.write_text(
        Path(files["RL"]).read_text().replace("{save_last: true}", "{every_n_train_steps: 1}")
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        main(["fit", "--config", str(config), f"--trainer.default_root_dir={tmp_path}"])
    assert list(tmp_path.glob("lightning_logs/version_0/checkpoints/*.ckpt"))  # it did save
    messages = [str(w.message) for w in caught]
    assert not [m for m in messages if "ModelCheckpoint with manual optimization" in m]


def test_lightnings_start_up_notes_that_ask_nothing_do_not_reach_the_user(
    files, tmp_path, monkeypatch
) -> None:
    monkeypatch.delenv("PL_GLOBAL_SEED", raising=False)  # as in a fresh process
    config = tmp_path / "rl.yaml"  # no seed, no max_epochs: Lightning notes both
    text = Path(files["RL"]).read_text().replace("seed_everything: 0\n", "")
    config.write_text(text.replace("  max_epochs: -1\n", ""))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        main(["fit", "--config", str(config), f"--trainer.default_root_dir={tmp_path}"])
    assert list(tmp_path.glob("lightning_logs/version_0/metrics.json"))  # it ran
    messages = [str(w.message) for w in caught]
    unwanted = ("No seed found", "`max_epochs` was not set", "isinstance(treespec, LeafSpec)")
    assert not [m for m in messages if any(u in m for u in unwanted)], messages

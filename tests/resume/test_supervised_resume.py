"""Supervised resume through ``graphrl fit``: bit-exact mid-epoch and at an epoch boundary,
``--ckpt_path last`` across versions, and the config (not the checkpoint) deciding the model."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
import torch
import yaml

from datamodules import NthFarthestDataModule
from datamodules.base import BatchIndexSampler, ResumableLoader
from graphrl.cli import cli_main
from graphrl.preemption import Preempted

ROOT = Path(__file__).resolve().parents[2]
BATCHES_PER_EPOCH = 10
TINY = [
    "--model.backbone.channels=16",
    "--model.backbone.processor.num_layers=1",
    "--model.backbone.processor.dropout=0.1",  # draws from torch's global RNG: it must resume too
    "--data.batch_size=8",
    f"--data.train_samples_per_epoch={8 * BATCHES_PER_EPOCH}",
    "--data.val_samples=16",
    "--data.test_samples=16",
    "--data.eval_num_entities=[8]",
    "--data.max_entities=8",
    "--trainer.enable_progress_bar=false",
    "--trainer.enable_model_summary=false",
    "--trainer.max_time=null",
]
CHECKPOINT = {
    "class_path": "graphrl.checkpoints.Checkpoint",
    "init_args": {"every_n_iterations": 5, "save_top_k": -1},
}


def _config(tmp_path: Path, name: str) -> Path:
    cfg = yaml.safe_load((ROOT / f"configs/nth_farthest/{name}.yaml").read_text())
    cfg["trainer"]["default_root_dir"] = str(tmp_path / "runs")
    cfg["trainer"]["callbacks"] = [CHECKPOINT]
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _fit(config: Path, steps: int, *extra: str):
    return cli_main(["fit", "--config", str(config), f"--trainer.max_steps={steps}", *TINY, *extra])


@pytest.fixture(scope="module")
def full_run(tmp_path_factory) -> tuple[Path, dict[str, torch.Tensor]]:
    """25 uninterrupted steps (2.5 epochs), a checkpoint every 5; returns (tmp dir, weights)."""
    tmp_path = tmp_path_factory.mktemp("full")
    torch.set_num_threads(1)
    cli = _fit(_config(tmp_path, "gnn"), 25)
    return tmp_path, {k: v.clone() for k, v in cli.model.state_dict().items()}


def _checkpoint_at(tmp_path: Path, step: int) -> Path:
    (path,) = (tmp_path / "runs").glob(f"lightning_logs/version_0/checkpoints/*-step={step}.ckpt")
    return path


@pytest.mark.parametrize("step", [15, 20], ids=["mid-epoch", "epoch-boundary"])
def test_resume_is_bit_exact(full_run, step: int, tmp_path: Path) -> None:
    full_dir, expected = full_run
    assert step % BATCHES_PER_EPOCH == (5 if step == 15 else 0)
    config = _config(full_dir, "gnn")
    cli = _fit(config, 25, f"--ckpt_path={_checkpoint_at(full_dir, step)}")
    assert cli.trainer.global_step == 25
    for name, value in cli.model.state_dict().items():
        assert torch.equal(value, expected[name]), name


def test_ckpt_path_last_resumes_the_newest_run_into_a_new_version(full_run) -> None:
    full_dir, _ = full_run
    logs = full_dir / "runs/lightning_logs"
    before = {p: p.stat().st_mtime_ns for p in (logs / "version_0").rglob("*")}
    versions = sorted(p.name for p in logs.iterdir())
    cli = _fit(_config(full_dir, "gnn"), 30, "--ckpt_path=last")
    assert cli.trainer.global_step == 30  # continued from step 25, not from 0
    new = sorted(set(p.name for p in logs.iterdir()) - set(versions))
    assert len(new) == 1 and (logs / new[0] / "checkpoints/last.ckpt").is_file()
    assert {p: p.stat().st_mtime_ns for p in (logs / "version_0").rglob("*")} == before


def test_ckpt_path_version_names_the_run(full_run) -> None:
    full_dir, _ = full_run
    cli = _fit(_config(full_dir, "gnn"), 26, "--ckpt_path=version_0")
    assert cli.trainer.global_step == 26  # from version_0's last.ckpt (step 25)


def test_last_without_checkpoint_fails_in_one_line_or_starts_when_asked(tmp_path: Path) -> None:
    config = _config(tmp_path, "gnn")
    with pytest.raises(SystemExit) as exc:
        _fit(config, 2, "--ckpt_path=last")
    message = str(exc.value.code)
    assert message.startswith("error: --ckpt_path last: no last.ckpt under") and "\n" not in message
    assert "--resume_or_start" in message
    assert not (tmp_path / "runs").exists()  # refused before any work
    cli = _fit(config, 2, "--resume_or_start")
    assert cli.trainer.global_step == 2


def test_checkpoint_of_another_layer_is_refused_naming_it(full_run, tmp_path: Path) -> None:
    full_dir, _ = full_run
    ckpt = f"--ckpt_path={_checkpoint_at(full_dir, 25)}"
    with pytest.raises(SystemExit) as exc:
        _fit(_config(tmp_path, "attention"), 30, ckpt)
    message = str(exc.value.code)
    assert "processor.layer: checkpoint has 'gnn', config asks 'attention'" in message
    assert "--model.backbone.init_args.processor.layer" in message and "\n" not in message
    with pytest.raises(SystemExit) as exc:
        _fit(_config(tmp_path, "gnn"), 30, ckpt, "--model.backbone.processor.num_layers=2")
    assert "processor.num_layers: checkpoint has 1, config asks 2" in str(exc.value.code)


def test_flags_next_to_ckpt_path_win_when_the_weights_fit(full_run, capsys) -> None:
    full_dir, _ = full_run
    ckpt = f"--ckpt_path={_checkpoint_at(full_dir, 25)}"
    cli = _fit(_config(full_dir, "gnn"), 26, ckpt, "--model.backbone.readout=mean")
    assert cli.model.backbone.readout.__class__.__name__ == "MeanReadout"
    assert cli.trainer.global_step == 26
    assert "readout: checkpoint has 'max', config asks 'mean'" in capsys.readouterr().err


def test_sampler_starts_at_the_trained_batch_count_on_each_rank() -> None:
    # 10 batches on 2 ranks: 5 per rank and epoch; 13 trained = epoch 2, 3 batches in.
    samplers = [BatchIndexSampler(10, rank, 2, position=lambda: 13) for rank in range(2)]
    assert [list(s) for s in samplers] == [[26, 28], [27, 29]]
    assert list(BatchIndexSampler(10, 0, 2, position=lambda: 15)) == [30, 32, 34, 36, 38]


def test_loader_warns_when_the_stream_layout_changed() -> None:
    dm = NthFarthestDataModule(batch_size=8, train_samples_per_epoch=80)
    loader = ResumableLoader(dm.train_dataset(), batch_size=None, sampler=BatchIndexSampler(10))
    loader.load_state_dict({"batches_per_epoch": 10, "world_size": 1})  # same: silent
    with pytest.warns(UserWarning, match="resuming a training stream of"):
        loader.load_state_dict({"batches_per_epoch": 20, "world_size": 2})


def test_sigterm_mid_step_saves_after_it_and_resume_equals_the_uninterrupted_run(
    tmp_path: Path, full_run
) -> None:
    config = _config(tmp_path, "gnn")
    cfg = yaml.safe_load(config.read_text())
    signal_at = {"class_path": "heartbeat.SignalAt", "init_args": {"step": 7, "signum": 15}}
    cfg["trainer"]["callbacks"].append(signal_at)
    signalled = tmp_path / "signalled.yaml"
    signalled.write_text(yaml.safe_dump(cfg))
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Preempted) as stop:
        _fit(signalled, 25)
    assert stop.value.exit_code == 128 + 15
    assert str(stop.value).startswith(
        "preempted by SIGTERM: stopped after training batch 8 (optimizer step 8) and saved "
    )
    (last,) = (tmp_path / "runs").glob("lightning_logs/version_0/checkpoints/last.ckpt")
    assert torch.load(last, weights_only=False)["global_step"] == 8  # the step in flight done

    cli = _fit(config, 25, "--ckpt_path=last")
    _, expected = full_run
    for name, tensor in cli.model.state_dict().items():
        assert torch.equal(tensor, expected[name]), name  # bit for bit
    assert signal.getsignal(signal.SIGTERM) == before  # the process's own handler is back

"""``graphrl.checkpoints.Checkpoint``: intervals in iterations (not optimizer steps) and in
minutes, atomic writes, bad arguments; and finding ``last`` among versions."""

from __future__ import annotations

import os
from pathlib import Path

import lightning as L
import pytest
import torch
import yaml
from lightning.pytorch.cli import instantiate_class

from graphrl import checkpoints
from graphrl.checkpoints import Checkpoint, find_last_checkpoint, resolve_ckpt_path
from graphrl.rl import PPO

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _ppo() -> PPO:
    # 2 update epochs x 2 minibatches: 4 optimizer steps per iteration, 6 iterations.
    return PPO(
        env_id="graphrl/BoxWorld-Small-v0",
        num_envs=2,
        num_steps=8,
        total_timesteps=16 * 6,
        update_epochs=2,
        num_minibatches=2,
    )


def _saved_iterations(callback: Checkpoint, root: Path) -> list[int]:
    trainer = L.Trainer(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        max_epochs=-1,
        default_root_dir=root,
        callbacks=[callback],
    )
    trainer.fit(_ppo())
    files = [p for p in (root / "checkpoints").glob("*.ckpt") if p.name != "last.ckpt"]
    return sorted(torch.load(p, weights_only=True)["on_policy"]["iteration"] for p in files)


def test_interval_counts_iterations_not_optimizer_steps(tmp_path: Path) -> None:
    callback = Checkpoint(every_n_iterations=2, save_top_k=-1)
    assert _saved_iterations(callback, tmp_path) == [2, 4, 6]
    assert torch.load(tmp_path / "checkpoints/last.ckpt")["on_policy"]["iteration"] == 6


def test_interval_in_minutes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = iter(range(0, 10_000, 40))  # every reading of the clock is 40 s later
    monkeypatch.setattr(checkpoints.time, "monotonic", lambda: float(next(clock)))
    callback = Checkpoint(every_n_minutes=1.0, save_top_k=-1)
    # due once >= 60 s passed since the last save: every second 40-s iteration
    assert _saved_iterations(callback, tmp_path) == [2, 4, 6]


def test_writes_are_atomic_renames_of_a_part_file(tmp_path: Path, monkeypatch) -> None:
    renames: list[tuple[str, str, bool]] = []
    real_replace = os.replace

    def replace(src: str, dst: str) -> None:
        renames.append((src, dst, os.path.isfile(src)))
        real_replace(src, dst)

    monkeypatch.setattr(checkpoints.os, "replace", replace)
    _saved_iterations(Checkpoint(every_n_iterations=3), tmp_path)
    assert renames and all(src == f"{dst}.part" and existed for src, dst, existed in renames)
    assert {Path(dst).name for _, dst, _ in renames} >= {"last.ckpt"}
    assert not list(tmp_path.rglob("*.part"))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"every_n_iterations": 0}, "every_n_iterations must be >= 1"),
        ({"every_n_minutes": -1.0}, "every_n_minutes must be > 0"),
        ({"every_n_train_steps": 200}, "not every_n_train_steps"),
    ],
)
def test_bad_intervals_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Checkpoint(**kwargs)


def test_default_is_every_minute_with_last() -> None:
    callback = Checkpoint()
    assert callback.every_n_minutes == 1.0 and callback.save_last is True


def test_find_last_picks_the_newest_of_all_versions(tmp_path: Path) -> None:
    paths = []
    for i, version in enumerate(["version_0", "version_2", "version_1"]):
        path = tmp_path / "lightning_logs" / version / "checkpoints" / "last.ckpt"
        path.parent.mkdir(parents=True)
        path.write_bytes(b"x")
        os.utime(path, (1000 + i, 1000 + i))
        paths.append(str(path))
    assert find_last_checkpoint(str(tmp_path)) == paths[2]  # newest written, not highest number
    assert find_last_checkpoint(str(tmp_path), "version_2") == paths[1]
    assert resolve_ckpt_path("version_0", str(tmp_path), False) == paths[0]
    assert resolve_ckpt_path(str(Path(paths[1]).parents[1]), str(tmp_path), False) == paths[1]
    assert resolve_ckpt_path(None, str(tmp_path), False) is None
    assert resolve_ckpt_path(None, str(tmp_path / "empty"), True) is None
    with pytest.raises(SystemExit, match=r"no last\.ckpt under .*version_7"):
        resolve_ckpt_path("version_7", str(tmp_path), False)


CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs").glob("**/*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_shipped_config_checkpoints_at_least_once_a_minute(path: Path) -> None:
    cfg = yaml.safe_load(path.read_text())
    callbacks = (cfg.get("trainer") or {}).get("callbacks") or []
    ours = [c for c in callbacks if c.get("class_path") == "graphrl.checkpoints.Checkpoint"]
    assert len(ours) == 1, "add the graphrl.checkpoints.Checkpoint block of the other configs"
    others = [c for c in callbacks if "ModelCheckpoint" in c.get("class_path", "")]
    assert not others, "a second (step-counting) ModelCheckpoint"
    callback = instantiate_class((), ours[0])
    assert callback.every_n_minutes is not None and callback.every_n_minutes <= 1.0
    assert callback.save_last is True

"""Tiny configs and trained checkpoints (one supervised, one RL) for the CLI tests, built once
per session through the real ``graphrl fit``."""

from __future__ import annotations

import glob
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from tiny_configs import RL, SUPERVISED

from graphrl.cli import main


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _fit(config: Path, root: Path) -> str:
    """Train ``config`` into ``root``; the path of its (last) checkpoint."""
    main(["fit", "--config", str(config), f"--trainer.default_root_dir={root}"])
    ckpts = sorted(glob.glob(str(root / "lightning_logs" / "version_*" / "checkpoints" / "*")))
    last = [c for c in ckpts if c.endswith("last.ckpt")]
    return (last or ckpts)[0]


@pytest.fixture(scope="session")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Paths the bad-input cases refer to by name (``{SUP}``, ``{RL_CKPT}``, ...)."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("cli")
    sup, rl = root / "sup.yaml", root / "rl.yaml"
    sup.write_text(SUPERVISED)
    rl.write_text(RL)
    typo = root / "typo.yaml"
    typo.write_text(SUPERVISED.replace("        topology: complete", "        topolgy: complete"))
    broken = root / "broken.yaml"
    broken.write_text("model:\n  init_args: [\n")
    listed = root / "list.yaml"
    listed.write_text("- 1\n- 2\n")
    sup_ckpt = _fit(sup, root / "sup_run")
    rl_ckpt = _fit(rl, root / "rl_run")
    random_ckpt = root / "random.ckpt"
    random_ckpt.write_bytes(os.urandom(4096))
    truncated = root / "truncated.ckpt"
    truncated.write_bytes(Path(sup_ckpt).read_bytes()[:2000])
    foreign = root / "foreign.ckpt"
    torch.save({"weights": torch.zeros(2)}, foreign)
    existing = root / "existing.gif"
    existing.write_bytes(b"GIF89a")
    return {
        "SUP": str(sup),
        "RL": str(rl),
        "AGENT_YAML": str(
            Path(__file__).resolve().parents[2] / "configs/boxworld/ppo_attention.yaml"
        ),
        "TYPO_YAML": str(typo),
        "BROKEN_YAML": str(broken),
        "LIST_YAML": str(listed),
        "SUP_CKPT": sup_ckpt,
        "RL_CKPT": rl_ckpt,
        "RANDOM_CKPT": str(random_ckpt),
        "TRUNCATED_CKPT": str(truncated),
        "FOREIGN_CKPT": str(foreign),
        "EXISTING_GIF": str(existing),
        "TMP": str(root),
    }

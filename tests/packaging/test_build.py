"""The package builds as a wheel and an sdist, and the wheel installs and runs on its own.

``python -m build --no-isolation`` (the build backend from this environment, so no download)
builds a copy of the checkout's files in a temporary directory; the wheel goes into a fresh
venv with ``--no-deps``, whose ``sys.path`` also reaches this environment's site-packages for
torch and the other dependencies (never the checkout: the command runs elsewhere).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import venv
import zipfile
from pathlib import Path

import pytest

import graphrl

ROOT = Path(__file__).resolve().parents[2]
# The installed copy must not see the checkout through PYTHONPATH.
CLEAN_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


def _checkout_files() -> list[str]:
    """Tracked and new (not ignored) files of the checkout: what a fresh clone would hold."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs a git checkout to know which files a clone holds")
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return [f for f in out.stdout.splitlines() if (ROOT / f).is_file()]


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``dist/`` with the wheel and the sdist built from a copy of the checkout."""
    pytest.importorskip("build")
    base = tmp_path_factory.mktemp("pkg")
    src = base / "src"
    for name in _checkout_files():
        target = src / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target)
    done = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(base / "dist"), "."],
        cwd=src, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return base / "dist"


def test_sdist_holds_the_packages_and_metadata(dist: Path) -> None:
    (sdist,) = dist.glob("graphrl-*.tar.gz")
    assert sdist.name == f"graphrl-{graphrl.__version__}.tar.gz"
    with tarfile.open(sdist) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    for name in (
        "pyproject.toml", "README.md", "LICENSE", "CHANGELOG.md", "CITATION.cff",
        "graphrl/__init__.py", "graphrl/cli.py", "graphrl/nn/attention.py",
        "graphrl/rl/ppo.py", "datamodules/nth_farthest.py",
        "configs/boxworld/ppo_attention.yaml",
    ):  # fmt: skip
        assert name in names, f"{name} missing from {sdist.name}"


def test_wheel_installs_in_a_fresh_venv_and_runs_graphrl_help(dist: Path, tmp_path: Path) -> None:
    (wheel,) = dist.glob("graphrl-*.whl")
    assert wheel.name.startswith(f"graphrl-{graphrl.__version__}-")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        metadata = zf.read(f"graphrl-{graphrl.__version__}.dist-info/METADATA").decode()
    assert "graphrl/models/agent.py" in names and "datamodules/base.py" in names
    assert f"Version: {graphrl.__version__}" in metadata
    assert "License-Expression: MIT" in metadata

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    # The dependencies (torch, lightning, ...) come from this environment's site-packages.
    Path(purelib, "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    install = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
         "--no-index", "--quiet", str(wheel)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert install.returncode == 0, install.stderr[-3000:]

    where = subprocess.run(
        [str(python), "-c", "import graphrl; print(graphrl.__file__, graphrl.__version__)"],
        cwd=tmp_path, env=CLEAN_ENV, capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    assert where[0].startswith(str(env_dir)), f"graphrl imported from {where[0]}, not the wheel"
    assert where[1] == graphrl.__version__

    done = subprocess.run(
        [str(env_dir / "bin" / "graphrl"), "--help"],
        cwd=tmp_path, env=CLEAN_ENV, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    for command in ("fit", "validate", "test", "predict"):
        assert command in done.stdout


def test_citation_and_changelog_name_this_version() -> None:
    yaml = pytest.importorskip("yaml")
    citation = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert citation["cff-version"] == "1.2.0"
    assert citation["version"] == graphrl.__version__
    assert citation["license"] == "MIT"
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert "## [Unreleased]" in changelog
    assert f"## [{graphrl.__version__}]" in changelog

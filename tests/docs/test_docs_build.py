"""The docs site builds with warnings as errors (``mkdocs build --strict``), as ``make docs``.

Broken links, a page missing from the nav, a docstring mkdocstrings cannot render and a figure
that does not exist all fail the build. Needs the ``docs`` extra (``make docs`` installs it).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("mkdocs", reason="the docs extra is not installed: run make docs")
    pytest.importorskip("mkdocstrings", reason="the docs extra is not installed: run make docs")
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    return out


def test_every_page_and_api_reference_is_built(site: Path) -> None:
    for page in (
        "index.html", "getting-started/index.html", "concepts/index.html",
        "guides/python-api/index.html", "results/index.html", "reference/models/index.html",
    ):  # fmt: skip
        assert (site / page).is_file(), page
    models = (site / "reference/models/index.html").read_text()
    for name in (
        "ActorCritic", "RelationalBackbone", "FlatBackbone", "CNNBackbone", "CategoricalHead",
        "MultiCategoricalHead", "GaussianHead", "PointerActionHead", "ActionSpec",
    ):  # fmt: skip
        assert f'id="graphrl.models.{name}"' in models, name
    assert "observation_space" in models  # the Args section is rendered
    nn = (site / "reference/nn/index.html").read_text()
    for name in ("LSTMCore", "RelationalMemoryCore", "MottQueryCore", "RecurrentCore"):
        assert f'id="graphrl.nn.{name}"' in nn, name
    envs = (site / "reference/envs/index.html").read_text()
    for name in ("make_vector_env", "env_spaces", "env_seeds"):
        assert f'id="graphrl.envs.vector.{name}"' in envs, name


def test_results_figures_are_published(site: Path) -> None:
    assert (site / "results/rl/boxworld_small.png").is_file()
    assert (site / "assets/pipeline.svg").is_file()

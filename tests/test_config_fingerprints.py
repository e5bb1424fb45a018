"""Every shipped config builds the model it built before the agent refactor: the same parameter
count, bit-identical initial parameters (same shapes, same order, same values under the config's
seed) and, for RL configs, the same losses after one tiny first update.

The fingerprints in ``tests/fixtures/config_fingerprints.json`` were taken with
``python scripts/config_fingerprints.py --write`` before ``GraphActorCritic``,
``RecurrentActorCritic``, ``MottAttentionAgent``, ``MLPPolicy`` and ``CNNPolicy`` became
``graphrl.models.ActorCritic`` with injected parts. A config whose model is meant to change gets
new fingerprints in the same commit, with the results that config's docs quote re-measured.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
from config_fingerprints import (  # noqa: E402
    FIXTURE,
    config_paths,
    fingerprint,
    is_rl,
    needs_missing_package,
)

STORED = json.loads(FIXTURE.read_text())
CONFIGS = [p for p in config_paths() if str(p.relative_to(ROOT / "configs")) in STORED]


def test_every_shipped_config_has_a_fingerprint() -> None:
    """A new config gets its fingerprint (``--write``) when it is added; none disappears."""
    names = {str(p.relative_to(ROOT / "configs")) for p in config_paths()}
    optional = {n for n in names if needs_missing_package(ROOT / "configs" / n)}
    assert names - optional <= set(STORED)
    assert set(STORED) <= names


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: str(p.relative_to(ROOT / "configs")))
def test_config_builds_the_same_model(path: Path, tmp_path: Path) -> None:
    torch.set_num_threads(1)
    name = str(path.relative_to(ROOT / "configs"))
    stored = STORED[name]
    now = fingerprint(path, str(tmp_path))
    assert now["num_parameters"] == stored["num_parameters"]
    assert [p[0] for p in now["parameters"]] == [p[0] for p in stored["parameters"]]
    assert now["parameters"] == stored["parameters"], "initial parameters differ"
    if is_rl(path):
        for key, value in stored["losses"].items():
            assert math.isclose(now["losses"][key], value, rel_tol=1e-5, abs_tol=1e-7), key


EARLIER = ROOT / "tests/fixtures/earlier_configs"


@pytest.mark.parametrize("path", sorted(EARLIER.glob("*.yaml")), ids=lambda p: p.stem)
def test_configs_of_earlier_releases_still_build_the_same_model(path: Path, tmp_path: Path) -> None:
    """Configs written for the old agent classes (``GraphActorCritic``, ``RecurrentActorCritic``,
    ``MottAttentionAgent``, ``MLPPolicy``, ``CNNPolicy``; copies of the shipped configs before
    the one-agent refactor) load and build the fingerprinted model."""
    torch.set_num_threads(1)
    stored = STORED[path.stem.replace("_", "/", 1) + ".yaml"]
    now = fingerprint(path, str(tmp_path))
    assert now["parameters"] == stored["parameters"]
    for key, value in stored["losses"].items():
        assert math.isclose(now["losses"][key], value, rel_tol=1e-5, abs_tol=1e-7), key

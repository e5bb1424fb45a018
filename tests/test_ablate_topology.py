"""scripts/ablate_topology.py: every variant trained through ``graphrl fit`` for the same env
steps, evaluated by ``graphrl evaluate``, one table, one plot; bad input in one line."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "ablate_topology.py"


def _module():
    spec = importlib.util.spec_from_file_location("ablate_topology", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], cwd=ROOT, capture_output=True, text=True, timeout=600
    )


def test_every_variant_sees_the_same_env_steps() -> None:
    ablate = _module()
    # The shipped configs: attention 32 envs x 64 steps (per process), CNN 16 x 64.
    sizes = [
        ablate.iteration_size(str(ROOT / "configs/boxworld/ppo_attention.yaml"), False),
        ablate.iteration_size(str(ROOT / "configs/boxworld/ppo_cnn.yaml"), False),
    ]
    assert sizes == [2048, 1024]
    assert ablate.equal_timesteps(300_000, sizes) == 146 * 2048
    assert ablate.equal_timesteps(10, sizes) == 2048  # at least one iteration of each
    assert set(ablate.VARIANTS) == {
        "complete", "knn", "radius", "criss_cross", "grid8", "relative_rgcn", "gcn", "self", "cnn"
    }  # fmt: skip


def test_bad_input_is_one_line_and_keeps_an_existing_table(tmp_path) -> None:
    result = _run("--quick", "--variants", "complete", "spiral", "--out", str(tmp_path))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        "error: unknown variant 'spiral': pass --variants from complete, knn, radius, "
        "criss_cross, grid8, relative_rgcn, gcn, self, cnn"
    ]
    table = tmp_path / "topology.md"
    table.write_text("an earlier ablation\n")
    result = _run("--quick", "--variants", "self", "--out", str(tmp_path))
    assert result.returncode == 2 and "pass --force" in result.stderr
    assert table.read_text() == "an earlier ablation\n"


def _check_outputs(out: Path, variants: list[str]) -> None:
    rows = [json.loads(line) for line in (out / "topology.jsonl").read_text().splitlines()]
    assert [r["variant"] for r in rows] == variants
    assert len({r["env_steps"] for r in rows}) == 1  # equal env steps
    table = (out / "topology.md").read_text().splitlines()
    body = [line for line in table if line.startswith("| ") and not line.startswith("| variant")]
    assert [line.split(" | ")[0].strip("| ") for line in body] == variants
    for row, line in zip(rows, body):
        assert 0.0 <= row["solve_rate"] <= 1.0 and row["evaluation"]["episodes"] == 4
        assert f"{row['solve_rate']:.3f}" in line and f"{row['env_steps']:,}" in line
    assert (out / "topology.png").stat().st_size > 10_000


def test_quick_run_of_the_trickiest_variant_writes_table_and_plot(tmp_path) -> None:
    # relative_rgcn: grid encoder, a typed topology with its kwargs, another layer.
    out = tmp_path / "out"
    result = _run("--quick", "--variants", "relative_rgcn", "--out", str(out),
                  "--runs_dir", str(tmp_path / "runs"))  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    _check_outputs(out, ["relative_rgcn"])


@pytest.mark.slow
def test_quick_run_of_every_variant(tmp_path) -> None:  # about 2 minutes on one core
    out = tmp_path / "out"
    result = _run("--quick", "--out", str(out), "--runs_dir", str(tmp_path / "runs"))
    assert result.returncode == 0, result.stderr[-2000:]
    _check_outputs(out, list(_module().VARIANTS))

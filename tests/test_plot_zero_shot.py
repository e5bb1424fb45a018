"""scripts/plot_zero_shot.py: ``graphrl evaluate`` rows become one condition x agent table and
a figure; path-length rows are told apart from the other conditions."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "plot_zero_shot.py"


def _module():
    spec = importlib.util.spec_from_file_location("plot_zero_shot", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _row(env_id: str, solve: float, **kwargs) -> dict:
    return {"env_id": env_id, "env_kwargs": kwargs, "solve_rate": solve, "episodes": 200}


SMALL = "graphrl/BoxWorld-Small-v0"


def test_conditions_name_what_each_row_changes() -> None:
    condition = _module().condition
    assert condition(_row(SMALL, 1, goal_length=4, num_distractors=[0, 1], color_ids=26)) == (
        "path 4",
        4,
    )
    assert condition(_row(SMALL, 1, goal_length=[1, 2], num_distractors=4)) == (
        "4 distractors",
        None,
    )
    assert condition(_row(SMALL, 1, n=8, goal_length=[1, 2])) == ("8x8 room", None)
    assert condition(_row(SMALL, 1, goal_length=[1, 2, 3], color_ids=26)) == (
        "training levels",
        None,
    )
    assert condition(_row("graphrl/BoxWorld-12x12-v0", 1)) == ("12x12", None)


def test_table_and_figure_from_two_agents(tmp_path) -> None:
    rows = {
        "a": [_row(SMALL, s, goal_length=g) for g, s in ((1, 1.0), (2, 0.9), (4, 0.5))]
        + [_row("graphrl/BoxWorld-Medium-v0", 0.25)],
        "b": [_row(SMALL, 0.1, goal_length=1)],
    }
    for name, lines in rows.items():
        (tmp_path / f"{name}_small.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    out = tmp_path / "fig"
    _module().main(["--agent", f"A={tmp_path}/a", "--agent", f"B={tmp_path}/b", "--out", str(out)])
    table = (tmp_path / "fig.md").read_text()
    assert "| path 1 (trained) | 100.0 | 10.0 |" in table
    assert "| path 4 | 50.0 | - |" in table
    assert "| Medium | 25.0 | - |" in table
    assert table.index("path 2") < table.index("path 4") < table.index("Medium")
    assert (tmp_path / "fig.png").stat().st_size > 10_000


def test_missing_files_are_one_line(tmp_path) -> None:
    with pytest.raises(SystemExit, match=r"no .*nope\*\.jsonl: run graphrl evaluate"):
        _module().main(["--agent", f"A={tmp_path}/nope", "--out", str(tmp_path / "x")])
    with pytest.raises(SystemExit, match="expected NAME=PREFIX"):
        _module().main(["--agent", "A", "--out", str(tmp_path / "x")])

"""Scripts run end to end in their smoke mode and print what they promise."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_bench_layers_quick_prints_one_json_line_per_comparison_then_a_table() -> None:
    result = subprocess.run(
        [sys.executable, "scripts/bench_layers.py", "--quick", "--threads", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    lines = result.stdout.splitlines()
    records = [json.loads(line) for line in lines if line.startswith("{")]
    names = [r["name"] for r in records]
    expected = {
        *(f"attention_complete_n{n}_vs_mha" for n in (16, 49, 100, 196)),
        "attention_complete_n49_sparse_vs_dense",
        "pyg_transformerconv_n49_vs_ours",
        "rgcn_relative3_vs_conv2d",
        "build_complete_n49_vs_per_sample",
        "build_relative3_7x7_vs_per_sample",
    }
    assert expected <= set(names) and len(names) == len(set(names))
    for r in records:
        assert set(r) == {"name", "ours_s", "reference_s", "ratio"}
        assert r["ours_s"] > 0 and r["reference_s"] > 0
        assert math.isclose(r["ratio"], r["ours_s"] / r["reference_s"], rel_tol=1e-9)
    table = [line for line in lines if line.startswith("| ")]
    assert table[0].startswith("| comparison |") and len(table) == len(records) + 1


def test_gpu_check_without_a_gpu_exits_0_with_one_line_saying_so() -> None:
    """``scripts/gpu_check.sh`` on a machine (or a view of one) without CUDA: one JSON line."""
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "PYTHON": sys.executable}
    done = subprocess.run(
        ["bash", "scripts/gpu_check.sh"], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    (line,) = done.stdout.strip().splitlines()
    result = json.loads(line)
    assert result["status"] == "skipped" and "no CUDA device" in result["reason"]

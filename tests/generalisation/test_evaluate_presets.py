"""``graphrl evaluate`` on a list of presets: one row each, a table, and an agent trained on
few colours playing presets drawn from more (its ids relabelled in), or a one-line refusal."""

from __future__ import annotations

import glob
import json
import os

import pytest

from graphrl.cli import cli_main
from graphrl.commands import evaluate_command
from graphrl.envs.boxworld_colors import fit_symbols
from graphrl.envs.vector import env_spaces


def test_fit_symbols_relabels_when_levels_fit_and_refuses_otherwise() -> None:
    small, _ = env_spaces("graphrl/BoxWorld-Small-v0")  # 6 colour ids
    assert fit_symbols(small, "graphrl/BoxWorld-Small-Hard-v0") == {}
    # Medium draws from 20 colours but each level uses 3 + 2 = 5 <= 6
    assert fit_symbols(small, "graphrl/BoxWorld-Medium-v0") == {"color_ids": 6}
    with pytest.raises(ValueError, match=r"knows 6 key colours but .*12x12-v0 levels use up to 8"):
        fit_symbols(small, "graphrl/BoxWorld-12x12-v0")
    wide, _ = env_spaces("graphrl/BoxWorld-Small-v0", {"color_ids": 26})
    assert fit_symbols(wide, "graphrl/BoxWorld-12x12-v0") == {}


def test_evaluate_a_preset_list_writes_one_table(tmp_path, capsys) -> None:
    root = str(tmp_path / "run")
    cli_main(
        [
            "fit",
            "--config",
            "configs/boxworld/zero_shot.yaml",
            "--model.init_args.num_envs=2",
            "--model.init_args.num_steps=8",
            "--model.init_args.total_timesteps=16",
            "--trainer.enable_progress_bar=false",
            "--trainer.enable_model_summary=false",
            f"--trainer.default_root_dir={root}",
        ]
    )
    (ckpt,) = glob.glob(
        os.path.join(root, "lightning_logs", "version_*", "checkpoints", "last.ckpt")
    )
    out = str(tmp_path / "table")
    ids = ["graphrl/BoxWorld-Small-v0", "graphrl/BoxWorld-Medium-v0,graphrl/BoxWorld-12x12-v0"]
    args = ["--ckpt", ckpt, "--episodes", "2", "--num_envs", "2", "--env_id", *ids]
    rows = evaluate_command([*args, "--out", out])
    assert [r["env_id"] for r in rows] == [
        "graphrl/BoxWorld-Small-v0",
        "graphrl/BoxWorld-Medium-v0",
        "graphrl/BoxWorld-12x12-v0",
    ]
    assert all(r["episodes"] == 2 and 0.0 <= r["solve_rate"] <= 1.0 for r in rows)
    with open(f"{out}.jsonl") as f:
        assert [json.loads(line)["env_id"] for line in f] == [r["env_id"] for r in rows]
    with open(f"{out}.md") as f:
        table = f.read()
    assert table.count("\n| graphrl/BoxWorld-") == 3
    assert "| graphrl/BoxWorld-12x12-v0 |" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="exists: pass another --out or --force"):
        evaluate_command([*args, "--out", out])
    # several --env_kwargs: every env runs once with each, env-major
    lengths = ['{"goal_length": 1}', '{"goal_length": 4, "num_distractors": 0}']
    args = ["--ckpt", ckpt, "--episodes", "2", "--num_envs", "2"]
    ids = ["graphrl/BoxWorld-Small-v0", "graphrl/BoxWorld-Medium-v0"]
    rows = evaluate_command([*args, "--env_id", *ids, "--env_kwargs", *lengths])
    assert [(r["env_id"], r["env_kwargs"]) for r in rows] == [
        (env_id, json.loads(kwargs)) for env_id in ids for kwargs in lengths
    ]
    with pytest.raises(SystemExit, match="takes no keyword 'nope'"):
        evaluate_command([*args, "--env_kwargs", '{"goal_length": 2}', '{"nope": 1}'])


def test_an_agent_trained_on_six_colours_plays_medium_and_refuses_12x12_in_one_line(
    tmp_path, capsys
) -> None:
    root = str(tmp_path / "run")
    cli_main(
        [
            "fit",
            "--config",
            "configs/boxworld/ppo_attention.yaml",
            "--model.init_args.num_envs=2",
            "--model.init_args.num_steps=8",
            "--model.init_args.total_timesteps=16",
            "--trainer.enable_progress_bar=false",
            "--trainer.enable_model_summary=false",
            f"--trainer.default_root_dir={root}",
        ]
    )
    (ckpt,) = glob.glob(
        os.path.join(root, "lightning_logs", "version_*", "checkpoints", "last.ckpt")
    )
    args = ["--ckpt", ckpt, "--episodes", "2", "--num_envs", "2", "--env_id"]
    row = evaluate_command([*args, "graphrl/BoxWorld-Medium-v0"])
    assert row["env_kwargs"] == {"color_ids": 6} and row["episodes"] == 2
    with pytest.raises(SystemExit, match=r"knows 6 key colours but .*use up to 8.*color_ids: 26"):
        evaluate_command([*args, "graphrl/BoxWorld-12x12-v0"])

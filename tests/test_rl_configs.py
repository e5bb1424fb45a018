"""Every RL config in configs/ parses, instantiates and runs two PPO/A2C iterations through the
real CLI; the run leaves metrics.json and last.ckpt, and evaluate/render work on the result."""

import glob
import json
import os

import pytest

from graphrl.cli import cli_main
from graphrl.commands import evaluate_command, render_command

RL_CONFIGS = sorted(
    glob.glob("configs/boxworld/*.yaml")
    + glob.glob("configs/minigrid/*.yaml")
    + glob.glob("configs/minipacman/*.yaml")
)


def _fit(config: str, root: str) -> str:
    with open(config) as f:
        is_ppo = "graphrl.rl.PPO" in f.read()
    # recurrent policies need num_minibatches <= num_envs (whole env sequences per minibatch)
    extra = ["--model.init_args.num_minibatches=2"] if is_ppo else []
    cli_main(
        [
            "fit",
            "--config",
            config,
            "--model.init_args.num_envs=2",
            "--model.init_args.num_steps=8",
            "--model.init_args.total_timesteps=32",
            "--trainer.enable_progress_bar=false",
            "--trainer.enable_model_summary=false",
            f"--trainer.default_root_dir={root}",
            *extra,
        ]
    )
    (log_dir,) = glob.glob(os.path.join(root, "lightning_logs", "version_*"))
    return log_dir


def test_there_are_rl_configs():
    names = {os.path.basename(p) for p in RL_CONFIGS}
    assert {"ppo_attention.yaml", "ppo_baseline.yaml", "a2c_attention.yaml"} <= names


@pytest.mark.parametrize("config", RL_CONFIGS, ids=lambda p: os.path.relpath(p, "configs"))
def test_config_trains_two_iterations(config, tmp_path):
    log_dir = _fit(config, str(tmp_path))
    with open(os.path.join(log_dir, "metrics.json")) as f:
        summary = json.load(f)["fit"]
    assert summary["samples_seen"] == 32
    assert "losses/value_loss" in summary["metrics"]
    assert os.path.exists(os.path.join(log_dir, "config.yaml"))


def test_evaluate_and_render_a_trained_agent(tmp_path, capsys):
    log_dir = _fit("configs/boxworld/ppo_attention.yaml", str(tmp_path))
    ckpt = glob.glob(os.path.join(log_dir, "checkpoints", "*.ckpt"))
    assert ckpt, "ModelCheckpoint(save_last=True) should leave a checkpoint"
    last = os.path.join(log_dir, "checkpoints", "last.ckpt")
    result = evaluate_command(["--ckpt", last, "--episodes", "4", "--num_envs", "2"])
    assert result["episodes"] == 4 and 0.0 <= result["solve_rate"] <= 1.0
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["episodes"] == 4
    gif = str(tmp_path / "episode.gif")
    render_command(["--ckpt", last, "--out", gif, "--max_steps", "5"])
    assert os.path.getsize(gif) > 0
    with pytest.raises(SystemExit, match="exists"):
        render_command(["--ckpt", last, "--out", gif])


def test_corrupt_checkpoint_fails_with_one_clear_line(tmp_path):
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(SystemExit, match="corrupt or not a torch file"):
        evaluate_command(["--ckpt", str(bad)])
    with pytest.raises(SystemExit, match="does not exist"):
        evaluate_command(["--ckpt", str(tmp_path / "missing.ckpt")])

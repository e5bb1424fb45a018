"""examples/custom_env: a user's package (env + topology) trains from its YAML through the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "custom_env"
CLI = [sys.executable, "-c", "from graphrl.cli import main; main()"]


def _run(args: list[str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(EXAMPLE)])}
    return subprocess.run(
        CLI + args, capture_output=True, text=True, env=env, cwd=ROOT, timeout=300
    )


def test_example_package_trains_two_iterations_and_evaluates(tmp_path: Path) -> None:
    fit = _run(
        [
            "fit",
            f"--config={EXAMPLE / 'ppo_nearest.yaml'}",
            "--model.init_args.num_envs=4",
            "--model.init_args.num_steps=16",
            "--model.init_args.total_timesteps=128",  # 2 iterations
            f"--trainer.default_root_dir={tmp_path}",
            "--trainer.enable_progress_bar=false",
        ]
    )
    assert fit.returncode == 0, fit.stderr[-2000:]
    metrics = json.loads(next(tmp_path.rglob("metrics.json")).read_text())
    assert metrics  # the run reported
    ckpt = next(tmp_path.rglob("*.ckpt"))
    state = torch.load(ckpt, map_location="cpu", weights_only=False)
    assert state["on_policy"]["iteration"] == 2
    policy = state["hyper_parameters"]["policy"]["init_args"]["backbone"]["init_args"]
    assert policy["topology"] == ["custom_env.topology.NearestInPlane", "complete"]
    # the checkpoint evaluates on fresh levels of the user's env (in this process: one CLI
    # start-up is enough for the suite)
    from graphrl.commands import load_agent

    sys.path.insert(0, str(EXAMPLE))
    try:
        result = load_agent(str(ckpt)).evaluate(episodes=4, num_envs=2)
    finally:
        sys.path.remove(str(EXAMPLE))
    assert result["episodes"] == 4 and 0.0 <= result["mean_return"] <= 8.0


def test_the_user_topology_connects_nearest_entities() -> None:
    sys.path.insert(0, str(EXAMPLE))
    try:
        from custom_env import NearestEnv, NearestInPlane
    finally:
        sys.path.remove(str(EXAMPLE))
    from graphrl.graphs import VectorEncoder

    env = NearestEnv(max_entities=5, min_entities=5)
    obs = torch.as_tensor(env.reset(seed=0)[0]).unsqueeze(0)
    graph = NearestInPlane(k=2)(VectorEncoder(3, 4)(obs))
    adj = graph.dense_adj[0]
    xy = obs[0, :, 1:]
    dist = torch.cdist(xy, xy)
    for i in range(5):
        assert set(adj[i].nonzero().flatten().tolist()) == set(
            dist[i].topk(2, largest=False)[1].tolist()
        )

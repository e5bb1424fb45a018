"""Box-World agent speed, measured side by side in one run (issue 11's rows).

Prints one JSON line per row, then a markdown table:

- ``attention_update_vs_peak`` (and ``_compiled``, ``_bf16``): achieved FLOP/s of one PPO
  minibatch update of the shipped Box-World policy (``configs/boxworld/ppo_attention.yaml``:
  forward, backward and the Adam step on 512 observations from a rollout) over the fp32 matmul
  peak of this process (a 512x512 matmul). FLOPs are counted once, on the eager fp32 update,
  with ``torch.utils.flop_counter``; every variant is timed on the same batch, so the variants'
  ratios compare their speed. Target: >= 0.40.
- ``ddp2_vs_1``: env-steps/s of ``graphrl fit`` on that config with 2 DDP processes (gloo, one
  torch thread and the config's ``num_envs`` each: what ``make demo`` runs) over 1 process with
  all of their envs, the same number of env steps; each from the run's own ``charts/SPS``
  (steps since fit start / wall time, so process start-up is not counted). Target: >= 1.8.

    python scripts/bench_boxworld.py                 # both rows (about 4 minutes)
    python scripts/bench_boxworld.py --only update   # or --only ddp
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import yaml
from torch.utils.flop_counter import FlopCounterMode

from graphrl.envs.vector import make_vector_env

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "configs/boxworld/ppo_attention.yaml"


def shipped_policy() -> tuple[torch.nn.Module, dict]:
    """The policy of ``CONFIG``, built by the CLI from the config, and the PPO settings."""
    from graphrl.cli import cli_main

    with tempfile.TemporaryDirectory() as tmp:
        cli = cli_main(
            args=["--config", str(CONFIG), "--trainer.callbacks=[]", "--trainer.logger=false",
                  f"--trainer.default_root_dir={tmp}"],
            run=False,
        )  # fmt: skip
    return cli.model.policy, yaml.safe_load(CONFIG.read_text())["model"]["init_args"]


def rollout_minibatch(model: dict) -> torch.Tensor:
    """One minibatch (``num_envs * num_steps / num_minibatches`` observations) of random play."""
    size = model["num_envs"] * model["num_steps"] // model["num_minibatches"]
    envs = make_vector_env(model["env_id"], list(range(model["num_envs"])), "sync", {})
    obs, _ = envs.reset(seed=0)
    frames = []
    while len(frames) * model["num_envs"] < size:
        frames.append(obs)
        obs, *_ = envs.step(envs.action_space.sample())
    envs.close()
    return torch.as_tensor(np.concatenate(frames)[:size])


def median_time(fn: Callable[[], object], calls: int, repeats: int = 3) -> float:
    """Median over ``repeats`` blocks of the mean seconds per call (after 3 warm-up calls)."""
    for _ in range(3):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        times.append((time.perf_counter() - start) / calls)
    return statistics.median(times)


def matmul_peak() -> float:
    """fp32 FLOP/s of a 512x512 matmul on this process's threads."""
    a, b = torch.randn(512, 512), torch.randn(512, 512)
    return 2 * 512**3 / median_time(lambda: a @ b, 200)


def update_rows(calls: int) -> list[dict]:
    torch.manual_seed(0)
    policy, model = shipped_policy()
    obs = rollout_minibatch(model)
    optimizer = torch.optim.Adam(policy.parameters(), lr=1e-5)
    compiled = torch.compile(policy)

    def update(net, bf16: bool = False) -> None:
        with torch.autocast("cpu", torch.bfloat16, enabled=bf16):
            logits, value = net(obs)
            loss = logits.float().logsumexp(-1).mean() + value.float().square().mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    with policy.static_shapes(obs):  # the slots PPO fixes for a rollout's update
        with FlopCounterMode(display=False) as counter:
            logits, value = policy(obs)
            (logits.logsumexp(-1).mean() + value.square().mean()).backward()
        flops = counter.get_total_flops()
        start = time.perf_counter()
        update(compiled)
        compile_s = time.perf_counter() - start
        peak = matmul_peak()
        variants = {
            "attention_update_vs_peak": lambda: update(policy),
            "attention_update_vs_peak_compiled": lambda: update(compiled),
            "attention_update_vs_peak_bf16": lambda: update(policy, bf16=True),
        }
        seconds = {name: median_time(fn, calls) for name, fn in variants.items()}
        peak = (peak + matmul_peak()) / 2  # before and after, against drift
    rows = []
    for name, s in seconds.items():
        row = {
            "name": name,
            "minibatch": int(obs.shape[0]),
            "gflop": round(flops / 1e9, 3),
            "ms": round(1e3 * s, 2),
            "gflops": round(flops / s / 1e9, 2),
            "peak_gflops": round(peak / 1e9, 1),
            "ratio": round(flops / s / peak, 3),
            "target": 0.40,
        }
        if name.endswith("compiled"):
            row["compile_s"] = round(compile_s, 1)
        rows.append(row)
    return rows


def fit_sps(devices: int, num_envs: int, timesteps: int, out: Path) -> float:
    """``charts/SPS`` at the end of a ``graphrl fit`` of ``CONFIG`` on ``devices`` processes."""
    cmd = [
        sys.executable, "-m", "graphrl", "fit", "--config", str(CONFIG),
        f"--model.init_args.num_envs={num_envs}",
        f"--model.init_args.total_timesteps={timesteps}",
        f"--trainer.devices={devices}", "--trainer.accelerator=cpu",
        f"--trainer.default_root_dir={out}", "--trainer.callbacks=[]",
        "--trainer.enable_checkpointing=false",
    ]  # fmt: skip
    if devices > 1:
        cmd.append("--trainer.strategy=ddp")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    subprocess.run(cmd, check=True, env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(next(out.rglob("events.out.tfevents.*")).parent))
    events.Reload()
    return events.Scalars("charts/SPS")[-1].value


def ddp_row(timesteps: int) -> dict:
    _, model = shipped_policy()
    envs = model["num_envs"]
    with tempfile.TemporaryDirectory() as tmp:  # make demo: 2 processes, the config's envs each
        one = fit_sps(1, 2 * envs, timesteps, Path(tmp) / "one")
        two = fit_sps(2, envs, timesteps, Path(tmp) / "two")
    return {
        "name": "ddp2_vs_1",
        "env_steps": timesteps,
        "ours_sps": round(two, 1),
        "reference_sps": round(one, 1),
        "ratio": round(two / one, 3),
        "target": 1.8,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=("update", "ddp"), default=None)
    parser.add_argument("--calls", type=int, default=10, help="update calls per timed block")
    parser.add_argument("--ddp-timesteps", type=int, default=65_536)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    if args.only in (None, "update"):
        rows += update_rows(args.calls)
        for row in rows:
            print(json.dumps(row), flush=True)
    if args.only in (None, "ddp"):
        rows.append(ddp_row(args.ddp_timesteps))
        print(json.dumps(rows[-1]), flush=True)
    print("\n| row | measured | ratio | target |\n|---|---|---|---|")
    for r in rows:
        if "gflops" in r:
            what = f"{r['ms']} ms, {r['gflops']} of {r['peak_gflops']} GFLOP/s"
        else:
            what = f"{r['ours_sps']:.0f} vs {r['reference_sps']:.0f} env-steps/s"
        print(f"| {r['name']} | {what} | {r['ratio']:.3f} | >= {r['target']} |")


if __name__ == "__main__":
    main()

"""The cost of the per-iteration fault checks against one rollout of the shipped Box-World
config (``configs/boxworld/ppo_attention.yaml``: 32 envs x 64 steps, the attention agent),
all measured in one run. One JSON line per row, ``ratio = check_s / rollout_s``:

- ``finite_check_vs_rollout``: :func:`graphrl.rl.finite.check_rollout_finite` on that rollout
  (Box-World's observations are integers, so it reads the rewards only).
- ``finite_check_float_obs_vs_rollout``: the same check were its observations floats (the
  rollout's observations cast to float32 before timing).
- ``preemption_allreduce_vs_rollout``: the preemption agreement, one all-reduce (max) of a
  2-element tensor between 2 gloo processes, as every DDP rank runs after each iteration.

    python scripts/bench_faults.py [--repeats 50]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import time
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from graphrl.cli import cli_main
from graphrl.envs.vector import env_seeds, make_vector_env
from graphrl.rl.finite import check_rollout_finite
from graphrl.rl.rollout import RolloutCollector

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "boxworld" / "ppo_attention.yaml"


def _rollout_and_checks(repeats: int) -> dict[str, float]:
    module = cli_main(["--config", str(CONFIG), "--trainer.logger=false"], run=False).model
    hp = module.hparams
    seeds = env_seeds(hp.seed, hp.num_envs)
    envs = make_vector_env(hp.env_id, seeds, hp.vector_mode, hp.env_kwargs)
    collector = RolloutCollector(envs, hp.num_steps, seeds)
    try:
        collector.collect(module.policy)  # the first rollout also resets the envs
        start = time.perf_counter()
        buffer = collector.collect(module.policy)
        rollout_s = time.perf_counter() - start
    finally:
        collector.close()

    def timed(obs: torch.Tensor) -> float:
        start = time.perf_counter()
        for _ in range(repeats):
            check_rollout_finite(obs, buffer.rewards, hp.env_id, 0)
        return (time.perf_counter() - start) / repeats

    return {
        "rollout_s": rollout_s,
        "check_s": timed(buffer.obs),
        "check_float_s": timed(buffer.obs.float()),
    }


def _allreduce_worker(rank: int, port: int, repeats: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    flags = torch.zeros(2, dtype=torch.int64)
    for _ in range(10):
        dist.all_reduce(flags, op=dist.ReduceOp.MAX)
    dist.barrier()
    start = time.perf_counter()
    for _ in range(repeats):
        dist.all_reduce(flags, op=dist.ReduceOp.MAX)
    elapsed = (time.perf_counter() - start) / repeats
    if rank == 0:
        Path(out).write_text(str(elapsed))
    dist.destroy_process_group()


def _allreduce_s(repeats: int) -> float:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = Path(f"/tmp/bench_faults_{os.getpid()}.txt")
    mp.spawn(_allreduce_worker, args=(port, repeats, str(out)), nprocs=2, join=True)
    try:
        return float(out.read_text())
    finally:
        out.unlink()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=50, help="timed calls of each check")
    args = parser.parse_args()
    torch.set_num_threads(1)
    times = _rollout_and_checks(args.repeats)
    times["allreduce_s"] = _allreduce_s(args.repeats * 10)
    rollout = times["rollout_s"]
    for name, key in (
        ("finite_check_vs_rollout", "check_s"),
        ("finite_check_float_obs_vs_rollout", "check_float_s"),
        ("preemption_allreduce_vs_rollout", "allreduce_s"),
    ):
        row = {"name": name, "check_s": times[key], "rollout_s": rollout}
        print(json.dumps({**row, "ratio": times[key] / rollout}))


if __name__ == "__main__":
    main()

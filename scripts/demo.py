"""The README's first command (`make demo`): the relational agent learns Box-World in minutes.

Trains ``configs/boxworld/ppo_attention.yaml`` with ``graphrl fit`` on as many DDP processes as
the machine has cores (at most 2: each runs the config's ``num_envs`` envs on one torch thread),
for at most ``--minutes``; then, from the last checkpoint:

1. ``graphrl evaluate`` on 200 fresh levels prints its JSON line (the solve rate);
2. ``graphrl render`` writes an episode GIF with the agent's attention;
3. ``scripts/plot_rl.py`` writes the learning curve PNG (and its table).

    python scripts/demo.py [--minutes 5] [--processes 2] [--root runs/demo]

The supervised demo (Sort-of-CLEVR) is ``make demo-supervised``.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import subprocess
import sys
import time

CONFIG = "configs/boxworld/ppo_attention.yaml"


def run(args: list[str], env: dict[str, str]) -> None:
    """Run one command, its output streamed; stop the demo with its exit code if it fails."""
    print("$ " + " ".join(args), flush=True)
    done = subprocess.run(args, env=env)
    if done.returncode:
        sys.exit(done.returncode)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=5.0, help="training time budget")
    parser.add_argument("--processes", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--root", default="runs/demo", help="where logs and checkpoints go")
    parser.add_argument("--episodes", type=int, default=200, help="fresh levels to evaluate")
    args = parser.parse_args()
    if args.processes < 1 or args.minutes <= 0:
        sys.exit("error: --processes must be >= 1 and --minutes > 0")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    graphrl = [sys.executable, "-m", "graphrl"]
    seconds = int(args.minutes * 60)
    budget = f"00:{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
    before = set(glob.glob(os.path.join(args.root, "lightning_logs", "version_*")))
    fit = [*graphrl, "fit", "--config", CONFIG, f"--trainer.max_time={budget}",
           f"--trainer.default_root_dir={args.root}", "--trainer.accelerator=cpu",
           f"--trainer.devices={args.processes}"]  # fmt: skip
    if args.processes > 1:
        fit.append("--trainer.strategy=ddp")
    start = time.perf_counter()
    run(fit, env)
    train_s = time.perf_counter() - start
    (log_dir,) = set(glob.glob(os.path.join(args.root, "lightning_logs", "version_*"))) - before
    ckpt = os.path.join(log_dir, "checkpoints", "last.ckpt")
    with open(os.path.join(log_dir, "metrics.json")) as f:
        fit_summary = json.load(f)["fit"]
    print(f"\n== trained {fit_summary['samples_seen']:,} env steps in {train_s:.0f} s "
          f"({args.processes} process(es)); fresh levels: ==", flush=True)  # fmt: skip
    run([*graphrl, "evaluate", "--ckpt", ckpt, "--episodes", str(args.episodes)], env)
    gif = os.path.join(log_dir, "episode.gif")
    run([*graphrl, "render", "--ckpt", ckpt, "--out", gif, "--seed", "1", "--force"], env)
    curve = os.path.join(log_dir, "learning_curve")
    run([sys.executable, "scripts/plot_rl.py", "--run", f"attention={log_dir}", "--out", curve,
         "--title", "Box-World Small: relational agent (make demo)"], env)  # fmt: skip
    print("\n== demo finished ==")
    print(f"episode GIF:    {os.path.abspath(gif)}")
    print(f"learning curve: {os.path.abspath(curve)}.png")
    print(f"TensorBoard:    tensorboard --logdir {os.path.abspath(log_dir)}")


if __name__ == "__main__":
    main()

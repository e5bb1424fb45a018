"""The supervised demo (`make demo-supervised`): a real training run on a default config.

Trains the relational (attention) model on Sort-of-CLEVR for a few minutes with Lightning's
progress bar, tests it, then prints the accuracy reached per question type and where the
TensorBoard logs and metrics.json are.

    python scripts/demo_supervised.py [--config configs/sort_of_clevr/attention.yaml] [--minutes 3]
"""

from __future__ import annotations

import argparse
import json
import os

import torch

from graphrl.cli import cli_main

DEFAULT_CONFIG = "configs/sort_of_clevr/attention.yaml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default=DEFAULT_CONFIG)
    parser.add_argument("--minutes", type=float, default=3.0, help="training time budget")
    parser.add_argument("--root", default="runs/demo", help="where logs and checkpoints go")
    args = parser.parse_args()
    torch.set_num_threads(1)  # small models: one thread is faster than two (docs/architecture.md)
    budget = f"00:00:{int(args.minutes):02d}:{int(args.minutes % 1 * 60):02d}"
    cli = cli_main(
        [
            "fit",
            "--config",
            args.config,
            f"--trainer.max_time={budget}",
            f"--trainer.default_root_dir={args.root}",
        ]
    )
    trainer = cli.trainer
    trainer.test(cli.model, datamodule=cli.datamodule, verbose=False)
    log_dir = trainer.log_dir or args.root
    with open(os.path.join(log_dir, "metrics.json")) as f:
        metrics = json.load(f)
    test = metrics.get("test", {}).get("metrics", {})
    print("\n== demo finished ==")
    print(
        f"samples seen: {metrics['fit']['samples_seen']:,} in {metrics['fit']['wall_time_s']:.0f} s"
    )
    for key in sorted(test):
        if key.startswith("test/acc"):
            print(f"{key:40s} {test[key]:.3f}")
    print(f"TensorBoard logs: tensorboard --logdir {os.path.abspath(log_dir)}")
    print(f"metrics: {os.path.abspath(os.path.join(log_dir, 'metrics.json'))}")


if __name__ == "__main__":
    main()

"""Fingerprints of every shipped config's model: parameter counts, the initial parameters and,
for RL configs, the losses of one tiny first update.

``tests/test_config_fingerprints.py`` compares today's code against the fingerprints stored in
``tests/fixtures/config_fingerprints.json``, so a refactor that changes what a config builds
(a parameter more, another initialisation order, another loss) fails there.

    python scripts/config_fingerprints.py --write   # store the current fingerprints
    python scripts/config_fingerprints.py           # print them as JSON lines
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests/fixtures/config_fingerprints.json"
# One tiny iteration of any RL config: 4 envs x 8 steps, 2 minibatches.
RL_OVERRIDES = (
    "--model.init_args.num_envs=4",
    "--model.init_args.num_steps=8",
    "--model.init_args.total_timesteps=32",
    "--model.init_args.vector_mode=sync",
    "--trainer.callbacks=[]",
)
LOSSES = ("losses/policy_loss", "losses/value_loss", "losses/entropy")


def config_paths() -> list[Path]:
    """Every YAML under ``configs/``, sorted."""
    return sorted(ROOT.glob("configs/**/*.yaml"))


def is_rl(path: Path) -> bool:
    """Whether the config trains an on-policy RL module."""
    cfg = yaml.safe_load(path.read_text()) or {}
    model = cfg.get("model") or {}
    return str(model.get("class_path", "")).startswith("graphrl.rl.")


def needs_missing_package(path: Path) -> str | None:
    """The optional package a config's env needs and this machine lacks, if any."""
    text = path.read_text()
    if "highway" in text:
        try:
            import highway_env  # noqa: F401
        except ImportError:
            return "highway_env"
    return None


def parameter_digest(module: torch.nn.Module) -> list[list[Any]]:
    """``[shape, sha256 of the float32 bytes]`` of each parameter, in registration order."""
    rows = []
    for p in module.parameters():
        data = p.detach().to(torch.float32).contiguous().cpu().numpy().tobytes()
        rows.append([list(p.shape), hashlib.sha256(data).hexdigest()[:16]])
    return rows


def _policy_of(model: torch.nn.Module) -> torch.nn.Module:
    return getattr(model, "policy", None) or model


def fingerprint(path: Path, tmp_dir: str) -> dict[str, Any]:
    """Build ``path``'s model through the CLI (its seed) and fingerprint it."""
    from graphrl.cli import cli_main
    from graphrl.trainers import quiet_trainer

    args = ["--config", str(path), f"--trainer.default_root_dir={tmp_dir}"]
    rl = is_rl(path)
    if rl:
        args += list(RL_OVERRIDES)
        if "graphrl.rl.PPO" in path.read_text():
            args.append("--model.init_args.num_minibatches=2")
    cli = cli_main(args=args, run=False)
    model = cli.model
    policy = _policy_of(model)
    out: dict[str, Any] = {
        "num_parameters": sum(p.numel() for p in policy.parameters()),
        "parameters": parameter_digest(policy),
    }
    if rl:
        trainer = quiet_trainer(max_epochs=-1, default_root_dir=tmp_dir)
        trainer.fit(model)
        metrics = trainer.callback_metrics
        out["losses"] = {k: float(metrics[k]) for k in LOSSES}
    return out


def all_fingerprints() -> dict[str, dict[str, Any]]:
    import tempfile

    torch.set_num_threads(1)
    prints = {}
    for path in config_paths():
        name = str(path.relative_to(ROOT / "configs"))
        if needs_missing_package(path):
            continue
        with tempfile.TemporaryDirectory() as tmp:
            prints[name] = fingerprint(path, tmp)
        print(json.dumps({"config": name, "num_parameters": prints[name]["num_parameters"],
                          "losses": prints[name].get("losses")}), flush=True)
    return prints


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help=f"store them in {FIXTURE}")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    prints = all_fingerprints()
    if args.write:
        FIXTURE.parent.mkdir(parents=True, exist_ok=True)
        FIXTURE.write_text(json.dumps(prints, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()

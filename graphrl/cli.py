"""The ``graphrl`` command: Lightning's CLI (fit / validate / test / predict) for every model,
plus project commands (``evaluate``, ``render``) for trained agents.

Examples:
    graphrl fit --config configs/nth_farthest/attention.yaml
    graphrl fit --config configs/nth_farthest/attention.yaml --model.topology=knn \\
        --model.topology_kwargs='{k: 3}' --model.processor.layer=gcn
    graphrl evaluate --ckpt runs/boxworld/version_0/checkpoints/last.ckpt --episodes 100
"""

from __future__ import annotations

import os
import sys
from typing import Any

import lightning as L
import torch
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI, SaveConfigCallback

from graphrl import checkpoints
from graphrl.callbacks import MetricsJSON

DATA_LINKS = ("num_features", "num_classes", "max_entities", "pos_dim", "answer", "question_types")


def _data_attr(name: str):
    def get(datamodule: Any) -> Any:
        return getattr(datamodule, name)

    get.__name__ = f"data_{name}"
    return get


class GraphRLCLI(LightningCLI):
    """LightningCLI that links data sizes into models and writes ``metrics.json`` per run.

    Args:
        link_data: Link the DataModule's sizes (``DATA_LINKS``) into the model's arguments.
            Runs without a DataModule (RL: the module collects its own rollouts) skip it.
    """

    def __init__(self, *args: Any, link_data: bool = True, **kwargs: Any) -> None:
        self.link_data = link_data
        super().__init__(*args, **kwargs)

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_argument(
            f"--{checkpoints.RESUME_FLAG}",
            action="store_true",
            help="resume from the newest last.ckpt of trainer.default_root_dir if there is one, "
            "else start a new run (implies --ckpt_path last)",
        )
        if not self.link_data:
            return
        # Sizes the data decides flow into the model at instantiation, never written in YAML.
        for name in DATA_LINKS:
            parser.link_arguments(
                "data",
                f"model.init_args.{name}",
                compute_fn=_data_attr(name),
                apply_on="instantiate",
            )

    def before_instantiate_classes(self) -> None:
        ckpt = self._sub_config().get("ckpt_path")
        if ckpt and ckpt not in ("last", "best", "hpc", "registry"):
            check_checkpoint(ckpt)

    def _parse_ckpt_path(self) -> None:
        # Replaces LightningCLI's, which loads the checkpoint's hparams over the config and the
        # command line: here the config wins, and ``last`` means the newest last.ckpt of the run
        # root, not only of this (new) run.
        sub = self.config.get("subcommand")
        if sub and "ckpt_path" in self.config[sub]:
            cfg = self.config[sub]
            resume = bool(cfg.get(checkpoints.RESUME_FLAG))
            root = cfg.trainer.default_root_dir or os.getcwd()
            cfg.ckpt_path = checkpoints.resolve_ckpt_path(cfg.ckpt_path, root, resume)

    def after_instantiate_classes(self) -> None:
        ckpt = self._sub_config().get("ckpt_path")
        if ckpt and os.path.isfile(ckpt):
            checkpoints.check_checkpoint_fits(ckpt, self.model)

    def instantiate_classes(self) -> None:
        try:
            super().instantiate_classes()
        except (ValueError, TypeError) as exc:
            # jsonargparse wraps the part's own error in several layers; print the outermost
            # error raised by graphrl itself (e.g. "unknown topology 'nope'; choose one of: ...")
            # as one line.
            raise SystemExit(f"error: {_own_error(exc)}") from None
        self.trainer.callbacks.append(MetricsJSON())

    def _sub_config(self) -> Any:
        return self.config.get(self.subcommand, self.config) if self.subcommand else self.config


CLI_DESCRIPTION = (
    "graphrl: relational deep learning and RL on entity graphs. Lightning subcommands below; "
    "project commands: `graphrl evaluate --ckpt PATH` (an agent's solve rate on fresh levels) "
    "and `graphrl render --ckpt PATH --out episode.gif` (an episode with its attention)."
)


def _own_error(exc: BaseException) -> BaseException:
    """The outermost exception of ``exc``'s chain raised in graphrl's code (else the root)."""
    chain: BaseException | None = exc
    last = exc
    while chain is not None:
        tb = chain.__traceback__
        while tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
        if tb is not None and f"{os.sep}graphrl{os.sep}" in tb.tb_frame.f_code.co_filename:
            return chain
        last = chain
        chain = chain.__cause__ or (None if chain.__suppress_context__ else chain.__context__)
    return last


def _config_has_data(argv: list[str]) -> bool:
    """Whether the command line (or a ``--config`` file in it) sets ``data``."""
    import yaml

    for i, arg in enumerate(argv):
        if arg.startswith("--data"):
            return True
        path = arg.split("=", 1)[1] if arg.startswith("--config=") else None
        if arg == "--config" and i + 1 < len(argv):
            path = argv[i + 1]
        if path and os.path.isfile(path):
            with open(path) as f:
                cfg = yaml.safe_load(f) or {}
            if isinstance(cfg, dict) and cfg.get("data"):
                return True
    return False


def check_checkpoint(path: str) -> None:
    """Fail with one clear line when ``path`` is missing or not a readable Lightning checkpoint."""
    if not os.path.isfile(path):
        raise SystemExit(f"error: checkpoint {path!r} does not exist: pass an existing --ckpt_path")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # torch raises many types for truncated or foreign files
        raise SystemExit(
            f"error: checkpoint {path!r} is corrupt or not a torch file ({type(exc).__name__}): "
            "pass another --ckpt_path (e.g. checkpoints/last.ckpt)"
        ) from None
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        raise SystemExit(
            f"error: {path!r} is not a Lightning checkpoint (no state_dict): pass a .ckpt "
            "written by graphrl fit"
        )


def cli_main(args: list[str] | None = None, run: bool = True) -> GraphRLCLI:
    """Build (and by default run) the Lightning CLI."""
    argv = sys.argv[1:] if args is None else args
    has_data = _config_has_data(argv)
    return GraphRLCLI(
        L.LightningModule,
        L.LightningDataModule if has_data else None,
        subclass_mode_model=True,
        subclass_mode_data=True,
        save_config_callback=SaveConfigCallback,
        save_config_kwargs={"overwrite": False},
        trainer_defaults={"default_root_dir": "runs"},
        parser_kwargs={"description": CLI_DESCRIPTION},
        args=args,
        run=run,
        auto_configure_optimizers=False,
        link_data=has_data,
    )


def main() -> None:
    """Entry point of the ``graphrl`` console script."""
    argv = sys.argv[1:]
    if argv and argv[0] in PROJECT_COMMANDS:
        _project_commands()[argv[0]](argv[1:])
        return
    cli_main()


def _project_commands() -> dict[str, Any]:
    from graphrl.commands import evaluate_command, render_command

    return {"evaluate": evaluate_command, "render": render_command}


PROJECT_COMMANDS = ("evaluate", "render")

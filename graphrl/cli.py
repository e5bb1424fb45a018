"""The ``graphrl`` command: Lightning's CLI (fit / validate / test / predict) for every model,
plus project commands (``evaluate``, ``render`` for trained agents, ``list`` for what is
registered).

Examples:
    graphrl --help
    graphrl fit --config configs/nth_farthest/attention.yaml
    graphrl fit --config configs/nth_farthest/attention.yaml --model.backbone.topology=knn \\
        --model.backbone.topology_kwargs='{k: 3}' --model.backbone.processor.layer=gcn
    graphrl evaluate --ckpt runs/boxworld/version_0/checkpoints/last.ckpt --episodes 100
    graphrl list topology
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import warnings
from typing import Any, ClassVar

import lightning as L
from jsonargparse import DefaultHelpFormatter
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI, SaveConfigCallback
from lightning.pytorch.utilities.model_helpers import is_overridden

from graphrl import checkpoints
from graphrl.callbacks import MetricsCSV, MetricsJSON, PredictionsFile
from graphrl.checks import check_accelerator, check_checkpoint, check_env, check_writable_dir
from graphrl.console import progress_bar_for, quiet_lightning
from graphrl.errors import (
    BadArgument,
    UsageError,
    bad_argument_line,
    debugging,
    did_you_mean,
    handle_errors,
    parse_error_line,
)
from graphrl.preemption import Preemption

CKPT_KEYWORDS = ("last", "best", "hpc", "registry")  # Lightning resolves these itself
DATA_LINKS = ("num_features", "num_classes", "max_entities", "pos_dim", "answer", "question_types")
DATA_LINKS += ("question_dim",)


def _data_attr(name: str):
    def get(datamodule: Any) -> Any:
        return getattr(datamodule, name)

    get.__name__ = f"data_{name}"
    return get


_KNOWN_SUBCLASSES = re.compile(r", known subclasses: ([^)]*)\)$")
_LIBRARIES = ("torch", "lightning", "pytorch_lightning", "torch_geometric", "torchmetrics")


_PART_REGISTRIES = {"backbone": "backbone", "critic": "backbone", "core": "core", "head": "head"}
"""Class-path arguments of the agent whose choices are a registry's classes."""


def _class_choices(name: str, text: str = "") -> list[str] | None:
    """graphrl's classes for the class-path argument ``name`` (None: not one of them); the
    agent's parts (``backbone``, ``core``, ``head``) list their registry's classes."""
    from graphrl import catalog
    from graphrl.registry import Registry

    listed = {"model": catalog.models, "data": catalog.data_modules, "policy": catalog.policies}
    if name in listed:
        return listed[name]()
    kind = _PART_REGISTRIES.get(name)
    if kind is None:
        return None
    if kind == "backbone" and "SetSpec" in text:  # the supervised classifier's backbone
        kind = "set_backbone"
    catalog.part_kinds()  # imports the modules that fill the registries
    registry = Registry.all().get(kind)
    if registry is None:
        return None
    return sorted({catalog.class_path(registry.get(n)) for n in registry.names()})


class GraphRLHelpFormatter(DefaultHelpFormatter):
    """jsonargparse's help, naming graphrl's choices for the arguments that pick a part.

    - ``--model``, ``--data``, ``--...policy``: graphrl's classes (not every ``LightningModule``
      or ``torch.nn.Module`` imported), and that any class path works;
    - other class-path arguments: their known subclasses outside torch and Lightning;
    - an argument named after a registry kind (``encoder``, ``topology``, ``layer``,
      ``readout``, ``core``, ...): the registered names.
    """

    def _get_help_string(self, action: argparse.Action) -> str:
        text = super()._get_help_string(action)
        name = (action.dest or "").rsplit(".", 1)[-1]
        if not action.option_strings or name == "help":
            return text
        match = _KNOWN_SUBCLASSES.search(text)
        if match:
            shown = _class_choices(name, text)
            if shown is None:
                known = [p.strip() for p in match.group(1).split(",")]
                shown = [p for p in known if p.split(".")[0] not in _LIBRARIES]
            choices = f", graphrl's: {', '.join(shown)}" if shown else ""
            return f"{text[: match.start()]}{choices}; or any class path)"
        from graphrl.catalog import part_names

        names = part_names(name)
        if names:
            listed = f"registered: {', '.join(names)} (graphrl list {name}); or a class path"
            return f"{text[:-1]}; {listed})" if text.endswith(")") else f"{text} ({listed})"
        return text


class GraphRLArgumentParser(LightningArgumentParser):
    """LightningCLI's parser whose parse errors become one line (no usage dump) and whose help
    names graphrl's choices (:class:`GraphRLHelpFormatter`).

    The line is raised as a :class:`~graphrl.errors.UsageError`, which ``main()`` prints; with
    ``--debug`` the parser behaves as Lightning's.
    """

    _argv: ClassVar[list[str]] = []  # the arguments of the last user-level parse

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", GraphRLHelpFormatter)
        super().__init__(*args, **kwargs)

    def parse_args(self, args: Any = None, *pargs: Any, **kwargs: Any) -> Any:
        if self.exit_on_error and (args is None or isinstance(args, (list, tuple))):
            GraphRLArgumentParser._argv = sys.argv[1:] if args is None else list(args)
        return super().parse_args(args, *pargs, **kwargs)

    def error(self, message: str, ex: Exception | None = None) -> Any:
        # Parsers jsonargparse builds internally (exit_on_error=False) raise for it to catch.
        if not self.exit_on_error or debugging():
            return super().error(message, ex)
        parser = getattr(ex, "subcommand_parser", None) or self
        raise UsageError(parse_error_line(message, parser, self._argv)) from None


class GraphRLCLI(LightningCLI):
    """LightningCLI that links data sizes into models and writes ``metrics.json`` and
    ``metrics.csv`` per run.

    Args:
        link_data: Link the DataModule's sizes (``DATA_LINKS``) into the model's arguments.
            Runs without a DataModule (RL: the module collects its own rollouts) skip it.
    """

    def __init__(self, *args: Any, link_data: bool = True, **kwargs: Any) -> None:
        self.link_data = link_data
        quiet_lightning()
        super().__init__(*args, **kwargs)

    def _instantiate_trainer(self, config: dict[str, Any], callbacks: list[Any]) -> L.Trainer:
        # Plain progress lines instead of bar frames when stdout is a file or a pipe.
        bar = progress_bar_for(config, callbacks)
        return super()._instantiate_trainer(config, [*callbacks, *([bar] if bar else [])])

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_argument(
            f"--{checkpoints.RESUME_FLAG}",
            action="store_true",
            help="resume from the newest last.ckpt of trainer.default_root_dir if there is one, "
            "else start a new run (implies --ckpt_path last)",
        )
        _title_groups(parser)
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

    def parse_arguments(self, parser: LightningArgumentParser, args: Any) -> None:
        super().parse_arguments(parser, args)
        sub = self.config.get("subcommand")
        if sub and "ckpt_path" in self.config[sub]:
            # ``last`` / ``version_N`` / a run dir -> the newest last.ckpt of the run root.
            cfg = self.config[sub]
            resume = bool(cfg.get(checkpoints.RESUME_FLAG))
            root = cfg.trainer.default_root_dir or os.getcwd()
            cfg.ckpt_path = checkpoints.resolve_ckpt_path(cfg.ckpt_path, root, resume)
        # Before Lightning reads the checkpoint's hyperparameters (a torch traceback otherwise).
        ckpt = self._sub_config().get("ckpt_path")
        if isinstance(ckpt, str) and ckpt not in CKPT_KEYWORDS:
            check_checkpoint(ckpt)

    def _parse_ckpt_path(self) -> None:
        # LightningCLI's loads the checkpoint's hparams over the config and the command line;
        # here the config wins (checked in after_instantiate_classes).
        return

    def after_instantiate_classes(self) -> None:
        ckpt = self._sub_config().get("ckpt_path")
        if ckpt and os.path.isfile(ckpt):
            checkpoints.check_checkpoint_fits(ckpt, self.model)

    def instantiate_classes(self) -> None:
        self._check_before_work()
        try:
            super().instantiate_classes()
        except (ValueError, TypeError, UsageError) as exc:
            if debugging():
                raise
            raise UsageError(_part_error_line(exc, self._sub_config())) from None
        self._check_command_fits_model()
        self.trainer.callbacks += [MetricsJSON(), MetricsCSV()]
        if self.subcommand == "fit":  # SIGTERM / SIGUSR1: stop at a safe point, save, say so
            self.trainer.callbacks.append(Preemption())
        if self.subcommand == "predict":
            self.trainer.callbacks.append(PredictionsFile())

    def _check_before_work(self) -> None:
        """Input the run would trip over only later: the env, the log dir, the accelerator."""
        config = self._sub_config()
        trainer = config.get("trainer") or {}
        check_accelerator(trainer.get("accelerator"), "--trainer.accelerator")
        if trainer.get("default_root_dir"):
            check_writable_dir(str(trainer["default_root_dir"]), "--trainer.default_root_dir")
        model_args = (config.get("model") or {}).get("init_args") or {}
        if model_args.get("env_id"):
            check_env(
                model_args["env_id"],
                model_args.get("env_kwargs"),
                "--model.init_args.env_id",
                "--model.init_args.env_kwargs",
            )

    def _check_command_fits_model(self) -> None:
        """``test``/``validate``/``predict`` need the model's step for it (RL agents have none)."""
        if self.subcommand not in ("validate", "test", "predict"):
            return
        if not is_overridden(f"{self.subcommand}_step", self.model):
            kind = type(self.model).__name__
            hint = (
                "graphrl evaluate --ckpt PATH measures an agent on fresh levels"
                if hasattr(self.model, "evaluate")
                else "use fit, validate or test"
            )
            raise UsageError(
                f"graphrl {self.subcommand} needs a model with {self.subcommand}_step, "
                f"{kind} has none: {hint}"
            )

    def _sub_config(self) -> Any:
        subcommand = getattr(self, "subcommand", None) or self.config.get("subcommand")
        return self.config.get(subcommand, self.config) if subcommand else self.config


def _title_groups(parser: LightningArgumentParser) -> None:
    """Title the ``--model`` / ``--data`` groups by what they take (not a class repr)."""
    groups = getattr(parser, "groups", None) or {}
    titles = {
        "model": "the model (--model CLASS_PATH; graphrl's: see graphrl list model)",
        "data": "the data (--data CLASS_PATH; supervised models; see graphrl list data)",
    }
    for key, title in titles.items():
        if key in groups:
            groups[key].title = title


class SaveNewConfig(SaveConfigCallback):
    """LightningCLI's ``config.yaml`` writer that never overwrites and never refuses to start.

    A run logs into a log dir that has a config already when the log dir's version is fixed: on
    SLURM, Lightning names it after the job id (``version_<SLURM_JOB_ID>``), so a requeued job
    resumes into the same folder. Its config then goes to ``config-1.yaml``, ``config-2.yaml``,
    ... beside the first one.
    """

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        log_dir = trainer.log_dir  # a collective: every rank reads it
        if not self.already_saved and self.save_to_log_dir and log_dir is not None:
            name = self._free_name(log_dir) if trainer.is_global_zero else None
            self.config_filename = trainer.strategy.broadcast(name)
        super().setup(trainer, pl_module, stage)

    def _free_name(self, log_dir: str) -> str:
        stem, ext = os.path.splitext(self.config_filename)
        name, n = self.config_filename, 0
        while os.path.exists(os.path.join(log_dir, name)):
            n += 1
            name = f"{stem}-{n}{ext}"
        return name


CLI_DESCRIPTION = (
    "graphrl: relational deep learning and RL on entity graphs. Lightning subcommands below; "
    "project commands: `graphrl evaluate --ckpt PATH` (an agent's solve rate on fresh levels), "
    "`graphrl render --ckpt PATH --out episode.gif` (an episode with its attention) and "
    "`graphrl list` (every registered name)."
)

COMMANDS: dict[str, str] = {
    "fit": "train a model from a config (supervised or RL): graphrl fit --config FILE.yaml",
    "validate": "one pass over a trained supervised model's validation data",
    "test": "one pass over a trained supervised model's test data",
    "predict": "answer a supervised model's test data into <log_dir>/predictions.pt",
    "evaluate": "an RL agent's solve rate and return on fresh levels: --ckpt PATH",
    "render": "a GIF of an RL agent's episodes with its attention: --ckpt PATH --out F.gif",
    "list": "what graphrl offers by name (envs, models, policies, encoders, topologies, ...)",
}
"""Every ``graphrl`` command with its line in ``graphrl --help``."""


def print_help() -> None:
    """``graphrl --help``: every command with one line, and where to read more."""
    parser = argparse.ArgumentParser(
        prog="graphrl",
        usage="graphrl <command> [options]   (graphrl <command> --help: its options)",
        description="graphrl: relational deep learning and RL on entity graphs.",
        epilog="Examples:\n"
        "  graphrl fit --config configs/boxworld/ppo_attention.yaml\n"
        "  graphrl evaluate --ckpt runs/boxworld/ppo_attention/lightning_logs/version_0/"
        "checkpoints/last.ckpt\n"
        "  graphrl list topology\n"
        "Add --debug to any command for the full traceback of an error.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(title="commands", metavar="<command>")
    for name, text in COMMANDS.items():
        commands.add_parser(name, help=text)
    parser.print_help()


def _part_error_line(exc: BaseException, config: Any) -> str:
    """One line for an error raised while building the parts (model, data, trainer)."""
    chain: BaseException | None = exc
    while chain is not None:
        if isinstance(chain, BadArgument):
            return bad_argument_line(chain, config)
        if isinstance(chain, UsageError):
            return str(chain)
        chain = chain.__cause__ or (None if chain.__suppress_context__ else chain.__context__)
    return f"{_own_error(exc)}"


def _own_error(exc: BaseException) -> BaseException:
    """The outermost exception of ``exc``'s chain raised in graphrl's code (else the root)."""
    chain: BaseException | None = exc
    last = exc
    while chain is not None:
        tb = chain.__traceback__
        while tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
        if tb is not None and _is_project_file(tb.tb_frame.f_code.co_filename):
            return chain
        last = chain
        chain = chain.__cause__ or (None if chain.__suppress_context__ else chain.__context__)
    return last


def _is_project_file(path: str) -> bool:
    return any(f"{os.sep}{package}{os.sep}" in path for package in ("graphrl", "datamodules"))


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
                try:
                    cfg = yaml.safe_load(f) or {}
                except yaml.YAMLError as exc:
                    mark = getattr(exc, "problem_mark", None)
                    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
                    problem = getattr(exc, "problem", None) or type(exc).__name__
                    raise UsageError(
                        f"config file {path!r} is not valid YAML ({problem}{where}): "
                        "fix it or pass another --config"
                    ) from None
            if isinstance(cfg, dict) and cfg.get("data"):
                return True
    return False


def cli_main(args: list[str] | None = None, run: bool = True) -> GraphRLCLI:
    """Build (and by default run) the Lightning CLI."""
    argv = sys.argv[1:] if args is None else args
    has_data = _config_has_data(argv)
    with warnings.catch_warnings():
        # main() passes the command line as ``args`` (after taking --debug out of it).
        warnings.filterwarnings("ignore", message="LightningCLI's args parameter")
        return _build_cli(args, run, has_data)


def _build_cli(args: list[str] | None, run: bool, has_data: bool) -> GraphRLCLI:
    return GraphRLCLI(
        L.LightningModule,
        L.LightningDataModule if has_data else None,
        subclass_mode_model=True,
        subclass_mode_data=True,
        save_config_callback=SaveNewConfig,
        save_config_kwargs={"overwrite": False},
        trainer_defaults={"default_root_dir": "runs"},
        # No abbreviations: a misspelt --trainer.max_step would silently set max_steps.
        parser_kwargs={"prog": "graphrl", "description": CLI_DESCRIPTION, "allow_abbrev": False},
        parser_class=GraphRLArgumentParser,
        args=args,
        run=run,
        auto_configure_optimizers=False,
        link_data=has_data,
    )


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``graphrl`` console script.

    Every error ends as one line on stderr and a non-zero exit (see :mod:`graphrl.errors`);
    ``--debug`` or ``GRAPHRL_DEBUG=1`` shows the traceback instead.
    """
    handle_errors(_run_command, sys.argv[1:] if argv is None else list(argv))


def _run_command(argv: list[str]) -> Any:
    commands = (*LightningCLI.subcommands(), *PROJECT_COMMANDS)
    if not argv:
        raise UsageError(f"no command given: run graphrl --help (commands: {', '.join(commands)})")
    if argv[0] in ("-h", "--help"):
        return print_help()
    command = argv[0]
    if command in PROJECT_COMMANDS:
        return _project_commands()[command](argv[1:])
    if command not in commands:
        hint = did_you_mean(command, commands)
        raise UsageError(f"unknown command {command!r}{hint} (commands: {', '.join(commands)})")
    return cli_main(argv)


def _project_commands() -> dict[str, Any]:
    from graphrl.commands import evaluate_command, list_command, render_command

    return {"evaluate": evaluate_command, "render": render_command, "list": list_command}


PROJECT_COMMANDS = ("evaluate", "render", "list")

"""Lightning Trainers for Python code: the defaults ``graphrl fit`` gives a run, and a silent
one for scripts that train in-process (benchmarks, sweeps).

    import lightning as L
    from graphrl.rl import PPO
    from graphrl.trainers import default_trainer

    agent = PPO("graphrl/BoxWorld-Small-v0", total_timesteps=100_000)
    default_trainer(max_epochs=-1).fit(agent)   # logs, metrics.json / metrics.csv as the CLI

A plain ``L.Trainer()`` works as well; it logs every 50th step (Lightning's default) and
prints Lightning's tips. Any Lightning logger plugs in either way (``logger=WandbLogger(...)``,
``MLFlowLogger``, ``CSVLogger``); RL scalars reach every logger on the env-step axis.
"""

from __future__ import annotations

from typing import Any

import lightning as L

from graphrl.callbacks import MetricsCSV, MetricsJSON
from graphrl.console import progress_bar_for, quiet_lightning

__all__ = ["default_trainer", "quiet_trainer"]


def default_trainer(**overrides: Any) -> L.Trainer:
    """A Trainer with ``graphrl fit``'s defaults.

    - logs under ``runs/`` (``default_root_dir``) with Lightning's default logger
      (TensorBoard), every step (``log_every_n_steps=1``: one RL iteration is one step);
    - writes ``metrics.json`` (final values) and ``metrics.csv`` (the history) into the log
      directory;
    - plain progress lines instead of bar frames when stdout is not a terminal; no Lightning
      tips.

    Args:
        **overrides: Any ``L.Trainer`` argument (``max_epochs``, ``logger``, ``devices``,
            ...); ``callbacks`` are added to the ones above.
    """
    quiet_lightning()
    options: dict[str, Any] = {"default_root_dir": "runs", "log_every_n_steps": 1}
    options.update(overrides)
    callbacks = list(options.pop("callbacks", None) or [])
    callbacks += [MetricsJSON(), MetricsCSV()]
    bar = progress_bar_for(options, callbacks)
    return L.Trainer(callbacks=[*callbacks, *([bar] if bar else [])], **options)


def quiet_trainer(**overrides: Any) -> L.Trainer:
    """One CPU device, no logger, checkpoints, progress bar or model summary; ``overrides``
    are any other ``L.Trainer`` arguments (e.g. ``max_epochs=1``)."""
    quiet_lightning()
    options: dict[str, Any] = {
        "accelerator": "cpu",
        "devices": 1,
        "logger": False,
        "enable_checkpointing": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
    }
    return L.Trainer(**{**options, **overrides})

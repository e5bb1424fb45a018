"""Checks of user input made before any work starts, each failing with one line that names the
flag to change: argument ranges (for part constructors), env ids and env kwargs, writable
output directories, the accelerator.
"""

from __future__ import annotations

import os
import re
import tempfile
from typing import Any

from graphrl.errors import BadArgument, UsageError, debugging, did_you_mean, one_line

__all__ = [
    "check_accelerator",
    "check_env",
    "check_in_unit",
    "check_output_file",
    "check_positive",
    "check_writable_dir",
    "value_check_due",
]


def check_positive(**values: float) -> None:
    """Raise :class:`~graphrl.errors.BadArgument` naming the first argument that is not > 0
    (counts, ``int``, are reported as ``>= 1``).

    Example: ``check_positive(channels=channels, heads=heads)`` at the top of ``__init__``.
    """
    for name, value in values.items():
        if not value > 0:
            bound = ">= 1" if isinstance(value, int) else "> 0"
            raise BadArgument(name, f"{name} must be {bound}, got {value}")


def check_non_negative(**values: float) -> None:
    """Raise :class:`~graphrl.errors.BadArgument` naming the first argument that is < 0
    (for sizes where 0 means "none", e.g. ``hidden=0``: no MLP before the heads)."""
    for name, value in values.items():
        if not value >= 0:
            raise BadArgument(name, f"{name} must be >= 0, got {value}")


def check_in_unit(**values: float) -> None:
    """Raise :class:`~graphrl.errors.BadArgument` naming the first argument outside [0, 1]."""
    for name, value in values.items():
        if not 0.0 <= value <= 1.0:
            raise BadArgument(name, f"{name} must be in [0, 1], got {value}")


_UNEXPECTED_KWARG = re.compile(r"unexpected keyword argument '(\w+)'")


def check_env(
    env_id: str,
    env_kwargs: dict[str, Any] | None,
    id_flag: str = "--env_id",
    kwargs_flag: str = "--env_kwargs",
) -> None:
    """Build ``env_id`` with ``env_kwargs`` once; an unknown id or keyword fails in one line.

    Args:
        env_id: A gymnasium id (``graphrl/...``, ``MiniGrid-...``, ``module:Id-v0``, ...).
        env_kwargs: Keyword arguments for the env constructor.
        id_flag: The flag that sets ``env_id`` (named in the message).
        kwargs_flag: The flag that sets ``env_kwargs``.
    """
    import gymnasium as gym

    from graphrl.envs import make_env

    try:
        env = make_env(env_id, **(env_kwargs or {}))
    except (gym.error.Error, ImportError) as exc:
        raise UsageError(f"unknown env id {env_id!r} ({one_line(exc)}): change {id_flag}") from None
    except TypeError as exc:
        unknown = _UNEXPECTED_KWARG.search(str(exc))
        if unknown is None:
            raise
        key = unknown.group(1)
        hint = did_you_mean(key, _env_parameters(env_id))
        raise UsageError(
            f"env {env_id} takes no keyword {key!r}{hint}: change {kwargs_flag}"
        ) from None
    except ValueError as exc:
        if "environment id" not in str(exc):
            raise
        raise UsageError(f"{one_line(exc)}: change {id_flag}") from None
    env.close()


def _env_parameters(env_id: str) -> list[str]:
    """The constructor keywords of a registered env (for suggestions), else ``[]``."""
    import inspect

    import gymnasium as gym

    try:
        creator = gym.spec(env_id.split(":")[-1]).entry_point
        if isinstance(creator, str):
            module, _, name = creator.partition(":")
            creator = getattr(__import__(module, fromlist=[name]), name)
        return [p for p in inspect.signature(creator).parameters if p not in ("self", "kwargs")]
    except Exception:
        return []


def _probe_write(directory: str) -> None:
    with tempfile.TemporaryFile(dir=directory):
        pass


def check_writable_dir(path: str, flag: str) -> None:
    """``path`` exists as (or can be created as) a directory that accepts files.

    Creates the directory (the run would create it anyway); writes nothing else in it.
    """
    try:
        os.makedirs(path, exist_ok=True)
        _probe_write(path)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise UsageError(f"cannot write to directory {path!r} ({reason}): change {flag}") from None


def check_output_file(
    path: str, flag: str, force: bool = False, force_flag: str = "--force"
) -> None:
    """``path`` can be written: its directory exists and is writable, and it does not exist
    (unless ``force``). Nothing is created."""
    if os.path.isdir(path):
        raise UsageError(f"{path!r} is a directory: pass a file name to {flag}")
    if os.path.exists(path) and not force:
        raise UsageError(f"{path!r} exists: pass another {flag} or {force_flag}")
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise UsageError(f"directory {directory!r} does not exist: create it or change {flag}")
    try:
        _probe_write(directory)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise UsageError(f"cannot write in {directory!r} ({reason}): change {flag}") from None


def check_accelerator(accelerator: Any, flag: str = "--trainer.accelerator") -> None:
    """An accelerator asked for by name must be present (``auto`` and ``cpu`` always are)."""
    import torch

    name = str(accelerator).lower() if isinstance(accelerator, str) else None
    if name in ("gpu", "cuda") and not torch.cuda.is_available():
        raise UsageError(
            f"{flag}={accelerator} but torch sees no CUDA GPU here: pass {flag}=cpu (or auto)"
        )
    if name == "mps" and not torch.backends.mps.is_available():
        raise UsageError(f"{flag}=mps but MPS is not available here: pass {flag}=cpu (or auto)")


def value_check_due(owner: Any, key: Any) -> bool:
    """Whether a check of tensor *values* (one that syncs host and device: ``int(t.max())``,
    ``bool(mask.any())``) should run now.

    Shapes are checked on every call (free); values only on the first call with a new ``key``
    (typically the input shapes) for each ``owner`` module, and on every call under ``--debug`` /
    ``GRAPHRL_DEBUG=1``. So a wrong input is still caught on first use, while the steady state
    of training has no host sync per layer call and ``torch.compile`` sees no graph break.

    Args:
        owner: The object doing the check (its own record of keys seen is kept on it).
        key: Hashable description of the call, e.g. ``(tuple(x.shape), tuple(edge_index.shape))``.
    """
    if debugging():
        return True
    if _compiling():
        return False
    seen = owner.__dict__.setdefault("_value_checks_seen", set())
    if key in seen:
        return False
    seen.add(key)
    return True


def _compiling() -> bool:
    """True while ``torch.compile`` traces (value checks would break the graph)."""
    import torch

    return bool(torch.compiler.is_compiling())


def check_checkpoint(path: str, flag: str = "--ckpt_path") -> None:
    """Fail with one clear line when ``path`` is missing or not a readable Lightning checkpoint.

    Args:
        path: The checkpoint file.
        flag: The flag that gave it (``--ckpt_path`` for fit/validate/test, ``--ckpt``).
    """
    if not os.path.isfile(path):
        raise UsageError(f"checkpoint {path!r} does not exist: pass an existing {flag}")
    import torch

    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # torch raises many types for truncated or foreign files
        raise UsageError(
            f"checkpoint {path!r} is corrupt or not a torch file ({type(exc).__name__}): "
            f"pass another {flag} (e.g. checkpoints/last.ckpt)"
        ) from None
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        raise UsageError(
            f"{path!r} is not a Lightning checkpoint (no state_dict): pass to {flag} a .ckpt "
            "written by graphrl fit"
        )

"""What graphrl offers by name: the part registries, the envs it registers, and the models,
data modules and policies the command line takes. ``graphrl list`` prints it and the CLI's help
names these choices (instead of every ``torch.nn.Module``).

Everything is read from where it is declared: a part registry is any
:class:`~graphrl.registry.Registry` made on import of graphrl's modules, so a new registry (and
every name registered in it) shows up here without being listed anywhere else.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Iterable
from typing import Any

__all__ = [
    "MODULES",
    "catalog",
    "class_path",
    "data_modules",
    "envs",
    "is_policy",
    "models",
    "part_kinds",
    "part_names",
    "policies",
]

MODULES = ("graphrl.envs", "graphrl.rl", "graphrl.models", "graphrl.nn", "graphrl.graphs")
"""graphrl's modules that declare parts (imported before reading the registries)."""

_DATA_PACKAGE = "datamodules"
_POLICY_FIRST_ARGUMENT = "observation_space"  # policies' __init__(observation_space, ...)


def _import_parts() -> None:
    for name in MODULES:
        importlib.import_module(name)


def class_path(cls: type) -> str:
    """The shortest import path of ``cls`` (``graphrl.rl.PPO``, not ``graphrl.rl.ppo.PPO``)."""
    parts = cls.__module__.split(".")
    for end in range(1, len(parts) + 1):
        module_name = ".".join(parts[:end])
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        if getattr(module, cls.__qualname__, None) is cls:
            return f"{module_name}.{cls.__qualname__}"
    return f"{cls.__module__}.{cls.__qualname__}"


def _subclasses(base: type) -> Iterable[type]:
    seen: set[type] = set()
    stack = list(base.__subclasses__())
    while stack:
        cls = stack.pop()
        if cls in seen:
            continue
        seen.add(cls)
        stack.extend(cls.__subclasses__())
        yield cls


def _public(cls: type, packages: tuple[str, ...]) -> bool:
    return (
        cls.__module__.split(".")[0] in packages
        and "<locals>" not in cls.__qualname__
        and not cls.__qualname__.startswith("_")
        and not inspect.isabstract(cls)
    )


def _paths(classes: Iterable[type]) -> list[str]:
    return sorted({class_path(cls) for cls in classes})


def models() -> list[str]:
    """Class paths of graphrl's LightningModules (``--model``)."""
    import lightning as L

    _import_parts()
    return _paths(c for c in _subclasses(L.LightningModule) if _public(c, ("graphrl",)))


def data_modules() -> list[str]:
    """Class paths of the shipped LightningDataModules (``--data``)."""
    import lightning as L

    try:
        importlib.import_module(_DATA_PACKAGE)
    except ImportError:  # an install without the datamodules package
        return []
    return _paths(c for c in _subclasses(L.LightningDataModule) if _public(c, (_DATA_PACKAGE,)))


def is_policy(cls: type) -> bool:
    """Whether ``cls`` builds a policy from an env's spaces (``__init__(observation_space,
    action_space, ...)``, what ``--model.init_args.policy`` takes)."""
    try:
        parameters = list(inspect.signature(cls.__init__).parameters)
    except (TypeError, ValueError):
        return False
    return parameters[1:3] in (
        [_POLICY_FIRST_ARGUMENT, "action_space"],
        [_POLICY_FIRST_ARGUMENT, "num_actions"],  # the agent classes of earlier releases
    )


def policies() -> list[str]:
    """Class paths of graphrl's policies (``--model.init_args.policy``)."""
    from torch import nn

    _import_parts()
    return _paths(c for c in _subclasses(nn.Module) if _public(c, ("graphrl",)) and is_policy(c))


def _registries() -> dict[str, list[str]]:
    """Registered names per part kind (``encoder``, ``topology``, ``layer``, ...)."""
    from graphrl.registry import Registry

    _import_parts()
    found = {kind: registry.names() for kind, registry in Registry.all().items()}
    return dict(sorted(found.items()))


def part_kinds() -> list[str]:
    """The part kinds that have a registry (``core``, ``encoder``, ``layer``, ...)."""
    return list(_registries())


def part_names(kind: str) -> list[str] | None:
    """The names registered for part ``kind``, or None when no registry holds that kind."""
    return _registries().get(kind)


def envs() -> list[str]:
    """The env ids graphrl registers with gymnasium (``graphrl/...``)."""
    import gymnasium as gym

    importlib.import_module("graphrl.envs")
    return sorted(env_id for env_id in gym.registry if env_id.startswith("graphrl/"))


def catalog() -> dict[str, list[str]]:
    """Everything by kind: ``env``, ``model``, ``data``, ``policy``, then every part registry.

    Returns:
        ``{kind: names}``, names sorted; kinds in the order above.
    """
    listed: dict[str, Any] = {
        "env": envs(),
        "model": models(),
        "data": data_modules(),
        "policy": policies(),
    }
    listed.update(_registries())
    return {kind: names for kind, names in listed.items() if names}

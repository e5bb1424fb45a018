"""Name -> class registries, so that configs name parts (``topology: knn``) instead of paths.

A registry also takes a class path (``topology: my_pkg.topologies.Ring``), so a user's part is
one file in the user's own package and needs no registration. Every registry fails on an
unknown name with the list of valid names and the class-path form, at config time.
"""

from __future__ import annotations

import functools
import importlib
import inspect
from collections.abc import Callable, Iterator
from typing import Any, ClassVar, Generic, TypeVar

T = TypeVar("T")


def factory_class(factory: Any) -> Any:
    """The class a factory builds: ``factory`` itself, or the class inside a
    ``functools.partial`` (also jsonargparse's, whose class is a positional argument); the
    factory when it holds no class (a plain function)."""
    while isinstance(factory, functools.partial):
        classes = [f for f in (factory.func, *factory.args) if inspect.isclass(f)]
        if classes:
            return classes[0]
        factory = factory.func
    return factory


class Registry(Generic[T]):
    """A mapping from config names to classes (or factories) of one kind of part.

    Args:
        kind: What the registry holds, used in error messages (e.g. ``"topology"``).

    Example:
        >>> TOPOLOGIES = Registry("topology")
        >>> @TOPOLOGIES.register("complete")
        ... class Complete: ...
        >>> TOPOLOGIES.get("complete")
        <class 'graphrl.registry.Complete'>
    """

    _all: ClassVar[dict[str, Registry[Any]]] = {}  # the first registry made of each kind

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Callable[..., T]] = {}
        Registry._all.setdefault(kind, self)

    @classmethod
    def all(cls) -> dict[str, Registry[Any]]:
        """The registries made so far (by the modules imported so far), by kind; the first
        one made of a kind stands for it (``graphrl list`` and the CLI's help read them)."""
        return dict(cls._all)

    def register(self, name: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
        """Decorator that registers ``obj`` under ``name``; names are unique."""

        def decorator(obj: Callable[..., T]) -> Callable[..., T]:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = obj
            return obj

        return decorator

    def get(self, name: str) -> Callable[..., T]:
        """The class registered as ``name``, or the class at the path ``package.module.Class``.

        Raises:
            ValueError: naming the registered choices and the class-path form.
        """
        if name in self._entries:
            return self._entries[name]
        if isinstance(name, str) and "." in name:
            return self._import(name)
        raise ValueError(
            f"unknown {self.kind} {name!r}; choose one of: {', '.join(self.names())}; "
            "or give a class path package.module.Class"
        )

    def _import(self, path: str) -> Callable[..., T]:
        module_name, _, attr = path.rpartition(".")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise ValueError(
                f"{self.kind} class path {path!r}: cannot import {module_name!r} ({exc}); "
                f"put your package on PYTHONPATH or choose one of: {', '.join(self.names())}"
            ) from None
        obj = getattr(module, attr, None)
        if not callable(obj):
            raise ValueError(
                f"{self.kind} class path {path!r}: module {module_name!r} has no class {attr!r}"
            )
        return obj

    def build(self, name: str, **kwargs: Any) -> T:
        """Instantiate the class registered as ``name`` with ``kwargs``."""
        return self.get(name)(**kwargs)

    def names(self) -> list[str]:
        """The registered names, sorted."""
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {self.names()})"

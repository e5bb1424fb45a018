"""Name -> class registries, so that configs name parts (``topology: knn``) instead of paths.

Every registry fails on an unknown name with the list of valid names, at config time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

T = TypeVar("T")


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

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Callable[..., T]] = {}

    def register(self, name: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
        """Decorator that registers ``obj`` under ``name``; names are unique."""

        def decorator(obj: Callable[..., T]) -> Callable[..., T]:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = obj
            return obj

        return decorator

    def get(self, name: str) -> Callable[..., T]:
        """Return the class registered as ``name``, or fail naming the valid choices."""
        try:
            return self._entries[name]
        except KeyError:
            raise ValueError(
                f"unknown {self.kind} {name!r}; choose one of: {', '.join(self.names())}"
            ) from None

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

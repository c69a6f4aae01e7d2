"""A registry keyed by class: the handler of an object is the one registered for the nearest class in its MRO."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

V = TypeVar("V")


class TypeRegistry(Generic[V]):
    """Maps types to handlers (functions or handler objects); subclasses inherit their parent's handler."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.entries: dict[type, V] = {}

    def register(self, *types: type) -> Callable[[V], V]:
        def decorator(value: V) -> V:
            for t in types:
                self.entries[t] = value
            return value

        return decorator

    def register_class(self, *types: type) -> Callable[[type], type]:
        """Class decorator: register one instance of the decorated handler class for ``types``."""

        def decorator(cls: type) -> type:
            self.entries.update(dict.fromkeys(types, cls()))
            return cls

        return decorator

    def find(self, obj: object) -> V | None:
        for cls in type(obj).__mro__:
            if cls in self.entries:
                return self.entries[cls]
        return None

    def get(self, obj: object) -> V:
        value = self.find(obj)
        if value is None:
            raise NotImplementedError(f"no {self.what} registered for {type(obj).__name__}")
        return value

    def unregister(self, t: type) -> None:
        self.entries.pop(t, None)


class NameRegistry(Generic[V]):
    """Maps names to classes (router kinds, pruning criteria, importance statistics), each class naming itself in
    ``name_attr``; a class joins with the :meth:`register` decorator, and an unknown name is one clear error that
    lists the known ones."""

    def __init__(self, what: str, *, name_attr: str = "name") -> None:
        self.what, self.name_attr = what, name_attr
        self.entries: dict[str, V] = {}

    def register(self, cls: V) -> V:
        name = getattr(cls, self.name_attr)
        if not name or name in self.entries:
            raise ValueError(f"{self.what} {name!r} is {'already registered' if name else 'unnamed'}")
        self.entries[name] = cls
        return cls

    def names(self) -> list[str]:
        return sorted(self.entries)

    def __contains__(self, name: object) -> bool:
        return name in self.entries

    def get(self, name: str) -> V:
        from sigmab.errors import ConfigError

        if name not in self.entries:
            raise ConfigError(f"unknown {self.what} {name!r}; known: {', '.join(self.names())}")
        return self.entries[name]

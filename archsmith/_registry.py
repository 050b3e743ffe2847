"""A name -> class registry (engines, strategies, ...); tests parametrize over them."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from typing import TypeVar

T = TypeVar("T", bound=type)


class Registry(dict[str, type]):
    """``@registry.register("name")`` records a class under ``name``;
    ``registry.lazy("name", "package.module")`` names one that registers itself
    when that module is imported, so a lower layer can list an implementation
    that lives in a higher one without importing it."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self._lazy: dict[str, str] = {}

    def lazy(self, name: str, module: str) -> None:
        self._lazy[name] = module

    def _load(self, name: str) -> None:
        module = self._lazy.pop(name, None)
        if module is not None:
            importlib.import_module(module)

    def __missing__(self, name: str) -> type:
        self._load(name)
        if not dict.__contains__(self, name):
            raise KeyError(name)
        return dict.__getitem__(self, name)

    def __contains__(self, name: object) -> bool:
        return dict.__contains__(self, name) or name in self._lazy

    def __iter__(self) -> Iterator[str]:
        for name in list(self._lazy):
            self._load(name)
        return dict.__iter__(self)

    def register(self, name: str) -> Callable[[T], T]:
        def record(cls: T) -> T:
            known = dict.get(self, name)
            if known is not None and known is not cls:
                raise ValueError(f"{self.kind} {name!r} is registered twice ({known!r} and {cls!r})")
            self._lazy.pop(name, None)
            self[name] = cls
            return cls

        return record

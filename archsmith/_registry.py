"""A name -> class registry (engines, strategies, ...); tests parametrize over them."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T", bound=type)


class Registry(dict[str, type]):
    """``@registry.register("name")`` records a class under ``name``."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind

    def register(self, name: str) -> Callable[[T], T]:
        def record(cls: T) -> T:
            if name in self and self[name] is not cls:
                raise ValueError(f"{self.kind} {name!r} is registered twice ({self[name]!r} and {cls!r})")
            self[name] = cls
            return cls

        return record

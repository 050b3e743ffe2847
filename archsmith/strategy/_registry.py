"""Strategies register here by name; tests parametrize over the registry."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T", bound=type)

STRATEGIES: dict[str, type] = {}


def register_strategy(name: str) -> Callable[[T], T]:
    """Class decorator: make a strategy known by ``name``."""

    def register(cls: T) -> T:
        STRATEGIES[name] = cls
        return cls

    return register

"""Engines register here by name (``ExperimentConfig(engine=...)``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T", bound=type)

ENGINES: dict[str, type] = {}


def register_engine(name: str) -> Callable[[T], T]:
    """Class decorator: make an engine available as ``engine=name``."""

    def register(cls: T) -> T:
        ENGINES[name] = cls
        return cls

    return register

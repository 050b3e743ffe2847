"""Shared checks for the ``archsmith.nn`` tests."""

from __future__ import annotations

from typing import Any

import torch

from archsmith.nn import MutableModule
from archsmith.space import Mutable


def count_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _search_objects(obj: Any, path: str, seen: set[int], found: list[str]) -> None:
    if id(obj) in seen:
        return
    seen.add(id(obj))
    if isinstance(obj, Mutable):
        found.append(f"{path}: {obj!r}")
    elif isinstance(obj, (list, tuple, set, frozenset)):
        for i, v in enumerate(obj):
            _search_objects(v, f"{path}[{i}]", seen, found)
    elif isinstance(obj, dict):
        for k, v in obj.items():
            _search_objects(k, f"{path}<key>", seen, found)
            _search_objects(v, f"{path}[{k!r}]", seen, found)


def search_types_left(model: torch.nn.Module) -> list[str]:
    """Every archsmith search object in ``model``: ``MutableModule`` instances among
    its modules, and choices/expressions in any module attribute."""
    found: list[str] = []
    for name, module in model.named_modules():
        where = name or "<root>"
        if isinstance(module, MutableModule):
            found.append(f"{where}: {type(module).__name__} is a MutableModule")
        seen: set[int] = set()
        for attr, value in vars(module).items():
            if attr in ("_parameters", "_buffers", "_modules"):
                continue
            _search_objects(value, f"{where}.{attr}", seen, found)
    return found


def assert_plain(model: torch.nn.Module) -> None:
    left = search_types_left(model)
    assert not left, "search types left in a frozen model:\n" + "\n".join(left)

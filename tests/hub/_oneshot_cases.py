"""The hub's one-shot cases (every registered space at its reduced arguments and
declared variants), each space built once per process: the support-table test and
the one-shot tests share them (neither changes a space)."""

from __future__ import annotations

from archsmith.nn import ModelSpace
from archsmith.strategy.oneshot._support import SpaceCase, hub_cases

CASES: list[SpaceCase] = hub_cases()
_SPACES: dict[str, ModelSpace] = {}


def built(case: SpaceCase) -> ModelSpace:
    """``case``'s space, built on first use and then shared."""
    if case.id not in _SPACES:
        _SPACES[case.id] = case.build()
    return _SPACES[case.id]

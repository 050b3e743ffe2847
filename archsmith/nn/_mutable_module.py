"""``MutableModule``: the base of every search primitive in ``archsmith.nn``.

A primitive holds decisions (``own_leaves``) and maybe constraints; it cannot run
(``forward`` raises) until the space is frozen or a one-shot strategy replaces it.
Inside ``fixed_arch`` a primitive's constructor returns a plain module instead.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

from archsmith.space import Condition, Constraint, Leaf, NotFrozenError, SpaceError, sub_scope

#: A child used only where a label takes one of some values: ``(child, label, values)``.
Branch = tuple[torch.nn.Module, str, list[Any]]


def _unpickle(cls: type) -> Any:
    return object.__new__(cls)


class MutableModule(torch.nn.Module):
    """A module with decisions in it. Subclasses list them in ``own_leaves``."""

    def own_leaves(self) -> list[Leaf]:
        """The decisions this module makes itself (not those of its children)."""
        return []

    def own_constraints(self) -> list[Constraint]:
        return []

    def own_conditions(self) -> list[Condition]:
        """When this module's own decisions are used, in terms of its other own
        decisions (a NAS-Bench-101 cell's ``op3`` only with 5 nodes or more)."""
        return []

    def branches(self) -> list[Branch]:
        """The children used only under some value of one of this module's
        decisions (a ``LayerChoice``'s candidates, a ``Repeat``'s blocks); several
        for one child: any one suffices. Any other child is used whenever this
        module is."""
        return []

    def describe(self) -> str:
        labels = ", ".join(leaf.label for leaf in self.own_leaves())
        return f"{type(self).__name__}({labels})"

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotFrozenError(
            f"{self.describe()} is part of a search space and cannot run yet: freeze a sample "
            "first (`model = space.freeze(space.random(seed=0))`, or "
            "`with archsmith.fixed_arch(sample): Net(...)`), or hand the space to a "
            "one-shot strategy, which replaces it with a trainable supernet."
        )

    # Primitives take constructor arguments in __new__, so pickle/deepcopy must not
    # call __new__ with none: rebuild from the state instead.
    def __reduce_ex__(self, protocol: Any) -> Any:
        return (_unpickle, (type(self),), self.__getstate__())


def build_candidate(candidate: Any, prefix: str, what: str, args: tuple[Any, ...] = ()) -> torch.nn.Module:
    """A module from a candidate: a module as is, or a factory called inside the
    label scope ``prefix`` (so its choices get stable labels of their own)."""
    if isinstance(candidate, torch.nn.Module):
        return candidate
    if not callable(candidate):
        raise SpaceError(f"{what}: a candidate must be a module or a function returning one, got {candidate!r}")
    with sub_scope(prefix):
        module = candidate(*args)
    if not isinstance(module, torch.nn.Module):
        raise SpaceError(f"{what}: the candidate factory {candidate!r} returned {module!r}, not a torch.nn.Module")
    return module


def split_candidates(candidates: Any, what: str, expected: str) -> tuple[list[Any] | None, list[Any]]:
    """``(names, candidates)`` of a dict, ``(None, candidates)`` of a list; a clear
    error for anything else or for an empty one. ``expected`` says what a
    candidate should be, for the messages."""
    if isinstance(candidates, dict) or isinstance(candidates, Mapping):
        names: list[Any] | None = list(candidates)
        values = list(candidates.values())
    elif isinstance(candidates, Sequence) and not isinstance(candidates, (str, bytes)):
        names, values = None, list(candidates)
    else:
        raise SpaceError(f"{what}: candidates must be a list or a dict of {expected}, got {candidates!r}")
    if not values:
        raise SpaceError(f"{what}: the candidate list is empty; give at least one")
    return names, values


def wants_arguments(fn: Callable[..., Any]) -> bool:
    """Whether a factory has required positional parameters (then it is given
    indices, like NNI's ``op_candidates(node_index, op_index, input_index)``)."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params)

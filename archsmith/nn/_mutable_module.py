"""``MutableModule``: the base of every search primitive in ``archsmith.nn``.

A primitive holds decisions (``own_leaves``) and maybe constraints; it cannot run
(``forward`` raises) until the space is frozen or a one-shot strategy replaces it.
Inside ``fixed_arch`` a primitive's constructor returns a plain module instead.
"""

from __future__ import annotations

import functools
import inspect
import types
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


def _signature_key(fn: Any) -> Any:
    """What ``fn``'s signature depends on, hashable, or ``None`` (then not cached):
    factories are often new partials or bound methods of the same function."""
    if isinstance(fn, functools.partial):
        inner = _signature_key(fn.func)
        return None if inner is None else ("partial", inner, len(fn.args), tuple(sorted(fn.keywords)))
    if hasattr(fn, "__wrapped__") or hasattr(fn, "__signature__"):
        return None  # inspect.signature reads those instead
    if inspect.ismethod(fn):
        inner = _signature_key(fn.__func__)
        return None if inner is None else ("method", inner)
    if isinstance(fn, types.FunctionType):
        # The code, not the function: lambdas made in a loop share it.
        return ("function", fn.__code__, len(fn.__defaults__ or ()))
    if isinstance(fn, type):
        return fn
    return None


_WANTS_ARGUMENTS: dict[Any, bool] = {}


def wants_arguments(fn: Callable[..., Any]) -> bool:
    """Whether a factory has required positional parameters (then it is given
    indices, like NNI's ``op_candidates(node_index, op_index, input_index)``)."""
    key = _signature_key(fn)
    try:
        return _WANTS_ARGUMENTS[key]
    except (KeyError, TypeError):  # not seen, or an unhashable partial keyword
        pass
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    wants = any(p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params)
    if key is not None and len(_WANTS_ARGUMENTS) < 4096:
        _WANTS_ARGUMENTS[key] = wants
    return wants

"""Helpers for arguments that are either a fixed value or a choice (NNI's
``MaybeIntChoice`` and the hub's ``make_divisible``): a space author writes the
arithmetic once and it works on numbers and on expressions over choices alike."""

from __future__ import annotations

import itertools
import math
from typing import Any, Union

from archsmith.space import Mutable, SpaceError, choice, condition, contains_mutable, evaluate, leaves_of, to_int

#: An int, or a choice / expression that gives one (NNI's name).
MaybeIntChoice = Union[int, Mutable]
#: A float, or a choice / expression that gives one.
MaybeFloatChoice = Union[float, Mutable]

#: Most combinations of choice values :func:`possible_values` evaluates.
MAX_COMBINATIONS = 10_000


def maybe_choice(label: str, value: Any) -> Any:
    """NNI's convention for hub arguments: a tuple or list is a choice labelled
    ``label`` over its items; anything else is fixed and returned as is.

    >>> maybe_choice("width", 16)
    16
    >>> maybe_choice("width", (16, 32)).values
    [16, 32]
    """
    if isinstance(value, (tuple, list)):
        if not value:
            raise SpaceError(f"{label!r}: an empty {type(value).__name__} gives nothing to choose; give a value")
        return choice(label, list(value))
    return value


def possible_values(value: Any) -> list[Any]:
    """Every value ``value`` can take, sorted: itself if fixed, else each result of the
    expression over its discrete choices.

    >>> width = choice("w", [16, 24])
    >>> possible_values(width * 2), possible_values(3)
    ([32, 48], [3])
    """
    if not isinstance(value, Mutable):
        return [value]
    leaves = list({leaf.label: leaf for leaf in leaves_of(value)}.values())
    if not all(leaf.is_discrete for leaf in leaves):
        raise SpaceError(f"possible_values: {value!r} reads a continuous choice; its values cannot be listed")
    grids = [leaf.grid() for leaf in leaves]
    if math.prod(len(g) for g in grids) > MAX_COMBINATIONS:
        raise SpaceError(f"possible_values: {value!r} has more than {MAX_COMBINATIONS:,} combinations of values")
    labels = [leaf.label for leaf in leaves]
    return sorted({evaluate(value, dict(zip(labels, combo))) for combo in itertools.product(*grids)})


def largest(value: Any) -> Any:
    """The largest value ``value`` can take (the width to allocate for a weight that
    is sliced per sample).

    >>> largest(choice("e", [192, 240])), largest(7)
    (240, 7)
    """
    return max(possible_values(value))


def make_divisible(value: Any, divisor: int = 8, min_value: int | None = None) -> Any:
    """Round a channel count to a multiple of ``divisor``, never more than 10% down
    (the rule of the MobileNet reference code, which NNI and timm follow). Works on
    numbers and on expressions over choices (a searched width multiplier).

    >>> make_divisible(24 * 1.3), make_divisible(3.0)
    (32, 8)
    >>> possible_values(make_divisible(choice("m", [0.5, 1.3]) * 24))
    [16, 32]
    """
    min_value = divisor if min_value is None else min_value
    if contains_mutable(value):
        # int() as in the number branch (and the reference code), so that a frozen model
        # and the searching space agree on every width.
        rounded = to_int(value + divisor / 2) // divisor * divisor
        rounded = condition(rounded < min_value, min_value, rounded)
        return condition(rounded < 0.9 * value, rounded + divisor, rounded)
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded

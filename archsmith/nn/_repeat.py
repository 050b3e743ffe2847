"""``Repeat``: a block stacked a chosen number of times."""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Union

import torch

from archsmith.space import Categorical, Leaf, Mutable, SpaceError, auto_label, evaluate, fixed_context

from ._mutable_module import Branch, build_candidate
from ._primitive import Primitive

Blocks = Union[torch.nn.Module, Sequence[torch.nn.Module], Callable[[int], torch.nn.Module]]


def _depth_range(depth: Any, label: str) -> tuple[Any, list[int]]:
    """(depth as given or as a new choice, every possible depth)."""
    where = f"Repeat {label!r}"
    if isinstance(depth, Leaf):
        values = depth.grid() if depth.is_discrete else None
        if values is None or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in values):
            raise SpaceError(f"{where}: a depth choice must have non-negative integer candidates, got {depth!r}")
        return depth, sorted(values)
    if isinstance(depth, Mutable):
        raise SpaceError(f"{where}: depth must be an int, a (min, max) pair or a choice, not an expression ({depth!r})")
    if isinstance(depth, int) and not isinstance(depth, bool):
        if depth < 0:
            raise SpaceError(f"{where}: depth must be >= 0, got {depth}")
        return depth, [depth]
    if (
        isinstance(depth, tuple)
        and len(depth) == 2
        and all(isinstance(d, int) and not isinstance(d, bool) for d in depth)
    ):
        low, high = depth
        if not 0 <= low <= high:
            raise SpaceError(
                f"{where}: depth range {depth} is invalid; use (min, max) with 0 <= min <= max "
                "(min 0 allows no block at all)"
            )
        return Categorical(list(range(low, high + 1)), label=label), list(range(low, high + 1))
    raise SpaceError(f"{where}: depth must be an int, a (min, max) pair of ints or a choice, got {depth!r}")


def _make_blocks(blocks: Any, count: int, label: str) -> list[torch.nn.Module]:
    where = f"Repeat {label!r}"
    if isinstance(blocks, torch.nn.Module):
        return [copy.deepcopy(blocks) for _ in range(count)]
    if isinstance(blocks, Sequence) and not isinstance(blocks, (str, bytes)):
        if len(blocks) < count:
            raise SpaceError(
                f"{where}: {len(blocks)} blocks given but the depth can reach {count}; give more blocks or lower the depth"
            )
        return [build_candidate(b, f"{label}/{i}", where) for i, b in enumerate(blocks[:count])]
    if callable(blocks):
        return [build_candidate(blocks, f"{label}/{i}", where, (i,)) for i in range(count)]
    raise SpaceError(
        f"{where}: blocks must be a module, a list of modules or a function of the block index, got {blocks!r}"
    )


class Repeat(Primitive):
    """``depth`` copies of a block in sequence. ``blocks`` is a module (deep-copied
    each time, so its choices are shared by all copies), a list of modules, or a
    factory ``f(i)`` (choices made inside are per block). ``depth`` is an int, a
    ``(min, max)`` range (``min`` may be 0) or an integer choice.

    >>> import archsmith.nn as nn
    >>> body = nn.Repeat(lambda i: nn.Linear(8, 8), depth=(1, 3), label="depth")
    >>> body.depth_choice.values
    [1, 2, 3]
    """

    kind: ClassVar[str] = "repeat"

    @classmethod
    def create_frozen(cls, blocks: Blocks, depth: Any, *, label: str | None = None) -> torch.nn.Sequential:
        label = auto_label(label, cls.kind)
        choice, _ = _depth_range(depth, label)
        ctx = fixed_context()
        assert ctx is not None
        chosen = evaluate(choice, ctx.sample)
        return torch.nn.Sequential(*_make_blocks(blocks, chosen, label))

    def __init__(self, blocks: Blocks, depth: Any, *, label: str | None = None) -> None:
        super().__init__()
        self.label = auto_label(label, self.kind)
        self.depth_choice, self.depths = _depth_range(depth, self.label)
        self.blocks = torch.nn.ModuleList(_make_blocks(blocks, max(self.depths), self.label))

    def own_leaves(self) -> list[Leaf]:
        return [self.depth_choice] if isinstance(self.depth_choice, Leaf) else []

    def branches(self) -> list[Branch]:
        if not isinstance(self.depth_choice, Leaf):
            return []
        label = self.depth_choice.label
        return [(block, label, [d for d in self.depths if d > i]) for i, block in enumerate(self.blocks)]

    def forward(self, x: Any) -> Any:
        if isinstance(self.depth_choice, Leaf):
            return super().forward(x)
        for block in self.blocks:
            x = block(x)
        return x

    def describe(self) -> str:
        return f"Repeat({self.label!r}, depth={self.depths})"

"""``Repeat``: a block stacked a chosen number of times."""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Union

import torch

from archsmith.space import Categorical, Leaf, Mutable, SpaceError, auto_label, evaluate, fixed_context
from archsmith.space._expression import leaves_of

from ._mutable_module import Branch, MutableModule, build_candidate
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
        return depth, sorted(set(_expression_depths(depth, where).values()))
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


#: Most combinations of its choices' values a depth expression may have (each is evaluated).
MAX_DEPTH_COMBINATIONS = 10_000


def _depth_leaves(depth: Any) -> list[Leaf]:
    """The distinct choices a depth reads, one per label."""
    return list({leaf.label: leaf for leaf in leaves_of(depth)}.values())


def _expression_depths(depth: Mutable, where: str) -> dict[tuple[Any, ...], int]:
    """The depth for each combination of the expression's choices' values."""
    leaves = _depth_leaves(depth)
    if not all(leaf.is_discrete for leaf in leaves):
        raise SpaceError(f"{where}: a depth expression must read discrete choices only, got {depth!r}")
    grids = [leaf.grid() for leaf in leaves]
    combinations = math.prod(len(g) for g in grids)
    if combinations > MAX_DEPTH_COMBINATIONS:
        raise SpaceError(
            f"{where}: the depth expression {depth!r} has {combinations:,} combinations of values (more than "
            f"{MAX_DEPTH_COMBINATIONS:,} to evaluate); give the depth as one choice"
        )
    labels = [leaf.label for leaf in leaves]
    depths: dict[tuple[Any, ...], int] = {}
    for combo in itertools.product(*grids):
        value = evaluate(depth, dict(zip(labels, combo)))
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            sample = dict(zip(labels, combo))
            raise SpaceError(
                f"{where}: the depth expression {depth!r} gives {value!r} at {sample}; it must give a "
                "non-negative int (wrap it in archsmith.space.to_int?)"
            )
        depths[combo] = value
    return depths


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
    ``(min, max)`` range (``min`` may be 0), an integer choice or an expression over
    discrete choices (``nn.ValueChoice([1, 2], label="d") + 1``). The searching
    ``Repeat`` holds the deepest stack (``len()`` and indexing reach every block);
    the frozen one, a ``Sequential``, only the chosen blocks.

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

    def __len__(self) -> int:
        return len(self.blocks)

    def __getitem__(self, index: int) -> torch.nn.Module:
        return self.blocks[index]  # type: ignore[no-any-return]

    def __iter__(self) -> Any:
        return iter(self.blocks)

    def own_leaves(self) -> list[Leaf]:
        return _depth_leaves(self.depth_choice)

    def branches(self) -> list[Branch]:
        if isinstance(self.depth_choice, Leaf):
            label = self.depth_choice.label
            return [(block, label, [d for d in self.depths if d > i]) for i, block in enumerate(self.blocks)]
        if not isinstance(self.depth_choice, Mutable):
            return []
        depths = _expression_depths(self.depth_choice, f"Repeat {self.label!r}")
        labels = [leaf.label for leaf in _depth_leaves(self.depth_choice)]
        out: list[Branch] = []
        for i, block in enumerate(self.blocks):
            out += self._block_branches(i, block, depths, labels)
        return out

    def _block_branches(
        self, i: int, block: torch.nn.Module, depths: dict[tuple[Any, ...], int], labels: list[str]
    ) -> list[Branch]:
        """Block ``i`` is used where the depth exceeds ``i``: as conditions on single
        choices, any one of which suffices (the form conditions take)."""
        used = {combo for combo, d in depths.items() if d > i}
        if len(used) == len(depths) or not any(isinstance(m, MutableModule) for m in block.modules()):
            return []  # used by every depth, or no decision inside to condition
        # A value of one choice that makes the depth exceed i whatever the others are.
        values: list[list[Any]] = []
        for k in range(len(labels)):
            grid = list(dict.fromkeys(combo[k] for combo in depths))
            values.append([v for v in grid if all(c in used for c in depths if c[k] == v)])
        covered = {c for c in depths if any(c[k] in values[k] for k in range(len(labels)))}
        if covered != used:
            raise SpaceError(
                f"Repeat {self.label!r}: block {i} holds choices, and whether it is used under the depth "
                f"{self.depth_choice!r} depends jointly on {labels}, which the space cannot record; give the "
                "depth as one choice (or an expression over one), or blocks without choices"
            )
        return [(block, label, vals) for label, vals in zip(labels, values) if vals]

    def forward(self, x: Any) -> Any:
        if isinstance(self.depth_choice, Mutable):
            return super().forward(x)
        for block in self.blocks:
            x = block(x)
        return x

    def describe(self) -> str:
        return f"Repeat({self.label!r}, depth={self.depths})"

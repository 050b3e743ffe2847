"""``collect_space``: the flat ``Space`` of a module tree, with the conditions under
which each decision is used.

The walk follows the module tree from the root. A primitive's ``branches`` say which
children are used only under some value of one of its decisions (a ``LayerChoice``'s
candidates, a ``Repeat``'s blocks); everything below such a child is used under that
condition (the nearest one: the parent decision carries its own). A label met in
several places is used if any of its places is; a decision made outside every
primitive (read in the user's own code) is always used.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from archsmith.space import Condition, Constraint, Leaf, Space
from archsmith.space._leaf import value_key

from ._mutable_module import MutableModule

#: Where a label is used: ``None`` anywhere (unconditionally), else parent -> values.
Places = dict[str, "dict[str, list[Any]] | None"]


class _Collector:
    def __init__(self, root: torch.nn.Module) -> None:
        self.root = root
        self.leaves: list[Leaf] = []
        self.places: Places = {}
        self.constraints: list[Constraint] = []
        self._seen_constraints: set[int] = set()
        self._visited: set[tuple[int, Any]] = set()

    def place(self, label: str, conditions: Iterable[tuple[str, Iterable[Any]]] | None) -> None:
        """Record one place of ``label``: unconditional, or under any of ``conditions``."""
        if conditions is None:
            self.places[label] = None
            return
        if label in self.places and self.places[label] is None:
            return
        known = self.places.setdefault(label, {})
        assert known is not None
        for parent, values in conditions:
            have = known.setdefault(parent, [])
            keys = {value_key(v) for v in have}
            have += [v for v in values if value_key(v) not in keys]

    def constraint(self, c: Constraint) -> None:
        if id(c) not in self._seen_constraints:
            self._seen_constraints.add(id(c))
            self.constraints.append(c)

    def walk(self, module: torch.nn.Module, where: Any, branches: dict[int, Any] | None = None) -> None:
        """Visit ``module``, used under ``where`` (``None``: always, else
        ``((parent, values), ...)``, any one of which suffices); ``branches`` (id -> condition)
        holds the branches of the primitives above, which may be deeper down (a
        ``Repeat``'s blocks sit in a ``ModuleList``)."""
        if branches and id(module) in branches:
            where = branches[id(module)]
        if (id(module), where) in self._visited:
            return
        self._visited.add((id(module), where))
        outer = None if where is None else list(where)
        if module is not self.root and _is_model_space(module):
            self._nested(module.search_space, outer)  # type: ignore[arg-type]
            return
        if isinstance(module, MutableModule):
            own: dict[str, list[tuple[str, list[Any]]]] = {}
            for condition in module.own_conditions():
                own.setdefault(condition.label, []).append((condition.parent, list(condition.values)))
            for leaf in module.own_leaves():
                self.leaves.append(leaf)
                self.place(leaf.label, own.get(leaf.label, outer))
            for c in module.own_constraints():
                self.constraint(c)
            alternatives: dict[int, list[tuple[str, tuple[Any, ...]]]] = {}
            for child, label, values in module.branches():  # several for one child: any one suffices
                alternatives.setdefault(id(child), []).append((label, tuple(values)))
            own_branches = {key: tuple(alts) for key, alts in alternatives.items()}
            if own_branches:
                branches = {**(branches or {}), **own_branches}
        for child in module.children():
            self.walk(child, where, branches)

    def _nested(self, space: Space, outer: list[Any] | None) -> None:
        """A model space inside this one: its decisions as it collected them, its
        unconditional ones placed where it is."""
        conditions = space.conditions
        for label, leaf in space.items():
            self.leaves.append(leaf)
            alts = conditions.get(label)
            self.place(label, list(alts.items()) if alts else outer)
        for c in space.constraints:
            self.constraint(c)


def _is_model_space(module: torch.nn.Module) -> bool:
    from ._model_space import ModelSpace

    return isinstance(module, ModelSpace) and not module.is_frozen


def collect_space(module: torch.nn.Module, extra: Iterable[Leaf] = ()) -> Space:
    """The search space of a module tree: ``extra`` leaves (those made while it was
    built), then the decisions of every primitive inside it, each with the
    conditions under which it is used."""
    collector = _Collector(module)
    collector.walk(module, None)
    space = Space()
    for leaf in [*extra, *collector.leaves]:
        space.add(leaf)
    for c in collector.constraints:
        space.add_constraint(c)
    for label, places in collector.places.items():
        for parent, values in (places or {}).items():
            space.add_condition(Condition(label, parent, values))
    return space

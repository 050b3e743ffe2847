"""Conditions: when a decision matters at all.

A decision inside a candidate that is not chosen, or inside a block beyond the
chosen depth, changes nothing in the model: two samples that differ only there are
one *architecture*. A :class:`Condition` says "``label`` is used only where
``parent`` takes one of ``values``"; a label is *active* when one of its conditions
holds and that condition's parent is itself active (a label with no condition is
always active). ``Conditions`` answers which labels a sample uses, and counts or
lists architectures by branching on active decisions only.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ._constraint import Constraint
from ._errors import SpaceError
from ._leaf import Leaf, value_key

#: Alternatives of a conditioned label: parent label -> value keys that activate it.
Alternatives = dict[str, frozenset[Any]]


@dataclass(frozen=True)
class Condition:
    """``label`` is used only where ``parent`` takes one of ``values`` (and
    ``parent`` is itself used). Several conditions on one label: any one suffices.

    >>> from archsmith.space import Condition, Space, choice
    >>> depth, op = choice("depth", [1, 2]), choice("op", ["a", "b", "c"])
    >>> Space([depth, op], conditions=[Condition("op", "depth", [2])]).size()
    4
    """

    label: str
    parent: str
    values: Sequence[Any]


def key_or_none(value: Any) -> Any:
    """``value_key(value)``, or ``None`` for a value that is no JSON value."""
    try:
        return value_key(value)
    except TypeError:
        return None


class Conditions:
    """The conditions of one space: per conditioned label, its alternatives."""

    def __init__(self) -> None:
        self.alternatives: dict[str, Alternatives] = {}
        self.values: dict[str, dict[str, list[Any]]] = {}  # as given, for repr and export
        self._order: list[str] | None = None
        self._cyclic = False
        self._children: dict[str, list[str]] = {}

    def __bool__(self) -> bool:
        return bool(self.alternatives)

    def add(self, leaves: Mapping[str, Leaf], condition: Condition) -> None:
        label, parent = condition.label, condition.parent
        where = f"condition on {label!r}"
        for name in (label, parent):
            if name not in leaves:
                raise SpaceError(f"{where}: {name!r} is not a label of the space; add its choice first")
        if label == parent:
            raise SpaceError(f"{where}: a decision cannot be conditioned on itself")
        leaf = leaves[parent]
        if not leaf.is_discrete:
            raise SpaceError(f"{where}: the parent {parent!r} must be a discrete choice, got {leaf.describe()}")
        if isinstance(condition.values, (str, bytes)) or not isinstance(condition.values, Iterable):
            raise SpaceError(f"{where}: values must be a list of {parent!r}'s values, got {condition.values!r}")
        values = list(condition.values)
        bad = [v for v in values if leaf.check(v) is not None]
        if bad or not values:
            raise SpaceError(
                f"{where}: {bad if bad else 'no values'} given for {parent!r}, which takes {leaf.describe()}; "
                "list the parent values under which the decision is used"
            )
        keys = frozenset(value_key(leaf.canonical(v)) for v in values)
        alts = self.alternatives.setdefault(label, {})
        alts[parent] = alts.get(parent, frozenset()) | keys
        known = self.values.setdefault(label, {}).setdefault(parent, [])
        known += [v for v in values if key_or_none(leaf.canonical(v)) not in {key_or_none(k) for k in known}]
        self._order = None

    # Which labels a sample uses --------------------------------------------------------
    def _prepare(self) -> list[str]:
        """Conditioned labels, parents before children (Kahn's order); a cycle
        (possible only through shared labels) leaves ``_cyclic`` set."""
        if self._order is not None:
            return self._order
        children: dict[str, list[str]] = {}
        for label, alts in self.alternatives.items():
            for parent in alts:
                children.setdefault(parent, []).append(label)
        waiting = {label: sum(p in self.alternatives for p in alts) for label, alts in self.alternatives.items()}
        ready = [label for label, n in waiting.items() if n == 0]
        order: list[str] = []
        while ready:
            label = ready.pop(0)
            order.append(label)
            for child in children.get(label, []):
                waiting[child] -= 1
                if waiting[child] == 0:
                    ready.append(child)
        self._cyclic = len(order) < len(self.alternatives)
        order += [label for label in self.alternatives if label not in set(order)]
        self._order, self._children = order, children
        return order

    @property
    def children(self) -> dict[str, list[str]]:
        self._prepare()
        return self._children

    def active(self, labels: Iterable[str], sample: Mapping[str, Any]) -> set[str]:
        """The active labels among ``labels`` given ``sample``; a parent missing
        from ``sample`` activates nothing."""
        order = self._prepare()
        alternatives = self.alternatives
        active = {label for label in labels if label not in alternatives}
        while True:
            grew = False
            for label in order:
                if label in active:
                    continue
                for parent, keys in alternatives[label].items():
                    if parent in active and parent in sample and key_or_none(sample[parent]) in keys:
                        active.add(label)
                        grew = True
                        break
            if not (self._cyclic and grew):  # one pass settles an acyclic graph
                return active

    # Counting and listing architectures --------------------------------------------------
    def count(self, leaves: Mapping[str, Leaf], constraints: Sequence[Constraint], limit: int) -> int:
        """How many distinct architectures (active projections) meet ``constraints``."""
        return _Counter(self, leaves, constraints, limit).count(self._pending(leaves), list(constraints))

    def architectures(self, leaves: Mapping[str, Leaf], granularity: int | None) -> Iterator[dict[str, Any]]:
        """Each architecture once, as its active labels' values (constraints ignored)."""
        return _Lister(self, leaves, granularity).generate(self._pending(leaves))

    def _pending(self, leaves: Mapping[str, Leaf]) -> dict[str, Alternatives | None]:
        self._prepare()
        return {label: (dict(self.alternatives[label]) if label in self.alternatives else None) for label in leaves}


Pending = dict[str, "Alternatives | None"]  # undecided label -> None (active) or alternatives left


class _Search:
    """Shared by counting and listing: decide a label, split into independent parts."""

    def __init__(self, conditions: Conditions, leaves: Mapping[str, Leaf]) -> None:
        self.children = conditions.children
        self.leaves = leaves
        self.position = {label: i for i, label in enumerate(leaves)}

    def decide(self, pending: Pending, label: str, value: Any) -> Pending:
        """``pending`` after ``label`` (active) takes ``value``: the labels it
        activates lose their conditions, those it rules out leave (inactive)."""
        pending = dict(pending)
        del pending[label]
        key = key_or_none(value)
        for child in self.children.get(label, []):
            alts = pending.get(child)
            if alts is None or label not in alts:
                continue  # decided, or already active
            if key in alts[label]:
                pending[child] = None
            else:
                self._drop_alternative(pending, child, label)
        return pending

    def _drop_alternative(self, pending: Pending, label: str, parent: str) -> None:
        alts = dict(pending[label])  # type: ignore[arg-type]
        del alts[parent]
        if alts:
            pending[label] = alts
            return
        del pending[label]  # no way left to use it: inactive, and so are its dependents' links
        for child in self.children.get(label, []):
            child_alts = pending.get(child)
            if child_alts is not None and label in child_alts:
                self._drop_alternative(pending, child, label)

    def parts(self, pending: Pending, groups: Iterable[Iterable[str]] = ()) -> list[list[str]]:
        """Independent parts of ``pending``: labels linked by a condition or a group."""
        root = {label: label for label in pending}

        def find(x: str) -> str:
            while root[x] != x:
                root[x] = root[root[x]]
                x = root[x]
            return x

        def union(a: str, b: str) -> None:
            ra, rb = find(a), find(b)
            if ra != rb:
                root[rb] = ra

        for label, alts in pending.items():
            for parent in alts or ():
                if parent in pending:
                    union(label, parent)
        for group in groups:
            linked = [label for label in group if label in pending]
            for other in linked[1:]:
                union(linked[0], other)
        parts: dict[str, list[str]] = {}
        for label in sorted(pending, key=self.position.__getitem__):
            parts.setdefault(find(label), []).append(label)
        return list(parts.values())

    def controller(self, part: list[str], pending: Pending, exclude: Iterable[str] = ()) -> str | None:
        """An active label of ``part`` that others depend on (first in space order)."""
        members, skip = set(part), set(exclude)
        for label in part:
            if pending[label] is None and label not in skip:
                if any(child in members for child in self.children.get(label, [])):
                    return label
        return None


class _Counter(_Search):
    def __init__(
        self, conditions: Conditions, leaves: Mapping[str, Leaf], constraints: Sequence[Constraint], limit: int
    ) -> None:
        super().__init__(conditions, leaves)
        self.conditions, self.limit = conditions, limit
        self.defaults = {label: leaf.default() for label, leaf in leaves.items()}
        self.reads = {id(c): set(c.labels) if c.labels is not None else set(leaves) for c in constraints}

    def count(self, pending: Pending, constraints: list[Constraint]) -> int:
        total = 1
        groups = [self.reads[id(c)] for c in constraints]
        for part in self.parts(pending, groups):
            members = set(part)
            touching = [c for c in constraints if self.reads[id(c)] & members]
            total *= self._count_part(part, {label: pending[label] for label in part}, touching)
            if total == 0:
                return 0
        return total

    def _count_part(self, part: list[str], pending: Pending, constraints: list[Constraint]) -> int:
        if len(part) == 1 and pending[part[0]] is None and not constraints:
            return int(self.leaves[part[0]].size())
        if not any(alts is None for alts in pending.values()):
            return self._settled(constraints)  # a cycle of conditions with no way in: all inactive
        if constraints:
            only = constraints[0]
            if len(constraints) == 1 and only.counter is not None and self.reads[id(only)] == set(part):
                return int(only.counter(self.leaves))  # counts the architectures of its labels
            read = set().union(*(self.reads[id(c)] for c in constraints))
            label = self.controller(part, pending, exclude=read)
            if label is None:
                return self._enumerate(part, pending, constraints)
        else:
            label = self.controller(part, pending)
            assert label is not None, "a linked part has a decision others depend on"
        total = 0
        for value in self.leaves[label].grid():
            rest = self.decide(pending, label, value)
            live = [c for c in constraints if self.reads[id(c)] & set(rest)]
            settled = [c for c in constraints if c not in live]
            if self._settled(settled):
                total += self.count(rest, live)
        return total

    def _settled(self, constraints: list[Constraint]) -> int:
        """1 if constraints over inactive decisions only hold at their defaults, else 0."""
        return int(all(c(self.defaults) for c in constraints))

    def _enumerate(self, part: list[str], pending: Pending, constraints: list[Constraint]) -> int:
        unconstrained = _Counter(self.conditions, self.leaves, (), self.limit).count(pending, [])
        if unconstrained > self.limit:
            names = [c.name for c in constraints]
            raise SpaceError(
                f"cannot count the space exactly: constraints {names} couple {len(part)} decisions "
                f"with {unconstrained:,} architectures (more than {self.limit:,} to enumerate). "
                "Use space.size(constrained=False) for the count without constraints."
            )
        lister = _Lister(self.conditions, self.leaves, None)
        count = 0
        for partial in lister.generate(pending):
            sample = {**self.defaults, **partial}
            count += all(c(sample) for c in constraints)
        return count


class _Lister(_Search):
    def __init__(self, conditions: Conditions, leaves: Mapping[str, Leaf], granularity: int | None) -> None:
        super().__init__(conditions, leaves)
        self.granularity = granularity
        self._grids: dict[str, list[Any]] = {}

    def grid(self, label: str) -> list[Any]:
        if label not in self._grids:
            self._grids[label] = self.leaves[label].grid(self.granularity)
        return self._grids[label]

    def generate(self, pending: Pending) -> Iterator[dict[str, Any]]:
        """Every assignment of the active labels of ``pending``, once."""
        singles, parts = [], []
        for part in self.parts(pending):
            if len(part) == 1 and pending[part[0]] is None:
                singles.append(part[0])
            else:
                parts.append(part)
        makers: list[Callable[[], Iterator[dict[str, Any]]]] = []
        if singles:
            grids = [self.grid(label) for label in singles]
            makers.append(lambda: (dict(zip(singles, values)) for values in itertools.product(*grids)))
        for part in parts:
            sub = {label: pending[label] for label in part}
            makers.append(lambda sub=sub, part=part: self._generate_part(part, sub))  # type: ignore[misc]
        return _product(makers)

    def _generate_part(self, part: list[str], pending: Pending) -> Iterator[dict[str, Any]]:
        label = self.controller(part, pending)
        if label is None:  # a cycle of conditions with no way in: nothing is used
            yield {}
            return
        for value in self.grid(label):
            rest = self.decide(pending, label, value)
            for partial in self.generate(rest):
                yield {label: value, **partial}


def _product(makers: list[Callable[[], Iterator[dict[str, Any]]]]) -> Iterator[dict[str, Any]]:
    """The merged product of the iterators ``makers`` make, the first slowest;
    inner iterators are made anew for each outer item, so nothing is stored."""
    if not makers:
        yield {}
        return
    first, rest = makers[0], makers[1:]
    for head in first():
        if not rest:
            yield head
            continue
        for tail in _product(rest):
            yield {**head, **tail}


def size_is_infinite(leaves: Mapping[str, Leaf]) -> bool:
    return any(leaf.size() == math.inf for leaf in leaves.values())

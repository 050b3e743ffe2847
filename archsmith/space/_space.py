"""``Space``: the flat view of a search space (label -> leaf, plus constraints).

Strategies see only this, never the user's modules.
"""

from __future__ import annotations

import itertools
import math
import random as _random
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from ._condition import Condition, Conditions
from ._constraint import Constraint
from ._errors import SampleError, SpaceError
from ._leaf import Leaf
from ._sample_io import dumps_arch
from ._scope import label_conflict

Sample = dict[str, Any]

#: Largest number of combinations ``size()`` enumerates to count a constrained group.
ENUMERATION_LIMIT = 2**20
#: How many random draws ``random()`` tries before declaring constraints unsatisfiable.
MAX_REJECTIONS = 10_000


def enumeration_limit(constraints: Iterable[Constraint]) -> int:
    """How many combinations counting may enumerate: fewer where a constraint is
    costly to judge (a profiler per sample)."""
    return min([ENUMERATION_LIMIT, *(c.enumeration_limit for c in constraints if c.enumeration_limit is not None)])


def unsatisfied_message(constraints: Iterable[Constraint], what: str) -> str:
    """The error of a search its constraints left nothing to: each constraint
    named, with what it saw (a cost constraint: the smallest cost)."""
    constraints = list(constraints)
    names = [c.name for c in constraints]
    hints = "".join(f"; {hint}" for c in constraints if (hint := c.failure_hint()))
    return (
        f"constraints {names} {what}: they may be unsatisfiable, or too tight for rejection sampling{hints}. "
        "Loosen them or narrow the choices"
    )


def make_rng(seed: int | None = None, rng: _random.Random | None = None) -> _random.Random:
    """A ``random.Random`` from a seed or an existing generator."""
    if rng is not None:
        if seed is not None:
            raise SpaceError("pass either seed or rng, not both")
        if not isinstance(rng, _random.Random):
            raise SpaceError(f"rng must be a random.Random, got {type(rng).__name__}")
        return rng
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise SpaceError(f"seed must be an integer, got {seed!r}")
    return _random.Random(seed)


class Space(Mapping[str, Leaf]):
    """An ordered mapping of labels to leaves, with constraints and conditions.

    A :class:`Condition` says when a decision is used at all (inside which
    candidate, up to which depth); samples that differ only in unused decisions are
    one *architecture*: :meth:`size` counts architectures, :meth:`grid` lists each
    once, :meth:`architecture_key` names one. Constraints judge architectures: they
    read an unused decision at its default.

    >>> from archsmith.space import Space, choice, uniform
    >>> space = Space([choice("width", [16, 32]), uniform("dropout", 0.0, 0.5)])
    >>> sorted(space.random(seed=0))
    ['dropout', 'width']
    """

    def __init__(
        self,
        leaves: Iterable[Leaf] | Mapping[str, Leaf] = (),
        constraints: Iterable[Constraint] = (),
        conditions: Iterable[Condition] = (),
    ) -> None:
        self._leaves: dict[str, Leaf] = {}
        self.constraints: list[Constraint] = []
        self._conditions = Conditions()
        self._samplers: list[tuple[str, Any]] | None = None
        self._sorted_labels: list[str] | None = None
        for leaf in leaves.values() if isinstance(leaves, Mapping) else leaves:
            self.add(leaf)
        for c in constraints:
            self.add_constraint(c)
        for condition in conditions:
            self.add_condition(condition)

    # Building ---------------------------------------------------------------------
    def add(self, leaf: Leaf) -> None:
        """Add a leaf; one with an existing label must be the same decision."""
        if not isinstance(leaf, Leaf):
            raise SpaceError(f"a Space holds choices (Categorical, Numerical, ...), got {leaf!r}")
        known = self._leaves.get(leaf.label)
        if known is None:
            self._leaves[leaf.label] = leaf
            self._samplers = self._sorted_labels = None
        elif known is not leaf and not known.same_decision(leaf):
            raise label_conflict(known, leaf)

    def add_constraint(self, constraint: Constraint | Any) -> None:
        if not isinstance(constraint, Constraint):
            constraint = Constraint(constraint)
        unknown = sorted((constraint.labels or set()) - set(self._leaves))
        if unknown:
            raise SpaceError(f"constraint {constraint.name!r} reads labels not in the space: {unknown}")
        self.constraints.append(constraint)

    def add_condition(self, condition: Condition) -> None:
        """Record that ``condition.label`` is used only where ``condition.parent``
        takes one of ``condition.values``; a second condition on the same label is
        an alternative (the label is used if either holds)."""
        if not isinstance(condition, Condition):
            raise SpaceError(f"add_condition takes a Condition(label, parent, values), got {condition!r}")
        self._conditions.add(self._leaves, condition)

    @property
    def conditions(self) -> dict[str, dict[str, list[Any]]]:
        """label -> {parent: values}: the conditioned labels (any other is always used)."""
        return {label: {p: list(v) for p, v in alts.items()} for label, alts in self._conditions.values.items()}

    # Mapping ----------------------------------------------------------------------
    def __getitem__(self, label: str) -> Leaf:
        return self._leaves[label]

    def __iter__(self) -> Iterator[str]:
        return iter(self._leaves)

    def __len__(self) -> int:
        return len(self._leaves)

    def __repr__(self) -> str:
        def when(label: str) -> str:
            alts = self._conditions.values.get(label)
            return "" if not alts else " (used if " + " or ".join(f"{p} in {v!r}" for p, v in alts.items()) + ")"

        body = "".join(f"\n  {label}: {leaf.describe()}{when(label)}" for label, leaf in self._leaves.items())
        cons = "".join(f"\n  constraint: {c.name}" for c in self.constraints)
        return f"Space({len(self)} decisions){body}{cons}"

    # Samples ----------------------------------------------------------------------
    def _canonical(self, sample: Mapping[str, Any]) -> tuple[Sample, list[str]]:
        """The canonical sample and every problem found on the way."""
        if not isinstance(sample, Mapping):
            return {}, [f"a sample is a dict of label -> value, got {type(sample).__name__}"]
        problems, canon, present = [], {}, 0
        # A decision the rest of the sample does not use may be left out (NNI's exports omit them).
        active = self._conditions.active(self._leaves, sample) if self._conditions else None
        for label, leaf in self._leaves.items():
            if label not in sample:
                if active is not None and label not in active:
                    canon[label] = leaf.default()
                    continue
                problems.append(f"{label!r}: missing; expected {leaf.describe()}")
                continue
            present += 1
            problem = leaf.check(sample[label])
            if problem is not None:
                problems.append(f"{label!r}: {problem}")
            else:
                canon[label] = leaf.canonical(sample[label])
        if len(sample) > present:
            known = list(self._leaves)
            extra = [label for label in sample if label not in self._leaves]
            problems += [f"{label!r}: extra label, not in the space (known: {known[:8]}...)" for label in extra]
        if not problems and self.constraints:
            judged = self.representative(canon) if self._conditions else canon
            problems += [f"violates constraint {c.name!r}" for c in self.constraints if not c(judged)]
        return canon, problems

    def check(self, sample: Mapping[str, Any]) -> list[str]:
        """Every problem with ``sample``: missing, extra, wrong-type, out-of-range
        labels and violated constraints (empty if it is valid)."""
        return self._canonical(sample)[1]

    def validate(self, sample: Mapping[str, Any]) -> Sample:
        """The canonical form of ``sample`` (tuples restored, numbers snapped), or
        :class:`SampleError` naming every problem at once."""
        canon, problems = self._canonical(sample)
        if problems:
            raise SampleError(problems)
        return canon

    def contains(self, sample: Mapping[str, Any]) -> bool:
        return not self.check(sample)

    def satisfies(self, sample: Mapping[str, Any]) -> bool:
        """Whether ``sample``'s architecture meets every constraint (an unused
        decision is read at its default)."""
        if not self.constraints:
            return True
        if self._conditions:
            sample = self.representative(sample)
        return all(c(sample) for c in self.constraints)

    # Architectures ----------------------------------------------------------------
    def active_labels(self, sample: Mapping[str, Any]) -> set[str]:
        """The labels ``sample``'s model uses: not those inside an unchosen
        candidate or a block beyond the chosen depth.

        >>> from archsmith.space import Condition, Space, choice
        >>> space = Space([choice("depth", [1, 2]), choice("op1", ["a", "b"])],
        ...               conditions=[Condition("op1", "depth", [2])])
        >>> sorted(space.active_labels({"depth": 1, "op1": "a"}))
        ['depth']
        """
        if not self._conditions:
            return set(self._leaves)
        return self._conditions.active(self._leaves, sample)

    def architecture_key(self, sample: Mapping[str, Any]) -> str:
        """A canonical text of ``sample``'s architecture: equal for two samples that
        differ only in decisions neither uses (labels outside the space are ignored)."""
        if self._sorted_labels is None:
            self._sorted_labels = sorted(self._leaves)
        if self._conditions:
            active = self._conditions.active(self._leaves, sample)
            used = {label: sample[label] for label in self._sorted_labels if label in active and label in sample}
        else:
            used = {label: sample[label] for label in self._sorted_labels if label in sample}
        return dumps_arch(used, indent=None)

    def representative(self, sample: Mapping[str, Any]) -> Sample:
        """``sample`` with every unused decision at its default: the one sample
        :meth:`grid` gives for this architecture."""
        if not self._conditions:
            return {label: sample[label] for label in self._leaves if label in sample}
        active = self._conditions.active(self._leaves, sample)
        return {
            label: sample[label] if label in active and label in sample else leaf.default()
            for label, leaf in self._leaves.items()
        }

    def random(self, seed: int | None = None, *, rng: _random.Random | None = None) -> Sample:
        """A random sample (each leaf by its prior) that meets every constraint."""
        rng = make_rng(seed, rng)
        if self._samplers is None:
            self._samplers = [
                (label, leaf.sampler() if hasattr(leaf, "sampler") else leaf.random)
                for label, leaf in self._leaves.items()
            ]
        samplers = self._samplers
        if not self.constraints:
            return {label: draw(rng) for label, draw in samplers}
        for _ in range(MAX_REJECTIONS):
            sample = {label: draw(rng) for label, draw in samplers}
            if self.satisfies(sample):
                return sample
        raise SpaceError(unsatisfied_message(self.constraints, f"rejected {MAX_REJECTIONS} random samples in a row"))

    def default(self) -> Sample:
        """Every leaf at its default; an error if that breaks a constraint."""
        sample = {label: leaf.default() for label, leaf in self._leaves.items()}
        broken = [c.name for c in self.constraints if not c(sample)]
        if broken:
            raise SpaceError(
                f"the default sample violates constraints {broken}; give the choices defaults that satisfy them"
            )
        return sample

    def grid(self, granularity: int | None = None) -> Iterator[Sample]:
        """Every architecture once: each combination of the used decisions' grids
        (discrete leaves exhaustively, continuous ones at ``granularity``), unused
        decisions at their default, skipping those that break a constraint."""
        if self._conditions:
            yield from self._conditional_grid(granularity)
            return
        labels = list(self._leaves)
        grids = [self._leaves[label].grid(granularity) for label in labels]
        for values in itertools.product(*grids):
            sample = dict(zip(labels, values))
            if not self.constraints or self.satisfies(sample):
                yield sample

    def _conditional_grid(self, granularity: int | None) -> Iterator[Sample]:
        for leaf in self._leaves.values():
            leaf.grid(granularity)  # a continuous leaf without granularity: its clear error, before anything
        defaults = {label: leaf.default() for label, leaf in self._leaves.items()}
        for used in self._conditions.architectures(self._leaves, granularity):
            sample = {label: used[label] if label in used else defaults[label] for label in self._leaves}
            if all(c(sample) for c in self.constraints):  # unused decisions are already at their default
                yield sample

    def size(self, *, constrained: bool = True) -> int | float:
        """Number of distinct architectures: exact for discrete spaces, ``inf`` otherwise.

        Decisions a sample does not use (see :meth:`active_labels`) do not make
        another architecture. With constraints, the decisions each constraint couples
        are enumerated (up to ``ENUMERATION_LIMIT`` architectures per group);
        ``constrained=False`` counts without constraints.
        """
        sizes = {label: leaf.size() for label, leaf in self._leaves.items()}
        if any(s == math.inf for s in sizes.values()):
            return math.inf
        if self._conditions:
            constraints = self.constraints if constrained else []
            return self._conditions.count(self._leaves, constraints, enumeration_limit(constraints))
        if not constrained or not self.constraints:
            return math.prod(sizes.values())  # type: ignore[arg-type]
        total = 1
        grouped: set[str] = set()
        for labels, constraints in self._constraint_groups():
            grouped |= labels
            total *= self._count_group(sorted(labels, key=list(self._leaves).index), constraints)
        free = [s for label, s in sizes.items() if label not in grouped]
        return total * math.prod(free)  # type: ignore[arg-type]

    def _constraint_groups(self) -> list[tuple[set[str], list[Constraint]]]:
        groups: list[tuple[set[str], list[Constraint]]] = []
        for c in self.constraints:
            labels = set(c.labels) if c.labels is not None else set(self._leaves)
            merged, rest = (labels, [c]), []
            for g in groups:
                if g[0] & merged[0]:
                    merged = (merged[0] | g[0], g[1] + merged[1])
                else:
                    rest.append(g)
            groups = [*rest, merged]
        return groups

    def _count_group(self, labels: list[str], constraints: list[Constraint]) -> int:
        if len(constraints) == 1 and constraints[0].counter is not None:
            return constraints[0].counter(self._leaves)
        combos = math.prod(self._leaves[label].size() for label in labels)
        limit = enumeration_limit(constraints)
        if combos > limit:
            names = [c.name for c in constraints]
            raise SpaceError(
                f"cannot count the space exactly: constraints {names} couple {len(labels)} decisions "
                f"with {combos:,} combinations (more than {limit:,} to enumerate). "
                "Use space.size(constrained=False) for the count without constraints."
            )
        grids = [self._leaves[label].grid() for label in labels]
        return sum(1 for values in itertools.product(*grids) if all(c(dict(zip(labels, values))) for c in constraints))

    @property
    def is_discrete(self) -> bool:
        return all(leaf.is_discrete for leaf in self._leaves.values())

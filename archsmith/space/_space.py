"""``Space``: the flat view of a search space (label -> leaf, plus constraints).

Strategies see only this, never the user's modules.
"""

from __future__ import annotations

import itertools
import math
import random as _random
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from ._constraint import Constraint
from ._errors import SampleError, SpaceError
from ._leaf import Leaf
from ._scope import label_conflict

Sample = dict[str, Any]

#: Largest number of combinations ``size()`` enumerates to count a constrained group.
ENUMERATION_LIMIT = 2**20
#: How many random draws ``random()`` tries before declaring constraints unsatisfiable.
MAX_REJECTIONS = 10_000


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
    """An ordered mapping of labels to leaves, with constraints.

    >>> from archsmith.space import Space, choice, uniform
    >>> space = Space([choice("width", [16, 32]), uniform("dropout", 0.0, 0.5)])
    >>> sorted(space.random(seed=0))
    ['dropout', 'width']
    """

    def __init__(
        self, leaves: Iterable[Leaf] | Mapping[str, Leaf] = (), constraints: Iterable[Constraint] = ()
    ) -> None:
        self._leaves: dict[str, Leaf] = {}
        self.constraints: list[Constraint] = []
        self._samplers: list[tuple[str, Any]] | None = None
        for leaf in leaves.values() if isinstance(leaves, Mapping) else leaves:
            self.add(leaf)
        for c in constraints:
            self.add_constraint(c)

    # Building ---------------------------------------------------------------------
    def add(self, leaf: Leaf) -> None:
        """Add a leaf; one with an existing label must be the same decision."""
        if not isinstance(leaf, Leaf):
            raise SpaceError(f"a Space holds choices (Categorical, Numerical, ...), got {leaf!r}")
        known = self._leaves.get(leaf.label)
        if known is None:
            self._leaves[leaf.label] = leaf
            self._samplers = None
        elif known is not leaf and not known.same_decision(leaf):
            raise label_conflict(known, leaf)

    def add_constraint(self, constraint: Constraint | Any) -> None:
        if not isinstance(constraint, Constraint):
            constraint = Constraint(constraint)
        unknown = sorted((constraint.labels or set()) - set(self._leaves))
        if unknown:
            raise SpaceError(f"constraint {constraint.name!r} reads labels not in the space: {unknown}")
        self.constraints.append(constraint)

    # Mapping ----------------------------------------------------------------------
    def __getitem__(self, label: str) -> Leaf:
        return self._leaves[label]

    def __iter__(self) -> Iterator[str]:
        return iter(self._leaves)

    def __len__(self) -> int:
        return len(self._leaves)

    def __repr__(self) -> str:
        body = "".join(f"\n  {label}: {leaf.describe()}" for label, leaf in self._leaves.items())
        cons = "".join(f"\n  constraint: {c.name}" for c in self.constraints)
        return f"Space({len(self)} decisions){body}{cons}"

    # Samples ----------------------------------------------------------------------
    def _canonical(self, sample: Mapping[str, Any]) -> tuple[Sample, list[str]]:
        """The canonical sample and every problem found on the way."""
        if not isinstance(sample, Mapping):
            return {}, [f"a sample is a dict of label -> value, got {type(sample).__name__}"]
        problems, canon, present = [], {}, 0
        for label, leaf in self._leaves.items():
            if label not in sample:
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
        if not problems:
            problems += [f"violates constraint {c.name!r}" for c in self.constraints if not c(canon)]
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
        return all(c(sample) for c in self.constraints)

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
        names = [c.name for c in self.constraints]
        raise SpaceError(
            f"constraints {names} rejected {MAX_REJECTIONS} random samples in a row: they may be "
            "unsatisfiable, or too tight for rejection sampling; loosen them or narrow the choices"
        )

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
        """Every combination of leaf grids (discrete leaves exhaustively, continuous
        ones at ``granularity``), skipping those that break a constraint."""
        labels = list(self._leaves)
        grids = [self._leaves[label].grid(granularity) for label in labels]
        for values in itertools.product(*grids):
            sample = dict(zip(labels, values))
            if not self.constraints or self.satisfies(sample):
                yield sample

    def size(self, *, constrained: bool = True) -> int | float:
        """Number of distinct samples: exact for discrete spaces, ``inf`` otherwise.

        With constraints, the decisions each constraint couples are enumerated (up
        to ``ENUMERATION_LIMIT`` combinations per group); ``constrained=False``
        counts without constraints.
        """
        sizes = {label: leaf.size() for label, leaf in self._leaves.items()}
        if any(s == math.inf for s in sizes.values()):
            return math.inf
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
        if combos > ENUMERATION_LIMIT:
            names = [c.name for c in constraints]
            raise SpaceError(
                f"cannot count the space exactly: constraints {names} couple {len(labels)} decisions "
                f"with {combos:,} combinations (more than {ENUMERATION_LIMIT:,} to enumerate). "
                "Use space.size(constrained=False) for the count without constraints."
            )
        grids = [self._leaves[label].grid() for label in labels]
        return sum(1 for values in itertools.product(*grids) if all(c(dict(zip(labels, values))) for c in constraints))

    @property
    def is_discrete(self) -> bool:
        return all(leaf.is_discrete for leaf in self._leaves.values())

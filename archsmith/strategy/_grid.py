"""``GridSearch``: every point of a discrete space exactly once."""

from __future__ import annotations

import contextlib
import hashlib
import math
import random
from collections.abc import Iterable
from typing import Any

from archsmith.space import Sample, SampleError, Space, SpaceError, unsatisfied_message
from archsmith.space._leaf import value_key
from archsmith.space._space import MAX_REJECTIONS

from ._base import Directions, FinishedTrial, Strategy
from ._registry import register_strategy

_FEISTEL_ROUNDS = 4
#: Grids up to this size are shuffled exactly (a list rebuilt from the seed); larger
#: ones use the Feistel permutation, which needs no memory.
SHUFFLE_IN_MEMORY = 2**16


class Permutation:
    """A pseudo-random permutation of ``range(n)`` computed on the fly from a
    seed: a true shuffle rebuilt from the seed for small ``n``, else a Feistel
    network with cycle walking, so large grids are visited in shuffled order
    without ever storing the shuffled list.

    >>> p = Permutation(10, seed=3)
    >>> sorted(p(i) for i in range(10)) == list(range(10))
    True
    """

    def __init__(self, n: int, seed: int) -> None:
        self.n, self.seed = n, seed
        self.half_bits = max(1, math.ceil(max(n - 1, 1).bit_length() / 2))
        self.mask = (1 << self.half_bits) - 1
        self._table: list[int] | None = None
        if n <= SHUFFLE_IN_MEMORY:
            self._table = list(range(n))
            random.Random(seed).shuffle(self._table)

    def _round(self, r: int, x: int) -> int:
        digest = hashlib.blake2b(f"{self.seed}:{r}:{x}".encode(), digest_size=8).digest()
        return int.from_bytes(digest, "little") & self.mask

    def _encrypt(self, x: int) -> int:
        left, right = x >> self.half_bits, x & self.mask
        for r in range(_FEISTEL_ROUNDS):
            left, right = right, left ^ self._round(r, right)
        return (left << self.half_bits) | right

    def __call__(self, i: int) -> int:
        if self._table is not None:
            return self._table[i]
        x = self._encrypt(i)
        while x >= self.n:  # cycle walking: stays a bijection on range(n)
            x = self._encrypt(x)
        return x


def _first_index(value: Any, grid: list[Any]) -> int:
    """The position of ``value`` in ``grid``, or 0 if it is not on it."""
    key = value_key(value)
    return next((i for i, point in enumerate(grid) if value_key(point) == key), 0)


@register_strategy("grid")
class GridSearch(Strategy):
    """Grid search: each architecture of the space once (in a shuffled order
    unless ``shuffle=False``), then the search ends by itself.

    Continuous decisions need ``granularity=g``: they take the ``2**g - 1``
    quantiles of :meth:`Space.grid`. The index space is every combination of the
    decisions' grids; a point is skipped if it breaks a constraint, or if it is not
    its architecture's representative (a decision it does not use is not at its
    default), so samples that differ only in unused decisions run once. The state
    is a permutation seed and a position, whatever the grid's size.

    >>> from archsmith.space import Space, choice
    >>> strategy = GridSearch(shuffle=False)
    >>> strategy.attach(Space([choice("a", [1, 2])]), seed=0)
    >>> strategy.ask(), strategy.ask(), strategy.ask()
    ({'a': 1}, {'a': 2}, None)
    """

    multi_objective = True  # proposals ignore the results

    def __init__(self, shuffle: bool = True, granularity: int | None = None) -> None:
        if granularity is not None and (isinstance(granularity, bool) or not isinstance(granularity, int)):
            raise SpaceError(f"GridSearch: granularity must be an integer >= 1 or None, got {granularity!r}")
        if granularity is not None and granularity < 1:
            raise SpaceError(f"GridSearch: granularity must be an integer >= 1 or None, got {granularity!r}")
        self.shuffle, self.granularity = shuffle, granularity
        self._position = 0
        self._found = False  # whether any point met the constraints (else exhaustion is an error)
        self._permutation_seed = 0

    def check_space(self, space: Space) -> None:
        continuous = [label for label, leaf in space.items() if not leaf.is_discrete]
        if continuous and self.granularity is None:
            raise SpaceError(
                f"GridSearch cannot enumerate the continuous decisions {continuous}: pass "
                "GridSearch(granularity=g) to try 2**g - 1 quantiles of each, quantize them, or use another strategy"
            )

    def attach(self, space: Space, *, seed: int, direction: Directions = "maximize") -> None:
        super().attach(space, seed=seed, direction=direction)
        self._labels = list(space)
        self._grids = [space[label].grid(self.granularity) for label in self._labels]
        self._total = math.prod(len(g) for g in self._grids)
        # an unused decision's grid point standing for all its values: its default (or the first point)
        self._canonical = {
            label: _first_index(space[label].default(), grid) for label, grid in zip(self._labels, self._grids)
        }
        self._conditional = bool(space.conditions)
        self._done: set[str] = set()
        self._permutation_seed = self.rng.getrandbits(63)
        self._position = 0
        self._found = False  # whether any point met the constraints (else exhaustion is an error)
        self._order: Permutation | None = None

    def _point(self, index: int) -> tuple[Sample, dict[str, int]]:
        """The ``index``-th grid point (mixed radix, last label fastest) and its digits."""
        sample: Sample = {}
        digits: dict[str, int] = {}
        for label, grid in zip(reversed(self._labels), reversed(self._grids)):
            index, digit = divmod(index, len(grid))
            sample[label], digits[label] = grid[digit], digit
        return {label: sample[label] for label in self._labels}, digits

    def _represents(self, sample: Sample, digits: dict[str, int]) -> bool:
        """Whether this point is its architecture's representative: every decision
        it does not use at its canonical grid point."""
        used = self.space.active_labels(sample)
        return all(digits[label] == self._canonical[label] for label in self._labels if label not in used)

    def _index(self, position: int) -> int:
        if not self.shuffle:
            return position
        if self._order is None:
            self._order = Permutation(self._total, self._permutation_seed)
        return self._order(position)

    def ask(self) -> Sample | None:
        rejected = 0
        while self._position < self._total:
            sample, digits = self._point(self._index(self._position))
            self._position += 1
            if self._conditional and not self._represents(sample, digits):
                continue  # another point runs this architecture
            if self._done and self.space.architecture_key(sample) in self._done:
                continue  # already in the experiment (a warm start's trials)
            if self.space.satisfies(sample):
                self._found = True
                return sample
            rejected += 1
            if not self._found and rejected >= MAX_REJECTIONS:
                # Nothing met the constraints yet: a grid too large to walk to its end must not hang.
                raise SpaceError(
                    unsatisfied_message(self.space.constraints, f"rejected the first {rejected} grid points")
                )
        if not self._found and rejected:
            raise SpaceError(unsatisfied_message(self.space.constraints, "rejected every point of the grid"))
        return None

    def tell(self, trial: FinishedTrial) -> None:
        pass  # the grid is fixed in advance

    def restore_history(self, samples: Iterable[Sample]) -> None:
        """Skip the architectures already in the experiment (an earlier run's
        trials, on a warm start; on resume they lie behind the position anyway)."""
        for sample in samples:
            with contextlib.suppress(SampleError):
                self._done.add(self.space.architecture_key(self.space.validate(sample)))
                self._found = True  # validate checks the constraints too

    def can_exhaust(self, space: Space) -> bool:
        return self.granularity is not None or space.is_discrete

    def is_exhausted(self) -> bool:
        return self._position >= self._total

    def state_dict(self) -> dict[str, Any]:
        return {
            **super().state_dict(),
            "permutation_seed": self._permutation_seed,
            "position": self._position,
            "found": self._found,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self._permutation_seed, self._position = int(state["permutation_seed"]), int(state["position"])
        self._found = bool(state.get("found", self._position > 0))
        self._order = None

    def __repr__(self) -> str:
        return f"GridSearch(shuffle={self.shuffle}, granularity={self.granularity})"

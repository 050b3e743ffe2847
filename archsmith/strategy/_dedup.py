"""De-duplication shared by strategies: never propose one architecture twice, and
know when a finite space has been used up.

Two samples that differ only in decisions neither uses (inside an unchosen
candidate, beyond the chosen depth) are one architecture
(:meth:`Space.architecture_key`). The history of proposals is not part of the
state: the experiment stores every proposal as a trial and hands them back
through :meth:`Strategy.restore_history` on resume, so the state stays small
however long the run.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from typing import Any

from archsmith.space import Sample, SampleError, Space, SpaceError, dumps_arch, loads_arch, unsatisfied_message

#: Spaces up to this many architectures are searched in grid order for an unseen
#: one once random draws keep hitting seen ones (so a small space ends exactly).
SWEEP_LIMIT = 2**16


def sample_key(sample: Sample) -> str:
    """A canonical text of a sample (every label), for de-duplication of samples."""
    return dumps_arch(dict(sorted(sample.items())), indent=None)


def countable_size(space: Space) -> float:
    """``space.size()`` (architectures), or ``inf`` for a space too constrained to
    count; an error if the constraints leave no architecture at all."""
    try:
        size = space.size()
    except SpaceError:
        return math.inf
    if size == 0 and space.constraints:
        raise SpaceError(unsatisfied_message(space.constraints, "leave no architecture of the space (counted exactly)"))
    return size


class Dedup:
    """Mixin: with ``dedup`` on, a strategy remembers the architectures it proposed
    (rebuilt by ``restore_history`` on resume, not kept in its state)."""

    dedup: bool
    space: Space
    _seen: set[str]
    _size: float = math.inf  # how many distinct architectures can be proposed

    def _forget(self, size: float) -> None:
        self._seen, self._size = set(), size

    def _key(self, sample: Sample) -> str:
        return self.space.architecture_key(sample)

    def _is_new(self, sample: Sample) -> bool:
        return not self.dedup or self._key(sample) not in self._seen

    def _remember(self, sample: Sample) -> None:
        if self.dedup:
            self._seen.add(self._key(sample))

    def restore_history(self, samples: Iterable[Sample]) -> None:
        """Remember ``samples`` (every trial already in the experiment) as proposed."""
        if not self.dedup:
            return
        for sample in samples:
            try:
                self._seen.add(self._key(self.space.validate(sample)))
            except SampleError:
                continue  # not an architecture of this space: it cannot collide with a proposal

    def can_exhaust(self, space: Space) -> bool:
        return self.dedup and countable_size(space) != math.inf

    def is_exhausted(self) -> bool:
        return self.dedup and len(self._seen) >= self._size

    def _unseen(self) -> Iterator[Sample]:
        """Architectures not proposed yet, in grid order (small spaces only: the
        last resort of a strategy whose draws keep landing on seen ones)."""
        if self._size > SWEEP_LIMIT:
            return
        for sample in self.space.grid():
            if self._key(sample) not in self._seen:
                yield sample

    def _load_seen(self, state: dict[str, Any]) -> None:
        """Accept a state written before the history left it (a sorted list of
        sample texts under ``"seen"``)."""
        for text in state.get("seen", []):
            self._seen.add(self._key(loads_arch(text)))

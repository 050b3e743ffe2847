"""De-duplication shared by strategies: never propose the same sample twice, and
know when a finite space has been used up."""

from __future__ import annotations

import math
from typing import Any

from archsmith.space import Sample, Space, SpaceError, dumps_arch


def sample_key(sample: Sample) -> str:
    """A canonical text of a sample, for de-duplication."""
    return dumps_arch(dict(sorted(sample.items())), indent=None)


def countable_size(space: Space) -> float:
    """``space.size()``, or ``inf`` for a space too constrained to count."""
    try:
        return space.size()
    except SpaceError:
        return math.inf


class Dedup:
    """Mixin: ``dedup`` on, a strategy remembers what it proposed (in its state)."""

    dedup: bool
    _seen: set[str]
    _size: float = math.inf  # how many distinct samples can be proposed

    def _forget(self, size: float) -> None:
        self._seen, self._size = set(), size

    def _is_new(self, sample: Sample) -> bool:
        return not self.dedup or sample_key(sample) not in self._seen

    def _remember(self, sample: Sample) -> None:
        if self.dedup:
            self._seen.add(sample_key(sample))

    def can_exhaust(self, space: Space) -> bool:
        return self.dedup and countable_size(space) != math.inf

    def is_exhausted(self) -> bool:
        return self.dedup and len(self._seen) >= self._size

    def _seen_state(self) -> dict[str, Any]:
        return {"seen": sorted(self._seen)}

    def _load_seen(self, state: dict[str, Any]) -> None:
        self._seen = set(state.get("seen", []))

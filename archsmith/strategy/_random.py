"""``Random``: independent samples from the space's priors."""

from __future__ import annotations

import math
from typing import Any

from archsmith.space import Sample, Space, SpaceError, dumps_arch

from ._base import Direction, FinishedTrial, Strategy
from ._registry import register_strategy

_DEDUP_TRIES = 1000


def sample_key(sample: Sample) -> str:
    """A canonical text of a sample, for de-duplication."""
    return dumps_arch(dict(sorted(sample.items())), indent=None)


@register_strategy("random")
class Random(Strategy):
    """Random search. With ``dedup`` no architecture is proposed twice, and the
    search ends once a finite space is exhausted.

    >>> from archsmith.space import Space, choice
    >>> strategy = Random()
    >>> strategy.attach(Space([choice("a", [1, 2])]), seed=0)
    >>> sorted(strategy.ask()["a"] for _ in range(2)), strategy.ask()
    ([1, 2], None)
    """

    def __init__(self, dedup: bool = True) -> None:
        self.dedup = dedup
        self._seen: set[str] = set()
        self._size: float = math.inf

    def attach(self, space: Space, *, seed: int, direction: Direction = "maximize") -> None:
        super().attach(space, seed=seed, direction=direction)
        try:
            self._size = space.size()
        except SpaceError:  # too constrained to count: never declare it exhausted
            self._size = math.inf

    def ask(self) -> Sample | None:
        if not self.dedup:
            return self.space.random(rng=self.rng)
        if self.is_exhausted():
            return None
        for _ in range(_DEDUP_TRIES):
            sample = self.space.random(rng=self.rng)
            key = sample_key(sample)
            if key not in self._seen:
                self._seen.add(key)
                return sample
        return None  # nearly exhausted: so few unseen samples that rejection cannot find them

    def tell(self, trial: FinishedTrial) -> None:
        pass  # random search learns nothing

    def can_exhaust(self, space: Space) -> bool:
        try:
            return self.dedup and space.size() != math.inf
        except SpaceError:
            return False

    def is_exhausted(self) -> bool:
        if not self.dedup:
            return False
        return len(self._seen) >= self._size

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "seen": sorted(self._seen)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self._seen = set(state.get("seen", []))

    def __repr__(self) -> str:
        return f"Random(dedup={self.dedup})"

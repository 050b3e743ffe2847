"""``Random``: independent samples from the space's priors."""

from __future__ import annotations

import math
from typing import Any

from archsmith.space import Sample, Space

from ._base import Directions, FinishedTrial, Strategy
from ._dedup import Dedup, countable_size
from ._registry import register_strategy

_DEDUP_TRIES = 1000


@register_strategy("random")
class Random(Dedup, Strategy):
    """Random search. With ``dedup`` no architecture is proposed twice (samples
    that differ only in unused decisions are one architecture), and the search
    ends once a finite space is exhausted.

    >>> from archsmith.space import Space, choice
    >>> strategy = Random()
    >>> strategy.attach(Space([choice("a", [1, 2])]), seed=0)
    >>> sorted(strategy.ask()["a"] for _ in range(2)), strategy.ask()
    ([1, 2], None)
    """

    multi_objective = True  # proposals ignore the results
    honours_prior = True

    def __init__(self, dedup: bool = True) -> None:
        self.dedup = dedup
        self._forget(math.inf)

    def attach(self, space: Space, *, seed: int, direction: Directions = "maximize") -> None:
        super().attach(space, seed=seed, direction=direction)
        self._forget(countable_size(space))

    def ask(self) -> Sample | None:
        if not self.dedup:
            return self.space.random(rng=self.rng)
        if self.is_exhausted():
            return None
        for _ in range(_DEDUP_TRIES):
            sample = self.space.random(rng=self.rng)
            if self._is_new(sample):
                self._remember(sample)
                return sample
        for sample in self._unseen():  # nearly exhausted: the first unseen one in grid order
            self._remember(sample)
            return sample
        return None  # so few unseen architectures in a large space that rejection cannot find them

    def tell(self, trial: FinishedTrial) -> None:
        pass  # random search learns nothing (from its own trials or an earlier run's)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self._load_seen(state)

    def __repr__(self) -> str:
        return f"Random(dedup={self.dedup})"

"""``Strategy``: the ask/tell contract of multi-trial search.

A strategy sees only the flat ``Space`` (labels -> leaves), never the user's
modules; it never trains anything; its whole state is JSON so that a resumed
experiment continues the same search.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Literal

from archsmith.space import Sample, Space, SpaceError

Direction = Literal["maximize", "minimize"]


@dataclass(frozen=True)
class FinishedTrial:
    """What a strategy learns from a trial: its sample and how it went."""

    trial_id: int
    sample: Sample
    status: str  # "succeeded" or "failed"
    value: float | None  # the objective (None if failed)
    metric: Any = None
    stopped_early: bool = False  # an early-stopping rule ended it: ``value`` is its last result


class Strategy(ABC):
    """Base of multi-trial strategies. Subclasses implement ``ask`` and ``tell``
    and extend ``state_dict``/``load_state_dict`` with their own state."""

    space: Space
    direction: Direction
    rng: random.Random

    def attach(self, space: Space, *, seed: int, direction: Direction = "maximize") -> None:
        """Bind the strategy to a space before the first ``ask``."""
        if direction not in ("maximize", "minimize"):
            raise SpaceError(f"direction must be 'maximize' or 'minimize', got {direction!r}")
        self.space, self.direction = space, direction
        self.rng = random.Random(seed)
        self.check_space(space)

    def check_space(self, space: Space) -> None:  # noqa: B027 - optional hook
        """Raise a clear error before the first trial if the space is unsupported."""

    @abstractmethod
    def ask(self) -> Sample | None:
        """The next sample to try, or ``None`` (exhausted, or waiting for results)."""

    @abstractmethod
    def tell(self, trial: FinishedTrial) -> None:
        """Learn from a finished trial."""

    def can_exhaust(self, space: Space) -> bool:
        """Whether this strategy ends a run by itself on ``space`` (so no budget is
        needed); ``False`` unless a strategy knows better."""
        return False

    def is_exhausted(self) -> bool:
        """``True`` once ``ask`` will never propose anything again."""
        return False

    def better(self, a: float, b: float) -> bool:
        """Whether objective value ``a`` beats ``b`` in this strategy's direction."""
        return a > b if self.direction == "maximize" else a < b

    def state_dict(self) -> dict[str, Any]:
        """The strategy's state, as JSON-serialisable data."""
        version, internal, gauss = self.rng.getstate()
        return {"rng": [version, list(internal), gauss]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        version, internal, gauss = state["rng"]
        self.rng.setstate((version, tuple(internal), gauss))

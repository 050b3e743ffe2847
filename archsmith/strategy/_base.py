"""``Strategy``: the ask/tell contract of multi-trial search.

A strategy sees only the flat ``Space`` (labels -> leaves), never the user's
modules; it never trains anything; its whole state is JSON so that a resumed
experiment continues the same search.
"""

from __future__ import annotations

import random
import warnings
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Union

from archsmith.space import Sample, Space, SpaceError

Direction = Literal["maximize", "minimize"]
#: One direction, or one per objective.
Directions = Union[Direction, Sequence[Direction]]


@dataclass(frozen=True)
class FinishedTrial:
    """What a strategy learns from a trial: its sample and how it went."""

    trial_id: int
    sample: Sample
    status: str  # "succeeded" or "failed"
    value: float | None  # the (first) objective (None if failed)
    metric: Any = None
    stopped_early: bool = False  # an early-stopping rule ended it: ``value`` is its last result
    values: tuple[float, ...] | None = None  # every objective, in order (None if failed)

    def objective_values(self) -> tuple[float, ...] | None:
        """Every objective's value; a single-objective trial's ``(value,)``."""
        if self.values is not None:
            return self.values
        return None if self.value is None else (self.value,)


class Strategy(ABC):
    """Base of multi-trial strategies. Subclasses implement ``ask`` and ``tell``
    and extend ``state_dict``/``load_state_dict`` with their own state.

    ``multi_objective``: whether it can search several objectives at once (it
    then reads ``directions`` and ``FinishedTrial.values``); the others refuse
    such an experiment before it starts."""

    multi_objective: ClassVar[bool] = False
    #: whether its proposals draw by the choices' ``prior=`` (others warn at attach)
    honours_prior: ClassVar[bool] = False
    space: Space
    direction: Direction
    directions: tuple[Direction, ...]
    rng: random.Random

    def attach(self, space: Space, *, seed: int, direction: Directions = "maximize") -> None:
        """Bind the strategy to a space before the first ``ask``; ``direction`` is
        one direction, or one per objective."""
        directions = (direction,) if isinstance(direction, str) else tuple(direction)
        self.check_objectives(directions)
        self.space, self.directions, self.direction = space, directions, directions[0]
        self.rng = random.Random(seed)
        self.check_space(space)
        self._warn_unused_priors(space)

    def _warn_unused_priors(self, space: Space) -> None:
        # NNI accepted a prior and silently ignored it; here the user is told which strategy does.
        with_prior = sorted(leaf.label for leaf in space.values() if getattr(leaf, "weights", None) is not None)
        if with_prior and not self.honours_prior:
            warnings.warn(
                f"{type(self).__name__} does not draw by the prior= of {with_prior}: Random and "
                "RegularizedEvolution do (sampling and mutation); drop prior= or use one of those",
                stacklevel=3,
            )

    def check_objectives(self, directions: Sequence[str]) -> None:
        """Raise a clear error unless this strategy can search these objectives."""
        bad = [d for d in directions if d not in ("maximize", "minimize")]
        if not directions or bad:
            raise SpaceError(f"direction must be 'maximize' or 'minimize', got {bad or list(directions)!r}")
        if len(directions) > 1 and not self.multi_objective:
            from ._registry import STRATEGIES

            able = sorted(name for name in STRATEGIES if getattr(STRATEGIES[name], "multi_objective", False))
            raise SpaceError(
                f"{type(self).__name__} searches one objective, but {len(directions)} were given; use one objective, "
                f"or a multi-objective strategy: {', '.join(able)}"
            )

    @property
    def is_multi_objective(self) -> bool:
        return len(self.directions) > 1

    def check_space(self, space: Space) -> None:  # noqa: B027 - optional hook
        """Raise a clear error before the first trial if the space is unsupported."""

    @abstractmethod
    def ask(self) -> Sample | None:
        """The next sample to try, or ``None`` (exhausted, or waiting for results)."""

    @abstractmethod
    def tell(self, trial: FinishedTrial) -> None:
        """Learn from a finished trial, also one this strategy never proposed (a
        trial of an earlier run, when an experiment warm-starts): it must not fail."""

    def restore_history(self, samples: Iterable[Sample]) -> None:  # noqa: B027 - optional hook
        """The samples of every trial already in the experiment, in order, called
        after ``load_state_dict`` when a run resumes or warm-starts; a
        deduplicating strategy remembers them as proposed.

        The history is not part of ``state_dict()`` (which stays small however
        long the run): the experiment stores each proposal as a trial and hands
        them back here. Trials of an earlier run this strategy never proposed
        then arrive through ``tell`` like its own."""

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

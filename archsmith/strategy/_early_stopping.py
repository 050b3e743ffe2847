"""Early stopping (multi-fidelity): rules that end unpromising trials from their
intermediate results. A stopped trial learns it through ``should_stop()``; the
built-in evaluators obey it, and the strategy is told the trial was stopped.

- ``MedianStop``: stop a trial whose best result so far is worse than the median
  of the other trials' at the same step (Golovin et al., 2017).
- ``SuccessiveHalving``: asynchronous successive halving (ASHA, Li et al., 2020):
  at rung steps ``min_step * reduction_factor**k`` a trial goes on only if it is in
  the top ``1 / reduction_factor`` of the results recorded at that rung.
- ``Hyperband``: several successive-halving brackets with different first rungs;
  trials are spread over the brackets in turn.
"""

from __future__ import annotations

import statistics
from abc import ABC, abstractmethod
from typing import Any

from archsmith.space import SpaceError

from ._base import Direction


def _positive_int(name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise SpaceError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


class EarlyStopping(ABC):
    """Decides from each intermediate objective value whether a trial should stop."""

    direction: Direction = "maximize"

    def attach(self, direction: Direction) -> None:
        self.direction = direction

    def _better(self, a: float, b: float) -> bool:
        return a > b if self.direction == "maximize" else a < b

    def _best(self, values: list[float]) -> float:
        return max(values) if self.direction == "maximize" else min(values)

    @abstractmethod
    def should_stop(self, trial_id: int, step: int, value: float) -> bool:
        """Record ``value`` at ``step`` of ``trial_id``; whether the trial should stop."""

    @abstractmethod
    def forget(self, trial_id: int) -> None:
        """Drop what was recorded of a trial (it will run again from the start)."""

    @abstractmethod
    def state_dict(self) -> dict[str, Any]: ...

    @abstractmethod
    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class MedianStop(EarlyStopping):
    """Stop at step ``s`` (>= ``grace_steps``) when the trial's best so far is worse
    than the median of the best-so-far at ``s`` of at least ``min_trials`` others."""

    def __init__(self, grace_steps: int = 1, min_trials: int = 3) -> None:
        self.grace_steps = _positive_int("grace_steps", grace_steps, 0)
        self.min_trials = _positive_int("min_trials", min_trials)
        self._curves: dict[int, list[float]] = {}

    def should_stop(self, trial_id: int, step: int, value: float) -> bool:
        curve = self._curves.setdefault(trial_id, [])
        best = value if not curve else (value if self._better(value, curve[-1]) else curve[-1])
        curve.append(best)  # best-so-far at each step
        if step < self.grace_steps:
            return False
        others = [c[min(step, len(c) - 1)] for t, c in self._curves.items() if t != trial_id and len(c) > step]
        if len(others) < self.min_trials:
            return False
        return self._better(statistics.median(others), best)

    def forget(self, trial_id: int) -> None:
        self._curves.pop(trial_id, None)

    def state_dict(self) -> dict[str, Any]:
        return {"curves": {str(t): c for t, c in self._curves.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._curves = {int(t): list(c) for t, c in state["curves"].items()}

    def __repr__(self) -> str:
        return f"MedianStop(grace_steps={self.grace_steps}, min_trials={self.min_trials})"


class SuccessiveHalving(EarlyStopping):
    """ASHA: rungs at steps ``min_step * reduction_factor**k`` (up to ``max_step``)."""

    def __init__(self, min_step: int = 1, reduction_factor: int = 3, max_step: int | None = None) -> None:
        self.min_step = _positive_int("min_step", min_step)
        self.reduction_factor = _positive_int("reduction_factor", reduction_factor, 2)
        self.max_step = None if max_step is None else _positive_int("max_step", max_step, min_step)
        self._rungs: dict[int, dict[int, float]] = {}  # rung step -> trial -> value

    def _is_rung(self, step: int) -> bool:
        rung = self.min_step
        while rung <= step and (self.max_step is None or rung < self.max_step):
            if rung == step:
                return True
            rung *= self.reduction_factor
        return False

    def should_stop(self, trial_id: int, step: int, value: float) -> bool:
        if not self._is_rung(step):
            return False
        results = self._rungs.setdefault(step, {})
        results[trial_id] = value
        if len(results) < self.reduction_factor:
            return False  # too few results at this rung to judge
        ranked = sorted(results.values(), reverse=self.direction == "maximize")
        keep = max(1, len(ranked) // self.reduction_factor)
        return self._better(ranked[keep - 1], value)

    def forget(self, trial_id: int) -> None:
        for results in self._rungs.values():
            results.pop(trial_id, None)

    def state_dict(self) -> dict[str, Any]:
        return {"rungs": {str(s): {str(t): v for t, v in r.items()} for s, r in self._rungs.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._rungs = {int(s): {int(t): float(v) for t, v in r.items()} for s, r in state["rungs"].items()}

    def __repr__(self) -> str:
        return f"SuccessiveHalving(min_step={self.min_step}, reduction_factor={self.reduction_factor}, max_step={self.max_step})"


class Hyperband(EarlyStopping):
    """Hyperband over ``max_step`` steps: bracket ``b`` is successive halving whose
    first rung is ``max_step / reduction_factor**b``; trial ``i`` goes to bracket
    ``i mod brackets``."""

    def __init__(self, max_step: int, reduction_factor: int = 3, min_step: int = 1) -> None:
        self.max_step = _positive_int("max_step", max_step)
        self.reduction_factor = _positive_int("reduction_factor", reduction_factor, 2)
        self.min_step = _positive_int("min_step", min_step)
        firsts = []
        first = self.max_step
        while first >= self.min_step:
            firsts.append(first)
            first //= self.reduction_factor
        self.brackets = [SuccessiveHalving(f, self.reduction_factor, self.max_step) for f in reversed(firsts)]

    def attach(self, direction: Direction) -> None:
        super().attach(direction)
        for bracket in self.brackets:
            bracket.attach(direction)

    def should_stop(self, trial_id: int, step: int, value: float) -> bool:
        return self.brackets[trial_id % len(self.brackets)].should_stop(trial_id, step, value)

    def forget(self, trial_id: int) -> None:
        self.brackets[trial_id % len(self.brackets)].forget(trial_id)

    def state_dict(self) -> dict[str, Any]:
        return {"brackets": [b.state_dict() for b in self.brackets]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for bracket, s in zip(self.brackets, state["brackets"]):
            bracket.load_state_dict(s)

    def __repr__(self) -> str:
        return (
            f"Hyperband(max_step={self.max_step}, reduction_factor={self.reduction_factor}, min_step={self.min_step})"
        )

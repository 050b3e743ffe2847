"""``Profiler``: what every cost model shares, and ``CostConstraint``, the bound
a comparison with one makes (``FlopsProfiler(space, x) <= 300e6``).

A constraint is an ``archsmith.space.Constraint`` (a predicate over samples), so
every strategy that respects a space's constraints respects it; it also remembers
the cheapest and the dearest cost it was shown, so a search it leaves nothing to
can say how far off the bound was.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from archsmith.space import Constraint

from ._terms import ProfilerError


class Profiler:
    """A cost model: ``profile(sample) -> float`` for a model space's samples.

    Subclasses set :attr:`name` (the metric name the cost is recorded under, e.g.
    ``"flops"``) and implement :meth:`profile`. Comparing a profiler with a number
    makes a :class:`CostConstraint`:

    >>> import archsmith.nn as nn
    >>> from archsmith.profiler import NumParamsProfiler
    >>> class Net(nn.ModelSpace):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.fc = nn.Linear(4, nn.choice("hidden", [8, 16]))
    >>> small = NumParamsProfiler(Net()) <= 50
    >>> small({"hidden": 8}), small({"hidden": 16})
    (True, False)
    >>> (NumParamsProfiler(Net()) >= 10) & (NumParamsProfiler(Net()) < 100)
    Traceback (most recent call last):
    ...
    archsmith.profiler._terms.ProfilerError: a range combines bounds on one profiler: write params.between(low, high) or (p >= low) & (p <= high) with the same p
    """

    #: The metric name this cost is recorded and optimised under.
    name: str = "cost"
    #: The unit of the cost, for messages and docs.
    unit: str = ""

    def profile(self, sample: Mapping[str, Any]) -> float:
        raise NotImplementedError

    def __call__(self, sample: Mapping[str, Any]) -> float:
        return self.profile(sample)

    # Comparisons make constraints -----------------------------------------------------
    def __le__(self, bound: float) -> CostConstraint:  # type: ignore[override]
        return CostConstraint(self, high=_bound(self, bound))

    def __lt__(self, bound: float) -> CostConstraint:  # type: ignore[override]
        return CostConstraint(self, high=_bound(self, bound), strict_high=True)

    def __ge__(self, bound: float) -> CostConstraint:  # type: ignore[override]
        return CostConstraint(self, low=_bound(self, bound))

    def __gt__(self, bound: float) -> CostConstraint:  # type: ignore[override]
        return CostConstraint(self, low=_bound(self, bound), strict_low=True)

    def between(self, low: float, high: float) -> CostConstraint:
        """``low <= cost <= high``."""
        low, high = _bound(self, low), _bound(self, high)
        if low > high:
            raise ProfilerError(f"{self.name}.between({low:g}, {high:g}): the low bound is above the high one")
        return CostConstraint(self, low=low, high=high)

    __hash__ = object.__hash__  # comparisons are overridden; identity stays the hash


class CallableProfiler(Profiler):
    """Any function ``sample -> float`` as a profiler (its comparisons make constraints).

    >>> slow = CallableProfiler(lambda s: 2.0 * s["width"], name="latency", unit="ms") <= 40
    >>> slow({"width": 16}), slow({"width": 32})
    (True, False)
    """

    def __init__(self, fn: Callable[[Mapping[str, Any]], float], name: str = "cost", unit: str = "") -> None:
        if not callable(fn):
            raise ProfilerError(f"CallableProfiler takes a function sample -> float, got {type(fn).__name__}")
        if not isinstance(name, str) or not name:
            raise ProfilerError(f"CallableProfiler: name must be a non-empty string, got {name!r}")
        self.fn, self.name, self.unit = fn, name, unit

    def profile(self, sample: Mapping[str, Any]) -> float:
        """``fn(sample)`` as a float; anything else is an error naming the function."""
        value = self.fn(sample)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ProfilerError(
                f"{self.name}: {getattr(self.fn, '__name__', self.fn)!r} returned {value!r} for {dict(sample)}; "
                "it must return a number"
            )
        return float(value)

    def __repr__(self) -> str:
        return f"CallableProfiler({getattr(self.fn, '__name__', self.fn)!r}, name={self.name!r})"


def _bound(profiler: Profiler, bound: Any) -> float:
    if isinstance(bound, bool) or not isinstance(bound, (int, float)) or math.isnan(bound):
        raise ProfilerError(f"a bound on {profiler.name} must be a number, got {bound!r}")
    return float(bound)


def _fmt(value: float) -> str:
    return f"{value:.4g}"


#: A profile costs microseconds to milliseconds: count spaces by enumeration only up to this.
COST_ENUMERATION_LIMIT = 2**14


class CostConstraint(Constraint):
    """``low <= profiler(sample) <= high`` (either side open, or strict).

    It is a space constraint: ``ExperimentConfig(constraints=[...])`` adds it to the
    search space, where random sampling rejects what breaks it, evolution mutates
    within it, Optuna learns to avoid it and the grid skips it. It records the
    smallest and largest cost it judged, so an error can say how close the search got.
    """

    enumeration_limit = COST_ENUMERATION_LIMIT

    def __init__(
        self,
        profiler: Profiler | Callable[[Mapping[str, Any]], float],
        *,
        low: float | None = None,
        high: float | None = None,
        strict_low: bool = False,
        strict_high: bool = False,
        name: str | None = None,
    ) -> None:
        if low is None and high is None:
            raise ProfilerError("a cost constraint needs a low bound, a high bound, or both")
        self.profiler = profiler
        self.low, self.high, self.strict_low, self.strict_high = low, high, strict_low, strict_high
        self.cost_name = getattr(profiler, "name", None) or getattr(profiler, "__name__", "cost")
        parts = []
        if low is not None:
            parts.append(f"{self.cost_name} {'>' if strict_low else '>='} {_fmt(low)}")
        if high is not None:
            parts.append(f"{self.cost_name} {'<' if strict_high else '<='} {_fmt(high)}")
        # The labels it reads: counting the space enumerates only those, and a
        # profiler of another space is refused when the constraint joins a search.
        space: Any = getattr(profiler, "space", None)
        labels = list(space.search_space) if hasattr(space, "search_space") else None
        super().__init__(self._holds, name=name or " and ".join(parts), labels=labels)
        self.judged = 0
        self.smallest = math.inf
        self.largest = -math.inf

    def cost(self, sample: Mapping[str, Any]) -> float:
        """The profiler's cost of ``sample`` (recorded for :meth:`report`)."""
        value = float(self.profiler.profile(sample) if isinstance(self.profiler, Profiler) else self.profiler(sample))
        self.judged += 1
        self.smallest = min(self.smallest, value)
        self.largest = max(self.largest, value)
        return value

    def holds_for(self, value: float) -> bool:
        """Whether a cost ``value`` meets the bounds."""
        if self.low is not None and (value <= self.low if self.strict_low else value < self.low):
            return False
        return not (self.high is not None and (value >= self.high if self.strict_high else value > self.high))

    def _holds(self, sample: Mapping[str, Any]) -> bool:
        return self.holds_for(self.cost(sample))

    def violation(self, sample: Mapping[str, Any]) -> float:
        """0 when ``sample`` meets the bounds, else how far past them its cost is,
        relative to the bound (0.5: half again the budget)."""
        value = self.cost(sample)
        if self.holds_for(value):
            return 0.0
        bound = self.high if self.high is not None and value >= self.high else self.low
        assert bound is not None
        return abs(value - bound) / max(abs(bound), 1e-12) + 1e-9  # strictly positive when broken

    def report(self) -> str:
        """What the constraint has seen: the range of costs it judged."""
        if not self.judged:
            return f"{self.name}: no sample was judged"
        return (
            f"{self.name}: the smallest {self.cost_name} seen was {_fmt(self.smallest)} and the largest "
            f"{_fmt(self.largest)}, over {self.judged} samples judged"
        )

    def failure_hint(self) -> str:
        return self.report()

    def __and__(self, other: Any) -> CostConstraint:
        """Two one-sided bounds on the same profiler as a range."""
        if not isinstance(other, CostConstraint) or other.profiler is not self.profiler:
            raise ProfilerError(
                f"a range combines bounds on one profiler: write {self.cost_name}.between(low, high) or "
                "(p >= low) & (p <= high) with the same p"
            )
        lows = [c for c in (self, other) if c.low is not None]
        highs = [c for c in (self, other) if c.high is not None]
        if len(lows) > 1 or len(highs) > 1:
            raise ProfilerError(f"{self.name} & {other.name}: give one low and one high bound")
        low = lows[0] if lows else None
        high = highs[0] if highs else None
        return CostConstraint(
            self.profiler,
            low=None if low is None else low.low,
            high=None if high is None else high.high,
            strict_low=low is not None and low.strict_low,
            strict_high=high is not None and high.strict_high,
        )

    def __bool__(self) -> bool:
        # ``100 <= p <= 300`` would ask Python for bool(100 <= p) and keep only one side.
        raise ProfilerError(
            f"{self.name} is a constraint, not a truth value (a chained comparison like 100 <= p <= 300 "
            "keeps only one side): write p.between(100, 300) or (p >= 100) & (p <= 300)"
        )

    def __repr__(self) -> str:
        return f"CostConstraint({self.name})"

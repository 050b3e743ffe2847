"""Constraints: predicates a sample must satisfy (random and grid respect them)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ._errors import SpaceError
from ._expression import Expression


class Constraint:
    """A predicate over a sample, given as a function or as a boolean expression.

    ``labels`` names the decisions the predicate reads; expressions know theirs.
    Declaring them lets :meth:`Space.size` count exactly by enumerating only the
    decisions a constraint couples. A primitive whose constraint couples too many
    decisions to enumerate can pass ``counter``: a function of the space that
    returns how many combinations of ``labels`` satisfy the predicate.

    >>> from archsmith.space import Constraint, Space, choice
    >>> a, b = choice("a", [1, 2, 3]), choice("b", [1, 2, 3])
    >>> Space([a, b], constraints=[Constraint(a < b)]).size()
    3
    """

    #: Most combinations :meth:`Space.size` may enumerate to count under this
    #: constraint (``None``: the space's default); lower for costly predicates.
    enumeration_limit: int | None = None

    def __init__(
        self,
        condition: Callable[[Mapping[str, Any]], Any] | Expression,
        *,
        name: str | None = None,
        labels: Iterable[str] | None = None,
        counter: Callable[[Mapping[str, Any]], int] | None = None,
    ) -> None:
        self.counter = counter
        if isinstance(condition, Expression):
            expr = condition
            self._fn: Callable[[Mapping[str, Any]], Any] = expr.evaluate
            self.labels: frozenset[str] | None = frozenset(leaf.label for leaf in expr.leaves())
            self.name = name or repr(expr)
        elif callable(condition):
            self._fn = condition
            self.labels = frozenset(labels) if labels is not None else None
            if counter is not None and labels is None:
                raise SpaceError(f"constraint {name!r}: a counter needs the labels it counts")
            self.name = name or str(getattr(condition, "__name__", repr(condition)))
        else:
            raise SpaceError(
                f"Constraint needs a function sample -> bool or a boolean expression over choices, got {condition!r}"
            )

    def __call__(self, sample: Mapping[str, Any]) -> bool:
        try:
            return bool(self._fn(sample))
        except Exception as e:  # a broken predicate is the user's bug: say which one
            raise SpaceError(f"constraint {self.name!r} raised {type(e).__name__}: {e}") from e

    def violation(self, sample: Mapping[str, Any]) -> float:
        """How far ``sample`` is from meeting the constraint: 0 when it does (a
        plain predicate says 1 otherwise; a cost constraint, by how much), for
        samplers that learn the feasible region (Optuna's constrained TPE)."""
        return 0.0 if self(sample) else 1.0

    def failure_hint(self) -> str:
        """What a search this constraint left nothing to should be told of it
        (a cost constraint says the smallest cost it saw); empty by default."""
        return ""

    def __repr__(self) -> str:
        return f"Constraint({self.name})"

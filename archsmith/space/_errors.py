"""Exceptions raised by archsmith. Every message names the offending label or
argument and says what to do about it."""

from __future__ import annotations


class ArchsmithError(Exception):
    """Base class of every error archsmith raises on purpose."""


class SpaceError(ArchsmithError, ValueError):
    """A search space was declared wrongly (bad candidates, bad range, ...)."""


class LabelConflictError(SpaceError):
    """Two different choices were given the same label."""


class ExpressionError(ArchsmithError, TypeError):
    """A choice or expression was used where a concrete value is needed."""


class SampleError(SpaceError):
    """A sample does not fit its space. ``problems`` lists every issue found."""

    def __init__(self, problems: list[str], *, context: str = "sample") -> None:
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(
            f"{context} is invalid ({len(self.problems)} problem{'s' if len(self.problems) != 1 else ''}):\n{lines}"
        )


class NotFrozenError(ArchsmithError, RuntimeError):
    """A model space was run before a sample was chosen for it."""

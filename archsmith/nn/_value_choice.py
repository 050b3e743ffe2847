"""``ValueChoice``: NNI's name for a categorical choice of a value."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from archsmith import space


class ValueChoice:
    """``ValueChoice(candidates, label=None, prior=None)`` is ``archsmith.space.Categorical``
    (``prior``: one probability per candidate, what random sampling draws by);
    the helpers NNI hung on it (``ValueChoice.max``, ``.condition``, ...) are here too.

    >>> import archsmith.nn as nn
    >>> width = nn.ValueChoice([16, 32], label="width")
    >>> type(width).__name__
    'Categorical'
    """

    def __new__(
        cls, candidates: Sequence[Any], *, label: str | None = None, prior: Sequence[float] | None = None
    ) -> Any:  # type: ignore[misc]
        return space.Categorical(candidates, label=label, prior=prior)

    condition = staticmethod(space.condition)
    switch_case = staticmethod(space.switch_case)
    max = staticmethod(space.max)
    min = staticmethod(space.min)
    to_int = staticmethod(space.to_int)
    to_float = staticmethod(space.to_float)

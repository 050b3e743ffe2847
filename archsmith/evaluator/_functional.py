"""``FunctionalEvaluator``: any training function ``fn(model, **kwargs)``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from archsmith.space import SpaceError

from ._base import Evaluator


class FunctionalEvaluator(Evaluator):
    """Calls ``fn(model, **kwargs)`` with the frozen model. ``kwargs`` may hold
    choices; each trial gets their sampled values.

    >>> from archsmith.space import choice
    >>> def train(model, lr, epochs=1):
    ...     return lr * epochs
    >>> evaluator = FunctionalEvaluator(train, lr=choice("lr", [0.1, 0.01]), epochs=2)
    >>> [leaf.label for leaf in evaluator.search_space_leaves()]
    ['lr']
    """

    def __init__(self, fn: Callable[..., Any], **kwargs: Any) -> None:
        if not callable(fn):
            raise SpaceError(f"FunctionalEvaluator needs a function fn(model, **kwargs), got {fn!r}")
        self.fn = fn
        self.kwargs = kwargs

    def arguments(self) -> dict[str, Any]:
        return self.kwargs

    def evaluate(self, model: torch.nn.Module) -> Any:
        return self.fn(model, **self.resolved())

    def __repr__(self) -> str:
        name = getattr(self.fn, "__qualname__", repr(self.fn))
        return f"FunctionalEvaluator({name}, {', '.join(f'{k}={v!r}' for k, v in self.kwargs.items())})"

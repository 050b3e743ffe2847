"""``FunctionalEvaluator``: any training function ``fn(model, **kwargs)``."""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from typing import Any

import torch

from archsmith.space import SpaceError

from ._base import Evaluator

#: First-parameter names NNI 2.x's examples gave the model class (``model = model_cls()``).
_CLASS_PARAMETERS = {"model_cls", "model_class"}


def wants_model_class(fn: Callable[..., Any]) -> bool:
    """Whether ``fn`` takes a model *class*, as NNI 2.x's evaluators did: its first
    parameter is named ``model_cls``/``model_class`` or annotated ``type[...]``."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):  # builtins and some C callables have none
        return False
    positional = [
        p
        for p in signature.parameters.values()
        if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    ]
    if not positional:
        return False
    first = positional[0]
    if first.name in _CLASS_PARAMETERS:
        return True
    annotation = first.annotation
    if isinstance(annotation, str):  # ``from __future__ import annotations``
        return annotation.replace("typing.", "").startswith(("type[", "Type[")) or annotation == "type"
    return annotation is type or typing.get_origin(annotation) is type


def model_class(model: torch.nn.Module) -> type:
    """A class whose instantiation ``cls()`` gives ``model`` (the frozen model), for
    evaluators written for NNI 2.x."""

    def new(cls: type, *args: Any, **kwargs: Any) -> torch.nn.Module:
        if args or kwargs:
            raise TypeError(
                f"{cls.__name__}() takes no arguments: the architecture is already chosen, "
                "so the evaluator builds it with model_cls()"
            )
        return model

    name = type(model).__name__
    return type(name, (), {"__new__": new, "__qualname__": name, "__doc__": f"Builds the trial's {name}."})


def _called_without_input(error: TypeError) -> bool:
    """Whether ``error`` is a model's ``forward`` called with no input."""
    return "forward() missing" in str(error)


#: Added to a "forward() missing ..." error from a function that got the model.
NO_INPUT_HINT = (
    "the evaluator function called the model with no input, as NNI 2.x's `model = model_cls()` does: "
    "archsmith passes the model itself; drop that line, or name the function's first parameter "
    "model_cls (or annotate it type[...]) to receive a class"
)


class FunctionalEvaluator(Evaluator):
    """Calls ``fn(model, **kwargs)`` with the frozen model. ``kwargs`` may hold
    choices; each trial gets their sampled values.

    A function written for NNI 2.x, which took the model *class*
    (``def evaluate(model_cls): model = model_cls()``), works unchanged: a first
    parameter named ``model_cls``/``model_class`` or annotated ``type[...]`` gets a
    class whose ``model_cls()`` returns the frozen model.

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
        #: whether ``fn`` receives a class (NNI 2.x) rather than the model
        self.takes_class = wants_model_class(fn)

    def arguments(self) -> dict[str, Any]:
        return self.kwargs

    def evaluate(self, model: torch.nn.Module) -> Any:
        if self.takes_class:
            return self.fn(model_class(model), **self.resolved())
        try:
            return self.fn(model, **self.resolved())
        except TypeError as e:
            if _called_without_input(e):
                raise SpaceError(f"{NO_INPUT_HINT} ({e})") from e
            raise

    def __repr__(self) -> str:
        name = getattr(self.fn, "__qualname__", repr(self.fn))
        return f"FunctionalEvaluator({name}, {', '.join(f'{k}={v!r}' for k, v in self.kwargs.items())})"

"""Every ``torch.nn`` layer, accepting choices and expressions as init arguments.

``archsmith.nn.Conv2d(3, choice, 3)`` builds:

- a plain ``torch.nn.Conv2d`` when no argument holds a choice;
- inside ``fixed_arch``: a plain ``torch.nn.Conv2d`` with the arguments evaluated;
- otherwise a mutable layer: an instance of ``archsmith.nn.Conv2d`` (a subclass of
  ``torch.nn.Conv2d``) built on the meta device at the choices' defaults, so the
  space costs no memory, with the choices kept in ``mutable_arguments``.
"""

from __future__ import annotations

import inspect
import warnings
from typing import Any, ClassVar

import torch

from archsmith.space import Leaf, contains_mutable, evaluate, fixed_context, leaves_of

from ._mutable_module import MutableModule

# Containers hold modules, not hyper-parameters: they are torch's own.
_NOT_WRAPPED = {"Module", "Sequential", "ModuleList", "ModuleDict", "ParameterList", "ParameterDict", "Container"}


class _LayerMeta(type):
    """``isinstance(torch.nn.Conv2d(...), archsmith.nn.Conv2d)`` is true: code that
    walks ``model.modules()`` checking layer types works with either import."""

    def __instancecheck__(cls, obj: Any) -> bool:
        torch_class = cls.__dict__.get("_torch_class")
        return isinstance(obj, torch_class) if torch_class is not None else type.__instancecheck__(cls, obj)

    def __subclasscheck__(cls, sub: type) -> bool:
        torch_class = cls.__dict__.get("_torch_class")
        return issubclass(sub, torch_class) if torch_class is not None else type.__subclasscheck__(cls, sub)


class MutableLayer(MutableModule):
    """Mixin that turns a ``torch.nn`` layer class into one that accepts choices."""

    _torch_class: ClassVar[type[torch.nn.Module]]
    init_arguments: dict[str, Any]
    mutable_arguments: dict[str, Any]

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        torch_class = cls._torch_class
        if not contains_mutable(args) and not contains_mutable(kwargs):
            return torch_class(*args, **kwargs)
        ctx = fixed_context()
        if ctx is not None:
            return torch_class(*evaluate(args, ctx.sample), **evaluate(kwargs, ctx.sample))
        return torch.nn.Module.__new__(cls)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        torch_class = self._torch_class
        try:
            bound = inspect.signature(torch_class).bind(*args, **kwargs)
        except TypeError as e:
            raise TypeError(f"{torch_class.__name__}: {e}") from None
        self.__dict__["_archsmith_arguments"] = dict(bound.arguments)
        defaults = {leaf.label: leaf.default() for leaf in leaves_of([args, kwargs])}
        real_args, real_kwargs = evaluate(args, defaults), evaluate(kwargs, defaults)
        try:
            with torch.device("meta"):
                torch_class.__init__(self, *real_args, **real_kwargs)
        except Exception:  # some layers cannot build on meta; the space still works
            torch.nn.Module.__init__(self)
        # Lazy layers hook shape inference in before forward; a searching layer must
        # reach forward (and raise NotFrozenError) instead.
        self._forward_pre_hooks.clear()
        getattr(self, "_forward_pre_hooks_with_kwargs", {}).clear()
        self.init_arguments = dict(bound.arguments)
        self.mutable_arguments = {k: v for k, v in bound.arguments.items() if contains_mutable(v)}
        # Show the choices where torch keeps the plain hyper-parameters.
        for name, value in self.mutable_arguments.items():
            if name in self.__dict__ and not name.startswith("_"):
                self.__dict__[name] = value

    def own_leaves(self) -> list[Leaf]:
        return leaves_of(self.mutable_arguments)

    def describe(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.mutable_arguments.items())
        return f"{type(self).__name__}({args})"

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.init_arguments.items())

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return MutableModule.forward(self, *args, **kwargs)


def wrap_layer(torch_class: type[torch.nn.Module]) -> type[MutableLayer]:
    name = torch_class.__name__
    with warnings.catch_warnings():  # subclassing a deprecated layer warns; using it still will
        warnings.simplefilter("ignore")
        return _subclass(torch_class, name)


def _subclass(torch_class: type[torch.nn.Module], name: str) -> type[MutableLayer]:
    return _LayerMeta(  # type: ignore[return-value]
        name,
        (MutableLayer, torch_class),
        {
            "_torch_class": torch_class,
            "__module__": "archsmith.nn",
            "__qualname__": name,
            "__doc__": f"``torch.nn.{name}`` whose init arguments may be choices or expressions.",
        },
    )


def torch_layer_classes() -> dict[str, type[torch.nn.Module]]:
    """Every public module class in ``torch.nn`` except the containers."""
    found = {}
    for name, obj in vars(torch.nn).items():
        if (
            isinstance(obj, type)
            and issubclass(obj, torch.nn.Module)
            and not name.startswith("_")
            and name not in _NOT_WRAPPED
        ):
            found[name] = obj
    return found


LAYERS: dict[str, type[MutableLayer]] = {name: wrap_layer(cls) for name, cls in torch_layer_classes().items()}

"""``ModelSpace``, ``@model_wrapper`` and ``fixed_arch``.

A model space is a module whose ``__init__`` holds choices. Construction is
wrapped (by a metaclass, so it happens once however deep the inheritance) to:

- record the init arguments, so the space can be rebuilt anywhere from
  ``(class, args, kwargs)``;
- open a label scope, so automatic labels are deterministic;
- collect the decisions into ``search_space``.

Inside ``fixed_arch(sample)`` the same ``__init__`` runs with every choice resolved
on the spot, which builds the plain model.
"""

from __future__ import annotations

import contextlib
import gc
import os
import re
from collections.abc import Iterator, Mapping
from typing import Any, TypeVar

import torch

from archsmith.space import (
    Sample,
    SampleError,
    Space,
    SpaceError,
    current_scope,
    evaluate,
    fixed_context,
    fixed_sample,
    label_scope,
    leaves_of,
    load_arch,
)

from ._collect import collect_space

T = TypeVar("T", bound=type)


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


@contextlib.contextmanager
def _collection_paused() -> Iterator[None]:
    """No cyclic garbage collection while a network is built: its thousands of new
    objects trigger collections that each walk the whole heap (a quarter of the
    time to freeze a 20-cell DARTS network); whatever is garbage is collected after."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


class ModelSpaceMeta(type):
    """Wraps every construction of a model space (see the module docstring)."""

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        if current_scope() is None:  # the outermost space: the whole build at once
            with _collection_paused():
                return ModelSpaceMeta._construct(cls, *args, **kwargs)
        return ModelSpaceMeta._construct(cls, *args, **kwargs)

    def _construct(cls, *args: Any, **kwargs: Any) -> Any:
        # Called through the metaclass: a space may have a `_construct` of its own.
        parent = current_scope()
        name = None if parent is None else parent.next_label(_snake(cls.__name__)).rsplit("/", 1)[-1]
        ctx = fixed_context()
        if ctx is not None:
            args, kwargs = evaluate(args, ctx.sample), evaluate(kwargs, ctx.sample)
            with label_scope(name, root=parent is None):
                obj = super().__call__(*args, **kwargs)
            obj.__dict__["_archsmith_frozen"] = True
            obj.__dict__["_archsmith_init"] = (args, kwargs)
            return obj
        with label_scope(name, root=parent is None) as scope:
            registry = scope.registry if scope.registry is not None else {}
            start = len(registry)
            obj = super().__call__(*args, **kwargs)
            made = list(registry.values())[start:]
        obj.__dict__["_archsmith_frozen"] = False
        obj.__dict__["_archsmith_init"] = (args, kwargs)
        obj.__dict__["_archsmith_space"] = collect_space(obj, made + leaves_of([args, kwargs]))
        return obj


class ModelSpace(torch.nn.Module, metaclass=ModelSpaceMeta):
    """Base class of model spaces: a ``torch.nn.Module`` with choices in ``__init__``.

    >>> import torch, archsmith.nn as nn
    >>> class Net(nn.ModelSpace):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.fc = nn.Linear(4, nn.choice("hidden", [8, 16]))
    ...     def forward(self, x):
    ...         return self.fc(x)
    >>> space = Net()
    >>> space.size()
    2
    >>> model = space.freeze({"hidden": 16})
    >>> model(torch.zeros(1, 4)).shape
    torch.Size([1, 16])
    """

    _archsmith_frozen: bool
    _archsmith_init: tuple[tuple[Any, ...], dict[str, Any]]
    _archsmith_space: Space

    @property
    def search_space(self) -> Space:
        """The decisions of this space (empty for a frozen model)."""
        if self.__dict__.get("_archsmith_frozen", False):
            return Space()
        return self.__dict__["_archsmith_space"]

    @property
    def is_frozen(self) -> bool:
        return bool(self.__dict__.get("_archsmith_frozen", False))

    @property
    def init_arguments(self) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """The ``(args, kwargs)`` this space was built with: with the class, a recipe
        to rebuild it in another process."""
        return self.__dict__["_archsmith_init"]

    def random(self, seed: int | None = None, *, rng: Any = None) -> Sample:
        """A random sample that meets every constraint."""
        return self.search_space.random(seed, rng=rng)

    def grid(self, granularity: int | None = None) -> Iterator[Sample]:
        """Every sample of a discrete space (continuous choices at ``granularity``)."""
        return self.search_space.grid(granularity)

    def size(self, *, constrained: bool = True) -> int | float:
        """The number of distinct architectures (``inf`` if a choice is continuous)."""
        return self.search_space.size(constrained=constrained)

    def default(self) -> Sample:
        """Every choice at its default."""
        return self.search_space.default()

    def validate(self, sample: Mapping[str, Any]) -> Sample:
        """The canonical sample, or :class:`SampleError` naming every problem."""
        return self.search_space.validate(sample)

    def freeze(self, sample: Mapping[str, Any], *, weights_from: Any = None) -> torch.nn.Module:
        """Build the plain model ``sample`` describes; only chosen candidates are built.

        Labels that are not decisions of this space (an evaluator's ``lr`` in what
        ``export_top_models`` returns) are set aside; a misspelt decision cannot
        slip through, since the real label is then missing. Unused decisions may be
        left out (see :meth:`Space.validate`).

        ``weights_from``: a one-shot supernet of this space; the model then gets the
        supernet's weights for this subnet (anything with
        ``subnet_state_dict(sample)`` works).
        """
        if self.is_frozen:
            raise SpaceError(f"{type(self).__name__} is already a frozen model; freeze the space it came from")
        sample = self._architecture(sample)
        args, kwargs = self.init_arguments
        with fixed_arch(sample):
            model = type(self)(*args, **kwargs)
        if weights_from is not None:
            load_subnet_weights(model, weights_from, sample)
        return model

    def _architecture(self, sample: Mapping[str, Any]) -> Sample:
        """The canonical sample of this space's decisions in ``sample``; other
        labels (hyper-parameters) are set aside, and named if a decision is missing."""
        space = self.search_space
        if not isinstance(sample, Mapping):
            return space.validate(sample)
        others = [label for label in sample if label not in space]
        try:
            return space.validate({label: value for label, value in sample.items() if label in space})
        except SampleError as e:
            if not others:
                raise
            raise SampleError(
                [*e.problems, f"set aside as not decisions of this space: {others} (is one of them misspelt?)"]
            ) from None


def model_wrapper(cls: T) -> T:
    """Make an NNI-style ``nn.Module`` class a model space (``@model_wrapper``)."""
    if not isinstance(cls, type) or not issubclass(cls, torch.nn.Module):
        raise SpaceError(f"@model_wrapper decorates a torch.nn.Module subclass, got {cls!r}")
    if issubclass(cls, ModelSpace):
        return cls
    wrapped = ModelSpaceMeta(
        cls.__name__,
        (cls, ModelSpace),
        {"__module__": cls.__module__, "__qualname__": cls.__qualname__, "__doc__": cls.__doc__, "__wrapped__": cls},
    )
    return wrapped  # type: ignore[return-value]


@contextlib.contextmanager
def fixed_arch(arch: Mapping[str, Any] | str | os.PathLike[str], verbose: bool = False) -> Iterator[Sample]:
    """Build models inside the block with every choice resolved from ``arch``
    (a sample dict, or the path of a JSON file written by ``save_arch``).

    >>> import archsmith, archsmith.nn as nn
    >>> with archsmith.fixed_arch({"hidden": 8}):
    ...     layer = nn.Linear(4, nn.choice("hidden", [8, 16]))
    >>> type(layer).__module__, layer.out_features
    ('torch.nn.modules.linear', 8)
    """
    if isinstance(arch, (str, os.PathLike)):
        sample = load_arch(arch)
    elif isinstance(arch, Mapping):
        sample = dict(arch)
    else:
        raise SampleError([f"fixed_arch takes a sample dict or a JSON file path, got {type(arch).__name__}"])
    if verbose:
        print(f"fixed architecture: {sample}")
    with fixed_sample(sample):
        yield sample


def load_subnet_weights(model: torch.nn.Module, weights_from: Any, sample: Mapping[str, Any]) -> None:
    """Load ``sample``'s weights from a one-shot supernet into its frozen ``model``."""
    if not callable(getattr(weights_from, "subnet_state_dict", None)):
        raise SpaceError(
            f"weights_from must be a one-shot supernet (with subnet_state_dict(sample)), got "
            f"{type(weights_from).__name__}"
        )
    model.load_state_dict(weights_from.subnet_state_dict(sample))

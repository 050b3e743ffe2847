"""The hub's registry and the ``load_searched_model`` shared by every hub space.

A family is one module with one :class:`~archsmith.nn.ModelSpace` subclass,
registered with ``@register_space(name)``; its published architectures are
:class:`SearchedModel` entries kept next to it (as timm keeps its configs) and
their samples ship as ``archs/<name>.json`` inside the package.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, ClassVar, TypeVar

import torch

import archsmith.nn as nn
from archsmith._registry import Registry
from archsmith.space import ArchsmithError

SPACES = Registry("hub space")

T = TypeVar("T", bound=type)


class HubError(ArchsmithError, ValueError):
    """A hub name, variant or weight file that cannot be used."""


def register_space(name: str) -> Callable[[T], T]:
    """Record a hub space under ``name`` (tests parametrize over the registry).

    >>> from archsmith.hub import list_spaces
    >>> "proxylessnas" in list_spaces()
    True
    """
    return SPACES.register(name)


def list_spaces() -> list[str]:
    """Names of every registered hub space, sorted.

    >>> names = list_spaces()
    >>> names == sorted(names) and "mobilenetv3" in names
    True
    """
    return sorted(SPACES)


def get_space(name: str) -> type[HubSpace]:
    """The hub space class registered as ``name``."""
    if name not in SPACES:
        raise HubError(f"no hub space {name!r}; registered: {', '.join(list_spaces())}")
    return SPACES[name]  # type: ignore[return-value]


@dataclass(frozen=True)
class SearchedModel:
    """A published architecture of a hub space: its sample file
    (``archs/<name>.json``), the space arguments it needs, its published
    parameter count (for ``num_labels`` outputs) and where that figure comes
    from, and the input side and label count of the data set it was published on."""

    name: str
    params: int
    source: str
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    #: outputs of the published network (1000: ImageNet, 10: CIFAR-10)
    num_labels: int = 1000
    #: side of the square images it takes (224: ImageNet, 32: CIFAR-10)
    input_size: int = 224


def load_arch_file(name: str) -> dict[str, Any]:
    """The sample shipped as ``archsmith/hub/archs/<name>.json``."""
    # importlib.resources so that it works from a wheel, not only from a checkout.
    text = resources.files("archsmith.hub").joinpath("archs").joinpath(f"{name}.json").read_text(encoding="utf-8")
    sample = json.loads(text)
    if not isinstance(sample, dict):
        raise HubError(f"archs/{name}.json must hold a sample (a JSON object), got {type(sample).__name__}")
    return sample


class HubSpace(nn.ModelSpace):
    """Base of hub spaces: ``searched_models`` lists the published architectures
    that :meth:`load_searched_model` builds."""

    searched_models: ClassVar[dict[str, SearchedModel]] = {}
    #: small arguments (few labels, ``num_labels`` among them, narrow widths) for quick checks on 32x32 inputs
    reduced_kwargs: ClassVar[dict[str, Any]] = {}
    #: input sides the reduced space is checked on (CIFAR- and ImageNet-sized by default)
    reduced_input_sizes: ClassVar[tuple[int, ...]] = (32, 224)
    #: more argument sets (laid over ``reduced_kwargs``) whose one-shot support the
    #: generated support table shows, where they add primitives (e.g. width choices)
    oneshot_variants: ClassVar[tuple[dict[str, Any], ...]] = ()

    @classmethod
    def reduced_kwargs_for(cls, input_size: int) -> dict[str, Any]:
        """Small arguments for ``input_size``-sided inputs: :attr:`reduced_kwargs`,
        adjusted by a family whose layers depend on the input size (a stem per
        data set, a fixed number of patches)."""
        return dict(cls.reduced_kwargs)

    @classmethod
    def labels_kwargs(cls, name: str) -> dict[str, Any]:
        """Arguments of a space with the same labels as the space of searched model
        ``name`` (to validate its sample): its own arguments, unless a family
        knows cheaper ones (labels that do not depend on widths or depths)."""
        return dict(cls.searched_models[name].kwargs)

    @classmethod
    def load_searched_model(
        cls,
        name: str,
        pretrained: bool = False,
        weights: str | os.PathLike[str] | None = None,
    ) -> torch.nn.Module:
        """Build the published architecture ``name`` as a plain module.

        ``weights``: a local state-dict file to load. archsmith downloads nothing,
        so ``pretrained=True`` needs ``weights`` too.

        >>> from archsmith.hub import ProxylessNAS
        >>> model = ProxylessNAS.load_searched_model("proxyless-mobile")
        >>> sum(p.numel() for p in model.parameters())
        4080512
        """
        variant = cls.searched_models.get(name)
        if variant is None:
            known = ", ".join(sorted(cls.searched_models)) or "none"
            raise HubError(f"{cls.__name__} has no searched model {name!r}; known: {known}")
        if pretrained and weights is None:
            raise HubError(
                f"pretrained=True for {name!r} needs its weights as a local file: archsmith downloads nothing. "
                f"Pass weights=PATH (a state dict saved with torch.save(model.state_dict(), PATH))."
            )
        sample = load_arch_file(name)
        with nn.fixed_arch(sample):
            model = cls(**dict(variant.kwargs))
        if weights is not None:
            path = os.fspath(weights)
            if not os.path.isfile(path):
                raise HubError(f"weights file {path!r} for {name!r} does not exist")
            state = torch.load(path, map_location="cpu", weights_only=True)
            model.load_state_dict(state)
        return model

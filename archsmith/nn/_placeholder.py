"""``Placeholder``: a marked spot in a base model for a graph mutator to fill."""

from __future__ import annotations

from typing import Any

import torch

from archsmith.space import SpaceError


class PlaceholderNotFilledError(SpaceError):
    """A model was run with a ``Placeholder`` no mutator replaced."""


class Placeholder(torch.nn.Module):
    """A spot in a base model that a :class:`~archsmith.nn.Mutator` replaces (NNI's
    ``nn.Placeholder``). ``info`` is whatever the mutator needs to build the
    replacement (channels, a stride, ...); it reads it back as ``node.info``.

    >>> import archsmith.nn as nn
    >>> spot = nn.Placeholder("block", in_channels=8, out_channels=8)
    >>> spot.label, spot.info["in_channels"]
    ('block', 8)
    """

    def __init__(self, label: str, **info: Any) -> None:
        super().__init__()
        if not isinstance(label, str) or not label:
            raise SpaceError(f"Placeholder: label must be a non-empty string, got {label!r}")
        self.label = label
        self.info = dict(info)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise PlaceholderNotFilledError(
            f"Placeholder {self.label!r} was run before a mutator replaced it; search the model through "
            "archsmith.nn.mutate(model, [mutators]) with a mutator that replaces it (node.replace(...))"
        )

    def extra_repr(self) -> str:
        info = "".join(f", {k}={v!r}" for k, v in self.info.items())
        return f"label={self.label!r}{info}"

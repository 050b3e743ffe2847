"""The ``differentiable`` family (DARTS, GumbelDARTS): every path runs and the
outputs are summed, weighted by ``decisions.weights(label)`` — a softmax of the
label's architecture parameters, or whatever the algorithm sets (Gumbel-softmax).

Layers with choices in their arguments run once per combination of their
choices' values on the shared sliced weights; outputs of different widths are
zero-padded to the widest, and an input wider than a combination expects is cut
to its prefix (the channels that combination owns).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F

from archsmith.nn import Cell, InputChoice, LayerChoice, Repeat
from archsmith.nn._layers import MutableLayer
from archsmith.space._expression import leaves_of

from ._sampling import CellFactory, ChoiceOp, InputOp, LayerOp, RepeatOp
from ._supernet import register_mixed_op


def weighted_sum(weights: torch.Tensor, outputs: list[Any]) -> Any:
    total = weights[0] * outputs[0]
    for w, out in zip(weights[1:], outputs[1:]):
        total = total + w * out
    return total


@register_mixed_op("differentiable", LayerChoice)
class WeightedLayerChoice(ChoiceOp):
    def create_parameters(self) -> None:
        self.decisions.alpha(self.label)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return weighted_sum(self.decisions.weights(self.label), [c(*args, **kwargs) for c in self.candidates])


@register_mixed_op("differentiable", InputChoice)
class WeightedInputChoice(InputOp):
    """A weighted sum over the candidate inputs (``n_chosen`` times it for ``sum``,
    as that many inputs are summed in the subnet)."""

    @classmethod
    def unsupported_reason(cls, primitive: InputChoice) -> str | None:
        if primitive.n_chosen != 1 and primitive.reduction in ("concat", "none"):
            return f"reduction={primitive.reduction!r} with n_chosen={primitive.n_chosen} cannot be weighted"
        return None

    def create_parameters(self) -> None:
        self.decisions.alpha(self.label)

    def apply_each(self, candidate_inputs: list[Any], ops: list[torch.nn.Module]) -> Any:
        # Each input through its own op, then weighted: the inputs' own shapes may
        # differ (a reduction cell's), their op outputs agree.
        mixed = weighted_sum(self.decisions.weights(self.label), [op(x) for op, x in zip(ops, candidate_inputs)])
        if self.reduction == "sum" and self.n_chosen not in (None, 1):
            mixed = mixed * self.n_chosen
        return mixed

    def forward(self, candidate_inputs: list[torch.Tensor]) -> Any:
        if self.n_chosen == 1 and self.reduction == "none":
            return [weighted_sum(self.decisions.weights(self.label), list(candidate_inputs))]
        mixed = weighted_sum(self.decisions.weights(self.label), list(candidate_inputs))
        if self.reduction == "sum" and self.n_chosen not in (None, 1):
            mixed = mixed * self.n_chosen
        return mixed


@register_mixed_op("differentiable", Repeat)
class WeightedRepeat(RepeatOp):
    """The outputs after each candidate depth, weighted by the depth's weight (a
    depth expression over one choice: each value's depth, by the value's weight)."""

    @classmethod
    def unsupported_reason(cls, primitive: Repeat) -> str | None:
        labels = {leaf.label for leaf in leaves_of(primitive.depth_choice)}
        if len(labels) > 1:
            return f"its depth {primitive.depth_choice!r} reads {len(labels)} choices; weights follow one"
        return None

    def create_parameters(self) -> None:
        for label in self.labels():
            self.decisions.alpha(label)

    def forward(self, x: Any) -> Any:
        if not self.labels():
            for block in self.blocks:
                x = block(x)
            return x
        label = self.labels()[0]
        options = self.decisions.options(label)
        depths = [self.depth({label: value}) for value in options]
        outputs: dict[int, Any] = {}
        for depth in range(max(self.depths) + 1):
            if depth in depths:
                outputs[depth] = x
            if depth < len(self.blocks):
                x = self.blocks[depth](x)
        return weighted_sum(self.decisions.weights(label), [outputs[d] for d in depths])


# The argument that sets a layer's input width, and the input's feature dimension.
_INPUT_WIDTH = {
    "Conv1d": ("in_channels", 1),
    "Conv2d": ("in_channels", 1),
    "Conv3d": ("in_channels", 1),
    "Linear": ("in_features", -1),
    "BatchNorm1d": ("num_features", 1),
    "BatchNorm2d": ("num_features", 1),
    "BatchNorm3d": ("num_features", 1),
    "LayerNorm": ("normalized_shape", -1),
    "MultiheadAttention": ("embed_dim", -1),
}


def _prefix(x: Any, width: Any, dim: int) -> Any:
    if isinstance(width, (tuple, list)):
        width = width[-1]
    if isinstance(x, torch.Tensor) and isinstance(width, int) and x.shape[dim] > width:
        return x.narrow(dim, 0, width)
    return x


def _pad_to(x: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    if x.shape == shape:
        return x
    if x.ndim != len(shape):
        raise ValueError(f"cannot mix outputs of shapes {tuple(x.shape)} and {tuple(shape)}")
    pad: list[int] = []
    for have, want in zip(reversed(x.shape), reversed(shape)):
        pad += [0, want - have]
    return F.pad(x, pad)


@register_mixed_op("differentiable", MutableLayer)
class WeightedLayer(LayerOp):
    """Every combination of the layer's choices on the shared weights, weighted by
    the product of its values' weights."""

    def create_parameters(self) -> None:
        for label in self.labels():
            self.decisions.alpha(label)

    def combinations(self) -> list[dict[str, Any]]:
        labels = self.labels()
        values = [self.decisions.options(label) for label in labels]
        return [dict(zip(labels, combo)) for combo in itertools.product(*values)]

    def _weight(self, combo: Mapping[str, Any]) -> torch.Tensor:
        weight: Any = 1.0
        for label, value in combo.items():
            weight = weight * self.decisions.weights(label)[self.decisions.options(label).index(value)]
        return weight  # type: ignore[no-any-return]

    def forward(self, *inputs: Any, **kwargs: Any) -> Any:
        name, dim = _INPUT_WIDTH.get(self.layer.torch_class.__name__, ("", 0))
        outputs, weights, tupled = [], [], False
        for combo in self.combinations():
            arguments = self.layer.arguments({**self.decisions.sample, **combo})
            fitted = [_prefix(x, arguments.get(name), dim) for x in inputs] if name else list(inputs)
            out = self.layer.sliced_forward(*fitted, **kwargs, **arguments)
            tupled = isinstance(out, tuple)  # MultiheadAttention: (output, attention weights)
            outputs.append(out[0] if tupled else out)
            weights.append(self._weight(combo))
        widest = torch.Size(max(o.shape[i] for o in outputs) for i in range(outputs[0].ndim))
        mixed = weighted_sum(torch.stack(weights), [_pad_to(o, widest) for o in outputs])
        return (mixed, None) if tupled else mixed


register_mixed_op("differentiable", Cell)(CellFactory(loose_end=False))  # type: ignore[arg-type]

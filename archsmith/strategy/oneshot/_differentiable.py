"""The ``differentiable`` family (DARTS, GumbelDARTS): every path runs and the
outputs are summed, weighted by ``decisions.weights(label)`` — a softmax of the
label's architecture parameters, or whatever the algorithm sets (Gumbel-softmax).

Layers with choices in their arguments mix in one of two forms, chosen per
supernet by ``set_mixing`` (DARTS' ``mixing=`` argument):

- ``"weights"`` (the default): the sliced weights of every combination of the
  layer's values, each zero-padded to the largest and weighted by the
  combination's weight, summed into one tensor; the layer runs once on it (NNI's
  form). For convolutions, linear layers and batch norm this is exactly the
  output mixture below (they are linear in their weights; batch norm normalises
  each channel on its own). Layers where it is not (LayerNorm,
  MultiheadAttention, grouped convolutions whose groups move with the widths)
  keep the output mixture; ``WeightedLayer.form`` says which and why.
- ``"outputs"``: the layer runs once per combination on its slices; outputs of
  different widths are zero-padded to the widest and summed by weight.

Either way an input wider than a combination expects is cut to its prefix (the
channels that combination owns).
"""

from __future__ import annotations

import itertools
from typing import Any

import torch
import torch.nn.functional as F

from archsmith.nn import Cell, InputChoice, LayerChoice, Repeat
from archsmith.nn._layers import MutableLayer
from archsmith.space import SpaceError
from archsmith.space._expression import leaves_of

from ._sampling import CellFactory, ChoiceOp, InputOp, LayerOp, RepeatOp
from ._supernet import Decisions, register_mixed_op

#: The forms a layer with choices in its arguments can mix in (see the module docstring).
MIXING_FORMS = ("weights", "outputs")


def check_mixing(mixing: str) -> str:
    """``mixing`` if it names a form, else a clear error."""
    if mixing not in MIXING_FORMS:
        raise SpaceError(
            f"mixing must be 'weights' (one run of each layer on its mixed sliced weights; the default) or "
            f"'outputs' (one run per combination of the layer's values, outputs mixed), got {mixing!r}"
        )
    return mixing


def set_mixing(decisions: Decisions, mixing: str) -> None:
    """Make the differentiable layers of the supernet owning ``decisions`` mix in ``mixing``."""
    decisions.state["mixing"] = check_mixing(mixing)


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
    the product of its values' weights: one run on the mixed weights, or one run
    per combination (see the module docstring)."""

    def create_parameters(self) -> None:
        for label in self.labels():
            self.decisions.alpha(label)

    def combinations(self) -> list[dict[str, Any]]:
        labels = self.labels()
        values = [self.decisions.options(label) for label in labels]
        return [dict(zip(labels, combo)) for combo in itertools.product(*values)]

    def _arguments(self) -> list[dict[str, Any]]:
        """Each combination's concrete arguments (fixed for the op: the combinations
        cover every label the layer reads), computed once."""
        cached: list[dict[str, Any]] | None = self.__dict__.get("_combination_arguments")
        if cached is None:
            cached = [self.layer.arguments({**self.decisions.sample, **combo}) for combo in self.combinations()]
            self.__dict__["_combination_arguments"] = cached
        return cached

    def weight_mixing_problem(self) -> str | None:
        """Why this layer cannot mix its weights (``None``: it can, exactly)."""
        if "_weight_mixing_problem" not in self.__dict__:
            self.__dict__["_weight_mixing_problem"] = self.layer.weight_mixing_problem(self._arguments())
        return self.__dict__["_weight_mixing_problem"]  # type: ignore[no-any-return]

    @property
    def form(self) -> str:
        """The form this layer mixes in now: ``"weights"`` or ``"outputs"``."""
        wanted = self.decisions.state.get("mixing", "weights")
        return "weights" if wanted == "weights" and self.weight_mixing_problem() is None else "outputs"

    def _combination_weights(self) -> torch.Tensor:
        """The weight of each combination (in ``combinations()``' order): the outer
        product of its labels' weights, flattened."""
        # Each label's weights once per forward: a Gumbel-softmax draws anew per call.
        labels = self.labels()
        weights = self.decisions.weights(labels[0])
        for label in labels[1:]:
            weights = torch.outer(weights, self.decisions.weights(label)).flatten()
        return weights

    def forward(self, *inputs: Any, **kwargs: Any) -> Any:
        name, dim = _INPUT_WIDTH.get(self.layer.torch_class.__name__, ("", 0))
        combinations, weights = self._arguments(), self._combination_weights()
        if self.form == "weights":
            widest = max((c[name] for c in combinations), key=_last) if name else None
            fitted = [_prefix(x, widest, dim) for x in inputs] if name else list(inputs)
            return self.layer.mixed_forward(*fitted, combinations=combinations, weights=weights, **kwargs)
        outputs, tupled = [], False
        for arguments in combinations:
            fitted = [_prefix(x, arguments.get(name), dim) for x in inputs] if name else list(inputs)
            out = self.layer.sliced_forward(*fitted, **kwargs, **arguments)
            tupled = isinstance(out, tuple)  # MultiheadAttention: (output, attention weights)
            outputs.append(out[0] if tupled else out)
        widest_shape = torch.Size(max(o.shape[i] for o in outputs) for i in range(outputs[0].ndim))
        mixed = weighted_sum(weights, [_pad_to(o, widest_shape) for o in outputs])
        return (mixed, None) if tupled else mixed


def _last(width: Any) -> Any:
    return width[-1] if isinstance(width, (tuple, list)) else width


register_mixed_op("differentiable", Cell)(CellFactory(loose_end=False))  # type: ignore[arg-type]

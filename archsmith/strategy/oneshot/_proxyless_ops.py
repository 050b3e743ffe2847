"""The ``proxyless`` family's mixed ops: binary gates (``_proxyless_gates``) over
``LayerChoice`` candidates, ``InputChoice`` inputs, the values of choices in layer
arguments (on shared sliced weights) and ``Repeat`` depths.

Each op's training forward runs its active option with autograd and, per label
with a second option drawn, that option without autograd; its value is exactly
the active option's output. Under ``gates.single_path()`` (weight steps) only the
active option runs; in eval mode, the most probable one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from archsmith.nn import Cell, InputChoice, LayerChoice, Repeat
from archsmith.nn._cell import PerInputOps
from archsmith.nn._frozen import reduce_tensors
from archsmith.nn._layers import MutableLayer
from archsmith.space import Categorical, leaves_of

from ._proxyless_gates import fit, gated, gated_sum, gates_of
from ._sampling import CellFactory, ChoiceOp, InputOp, LayerOp, RepeatOp
from ._supernet import register_mixed_op

FAMILY = "proxyless"


@register_mixed_op(FAMILY, LayerChoice)
class GatedLayerChoice(ChoiceOp):
    """A layer choice with binary gates over its candidates."""

    def create_parameters(self) -> None:
        self.decisions.alpha(self.label)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        gates = gates_of(self.decisions)
        if not self.training:
            return self.candidates[gates.most_probable(self.label)](*args, **kwargs)
        active, other = gates.path(self.label)
        if other is None or gates.active_only:
            return self.candidates[active](*args, **kwargs)
        out = self.candidates[active](*args, **kwargs)
        with gates.second_path():  # its weights' gradient is multiplied by g_other = 0
            rest = self.candidates[other](*args, **kwargs)
        return gated(gates.gate(self.label), out, rest)


@register_mixed_op(FAMILY, InputChoice)
class GatedInputChoice(InputOp):
    """An input choice of one input with binary gates over the candidate inputs."""

    @classmethod
    def unsupported_reason(cls, primitive: InputChoice) -> str | None:
        if primitive.n_chosen == 1:
            return None
        return f"binary gates choose one input, not n_chosen={primitive.n_chosen}"

    def create_parameters(self) -> None:
        self.decisions.alpha(self.label)

    def forward(self, candidate_inputs: Sequence[torch.Tensor]) -> Any:
        gates = gates_of(self.decisions)
        if not self.training:
            return reduce_tensors(self.reduction, [candidate_inputs[gates.most_probable(self.label)]])
        active, other = gates.path(self.label)
        if other is None or gates.active_only:
            return reduce_tensors(self.reduction, [candidate_inputs[active]])
        rest = candidate_inputs[other].detach()
        return reduce_tensors(self.reduction, [gated(gates.gate(self.label), candidate_inputs[active], rest)])


class GatedCellFactory(CellFactory):
    """A ``Cell`` keeps its body, its choices gated; ``merge_op='loose_end'`` is
    refused (its output nodes follow the chosen inputs, and two run at once)."""

    def unsupported_reason(self, cell: Cell) -> str | None:
        if cell.merge_op == "loose_end":
            return "merge_op='loose_end' makes the output nodes depend on the sample, and binary gates run two at once"
        if any(isinstance(m, PerInputOps) for m in cell.modules()):
            return (
                "its op factories take the input index, so each input has its own op, and binary gates "
                "over the inputs would run ops of different inputs at once"
            )
        return None


register_mixed_op(FAMILY, Cell)(GatedCellFactory(loose_end=False))  # type: ignore[arg-type]


# Choices in layer arguments ------------------------------------------------------------------
_CONVOLUTION_DIMS = {torch.nn.Conv1d: 1, torch.nn.Conv2d: 2, torch.nn.Conv3d: 3}
_BATCH_NORMS = (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d, torch.nn.BatchNorm3d)
#: The layers whose inputs the second path can fit to its width (see ``_expected_shape``).
_FITTED = (*_CONVOLUTION_DIMS, torch.nn.Linear, *_BATCH_NORMS, torch.nn.LayerNorm, torch.nn.MultiheadAttention)


def _expected_shape(torch_class: type, arguments: Mapping[str, Any], x: torch.Tensor) -> tuple[int, ...]:
    """The shape of ``x`` that the layer configured by ``arguments`` takes (its
    channels or features set by the arguments, the other dimensions kept)."""
    shape = list(x.shape)
    if torch_class in _CONVOLUTION_DIMS:
        shape[x.dim() - _CONVOLUTION_DIMS[torch_class] - 1] = arguments["in_channels"]
    elif torch_class is torch.nn.Linear:
        shape[-1] = arguments["in_features"]
    elif torch_class in _BATCH_NORMS:
        shape[1] = arguments["num_features"]
    elif torch_class is torch.nn.LayerNorm:
        normalized = arguments["normalized_shape"]
        normalized = [normalized] if isinstance(normalized, int) else list(normalized)
        shape[len(shape) - len(normalized) :] = normalized
    elif torch_class is torch.nn.MultiheadAttention:
        shape[-1] = arguments["embed_dim"]
    return tuple(shape)


def fitted_inputs(
    torch_class: type, arguments: Mapping[str, Any], inputs: Sequence[Any], kwargs: Mapping[str, Any]
) -> tuple[list[Any], dict[str, Any]]:
    """The inputs of the active configuration cut or zero-padded to the widths the
    configuration ``arguments`` takes (a zero-padded channel adds nothing, so this
    is running on the shared prefix of the weights)."""
    if torch_class is torch.nn.MultiheadAttention:  # query, key and value
        names = ("query", "key", "value")
        args = [fit(x, _expected_shape(torch_class, arguments, x)) if i < 3 else x for i, x in enumerate(inputs)]
        kw = {k: fit(v, _expected_shape(torch_class, arguments, v)) if k in names else v for k, v in kwargs.items()}
        return args, kw
    first, *rest = inputs
    return [fit(first, _expected_shape(torch_class, arguments, first)), *rest], dict(kwargs)


def _main(out: Any) -> torch.Tensor:
    """The tensor a layer returns (``MultiheadAttention``: the output, not the attention)."""
    return out[0] if isinstance(out, tuple) else out  # type: ignore[no-any-return]


def _not_categorical(value: Any) -> str | None:
    """Why binary gates cannot choose ``value``'s leaves (one is not categorical)."""
    for leaf in leaves_of(value):
        if not isinstance(leaf, Categorical):
            return f"{leaf.label!r} is a {type(leaf).__name__}; binary gates choose among a categorical choice's values"
    return None


@register_mixed_op(FAMILY, MutableLayer)
class GatedLayer(LayerOp):
    """A layer with choices in its arguments, on sliced shared weights, with one
    binary gate per label it reads.

    The active configuration (every label at its active value) gives the value.
    For each label with a second value, the layer runs again without autograd with
    that label at the second value (the others at their active ones), its input
    cut or zero-padded to the width that configuration takes and its output to the
    active output's shape, so that layers downstream always see the active width.
    That run uses batch statistics and leaves BatchNorm's running ones alone.
    """

    @classmethod
    def unsupported_reason(cls, primitive: MutableLayer) -> str | None:
        if primitive._torch_class not in _FITTED:
            return f"binary gates do not know which input dimension of {primitive._torch_class.__name__} is its width"
        return _not_categorical(primitive.mutable_arguments)

    def create_parameters(self) -> None:
        for label in self.labels():
            self.decisions.alpha(label)

    def configuration(self, indices: Mapping[str, int]) -> dict[str, Any]:
        """The layer's arguments with each label at the option of index ``indices[label]``."""
        return self.layer.arguments({label: self.decisions.options(label)[i] for label, i in indices.items()})

    def run_other(self, arguments: Mapping[str, Any], inputs: Sequence[Any], kwargs: Mapping[str, Any]) -> Any:
        """The layer at ``arguments`` on the active configuration's inputs, fitted."""
        arguments = dict(arguments)
        if "track_running_stats" in arguments:  # batch statistics only: the running ones follow the active path
            arguments["track_running_stats"] = False
        args, kw = fitted_inputs(self.layer.torch_class, arguments, inputs, kwargs)
        return self.layer.sliced_forward(*args, **kw, **arguments)

    def forward(self, *inputs: Any, **kwargs: Any) -> Any:
        gates = gates_of(self.decisions)
        labels = self.labels()
        if not self.training:
            best = self.configuration({label: gates.most_probable(label) for label in labels})
            return self.layer.sliced_forward(*inputs, **kwargs, **best)
        paths = {label: gates.path(label) for label in labels}
        active = {label: path[0] for label, path in paths.items()}
        out = self.layer.sliced_forward(*inputs, **kwargs, **self.configuration(active))
        if gates.active_only:
            return out
        main, gate_list, rests = _main(out), [], []
        for label, (_, other) in paths.items():
            if other is None:
                continue
            with gates.second_path():
                rests.append(_main(self.run_other(self.configuration({**active, label: other}), inputs, kwargs)))
            gate_list.append(gates.gate(label))
        mixed = gated_sum(main, gate_list, rests)
        return (mixed, *out[1:]) if isinstance(out, tuple) else mixed


# Depth choices ---------------------------------------------------------------------------------
@register_mixed_op(FAMILY, Repeat)
class GatedRepeat(RepeatOp):
    """A ``Repeat``: a fixed depth runs every block; a depth choice (or an
    expression over choices) has a binary gate per label it reads.

    The blocks run up to the deepest depth needed: the active one (every label at
    its active option, the value) and, per label with a second option, the depth
    with that label at it (the others active), whose output enters the label's
    gradient. Blocks beyond the active depth run without autograd."""

    @classmethod
    def unsupported_reason(cls, primitive: Repeat) -> str | None:
        return _not_categorical(primitive.depth_choice)

    def create_parameters(self) -> None:
        for label in self.labels():
            self.decisions.alpha(label)

    def depth_at(self, indices: Mapping[str, int]) -> int:
        """The depth with each label at the option of index ``indices[label]``."""
        return self.depth({label: self.decisions.options(label)[i] for label, i in indices.items()})

    def run(self, x: Any, start: int, stop: int) -> Any:
        for block in self.blocks[start:stop]:
            x = block(x)
        return x

    def forward(self, x: Any) -> Any:
        labels = self.labels()
        if not labels:
            return self.run(x, 0, len(self.blocks))
        gates = gates_of(self.decisions)
        if not self.training:
            return self.run(x, 0, self.depth_at({label: gates.most_probable(label) for label in labels}))
        paths = {label: gates.path(label) for label in labels}
        active = {label: path[0] for label, path in paths.items()}
        depth = self.depth_at(active)
        others = {
            label: self.depth_at({**active, label: other}) for label, (_, other) in paths.items() if other is not None
        }
        if not others or gates.active_only:
            return self.run(x, 0, depth)
        outputs, position = {}, 0
        for stop in sorted({d for d in others.values() if d < depth}):  # on the active path
            x = outputs[stop] = self.run(x, position, stop)
            position = stop
        out = outputs[depth] = self.run(x, position, depth)
        with gates.second_path():
            x, position = out, depth
            for stop in sorted({d for d in others.values() if d > depth}):
                x = outputs[stop] = self.run(x, position, stop)
                position = stop
        return gated_sum(out, [gates.gate(label) for label in others], [outputs[d] for d in others.values()])

"""The ``sampling`` family: each forward runs the one path ``decisions.sample``
names (RandomOneShot/SPOS, ENAS).

Under a sample, a sampling supernet computes exactly what the frozen subnet with
the exported weights computes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch

from archsmith.nn import Cell, InputChoice, LayerChoice, Repeat
from archsmith.nn._cell import PerInputOps
from archsmith.nn._frozen import reduce_tensors
from archsmith.nn._layers import MutableLayer
from archsmith.space import evaluate
from archsmith.space._expression import leaves_of

from ._sliced import SlicedLayer, make_sliced
from ._supernet import Decisions, ExportFn, MixedOp, register_mixed_op

Replace = Callable[[torch.nn.Module], torch.nn.Module]


class ChoiceOp(MixedOp):
    """Shared part of the layer-choice ops: candidates (transformed in turn) and
    the index of a sample's candidate."""

    def __init__(self, primitive: LayerChoice, decisions: Decisions, replace: Replace) -> None:
        super().__init__(decisions)
        self.label = primitive.label
        self.names = list(primitive.names)
        self.candidates = torch.nn.ModuleList(replace(c) for c in primitive.candidates)

    def labels(self) -> list[str]:
        return [self.label]

    def index(self, sample: Mapping[str, Any]) -> int:
        return self.names.index(sample[self.label])

    def export_state(self, sample: Mapping[str, Any], prefix: str, recurse: ExportFn) -> dict[str, torch.Tensor]:
        return recurse(self.candidates[self.index(sample)], sample, prefix)  # the frozen op is the candidate


@register_mixed_op("sampling", LayerChoice)
class SampledLayerChoice(ChoiceOp):
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.candidates[self.index(self.decisions.sample)](*args, **kwargs)


class InputOp(MixedOp):
    def __init__(self, primitive: InputChoice, decisions: Decisions, replace: Replace) -> None:
        super().__init__(decisions)
        self.label = primitive.label
        self.n_candidates, self.n_chosen, self.reduction = (
            primitive.n_candidates,
            primitive.n_chosen,
            primitive.reduction,
        )

    def labels(self) -> list[str]:
        return [self.label]

    def chosen(self, sample: Mapping[str, Any]) -> list[int]:
        value = sample[self.label]
        return [value] if self.n_chosen == 1 else list(value)

    def export_state(self, sample: Mapping[str, Any], prefix: str, recurse: ExportFn) -> dict[str, torch.Tensor]:
        return {}

    def apply_each(self, candidate_inputs: list[Any], ops: list[torch.nn.Module]) -> Any:
        """This choice over ``ops[i](candidate_inputs[i])`` (a cell whose op
        depends on its input); a family that weights inputs overrides it."""
        chosen = self.chosen(self.decisions.sample)
        return reduce_tensors(self.reduction, [ops[i](candidate_inputs[i]) for i in chosen])


@register_mixed_op("sampling", InputChoice)
class SampledInputChoice(InputOp):
    def forward(self, candidate_inputs: list[torch.Tensor]) -> Any:
        return reduce_tensors(self.reduction, [candidate_inputs[i] for i in self.chosen(self.decisions.sample)])


class RepeatOp(MixedOp):
    def __init__(self, primitive: Repeat, decisions: Decisions, replace: Replace) -> None:
        super().__init__(decisions)
        self.label = primitive.label
        self.depth_choice = primitive.depth_choice
        self.depths = list(primitive.depths)
        self.blocks = torch.nn.ModuleList(replace(b) for b in primitive.blocks)

    def labels(self) -> list[str]:
        return list(dict.fromkeys(leaf.label for leaf in leaves_of(self.depth_choice)))

    def depth(self, sample: Mapping[str, Any]) -> int:
        return int(evaluate(self.depth_choice, sample))  # an int, a choice or an expression

    def export_state(self, sample: Mapping[str, Any], prefix: str, recurse: ExportFn) -> dict[str, torch.Tensor]:
        state: dict[str, torch.Tensor] = {}
        for i in range(self.depth(sample)):  # the frozen Repeat is Sequential(blocks[:depth])
            state.update(recurse(self.blocks[i], sample, f"{prefix}{i}."))
        return state


@register_mixed_op("sampling", Repeat)
class SampledRepeat(RepeatOp):
    def forward(self, x: Any) -> Any:
        for block in self.blocks[: self.depth(self.decisions.sample)]:
            x = block(x)
        return x


class LayerOp(MixedOp):
    """A layer with choices in its arguments, on weights sliced from the largest."""

    def __init__(self, primitive: MutableLayer, decisions: Decisions, replace: Replace) -> None:
        super().__init__(decisions)
        self.layer: SlicedLayer = make_sliced(primitive)
        self.layer.bind(decisions.sample)

    def labels(self) -> list[str]:
        return [leaf.label for leaf in self.layer.leaves]

    def export_state(self, sample: Mapping[str, Any], prefix: str, recurse: ExportFn) -> dict[str, torch.Tensor]:
        return {prefix + k: v for k, v in self.layer.export_layer(sample).state_dict().items()}


@register_mixed_op("sampling", MutableLayer)
class SampledLayer(LayerOp):
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.layer(*args, **kwargs)


def transform_children(module: torch.nn.Module, replace: Replace) -> torch.nn.Module:
    """``module`` with each child replaced (for ops that keep the primitive itself)."""
    for name, child in list(module.named_children()):
        module._modules[name] = replace(child)
    return module


class LooseEndCell(MixedOp):
    """A ``Cell`` with ``merge_op='loose_end'``: its output nodes (those no chosen
    input reads) depend on the sample, so they are worked out per forward."""

    def __init__(self, cell: Cell, decisions: Decisions, replace: Replace) -> None:
        super().__init__(decisions)
        self.cell: Any = transform_children(cell, replace)

    def labels(self) -> list[str]:
        return [inp.label for inputs in self.cell.inputs for inp in inputs]  # type: ignore[union-attr]

    def output_nodes(self, sample: Mapping[str, Any]) -> list[int]:
        used = {sample[label] for label in self.labels()}
        first = self.cell.num_predecessors
        return [n for n in range(first, first + self.cell.num_nodes) if n not in used]

    def forward(self, *inputs: Any) -> Any:
        self.cell.output_node_indices = self.output_nodes(self.decisions.sample)
        return self.cell(*inputs)

    def export_state(self, sample: Mapping[str, Any], prefix: str, recurse: ExportFn) -> dict[str, torch.Tensor]:
        return recurse(self.cell, sample, prefix)


class PerInputOp(MixedOp):
    """A cell's per-input ops (:class:`~archsmith.nn._cell.PerInputOps`): exports
    the op of the sample's input, which is the one the frozen cell builds."""

    per_input = True

    def __init__(self, ops: PerInputOps, decisions: Decisions, replace: Replace) -> None:
        super().__init__(decisions)
        self.input_label = ops.input_label
        self.ops = torch.nn.ModuleList(replace(op) for op in ops)

    def labels(self) -> list[str]:
        return [self.input_label]

    def forward(self, inp: Any, states: list[Any]) -> Any:  # type: ignore[override]
        return inp.apply_each(states, list(self.ops))

    def export_state(self, sample: Mapping[str, Any], prefix: str, recurse: ExportFn) -> dict[str, torch.Tensor]:
        return recurse(self.ops[sample[self.input_label]], sample, prefix)


def transform_cell(cell: Cell, decisions: Decisions, replace: Replace) -> torch.nn.Module:
    """``cell`` with each per-input op list made a :class:`PerInputOp` and its
    choices replaced by the family's ops."""
    for node_ops in cell.ops.children():
        for name, op in list(node_ops.named_children()):
            if isinstance(op, PerInputOps):  # its choices are replaced below, with the cell's
                node_ops._modules[name] = PerInputOp(op, decisions, lambda m: m)
    return transform_children(cell, replace)


class CellFactory:
    """A ``Cell`` keeps its own body (its ``LayerChoice``/``InputChoice`` become the
    family's ops); ``loose_end`` cells need ``LooseEndCell``, which only a family
    that runs one sample at a time can use."""

    def __init__(self, loose_end: bool) -> None:
        self.loose_end = loose_end

    def unsupported_reason(self, cell: Cell) -> str | None:
        if cell.merge_op == "loose_end" and not self.loose_end:
            return "merge_op='loose_end' makes the output nodes depend on the sample, which cannot be weighted"
        return None

    def __call__(self, cell: Cell, decisions: Decisions, replace: Replace) -> torch.nn.Module:
        cell = transform_cell(cell, decisions, replace)  # type: ignore[assignment]
        if cell.merge_op == "loose_end":
            return LooseEndCell(cell, decisions, lambda m: m)
        return cell


register_mixed_op("sampling", Cell)(CellFactory(loose_end=True))  # type: ignore[arg-type]


from . import _mutated  # noqa: E402, F401  (registers the sampling op of mutated spaces)

"""Compile a searching space's module tree into a flat sum of guarded terms.

A term is what one part of the frozen model contributes, as a function of the
values of the few labels it reads, counted only where its guard holds (the labels
that decide whether the part is built at all: a ``LayerChoice``'s key, a
``Repeat``'s depth, a ``Cell``'s input). ``evaluate`` is then a tight loop.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from archsmith.nn import AutoActivation, Cell, InputChoice, LayerChoice, NasBench101Cell, NasBench201Cell, Repeat
from archsmith.nn._cell import PerInputOps
from archsmith.nn._layers import MutableLayer
from archsmith.nn._mutable_module import MutableModule
from archsmith.nn._repeat import _depth_leaves, _expression_depths
from archsmith.space import Leaf, Mutable, evaluate, fixed_sample, leaves_of


class ProfilerError(Exception):
    """A space (or a part of it) a profiler cannot count exactly."""


#: ``(labels, allowed value tuples)``: the part counts only where the labels take one of them.
Guard = tuple[tuple[str, ...], frozenset[tuple[Any, ...]]]


def hashable(value: Any) -> Any:
    """A sample value as a dict key (lists, as ``CategoricalMultiple`` gives, as tuples)."""
    if isinstance(value, list | tuple):
        return tuple(hashable(v) for v in value)
    return value


@dataclass
class Term:
    """``build(values)`` for the values of ``labels``, memoised, where every guard holds."""

    guards: tuple[Guard, ...]
    labels: tuple[str, ...]
    build: Callable[[dict[str, Any]], float]
    table: dict[tuple[Any, ...], float] = field(default_factory=dict)

    def value(self, sample: Mapping[str, Any]) -> float:
        for labels, allowed in self.guards:
            if tuple(hashable(sample[label]) for label in labels) not in allowed:
                return 0.0
        # .get: a decision a condition leaves unused may be absent (a small NAS-Bench-101 cell's op6)
        key = tuple(hashable(sample.get(label)) for label in self.labels)
        found = self.table.get(key)
        if found is None:
            values = {label: sample[label] for label in self.labels if label in sample}
            found = self.table[key] = float(self.build(values))
        return found


class _Fixed:
    """A count that does not depend on any value (a candidate's plain layers)."""

    def __init__(self, count: float) -> None:
        self.count = count

    def __call__(self, values: dict[str, Any]) -> float:
        return self.count


def _numel(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _build_layer(layer: MutableLayer) -> Callable[[dict[str, Any]], float]:
    torch_class = layer._torch_class
    signature = inspect.signature(torch_class)
    arguments = dict(layer.init_arguments)

    def build(values: dict[str, Any]) -> float:
        bound = inspect.BoundArguments(signature, evaluate(arguments, values))  # type: ignore[arg-type]
        with torch.device("meta"):  # shapes only: no memory, no initialisation
            return _numel(torch_class(*bound.args, **bound.kwargs))

    return build


def _build_nb101(cell: NasBench101Cell) -> Callable[[dict[str, Any]], float]:
    def build(values: dict[str, Any]) -> float:
        with fixed_sample(values), torch.device("meta"):
            body = NasBench101Cell(
                dict(zip(cell.names, cell.op_candidates)),
                cell.in_features,
                cell.out_features,
                cell.projection,
                cell.max_num_nodes,
                cell.max_num_edges,
                label=cell.label,
            )
        return _numel(body)

    return build


def _label_set(leaves: list[Leaf]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(leaf.label for leaf in leaves))


class TermCompiler:
    """Walks a searching module tree once; ``terms`` and ``constant`` are the result."""

    def __init__(self) -> None:
        self.constant = 0.0
        self.terms: list[Term] = []
        self._seen: set[int] = set()

    def walk(self, module: torch.nn.Module, guards: tuple[Guard, ...] = ()) -> None:
        if isinstance(module, MutableLayer):
            labels = _label_set(leaves_of(module.mutable_arguments))
            self._add(guards, labels, _build_layer(module))
        elif isinstance(module, LayerChoice):
            for key, candidate in zip(module.names, module.candidates):
                self.walk(candidate, (*guards, ((module.label,), frozenset({(hashable(key),)}))))
        elif isinstance(module, InputChoice):
            return  # a frozen one holds no parameters
        elif isinstance(module, Repeat):
            self._walk_repeat(module, guards)
        elif isinstance(module, Cell):
            self._walk_cell(module, guards)
        elif isinstance(module, NasBench101Cell):
            self._add(guards, _label_set(module.own_leaves()), _build_nb101(module))
        elif isinstance(module, AutoActivation | NasBench201Cell):
            self._walk_children(module, guards)  # their frozen bodies keep the same tree, choices resolved
        elif isinstance(module, MutableModule):
            raise ProfilerError(
                f"{module.describe()}: the profiler does not know what the frozen form of {type(module).__name__} "
                "holds; count it by freezing the space instead"
            )
        elif not any(isinstance(m, MutableModule) for m in module.modules()):
            self._constant(module.parameters(), guards)
        else:
            self._walk_children(module, guards)

    def _walk_children(self, module: torch.nn.Module, guards: tuple[Guard, ...]) -> None:
        self._constant(module.parameters(recurse=False), guards)
        for child in module.children():
            self.walk(child, guards)

    def _constant(self, parameters: Any, guards: tuple[Guard, ...]) -> None:
        count = 0
        for p in parameters:
            if id(p) not in self._seen:  # a parameter shared by two modules counts once, as in the model
                self._seen.add(id(p))
                count += p.numel()
        if count == 0:
            return
        if guards:
            self._add(guards, (), _Fixed(count))
        else:
            self.constant += count

    def _add(
        self, guards: tuple[Guard, ...], labels: tuple[str, ...], build: Callable[[dict[str, Any]], float]
    ) -> None:
        self.terms.append(Term(guards, labels, build))

    def _walk_repeat(self, repeat: Repeat, guards: tuple[Guard, ...]) -> None:
        depth = repeat.depth_choice
        if isinstance(depth, Leaf):
            label = depth.label
            for i, block in enumerate(repeat.blocks):
                allowed = frozenset((d,) for d in repeat.depths if d > i)
                self.walk(block, (*guards, ((label,), allowed)))
        elif isinstance(depth, Mutable):
            depths = _expression_depths(depth, f"Repeat {repeat.label!r}")
            labels = tuple(leaf.label for leaf in _depth_leaves(depth))
            for i, block in enumerate(repeat.blocks):
                allowed = frozenset(tuple(hashable(v) for v in combo) for combo, d in depths.items() if d > i)
                self.walk(block, (*guards, (labels, allowed)))
        else:
            for block in repeat.blocks:
                self.walk(block, guards)

    def _walk_cell(self, cell: Cell, guards: tuple[Guard, ...]) -> None:
        for name, child in cell.named_children():
            if name not in ("ops", "inputs"):
                self.walk(child, guards)  # preprocessor, postprocessor
        self._constant(cell.parameters(recurse=False), guards)
        assert cell.inputs is not None
        for ops, inputs in zip(cell.ops, cell.inputs):
            for op, inp in zip(ops.children(), inputs.children()):
                if isinstance(op, PerInputOps):
                    label: str = inp.label  # type: ignore[union-attr,assignment]
                    for k, choice in enumerate(op):
                        self.walk(choice, (*guards, ((label,), frozenset({(k,)}))))
                else:
                    self.walk(op, guards)


def compile_terms(space: torch.nn.Module) -> tuple[float, list[Term]]:
    """``(constant, terms)`` of a searching space's parameter count."""
    compiler = TermCompiler()
    compiler.walk(space)
    return compiler.constant, compiler.terms

"""Compile a searching space's module tree into a flat sum of guarded terms.

A term is what one part of the frozen model contributes, as a function of the
values of the few labels it reads, counted only where its guard holds (the labels
that decide whether the part is built at all: a ``LayerChoice``'s key, a
``Repeat``'s depth, a ``Cell``'s input). ``evaluate`` is then a tight loop.
"""

from __future__ import annotations

import inspect
import itertools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from archsmith.nn import AutoActivation, Cell, InputChoice, LayerChoice, NasBench101Cell, NasBench201Cell, Repeat
from archsmith.nn._cell import PerInputOps
from archsmith.nn._layers import MutableLayer
from archsmith.nn._mutable_module import MutableModule
from archsmith.nn._nasbench101 import _active_edges, prune, vertex_channels
from archsmith.nn._repeat import _depth_leaves, _expression_depths
from archsmith.space import (
    ArchsmithError,
    Categorical,
    CategoricalMultiple,
    Leaf,
    Mutable,
    evaluate,
    fixed_sample,
    leaves_of,
)


class ProfilerError(ArchsmithError, ValueError):
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
    """``build(values)`` for the values of ``labels``, memoised."""

    labels: tuple[str, ...]
    build: Callable[[dict[str, Any]], float]
    table: dict[tuple[Any, ...], float] = field(default_factory=dict)

    def value(self, sample: Mapping[str, Any]) -> float:
        # .get: a decision a condition leaves unused may be absent (a small NAS-Bench-101 cell's op6)
        key = tuple([hashable(sample.get(label)) for label in self.labels])
        found = self.table.get(key)
        if found is None:
            values = {label: sample[label] for label in self.labels if label in sample}
            found = self.table[key] = float(self.build(values))
        return found


@dataclass
class Group:
    """The parts built under one guard (none at the root): a constant, terms, and
    the groups nested under further decisions. The nested groups are indexed by
    their guards' labels and values, so a decision costs one look-up however many
    candidates it has."""

    guard: Guard | None = None
    constant: float = 0.0
    terms: list[Term] = field(default_factory=list)
    groups: list[Group] = field(default_factory=list)
    _index: list[tuple[tuple[str, ...], dict[tuple[Any, ...], list[Group]]]] | None = None

    def total(self, sample: Mapping[str, Any]) -> float:
        total = self.constant
        for term in self.terms:
            total += term.value(sample)
        index = self._index if self._index is not None else self._build_index()
        for labels, table in index:
            for group in table.get(tuple([hashable(sample[label]) for label in labels]), ()):
                total += group.total(sample)
        return total

    def _build_index(self) -> list[tuple[tuple[str, ...], dict[tuple[Any, ...], list[Group]]]]:
        by_labels: dict[tuple[str, ...], dict[tuple[Any, ...], list[Group]]] = {}
        for group in self.groups:
            labels, allowed = group.guard  # type: ignore[misc]
            table = by_labels.setdefault(labels, {})
            for values in allowed:
                table.setdefault(values, []).append(group)
        self._index = list(by_labels.items())
        return self._index

    def sub(self, guard: Guard) -> Group:
        """A new group nested here, counted where ``guard`` holds."""
        self.groups.append(Group(guard))
        self._index = None
        return self.groups[-1]

    def count_terms(self) -> int:
        return len(self.terms) + sum(g.count_terms() for g in self.groups)

    def all_terms(self) -> list[Term]:
        """Every term here and in the nested groups."""
        return self.terms + [t for g in self.groups for t in g.all_terms()]


def _numel(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


#: Parameter counts of torch layers by (class, resolved arguments): many layers of a
#: space, under many samples, are the same layer.
_LAYER_COUNTS: dict[Any, int] = {}


def _build_layer(layer: MutableLayer) -> Callable[[dict[str, Any]], float]:
    torch_class = layer._torch_class
    signature = inspect.signature(torch_class)
    arguments = dict(layer.init_arguments)

    def build(values: dict[str, Any]) -> float:
        resolved = evaluate(arguments, values)
        try:
            key: Any = (torch_class, hashable(list(resolved.items())))
            hash(key)
        except TypeError:  # an argument that is not hashable (a tensor): build every time
            key = None
        found = _LAYER_COUNTS.get(key) if key is not None else None
        if found is None:
            bound = inspect.BoundArguments(signature, resolved)  # type: ignore[arg-type]
            with torch.device("meta"):  # shapes only: no memory, no initialisation
                found = _numel(torch_class(*bound.args, **bound.kwargs))
            if key is not None and len(_LAYER_COUNTS) < 100_000:
                _LAYER_COUNTS[key] = found
        return found

    return build


def nb101_graph(cell: NasBench101Cell, values: Mapping[str, Any]) -> tuple[list[list[int]], list[int]] | None:
    """The pruned graph ``cell`` freezes to under ``values`` (as
    ``NasBench101Cell.create_frozen`` prunes it): its adjacency matrix and each
    interior vertex's op index; ``None`` where the sample is invalid."""
    label = cell.label
    n = values[f"{label}/num_nodes"]
    edges = _active_edges(n, {j: values[f"{label}/input{j}"] for j in range(1, n)})
    kept = prune(n, edges)
    if kept is None or len(edges) > cell.max_num_edges:
        return None
    position = {v: k for k, v in enumerate(kept)}
    matrix = [[0] * len(kept) for _ in kept]
    for i, j in edges:
        if i in position and j in position:
            matrix[position[i]][position[j]] = 1
    return matrix, [cell.names.index(values[f"{label}/op{v}"]) for v in kept[1:-1]]


def _build_nb101(cell: NasBench101Cell) -> Callable[[dict[str, Any]], float]:
    """The cell's count from its pruned graph: projections and ops, each counted
    once per width on ``meta``."""
    cands = cell.op_candidates
    counts: dict[Any, int] = {}

    def count(key: Any, factory: Callable[..., torch.nn.Module], args: tuple[Any, ...], values: dict[str, Any]) -> int:
        if key not in counts:
            with fixed_sample(values), torch.device("meta"):
                counts[key] = _numel(factory(*args))
        return counts[key]

    def build(values: dict[str, Any]) -> float:
        graph = nb101_graph(cell, values)
        if graph is None:
            return _frozen_nb101(cell, values)  # raises the cell's own error
        matrix, ops = graph
        channels = vertex_channels(cell.in_features, cell.out_features, matrix)
        total = 0
        for t in range(1, len(matrix)):
            if matrix[0][t]:
                c = channels[t]
                total += count(("projection", c), cell.projection, (cell.in_features, c), values)
        for t, op in enumerate(ops, start=1):
            c = channels[t]
            total += count((op, c), cands[op], (c,), values)
        return total

    return build


def rebuild_nb101(cell: NasBench101Cell) -> torch.nn.Module:
    """``cell`` built again from its own arguments: under ``fixed_sample`` its frozen form."""
    return NasBench101Cell(  # type: ignore[no-any-return]
        dict(zip(cell.names, cell.op_candidates)),
        cell.in_features,
        cell.out_features,
        cell.projection,
        cell.max_num_nodes,
        cell.max_num_edges,
        label=cell.label,
    )


def frozen_nb101_on_meta(cell: NasBench101Cell, values: Mapping[str, Any]) -> torch.nn.Module:
    """What ``cell`` freezes to under ``values``, built on the ``meta`` device."""
    with fixed_sample(dict(values)), torch.device("meta"):
        return rebuild_nb101(cell)


def _frozen_nb101(cell: NasBench101Cell, values: dict[str, Any]) -> int:
    return _numel(frozen_nb101_on_meta(cell, values))


def _label_set(leaves: list[Leaf]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(leaf.label for leaf in leaves))


class TermCompiler:
    """Walks a searching module tree once; ``terms`` and ``constant`` are the result."""

    def __init__(self) -> None:
        self.root = Group()
        #: the parameters counted in the root's constant (none of them under a decision)
        self.root_params: dict[int, torch.nn.Parameter] = {}
        self._seen: set[int] = set()

    def walk(self, module: torch.nn.Module, group: Group | None = None) -> None:
        group = self.root if group is None else group
        if isinstance(module, MutableLayer):
            labels = _label_set(leaves_of(module.mutable_arguments))
            self._add(group, labels, _build_layer(module))
        elif isinstance(module, LayerChoice):
            for key, candidate in zip(module.names, module.candidates):
                self.walk(candidate, group.sub(((module.label,), frozenset({(hashable(key),)}))))
        elif isinstance(module, InputChoice):
            return  # a frozen one holds no parameters
        elif isinstance(module, Repeat):
            self._walk_repeat(module, group)
        elif isinstance(module, Cell):
            self._walk_cell(module, group)
        elif isinstance(module, NasBench101Cell):
            self._add(group, _label_set(module.own_leaves()), _build_nb101(module))
        elif isinstance(module, AutoActivation | NasBench201Cell):
            self._walk_children(module, group)  # their frozen bodies keep the same tree, choices resolved
        elif isinstance(module, MutableModule):
            raise ProfilerError(
                f"{module.describe()}: the profiler does not know what the frozen form of {type(module).__name__} "
                "holds; count it by freezing the space instead"
            )
        elif not any(isinstance(m, MutableModule) for m in module.modules()):
            self._constant(module.parameters(), group)
        else:
            self._walk_children(module, group)

    def _walk_children(self, module: torch.nn.Module, group: Group) -> None:
        self._constant(module.parameters(recurse=False), group)
        for child in module.children():
            self.walk(child, group)

    def _constant(self, parameters: Any, group: Group) -> None:
        count = 0
        for p in parameters:
            if id(p) not in self._seen:  # a parameter shared by two modules counts once, as in the model
                self._seen.add(id(p))
                count += p.numel()
                if group is self.root:
                    self.root_params[id(p)] = p
        if count == 0:
            return
        group.constant += count

    def _add(self, group: Group, labels: tuple[str, ...], build: Callable[[dict[str, Any]], float]) -> None:
        group.terms.append(Term(labels, build))

    def _walk_repeat(self, repeat: Repeat, group: Group) -> None:
        depth = repeat.depth_choice
        if isinstance(depth, Leaf):
            label = depth.label
            for i, block in enumerate(repeat.blocks):
                allowed = frozenset((d,) for d in repeat.depths if d > i)
                self.walk(block, group.sub(((label,), allowed)))
        elif isinstance(depth, Mutable):
            depths = _expression_depths(depth, f"Repeat {repeat.label!r}")
            labels = tuple(leaf.label for leaf in _depth_leaves(depth))
            for i, block in enumerate(repeat.blocks):
                allowed = frozenset(tuple(hashable(v) for v in combo) for combo, d in depths.items() if d > i)
                self.walk(block, group.sub((labels, allowed)))
        else:
            for block in repeat.blocks:
                self.walk(block, group)

    def _walk_cell(self, cell: Cell, group: Group) -> None:
        for name, child in cell.named_children():
            if name not in ("ops", "inputs"):
                self.walk(child, group)  # preprocessor, postprocessor
        self._constant(cell.parameters(recurse=False), group)
        assert cell.inputs is not None
        for ops, inputs in zip(cell.ops, cell.inputs):
            for op, inp in zip(ops.children(), inputs.children()):
                if isinstance(op, PerInputOps):
                    label: str = inp.label  # type: ignore[union-attr,assignment]
                    for k, choice in enumerate(op):
                        self.walk(choice, group.sub(((label,), frozenset({(k,)}))))
                else:
                    self.walk(op, group)


#: Most value combinations a term is tabulated for when the profiler is built.
TABLE_LIMIT = 64


def tabulate(root: Group, decisions: Mapping[str, Any], limit: int = TABLE_LIMIT) -> None:
    """Fill each term's table for every combination of its labels' values, where
    they are categorical and at most ``limit`` combinations: then no sample, seen
    before or not, builds anything for it."""
    for term in root.all_terms():
        choices = []
        for label in term.labels:
            leaf = decisions.get(label)
            if not isinstance(leaf, Categorical) or isinstance(leaf, CategoricalMultiple):
                break
            choices.append(list(leaf.values))
        else:
            if not choices or math.prod(len(values) for values in choices) > limit:
                continue
            for combination in itertools.product(*choices):
                try:
                    term.value(dict(zip(term.labels, combination)))
                except Exception:  # a combination the space never samples (a condition, a constraint): left out
                    continue


def compile_terms(space: torch.nn.Module) -> Group:
    """The parameter count of a searching space, as a tree of guarded groups."""
    compiler = TermCompiler()
    compiler.walk(space)
    return compiler.root

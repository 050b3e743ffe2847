"""``NasBench101Cell``: the cell of NAS-Bench-101 (Ying et al., ICML 2019).

A DAG of up to ``max_num_nodes`` vertices (input, intermediates with a chosen op,
output) with at most ``max_num_edges`` edges. Decisions, under ``<label>/``:
``num_nodes``; ``op<j>`` for each intermediate vertex; ``input<j>`` (the set of
earlier vertices feeding vertex ``j``). The edge limit and "the output is reachable
from the input" are constraints of the space, so random and grid never break them.
Frozen, the graph is pruned and channels are assigned as in the original code.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import torch

from archsmith.space import Categorical, CategoricalMultiple, Condition, Constraint, Leaf, SpaceError, auto_label

from ._mutable_module import split_candidates
from ._primitive import Primitive


def _active_edges(n: int, inputs: Mapping[int, Sequence[int]]) -> list[tuple[int, int]]:
    return [(i, j) for j in range(1, n) for i in inputs[j]]


def prune(n: int, edges: list[tuple[int, int]]) -> list[int] | None:
    """Vertices on some input -> output path (sorted), or ``None`` if there is none."""
    forward = {0}
    for i, j in sorted(edges, key=lambda e: e[1]):
        if i in forward:
            forward.add(j)
    backward = {n - 1}
    for i, j in sorted(edges, key=lambda e: -e[0]):
        if j in backward:
            backward.add(i)
    if n - 1 not in forward:
        return None
    return sorted(forward & backward)


@functools.cache
def count_graphs(n: int, max_edges: int) -> int:
    """How many choices of the inputs of vertices 1..n-1 give at most ``max_edges``
    edges and an output reachable from the input (a DP over reachable sets)."""
    states: dict[tuple[int, int], int] = {(0, 1): 1}  # (edges used, reachable mask) -> count
    for j in range(1, n):
        nxt: dict[tuple[int, int], int] = {}
        for (used, mask), ways in states.items():
            for subset in range(2**j):
                edges = used + bin(subset).count("1")
                if edges > max_edges:
                    continue
                key = (edges, mask | (1 << j) if subset & mask else mask)
                nxt[key] = nxt.get(key, 0) + ways
        states = nxt
    return sum(ways for (_, mask), ways in states.items() if mask >> (n - 1) & 1)


def vertex_channels(in_features: int, out_features: int, matrix: list[list[int]]) -> list[int]:
    """Channels per vertex, as NAS-Bench-101's ``compute_vertex_channels``."""
    n = len(matrix)
    channels = [0] * n
    channels[0], channels[n - 1] = in_features, out_features
    if n == 2:
        return channels
    in_degree_out = sum(matrix[v][n - 1] for v in range(1, n))
    interior, correction = divmod(out_features, in_degree_out)
    for v in range(1, n - 1):
        if matrix[v][n - 1]:
            channels[v] = interior + (1 if correction > 0 else 0)
            correction -= 1 if correction > 0 else 0
    for v in range(n - 3, 0, -1):
        if not matrix[v][n - 1]:
            for dst in range(v + 1, n - 1):
                if matrix[v][dst]:
                    channels[v] = max(channels[v], channels[dst])
    return channels


class NasBench101Body(torch.nn.Module):
    """A frozen NB101 cell: a pruned DAG with its ops and projections."""

    def __init__(
        self,
        ops: list[Callable[[int], torch.nn.Module]],
        matrix: list[list[int]],
        in_features: int,
        out_features: int,
        projection: Callable[[int, int], torch.nn.Module],
    ) -> None:
        super().__init__()
        n = len(matrix)
        self.matrix = matrix
        self.channels = vertex_channels(in_features, out_features, matrix)
        self.projections = torch.nn.ModuleDict(
            {str(t): projection(in_features, self.channels[t]) for t in range(1, n) if matrix[0][t]}
        )
        self.ops = torch.nn.ModuleDict({str(t): ops[t - 1](self.channels[t]) for t in range(1, n - 1)})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = len(self.matrix)
        tensors = [x]
        final = []
        for t in range(1, n - 1):
            parts = [tensors[s][:, : self.channels[t]] for s in range(1, t) if self.matrix[s][t]]
            if self.matrix[0][t]:
                parts.append(self.projections[str(t)](x))
            total = parts[0]
            for p in parts[1:]:
                total = total + p
            tensors.append(self.ops[str(t)](total))
            if self.matrix[t][n - 1]:
                final.append(tensors[t])
        if not final:
            return self.projections[str(n - 1)](x)
        out = final[0] if len(final) == 1 else torch.cat(final, dim=1)
        if self.matrix[0][n - 1]:
            out = out + self.projections[str(n - 1)](x)
        return out


def _check_args(
    op_candidates: Any,
    in_features: Any,
    out_features: Any,
    projection: Any,
    max_num_nodes: Any,
    max_num_edges: Any,
    label: str,
) -> tuple[list[Any], list[Any]]:
    where = f"NasBench101Cell {label!r}"
    keys, cands = split_candidates(op_candidates, where, "factories f(num_features) -> module")
    names = keys if keys is not None else list(range(len(cands)))
    if not all(callable(c) and not isinstance(c, torch.nn.Module) for c in cands):
        raise SpaceError(f"{where}: op_candidates must be factories f(num_features) -> module, not modules")
    if not callable(projection):
        raise SpaceError(f"{where}: projection must be a factory f(in_features, out_features) -> module")
    for name, value, low in (
        ("in_features", in_features, 1),
        ("out_features", out_features, 1),
        ("max_num_nodes", max_num_nodes, 2),
        ("max_num_edges", max_num_edges, 1),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise SpaceError(f"{where}: {name} must be an integer >= {low}, got {value!r}")
    return names, cands


class NasBench101Cell(Primitive):
    """NAS-Bench-101 cell (see the module docstring). ``op_candidates`` are
    factories ``f(num_features)``; ``projection`` is ``f(in, out)`` (a 1x1 conv in
    the original); both are called only when the cell is frozen."""

    kind: ClassVar[str] = "nb101_cell"

    @staticmethod
    def _leaves(names: list[Any], max_num_nodes: int, label: str, upto: int | None = None) -> dict[str, Any]:
        """Make (or, frozen, resolve) the decisions; ``upto`` limits them to the
        vertices a frozen cell with that many nodes uses."""
        n = max_num_nodes if upto is None else upto
        leaves: dict[str, Any] = {}
        if upto is None:
            leaves["num_nodes"] = Categorical(
                list(range(2, max_num_nodes + 1)), label=f"{label}/num_nodes", default=max_num_nodes
            )
        for j in range(1, n - 1):
            leaves[f"op{j}"] = Categorical(names, label=f"{label}/op{j}")
        for j in range(1, n):
            leaves[f"input{j}"] = CategoricalMultiple(list(range(j)), label=f"{label}/input{j}", default=[j - 1])
        return leaves

    @classmethod
    def create_frozen(
        cls,
        op_candidates: Any,
        in_features: int,
        out_features: int,
        projection: Callable[[int, int], torch.nn.Module],
        max_num_nodes: int = 7,
        max_num_edges: int = 9,
        *,
        label: str | None = None,
    ) -> NasBench101Body:
        label = auto_label(label, cls.kind)
        names, cands = _check_args(
            op_candidates, in_features, out_features, projection, max_num_nodes, max_num_edges, label
        )
        n: Any = Categorical(list(range(2, max_num_nodes + 1)), label=f"{label}/num_nodes", default=max_num_nodes)
        chosen = cls._leaves(names, max_num_nodes, label, upto=n)
        edges = _active_edges(n, {j: chosen[f"input{j}"] for j in range(1, n)})
        if len(edges) > max_num_edges:
            raise SpaceError(
                f"NasBench101Cell {label!r}: the sample has {len(edges)} edges, more than max_num_edges={max_num_edges}"
            )
        kept = prune(n, edges)
        if kept is None:
            raise SpaceError(f"NasBench101Cell {label!r}: in the sample the output is not reachable from the input")
        position = {v: k for k, v in enumerate(kept)}
        matrix = [[0] * len(kept) for _ in kept]
        for i, j in edges:
            if i in position and j in position:
                matrix[position[i]][position[j]] = 1
        ops = [cands[names.index(chosen[f"op{v}"])] for v in kept[1:-1]]
        return NasBench101Body(ops, matrix, in_features, out_features, projection)

    def __init__(
        self,
        op_candidates: Any,
        in_features: int,
        out_features: int,
        projection: Callable[[int, int], torch.nn.Module],
        max_num_nodes: int = 7,
        max_num_edges: int = 9,
        *,
        label: str | None = None,
    ) -> None:
        super().__init__()
        self.label = auto_label(label, self.kind)
        self.names, self.op_candidates = _check_args(
            op_candidates, in_features, out_features, projection, max_num_nodes, max_num_edges, self.label
        )
        self.in_features, self.out_features, self.projection = in_features, out_features, projection
        self.max_num_nodes, self.max_num_edges = max_num_nodes, max_num_edges
        self.decisions: dict[str, Leaf] = self._leaves(self.names, max_num_nodes, self.label)

    def own_leaves(self) -> list[Leaf]:
        return list(self.decisions.values())

    def own_conditions(self) -> list[Condition]:
        # A cell of n nodes uses the ops of vertices 1..n-2 and the inputs of vertices 1..n-1.
        nodes = f"{self.label}/num_nodes"
        counts = list(range(2, self.max_num_nodes + 1))
        ops = [
            Condition(f"{self.label}/op{j}", nodes, [n for n in counts if j <= n - 2])
            for j in range(1, self.max_num_nodes - 1)
        ]
        inputs = [
            Condition(f"{self.label}/input{j}", nodes, [n for n in counts if j <= n - 1])
            for j in range(1, self.max_num_nodes)
        ]
        return ops + inputs

    def own_constraints(self) -> list[Constraint]:
        label, limit, max_nodes, n_ops = self.label, self.max_num_edges, self.max_num_nodes, len(self.names)

        def valid(sample: Mapping[str, Any]) -> bool:
            n = sample[f"{label}/num_nodes"]
            edges = _active_edges(n, {j: sample[f"{label}/input{j}"] for j in range(1, n)})
            return len(edges) <= limit and prune(n, edges) is not None

        def count(leaves: Mapping[str, Any]) -> int:
            # architectures: valid graphs of n nodes, times the ops of their n - 2 inner vertices
            return sum(count_graphs(n, limit) * n_ops ** (n - 2) for n in leaves[f"{label}/num_nodes"].values)

        # The ops are listed although the predicate reads none: the counter counts them too.
        labels = (
            [f"{label}/num_nodes"]
            + [f"{label}/op{j}" for j in range(1, max_nodes - 1)]
            + [f"{label}/input{j}" for j in range(1, max_nodes)]
        )
        name = f"{label}: at most {limit} edges and the output reachable from the input"
        return [Constraint(valid, name=name, labels=labels, counter=count)]

    def describe(self) -> str:
        return f"NasBench101Cell({self.label!r})"

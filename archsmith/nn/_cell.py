"""``Cell``: the DARTS/ENAS-style cell — nodes that each sum ``num_ops_per_node``
ops applied to chosen earlier tensors."""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable
from typing import Any, ClassVar

import torch

from archsmith.space import SpaceError, auto_label, fixed_context
from archsmith.space._expression import Call

from ._choice import InputChoice, LayerChoice, _input_leaf
from ._mutable_module import split_candidates, wants_arguments
from ._primitive import Primitive

MERGE_OPS = ("all", "loose_end")


def _count_loose_ends(first: int, num_nodes: int, used: frozenset[int], *chosen: Any) -> int:
    read = set(used)
    for value in chosen:
        read.update(value if isinstance(value, (list, tuple)) else [value])
    return sum(1 for n in range(first, first + num_nodes) if n not in read)


def _op_factory(candidate: Any, wants_indices: bool, node: int, op: int, input_index: int | None) -> Any:
    if isinstance(candidate, torch.nn.Module):
        return lambda: copy.deepcopy(candidate)
    if wants_indices:
        return functools.partial(candidate, node, op, input_index)
    return candidate


def _wants_indices(candidates: list[Any]) -> list[bool]:
    # Once per cell, not per (node, slot, input): inspect.signature dominated freezing a cell.
    return [not isinstance(c, torch.nn.Module) and callable(c) and wants_arguments(c) for c in candidates]


class PerInputOps(torch.nn.ModuleList):
    """The op of one (node, slot) of a searching cell whose factories take the
    input index: one ``LayerChoice`` per candidate input, all sharing one label,
    since each input may need a different op (stride 2 on a reduction cell's
    inputs). The cell's input choice says which one runs (``apply_each``)."""

    #: Read by ``CellBody.forward`` (also on the supernet's replacement of this).
    per_input: ClassVar[bool] = True

    def __init__(self, choices: list[Any], input_label: str) -> None:
        super().__init__(choices)
        self.input_label = input_label

    def forward(self, inp: Any, states: list[Any]) -> Any:  # type: ignore[override]
        apply_each = getattr(inp, "apply_each", None)
        if apply_each is None:
            return inp(states)  # a searching InputChoice: raises NotFrozenError
        return apply_each(states, list(self))


def run_frozen_nodes(ops: torch.nn.ModuleList, input_indices: list[list[int]], states: list[Any]) -> None:
    """Append to ``states`` each node of a frozen cell: the sum of its ops, op ``j`` of
    node ``n`` applied to ``states[input_indices[n][j]]``."""
    for node_ops, indices in zip(ops, input_indices):
        node = None
        for op, k in zip(node_ops.children(), indices):  # type: ignore[union-attr]
            out = op(states[k])
            node = out if node is None else node + out
        states.append(node)


class CellBody(torch.nn.Module):
    """The computation of a cell; a frozen ``Cell`` is one of these."""

    def __init__(
        self,
        op_candidates: Any,
        num_nodes: int,
        num_ops_per_node: int = 1,
        num_predecessors: int = 1,
        merge_op: str = "all",
        preprocessor: Callable[..., Any] | None = None,
        postprocessor: Callable[..., Any] | None = None,
        concat_dim: int = 1,
        *,
        label: str,
    ) -> None:
        super().__init__()
        for name, value in (
            ("num_nodes", num_nodes),
            ("num_ops_per_node", num_ops_per_node),
            ("num_predecessors", num_predecessors),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise SpaceError(f"Cell {label!r}: {name} must be a positive integer, got {value!r}")
        if merge_op not in MERGE_OPS:
            raise SpaceError(f"Cell {label!r}: unknown merge_op {merge_op!r}; use one of {list(MERGE_OPS)}")
        names, cands = split_candidates(op_candidates, f"Cell {label!r}", "modules or factories")
        self.label = label
        self.num_nodes, self.num_ops_per_node, self.num_predecessors = num_nodes, num_ops_per_node, num_predecessors
        self.merge_op, self.concat_dim = merge_op, concat_dim
        self.preprocessor = preprocessor
        self.postprocessor = postprocessor
        self.ops: torch.nn.ModuleList = torch.nn.ModuleList()
        frozen = fixed_context() is not None
        #: searching: per node, its ``InputChoice``s; frozen: ``None`` (see ``input_indices``)
        self.inputs: torch.nn.ModuleList | None = None if frozen else torch.nn.ModuleList()
        #: frozen: per node, the index of the state each op reads; searching: empty
        self.input_indices: list[list[int]] = []
        wants = _wants_indices(cands)
        per_input = any(wants)
        for i in range(num_nodes):
            node = num_predecessors + i
            ops, inputs, indices = torch.nn.ModuleList(), torch.nn.ModuleList(), []
            for j in range(num_ops_per_node):
                input_label = f"{label}/input_{node}_{j}"
                op_label = f"{label}/op_{node}_{j}"
                if frozen:
                    # The sample's index, without a module per slot (a frozen cell only reads it).
                    chosen = int(_input_leaf(node, 1, input_label))
                    indices.append(chosen)
                    ops.append(self._op_choice(names, cands, wants, node, j, chosen, op_label))
                    continue
                inp = InputChoice(node, 1, "sum", label=input_label)
                if per_input:
                    # Searching: every input gets its own op (shapes may differ per input).
                    choices = [self._op_choice(names, cands, wants, node, j, k, op_label) for k in range(node)]
                    ops.append(PerInputOps(choices, inp.label))
                else:
                    ops.append(self._op_choice(names, cands, wants, node, j, None, op_label))
                inputs.append(inp)
            self.ops.append(ops)
            if self.inputs is None:
                self.input_indices.append(indices)
            else:
                self.inputs.append(inputs)
        self.output_node_indices = self._output_nodes()

    @staticmethod
    def _op_choice(
        names: list[Any] | None, cands: list[Any], wants: list[bool], node: int, j: int, k: int | None, label: str
    ) -> Any:
        factories = [_op_factory(c, w, node, j, k) for c, w in zip(cands, wants)]
        return LayerChoice(dict(zip(names, factories)) if names else factories, label=label)

    @property
    def num_output_nodes(self) -> Any:
        """How many nodes the output concatenates: an int where that is decided
        (``merge_op='all'``, a frozen cell), else an expression over the cell's input
        choices, so that a width which follows it (the next cell's input convs) is a
        choice too, and its weights are sliced per sample in one-shot supernets.

        >>> from archsmith import nn
        >>> cell = nn.Cell([torch.nn.Identity], 2, num_predecessors=1, merge_op="loose_end", label="c")
        >>> cell.num_output_nodes.evaluate({"c/input_1_0": 0, "c/input_2_0": 1})
        1
        """
        if self.merge_op == "all" or self.inputs is None:
            return len(self.output_node_indices)
        choices = [inp.choice for inp in self.inputs.modules() if isinstance(inp, InputChoice)]
        count = functools.partial(_count_loose_ends, self.num_predecessors, self.num_nodes, frozenset())
        # The last node is never read, so 1..num_nodes: a bound, as 10+ choices are too many to enumerate.
        return Call(count, "loose_ends", tuple(choices), values=range(1, self.num_nodes + 1))

    def _output_nodes(self) -> list[int]:
        nodes = list(range(self.num_predecessors, self.num_predecessors + self.num_nodes))
        if self.merge_op == "all" or self.inputs is not None:
            return nodes  # a searching cell keeps every node (undecided)
        used = {k for indices in self.input_indices for k in indices}
        return [n for n in nodes if n not in used]

    def forward(self, *inputs: Any) -> Any:
        if len(inputs) == 1 and isinstance(inputs[0], (list, tuple)):
            inputs = tuple(inputs[0])
        states = list(self.preprocessor(list(inputs)) if self.preprocessor is not None else inputs)
        if len(states) != self.num_predecessors:
            raise ValueError(f"Cell {self.label!r} expects {self.num_predecessors} inputs, got {len(states)}")
        if self.inputs is None:  # frozen: each op reads one state
            run_frozen_nodes(self.ops, self.input_indices, states)
        else:
            for ops, inputs_ in zip(self.ops, self.inputs):
                node = None
                for op, inp in zip(ops.children(), inputs_.children()):
                    out = op(inp, states) if getattr(op, "per_input", False) else op(inp(states))
                    node = out if node is None else node + out
                states.append(node)
        this_cell = torch.cat([states[k] for k in self.output_node_indices], self.concat_dim)
        if self.postprocessor is not None:
            return self.postprocessor(this_cell, list(inputs))
        return this_cell


class Cell(Primitive, CellBody):
    """A cell of ``num_nodes`` nodes over ``num_predecessors`` inputs (NNI's ``Cell``).

    Node ``n`` sums ``num_ops_per_node`` ops; op ``j`` is chosen among
    ``op_candidates`` (label ``<label>/op_<n>_<j>``) and applied to one earlier
    tensor (label ``<label>/input_<n>_<j>``). A factory candidate is called as
    ``f(node_index, op_index, input_index)`` if it takes arguments, else as ``f()``;
    a searching cell then builds one op per candidate input (all under the one op
    label), so an op may depend on its input (stride 2 on a reduction cell's inputs
    0 and 1), and a frozen cell builds only the chosen input's. The output concatenates every
    node (``merge_op='all'``) or the nodes no other node reads (``'loose_end'``)
    along ``concat_dim``; ``postprocessor(this_cell, inputs)`` may transform it.
    """

    kind: ClassVar[str] = "cell"

    @classmethod
    def create_frozen(cls, *args: Any, label: str | None = None, **kwargs: Any) -> CellBody:
        return CellBody(*args, label=auto_label(label, cls.kind), **kwargs)

    def __init__(self, *args: Any, label: str | None = None, **kwargs: Any) -> None:
        CellBody.__init__(self, *args, label=auto_label(label, self.kind), **kwargs)

    def forward(self, *inputs: Any) -> Any:
        return CellBody.forward(self, *inputs)

    def describe(self) -> str:
        return f"Cell({self.label!r}, num_nodes={self.num_nodes})"

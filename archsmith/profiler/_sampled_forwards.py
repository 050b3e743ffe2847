"""What a ``Repeat`` and a ``Cell`` compute in their frozen form for a sample, as
forwards over the searching modules: shared by the profilers that run a sample's
network without building it (FLOPs on ``meta``, latency on the device)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch

from archsmith.nn import Cell, Repeat
from archsmith.nn._cell import PerInputOps
from archsmith.space import evaluate

#: The current sample, read at each call.
SampleOf = Callable[[], Mapping[str, Any]]


def repeat_forward(repeat: Repeat, sample: SampleOf) -> Callable[..., Any]:
    """The chosen depth's blocks in turn."""

    def forward(x: Any) -> Any:
        for block in list(repeat.blocks)[: evaluate(repeat.depth_choice, sample())]:
            x = block(x)
        return x

    return forward


def cell_forward(cell: Cell, sample: SampleOf) -> Callable[..., Any]:
    """Each node the sum of its ops on the chosen inputs, the cell's output the
    concatenation of its output nodes (the loose ends where ``merge_op`` says so)."""
    assert cell.inputs is not None
    slots: list[list[tuple[torch.nn.Module, str]]] = [
        [(op, str(inp.label)) for op, inp in zip(ops.children(), inputs.children())]  # type: ignore[union-attr]
        for ops, inputs in zip(cell.ops, cell.inputs)
    ]
    nodes = list(range(cell.num_predecessors, cell.num_predecessors + cell.num_nodes))

    def forward(*inputs: Any) -> Any:
        if len(inputs) == 1 and isinstance(inputs[0], list | tuple):
            inputs = tuple(inputs[0])
        chosen = sample()
        states = list(cell.preprocessor(list(inputs)) if cell.preprocessor is not None else inputs)
        used: set[int] = set()
        for node_slots in slots:
            node = None
            for op, label in node_slots:
                value = chosen[label]  # an index, or NNI's one-element list
                k = int(value[0] if isinstance(value, list | tuple) else value)
                used.add(k)
                out = op[k](states[k]) if isinstance(op, PerInputOps) else op(states[k])
                node = out if node is None else node + out  # as the frozen cell sums
            states.append(node)
        outputs = nodes if cell.merge_op == "all" else [n for n in nodes if n not in used]
        this_cell = torch.cat([states[k] for k in outputs], cell.concat_dim)
        if cell.postprocessor is not None:
            return cell.postprocessor(this_cell, list(inputs))
        return this_cell

    return forward

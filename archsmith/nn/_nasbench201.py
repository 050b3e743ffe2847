"""``NasBench201Cell``: the cell of NAS-Bench-201 (Dong & Yang, ICLR 2020).

Node ``j`` (1 .. num_tensors-1) sums one chosen op per earlier node ``i``; the
edge's label is ``<label>/<j>_<i>``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import torch

from archsmith.space import SpaceError, auto_label

from ._choice import LayerChoice
from ._mutable_module import split_candidates
from ._primitive import Primitive

OpFactory = Callable[[int, int], torch.nn.Module]


class NasBench201Body(torch.nn.Module):
    """The computation of an NB201 cell; a frozen ``NasBench201Cell`` is one."""

    def __init__(
        self,
        op_candidates: Mapping[str, OpFactory] | Sequence[OpFactory],
        in_features: int,
        out_features: int,
        num_tensors: int = 4,
        *,
        label: str,
    ) -> None:
        super().__init__()
        names, cands = split_candidates(
            op_candidates, f"NasBench201Cell {label!r}", "factories (C_in, C_out) -> module"
        )
        if not all(callable(c) and not isinstance(c, torch.nn.Module) for c in cands):
            raise SpaceError(f"NasBench201Cell {label!r}: each op candidate must be a factory (C_in, C_out) -> module")
        if isinstance(num_tensors, bool) or not isinstance(num_tensors, int) or num_tensors < 2:
            raise SpaceError(f"NasBench201Cell {label!r}: num_tensors must be an integer >= 2, got {num_tensors!r}")
        self.label, self.num_tensors = label, num_tensors
        self.in_features, self.out_features = in_features, out_features
        self.layers: torch.nn.ModuleList = torch.nn.ModuleList()
        for j in range(1, num_tensors):
            edges = torch.nn.ModuleList()
            for i in range(j):
                c_in = in_features if i == 0 else out_features
                factories = [functools.partial(c, c_in, out_features) for c in cands]
                edges.append(LayerChoice(dict(zip(names, factories)) if names else factories, label=f"{label}/{j}_{i}"))
            self.layers.append(edges)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tensors = [x]
        for edges in self.layers:
            node: Any = None
            edge: Any
            for i, edge in enumerate(edges):  # type: ignore[arg-type]
                out = edge(tensors[i])
                node = out if node is None else node + out
            tensors.append(node)
        return tensors[-1]


class NasBench201Cell(Primitive, NasBench201Body):
    """NAS-Bench-201 cell. ``op_candidates`` maps names (or indices) to factories
    ``f(C_in, C_out)``; edges from the cell input use ``in_features``."""

    kind: ClassVar[str] = "nb201_cell"

    @classmethod
    def create_frozen(cls, *args: Any, label: str | None = None, **kwargs: Any) -> NasBench201Body:
        return NasBench201Body(*args, label=auto_label(label, cls.kind), **kwargs)

    def __init__(self, *args: Any, label: str | None = None, **kwargs: Any) -> None:
        NasBench201Body.__init__(self, *args, label=auto_label(label, self.kind), **kwargs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return NasBench201Body.forward(self, x)

    def describe(self) -> str:
        return f"NasBench201Cell({self.label!r})"

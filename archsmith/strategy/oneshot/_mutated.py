"""The sampling supernet of a mutated space (``archsmith.nn.mutate``).

Mutators rewrite the graph per architecture, so no single module holds every path;
one path runs at a time instead (the ``sampling`` family only). Each architecture's
graph is built by freezing it, then every module holding weights is swapped for the
shared one of its place: the same module path, type and weight shapes. A candidate
a decision puts at a place thus keeps its weights across every architecture that
chooses it, as a ``LayerChoice`` candidate does. The architectures the space's
exploration built are built at once, so every candidate's weights exist (and reach
the optimizer) before training; a place only an unexplored combination creates gets
its module when first sampled, too late for the optimizer (said in docs/mutators.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.fx

from archsmith.nn import MutatedSpace

from ._supernet import Decisions, ExportFn, MixedOp, register_mixed_op


def _own_state(module: torch.nn.Module) -> tuple[tuple[str, tuple[int, ...]], ...]:
    tensors = [*module.named_parameters(recurse=False), *module.named_buffers(recurse=False)]
    return tuple((name, tuple(t.shape)) for name, t in tensors if t is not None)


@register_mixed_op("sampling", MutatedSpace)
class SampledMutatedSpace(MixedOp):
    """The whole mutated model as one op: runs the graph of ``decisions.sample``."""

    def __init__(self, space: MutatedSpace, decisions: Decisions, replace: Any = None) -> None:
        super().__init__(decisions)
        self._space = [space]  # not a child: its base model's weights are not the supernet's
        #: the shared modules, one per place (path, type, weight shapes)
        self.shared = torch.nn.ModuleDict()
        self._places: dict[tuple[Any, ...], str] = {}
        self._graphs: dict[str, torch.fx.GraphModule] = {}
        for sample in space.explored_samples():
            self.graph(sample)

    @property
    def space(self) -> MutatedSpace:
        return self._space[0]

    def labels(self) -> list[str]:
        return list(self.space.search_space)

    def graph(self, sample: Mapping[str, Any]) -> torch.fx.GraphModule:
        """The graph of ``sample``'s architecture on the shared modules (built once)."""
        key = self.space.search_space.architecture_key(sample)
        cached = self._graphs.get(key)
        if cached is not None:
            return cached
        graph = self.space.freeze(sample)
        assert isinstance(graph, torch.fx.GraphModule)
        device = next((p.device for p in self.shared.parameters()), None)
        for path, module in list(graph.named_modules()):
            state = _own_state(module)
            if not path or not state:
                continue
            place = (path, type(module).__qualname__, state)
            name = self._places.get(place)
            if name is None:  # a candidate first met here: its weights become the shared ones
                name = self._places[place] = str(len(self._places))
                self.shared[name] = module if device is None else module.to(device)
            parent, _, child = path.rpartition(".")
            setattr(graph.get_submodule(parent) if parent else graph, child, self.shared[name])
        self._graphs[key] = graph
        return graph

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        graph = self.graph(self.decisions.sample)
        graph.train(self.training)  # its weightless modules (dropout) follow the supernet's mode
        return graph(*args, **kwargs)

    def export_state(self, sample: Mapping[str, Any], prefix: str, recurse: ExportFn) -> dict[str, torch.Tensor]:
        return {prefix + k: v.detach() for k, v in self.graph(sample).state_dict().items()}

    def freeze(self, sample: Mapping[str, Any]) -> torch.nn.Module:
        """The plain model of ``sample`` (its own copy of the weights comes after)."""
        return self.space.freeze(sample)

"""Proxyless's cost penalty: the expected cost of the architecture under the
softmax of the architecture parameters, differentiable in them.

The cost is split into *terms*, one per part of the supernet whose use or size
depends on the architecture:

- each ``LayerChoice`` candidate (counted when its option is chosen);
- each layer with choices in its arguments (its cost at each combination of its
  labels' values: ``sum over values of p(value) * cost at that value``);
- each block of a ``Repeat`` that a depth choice may drop (counted when the depth,
  which may read several choices, exceeds its index).

A term inside a candidate or a droppable block is counted under that condition
too, and a candidate's or block's own cost leaves out the terms nested in it, so
no part is counted twice. Labels are independent under the softmax, so the
expectation of a term is its costs and conditions summed against the product of
its labels' probabilities (one ``einsum``).
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Union

import torch

from ._proxyless_gates import gates_of
from ._proxyless_ops import GatedLayer, GatedLayerChoice, GatedRepeat, fitted_inputs
from ._supernet import Decisions

#: ``"params"``, ``"flops"`` or ``cost(module) -> float``.
Cost = Union[str, Callable[[torch.nn.Module], float]]

#: Labels and a 0/1 mask over their options' combinations.
Condition = tuple[tuple[str, ...], torch.Tensor]


@dataclass
class CostTerm:
    """A part of the cost: ``costs[i_1, ..., i_n]`` when each of ``labels`` takes its
    option ``i_k``, counted where every condition holds: a condition is a tuple of
    labels and a 0/1 mask over their options (the part is used where the mask is 1).
    ``owner`` and ``part`` say where it is measured (``part``: the candidate or
    block index, ``None`` for a layer)."""

    owner: torch.nn.Module
    part: int | None
    labels: list[str]
    conditions: list[Condition]
    costs: torch.Tensor | None = field(default=None)


def _is_unit(module: torch.nn.Module) -> bool:
    """Whether ``module`` is an op with cost terms of its own."""
    return isinstance(module, (GatedLayerChoice, GatedLayer)) or (
        isinstance(module, GatedRepeat) and bool(module.labels())
    )


def _units(module: torch.nn.Module) -> Iterator[tuple[torch.nn.Module, str, torch.nn.Module]]:
    """``(parent, name, op)`` of the outermost ops under ``module`` that have cost
    terms of their own."""
    for name, child in module.named_children():
        if _is_unit(child):
            yield module, name, child
        else:
            yield from _units(child)


@contextlib.contextmanager
def _without_units(module: torch.nn.Module) -> Iterator[torch.nn.Module]:
    """``module`` with its nested cost-bearing ops swapped for identities (its own part)."""
    if _is_unit(module):  # all of it is counted by its own terms
        yield torch.nn.Identity()
        return
    swapped = list(_units(module))
    for parent, name, _ in swapped:
        parent._modules[name] = torch.nn.Identity()
    try:
        yield module
    finally:
        for parent, name, op in swapped:
            parent._modules[name] = op


def _parameter_count(module: torch.nn.Module) -> float:
    return float(sum(p.numel() for p in module.parameters()))


class ExpectedCost:
    """The cost terms of one supernet and their expectation.

    ``cost="params"`` or a callable are measured at once: the callable is called
    on each candidate and droppable block (its nested choices swapped for
    ``Identity``) and on the plain torch layer of each configuration of a layer.
    ``"flops"`` are measured on the inputs of each op's first forward, before the
    forward itself (nested choices at their active options, no autograd).
    """

    def __init__(self, model: torch.nn.Module, decisions: Decisions, cost: Cost) -> None:
        self.decisions, self.cost = decisions, cost
        self.terms: list[CostTerm] = []
        self._collect(model, [])
        self._measuring = False
        if cost == "flops":
            for owner in dict.fromkeys(term.owner for term in self.terms):
                self._measure_on_first_call(owner)
        else:
            for term in self.terms:
                term.costs = self._static(term)

    # The terms ---------------------------------------------------------------------------
    def _collect(self, module: torch.nn.Module, conditions: list[Condition]) -> None:
        if isinstance(module, GatedLayerChoice):
            for j, candidate in enumerate(module.candidates):
                mask = torch.zeros(len(module.candidates), dtype=torch.float64)
                mask[j] = 1
                inner = [*conditions, ((module.label,), mask)]
                self.terms.append(CostTerm(module, j, [], inner))
                self._collect(candidate, inner)
        elif isinstance(module, GatedLayer):
            self.terms.append(CostTerm(module, None, module.labels(), conditions))
        elif isinstance(module, GatedRepeat) and module.labels():
            labels = tuple(module.labels())
            combinations = self._combinations(list(labels))
            shape = [len(self.decisions.options(label)) for label in labels]
            for i, block in enumerate(module.blocks):
                used = [float(module.depth_at(dict(zip(labels, c))) > i) for c in combinations]
                mask = torch.tensor(used, dtype=torch.float64).reshape(shape)
                inner = conditions if bool(mask.all()) else [*conditions, (labels, mask)]
                if inner:  # not a part every architecture has
                    self.terms.append(CostTerm(module, i, [], inner))
                self._collect(block, inner)
        else:
            for child in module.children():
                self._collect(child, conditions)

    def _part(self, term: CostTerm) -> torch.nn.Module:
        owner = term.owner
        assert term.part is not None and isinstance(owner, (GatedLayerChoice, GatedRepeat))
        parts = owner.candidates if isinstance(owner, GatedLayerChoice) else owner.blocks
        return parts[term.part]

    def _combinations(self, labels: list[str]) -> list[tuple[int, ...]]:
        return list(itertools.product(*(range(len(self.decisions.options(label))) for label in labels)))

    def _shaped(self, term: CostTerm, values: list[float]) -> torch.Tensor:
        shape = [len(self.decisions.options(label)) for label in term.labels]
        return torch.tensor(values, dtype=torch.float64).reshape(shape)

    # Measuring ---------------------------------------------------------------------------
    def _static(self, term: CostTerm) -> torch.Tensor:
        if isinstance(term.owner, GatedLayer):
            layer = term.owner
            values = []
            names = {name for name, _ in layer.layer.named_parameters()}
            for combination in self._combinations(term.labels):
                arguments = layer.configuration(dict(zip(term.labels, combination)))
                if self.cost == "params":
                    state = layer.layer.sliced_state(arguments)
                    values.append(float(sum(t.numel() for k, t in state.items() if k in names and t is not None)))
                else:
                    assert callable(self.cost)
                    values.append(float(self.cost(layer.layer.export_layer(arguments))))
            return self._shaped(term, values)
        measure = _parameter_count if self.cost == "params" else self.cost
        assert callable(measure)
        with _without_units(self._part(term)) as own:
            return torch.tensor(float(measure(own)), dtype=torch.float64)

    def _measure_on_first_call(self, owner: torch.nn.Module) -> None:
        def hook(module: torch.nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
            if self._measuring:  # an op inside a part being measured: measured on its own call
                return
            self._measuring = True
            # In the mode of the forward, on its active options (so that widths agree
            # with the inputs), without autograd; BatchNorm's statistics restored.
            buffers = {name: b.clone() for name, b in owner.named_buffers()}
            try:
                with gates_of(self.decisions).second_path():
                    self._measure_flops(owner, _detached(args), _detached(kwargs))
            finally:
                self._measuring = False
                with torch.no_grad():
                    for name, b in owner.named_buffers():
                        b.copy_(buffers[name])
            handle.remove()

        handle = owner.register_forward_pre_hook(hook, with_kwargs=True)

    def _measure_flops(self, owner: torch.nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        terms = [term for term in self.terms if term.owner is owner]
        if isinstance(owner, GatedLayer):
            (term,) = terms
            values = []
            for combination in self._combinations(term.labels):
                arguments = owner.configuration(dict(zip(term.labels, combination)))
                inputs, kw = fitted_inputs(owner.layer.torch_class, arguments, args, kwargs)
                flops, _ = _own_flops(owner.layer, lambda: owner.layer.sliced_forward(*inputs, **kw, **arguments))  # noqa: B023 - run at once
                values.append(flops)
            term.costs = self._shaped(term, values)
        elif isinstance(owner, GatedLayerChoice):
            for term in terms:
                candidate = self._part(term)
                flops, _ = _own_flops(candidate, lambda c=candidate: c(*args, **kwargs))  # type: ignore[misc]
                term.costs = torch.tensor(flops, dtype=torch.float64)
        else:  # a Repeat: its blocks in turn, from its input
            assert isinstance(owner, GatedRepeat)
            by_block = {term.part: term for term in terms}
            (x,) = args
            for i, block in enumerate(owner.blocks):
                flops, x = _own_flops(block, lambda b=block, x=x: b(x))  # type: ignore[misc]
                if i in by_block:
                    by_block[i].costs = torch.tensor(flops, dtype=torch.float64)

    # The expectation ---------------------------------------------------------------------------
    def expected(self) -> torch.Tensor | None:
        """The expected cost divided by the sum of each term's largest cost (so it
        lies in ``[0, 1]``); ``None`` until a term is measured."""
        probabilities: dict[str, torch.Tensor] = {}

        def p(label: str) -> torch.Tensor:
            if label not in probabilities:
                probabilities[label] = torch.softmax(self.decisions.alpha(label), dim=-1)
            return probabilities[label]

        parts, worst = [], 0.0
        for term in self.terms:
            if term.costs is None:
                continue
            # sum over the combinations of every label involved of
            # costs * conditions' masks * each label's probability (einsum, a letter per label)
            involved = list(
                dict.fromkeys([*term.labels, *(label for labels, _ in term.conditions for label in labels)])
            )
            letter = {label: chr(ord("a") + k) for k, label in enumerate(involved)}
            reference = p(involved[0])
            operands = [term.costs.to(reference)] + [mask.to(reference) for _, mask in term.conditions]
            operands += [p(label) for label in involved]
            spec = ["".join(letter[label] for label in term.labels)]
            spec += ["".join(letter[label] for label in labels) for labels, _ in term.conditions]
            spec += [letter[label] for label in involved]
            parts.append(torch.einsum(",".join(spec) + "->", *operands))
            worst += float(term.costs.max())
        if not parts or worst <= 0:
            return None
        return torch.stack(parts).sum() / worst


def _detached(values: Any) -> Any:
    """``values`` (a tuple, list or dict) with its tensors detached from autograd."""
    if isinstance(values, dict):
        return {k: v.detach() if isinstance(v, torch.Tensor) else v for k, v in values.items()}
    return type(values)(v.detach() if isinstance(v, torch.Tensor) else v for v in values)


def _own_flops(module: torch.nn.Module, run: Callable[[], Any]) -> tuple[float, Any]:
    """The FLOPs of ``run()`` outside the cost-bearing ops nested in ``module``, and its result."""
    from torch.utils.flop_counter import FlopCounterMode

    nested, started = [0.0], dict[torch.nn.Module, float]()
    units = [module] if _is_unit(module) else [op for _, _, op in _units(module)]
    with FlopCounterMode(display=False) as counter:
        handles = []
        for op in units:
            handles.append(op.register_forward_pre_hook(lambda m, a: started.__setitem__(m, counter.get_total_flops())))
            handles.append(
                op.register_forward_hook(
                    lambda m, a, o: nested.__setitem__(0, nested[0] + counter.get_total_flops() - started[m])
                )
            )
        try:
            out = run()
        finally:
            for handle in handles:
                handle.remove()
    return float(counter.get_total_flops() - nested[0]), out

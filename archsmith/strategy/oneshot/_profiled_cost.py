"""A differentiable expected cost from a cost model of whole architectures: a
profiler (``FlopsProfiler``, ``NumParamsProfiler``, ``LatencyProfiler``, or
``CallableProfiler(fn)`` for any function ``sample -> float``) or a table of
per-decision costs measured elsewhere (:class:`CostTable`; e.g. latencies from a
phone). A profiler is anything with ``profile(sample) -> float`` (this layer does
not import ``archsmith.profiler``).

Every form becomes one *per-decision model*: a constant plus, for each label,
a cost per value (for an ``InputChoice`` with ``n_chosen=k > 1``, a cost per
candidate input, paid for each chosen one)::

    cost(sample) = constant + sum over labels used by the sample of table[label][sample[label]]

Its expectation under independent per-label distributions ``p`` is

    constant + sum over labels of P(label used) * sum over values of p(value) * table[label][value]

(``k * p(i)`` as the inclusion of candidate ``i`` of a ``k``-input choice, as
DARTS' relaxation weighs it), differentiable in the architecture parameters that
give ``p``. ``P(label used)`` follows the space's conditions (a choice inside a
candidate counts as that candidate's probability, one inside a ``Repeat`` block
as the probability of a depth that reaches it).

A profiler or function is turned into the model once per supernet, around a
*base* sample (each searched choice at its middle value unless given, which
keeps the model's extrapolations short: on MobileNetV3's reduced space the
FLOPs model's median error is 0.6% around the middle against 4.7% around the
defaults): ``constant`` is the base's cost and ``table[label][value]`` the change of the cost when only
``label`` is set to ``value`` — one profile call per (label, value), measured
where the label is used (its parents set to values that use it when the base
does not). This is exact when the cost is additive over decisions (parameters of
independent layers, a latency lookup table) and a first-order model where
decisions interact (a width read by two layers that also read another width:
FLOPs of a convolution are the product of its input and output widths).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Union

import torch

from archsmith.space import Categorical, CategoricalMultiple, Constraint, Sample, Space, SpaceError
from archsmith.space._leaf import value_key


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise SpaceError(f"{where} must be a finite number, got {value!r}")
    return float(value)


class CostTable:
    """A per-decision cost model: ``constant`` plus ``costs[label][value]`` per
    label used (see the module docstring).

    ``costs`` maps each label to ``{value: cost}``; the values may be written as
    in a JSON file (``"16"`` for 16). For an ``InputChoice`` with ``n_chosen > 1``
    map each candidate input's index to the cost of choosing it. Every label the
    algorithm learns must be there with every value (checked when the search
    starts); a label the space does not have is an error.
    """

    def __init__(self, costs: Mapping[str, Mapping[Any, float]], constant: float = 0.0, name: str = "cost") -> None:
        if not isinstance(costs, Mapping):
            raise SpaceError(f"a cost table maps each label to {{value: cost}}, got {type(costs).__name__}")
        self.constant = _number(constant, "the cost table's constant")
        self.costs: dict[str, dict[Any, float]] = {}
        for label, row in costs.items():
            if not isinstance(row, Mapping):
                raise SpaceError(
                    f"cost table: {label!r} must map each of its values to a cost ({{value: cost}}), got {row!r}"
                )
            self.costs[str(label)] = {
                value: _number(cost, f"cost table[{label!r}][{value!r}]") for value, cost in row.items()
            }
        self.name = name

    @classmethod
    def from_json(cls, text: str, name: str = "cost") -> CostTable:
        """A table from JSON text: ``{"constant": c, "costs": {label: {value: cost}}}``
        (``constant`` optional)."""
        data = json.loads(text)
        if not isinstance(data, dict) or "costs" not in data or set(data) - {"costs", "constant"}:
            raise SpaceError('a cost table in JSON is {"costs": {label: {value: cost}}, "constant": number}')
        return cls(data["costs"], data.get("constant", 0.0), name)

    def row(self, label: str, values: Sequence[Any]) -> list[float]:
        """The cost of each of ``values`` of ``label``, in order; an error naming
        every value the table lacks."""
        given = self.costs[label]
        found: list[float] = []
        missing = []
        lookup = _lookup(given)
        for value in values:
            cost = lookup(value)
            if cost is None:
                missing.append(value)
            else:
                found.append(cost)
        if missing:
            raise SpaceError(
                f"cost table: {label!r} has no cost for {missing!r} (it has {list(given)!r}); "
                f"give a cost for each of {list(values)!r}"
            )
        return found

    def __repr__(self) -> str:
        return f"CostTable({len(self.costs)} labels, constant={self.constant:g})"


def _lookup(given: Mapping[Any, float]) -> Callable[[Any], float | None]:
    """Find a value's cost by the value itself or by its JSON or ``str`` spelling."""
    by_key: dict[Any, float] = {}
    for key, cost in given.items():
        for form in _forms(key):
            by_key.setdefault(form, cost)

    def find(value: Any) -> float | None:
        for form in _forms(value):
            if form in by_key:
                return by_key[form]
        return None

    return find


def _forms(value: Any) -> list[Any]:
    forms: list[Any] = []
    try:
        forms.append(value_key(value))
    except TypeError:
        pass
    forms.append(("str", value if isinstance(value, str) else json.dumps(value)))
    if not isinstance(value, str):
        forms.append(("str", str(value)))
    return forms


#: What ``cost=`` of DARTS, GumbelDARTS and Proxyless accepts for a per-decision model:
#: a profiler (anything with ``profile(sample) -> float``), a ``CostTable`` or a
#: table ``{label: {value: cost}}``.
CostModel = Union[CostTable, Mapping[str, Mapping[Any, float]], Any]


def is_cost_model(cost: Any) -> bool:
    """Whether ``cost`` is one of the per-decision forms (see :data:`CostModel`)."""
    return isinstance(cost, (CostTable, Mapping)) or callable(getattr(cost, "profile", None))


def describe_cost(cost: Any) -> str:
    """A short name of a cost model for ``repr`` and messages."""
    if isinstance(cost, Mapping):
        return f"table({len(cost)} labels)"
    return str(getattr(cost, "name", None) or type(cost).__name__) if not isinstance(cost, str) else repr(cost)


class ExpectedDecisionCost:
    """The per-decision model of one supernet: ``expected(probabilities)`` and its
    normalised form (divided by :attr:`largest`, the most the expectation can be).

    The expectation is a few vectorised operations whatever the number of labels:
    each label's ``sum_v p(v) * cost(v)`` is one weighted sum over all options,
    and ``P(used)`` is propagated level by level down the conditions' tree.
    """

    def __init__(
        self, table: CostTable, space: Space, labels: Sequence[str], held: Mapping[str, Any] | None = None
    ) -> None:
        self.name, self.constant = table.name, table.constant
        self.labels = list(labels)
        # where the labels the algorithm does not learn stay (the supernet's default sample)
        held = dict(held) if held is not None else {label: leaf.default() for label, leaf in space.items()}
        unknown = sorted(set(table.costs) - set(space))
        if unknown:
            raise SpaceError(f"cost table: labels not in the space: {unknown} (its labels: {sorted(space)})")
        lacking = [label for label in self.labels if label not in table.costs]
        if lacking:
            raise SpaceError(
                f"cost table: no costs for {lacking}; give each searched label its costs ({{value: cost}})"
            )
        # Every option of every label, flat: its cost (times the inputs a k-input choice pays) and its label.
        costs: list[float] = []
        owners: list[int] = []
        self._offsets: dict[str, int] = {}
        largest = self.constant
        for i, label in enumerate(self.labels):
            values, times = _options(space, label)
            row = table.row(label, values)
            self._offsets[label] = len(costs)
            costs += [times * c for c in row]
            owners += [i] * len(row)
            largest += times * max(0.0, max(row))
        self._costs = torch.tensor(costs, dtype=torch.float64)
        self._owners = torch.tensor(owners, dtype=torch.long)
        self._conditioning(space, held)
        self.largest = largest
        if not self.largest > 0:
            raise SpaceError(
                f"the {self.name} model gives no architecture a positive cost (constant {self.constant:g}, largest "
                f"{self.largest:g}): a cost penalty needs positive costs"
            )

    def _conditioning(self, space: Space, held: Mapping[str, Any]) -> None:
        """The conditions over the labels and their ancestors, as index tensors: per
        alternative, the label it uses, its parent, and the parent's options (flat
        indices) that hold it; a parent the algorithm does not learn is ``held``."""
        conditions = space.conditions
        nodes = list(self.labels)
        alternatives: list[tuple[int, int, list[int], float]] = []
        k = 0
        while k < len(nodes):  # the labels, then their ancestors
            label = nodes[k]
            for parent, chosen in conditions.get(label, {}).items():
                if parent not in nodes:
                    nodes.append(parent)
                indices = _indices(space, parent, chosen)
                if parent in self._offsets:
                    flat = [self._offsets[parent] + i for i in indices]
                    alternatives.append((k, nodes.index(parent), flat, 0.0))
                else:
                    alternatives.append(
                        (k, nodes.index(parent), [], float(_index_of(space, parent, held[parent]) in indices))
                    )
            k += 1
        self._nodes = len(nodes)
        self._alt_child = torch.tensor([a[0] for a in alternatives], dtype=torch.long)
        self._alt_parent = torch.tensor([a[1] for a in alternatives], dtype=torch.long)
        self._alt_constant = torch.tensor([a[3] for a in alternatives], dtype=torch.float64)
        self._alt_entries = torch.tensor([i for a in alternatives for i in a[2]], dtype=torch.long)
        self._alt_of_entry = torch.tensor([j for j, a in enumerate(alternatives) for _ in a[2]], dtype=torch.long)
        self._conditioned = torch.zeros(len(nodes), dtype=torch.bool)
        self._conditioned[self._alt_child] = True
        self._depth = _depth(nodes, conditions)

    def expected(self, probabilities: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """``constant + sum over labels of P(used) * sum_v p(v) * cost(v)``, with
        ``probabilities[label]`` over the label's options (in the space's order);
        differentiable in them (float64)."""
        if not self.labels:
            return torch.tensor(self.constant, dtype=torch.float64)
        p = torch.cat([probabilities[label].reshape(-1) for label in self.labels]).to(torch.float64)
        device = p.device
        per_label = torch.zeros(len(self.labels), dtype=p.dtype, device=device).index_add(
            0, self._owners.to(device), p * self._costs.to(device)
        )
        used = self._used(p) if len(self._alt_child) else None
        if used is not None:
            per_label = per_label * used[: len(self.labels)]
        return self.constant + per_label.sum()

    def _used(self, p: torch.Tensor) -> torch.Tensor:
        """P(used) of every node: any of its alternatives holds (each independently),
        an alternative holding when its parent takes one of its values and is used."""
        device = p.device
        child, parent = self._alt_child.to(device), self._alt_parent.to(device)
        chance = self._alt_constant.to(device).index_add(
            0, self._alt_of_entry.to(device), p[self._alt_entries.to(device)]
        )
        conditioned = self._conditioned.to(device)
        used = torch.ones(self._nodes, dtype=p.dtype, device=device)
        for _ in range(self._depth):  # a level of the conditions' tree per pass
            held = chance * used[parent]
            missed = torch.ones_like(used).scatter_reduce(0, child, 1 - held, reduce="prod")
            single = torch.zeros_like(used).index_add(0, child, held)  # exact where one alternative holds
            counts = torch.zeros_like(used).index_add(0, child, torch.ones_like(held))
            used = torch.where(conditioned, torch.where(counts == 1, single, 1 - missed), used)
        return used

    def normalised(self, probabilities: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """:meth:`expected` divided by :attr:`largest` (at most 1 for non-negative costs)."""
        return self.expected(probabilities) / self.largest


def _depth(nodes: list[str], conditions: Mapping[str, Mapping[str, Any]]) -> int:
    """The longest chain of conditions among ``nodes`` (how many passes propagate P(used))."""
    memo: dict[str, int] = {}

    def depth(label: str, seen: frozenset[str]) -> int:
        if label not in memo:
            parents = [p for p in conditions.get(label, {}) if p not in seen]
            memo[label] = 0 if not parents else 1 + max(depth(p, seen | {label}) for p in parents)
        return memo[label]

    return max((depth(label, frozenset()) for label in nodes), default=0)


def _options(space: Space, label: str) -> tuple[list[Any], float]:
    """The values a label's costs are given for, and how many of them a sample pays."""
    leaf = space[label]
    if isinstance(leaf, Categorical):
        return list(leaf.values), 1.0
    if isinstance(leaf, CategoricalMultiple):
        if leaf.n_chosen is None:
            raise SpaceError(
                f"{label!r} chooses any number of inputs (n_chosen=None): its expected cost is not defined; "
                "give the InputChoice a fixed n_chosen, or search this space without a cost penalty"
            )
        return list(leaf.values), float(leaf.n_chosen)
    raise SpaceError(
        f"{label!r} is {leaf.describe()}: a per-decision cost needs categorical choices (a cost per value); "
        "make it a choice over a few values"
    )


def _index_of(space: Space, label: str, value: Any) -> int:
    leaf = space[label]
    keys = [value_key(v) for v in getattr(leaf, "values", [])]
    return keys.index(value_key(value)) if value_key(value) in keys else -1


def _indices(space: Space, parent: str, chosen: Sequence[Any]) -> list[int]:
    return [i for i in (_index_of(space, parent, value) for value in chosen) if i >= 0]


# From a profiler or a function ----------------------------------------------------------------
def _context(space: Space, base: Mapping[str, Any], label: str) -> Sample:
    """``base`` with the parents of ``label`` set (recursively, first condition
    first) so that the sample uses ``label``."""
    sample = dict(base)
    conditions = space.conditions
    seen: set[str] = set()

    def use(name: str) -> None:
        if name in seen or name in space.active_labels(sample):
            return
        seen.add(name)
        parent, values = next(iter(conditions[name].items()))
        use(parent)
        sample[parent] = values[0]

    use(label)
    if label not in space.active_labels(sample):
        raise SpaceError(f"cannot find a sample that uses {label!r} to measure its cost")
    return sample


def _middle(space: Space, labels: Sequence[str]) -> Sample:
    """Every decision at its default but each categorical one of ``labels`` at its
    middle value (the upper middle of an even count)."""
    sample = {label: leaf.default() for label, leaf in space.items()}
    for label in labels:
        leaf = space[label]
        if isinstance(leaf, Categorical):
            sample[label] = leaf.values[len(leaf.values) // 2]
    return sample


def concentrated_on(space: Space, sample: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """Each categorical label's distribution concentrated on ``sample`` (a ``k``-input
    choice: ``1/k`` on each chosen input, as DARTS weighs a sure choice): what
    ``ExpectedDecisionCost.expected`` gives the model's cost of that one architecture at."""
    out = {}
    for label, leaf in space.items():
        if not isinstance(leaf, (Categorical, CategoricalMultiple)):
            raise SpaceError(f"{label!r}: only categorical choices have a distribution to concentrate")
        values = list(leaf.values)
        p = torch.zeros(len(values), dtype=torch.float64)
        chosen = sample[label] if isinstance(leaf, CategoricalMultiple) else [sample[label]]
        for value in chosen:
            p[values.index(value)] = 1.0 / len(chosen)
        out[label] = p
    return out


def profiled_table(cost: Any, space: Space, labels: Sequence[str], base: Mapping[str, Any] | None = None) -> CostTable:
    """The per-decision model of ``cost.profile`` (or ``cost(sample)``) around
    ``base`` (default: each of ``labels`` at its middle value, the others at their
    default): one profile call per (label, value) and one per measuring context
    (see the module docstring)."""
    measure = cost.profile if callable(getattr(cost, "profile", None)) else cost
    name = str(getattr(cost, "name", "cost"))
    base = dict(base) if base is not None else _middle(space, labels)
    measured: dict[str, float] = {}

    def f(sample: Mapping[str, Any]) -> float:
        key = space.architecture_key(sample)
        if key not in measured:
            value = measure(dict(sample))
            measured[key] = _number(value, f"the {name} of {dict(sample)}")
        return measured[key]

    constant = f(base)
    costs: dict[str, dict[Any, float]] = {}
    for label in labels:
        context = _context(space, base, label)
        reference = f(context)
        leaf = space[label]
        values, _ = _options(space, label)
        if isinstance(leaf, CategoricalMultiple):
            costs[label] = _inclusion_costs(f, context, label, values, reference)
        else:
            costs[label] = {_json_key(v): f({**context, label: v}) - reference for v in values}
    return CostTable(costs, constant, name)


def _inclusion_costs(
    f: Callable[[Mapping[str, Any]], float], context: Sample, label: str, values: list[Any], reference: float
) -> dict[Any, float]:
    """Per candidate input, its cost relative to the last chosen one of the
    context, from swaps of one chosen input (one profile call per candidate)."""
    chosen = list(context[label])
    last = chosen[-1]
    out_of = [v for v in values if v not in chosen]
    relative: dict[Any, float] = {last: 0.0}
    for v in out_of:  # swap the last chosen one for v: c(v) - c(last)
        relative[v] = f({**context, label: sorted([*chosen[:-1], v], key=values.index)}) - reference
    for v in chosen[:-1]:  # swap v for an unchosen u: c(u) - c(v)
        if not out_of:
            relative[v] = 0.0  # every input is chosen: nothing to decide
            continue
        u = out_of[0]
        swapped = sorted([u if c == v else c for c in chosen], key=values.index)
        relative[v] = relative[u] - (f({**context, label: swapped}) - reference)
    # cost(S) = reference + sum over S of relative - sum over the context's of relative:
    # the constant's share is moved into the chosen ones' costs, so cost(context) is the reference.
    offset = sum(relative[v] for v in chosen) / len(chosen)
    return {_json_key(v): relative[v] - offset for v in values}


def _json_key(value: Any) -> Any:
    try:
        hash(value)
        return value
    except TypeError:
        return json.dumps(value)


def expected_cost_model(
    cost: Any, space: Space, labels: Sequence[str], algorithm: str, base: Mapping[str, Any] | None = None
) -> ExpectedDecisionCost:
    """The per-decision model of ``cost`` (a profiler, ``CostTable`` or table) over
    ``labels`` of ``space``."""
    if isinstance(cost, CostTable):
        table = cost
    elif isinstance(cost, Mapping):
        table = CostTable(cost)
    elif callable(getattr(cost, "profile", None)):
        table = profiled_table(cost, space, labels, base)
    else:
        raise SpaceError(f"{algorithm}: {cost_form_message(algorithm)}, got {cost!r}")
    return ExpectedDecisionCost(table, space, labels)


def cost_form_message(algorithm: str) -> str:
    """What ``cost=`` accepts, for errors."""
    forms = (
        "a profiler (FlopsProfiler, NumParamsProfiler, LatencyProfiler, CallableProfiler(fn) for a function "
        "sample -> float), a CostTable or a table {label: {value: cost}}"
    )
    if algorithm == "Proxyless":
        return f"cost must be 'params', 'flops', a function cost(module) -> float, {forms}, or None"
    return f"cost must be {forms}, or None"


def checked_cost(cost: Any, algorithm: str) -> Any:
    """``cost`` if it is a per-decision form (a table is checked at once), else a clear error."""
    if cost is None:
        return None
    if isinstance(cost, Constraint):
        raise SpaceError(
            f"{algorithm}: cost={cost.name!r} is a constraint, not a cost; give the profiler itself as cost= "
            "(a soft penalty), or the constraint to ExperimentConfig(constraints=[...]) with RandomOneShot or ENAS"
        )
    if isinstance(cost, Mapping):
        CostTable(cost)  # its numbers, now
        return cost
    if is_cost_model(cost):
        return cost
    if callable(cost):
        raise SpaceError(
            f"{algorithm}: {cost_form_message(algorithm)}; got the function {getattr(cost, '__name__', cost)!r}: "
            "wrap a function of a sample as archsmith.profiler.CallableProfiler(fn, name=...)"
        )
    raise SpaceError(f"{algorithm}: {cost_form_message(algorithm)}, got {cost!r}")


def checked_cost_weight(cost_weight: Any) -> float:
    if isinstance(cost_weight, bool) or not isinstance(cost_weight, (int, float)) or not cost_weight >= 0:
        raise SpaceError(f"cost_weight must be a number >= 0, got {cost_weight!r}")
    return float(cost_weight)

"""``mutate(base_model, mutators)``: a model space whose decisions are the mutators'.

A *run* builds one model: the base model (frozen at its own decisions, if it is a
model space with inline primitives), traced by ``torch.fx``, then each mutator in
turn edits the graph, answering its ``choice`` calls from a sample. The search
space is discovered by running the mutators: first with every decision at its
default, then once more for each value of each decision met (earlier decisions as
they were, later ones at their default), until every value of every decision met
has been tried. A decision that some runs do not ask is *conditional*: it is used
only under the values of the one earlier decision that separates the runs that ask
it from those that do not (a :class:`~archsmith.space.Condition`), which is how
``grid`` and ``size`` count architectures and strategies skip unused decisions.
"""

from __future__ import annotations

import collections
import contextlib
import copy
import functools
import random
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.fx

from archsmith.space import (
    ArchsmithError,
    Categorical,
    Condition,
    LabelConflictError,
    Leaf,
    Sample,
    Space,
    SpaceError,
)
from archsmith.space._leaf import value_key
from archsmith.space._scope import _scope, fixed_context, unfixed

from ._graph import MutableGraph, trace
from ._model_space import ModelSpace, load_subnet_weights
from ._mutable_module import MutableModule
from ._mutator import Mutator, snake
from ._placeholder import Placeholder

#: Most runs of the mutators ``mutate`` makes to discover the search space.
MAX_EXPLORATION_RUNS = 2000
#: Rounds of random runs looking for decisions only a combination of values asks.
CLOSURE_ROUNDS = 4
#: Random runs per round.
CLOSURE_SAMPLES = 16
#: Largest base-model decision whose values are each tried (larger ones stay at their default).
MAX_BASE_VALUES = 64

_SCALARS = (bool, int, float, str, type(None))


class MutationError(SpaceError):
    """A mutator failed, or left a graph that is not a valid model."""


@contextlib.contextmanager
def _top_level() -> Iterator[None]:
    """Build as if at the top of the program: no enclosing label scope (a base model
    space freezes with its own labels) and no fixed sample."""
    token = _scope.set(None)
    try:
        with unfixed():
            yield
    finally:
        _scope.reset(token)


def _describe(candidate: Any) -> Any:
    """What makes two candidates the same, for the label-conflict check."""
    if isinstance(candidate, _SCALARS):
        return (type(candidate).__name__, candidate)
    if isinstance(candidate, functools.partial):
        return ("partial", _describe(candidate.func), repr(candidate.args), repr(sorted(candidate.keywords.items())))
    if isinstance(candidate, torch.nn.Module):
        return repr(candidate)
    if callable(candidate) and hasattr(candidate, "__qualname__"):
        return f"{getattr(candidate, '__module__', '')}.{candidate.__qualname__}"
    return repr(candidate)


def _index(values: Sequence[Any], value: Any) -> int | None:
    try:
        key = value_key(value)
    except TypeError:
        return None
    for i, v in enumerate(values):
        if value_key(v) == key:
            return i
    return None


@dataclass
class _Decision:
    """A decision some mutator asked: its leaf's values are the candidates when they
    are plain values, else the candidates' indices."""

    label: str
    mutator: str
    descriptions: tuple[Any, ...]
    values: list[Any]


class _Run:
    """The decisions of one build: answers come from ``answers``, or the default
    (the first candidate) where exploring; each asked decision is traced."""

    def __init__(
        self,
        decisions: dict[str, _Decision],
        base_leaves: Mapping[str, Leaf],
        answers: Mapping[str, Any],
        strict: bool,
    ) -> None:
        self.decisions, self.base_leaves, self.answers, self.strict = decisions, base_leaves, answers, strict
        self.asked: dict[str, Any] = {}
        self.trace: list[tuple[str, Any]] = []

    def ask(self, mutator: str, label: str, candidates: list[Any]) -> Any:
        descriptions = tuple(_describe(c) for c in candidates)
        if label in self.base_leaves:
            return self._shared_with_base(mutator, label, candidates)
        known = self.decisions.get(label)
        if known is None:
            if self.strict:
                raise MutationError(
                    f"mutator {mutator} asked decision {label!r}, which exploring the space never met: it is asked "
                    "under a combination of earlier decisions that changing one at a time does not reach. "
                    "Ask it unconditionally (and ignore its value where unused), or label it"
                )
            plain = all(isinstance(c, _SCALARS) for c in candidates)
            keys = {value_key(c) for c in candidates} if plain else set()
            values = list(candidates) if plain and len(keys) == len(candidates) else list(range(len(candidates)))
            known = self.decisions[label] = _Decision(label, mutator, descriptions, values)
        elif known.descriptions != descriptions:
            raise LabelConflictError(
                f"mutator {mutator} asks decision {label!r} with candidates {list(descriptions)}, but {known.mutator} "
                f"asked it with {list(known.descriptions)}: one label is one decision. Give one of them another "
                "label (an unlabelled choice asked only for some values of an earlier one shifts the automatic "
                "labels after it: label the conditional one)"
            )
        if label not in self.asked:
            value = self.answers.get(label, known.values[0])
            self.asked[label] = value
            self.trace.append((label, value))
        i = _index(known.values, self.asked[label])
        if i is None:  # a value the sample gives that is not a candidate: validate() names it first
            raise MutationError(f"decision {label!r}: {self.asked[label]!r} is not one of {known.values}")
        return candidates[i]

    def _shared_with_base(self, mutator: str, label: str, candidates: list[Any]) -> Any:
        leaf = self.base_leaves[label]
        values = getattr(leaf, "values", None)
        same = values is not None and len(values) == len(candidates)
        if same:
            try:
                same = [value_key(c) for c in candidates] == [value_key(v) for v in values]  # type: ignore[union-attr]
            except TypeError:
                same = False
        if not same:
            raise LabelConflictError(
                f"mutator {mutator} asks decision {label!r} with candidates {candidates!r}, but the base model's "
                f"choice {label!r} is {leaf.describe()}: one label is one decision. Give the mutator's choice "
                "another label, or the same candidates to share the decision"
            )
        return candidates[_index(values, self.asked[label])]  # type: ignore[arg-type,index]


class _Probe(torch.fx.Interpreter):
    """Runs the example input node by node, naming the node that fails; stops
    quietly at a ``Placeholder`` a later mutator is still to fill."""

    class Stop(Exception):
        pass

    def __init__(self, module: torch.fx.GraphModule, after: str) -> None:
        super().__init__(module)
        self.after = after

    def run_node(self, n: torch.fx.Node) -> Any:
        if n.op == "call_module" and isinstance(self.module.get_submodule(str(n.target)), Placeholder):
            raise _Probe.Stop
        try:
            return super().run_node(n)
        except Exception as e:
            raise MutationError(
                f"after mutator {self.after}, the example input fails at node {n.name!r} ({n.op} {n.target}): "
                f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}. The mutator built a module that "
                "does not fit its inputs (a shape-breaking replacement?)"
            ) from e


def _check_graph(module: torch.fx.GraphModule, after: str, example_input: Any) -> None:
    try:
        module.graph.lint()
    except Exception as e:
        raise MutationError(f"mutator {after} left the graph invalid: {type(e).__name__}: {e}") from e
    if example_input is None:
        return
    inputs = example_input if isinstance(example_input, tuple) else (example_input,)
    training = module.training
    module.eval()  # one sample through batch norm in training mode would fail for no fault of the mutator
    try:
        with torch.no_grad(), contextlib.suppress(_Probe.Stop):
            _Probe(module, after).run(*inputs)
    finally:
        module.train(training)


class MutatedSpace(ModelSpace):
    """A model space made of a base model and graph mutators; build it with
    :func:`mutate`. ``freeze(sample)`` returns a ``torch.fx.GraphModule``."""

    base_model: torch.nn.Module
    mutators: list[Mutator]
    example_input: Any
    leaf_modules: tuple[type, ...]
    _prefixes: list[str]
    _base_space: Space
    _decisions: dict[str, _Decision]
    _explored: list[dict[str, Any]]

    def __init__(
        self,
        base_model: torch.nn.Module,
        mutators: Sequence[Mutator],
        example_input: Any = None,
        leaf_modules: Sequence[type] = (),
    ) -> None:
        super().__init__()
        if fixed_context() is not None:
            raise SpaceError(
                "a mutated space is not built inside fixed_arch: freeze one architecture with space.freeze(sample)"
            )
        if not isinstance(base_model, torch.nn.Module):
            raise SpaceError(f"mutate: the base model must be a torch.nn.Module, got {type(base_model).__name__}")
        if isinstance(mutators, Mutator) or not isinstance(mutators, Sequence):
            raise SpaceError(f"mutate: mutators must be a list of archsmith.nn.Mutator, got {mutators!r}")
        wrong = [m for m in mutators if not isinstance(m, Mutator)]
        if wrong:
            raise SpaceError(
                f"mutate: {wrong!r} are not archsmith.nn.Mutator instances; subclass Mutator and implement mutate(graph)"
            )
        abstract = [type(m).__name__ for m in mutators if type(m).mutate is Mutator.mutate]
        if abstract:
            raise SpaceError(
                f"mutate: {abstract} do not implement mutate(graph); a mutator subclasses Mutator and edits the graph there"
            )
        bad_leaves = [t for t in leaf_modules if not (isinstance(t, type) and issubclass(t, torch.nn.Module))]
        if bad_leaves:
            raise SpaceError(f"mutate: leaf_modules takes torch.nn.Module classes, got {bad_leaves!r}")
        searchable = isinstance(base_model, ModelSpace) and not base_model.is_frozen
        if not searchable:
            inline = [n for n, m in base_model.named_modules() if isinstance(m, MutableModule)]
            if inline:
                raise SpaceError(
                    f"mutate: the base model {type(base_model).__name__} holds inline primitives ({inline[:3]}) "
                    "but is not a model space; derive it from archsmith.nn.ModelSpace so their decisions are searched"
                )
        self.base_model = base_model
        self.mutators = list(mutators)
        self.example_input = example_input
        self.leaf_modules = tuple(leaf_modules)
        self._prefixes = self._mutator_prefixes()
        self._base_space = base_model.search_space if isinstance(base_model, ModelSpace) and searchable else Space()
        self._decisions = {}
        with _top_level():
            traces = self._explore()
            self.__dict__["_mutated_space"] = self._space(traces)
        self._explored = [dict(t) for t in traces]

    def _mutator_prefixes(self) -> list[str]:
        seen: collections.Counter[str] = collections.Counter()
        prefixes = []
        for m in self.mutators:
            base = m.label or snake(type(m).__name__)
            seen[base] += 1
            prefixes.append(base if seen[base] == 1 else f"{base}_{seen[base]}")
        return prefixes

    @property
    def search_space(self) -> Space:
        if self.is_frozen:
            return Space()
        return self.__dict__["_mutated_space"]

    def explored_samples(self) -> list[Sample]:
        """One sample per architecture the exploration built (every value of every
        decision is in one of them), canonical, unused decisions at their default."""
        space, seen, samples = self.search_space, set(), []
        for run in self._explored:
            sample = space.representative({**{label: leaf.default() for label, leaf in space.items()}, **run})
            key = space.architecture_key(sample)
            if key not in seen and space.satisfies(sample):
                seen.add(key)
                samples.append(sample)
        return samples

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise SpaceError(
            "a mutated space is not a model: freeze one architecture first, e.g. space.freeze(space.random(seed=0))"
        )

    def freeze(self, sample: Mapping[str, Any], *, weights_from: Any = None) -> torch.nn.Module:
        """The ``torch.fx.GraphModule`` for ``sample``: the base model with every
        mutation applied; candidates given as factories are built only if chosen."""
        if self.is_frozen:
            raise SpaceError("this is already a frozen model; freeze the space it came from")
        sample = self._architecture(sample)
        with _top_level():
            model, _ = self._build(sample, strict=True)
        if weights_from is not None:
            load_subnet_weights(model, weights_from, sample)
        return model

    # Runs ----------------------------------------------------------------------------
    def _build(
        self, answers: Mapping[str, Any], strict: bool, traced: dict[str, torch.fx.GraphModule] | None = None
    ) -> tuple[torch.fx.GraphModule, list[tuple[str, Any]]]:
        """One run: the model for ``answers`` and the decisions it asked, in order.
        ``traced``: base-model graphs by architecture, reused while exploring (a
        freeze traces afresh, so each model gets its own initial weights)."""
        run = _Run(self._decisions, self._base_space, answers, strict)
        base_sample = {label: answers.get(label, leaf.default()) for label, leaf in self._base_space.items()}
        run.asked.update(base_sample)
        run.trace.extend(base_sample.items())
        key = self._base_space.architecture_key(base_sample)
        if traced is not None and key in traced:
            module = copy.deepcopy(traced[key])
        else:
            if len(self._base_space):
                assert isinstance(self.base_model, ModelSpace)
                model = self.base_model.freeze(base_sample)
            else:
                model = copy.deepcopy(self.base_model)
            module = trace(model, self.leaf_modules)
            if traced is not None:
                traced[key] = copy.deepcopy(module)
        graph = MutableGraph(module)
        for mutator, prefix in zip(self.mutators, self._prefixes):
            name = f"{type(mutator).__name__} ({prefix!r})"
            mutator._run, mutator._prefix, mutator._count = run, prefix, 0
            try:
                mutator.mutate(graph)
            except ArchsmithError:
                raise
            except Exception as e:
                raise MutationError(f"mutator {name} failed: {type(e).__name__}: {e}") from e
            finally:
                mutator._run = None
            _check_graph(module, name, self.example_input)
        unfilled = [n for n in graph.nodes if isinstance(n.module, Placeholder)]
        if unfilled:
            raise MutationError(
                f"placeholders {[n.label for n in unfilled]} (nodes {[n.name for n in unfilled]}) are left after "
                "every mutator ran; add a mutator that replaces them (graph.get_nodes_by_label(label), then "
                "node.replace(module))"
            )
        module.graph.eliminate_dead_code()  # what a rewiring left unread: no unused parameters in the model
        module.delete_all_unused_submodules()
        module.recompile()
        return module, run.trace

    def _explore(self) -> list[list[tuple[str, Any]]]:
        traces: list[list[tuple[str, Any]]] = []
        covered: set[tuple[str, Any]] = set()
        queue: collections.deque[dict[str, Any]] = collections.deque([{}])
        traced: dict[str, torch.fx.GraphModule] = {}
        self._run_queue(queue, covered, traces, traced)
        rng = random.Random(0)  # the same random runs in every process: the same labels
        for _ in range(CLOSURE_ROUNDS):
            if all(dict(t).keys() == dict(traces[0]).keys() for t in traces):
                break  # nothing is conditional: changing one decision at a time met them all
            # A decision asked only under a combination of earlier values: random runs find it.
            before = set(self._decisions)
            queue.extend(self._random_answers(rng) for _ in range(CLOSURE_SAMPLES))
            self._run_queue(queue, covered, traces, traced)
            if set(self._decisions) == before:
                break
        return traces

    def _run_queue(
        self,
        queue: collections.deque[dict[str, Any]],
        covered: set[tuple[str, Any]],
        traces: list[Any],
        traced: dict[str, torch.fx.GraphModule],
    ) -> None:
        while queue:
            if len(traces) >= MAX_EXPLORATION_RUNS:
                raise SpaceError(
                    f"mutate: exploring the mutators' decisions took more than {MAX_EXPLORATION_RUNS} runs; "
                    "make fewer decisions depend on earlier ones"
                )
            forced = queue.popleft()
            _, run = self._build(forced, strict=False, traced=traced)
            traces.append(run)
            covered.update((label, value_key(value)) for label, value in run if self._values(label))
            for i, (label, _value) in enumerate(run):
                for other in self._values(label):
                    if (label, value_key(other)) not in covered:
                        covered.add((label, value_key(other)))
                        queue.append({**dict(run[:i]), label: other})

    def _random_answers(self, rng: random.Random) -> dict[str, Any]:
        answers = {label: leaf.random(rng) for label, leaf in self._base_space.items()}
        answers.update({label: rng.choice(d.values) for label, d in self._decisions.items()})
        return answers

    def _values(self, label: str) -> list[Any]:
        """The values of ``label`` exploring tries (none for a continuous base decision)."""
        if label in self._decisions:
            return self._decisions[label].values
        leaf = self._base_space[label]
        if leaf.is_discrete and leaf.size() <= MAX_BASE_VALUES:
            return list(leaf.grid())
        return []

    def _space(self, traces: list[list[tuple[str, Any]]]) -> Space:
        base = self._base_space
        leaves: list[Leaf] = list(base.values())
        for d in self._decisions.values():
            leaves.append(Categorical(d.values, label=d.label))
        conditions = [
            Condition(label, parent, values)
            for label, alternatives in base.conditions.items()
            for parent, values in alternatives.items()
        ]
        runs = [dict(t) for t in traces]
        for label, decision in self._decisions.items():
            conditions.extend(self._condition_of(label, decision, traces, runs))
        return Space(leaves, base.constraints, conditions)

    def _condition_of(
        self, label: str, decision: _Decision, traces: list[list[tuple[str, Any]]], runs: list[dict[str, Any]]
    ) -> list[Condition]:
        """When ``label`` is asked: under some values of earlier decisions (one
        condition per parent; any one suffices), read off the runs. A decision no
        such conditions describe is counted as always used."""
        asking = [r for r in runs if label in r]
        others = [r for r in runs if label not in r]
        if not others:
            return []
        parents: list[str] = []
        for t in traces:
            names = [name for name, _ in t]
            if label in names:
                parents += [p for p in names[: names.index(label)] if p not in parents and self._values(p)]
        conditions, explained = [], [False] * len(asking)
        for parent in reversed(parents):  # the nearest decision first
            excluded = {value_key(r[parent]) for r in others if parent in r}
            keys = {value_key(r[parent]) for r in asking if parent in r} - excluded
            if not keys:
                continue
            hits = [parent in r and value_key(r[parent]) in keys for r in asking]
            if not any(h and not e for h, e in zip(hits, explained)):
                continue
            explained = [h or e for h, e in zip(hits, explained)]
            conditions.append(Condition(label, parent, [v for v in self._values(parent) if value_key(v) in keys]))
            if all(explained):
                return conditions
        return []


def mutate(
    base_model: torch.nn.Module,
    mutators: Sequence[Mutator],
    *,
    example_input: Any = None,
    leaf_modules: Sequence[type] = (),
) -> MutatedSpace:
    """A model space: ``base_model`` rewritten by ``mutators`` (applied in order),
    with their decisions as its search space.

    ``base_model`` is any traceable ``torch.nn.Module`` (a ``ModelSpace`` with
    inline primitives too: its decisions join the mutators'). ``example_input``
    (a tensor, or a tuple of them) is run through each mutated graph while the space
    is explored, so a replacement that breaks shapes fails here, naming the mutator
    and the node. ``leaf_modules``: module classes fx should call whole rather than
    trace into (code fx cannot trace).

    >>> import torch, archsmith.nn as nn
    >>> class Act(nn.Mutator):
    ...     def mutate(self, graph):
    ...         for node in graph.get_nodes_by_type(torch.nn.ReLU):
    ...             node.replace(self.choice([torch.nn.ReLU, torch.nn.GELU]))
    >>> space = nn.mutate(torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.ReLU()), [Act()])
    >>> space.size(), type(space.freeze({"act/choice_1": 1}).get_submodule("1")).__name__
    (2, 'GELU')
    """
    if isinstance(mutators, Mutator) or not isinstance(mutators, (list, tuple)):
        raise SpaceError(f"mutate: mutators must be a list of archsmith.nn.Mutator, got {mutators!r}")
    if isinstance(leaf_modules, type) or not isinstance(leaf_modules, (list, tuple)):
        raise SpaceError(f"mutate: leaf_modules takes a list of torch.nn.Module classes, got {leaf_modules!r}")
    return MutatedSpace(base_model, list(mutators), example_input, tuple(leaf_modules))


__all__ = ["MutatedSpace", "MutationError", "mutate"]

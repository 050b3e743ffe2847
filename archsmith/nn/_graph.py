"""The graph a mutator edits: a thin wrapper over a ``torch.fx.GraphModule``.

Nodes are found by label, module type or name (NNI's finders) and edited through a
few operations (replace, insert before/after, remove, rewire), so a mutator never
needs fx internals; ``graph.module`` and ``node.fx`` are the fx objects underneath.
"""

from __future__ import annotations

import copy
import operator
import os
import re
import traceback
import weakref
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
import torch.fx

from archsmith.space import SpaceError

from ._placeholder import Placeholder

ModuleOrFactory = torch.nn.Module | Callable[[], torch.nn.Module]


class UntraceableModelError(SpaceError):
    """``torch.fx`` cannot trace the base model of a mutated space."""


class GraphEditError(SpaceError):
    """A graph edit that cannot be done (bad argument, dangling users, ...)."""


_SKIPPED_DIRS = tuple(
    os.path.dirname(os.path.abspath(m.__file__)) + os.sep for m in (torch,) if m.__file__ is not None
) + (os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep,)


def _user_line(error: BaseException) -> str:
    """``file:line`` of the deepest frame of ``error`` in the user's code."""
    site = "<unknown>"
    for frame in traceback.extract_tb(error.__traceback__):
        if not os.path.abspath(frame.filename).startswith(_SKIPPED_DIRS):
            site = f"{frame.filename}:{frame.lineno}"
    return site


class _Tracer(torch.fx.Tracer):
    """fx's tracer with ``Placeholder`` (and the user's leaf types) kept whole, and
    the module being traced remembered for the error message."""

    def __init__(self, leaf_modules: Sequence[type]) -> None:
        super().__init__()
        self.leaf_types = (Placeholder, *leaf_modules)
        self.failed_in: tuple[str, str] | None = None

    def is_leaf_module(self, m: torch.nn.Module, module_qualified_name: str) -> bool:
        return isinstance(m, self.leaf_types) or super().is_leaf_module(m, module_qualified_name)

    def call_module(self, m: torch.nn.Module, forward: Callable[..., Any], args: Any, kwargs: Any) -> Any:
        try:
            return super().call_module(m, forward, args, kwargs)
        except Exception:
            if self.failed_in is None:  # the innermost module is the one to name
                self.failed_in = (self.path_of_module(m), type(m).__name__)
            raise


def trace(model: torch.nn.Module, leaf_modules: Sequence[type] = ()) -> torch.fx.GraphModule:
    """``model`` as a ``GraphModule``, or an error naming the module and line fx
    could not trace, and what to do."""
    tracer = _Tracer(leaf_modules)
    try:
        graph = tracer.trace(model)
    except Exception as e:
        where = f"{tracer.failed_in[1]} at {tracer.failed_in[0]!r}" if tracer.failed_in else type(model).__name__
        raise UntraceableModelError(
            f"torch.fx cannot trace {where} ({_user_line(e)}): {type(e).__name__}: {str(e).splitlines()[0]}. "
            "Mark that module a leaf (mutate(model, mutators, leaf_modules=[ItsClass])) so fx keeps it whole, "
            "or write the decision with inline primitives (LayerChoice, ValueChoice) instead of a mutator"
        ) from e
    return torch.fx.GraphModule(model, graph, class_name=type(model).__name__)


#: Modules already placed in a graph: placing one again (a candidate module kept on
#: the mutator and chosen in several builds) places a copy, so no two models share weights.
_PLACED: weakref.WeakSet[torch.nn.Module] = weakref.WeakSet()


def build(candidate: ModuleOrFactory, what: str) -> torch.nn.Module:
    """A module from a module, a module class or a zero-argument factory: a factory
    is only called here, so an unchosen candidate is never built."""
    module = candidate if isinstance(candidate, torch.nn.Module) else candidate() if callable(candidate) else None
    if not isinstance(module, torch.nn.Module):
        raise GraphEditError(
            f"{what} takes a torch.nn.Module or a factory returning one, got {candidate!r}"
            + ("" if module is None else f" (which returned {type(module).__name__})")
        )
    if module in _PLACED:
        module = copy.deepcopy(module)
    _PLACED.add(module)
    return module


def _type_names(cls: type) -> set[str]:
    """The names a string may give a module class by: ``Conv2d``, ``torch.nn.Conv2d``,
    ``torch.nn.modules.conv.Conv2d``."""
    names = {cls.__name__, f"{cls.__module__}.{cls.__qualname__}"}
    if getattr(torch.nn, cls.__name__, None) is cls:
        names.add(f"torch.nn.{cls.__name__}")
    return names


class GraphNode:
    """One operation of a :class:`MutableGraph` (a module call, a function or a method)."""

    def __init__(self, graph: MutableGraph, node: torch.fx.Node) -> None:
        self.graph = graph
        #: the ``torch.fx.Node`` underneath
        self.fx = node

    def __repr__(self) -> str:
        return f"GraphNode({self.name!r}, {self.fx.op}, target={self.target!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, GraphNode) and other.fx is self.fx

    def __hash__(self) -> int:
        return hash(self.fx)

    @property
    def name(self) -> str:
        return self.fx.name

    @property
    def target(self) -> Any:
        """The module path of a module call, else the function or method name."""
        return self.fx.target

    @property
    def module(self) -> torch.nn.Module | None:
        """The module this node calls (``None`` for functions and methods)."""
        if self.fx.op != "call_module":
            return None
        return self.graph.module.get_submodule(str(self.fx.target))

    @property
    def label(self) -> str | None:
        """The label of the called module (a ``Placeholder``'s), if it has one."""
        label = getattr(self.module, "label", None)
        return label if isinstance(label, str) else None

    @property
    def info(self) -> dict[str, Any]:
        """A ``Placeholder``'s keyword arguments (empty for other nodes)."""
        module = self.module
        return dict(module.info) if isinstance(module, Placeholder) else {}

    @property
    def inputs(self) -> list[GraphNode]:
        """The nodes this one reads, in argument order."""
        return [GraphNode(self.graph, n) for n in self.fx.all_input_nodes]

    @property
    def users(self) -> list[GraphNode]:
        """The nodes that read this one."""
        return [GraphNode(self.graph, n) for n in self.fx.users]

    def replace(self, module: ModuleOrFactory) -> GraphNode:
        """Call ``module`` (or what the factory returns) here instead of the current
        module; the node keeps its inputs and users."""
        if self.fx.op != "call_module":  # a function or method becomes a module call
            with self.graph.fx.inserting_before(self.fx):
                new = self.graph._add_module_call(build(module, "node.replace"), self.fx.args, self.fx.kwargs, self.fx)
            self.fx.replace_all_uses_with(new.fx)
            self.graph.fx.erase_node(self.fx)
            self.fx = new.fx
            return self
        target = str(self.fx.target)
        shared = [n for n in self.graph.fx.nodes if n is not self.fx and n.op == "call_module" and n.target == target]
        built = build(module, "node.replace")
        if shared:  # the old module is called elsewhere too: give this call a module of its own
            self.fx.target = self.graph._fresh_name(target)
        self.graph.module.add_submodule(str(self.fx.target), built)
        return self

    def insert_after(self, module: ModuleOrFactory, *extra_inputs: GraphNode) -> GraphNode:
        """Call ``module`` on this node's output (and ``extra_inputs``) and make every
        user of this node read the new node instead."""
        users = list(self.fx.users)
        with self.graph.fx.inserting_after(self.fx):
            new = self.graph._add_module_call(
                build(module, "insert_after"), (self.fx, *(n.fx for n in extra_inputs)), {}, self.fx
            )
        for user in users:
            user.replace_input_with(self.fx, new.fx)
        return new

    def insert_before(self, module: ModuleOrFactory) -> GraphNode:
        """Call ``module`` on this node's first input and feed its output to this node."""
        if not self.fx.all_input_nodes:
            raise GraphEditError(f"insert_before: node {self.name!r} has no input to put a module before")
        first = self.fx.all_input_nodes[0]
        with self.graph.fx.inserting_before(self.fx):
            new = self.graph._add_module_call(build(module, "insert_before"), (first,), {}, self.fx)
        self.fx.replace_input_with(first, new.fx)
        return new

    def add_skip(self, source: GraphNode, combine: Callable[[Any, Any], Any] = operator.add) -> GraphNode:
        """A skip connection: users of this node read ``combine(this, source)``
        (a sum by default) instead; ``source`` must come before this node."""
        order = {n: i for i, n in enumerate(self.graph.fx.nodes)}
        if order[source.fx] >= order[self.fx]:
            raise GraphEditError(
                f"add_skip: source {source.name!r} comes after {self.name!r}; a skip must come from an earlier node"
            )
        users = list(self.fx.users)
        with self.graph.fx.inserting_after(self.fx):
            new = self.graph.fx.call_function(combine, (self.fx, source.fx))
        for user in users:
            user.replace_input_with(self.fx, new)
        return GraphNode(self.graph, new)

    def set_inputs(self, *inputs: GraphNode) -> None:
        """Read ``inputs`` (positionally) instead of the current arguments."""
        order = {n: i for i, n in enumerate(self.graph.fx.nodes)}
        late = [n.name for n in inputs if order[n.fx] >= order[self.fx]]
        if late:
            raise GraphEditError(f"set_inputs: {late} come at or after {self.name!r}; a node reads earlier nodes only")
        self.fx.args = tuple(n.fx for n in inputs)
        self.fx.kwargs = {}

    def remove(self) -> None:
        """Take this node out; its users read its first input instead (a module with
        one input and an output of the same shape, such as an activation)."""
        sources = self.fx.all_input_nodes
        if not sources and self.fx.users:
            raise GraphEditError(
                f"remove: node {self.name!r} has users {list(self.fx.users)} and no input to give them"
            )
        if self.fx.users:
            self.fx.replace_all_uses_with(sources[0])
        self.graph.fx.erase_node(self.fx)


class MutableGraph:
    """The model as a graph, given to :meth:`Mutator.mutate`.

    ``module`` is the ``torch.fx.GraphModule`` and ``fx`` its ``torch.fx.Graph``, for
    whatever the finders and node operations do not cover.
    """

    def __init__(self, module: torch.fx.GraphModule) -> None:
        self.module = module

    @property
    def fx(self) -> torch.fx.Graph:
        return self.module.graph

    @property
    def nodes(self) -> list[GraphNode]:
        """Every operation (module calls, functions, methods), in execution order."""
        ops = ("call_module", "call_function", "call_method")
        return [GraphNode(self, n) for n in self.fx.nodes if n.op in ops]

    def get_nodes_by_label(self, label: str) -> list[GraphNode]:
        """The nodes calling a module labelled ``label`` (a ``Placeholder``)."""
        return [n for n in self.nodes if n.label == label]

    def get_nodes_by_type(self, kind: type | Callable[..., Any] | str) -> list[GraphNode]:
        """The nodes calling a module of type ``kind`` (subclasses included), or
        calling the function ``kind`` (``torch.relu``, ``operator.add``). A string
        (NNI's habit) names the module class exactly: ``"Conv2d"`` or
        ``"torch.nn.Conv2d"`` (its public path or its defining module's)."""
        if isinstance(kind, str):
            return [n for n in self.nodes if n.module is not None and kind in _type_names(type(n.module))]
        if isinstance(kind, type) and issubclass(kind, torch.nn.Module):
            return [n for n in self.nodes if isinstance(n.module, kind)]
        if callable(kind):
            return [n for n in self.nodes if n.fx.op == "call_function" and n.fx.target is kind]
        raise GraphEditError(f"get_nodes_by_type takes a module class or a function, got {kind!r}")

    def get_nodes_by_name(self, pattern: str) -> list[GraphNode]:
        """The nodes whose module path (``"body.0.conv"``) or node name fully matches
        the regular expression ``pattern``."""
        regex = re.compile(pattern)
        return [n for n in self.nodes if regex.fullmatch(str(n.target)) or regex.fullmatch(n.name)]

    def get_node_by_name(self, name: str) -> GraphNode | None:
        """The node named ``name`` (an fx node name or a module path), if any."""
        found = [n for n in self.nodes if n.name == name or str(n.target) == name]
        return found[0] if found else None

    # Used by the node operations ---------------------------------------------------
    def _fresh_name(self, base: str) -> str:
        names = {name for name, _ in self.module.named_modules()}
        i = 1
        while f"{base}_{i}" in names:
            i += 1
        return f"{base}_{i}"

    def _add_module_call(
        self, module: torch.nn.Module, args: Iterable[Any], kwargs: dict[str, Any], near: torch.fx.Node
    ) -> GraphNode:
        base = str(near.target) if near.op == "call_module" else near.name
        name = self._fresh_name(base.replace(".", "_") + "_mutated")
        self.module.add_submodule(name, module)
        return GraphNode(self, self.fx.call_module(name, tuple(args), dict(kwargs)))

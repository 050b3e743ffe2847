"""``Mutator``: a rewrite of a model's graph that makes decisions as it goes."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from archsmith.space import SpaceError

if TYPE_CHECKING:
    from ._graph import MutableGraph
    from ._mutated_space import _Run


def snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


class Mutator:
    """Subclass and implement :meth:`mutate`; search it with
    ``archsmith.nn.mutate(base_model, [mutators])``.

    Inside ``mutate``, ``self.choice(candidates, label=None)`` is one decision of the
    search space and returns the chosen candidate itself. Unlabelled decisions are
    named ``<mutator label>/choice_<n>`` (the n-th ``choice`` of this mutator's
    run), so they are the same in every run and process; a decision asked only for
    some values of an earlier one should be given a label, so later ones keep theirs.

    >>> import torch, archsmith.nn as nn
    >>> class Kernel(nn.Mutator):
    ...     def mutate(self, graph):
    ...         for node in graph.get_nodes_by_type(torch.nn.Conv2d):
    ...             k = self.choice([1, 3])
    ...             node.replace(torch.nn.Conv2d(4, 4, k, padding=k // 2))
    >>> space = nn.mutate(torch.nn.Sequential(torch.nn.Conv2d(4, 4, 3)), [Kernel()])
    >>> list(space.search_space)
    ['kernel/choice_1']
    """

    # Class defaults: a subclass whose __init__ does not call super().__init__() still works.
    label: str | None = None
    _run: _Run | None = None
    _prefix = ""
    _count = 0

    def __init__(self, label: str | None = None) -> None:
        if label is not None and (not isinstance(label, str) or not label):
            raise SpaceError(f"{type(self).__name__}: label must be a non-empty string, got {label!r}")
        #: the prefix of this mutator's automatic labels (its class name, snake-cased, if not given)
        self.label = label
        self._run: _Run | None = None
        self._prefix = ""
        self._count = 0

    def mutate(self, graph: MutableGraph) -> None:
        """Edit ``graph`` in place, asking ``self.choice`` for each decision."""
        raise NotImplementedError(f"{type(self).__name__} must implement mutate(graph)")

    def choice(self, candidates: Sequence[Any], label: str | None = None) -> Any:
        """One of ``candidates``, as the search decides. Candidates may be values,
        modules, or module classes and factories (called by ``node.replace`` only
        when chosen, so an unchosen one is never built)."""
        if self._run is None:
            raise SpaceError(
                f"{type(self).__name__}.choice is asked while no search runs it; pass the mutator to "
                "archsmith.nn.mutate(model, [mutators]) instead of calling mutate() yourself"
            )
        if isinstance(candidates, (str, bytes)) or not isinstance(candidates, Sequence) or not candidates:
            raise SpaceError(f"{type(self).__name__}.choice takes a non-empty list of candidates, got {candidates!r}")
        if label is None:
            self._count += 1
            label = f"{self._prefix}/choice_{self._count}"
        elif not isinstance(label, str) or not label:
            raise SpaceError(f"{type(self).__name__}.choice: label must be a non-empty string, got {label!r}")
        return self._run.ask(type(self).__name__, label, list(candidates))

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_run"] = None  # a run in progress is never shipped
        return state

"""``NumParamsProfiler``: the parameter count of a sample's frozen model, without freezing it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from archsmith.nn import ModelSpace

from ._base import Profiler
from ._check import check_space, searching_space
from ._probe import repair_constants
from ._terms import ProfilerError, TermCompiler, tabulate


class NumParamsProfiler(Profiler):
    """``profile(sample)`` = ``sum(p.numel() for p in space.freeze(sample).parameters())``.

    The space's module tree is compiled once into a constant plus guarded terms
    (each ``MutableLayer``'s count per value of its choices, each candidate's and
    block's under the decision that builds it; terms over few values tabulated
    up front), so a sample costs a few dictionary look-ups. At construction the
    count is checked against freezing on ``check_samples`` seeded random samples
    (and the default one). Where it differs, parameters the space holds at another
    size than its frozen models (built from a plain number a choice gave, as
    AutoFormer's class token) become terms found by freezing; a space that still
    differs raises :class:`ProfilerError` there rather than giving wrong numbers later.

    >>> import archsmith.nn as nn
    >>> class Net(nn.ModelSpace):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.fc = nn.Linear(4, nn.choice("hidden", [8, 16]))
    >>> NumParamsProfiler(Net()).profile({"hidden": 16})
    80.0
    """

    name = "params"
    unit = "parameters"

    def __init__(self, space: ModelSpace, *, check_samples: int = 2, seed: int = 0) -> None:
        self.space = searching_space(space, "NumParamsProfiler")
        compiler = TermCompiler()
        compiler.walk(self.space)
        self._root = compiler.root
        tabulate(self._root, self.space.search_space)
        try:
            check_space(self.space, self._profile, _frozen_params, "NumParamsProfiler", check_samples, seed)
        except ProfilerError:
            samples = [self.space.random(seed + i) for i in range(check_samples)]
            if not repair_constants(self.space, self._root, compiler.root_params, samples):
                raise
            tabulate(self._root, self.space.search_space)
            check_space(self.space, self._profile, _frozen_params, "NumParamsProfiler", check_samples, seed)

    def profile(self, sample: Mapping[str, Any]) -> float:
        """The parameter count of ``space.freeze(sample)``; a bad sample raises the
        space's own ``SampleError``."""
        return self._profile(self.space._architecture(sample))

    def _profile(self, sample: Mapping[str, Any]) -> float:
        return self._root.total(sample)

    @property
    def num_terms(self) -> int:
        """How many memoised terms the space compiled to."""
        return self._root.count_terms()

    def __repr__(self) -> str:
        return f"NumParamsProfiler({type(self.space).__name__}, {self.num_terms} terms)"


def _frozen_params(model: torch.nn.Module, sample: Mapping[str, Any]) -> float:
    return float(sum(p.numel() for p in model.parameters()))

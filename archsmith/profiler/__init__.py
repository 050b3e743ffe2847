"""Costs of architectures without building them: parameters, FLOPs (MACs) and
latency; comparing a profiler with a number makes a constraint for a search."""

from ._base import CostConstraint, Profiler
from ._flops import FlopsProfiler, frozen_macs
from ._params import NumParamsProfiler
from ._terms import ProfilerError

__all__ = ["CostConstraint", "FlopsProfiler", "NumParamsProfiler", "Profiler", "ProfilerError", "frozen_macs"]

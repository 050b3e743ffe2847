"""Costs of architectures without building them: parameters, FLOPs (MACs) and
latency; comparing a profiler with a number makes a constraint for a search."""

from ._base import CallableProfiler, CostConstraint, Profiler
from ._flops import FlopsProfiler, frozen_macs
from ._latency import LatencyProfiler, frozen_latency
from ._params import NumParamsProfiler
from ._terms import ProfilerError

__all__ = [
    "CallableProfiler",
    "CostConstraint",
    "FlopsProfiler",
    "LatencyProfiler",
    "NumParamsProfiler",
    "Profiler",
    "ProfilerError",
    "frozen_latency",
    "frozen_macs",
]

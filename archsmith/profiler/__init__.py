"""Costs of architectures without building them: parameters and FLOPs (MACs)."""

from ._flops import FlopsProfiler, frozen_macs
from ._params import NumParamsProfiler
from ._terms import ProfilerError

__all__ = ["FlopsProfiler", "NumParamsProfiler", "ProfilerError", "frozen_macs"]

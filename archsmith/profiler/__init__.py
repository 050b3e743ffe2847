"""Costs of architectures without building them: parameters and FLOPs (MACs)."""

from ._params import NumParamsProfiler
from ._terms import ProfilerError

__all__ = ["NumParamsProfiler", "ProfilerError"]

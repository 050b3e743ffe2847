"""What every profiler checks of its space at construction."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch

from archsmith.nn import ModelSpace

from ._terms import ProfilerError


def searching_space(space: Any, who: str) -> ModelSpace:
    """``space`` if it is a searching ``ModelSpace``, else a clear error."""
    if not isinstance(space, ModelSpace):
        raise ProfilerError(f"{who} takes a model space (an archsmith.nn.ModelSpace), got {type(space).__name__}")
    if space.is_frozen:
        raise ProfilerError(
            f"{who}: {type(space).__name__} is a frozen model; give the searching space it came from "
            f"(count a frozen model directly: sum(p.numel() for p in model.parameters()))"
        )
    return space


def check_space(
    space: ModelSpace,
    fast: Callable[[Mapping[str, Any]], float],
    slow: Callable[[torch.nn.Module, Mapping[str, Any]], float],
    who: str,
    check_samples: int,
    seed: int,
) -> None:
    """Compare ``fast(sample)`` with ``slow(space.freeze(sample), sample)`` on the default
    sample and ``check_samples`` seeded random ones; a difference is a
    :class:`ProfilerError` naming the space and the sample."""
    if isinstance(check_samples, bool) or not isinstance(check_samples, int) or check_samples < 0:
        raise ProfilerError(f"{who}: check_samples must be a non-negative int, got {check_samples!r}")
    samples = [space.validate(space.default())]
    samples += [space.random(seed + i) for i in range(check_samples)]
    for sample in samples:
        expected = slow(space.freeze(sample), sample)
        try:
            got = fast(sample)
        except RuntimeError as e:  # e.g. a layer's width expression that the frozen model does not follow
            raise ProfilerError(
                f"{who}: {type(space).__name__}'s frozen model differs from what its searching form shows "
                f"(sample {sample}: the frozen model runs, the searching form fails: {e}), so it cannot be "
                "profiled exactly without freezing; count space.freeze(sample) instead"
            ) from e
        if got != expected:
            raise ProfilerError(
                f"{who}: {type(space).__name__}'s frozen model differs from what its searching form shows "
                f"(sample {sample}: {expected:g} by freezing, {got:g} from the searching space), so it cannot "
                "be profiled exactly without freezing; count space.freeze(sample) instead"
            )

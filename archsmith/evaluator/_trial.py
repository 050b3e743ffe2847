"""The trial-side API: what training code calls while a trial runs.

``report_intermediate_result`` / ``report_final_result`` are NNI's names
(``report`` and ``report_final`` are short aliases); ``current_sample`` gives the
trial's sample; ``should_stop`` tells the code an early-stopping rule wants it to
end. Outside a trial, reports are ignored (so training code also runs alone) and
``current_sample`` raises.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from archsmith.space import ArchsmithError

from ._metric import Metric, normalize_metric


class TrialError(ArchsmithError, RuntimeError):
    """The trial API was used wrongly (outside a trial, final result twice, ...)."""


def _never() -> bool:
    return False


@dataclass
class TrialContext:
    """One running trial, seen from the code that trains it."""

    trial_id: int
    sample: dict[str, Any]
    on_intermediate: Callable[[int, Metric], None] = lambda step, metric: None
    stop_requested: Callable[[], bool] = _never
    intermediates: list[Metric] = field(default_factory=list)
    final: Metric | None = None


_current: contextvars.ContextVar[TrialContext | None] = contextvars.ContextVar("archsmith_trial", default=None)


@contextlib.contextmanager
def trial_context(ctx: TrialContext) -> Iterator[TrialContext]:
    token = _current.set(ctx)
    try:
        yield ctx
    finally:
        _current.reset(token)


def current_trial() -> TrialContext | None:
    return _current.get()


def report_intermediate_result(metric: Any) -> None:
    """Report a metric for this step (epoch) of the running trial."""
    value = normalize_metric(metric)
    ctx = _current.get()
    if ctx is None:
        return
    ctx.intermediates.append(value)
    ctx.on_intermediate(len(ctx.intermediates) - 1, value)


def report_final_result(metric: Any) -> None:
    """Report the trial's final metric (once)."""
    value = normalize_metric(metric)
    ctx = _current.get()
    if ctx is None:
        return
    if ctx.final is not None:
        raise TrialError(f"trial {ctx.trial_id} reported its final result twice; report it once, at the end")
    ctx.final = value


report = report_intermediate_result
report_final = report_final_result


def current_sample() -> dict[str, Any]:
    """The sample (label -> value) of the running trial."""
    ctx = _current.get()
    if ctx is None:
        raise TrialError("current_sample() was called outside a trial; it is only meaningful while a trial runs")
    return ctx.sample


def should_stop() -> bool:
    """Whether the experiment asks this trial to stop early (check it each epoch)."""
    ctx = _current.get()
    return bool(ctx is not None and ctx.stop_requested())

"""What engines pass around: trials in, events out."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

EventKind = Literal["started", "intermediate", "finished"]


@dataclass
class Trial:
    """One architecture (and hyper-parameters) to evaluate."""

    id: int
    sample: dict[str, Any]
    seed: int | None = None  # seeds torch/random before the model is built (reproducible weights)


@dataclass
class TrialEvent:
    """Something that happened to a trial: it started, reported, or finished.

    A finished event has ``status`` ``"succeeded"`` (with ``metric``) or
    ``"failed"`` (with ``error``: the traceback of an exception, or the reason a
    process died or timed out plus, where the engine keeps logs, the Python stack
    it was in). ``output`` is, for a failed trial of an engine given a
    ``log_dir``, the tail of its output log (the last 50 lines, at most ~8 KB).
    ``architecture`` is the built model's module tree with parameter counts
    (``archsmith.nn.module_summary``), where the trial got as far as building it."""

    kind: EventKind
    trial_id: int
    worker: str | None = None
    step: int | None = None
    metric: Any = None
    status: str | None = None
    error: str | None = None
    duration: float | None = None
    at: float = field(default=0.0)
    output: str | None = None
    architecture: dict[str, Any] | None = None


@dataclass
class TrialPayload:
    """Everything a worker needs, sent once: how to rebuild the model space
    (class, init arguments) and the evaluator."""

    space_class: type
    init_args: tuple[Any, ...]
    init_kwargs: dict[str, Any]
    evaluator: Any

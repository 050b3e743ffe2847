"""Running one trial: freeze the model, evaluate it, turn the outcome into an event.

Shared by every engine, so a trial behaves the same in-process, in a worker
process or on a cluster.
"""

from __future__ import annotations

import functools
import math
import random
import time
import traceback
from collections.abc import Callable
from typing import Any

import torch

from archsmith.evaluator import Metric, TrialContext, normalize_metric, trial_context
from archsmith.nn._summary import module_summary

from ._trial import Trial, TrialEvent, TrialPayload


class Runner:
    """Builds the model space once, then runs trials against it."""

    def __init__(self, payload: TrialPayload) -> None:
        self.space = payload.space_class(*payload.init_args, **payload.init_kwargs)
        self.evaluator = payload.evaluator
        self.model_labels = set(self.space.search_space)

    def run(
        self,
        trial: Trial,
        worker: str,
        on_intermediate: Callable[[int, Metric], None],
        stop_requested: Callable[[], bool] = lambda: False,
    ) -> TrialEvent:
        start = time.time()
        architecture: dict[str, Any] | None = None

        def failed(error: str) -> TrialEvent:
            return TrialEvent(
                "finished",
                trial.id,
                worker,
                status="failed",
                error=error,
                duration=time.time() - start,
                architecture=architecture,
            )

        ctx = TrialContext(trial.id, trial.sample, on_intermediate, stop_requested)
        if trial.seed is not None:  # same seed, same initial weights and data order
            random.seed(trial.seed)
            seed_torch(trial.seed)
        try:
            model = self.space.freeze({k: v for k, v in trial.sample.items() if k in self.model_labels})
            architecture = _summary(model)
            with trial_context(ctx):
                returned = self.evaluator.evaluate(model)
            final = ctx.final if ctx.final is not None else (None if returned is None else normalize_metric(returned))
        except (Exception, SystemExit):  # sys.exit() in training code (argparse...) fails the trial only
            return failed(traceback.format_exc())
        if final is None:
            return failed(
                "the evaluator neither returned a metric nor called report_final_result(); "
                "return the score (or report it) at the end of training"
            )
        # A plain number is the objective: NaN/inf fails the trial. In a dict only the objective
        # counts, and only the experiment knows which key that is (it fails a non-finite objective).
        if not isinstance(final, dict) and not math.isfinite(final):
            return failed(f"the final metric is not finite ({final}); the trial is counted as failed")
        return TrialEvent(
            "finished",
            trial.id,
            worker,
            metric=final,
            status="succeeded",
            duration=time.time() - start,
            architecture=architecture,
        )


def _summary(model: Any) -> dict[str, Any] | None:
    """The model's module tree, recorded for viewers; never what fails a trial."""
    try:
        return module_summary(model)
    except Exception:  # an exotic module whose parameters() raises: the trial still runs
        return None


@functools.cache
def _has_accelerator() -> bool:
    xpu = getattr(torch, "xpu", None)
    return bool(
        torch.cuda.is_available() or torch.backends.mps.is_available() or (xpu is not None and xpu.is_available())
    )


def seed_torch(seed: int) -> None:
    """``torch.manual_seed``, without its cost where there is no accelerator: it
    queues a lazy seeding per device type with a recorded stack trace (~0.8 ms, a
    quarter of an in-process trial's overhead)."""
    if _has_accelerator():
        torch.manual_seed(seed)
    else:
        torch.random.default_generator.manual_seed(seed)

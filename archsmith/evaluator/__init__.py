"""Evaluators (how one architecture is trained and scored) and the trial-side
reporting API. Lightning-based evaluators import Lightning only when used."""

from typing import TYPE_CHECKING, Any

from ._base import Evaluator
from ._functional import FunctionalEvaluator
from ._metric import Metric, MetricError, normalize_metric, objective_value, objective_values
from ._recipe import TrainingRecipe
from ._trial import (
    TrialContext,
    TrialError,
    current_sample,
    current_trial,
    report,
    report_final,
    report_final_result,
    report_intermediate_result,
    should_stop,
    trial_context,
)

if TYPE_CHECKING:
    from ._lightning import Classification, Lightning, Regression

_LAZY = {"Classification", "Regression", "Lightning"}


def __getattr__(name: str) -> Any:
    # Lightning is heavy: load it only when a Lightning evaluator is asked for.
    if name in _LAZY:
        from . import _lightning

        return getattr(_lightning, name)
    raise AttributeError(f"module 'archsmith.evaluator' has no attribute {name!r}")


__all__ = [
    "Classification",
    "Evaluator",
    "FunctionalEvaluator",
    "Lightning",
    "Metric",
    "MetricError",
    "Regression",
    "TrialContext",
    "TrialError",
    "TrainingRecipe",
    "current_sample",
    "current_trial",
    "normalize_metric",
    "objective_value",
    "objective_values",
    "report",
    "report_final",
    "report_final_result",
    "report_intermediate_result",
    "should_stop",
    "trial_context",
]

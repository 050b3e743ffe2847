"""Metrics: a float, or a dict of floats with one of them named as the objective."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Union

from archsmith.space import ArchsmithError

Metric = Union[float, dict[str, float]]


class MetricError(ArchsmithError, TypeError):
    """A reported metric is not a number or a dict of numbers."""


def _number(value: Any, where: str) -> float:
    if isinstance(value, (bool, str, bytes)):
        raise MetricError(f"{where}: {value!r} ({type(value).__name__}) is not a number")
    try:
        number = float(value)  # accepts numpy and 0-d torch scalars
    except (TypeError, ValueError):
        raise MetricError(f"{where}: {value!r} ({type(value).__name__}) is not a number") from None
    return number


def normalize_metric(metric: Any) -> Metric:
    """A float or a ``{name: float}`` dict (keys are strings); ``MetricError`` otherwise."""
    if isinstance(metric, Mapping):
        if not metric:
            raise MetricError("a metric dict is empty; report at least the objective")
        out = {}
        for key, value in metric.items():
            if not isinstance(key, str):
                raise MetricError(f"metric names must be strings, got {key!r}")
            out[key] = _number(value, f"metric {key!r}")
        return out
    return _number(metric, "metric")


def objective_value(metric: Metric, objective: str) -> float:
    """The objective's value in ``metric``; ``'default'`` also names a plain float."""
    if isinstance(metric, dict):
        if objective not in metric:
            raise MetricError(
                f"the objective {objective!r} is not in the reported metric {sorted(metric)}; report it, "
                "or set ExperimentConfig(objective=...) to one of these names"
            )
        return metric[objective]
    if objective != "default":
        raise MetricError(
            f"a plain number was reported but the objective is {objective!r}; report a dict with "
            f"{objective!r} in it, or use objective='default'"
        )
    return metric


def objective_values(metric: Metric, objectives: tuple[str, ...] | list[str]) -> tuple[float, ...]:
    """The value of each objective in ``metric``, in order."""
    if len(objectives) > 1 and not isinstance(metric, dict):
        raise MetricError(
            f"a plain number was reported but there are {len(objectives)} objectives {list(objectives)}; "
            "report a dict with each of them, e.g. archsmith.report_final_result({'accuracy': ..., 'params': ...})"
        )
    return tuple(objective_value(metric, name) for name in objectives)


#: The objective name that stands for an evaluator's primary metric (NNI's name for it).
DEFAULT_OBJECTIVE = "default"


def primary_metric(evaluator: Any) -> str:
    """The name of the metric ``evaluator`` is scored by: its ``primary_metric``
    (``"val_acc"`` for ``Classification``, ``"val_mse"`` for ``Regression``), else
    ``"default"`` (a plain number a ``FunctionalEvaluator`` reports)."""
    name = getattr(evaluator, "primary_metric", None)
    return name if isinstance(name, str) and name else DEFAULT_OBJECTIVE


def resolve_objectives(objectives: tuple[str, ...], evaluator: Any) -> tuple[str, ...]:
    """``objectives`` with ``"default"`` read as the evaluator's primary metric, so
    ``ExperimentConfig(objective="default")`` (NNI's spelling, and the config's
    default) means ``val_acc`` for ``Classification``; a name given is kept."""
    primary = primary_metric(evaluator)
    return tuple(primary if name == DEFAULT_OBJECTIVE else name for name in objectives)


def is_finite(value: float) -> bool:
    return not (math.isnan(value) or math.isinf(value))

"""The trial-side API: reports, current_sample, should_stop, trial_context; metrics."""

from __future__ import annotations

import math
import threading
from typing import Any

import numpy as np
import pytest
import torch

import archsmith
from archsmith.evaluator import (
    MetricError,
    TrialContext,
    TrialError,
    current_sample,
    current_trial,
    normalize_metric,
    objective_value,
    report,
    report_final,
    report_final_result,
    report_intermediate_result,
    should_stop,
    trial_context,
)


def test_outside_a_trial_reports_are_ignored_and_sample_raises() -> None:
    assert current_trial() is None
    report_intermediate_result(0.5)
    report_final_result({"default": 1.0})
    assert should_stop() is False
    with pytest.raises(TrialError, match="outside a trial"):
        current_sample()


def test_outside_a_trial_bad_metrics_still_raise() -> None:
    with pytest.raises(MetricError):
        report_intermediate_result("high")


def test_reports_reach_the_context_in_order() -> None:
    steps: list[tuple[int, Any]] = []
    ctx = TrialContext(3, {"a": 1}, on_intermediate=lambda s, m: steps.append((s, m)))
    with trial_context(ctx) as entered:
        assert entered is ctx and current_trial() is ctx
        assert current_sample() == {"a": 1}
        report_intermediate_result(0.1)
        report({"default": torch.tensor(0.2), "loss": np.float32(1.5)})
        report_final({"default": 0.3})
    assert current_trial() is None
    assert steps == [(0, 0.1), (1, {"default": pytest.approx(0.2), "loss": 1.5})]
    assert ctx.intermediates == [0.1, {"default": pytest.approx(0.2), "loss": 1.5}]
    assert ctx.final == {"default": 0.3}


def test_top_level_names_are_the_same_functions() -> None:
    assert archsmith.report_intermediate_result is report_intermediate_result
    assert archsmith.report_final_result is report_final_result
    assert archsmith.should_stop is should_stop
    assert archsmith.current_sample is current_sample


def test_final_result_twice_is_an_error() -> None:
    with trial_context(TrialContext(9, {})):
        report_final_result(1.0)
        with pytest.raises(TrialError, match="trial 9 reported its final result twice"):
            report_final_result(2.0)


def test_should_stop_asks_the_context() -> None:
    flag = {"stop": False}
    with trial_context(TrialContext(1, {}, stop_requested=lambda: flag["stop"])):
        assert should_stop() is False
        flag["stop"] = True
        assert should_stop() is True


def test_contexts_nest_and_restore() -> None:
    outer, inner = TrialContext(1, {"x": 1}), TrialContext(2, {"x": 2})
    with trial_context(outer):
        with trial_context(inner):
            report(1.0)
            assert current_sample() == {"x": 2}
        report(2.0)
        assert current_sample() == {"x": 1}
    assert inner.intermediates == [1.0] and outer.intermediates == [2.0]


def test_context_is_per_thread() -> None:
    seen: list[Any] = []
    with trial_context(TrialContext(1, {"x": 1})):
        thread = threading.Thread(target=lambda: seen.append(current_trial()))
        thread.start()
        thread.join()
    assert seen == [None]


@pytest.mark.parametrize(
    ("metric", "expected"),
    [
        (1, 1.0),
        (np.float64(0.5), 0.5),
        (torch.tensor(0.25), 0.25),
        ({"default": 1, "loss": torch.tensor(2.0)}, {"default": 1.0, "loss": 2.0}),
    ],
)
def test_normalize_metric(metric: Any, expected: Any) -> None:
    got = normalize_metric(metric)
    assert got == expected
    assert type(got) is type(expected)


@pytest.mark.parametrize(
    ("metric", "pattern"),
    [
        (True, "bool"),
        (None, "not a number"),
        ({}, "empty"),
        ({1: 0.5}, "names must be strings"),
        ({"default": [1, 2]}, "metric 'default'"),
    ],
)
def test_bad_metrics(metric: Any, pattern: str) -> None:
    with pytest.raises(MetricError, match=pattern):
        normalize_metric(metric)


def test_nan_is_a_number_here() -> None:
    # NaN passes normalization; the experiment marks such a trial failed.
    assert math.isnan(normalize_metric(float("nan")))  # type: ignore[arg-type]


def test_objective_value() -> None:
    assert objective_value(0.7, "default") == 0.7
    assert objective_value({"default": 0.7, "loss": 0.1}, "loss") == 0.1
    with pytest.raises(MetricError, match="objective 'acc' is not in the reported metric"):
        objective_value({"default": 0.7}, "acc")
    with pytest.raises(MetricError, match="plain number was reported but the objective is 'acc'"):
        objective_value(0.7, "acc")

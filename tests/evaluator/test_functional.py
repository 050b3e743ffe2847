"""FunctionalEvaluator: any training function, with choices in its keyword arguments."""

from __future__ import annotations

from typing import Any

import cloudpickle
import pytest
import torch

import archsmith
from archsmith.evaluator import Evaluator, FunctionalEvaluator, TrialContext, trial_context
from archsmith.space import SampleError, SpaceError, choice


def train(model: torch.nn.Module, lr: float, epochs: int = 1) -> float:
    for epoch in range(epochs):
        archsmith.report_intermediate_result({"default": lr * (epoch + 1), "epoch": epoch})
    return lr * epochs


def test_calls_the_function_with_the_model_and_plain_kwargs() -> None:
    got: list[Any] = []

    def fn(model: torch.nn.Module, **kwargs: Any) -> float:
        got.append((model, kwargs))
        return 0.5

    model = torch.nn.Linear(2, 2)
    evaluator = FunctionalEvaluator(fn, a=1, b=[2, 3])
    assert isinstance(evaluator, Evaluator)
    assert evaluator.evaluate(model) == 0.5
    assert got == [(model, {"a": 1, "b": [2, 3]})]
    assert evaluator.search_space_leaves() == []


def test_choices_in_kwargs_join_the_space_and_take_the_trial_value() -> None:
    evaluator = FunctionalEvaluator(train, lr=choice("lr", [0.1, 0.01]), epochs=choice("epochs", [1, 3]))
    assert [leaf.label for leaf in evaluator.search_space_leaves()] == ["lr", "epochs"]
    steps: list[tuple[int, Any]] = []
    ctx = TrialContext(7, {"lr": 0.01, "epochs": 3}, on_intermediate=lambda s, m: steps.append((s, m)))
    with trial_context(ctx):
        assert evaluator.evaluate(torch.nn.Identity()) == pytest.approx(0.03)
    assert [s for s, _ in steps] == [0, 1, 2]
    assert steps[-1][1] == {"default": pytest.approx(0.03), "epoch": 2.0}


def test_choices_nested_in_containers_and_expressions_resolve() -> None:
    width = choice("w", [2, 4])
    evaluator = FunctionalEvaluator(lambda model, cfg: cfg, cfg={"sizes": [width, width * 2], "fixed": "x"})
    with trial_context(TrialContext(1, {"w": 4})):
        assert evaluator.evaluate(torch.nn.Identity()) == {"sizes": [4, 8], "fixed": "x"}


def test_outside_a_trial_choices_take_their_defaults() -> None:
    evaluator = FunctionalEvaluator(train, lr=choice("lr", [0.1, 0.01]))
    assert evaluator.evaluate(torch.nn.Identity()) == pytest.approx(0.1)


def test_a_sample_missing_the_evaluator_label_is_a_sample_error() -> None:
    evaluator = FunctionalEvaluator(train, lr=choice("lr", [0.1, 0.01]))
    with trial_context(TrialContext(1, {"width": 3})), pytest.raises(SampleError, match="'lr': missing"):
        evaluator.evaluate(torch.nn.Identity())


def test_not_callable_is_rejected() -> None:
    with pytest.raises(SpaceError, match="needs a function"):
        FunctionalEvaluator(42)  # type: ignore[arg-type]


def test_picklable_with_a_local_function() -> None:
    scale = 3

    def local(model: torch.nn.Module, x: int) -> int:
        return x * scale

    evaluator = FunctionalEvaluator(local, x=choice("x", [1, 2]))
    again = cloudpickle.loads(cloudpickle.dumps(evaluator))
    with trial_context(TrialContext(1, {"x": 2})):
        assert again.evaluate(torch.nn.Identity()) == 6
    assert "local" in repr(again) and "x=" in repr(again)

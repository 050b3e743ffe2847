"""NNI's spellings in archsmith itself: choice(label, candidates), export_top_models(top_k=),
evaluator functions taking a model class, NNI's exported decisions, and prior= used
by the strategies that sample."""

from __future__ import annotations

import random
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import torch

import archsmith
import archsmith.nn as nn
from archsmith.evaluator import FunctionalEvaluator
from archsmith.experiment import Experiment, ExperimentConfig, ExperimentError
from archsmith.space import Space, SpaceError
from archsmith.strategy import TPE, GridSearch, PolicyBasedRL, Random, RegularizedEvolution
from archsmith.strategy._evolution import mutate_value

# choice ------------------------------------------------------------------------------


def test_choice_takes_nni_order_and_archsmith_order() -> None:
    nni_style = archsmith.choice("width", [16, 32], prior=[0.25, 0.75])
    ours = archsmith.choice([16, 32], label="width2")
    assert (nni_style.label, nni_style.values, nni_style.weights) == ("width", [16, 32], [0.25, 0.75])
    assert (ours.label, ours.values) == ("width2", [16, 32])
    assert nn.choice is archsmith.choice


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: archsmith.choice("width"), r"choice\('width'\) has no candidates"),
        (lambda: archsmith.choice(None), r"choice\(None\) has no candidates"),
        (lambda: archsmith.choice("a", [1, 2], label="b"), "choice got two labels"),
        (lambda: archsmith.choice(3, [1, 2]), "the label must be a string or None, got 3"),
    ],
)
def test_choice_errors_name_both_spellings(call: Any, match: str) -> None:
    with pytest.raises(SpaceError, match=match):
        call()


# evaluator functions ----------------------------------------------------------------


class Width(nn.ModelSpace):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(2, nn.choice("w", [1, 2]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


def by_name(model_cls):  # type: ignore[no-untyped-def]
    return model_cls().fc.out_features


def by_annotation(net: type[torch.nn.Module]) -> int:
    return net().fc.out_features  # type: ignore[union-attr,return-value]


def by_string_annotation(net: type[torch.nn.Module]) -> int:
    return net().fc.out_features  # type: ignore[union-attr,return-value]


by_string_annotation.__annotations__["net"] = "typing.Type[torch.nn.Module]"


def takes_model(model: torch.nn.Module) -> int:
    return model.fc.out_features  # type: ignore[union-attr,return-value]


@pytest.mark.parametrize(
    ("fn", "takes_class"), [(by_name, True), (by_annotation, True), (by_string_annotation, True), (takes_model, False)]
)
def test_evaluator_functions_get_a_class_or_the_model(fn: Any, takes_class: bool) -> None:
    evaluator = FunctionalEvaluator(fn)
    assert evaluator.takes_class is takes_class
    assert evaluator.evaluate(Width().freeze({"w": 2})) == 2


def test_the_class_builds_the_trial_model_and_takes_no_arguments() -> None:
    model = Width().freeze({"w": 1})
    seen = []
    FunctionalEvaluator(lambda model_cls: seen.append(model_cls)).evaluate(model)
    (cls,) = seen
    assert cls() is model and cls.__name__ == "Width"
    with pytest.raises(TypeError, match=r"Width\(\) takes no arguments: the architecture is already chosen"):
        cls(3)


def test_an_nni_2_function_with_another_parameter_name_is_told_the_fix() -> None:
    def evaluate(m):  # type: ignore[no-untyped-def]
        model = m()  # NNI 2.x habit, the parameter not named model_cls
        return model

    with pytest.raises(
        SpaceError, match=r"NNI 2.x's `model = model_cls\(\)`.*name the function's first parameter model_cls"
    ):
        FunctionalEvaluator(evaluate).evaluate(Width().freeze({"w": 1}))
    with pytest.raises(TypeError, match="unsupported operand"):  # other TypeErrors pass through unchanged
        FunctionalEvaluator(lambda model: model + 1).evaluate(Width().freeze({"w": 1}))


def test_an_nni_2_evaluator_runs_in_an_experiment(tmp_path: Path) -> None:
    exp = Experiment(
        Width(),
        by_name,
        Random(),
        ExperimentConfig(max_trials=2, engine="inprocess", workdir=tmp_path / "e", seed=0, direction="maximize"),
    )
    exp.run()
    assert exp.export_top_models(top_k=2) == [{"w": 2}, {"w": 1}]
    assert exp.export_top_models(1) == exp.export_top_models(top_k=1)
    with pytest.raises(ExperimentError, match="give k or top_k \\(NNI's name\\), not both"):
        exp.export_top_models(2, top_k=1)
    with pytest.raises(ExperimentError, match="k must be a positive integer"):
        exp.export_top_models(top_k=0)


# NNI's exported decisions ----------------------------------------------------------


class Cell(nn.ModelSpace):
    def __init__(self) -> None:
        super().__init__()
        self.op = nn.LayerChoice([nn.Linear(2, 2), nn.Identity()], label="op")
        self.named = nn.LayerChoice({"lin": nn.Linear(2, 2), "id": nn.Identity()}, label="named")
        self.inp = nn.InputChoice(2, 1, label="inp")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inp([self.named(self.op(x)), x])


def test_nni_exported_forms_freeze_and_load(tmp_path: Path) -> None:
    nni_sample = {"op": "1", "named": "id", "inp": [1]}  # NNI 2.x: the candidate name, inputs as a list
    model = Cell().freeze(nni_sample)
    assert type(model.op) is torch.nn.Identity and model.inp.chosen == [1]
    path = tmp_path / "nni_arch.json"
    path.write_text('{"op": "0", "named": "lin", "inp": [0]}')
    with archsmith.fixed_arch(path):
        fixed = Cell()
    assert type(fixed.op) is torch.nn.Linear and type(fixed.named) is torch.nn.Linear
    assert Cell().search_space.validate(nni_sample) == {"op": 1, "named": "id", "inp": 1}


@pytest.mark.parametrize(
    ("sample", "match"),
    [
        ({"op": "2", "named": "id", "inp": 0}, "'op': 2 is out of range"),
        ({"op": "x", "named": "id", "inp": 0}, "'op': wrong type str"),
        ({"op": 0, "named": "id", "inp": [0, 1]}, "names 2 inputs but this InputChoice chooses one"),
    ],
)
def test_ambiguous_or_wrong_exported_forms_are_refused(sample: dict[str, Any], match: str) -> None:
    with pytest.raises(archsmith.SampleError, match=match):
        Cell().freeze(sample)


# prior= in the strategies ------------------------------------------------------------


def test_evolution_mutations_draw_by_the_prior() -> None:
    leaf = archsmith.choice("p", ["a", "b", "c", "d"], prior=[0.1, 0.0, 0.3, 0.6])
    rng = random.Random(0)
    counts = Counter(mutate_value(leaf, "a", rng) for _ in range(20_000))
    assert counts["b"] == 0 and "a" not in counts  # never a zero-probability value, never the same
    assert abs(counts["c"] / 20_000 - 1 / 3) < 0.015 and abs(counts["d"] / 20_000 - 2 / 3) < 0.015
    only = archsmith.choice("q", ["a", "b"], prior=[1.0, 0.0])
    assert mutate_value(only, "a", rng) == "a"  # the prior allows nothing else


@pytest.mark.parametrize("strategy", [GridSearch, TPE, PolicyBasedRL])
def test_strategies_that_ignore_priors_say_so(strategy: Any) -> None:
    space = Space([archsmith.choice("p", [1, 2], prior=[0.9, 0.1]), archsmith.choice("n", [1, 2])])
    with pytest.warns(UserWarning, match=r"does not draw by the prior= of \['p'\]: Random and RegularizedEvolution do"):
        strategy().attach(space, seed=0)


@pytest.mark.parametrize("strategy", [Random, RegularizedEvolution, GridSearch])
def test_no_warning_without_a_prior_or_with_a_strategy_that_uses_it(strategy: Any) -> None:
    space = Space(
        [archsmith.choice("p", [1, 2], prior=[0.9, 0.1])]
        if strategy is not GridSearch
        else [archsmith.choice("n", [1, 2])]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        strategy().attach(space, seed=0)

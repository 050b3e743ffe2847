"""The per-decision expected cost (profilers, tables, functions) shared by DARTS,
GumbelDARTS and Proxyless; hard constraints in the one-shot searches (honoured by
RandomOneShot and ENAS, refused by the algorithms that learn a distribution)."""

from __future__ import annotations

import itertools
import json
import re
from typing import Any

import pytest
import torch

import archsmith.nn as nn
from archsmith.evaluator import Regression
from archsmith.experiment import Experiment, ExperimentConfig
from archsmith.profiler import CallableProfiler, FlopsProfiler, LatencyProfiler, NumParamsProfiler
from archsmith.space import (
    CategoricalMultiple,
    Condition,
    Constraint,
    Space,
    SpaceError,
    choice,
    uniform,
)
from archsmith.strategy import DARTS, ENAS, GumbelDARTS, Proxyless, Random, RandomOneShot
from archsmith.strategy.oneshot import CostTable, profiled_table
from archsmith.strategy.oneshot._profiled_cost import concentrated_on, expected_cost_model

from ._spaces import Costly, D, ExpressionDepths, Nested, Repeats


class CostNet(nn.ModelSpace):
    """Two candidates computing the same thing at different costs: only a cost
    penalty tells them apart."""

    def __init__(self, width: int = 4) -> None:
        super().__init__()
        self.op = nn.LayerChoice({"costly": lambda: Costly(width), "cheap": torch.nn.Identity}, label="op")
        self.head = torch.nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.op(x))


class Widths(nn.ModelSpace):
    """A layer choice and a hidden width: parameters and FLOPs additive in both."""

    def __init__(self) -> None:
        super().__init__()
        self.op = nn.LayerChoice([nn.Linear(D, D), nn.Identity()], label="op")
        width = nn.choice("width", [2, 8])
        self.fc1 = nn.Linear(D, width)
        self.fc2 = nn.Linear(width, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.fc1(self.op(x)))


def identity_task(epochs: int = 3, n: int = 128) -> Regression:
    x = torch.randn(n, 4, generator=torch.Generator().manual_seed(0))
    data = torch.utils.data.TensorDataset(x, x.clone())
    return Regression(
        train_dataloaders=torch.utils.data.DataLoader(data, batch_size=32, shuffle=True),
        val_dataloaders=torch.utils.data.DataLoader(data, batch_size=128),
        max_epochs=epochs,
        learning_rate=1e-2,
    )


# The model --------------------------------------------------------------------------------------
@pytest.mark.parametrize("make", [Widths, Nested, Repeats, ExpressionDepths], ids=lambda m: m.__name__)
@pytest.mark.parametrize("kind", ["params", "flops"])
def test_expected_cost_is_the_profilers_cost_at_every_architecture_of_an_additive_space(make: Any, kind: str) -> None:
    space = make()
    profiler = NumParamsProfiler(space) if kind == "params" else FlopsProfiler(space, torch.randn(3, D))
    search_space = space.search_space
    model = expected_cost_model(profiler, search_space, list(search_space), "DARTS")
    samples = list(search_space.grid())
    assert len(samples) > 3
    for sample in samples:  # choices nested in candidates and depths included (ExpressionDepths, Repeats)
        assert float(model.expected(concentrated_on(search_space, sample))) == pytest.approx(profiler.profile(sample))
    assert model.largest == pytest.approx(max(profiler.profile(s) for s in samples))


def test_a_k_input_choice_costs_each_chosen_input() -> None:
    space = Space([CategoricalMultiple([0, 1, 2, 3], n_chosen=2, label="in"), choice("w", [1, 2])])
    inputs = [1.0, 10.0, 100.0, 1000.0]
    cost = CallableProfiler(lambda s: 5.0 + sum(inputs[i] for i in s["in"]) + 3.0 * s["w"], name="toy")
    model = expected_cost_model(cost, space, ["in", "w"], "DARTS")
    for sample in space.grid():
        assert float(model.expected(concentrated_on(space, sample))) == pytest.approx(cost.profile(sample))
    table = profiled_table(cost, space, ["in", "w"])
    assert table.constant == cost.profile({"in": [0, 1], "w": 2})  # the base: the middle value, the default inputs
    # differences between inputs are their own costs' differences
    assert table.costs["in"][3] - table.costs["in"][0] == pytest.approx(999.0)


def test_first_order_where_decisions_interact() -> None:
    """FLOPs of Linear(a, b) are a product: the model is exact along each axis
    through the base (the middle values, a=2 and b=2) and off the product elsewhere."""
    space = Space([choice("a", [1, 2, 3]), choice("b", [1, 2])])
    cost = CallableProfiler(lambda s: float(s["a"] * s["b"]), name="product")
    model = expected_cost_model(cost, space, ["a", "b"], "DARTS")
    for a, b, modelled in [(1, 2, 2.0), (3, 2, 6.0), (2, 1, 2.0), (3, 1, 4.0), (1, 1, 0.0)]:
        assert float(model.expected(concentrated_on(space, {"a": a, "b": b}))) == modelled  # the true cost is a * b
    around_default = profiled_table(cost, space, ["a", "b"], base={"a": 1, "b": 1})
    assert around_default.constant == 1.0 and around_default.costs["a"] == {1: 0.0, 2: 1.0, 3: 2.0}


def test_gradient_reaches_the_probabilities_and_points_to_the_cheaper_value() -> None:
    space = Space([choice("w", [8, 16, 32])])
    model = expected_cost_model({"w": {8: 1.0, 16: 2.0, 32: 4.0}}, space, ["w"], "DARTS")
    alpha = torch.zeros(3, requires_grad=True)
    cost = model.normalised({"w": torch.softmax(alpha, -1)})
    assert float(cost.detach()) == pytest.approx(7 / 3 / 4)
    cost.backward()
    assert alpha.grad is not None and alpha.grad[0] < 0 < alpha.grad[2]


def test_a_table_may_spell_values_as_json_keys_and_come_from_json() -> None:
    space = Space([choice("w", [8, 16]), choice("op", ["conv", "pool"])])
    text = json.dumps({"constant": 1.5, "costs": {"w": {"8": 2.0, "16": 4.0}, "op": {"conv": 3.0, "pool": 0.5}}})
    model = expected_cost_model(CostTable.from_json(text, name="latency"), space, ["w", "op"], "Proxyless")
    assert float(model.expected(concentrated_on(space, {"w": 16, "op": "pool"}))) == 1.5 + 4.0 + 0.5
    assert model.largest == 1.5 + 4.0 + 3.0 and model.name == "latency"


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"w": {8: 1.0, 16: 2.0}}, "cost table: no costs for ['op']; give each searched label its costs"),
        ({"w": {8: 1.0}, "op": {"a": 1.0, "b": 1.0}}, "cost table: 'w' has no cost for [16]"),
        (
            {"w": {8: 1, 16: 2}, "op": {"a": 1, "b": 1}, "wdith": {8: 1}},
            "cost table: labels not in the space: ['wdith']",
        ),
        ({"w": {8: "fast", 16: 2.0}}, "cost table['w'][8] must be a finite number, got 'fast'"),
        ({"w": [1.0, 2.0]}, "cost table: 'w' must map each of its values to a cost"),
        ({"w": {8: 0.0, 16: 0.0}, "op": {"a": 0.0, "b": 0.0}}, "gives no architecture a positive cost"),
    ],
)
def test_table_errors_name_the_label_and_value(table: Any, message: str) -> None:
    space = Space([choice("w", [8, 16]), choice("op", ["a", "b"])])
    with pytest.raises(SpaceError, match=re.escape(message)):
        expected_cost_model(table, space, ["w", "op"], "DARTS")


def test_choices_without_a_cost_per_value_are_refused() -> None:
    numeric = Space([uniform("rate", 0.0, 1.0)])
    with pytest.raises(SpaceError, match=r"'rate' is .*: a per-decision cost needs categorical choices"):
        expected_cost_model({"rate": {0.5: 1.0}}, numeric, ["rate"], "DARTS")
    anything = Space([CategoricalMultiple([0, 1, 2], n_chosen=None, label="in")])
    with pytest.raises(SpaceError, match=re.escape("'in' chooses any number of inputs (n_chosen=None)")):
        expected_cost_model({"in": {0: 1.0, 1: 1.0, 2: 1.0}}, anything, ["in"], "DARTS")


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: DARTS(cost="flops"), "cost must be a profiler (FlopsProfiler"),
        (lambda: DARTS(cost=lambda s: 1.0), "wrap a function of a sample as archsmith.profiler.CallableProfiler"),
        (lambda: GumbelDARTS(cost={"op": {"a": "x"}}), "cost table['op']['a'] must be a finite number"),
        (lambda: DARTS(cost_weight=-1), "cost_weight must be a number >= 0"),
        (
            lambda: Proxyless(cost="latency"),
            "cost must be 'params', 'flops', a function cost(module) -> float, a profiler",
        ),
        (lambda: Proxyless(cost=3), "cost must be 'params', 'flops'"),
        (lambda: Proxyless(cost=Constraint(lambda s: True, name="small")), "cost='small' is a constraint, not a cost"),
    ],
)
def test_bad_cost_arguments_are_named_at_construction(build: Any, message: str) -> None:
    with pytest.raises(SpaceError, match=re.escape(message)):
        build()


# The algorithms ----------------------------------------------------------------------------------
def _p_cheap(strategy: Any) -> float:
    return float(strategy.supernet.decisions.probabilities()["op"][1])


@pytest.mark.parametrize(
    "make",
    [
        lambda cost, w: DARTS(arc_learning_rate=0.1, cost=cost, cost_weight=w),
        lambda cost, w: GumbelDARTS(temperature=1.0, arc_learning_rate=0.1, cost=cost, cost_weight=w),
        lambda cost, w: Proxyless(arc_learning_rate=0.2, cost=cost, cost_weight=w),
    ],
    ids=["darts", "gumbeldarts", "proxyless"],
)
def test_a_large_cost_weight_picks_the_cheaper_architecture(make: Any) -> None:
    space, evaluator = CostNet(), identity_task()
    costed = make(NumParamsProfiler(space), 5.0)
    ranking = costed.search(space, evaluator, seed=0)
    free = make(NumParamsProfiler(space), 0.0)
    free.search(space, evaluator, seed=0)
    assert ranking[0][0] == {"op": "cheap"}
    assert _p_cheap(costed) > _p_cheap(free) + 0.2
    assert float(costed.expected_cost().detach()) < float(free.expected_cost().detach())


def test_the_cost_is_logged_and_a_table_or_function_works_as_a_profiler() -> None:
    space, evaluator = CostNet(), identity_task(epochs=2)
    history: list[dict[str, float]] = []
    strategy = DARTS(arc_learning_rate=0.1, cost={"op": {"costly": 10.0, "cheap": 0.0}}, cost_weight=5.0)
    ranking = strategy.search(space, evaluator, seed=0, on_epoch=lambda e, n, m: history.append(m))
    assert ranking[0][0] == {"op": "cheap"}
    assert all(0 < m["arch_cost"] < 1 for m in history) and history[-1]["arch_cost"] < history[0]["arch_cost"]
    function = CallableProfiler(lambda s: 10.0 if s["op"] == "costly" else 1.0, name="latency")
    strategy = Proxyless(arc_learning_rate=0.2, cost=function, cost_weight=5.0)
    assert strategy.search(space, evaluator, seed=0)[0][0] == {"op": "cheap"}
    assert "cost=latency" in repr(strategy) and "cost=table(1 labels)" in repr(DARTS(cost={"op": {}}))


def test_a_latency_table_measured_elsewhere_drives_proxyless() -> None:
    """``LatencyProfiler.from_table``: a table of module timings from another device."""
    space, x = CostNet(), torch.zeros(2, 4)
    timed = LatencyProfiler(space, x, warmup=1, repeats=1)
    keys = {key for op in ("costly", "cheap") for key in timed.keys({"op": op})}
    phone = LatencyProfiler.from_table(space, x, {key: 3.0 if key.startswith("op[costly]") else 0.5 for key in keys})
    assert phone.profile({"op": "costly"}) == 3.0 * 2 + 0.5 * 3 and phone.profile({"op": "cheap"}) == 0.5 * 4
    strategy = Proxyless(arc_learning_rate=0.2, cost=phone, cost_weight=5.0)
    assert strategy.search(space, identity_task(epochs=2), seed=0)[0][0] == {"op": "cheap"}
    assert strategy.costs is not None and strategy.costs.largest == phone.profile({"op": "costly"})


def test_gumbel_expects_the_cost_at_its_temperature() -> None:
    strategy = GumbelDARTS(temperature=0.5, cost={"op": {"costly": 1.0, "cheap": 0.0}})
    strategy.search(CostNet(), identity_task(epochs=1), seed=0)
    alpha = strategy.supernet.decisions.alpha("op").detach()
    expected = float(torch.softmax(alpha / strategy.tau, -1)[0])
    assert float(strategy.expected_cost().detach()) == pytest.approx(expected)


def test_unrolled_darts_adds_the_cost_gradient() -> None:
    strategy = DARTS(arc_learning_rate=0.1, unrolled=True, cost={"op": {"costly": 1.0, "cheap": 0.0}}, cost_weight=5.0)
    ranking = strategy.search(CostNet(), identity_task(epochs=2), seed=0)
    assert ranking[0][0] == {"op": "cheap"}


# Constraints --------------------------------------------------------------------------------------
class Budget(nn.ModelSpace):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(4, nn.choice("width", [1, 2, 8, 16]))
        self.op = nn.LayerChoice({"id": torch.nn.Identity(), "tanh": torch.nn.Tanh()}, label="op")
        self.fc2 = nn.Linear(nn.choice("width", [1, 2, 8, 16]), 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.op(self.fc1(x)))


@pytest.mark.parametrize(
    "make",
    [
        lambda: RandomOneShot(search=Random(), search_budget=12),
        lambda: RandomOneShot(search_budget=12),  # regularized evolution
        lambda: ENAS(ctrl_steps=4, ctrl_steps_aggregate=2, hidden_size=8, ranking_samples=4),
    ],
    ids=["random", "evolution", "enas"],
)
def test_the_ranking_meets_the_constraints(make: Any) -> None:
    space = Budget()
    params = NumParamsProfiler(space)
    small = params <= params.profile({"width": 2, "op": "id"})
    strategy = make()
    ranking = strategy.search(space, identity_task(epochs=1), seed=0, constraints=[small])
    assert ranking and all(small(sample) for sample, _ in ranking)
    assert {sample["width"] for sample, _ in ranking} <= {1, 2}
    unconstrained = make().search(space, identity_task(epochs=1), seed=0)
    assert {sample["width"] for sample, _ in unconstrained} - {1, 2}  # the bound is what left them out


def test_random_oneshot_trains_every_architecture_but_ranks_the_constrained() -> None:
    space, seen = Budget(), set()
    strategy = RandomOneShot(search=Random(), search_budget=8)
    train_step = strategy.training_step

    def recording(batch: Any, arch_batch: Any) -> dict[str, float]:
        shown = train_step(batch, arch_batch)
        seen.add(strategy.supernet.decisions.sample["width"])
        return shown

    strategy.training_step = recording  # type: ignore[method-assign]
    ranking = strategy.search(
        space, identity_task(epochs=2), seed=0, constraints=[Constraint(lambda s: s["width"] == 1, name="narrow")]
    )
    assert {16, 8} & seen and {sample["width"] for sample, _ in ranking} == {1}


def test_an_unsatisfiable_constraint_is_named_before_training() -> None:
    epochs: list[int] = []
    never = Constraint(lambda s: s["width"] > 100, name="width > 100")
    with pytest.raises(SpaceError, match=re.escape("constraints ['width > 100']")):
        RandomOneShot(search=Random()).search(
            Budget(), identity_task(epochs=1), seed=0, constraints=[never], on_epoch=lambda e, n, m: epochs.append(e)
        )
    assert epochs == []


@pytest.mark.parametrize("make", [DARTS, GumbelDARTS, Proxyless], ids=["darts", "gumbeldarts", "proxyless"])
def test_distribution_learners_refuse_hard_constraints(make: Any) -> None:
    space = Budget()
    small = NumParamsProfiler(space) <= 40
    name = make.__name__
    with pytest.raises(
        SpaceError,
        match=re.escape(
            f"{name} learns a distribution over every architecture and cannot honour the hard constraints ['params <= 40']: penalise the cost instead ({name}(cost=profiler"
        ),
    ) as found:
        make().search(space, identity_task(epochs=1), seed=0, constraints=[small])
    assert "RandomOneShot or ENAS" in str(found.value)
    with pytest.raises(SpaceError, match=re.escape("not an archsmith.space.Constraint")):
        RandomOneShot().search(space, identity_task(epochs=1), seed=0, constraints=[lambda s: True])


def test_the_expectation_and_its_gradient_equal_brute_force_over_conditions() -> None:
    """``x`` is used where ``a`` is 1 or ``b`` is 1 (two alternatives); ``y`` where
    ``x`` is "on" (a chain)."""
    space = Space(
        [choice("a", [0, 1]), choice("b", [0, 1, 2]), choice("x", ["off", "on"]), choice("y", [1, 2, 3])],
        conditions=[Condition("x", "a", [1]), Condition("x", "b", [1]), Condition("y", "x", ["on"])],
    )
    table = {
        "a": {0: 1.0, 1: 2.0},
        "b": {0: 0.5, 1: 0.0, 2: 3.0},
        "x": {"off": 0.0, "on": 4.0},
        "y": {1: 1, 2: 5, 3: 9},
    }
    model = expected_cost_model(CostTable(table, constant=2.0), space, list(space), "DARTS")
    logits = {
        label: torch.randn(len(space[label].values), generator=torch.Generator().manual_seed(i)).requires_grad_()
        for i, label in enumerate(space)
    }  # type: ignore[attr-defined]
    p = {label: torch.softmax(logit.double(), -1) for label, logit in logits.items()}
    got = model.expected(p)
    brute = torch.zeros((), dtype=torch.float64)
    for sample in itertools.product(*(list(enumerate(space[label].values)) for label in space)):  # type: ignore[attr-defined]
        chosen = dict(zip(space, sample))
        values = {label: value for label, (_, value) in chosen.items()}
        used = space.active_labels(values)
        cost = 2.0 + sum(table[label][values[label]] for label in used)
        weight = torch.prod(torch.stack([p[label][i] for label, (i, _) in chosen.items()]))
        brute = brute + weight * cost
    torch.testing.assert_close(got, brute)
    grads = torch.autograd.grad(got, list(logits.values()), retain_graph=True)
    expected_grads = torch.autograd.grad(brute, list(logits.values()))
    for grad, expected in zip(grads, expected_grads):
        torch.testing.assert_close(grad, expected)


def test_an_experiment_ranks_only_what_meets_its_constraints_and_records_the_costs(tmp_path: Any) -> None:
    space = Budget()
    params = NumParamsProfiler(space)
    bound = params.profile({"width": 2, "op": "id"})
    config = ExperimentConfig(workdir=tmp_path / "spos", seed=0, constraints=[params <= bound])
    config.profilers = {"params": params}
    exp = Experiment(space, identity_task(epochs=1), RandomOneShot(search=Random(), search_budget=12), config)
    exp.run()
    trials = exp.trials()
    assert trials and all(t.metric["params"] <= bound for t in trials)  # type: ignore[index]
    assert all(params.profile(sample) <= bound for sample in exp.export_top_models(None))
    with pytest.raises(SpaceError, match=re.escape("DARTS learns a distribution over every architecture")):
        Experiment(  # refused when the experiment is built, before anything runs
            space,
            identity_task(epochs=1),
            DARTS(),
            ExperimentConfig(workdir=tmp_path / "darts", constraints=[params <= bound]),
        )
    assert not (tmp_path / "darts").exists()

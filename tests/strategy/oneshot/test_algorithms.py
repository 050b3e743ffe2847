"""Every registered one-shot algorithm (``ONESHOT_STRATEGIES``): finds the clearly right
choice of small synthetic tasks, is deterministic under a seed, resumes from a
checkpoint exactly, runs through ``Experiment`` (store, CLI, resume); plus the
DARTS-specific behaviour (second order, Gumbel temperature).

An algorithm x primitive pair its family does not support (read off ``MIXED_OPS``)
is skipped with the reason.
"""

from __future__ import annotations

import itertools
import json
import math
import random
from pathlib import Path
from typing import Any

import pytest
import torch
from torch.func import functional_call

import archsmith.nn as nn
from archsmith.cli import main
from archsmith.evaluator import FunctionalEvaluator
from archsmith.experiment import Experiment, ExperimentConfig, Store
from archsmith.experiment._progress import ProgressView
from archsmith.space import SpaceError
from archsmith.strategy.oneshot import (
    DARTS,
    FAMILY_ALGORITHMS,
    ONESHOT_STRATEGIES,
    GumbelDARTS,
    OneShotStrategy,
    Supernet,
)
from archsmith.strategy.oneshot._base import recipe_of

from ._spaces import (
    ALGORITHMS,
    CLASSES,
    TASKS,
    F,
    Head,
    PickLayer,
    Project,
    ReductionCell,
    Task,
    Zero,
    evaluator,
    make,
    unsupported,
)

EPOCHS = 3


def supported(name: str, task_name: str) -> Task:
    """The task, or a skip naming what the algorithm's family lacks for it."""
    task, family = TASKS[task_name], ONESHOT_STRATEGIES[name].family
    problems = unsupported(task.make(), family)
    if problems:
        pytest.skip(f"{name} ({family!r} family) does not support the {task_name} task: {problems}")
    return task


def better_first(ranking: list[tuple[dict[str, Any], float]], direction: str) -> bool:
    scores = [score for _, score in ranking]
    return scores == sorted(scores, reverse=direction == "maximize")


def state(strategy: OneShotStrategy) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in strategy.supernet.state_dict().items()}


def assert_same_state(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_every_algorithm_is_registered_under_its_family() -> None:
    listed = {(family, name) for family, names in FAMILY_ALGORITHMS.items() for name in names}
    registered = {(cls.family, cls.__name__) for cls in ONESHOT_STRATEGIES.values()}
    assert listed == registered  # no abstract base listed as an algorithm that supports something
    for name in ONESHOT_STRATEGIES:
        assert ONESHOT_STRATEGIES[name].__name__.lower() == name


# Search quality, determinism, resume ---------------------------------------------------------
@pytest.mark.parametrize("task_name", sorted(TASKS))
@pytest.mark.parametrize("name", ALGORITHMS)
def test_ranks_the_right_choice_first(name: str, task_name: str) -> None:
    task = supported(name, task_name)
    space = task.make()
    strategy = make(name, top_k=3)
    ranking = strategy.search(space, evaluator(task, EPOCHS), seed=0)
    assert ranking[0][0][task.label] == task.right, ranking
    assert 1 < len(ranking) <= 3
    assert len({json.dumps(sample, sort_keys=True) for sample, _ in ranking}) == len(ranking)
    for sample, score in ranking:
        assert space.validate(sample) == sample
        assert math.isfinite(score)
    assert better_first(ranking, strategy.score_direction)


@pytest.mark.parametrize("name", ALGORITHMS)
def test_the_same_seed_gives_the_same_search(name: str) -> None:
    task = supported(name, "layer_choice")
    first, second = make(name), make(name)
    ranking = first.search(task.make(), evaluator(task, 2), seed=5)
    assert second.search(task.make(), evaluator(task, 2), seed=5) == ranking
    assert_same_state(state(first), state(second))


@pytest.mark.parametrize("name", ALGORITHMS)
def test_an_interrupted_search_resumes_exactly(name: str, tmp_path: Path) -> None:
    task = supported(name, "layer_choice")
    whole = make(name)
    expected = whole.search(task.make(), evaluator(task, EPOCHS), seed=3)

    checkpoint, seen = tmp_path / "supernet.pt", []

    def stop_after_epoch_1(epoch: int, epochs: int, metrics: dict[str, float]) -> None:
        seen.append(epoch)
        if epoch == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        make(name).search(
            task.make(), evaluator(task, EPOCHS), seed=3, checkpoint=checkpoint, on_epoch=stop_after_epoch_1
        )
    assert seen == [0, 1] and checkpoint.exists()
    assert torch.load(checkpoint, weights_only=False)["epoch"] == 1

    resumed = make(name)  # a fresh process: nothing but the checkpoint carries over
    ranking = resumed.search(
        task.make(),
        evaluator(task, EPOCHS),
        seed=3,
        checkpoint=checkpoint,
        on_epoch=lambda epoch, *_: seen.append(epoch),
    )
    assert seen[2:] == [2]  # only the missing epoch ran
    assert ranking == expected
    assert_same_state(state(resumed), state(whole))


@pytest.mark.parametrize("name", ALGORITHMS)
def test_a_reduction_cell_trains_or_is_refused_with_the_reason(name: str) -> None:
    """A cell whose op depends on its input (stride 2 on inputs 0 and 1) trains under
    every algorithm whose family supports it; the others say why up front."""
    from archsmith.evaluator import Classification
    from archsmith.strategy.oneshot import UnsupportedSpaceError

    x = torch.randn(64, 2, 8, 8, generator=torch.Generator().manual_seed(0))
    y = x.mean((2, 3)).repeat(1, 2).argmax(1)
    data = torch.utils.data.TensorDataset(x, y)
    loader = torch.utils.data.DataLoader(data, batch_size=32)
    one_epoch = Classification(train_dataloaders=loader, val_dataloaders=loader, max_epochs=1)
    space, strategy = ReductionCell(), make(name)
    problems = unsupported(space, strategy.family)
    if problems:
        with pytest.raises(UnsupportedSpaceError, match="op factories take the input index"):
            strategy.search(space, one_epoch, seed=0)
        return
    ranking = strategy.search(space, one_epoch, seed=0)
    strategy.supernet.set_sample(ranking[0][0])
    assert strategy.supernet.model.cell([x, x]).shape == (64, 4, 4, 4)  # reduced, as frozen cells are
    for sample, _ in ranking:
        assert space.freeze(sample, weights_from=strategy.supernet)(x).shape == (64, 4)


# Through Experiment -----------------------------------------------------------------------------
def run_experiment(name: str, workdir: Path, resume: bool = False) -> Experiment:
    task = TASKS["layer_choice"]
    exp = Experiment(
        task.make(), evaluator(task, EPOCHS), make(name, top_k=3), ExperimentConfig(workdir=workdir, seed=0)
    )
    return exp.run(resume=resume)


@pytest.mark.parametrize("name", ALGORITHMS)
def test_through_experiment_store_and_cli(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    supported(name, "layer_choice")
    exp = run_experiment(name, tmp_path)
    top = exp.export_top_models(2)
    assert len(top) == 2 and top[0] == {"op": "identity"}

    trials = exp.trials()
    assert len(trials) == 3 and {t.status for t in trials} == {"succeeded"}
    ranked = sorted(trials, key=lambda t: t.id)  # stored best first
    assert [t.sample for t in ranked[:2]] == top
    strategy = exp.strategy
    assert better_first([(t.sample, t.objective) for t in ranked], strategy.score_direction)
    assert exp.export_top_models(1, formatter="instance")[0](torch.zeros(2, F)).shape == (2, CLASSES)

    store = Store(exp.store_path, readonly=True)
    try:
        history = store.get_meta("oneshot_history")
        assert [entry["epoch"] for entry in history] == list(range(EPOCHS))
        assert all("val_acc" in entry for entry in history)
        assert store.get_meta("mode") == "oneshot"
        assert store.get_meta("status") == "done"
        assert store.get_meta("objective") == strategy.score_name
        assert store.get_meta("direction") == strategy.score_direction
    finally:
        store.close()

    # The trained supernet gives the exported subnets their weights.
    model = exp.space.freeze(top[0], weights_from=exp.supernet)
    assert torch.equal(model.head.scale, exp.supernet.model.head.scale)

    capsys.readouterr()
    assert main(["show", str(tmp_path)]) == 0
    shown = capsys.readouterr().out
    assert "identity" in shown
    assert "supernet training" in shown and "val_acc" in shown  # one row per epoch
    assert main(["export", str(tmp_path), "--top", "2"]) == 0
    assert json.loads(capsys.readouterr().out) == top

    # Resuming a finished run ranks again from the last checkpoint: no duplicates.
    again = run_experiment(name, tmp_path, resume=True)
    assert [(t.sample, t.objective) for t in sorted(again.trials(), key=lambda t: t.id)] == [
        (t.sample, t.objective) for t in ranked
    ]
    assert again.export_top_models(2) == top


@pytest.mark.parametrize("name", ALGORITHMS)
def test_an_interrupted_experiment_resumes(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    supported(name, "layer_choice")
    whole = run_experiment(name, tmp_path / "whole")

    shown = ProgressView.epoch_finished

    def interrupt_after_the_first_epoch(self: Any, epoch: int, *args: Any) -> None:
        shown(self, epoch, *args)
        if epoch == 0:
            raise KeyboardInterrupt

    monkeypatch.setattr(ProgressView, "epoch_finished", interrupt_after_the_first_epoch)
    interrupted = run_experiment(name, tmp_path / "cut")
    assert interrupted.trials() == []
    store = Store(interrupted.store_path, readonly=True)
    try:
        assert store.get_meta("status") == "interrupted"
        assert len(store.get_meta("oneshot_history")) == 1
    finally:
        store.close()
    monkeypatch.undo()

    resumed = run_experiment(name, tmp_path / "cut", resume=True)
    assert [(t.sample, t.objective) for t in resumed.trials()] == [(t.sample, t.objective) for t in whole.trials()]
    store = Store(resumed.store_path, readonly=True)
    try:
        assert [entry["epoch"] for entry in store.get_meta("oneshot_history")] == list(range(EPOCHS))
    finally:
        store.close()


@pytest.mark.parametrize("name", ALGORITHMS)
def test_evaluators_without_one_training_setting_are_refused(name: str, tmp_path: Path) -> None:
    task = TASKS["layer_choice"]
    workdir = tmp_path / "exp"
    config = ExperimentConfig(workdir=workdir, seed=0, direction="maximize")
    with pytest.raises(SpaceError, match="FunctionalEvaluator does not provide them"):
        Experiment(task.make(), FunctionalEvaluator(lambda model: 0.0), make(name), config)
    config = ExperimentConfig(workdir=workdir, seed=0)
    searched_lr = evaluator(task, learning_rate=nn.choice("lr", [0.1, 0.01]))
    with pytest.raises(SpaceError, match="'lr' are choices, but a one-shot search trains one supernet"):
        Experiment(task.make(), searched_lr, make(name), config)
    assert not workdir.exists() or not any(workdir.iterdir())


# DARTS ------------------------------------------------------------------------------------------------
def configured(strategy: DARTS, space: Any, task: Task) -> DARTS:
    """``strategy`` set up as ``search`` sets it up, without training."""
    strategy.recipe = recipe_of(evaluator(task), strategy.name)
    torch.manual_seed(0)
    strategy.rng = random.Random(0)
    strategy.supernet = Supernet(space, strategy.family, strategy.name)
    strategy.configure()
    return strategy


def batches(n: int = 2) -> list[tuple[torch.Tensor, torch.Tensor]]:
    generator = torch.Generator().manual_seed(7)
    out = []
    for _ in range(n):
        x = torch.randn(16, F, generator=generator)
        out.append((x, x[:, :CLASSES].argmax(1)))
    return out


def architecture_gradient(strategy: DARTS, batch: Any, arch_batch: Any) -> list[torch.Tensor]:
    """The gradient the architecture optimizer steps on, in one ``training_step``."""
    found: list[torch.Tensor] = []
    step = strategy.arch_optimizer.step

    def record(*args: Any, **kwargs: Any) -> Any:
        found.extend(p.grad.clone() for p in strategy.supernet.architecture_parameters())
        return step(*args, **kwargs)

    strategy.arch_optimizer.step = record  # type: ignore[method-assign]
    strategy.training_step(batch, arch_batch)
    return found


def exact_unrolled_gradient(strategy: DARTS, batch: Any, arch_batch: Any) -> list[torch.Tensor]:
    """d/d alpha of L_val(w - xi * grad_w L_train(w, alpha), alpha), by autograd."""
    supernet, recipe = strategy.supernet, strategy.recipe
    alphas = dict(supernet.decisions.named_parameters(prefix="decisions"))
    weights = {k: p for k, p in supernet.named_parameters() if k not in alphas}
    xi = strategy.weight_optimizer.param_groups[0]["lr"]

    def loss(params: dict[str, torch.Tensor], data: Any) -> torch.Tensor:
        x, y = data
        return recipe.criterion(functional_call(supernet, params, (x,)), y)

    train = loss({**weights, **alphas}, batch)
    grads = torch.autograd.grad(train, list(weights.values()), create_graph=True)
    stepped = {k: w - xi * g for (k, w), g in zip(weights.items(), grads)}
    return list(torch.autograd.grad(loss({**stepped, **alphas}, arch_batch), list(alphas.values())))


def test_darts_second_order_gradient() -> None:
    task = TASKS["layer_choice"]
    batch, arch_batch = batches()
    first = architecture_gradient(configured(DARTS(), task.make(), task), batch, arch_batch)
    unrolled = configured(DARTS(unrolled=True), task.make(), task)
    exact = exact_unrolled_gradient(unrolled, batch, arch_batch)
    second = architecture_gradient(unrolled, batch, arch_batch)
    assert len(first) == len(second) == len(exact) == 1
    assert not torch.allclose(first[0], second[0], rtol=1e-3, atol=1e-7)
    torch.testing.assert_close(second[0], exact[0], rtol=1e-2, atol=1e-6)  # finite differences vs autograd


class FrozenStem(nn.ModelSpace):
    """A pretrained, frozen stem (``requires_grad=False``) before the choice."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = torch.nn.Linear(F, F)
        with torch.no_grad():
            self.stem.weight.copy_(torch.eye(F))
            self.stem.bias.zero_()
        self.stem.requires_grad_(False)
        self.op = nn.LayerChoice({"zero": Zero(), "project": Project(F, 1), "identity": nn.Identity()}, label="op")
        self.head = Head()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.op(self.stem(x)))


@pytest.mark.parametrize("unrolled", [False, True])
def test_darts_with_frozen_weights(unrolled: bool) -> None:
    task = TASKS["layer_choice"]
    space = FrozenStem()
    strategy = DARTS(arc_learning_rate=0.1, unrolled=unrolled)
    ranking = strategy.search(space, evaluator(task, 2), seed=0)
    assert ranking[0][0] == {"op": "identity"}
    assert torch.equal(strategy.supernet.model.stem.weight, torch.eye(F))


def test_gumbel_temperature_goes_from_start_to_end() -> None:
    task = TASKS["layer_choice"]
    strategy = GumbelDARTS(temperature=(4.0, 0.5), arc_learning_rate=0.1)
    taus: list[float] = []
    strategy.search(task.make(), evaluator(task, 4), seed=0, on_epoch=lambda *_: taus.append(strategy.tau))
    assert taus[0] == pytest.approx(4.0) and taus[-1] == pytest.approx(0.5)
    assert all(a > b for a, b in itertools.pairwise(taus))
    ratios = [b / a for a, b in itertools.pairwise(taus)]
    assert ratios == pytest.approx([ratios[0]] * len(ratios))  # annealed exponentially

    constant = GumbelDARTS(temperature=2.0)
    constant.on_epoch_start(0, 5)
    assert constant.tau == 2.0
    constant.on_epoch_start(4, 5)
    assert constant.tau == pytest.approx(2.0)

    # Training mixes with Gumbel noise; evaluation with the plain softmax.
    configured(strategy, task.make(), task)
    supernet = strategy.supernet
    alpha = supernet.decisions.alpha("op")
    supernet.eval()
    torch.testing.assert_close(supernet.decisions.weights("op"), torch.softmax(alpha, -1))
    supernet.train()
    assert not torch.allclose(supernet.decisions.weights("op"), torch.softmax(alpha, -1))


class Multi(nn.ModelSpace):
    """One choice of each kind the differentiable family weighs."""

    def __init__(self) -> None:
        super().__init__()
        self.op = nn.LayerChoice({"zero": Zero(), "project": Project(F, 1), "identity": nn.Identity()}, label="op")
        self.pick = nn.InputChoice(2, 1, label="input")
        self.body = nn.Repeat(lambda i: nn.Linear(F, F), depth=(0, 2), label="depth")
        width = nn.choice("width", [2, F])
        self.fc1, self.fc2 = nn.Linear(F, width), nn.Linear(width, F)
        self.head = Head()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.body(self.pick([self.op(x), torch.tanh(x)]))
        return self.head(x + self.fc2(self.fc1(x)))


@pytest.mark.parametrize("name", [n for n in ALGORITHMS if ONESHOT_STRATEGIES[n].family == "differentiable"])
def test_gradients_reach_the_architecture_parameters(name: str) -> None:
    task = TASKS["layer_choice"]
    strategy = configured(make(name), Multi(), task)
    supernet = strategy.supernet
    assert sorted(supernet.decisions.labels_with_alphas()) == ["depth", "input", "op", "width"]
    before = {label: supernet.decisions.alpha(label).detach().clone() for label in ["depth", "input", "op", "width"]}
    weights = [p.detach().clone() for p in supernet.weight_parameters()]
    batch, arch_batch = batches()
    gradients = architecture_gradient(strategy, batch, arch_batch)
    assert all(g.abs().sum() > 0 for g in gradients)
    for label, value in before.items():
        assert not torch.equal(supernet.decisions.alpha(label).detach(), value), label
    assert all(not torch.equal(p, old) for p, old in zip(supernet.weight_parameters(), weights))


def test_the_right_choices_are_not_the_defaults() -> None:
    # The tasks would prove nothing if doing nothing ranked the right choice first.
    for task in TASKS.values():
        assert task.make().default()[task.label] != task.right
    assert PickLayer().default() == {"op": "zero"}

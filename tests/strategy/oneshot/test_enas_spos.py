"""ENAS and RandomOneShot (SPOS) on a toy space where the identity is clearly right:
``op1`` zeroes its input, passes it, or zeroes half of it; ``op2`` zeroes or passes
the hidden layer; the targets need every input feature."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch

import archsmith.nn as nn
from archsmith.evaluator import Classification, Regression
from archsmith.experiment import Experiment, ExperimentConfig
from archsmith.experiment._store import Store
from archsmith.space import SpaceError
from archsmith.strategy import DARTS, ENAS, Random, RandomOneShot, RegularizedEvolution
from archsmith.strategy.oneshot import FAMILY_ALGORITHMS, ONESHOT_STRATEGIES
from archsmith.strategy.oneshot._spos import _batch_norms

BEST = {"op1": "identity", "op2": "identity"}


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Any:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: threads only contend
    yield
    torch.set_num_threads(threads)


class Zero(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * 0


class Half(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x[:, :4], x[:, 4:] * 0], 1)


class Net(nn.ModelSpace):
    def __init__(self, outputs: int = 4, batch_norm: bool = False) -> None:
        super().__init__()
        first: dict[str, Any] = {"zero": Zero, "identity": torch.nn.Identity, "half": Half}
        if batch_norm:
            first["bn"] = lambda: torch.nn.BatchNorm1d(8)
        self.op1 = nn.LayerChoice(first, label="op1")
        # with a choice in its arguments, a sliced batch norm (the other is a plain one, in a candidate)
        self.norm = nn.BatchNorm1d(8, momentum=nn.choice("momentum", [0.1, 0.5])) if batch_norm else torch.nn.Identity()
        self.fc1 = nn.Linear(8, 8)
        self.op2 = nn.LayerChoice({"zero": Zero, "identity": torch.nn.Identity}, label="op2")
        self.fc2 = nn.Linear(8, outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.op2(self.fc1(self.norm(self.op1(x)))))


def net(**kwargs: Any) -> Net:
    """A ``Net`` with the same initial weights every time (a supernet copies the space's)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return Net(**kwargs)


_X = torch.randn(640, 8, generator=torch.Generator().manual_seed(0)) + 0.5


def evaluator(task: str = "classification", epochs: int = 4, shuffle: bool = True) -> Any:
    if task == "classification":
        y: torch.Tensor = (_X[:, :4] + _X[:, 4:]).argmax(1)
        make: Any = Classification
    else:
        y = _X.sum(1)
        make = Regression
    train = torch.utils.data.TensorDataset(_X[:512], y[:512])
    val = torch.utils.data.TensorDataset(_X[512:], y[512:])
    return make(
        train_dataloaders=torch.utils.data.DataLoader(
            train, batch_size=32, shuffle=shuffle, generator=torch.Generator().manual_seed(1)
        ),
        val_dataloaders=torch.utils.data.DataLoader(val, batch_size=64),
        max_epochs=epochs,
        learning_rate=2e-2,
    )


def enas(**kwargs: Any) -> ENAS:
    options: dict[str, Any] = {"ctrl_lr": 0.05, "ctrl_steps": 12, "ctrl_steps_aggregate": 4, "ranking_samples": 6}
    return ENAS(**{**options, **kwargs})


def spos(**kwargs: Any) -> RandomOneShot:
    options: dict[str, Any] = {"search": RegularizedEvolution(population_size=4, sample_size=2), "search_budget": 6}
    return RandomOneShot(**{**options, **kwargs})


ALGORITHMS = {"enas": enas, "spos": spos}


def meta(exp: Experiment, key: str) -> Any:
    store = Store(exp.store_path, readonly=True)
    try:
        return store.get_meta(key)
    finally:
        store.close()


def test_registered_in_the_sampling_family() -> None:
    assert ONESHOT_STRATEGIES["enas"] is ENAS and ONESHOT_STRATEGIES["randomoneshot"] is RandomOneShot
    assert {"ENAS", "RandomOneShot"} <= set(FAMILY_ALGORITHMS["sampling"])
    assert "ValidationRanked" not in FAMILY_ALGORITHMS["sampling"]  # an abstract base, no algorithm


@pytest.mark.parametrize("name", ALGORITHMS)
def test_experiment_exports_the_identity(tmp_path: Any, name: str) -> None:
    exp = Experiment(net(), evaluator(), ALGORITHMS[name](), ExperimentConfig(workdir=tmp_path, seed=0))
    exp.run()
    top = exp.export_top_models(3)
    assert top[0] == BEST and len(top) == 3 and len({tuple(sorted(s.items())) for s in top}) == 3
    assert (meta(exp, "objective"), meta(exp, "direction"), meta(exp, "status")) == ("val_acc", "maximize", "done")
    scores = [t.objective for t in sorted(exp.trials(), key=lambda t: -t.objective)]  # type: ignore[operator]
    assert scores[0] > 0.8 and scores[-1] < 0.6  # the identity learned the task; a zeroing path cannot
    model = exp.export_top_models(1, formatter="instance")[0]
    assert isinstance(model, torch.nn.Module)


def test_enas_controller_learns_the_identity() -> None:
    strategy = enas(ctrl_lr=0.03, entropy_weight=1e-3, ctrl_steps=16)
    strategy.search(net(), evaluator(), seed=0)
    assert strategy.validation_sample() == BEST  # the greedy path
    assert strategy.baseline is not None and strategy.baseline > 0.5


@pytest.mark.parametrize("name", ALGORITHMS)
def test_regression_ranks_by_minimal_mse(tmp_path: Any, name: str) -> None:
    strategy = ALGORITHMS[name]()
    exp = Experiment(net(outputs=1), evaluator("regression"), strategy, ExperimentConfig(workdir=tmp_path, seed=0))
    assert (strategy.score_name, strategy.score_direction) == ("val_mse", "minimize")  # set by check()
    exp.run()
    assert (meta(exp, "objective"), meta(exp, "direction")) == ("val_mse", "minimize")
    top = exp.export_top_models(3)
    assert top[0] == BEST
    values = [t.objective for t in sorted(exp.trials(), key=lambda t: t.id)]
    assert values == sorted(values)  # stored best (smallest) first
    assert values[0] < 0.5 * values[-1]


@pytest.mark.parametrize("name", ALGORITHMS)
def test_same_seed_same_search(name: str) -> None:
    runs = []
    for _ in range(2):
        strategy = ALGORITHMS[name]()
        ranking = strategy.search(net(), evaluator(epochs=2), seed=3)
        runs.append((ranking, strategy.supernet.state_dict()))
    (first, weights), (second, again) = runs
    assert first == second
    assert all(torch.equal(weights[key], again[key]) for key in weights)


def _interrupted_after(epochs: int) -> Any:
    def on_epoch(epoch: int, _epochs: int, _metrics: dict[str, float]) -> None:
        if epoch + 1 == epochs:
            raise KeyboardInterrupt

    return on_epoch


@pytest.mark.parametrize("name", ALGORITHMS)
def test_resume_equals_an_uninterrupted_search(tmp_path: Any, name: str) -> None:
    whole = ALGORITHMS[name]()
    expected = whole.search(net(), evaluator(epochs=3), seed=5)
    checkpoint = tmp_path / "supernet.pt"
    with pytest.raises(KeyboardInterrupt):
        ALGORITHMS[name]().search(
            net(), evaluator(epochs=3), seed=5, checkpoint=checkpoint, on_epoch=_interrupted_after(2)
        )
    assert torch.load(checkpoint, weights_only=False)["epoch"] == 1
    resumed = ALGORITHMS[name]()
    epochs_run: list[int] = []
    ranking = resumed.search(
        net(), evaluator(epochs=3), seed=5, checkpoint=checkpoint, on_epoch=lambda e, n, m: epochs_run.append(e)
    )
    assert epochs_run == [2]
    assert [sample for sample, _ in ranking] == [sample for sample, _ in expected]
    assert [score for _, score in ranking] == pytest.approx([score for _, score in expected])
    weights, again = whole.supernet.state_dict(), resumed.supernet.state_dict()
    assert all(torch.allclose(weights[key], again[key], atol=1e-6) for key in weights)
    if isinstance(whole, ENAS):
        assert isinstance(resumed, ENAS) and resumed.baseline == pytest.approx(whole.baseline)
        controller, other = whole.controller.state_dict(), resumed.controller.state_dict()
        assert all(torch.allclose(controller[key], other[key], atol=1e-6) for key in controller)


def test_experiment_resume_equals_an_uninterrupted_run(tmp_path: Any) -> None:
    whole = Experiment(net(), evaluator(epochs=3), enas(), ExperimentConfig(workdir=tmp_path / "whole", seed=2))
    whole.run()
    strategy = enas()
    exp = Experiment(net(), evaluator(epochs=3), strategy, ExperimentConfig(workdir=tmp_path / "cut", seed=2))
    original = strategy.on_epoch_end

    def stop_in_epoch_two(epoch: int, epochs: int) -> dict[str, float]:
        if epoch == 1:
            raise KeyboardInterrupt  # inside the second epoch: resumes at its start
        return original(epoch, epochs)

    strategy.on_epoch_end = stop_in_epoch_two  # type: ignore[method-assign]
    exp.run()
    assert meta(exp, "status") == "interrupted" and [h["epoch"] for h in meta(exp, "oneshot_history")] == [0]
    del strategy.on_epoch_end
    exp.run(resume=True)
    assert meta(exp, "status") == "done"
    assert exp.export_top_models(3) == whole.export_top_models(3)
    assert [t.objective for t in exp.trials()] == pytest.approx([t.objective for t in whole.trials()])


def test_enas_controller_receives_gradients() -> None:
    strategy = enas()
    before: list[dict[str, torch.Tensor]] = []
    strategy.on_epoch_start = lambda e, n: before.append(copy.deepcopy(strategy.controller.state_dict()))  # type: ignore[method-assign]
    strategy.search(net(), evaluator(epochs=1), seed=0)
    for name, parameter in strategy.controller.named_parameters():
        if name.startswith(("cell.", "start")):  # every sample runs the cell (the heads and embeddings per step)
            assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name
    after = strategy.controller.state_dict()
    assert any(not torch.equal(before[0][key], after[key]) for key in after)


def test_enas_learns_on_split_training_data() -> None:
    strategy = enas(arch_data="split")
    metrics: list[dict[str, float]] = []
    strategy.search(net(), evaluator(epochs=1), seed=0, on_epoch=lambda e, n, m: metrics.append(m))
    assert {"train_loss", "ctrl_reward", "ctrl_entropy", "ctrl_baseline", "val_acc"} <= set(metrics[0])


def test_random_oneshot_with_random_search_and_a_budget_beyond_the_space() -> None:
    search = Random()
    strategy = RandomOneShot(search=search, search_budget=50, top_k=10)
    ranking = strategy.search(net(), evaluator(), seed=0)
    assert len(ranking) == 6 and ranking[0][0] == BEST  # the whole space, scored once each
    assert [s for _, s in ranking] == sorted((s for _, s in ranking), reverse=True)
    assert not hasattr(search, "space")  # the given strategy is copied, not attached


def test_bn_calibration_averages_training_batches_and_restores_the_statistics() -> None:
    strategy = RandomOneShot(search=Random(), search_budget=8, bn_calibration_batches=2)
    trained: list[dict[str, torch.Tensor]] = []

    def keep(epoch: int, epochs: int, metrics: dict[str, float]) -> None:
        if epoch + 1 == epochs:
            trained.append({k: v.clone() for k, v in strategy.supernet.state_dict().items()})

    ranking = strategy.search(net(batch_norm=True), evaluator(epochs=3, shuffle=False), seed=0, on_epoch=keep)
    assert ranking[0][0]["op1"] in ("identity", "bn") and ranking[0][0]["op2"] == "identity"
    after = strategy.supernet.state_dict()
    assert all(torch.equal(trained[0][k], after[k]) for k in after)  # the ranking left the supernet as it was

    norms = _batch_norms(strategy.supernet)
    plain = [m for m in norms if isinstance(m, torch.nn.BatchNorm1d)]
    assert len(norms) == 2 and len(plain) == 1
    sliced = next(m for m in norms if m not in plain)
    first_batches = _X[:64]  # the unshuffled loader's first two batches of 32
    for op1, norm in (("bn", plain[0]), ("identity", sliced)):
        strategy.calibrate({"op1": op1, "op2": "identity", "momentum": 0.5}, norms, seed=0)
        assert torch.allclose(norm.running_mean, first_batches.mean(0), atol=1e-5)  # type: ignore[arg-type]
        variances = torch.stack([first_batches[:32].var(0), first_batches[32:].var(0)]).mean(0)
        assert torch.allclose(norm.running_var, variances, atol=1e-5)  # type: ignore[arg-type]
    assert plain[0].momentum == 0.1 and sliced.init_arguments["momentum"].label == "momentum"  # momenta restored


def test_bn_calibration_is_deterministic() -> None:
    rankings = [
        RandomOneShot(search_budget=6, bn_calibration_batches=2).search(
            net(batch_norm=True), evaluator(epochs=2), seed=1
        )
        for _ in range(2)
    ]
    assert rankings[0] == rankings[1]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: ENAS(ctrl_steps=0), "ctrl_steps must be a positive integer"),
        (lambda: ENAS(ctrl_steps=4, ctrl_steps_aggregate=5), "ctrl_steps_aggregate .5. must be at most ctrl_steps"),
        (lambda: ENAS(ctrl_lr=0), "ctrl_lr must be a positive number"),
        (lambda: ENAS(entropy_weight=-1), "entropy_weight must be a number >= 0"),
        (lambda: ENAS(baseline_decay=1.0), r"baseline_decay must be in \[0, 1\)"),
        (lambda: ENAS(hidden_size=2.5), "hidden_size must be a positive integer"),
        (lambda: ENAS(ranking_samples=0), "ranking_samples must be a positive integer"),
        (lambda: ENAS(arch_data="train"), "arch_data must be 'split'"),
        (lambda: RandomOneShot(search=Random), r"the class Random; pass Random\(\)"),  # type: ignore[arg-type]
        (lambda: RandomOneShot(search=DARTS()), "multi-trial ask/tell strategy instance"),  # type: ignore[arg-type]
        (lambda: RandomOneShot(search_budget=0), "search_budget must be a positive integer"),
        (lambda: RandomOneShot(bn_calibration_batches=-1), "bn_calibration_batches must be an integer >= 0"),
        (lambda: RandomOneShot(top_k=0), "top_k must be a positive integer"),
    ],
)
def test_bad_arguments_are_named(make: Any, message: str) -> None:
    with pytest.raises(SpaceError, match=message):
        make()


def test_a_space_outside_the_sampling_family_is_refused_before_training(tmp_path: Any) -> None:
    class Loose(nn.ModelSpace):
        def __init__(self) -> None:
            super().__init__()
            width = nn.choice("width", [4, 8])  # chosen in the model's own code: nothing to share
            self.fc = torch.nn.Linear(8, int(width) if isinstance(width, int) else 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(x)

    for strategy in (enas(), spos()):
        with pytest.raises(SpaceError, match=f"{strategy.name} cannot build a supernet"):
            Experiment(Loose(), evaluator(), strategy, ExperimentConfig(workdir=tmp_path, seed=0))


def test_repr_names_the_arguments() -> None:
    assert repr(ENAS(ctrl_steps=10, ctrl_steps_aggregate=5)).startswith("ENAS(ctrl_lr=0.00035, ctrl_steps=10,")
    assert "search=Random(dedup=True), search_budget=3" in repr(RandomOneShot(search=Random(), search_budget=3))

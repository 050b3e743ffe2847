"""Metrics carry the evaluator's names (``val_acc`` for Classification, ``val_mse``
for Regression, the user's keys for a function's dict; a plain number is
``default``), and an experiment's objective defaults to the evaluator's primary
metric, with ``objective="default"`` (NNI's name) meaning the same."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

import archsmith.nn as nn
from archsmith import strategy
from archsmith.evaluator import Classification, FunctionalEvaluator, Lightning, Regression
from archsmith.evaluator._metric import primary_metric, resolve_objectives
from archsmith.experiment import Experiment, ExperimentConfig, Store, objectives_of

generator = torch.Generator().manual_seed(0)
X = torch.randn(48, 4, generator=generator)
LABELS = (X[:, 0] > 0).long()
TARGETS = X.sum(dim=1, keepdim=True)


def loaders(y: torch.Tensor) -> dict[str, Any]:
    return {
        "train_dataloaders": DataLoader(TensorDataset(X[:32], y[:32]), batch_size=16),
        "val_dataloaders": DataLoader(TensorDataset(X[32:], y[32:]), batch_size=16),
        "max_epochs": 1,
    }


class Tiny(nn.ModelSpace):
    def __init__(self, outputs: int = 2) -> None:
        super().__init__()
        self.fc = nn.Linear(4, outputs, bias=nn.choice("bias", [True, False]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


def run(tmp_path: Path, space: nn.ModelSpace, evaluator: Any, max_trials: int = 1, **config: Any) -> Store:
    cfg = ExperimentConfig(engine="inprocess", workdir=tmp_path, seed=0, max_trials=max_trials, **config)
    Experiment(space, evaluator, strategy.GridSearch(), cfg).run(resume=(tmp_path / "experiment.db").exists())
    return Store(tmp_path / "experiment.db", readonly=True)


def test_primary_metrics() -> None:
    assert primary_metric(Classification(**loaders(LABELS))) == "val_acc"
    assert primary_metric(Regression(**loaders(TARGETS))) == "val_mse"
    assert primary_metric(FunctionalEvaluator(lambda model: 1.0)) == "default"
    data = {"train_dataloaders": loaders(LABELS)["train_dataloaders"]}
    assert primary_metric(Lightning(lambda model: model, objective="val_f1", **data)) == "val_f1"
    assert primary_metric(Lightning(lambda model: model, **data)) == "default"
    assert resolve_objectives(("default", "params"), Classification(**loaders(LABELS))) == ("val_acc", "params")


@pytest.mark.parametrize("objective", [None, "default", "val_acc"])
def test_classification_is_scored_by_val_acc(tmp_path: Path, objective: str | None) -> None:
    config = {} if objective is None else {"objective": objective}
    store = run(tmp_path, Tiny(), Classification(**loaders(LABELS)), **config)
    try:
        assert objectives_of(store) == [("val_acc", "maximize")]
        (trial,) = store.trials()
        assert trial.status == "succeeded" and "default" not in trial.metric
        assert trial.objective == trial.metric["val_acc"]
        assert all("default" not in metric for _, metric, _ in store.intermediates(trial.id))
    finally:
        store.close()


def test_regression_is_scored_by_val_mse_minimized(tmp_path: Path) -> None:
    store = run(tmp_path, Tiny(outputs=1), Regression(**loaders(TARGETS)))
    try:
        assert objectives_of(store) == [("val_mse", "minimize")]
        (trial,) = store.trials()
        assert set(trial.metric) == {"val_mse", "val_mae", "val_loss", "train_loss"}
        assert trial.objective == trial.metric["val_mse"]
    finally:
        store.close()


def test_a_function_keeps_default_for_a_number_and_its_own_keys(tmp_path: Path) -> None:
    store = run(tmp_path / "number", Tiny(), FunctionalEvaluator(lambda model: 0.5), direction="maximize")
    try:
        assert objectives_of(store) == [("default", "maximize")] and store.trials()[0].metric == 0.5
    finally:
        store.close()
    keyed = FunctionalEvaluator(lambda model: {"accuracy": 0.5, "loss": 1.0})
    store = run(tmp_path / "dict", Tiny(), keyed, objective="accuracy", direction="maximize")
    try:
        assert store.trials()[0].metric == {"accuracy": 0.5, "loss": 1.0} and store.trials()[0].objective == 0.5
    finally:
        store.close()


def test_a_store_that_recorded_default_for_classification_resumes(tmp_path: Path) -> None:
    """Stores of earlier releases name the primary metric ``default``."""
    evaluator = Classification(**loaders(LABELS))
    run(tmp_path, Tiny(), evaluator).close()
    store = Store(tmp_path / "experiment.db")
    store.set_meta("objectives", ["default"])
    store.set_meta("objective", "default")
    store.close()
    store = run(tmp_path, Tiny(), evaluator, max_trials=2)
    try:
        assert [t.status for t in store.trials()] == ["succeeded", "succeeded"]
    finally:
        store.close()

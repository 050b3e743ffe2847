"""Every registered strategy drives a real (in-process) experiment, and resumes
it after the budget is raised."""

from __future__ import annotations

import sys
from pathlib import Path

import cloudpickle
import pytest
import torch

import archsmith.nn as nn
from archsmith.evaluator import FunctionalEvaluator
from archsmith.experiment import Experiment, ExperimentConfig, Store
from archsmith.strategy import STRATEGIES

from ._helpers import make

cloudpickle.register_pickle_by_value(sys.modules[__name__])


class TinyNet(nn.ModelSpace):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3, nn.choice("width", [2, 3, 4, 5]))
        self.act = nn.LayerChoice([torch.nn.ReLU(), torch.nn.Tanh(), torch.nn.Identity()], label="act")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.fc(x))


def width_score(model: torch.nn.Module) -> float:
    """Objective = output width (known from the sample); Tanh trials fail."""
    if isinstance(model.act, torch.nn.Tanh):
        raise RuntimeError("tanh fails on purpose")
    return float(model(torch.ones(1, 3)).shape[1])


def experiment(workdir: Path, name: str, max_trials: int) -> Experiment:
    config = ExperimentConfig(
        workdir=str(workdir), engine="inprocess", max_trials=max_trials, seed=0, direction="maximize"
    )
    return Experiment(TinyNet(), FunctionalEvaluator(width_score), make(name), config)


def trials(workdir: Path) -> list:
    store = Store(workdir / "experiment.db", readonly=True)
    try:
        return store.trials()
    finally:
        store.close()


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_strategy_runs_and_resumes_in_an_experiment(name: str, tmp_path: Path) -> None:
    experiment(tmp_path, name, max_trials=4).run()
    first = trials(tmp_path)
    assert len(first) == 4
    experiment(tmp_path, name, max_trials=9).run(resume=True)
    after = trials(tmp_path)
    assert len(after) == 9
    assert [t.sample for t in after[:4]] == [t.sample for t in first]
    assert {t.status for t in after} <= {"succeeded", "failed"}
    samples = [tuple(sorted(t.sample.items())) for t in after]
    if getattr(make(name), "dedup", False):
        assert len(set(samples)) == len(samples)  # 12 architectures, none tried twice

"""Through a real experiment: the search space counts architectures (decisions
in unused blocks make none), every strategy trains each architecture once, and
what ``export_top_models`` returns (hyper-parameters included) freezes."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import archsmith.nn as nn
from archsmith import strategy
from archsmith.evaluator import FunctionalEvaluator
from archsmith.experiment import Experiment, ExperimentConfig

from ._experiment_helpers import deadline


class Deep(nn.ModelSpace):
    """Depth 1 or 2, each block with a 3-way activation: 3 + 9 = 12 models."""

    def __init__(self) -> None:
        super().__init__()
        self.blocks = nn.Repeat(
            lambda i: nn.Sequential(nn.Linear(4, 4), nn.LayerChoice([nn.ReLU(), nn.Tanh(), nn.GELU()])),
            (1, 2),
            label="rep",
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(x)


def train(model: torch.nn.Module, lr: float) -> float:
    return float(len(model.blocks)) + lr


@pytest.mark.parametrize(
    "make",
    [
        strategy.GridSearch,
        strategy.Random,
        lambda: strategy.RegularizedEvolution(population_size=4, sample_size=2),
        lambda: strategy.TPE(n_startup_trials=4),
    ],
    ids=["grid", "random", "evolution", "tpe"],
)
def test_each_architecture_is_trained_once(tmp_path: Path, make) -> None:  # type: ignore[no-untyped-def]
    evaluator = FunctionalEvaluator(train, lr=nn.choice("lr", [0.1, 0.01]))
    config = ExperimentConfig(engine="inprocess", workdir=tmp_path, seed=1, direction="maximize", max_trials=40)
    exp = Experiment(Deep(), evaluator, make(), config)
    assert exp.search_space.size() == 24  # 12 models x 2 learning rates
    with deadline(120):
        exp.run()
    trials = exp.trials()
    keys = [exp.search_space.architecture_key(t.sample) for t in trials]
    assert len(keys) == len(set(keys)), "an architecture was trained twice"
    assert all(t.arch_key == k for t, k in zip(trials, keys)), "the store holds each trial's architecture key"
    if isinstance(exp.strategy, (strategy.GridSearch, strategy.Random)):
        assert len(trials) == 24, "an exhaustible strategy covers every architecture, then ends"
    best = exp.export_top_models(k=1)[0]
    assert "lr" in best
    model = Deep().freeze(best)  # the evaluator's hyper-parameters are set aside
    assert model(torch.zeros(1, 4)).shape == (1, 4)

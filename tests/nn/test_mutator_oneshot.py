"""Mutated spaces under one-shot: the sampling algorithms search them (one path per
step, each decision's module keeping its weights), the others refuse up front."""

from __future__ import annotations

from typing import Any

import pytest
import torch

import archsmith.nn as nn
from archsmith.evaluator import Classification
from archsmith.experiment import Experiment, ExperimentConfig
from archsmith.strategy import DARTS, ENAS, GumbelDARTS, Proxyless, RandomOneShot, RegularizedEvolution
from archsmith.strategy.oneshot._supernet import Supernet, UnsupportedSpaceError
from archsmith.strategy.oneshot._support import refusal

pytestmark = pytest.mark.usefixtures("one_thread")


class Zero(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * 0


class Half(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x[:, :4], x[:, 4:] * 0], 1)


class Base(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.op1 = nn.Placeholder("op1")
        self.fc1 = torch.nn.Linear(8, 8)
        self.op2 = nn.Placeholder("op2")
        self.fc2 = torch.nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.op2(self.fc1(self.op1(x))))


OPS: dict[str, Any] = {
    "zero": Zero,
    "identity": torch.nn.Identity,
    "half": Half,
    "linear": lambda: torch.nn.Linear(8, 8),
}
CANDIDATES = {"op1": ["zero", "identity", "half"], "op2": ["zero", "identity", "linear"]}


class PickOp(nn.Mutator):
    def mutate(self, graph: nn.MutableGraph) -> None:
        for label, names in CANDIDATES.items():
            (node,) = graph.get_nodes_by_label(label)
            node.replace(OPS[self.choice(names, label=label)])


def space() -> nn.MutatedSpace:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return nn.mutate(Base(), [PickOp()])


_X = torch.randn(640, 8, generator=torch.Generator().manual_seed(0)) + 0.5


def evaluator(epochs: int = 4) -> Classification:
    y = (_X[:, :4] + _X[:, 4:]).argmax(1)
    train = torch.utils.data.TensorDataset(_X[:512], y[:512])
    val = torch.utils.data.TensorDataset(_X[512:], y[512:])
    return Classification(
        train_dataloaders=torch.utils.data.DataLoader(
            train, batch_size=32, shuffle=True, generator=torch.Generator().manual_seed(1)
        ),
        val_dataloaders=torch.utils.data.DataLoader(val, batch_size=64),
        max_epochs=epochs,
        learning_rate=2e-2,
    )


def test_each_candidate_keeps_its_weights_across_architectures() -> None:
    supernet = Supernet(space(), "sampling", "RandomOneShot")
    # every candidate's weights exist before training: the optimizer sees them all
    linears = [m for m in supernet.modules() if type(m) is torch.nn.Linear]
    assert len(linears) == 3  # fc1, fc2, and the "linear" candidate of op2
    x = _X[:5]
    sample = {"op1": "half", "op2": "linear"}
    supernet.set_sample(sample)
    with torch.no_grad():
        for linear in linears:
            linear.weight.add_(0.5)  # trained weights, as far as freezing can tell
    out = supernet(x)
    model = supernet.freeze(sample)  # the plain subnet with the supernet's weights
    assert isinstance(model, torch.fx.GraphModule)
    assert torch.equal(model(x), out)
    other = {"op1": "identity", "op2": "linear"}
    supernet.set_sample(other)
    assert torch.equal(supernet.freeze(other)(x), supernet(x))
    shared = {id(p) for p in supernet.weight_parameters()}
    assert all(id(p) in shared for g in supernet.model._graphs.values() for p in g.parameters())


@pytest.mark.parametrize(
    "make",
    [
        lambda: ENAS(ctrl_steps=12, ctrl_steps_aggregate=4, ranking_samples=6),
        lambda: RandomOneShot(search=RegularizedEvolution(population_size=4, sample_size=2), search_budget=6),
    ],
    ids=["enas", "random_oneshot"],
)
def test_sampling_algorithms_search_a_mutated_space(tmp_path: Any, make: Any) -> None:
    exp = Experiment(space(), evaluator(), make(), ExperimentConfig(workdir=tmp_path, seed=0))
    exp.run()
    top = exp.export_top_models(3)
    assert len(top) == 3 and all(set(s) == {"op1", "op2"} for s in top)
    scores = sorted((t.objective for t in exp.trials()), reverse=True)
    assert scores[0] > 0.8  # a path that passes the input through learned the task
    assert "zero" not in top[0].values()
    model = exp.export_top_models(1, formatter="instance")[0]
    assert isinstance(model, torch.nn.Module) and model(_X[:3]).shape == (3, 4)


@pytest.mark.parametrize("algorithm", [DARTS, GumbelDARTS, Proxyless])
def test_the_other_algorithms_refuse_up_front_with_the_reason(tmp_path: Any, algorithm: type) -> None:
    with pytest.raises(UnsupportedSpaceError, match=r"rewrite the graph per architecture.*ENAS, RandomOneShot"):
        Experiment(space(), evaluator(epochs=1), algorithm(), ExperimentConfig(workdir=tmp_path, seed=0))
    assert "mutated space" in (refusal(space(), algorithm) or "")
    assert refusal(space(), RandomOneShot) is None

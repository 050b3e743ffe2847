"""Rankings hold architectures, not samples: decisions a subnet does not use (in
an unchosen candidate, in blocks beyond the chosen depth) neither split one
architecture into several entries nor change its probability."""

from __future__ import annotations

import pytest
import torch

import archsmith.nn as nn
from archsmith.evaluator import Classification
from archsmith.strategy.oneshot import ONESHOT_STRATEGIES, Supernet
from archsmith.strategy.oneshot._ranking import most_probable

from ._spaces import TEST_KWARGS


class Deep(nn.ModelSpace):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Repeat(
            lambda i: nn.LayerChoice({"a": nn.Linear(4, 4), "b": nn.Identity()}, label=f"op{i}"),
            depth=(1, 3),
            label="d",
        )
        self.inner = nn.LayerChoice(
            {"plain": nn.Identity(), "nested": lambda: nn.LayerChoice([nn.Tanh(), nn.ReLU()], label="act")},
            label="outer",
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(self.body(x))


def test_active_labels_follow_the_sample() -> None:
    supernet = Supernet(Deep(), "sampling")
    sample = {"d": 1, "op0": "a", "op1": "b", "op2": "a", "outer": "plain", "act": 0}
    assert supernet.active_labels(sample) == {"d", "op0", "outer"}
    deeper = dict(sample, d=3, outer="nested")
    assert supernet.active_labels(deeper) == {"d", "op0", "op1", "op2", "outer", "act"}
    assert supernet.architecture_key(sample) == supernet.architecture_key(dict(sample, op1="a", act=1))
    assert supernet.architecture_key(sample) != supernet.architecture_key(dict(sample, op0="b"))


def test_most_probable_counts_an_architecture_once_with_its_active_probability() -> None:
    torch.manual_seed(0)
    supernet = Supernet(Deep(), "differentiable")
    with torch.no_grad():
        supernet.decisions.alpha("d").copy_(torch.tensor([5.0, 0.0, 0.0]))  # depth 1 nearly certain
    ranking = most_probable(supernet.decisions, supernet.search_space, 5, supernet.active_labels)
    keys = [supernet.architecture_key(sample) for sample, _ in ranking]
    assert len(set(keys)) == len(keys)
    probs = supernet.decisions.probabilities()
    best, p = ranking[0]
    assert best["d"] == 1
    expected = 1.0
    for label in supernet.active_labels(best):
        values = supernet.decisions.options(label)
        expected *= probs[label][values.index(best[label])]
    assert p == pytest.approx(expected)
    assert [q for _, q in ranking] == sorted((q for _, q in ranking), reverse=True)


@pytest.mark.parametrize("name", sorted(ONESHOT_STRATEGIES))
def test_rankings_hold_distinct_architectures(name: str) -> None:
    settings = TEST_KWARGS.get(name)  # the small settings of each algorithm
    algorithm = ONESHOT_STRATEGIES[name](**(settings() if settings else {}))
    data = torch.utils.data.TensorDataset(torch.randn(64, 4), torch.randint(0, 4, (64,)))
    loader = torch.utils.data.DataLoader(data, batch_size=16)
    evaluator = Classification(train_dataloaders=loader, val_dataloaders=loader, max_epochs=1)
    algorithm.top_k = 6
    ranking = algorithm.search(Deep(), evaluator, seed=0)
    keys = [algorithm.supernet.architecture_key(sample) for sample, _ in ranking]
    assert len(set(keys)) == len(keys)


class Head(nn.ModelSpace):
    def __init__(self) -> None:
        super().__init__()
        self.act = nn.LayerChoice({"id": nn.Identity(), "relu": nn.ReLU(), "fc": nn.Linear(4, 4)}, label="act")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(x)


@pytest.mark.parametrize("name", sorted(ONESHOT_STRATEGIES))
def test_a_path_without_weights_trains(name: str) -> None:
    """A sampled path of parameter-free ops gives a loss without a gradient: the
    step is skipped, not a crash."""
    settings = TEST_KWARGS.get(name)
    algorithm = ONESHOT_STRATEGIES[name](**(settings() if settings else {}))
    data = torch.utils.data.TensorDataset(torch.randn(64, 4), torch.randint(0, 4, (64,)))
    loader = torch.utils.data.DataLoader(data, batch_size=8)
    evaluator = Classification(train_dataloaders=loader, val_dataloaders=loader, max_epochs=2)
    ranking = algorithm.search(Head(), evaluator, seed=0)
    assert {sample["act"] for sample, _ in ranking} == {"id", "relu", "fc"}

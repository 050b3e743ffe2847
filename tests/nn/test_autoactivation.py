"""``AutoActivation``: a searched activation ``binary(unary(x), unary(x))`` chain."""

from __future__ import annotations

import pytest
import torch

import archsmith
import archsmith.nn as nn
from archsmith.nn._autoactivation import BINARY_OPS, UNARY_OPS, AutoActivationBody

from ._helpers import assert_plain, count_params


class Act(nn.ModelSpace):
    def __init__(self, unit_num: int = 1) -> None:
        super().__init__()
        self.fc = nn.Linear(3, 3)
        self.act = nn.AutoActivation(unit_num, label="act")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.fc(x))


@pytest.mark.parametrize("unit_num", [1, 2, 3])
def test_decisions_and_size(unit_num: int) -> None:
    space = Act(unit_num)
    unary = [f"act/unary_{k}" for k in range(unit_num + 1)]
    binary = [f"act/binary_{i}" for i in range(unit_num)]
    assert list(space.search_space) == unary + binary
    assert space.search_space["act/unary_0"].values == list(UNARY_OPS)
    assert space.search_space["act/binary_0"].values == list(BINARY_OPS)
    assert space.size() == len(UNARY_OPS) ** (unit_num + 1) * len(BINARY_OPS) ** unit_num


def test_the_nni_defaults() -> None:
    assert {"identity", "neg", "abs", "square", "sigmoid", "sin", "exp"} <= set(UNARY_OPS)
    assert {"add", "mul", "max", "min", "sub"} <= set(BINARY_OPS)


def test_frozen_computes_the_chosen_formula() -> None:
    space = Act(2)
    sample = {
        "act/unary_0": "square",
        "act/unary_1": "neg",
        "act/unary_2": "abs",
        "act/binary_0": "add",
        "act/binary_1": "max",
    }
    model = space.freeze(sample)
    assert type(model.act) is AutoActivationBody
    x = torch.tensor([[-2.0, 0.5, 3.0]])
    expected = torch.maximum(x * x - x, x.abs())
    assert torch.allclose(model.act(x), expected)
    assert [u.name for u in model.act.unaries] == ["square", "neg", "abs"]
    assert [b.name for b in model.act.binaries] == ["add", "max"]
    assert_plain(model)


def test_unit_num_one_with_beta() -> None:
    model = Act(1).freeze({"act/unary_0": "identity", "act/unary_1": "sigmoid", "act/binary_0": "mix"})
    x = torch.linspace(-1, 1, 5)
    # mix: beta * a + (1 - beta) * b with beta initialised to 1
    assert torch.allclose(model.act(x), x)
    with torch.no_grad():
        model.act.binaries[0].beta.fill_(0.0)
    assert torch.allclose(model.act(x), torch.sigmoid(x))
    # each unary and binary op carries one learnable beta; plus the Linear's 12
    assert count_params(model) == 12 + 2 + 1


def test_every_op_runs_and_keeps_the_shape() -> None:
    x = torch.linspace(-3, 3, 12).reshape(2, 6)
    for name in UNARY_OPS:
        with archsmith.fixed_arch({"u/unary_0": name, "u/unary_1": "identity", "u/binary_0": "add"}):
            act = nn.AutoActivation(label="u")
        out = act(x)
        assert out.shape == x.shape and torch.isfinite(out).all(), name
    for name in BINARY_OPS:
        with archsmith.fixed_arch({"b/unary_0": "identity", "b/unary_1": "tanh", "b/binary_0": name}):
            act = nn.AutoActivation(label="b")
        out = act(x)
        assert out.shape == x.shape and torch.isfinite(out).all(), name


def test_random_samples_in_a_model() -> None:
    space = Act(2)
    for seed in range(10):
        model = space.freeze(space.random(seed=seed))
        assert model(torch.randn(4, 3)).shape == (4, 3)


def test_auto_label() -> None:
    class Two(nn.ModelSpace):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.AutoActivation()
            self.b = nn.AutoActivation()

    labels = list(Two().search_space)
    assert labels[:3] == ["auto_activation_1/unary_0", "auto_activation_1/unary_1", "auto_activation_1/binary_0"]
    assert labels[3:] == ["auto_activation_2/unary_0", "auto_activation_2/unary_1", "auto_activation_2/binary_0"]


def test_unfrozen_cannot_run() -> None:
    with pytest.raises(archsmith.NotFrozenError, match="act/unary_0"):
        Act().act(torch.zeros(1))

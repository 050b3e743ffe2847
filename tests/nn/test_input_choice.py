"""``InputChoice``: choose some of the candidate input tensors and reduce them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import archsmith
import archsmith.nn as nn
from archsmith.nn import ChosenInputs
from archsmith.space import Categorical, CategoricalMultiple


class Skip(nn.ModelSpace):
    def __init__(self, n_candidates: int = 3, n_chosen: int | None = 1, reduction: str = "sum") -> None:
        super().__init__()
        self.inp = nn.InputChoice(n_candidates, n_chosen, reduction, label="inp")

    def forward(self, xs: list[torch.Tensor]) -> torch.Tensor:
        return self.inp(xs)


def candidates(n: int = 3) -> list[torch.Tensor]:
    """Input ``i`` is filled with ``10 ** i``, so every sum is distinguishable."""
    return [torch.full((2, 2), float(10**i)) for i in range(n)]


def test_one_chosen_is_an_index() -> None:
    space = Skip(3)
    leaf = space.search_space["inp"]
    assert isinstance(leaf, Categorical)
    assert leaf.values == [0, 1, 2]
    assert space.size() == 3
    xs = candidates()
    for i in range(3):
        model = space.freeze({"inp": i})
        assert isinstance(model.inp, ChosenInputs)
        assert model.inp.chosen == [i]
        assert model(xs) is xs[i]


@pytest.mark.parametrize(
    ("reduction", "expected"),
    [
        ("sum", torch.full((2, 2), 101.0)),
        ("mean", torch.full((2, 2), 50.5)),
        ("concat", torch.tensor([[1.0, 1.0, 100.0, 100.0]] * 2)),
    ],
)
def test_two_chosen_are_reduced(reduction: str, expected: torch.Tensor) -> None:
    space = Skip(3, 2, reduction)
    leaf = space.search_space["inp"]
    assert isinstance(leaf, CategoricalMultiple) and leaf.n_chosen == 2
    assert space.size() == 3
    assert sorted(json.dumps(s) for s in space.grid()) == sorted(
        json.dumps({"inp": pair}) for pair in ([0, 1], [0, 2], [1, 2])
    )
    model = space.freeze({"inp": [0, 2]})
    assert model.inp.chosen == [0, 2]
    assert torch.equal(model(candidates()), expected)


def test_reduction_none_returns_the_chosen_list() -> None:
    model = Skip(3, 2, "none").freeze({"inp": [1, 2]})
    xs = candidates()
    out = model(xs)
    assert isinstance(out, list) and len(out) == 2
    assert out[0] is xs[1] and out[1] is xs[2]


def test_chosen_order_is_canonical() -> None:
    space = Skip(4, 2, "concat")
    assert space.validate({"inp": [3, 1]}) == {"inp": [1, 3]}
    model = space.freeze({"inp": [3, 1]})
    assert model.inp.chosen == [1, 3]
    assert model(candidates(4))[0].tolist() == [10.0, 10.0, 1000.0, 1000.0]


def test_any_number_chosen_excludes_the_empty_choice() -> None:
    space = Skip(3, None, "sum")
    leaf = space.search_space["inp"]
    assert isinstance(leaf, CategoricalMultiple) and leaf.n_chosen is None
    assert space.size() == 2**3 - 1
    grid = list(space.grid())
    assert len(grid) == 7 and {"inp": []} not in grid
    assert space.default() == {"inp": [2]}
    for seed in range(40):
        assert space.random(seed=seed)["inp"] != []
    with pytest.raises(archsmith.SampleError, match="inp"):
        space.validate({"inp": []})
    model = space.freeze({"inp": [0, 1, 2]})
    assert torch.equal(model(candidates()), torch.full((2, 2), 111.0))


def test_all_candidates_chosen() -> None:
    space = Skip(3, 3, "mean")
    assert space.size() == 1
    assert list(space.grid()) == [{"inp": [0, 1, 2]}]
    assert torch.equal(space.freeze({"inp": [0, 1, 2]})(candidates()), torch.full((2, 2), 37.0))


def test_single_candidate() -> None:
    space = Skip(1)
    assert space.size() == 1
    assert space.freeze({"inp": 0})([torch.ones(1)]).item() == 1.0


def test_wrong_samples_are_rejected() -> None:
    with pytest.raises(archsmith.SampleError, match="'inp'"):
        Skip(3, 2).freeze({"inp": [0]})
    with pytest.raises(archsmith.SampleError, match="'inp'"):
        Skip(3, 2).freeze({"inp": [0, 0]})
    with pytest.raises(archsmith.SampleError, match="'inp'"):
        Skip(3, 1).freeze({"inp": 3})


def test_nni_one_element_list_is_read_as_the_index(tmp_path: Path) -> None:
    # NNI stores an n_chosen=1 decision as [index]: validate, freeze, fixed_arch and
    # a saved file all take it, normalised to archsmith's plain index.
    space, xs = Skip(3, 1), candidates()
    assert space.validate({"inp": [2]}) == {"inp": 2}
    assert space.freeze({"inp": [1]})(xs) is xs[1]
    with archsmith.fixed_arch({"inp": [0]}):
        assert Skip(3, 1).inp.chosen == [0]
    path = tmp_path / "nni.json"
    path.write_text(json.dumps({"inp": [2]}))
    assert space.freeze(archsmith.load_arch(path)).inp.chosen == [2]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ([5], r"'inp': in \[5\]: 5 is out of range; expected one of \[0, 1, 2\]"),
        ([0, 1], r"'inp': \[0, 1\] names 2 inputs but this InputChoice chooses one \(n_chosen=1\)"),
        ([], r"'inp': \[\] names 0 inputs"),
        (["1"], r"in \['1'\]: wrong type str"),
    ],
)
def test_a_wrong_nni_list_is_named(value: list[object], message: str) -> None:
    with pytest.raises(archsmith.SampleError, match=message):
        Skip(3, 1).validate({"inp": value})
    with pytest.raises(archsmith.SampleError, match=message):
        Skip(3, 1).freeze({"inp": value})


def test_frozen_in_fixed_arch_and_standalone() -> None:
    with archsmith.fixed_arch({"solo_inp": [0, 1]}):
        chosen = nn.InputChoice(2, 2, "concat", label="solo_inp")
    assert type(chosen) is ChosenInputs
    assert chosen.reduction == "concat"
    assert chosen([torch.zeros(1, 1), torch.ones(1, 2)]).shape == (1, 3)


def test_unfrozen_input_choice_cannot_run() -> None:
    with pytest.raises(archsmith.NotFrozenError, match="'skip_unfrozen'"):
        nn.InputChoice(2, label="skip_unfrozen")(candidates(2))


def test_used_in_a_model_with_other_choices() -> None:
    class Branches(nn.ModelSpace):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.Linear(3, 4)
            self.b = nn.LayerChoice([nn.Linear(3, 4), nn.Sequential(nn.Linear(3, 4), nn.ReLU())], label="b")
            self.pick = nn.InputChoice(3, None, "mean", label="pick")

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.pick([self.a(x), self.b(x), torch.zeros(x.shape[0], 4)])

    space = Branches()
    assert space.size() == 2 * 7
    for sample in space.grid():
        assert space.freeze(sample)(torch.zeros(5, 3)).shape == (5, 4)

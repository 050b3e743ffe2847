"""The value-or-choice helpers the hub families share (archsmith.nn.maybe_choice,
possible_values, largest, make_divisible): numbers and choices give the same
results, value by value."""

from __future__ import annotations

import pytest

import archsmith.nn as nn
from archsmith.space import SpaceError, evaluate


def test_maybe_choice_follows_nni() -> None:
    assert nn.maybe_choice("width", 16) == 16
    assert nn.maybe_choice("width", 0.5) == 0.5
    width = nn.maybe_choice("width", (16, 32))
    assert width.label == "width" and width.values == [16, 32]
    assert nn.maybe_choice("one", [8]).values == [8]  # a tuple is a choice, even of one value, as in NNI
    with pytest.raises(SpaceError, match="'width': an empty tuple gives nothing to choose"):
        nn.maybe_choice("width", ())


def test_maybe_choice_in_a_space_and_frozen() -> None:
    class Net(nn.ModelSpace):
        def __init__(self, width: int | tuple[int, ...]) -> None:
            super().__init__()
            self.fc = nn.Linear(4, nn.maybe_choice("width", width))

    assert list(Net((8, 16)).search_space) == ["width"]
    assert len(Net(8).search_space) == 0
    assert Net((8, 16)).freeze({"width": 16}).fc.out_features == 16


def test_possible_values_and_largest() -> None:
    a, b = nn.choice("a", [1, 2]), nn.choice("b", [10, 20])
    assert nn.possible_values(a * b) == [10, 20, 40]
    assert nn.possible_values(a + a) == [2, 4]  # one decision, read twice
    assert nn.possible_values(5) == [5]
    assert nn.largest(a * b) == 40 and nn.largest(3) == 3
    with pytest.raises(SpaceError, match="continuous"):
        nn.possible_values(nn.uniform("u", 0.0, 1.0) * 2)


@pytest.mark.parametrize("divisor", [4, 8])
def test_make_divisible_on_a_choice_matches_each_value(divisor: int) -> None:
    multipliers = [0.25, 0.5, 0.75, 1.0, 1.3, 1.4]
    mult = nn.choice("m", multipliers)
    rounded = nn.make_divisible(mult * 37, divisor)
    for m in multipliers:
        fixed = nn.make_divisible(m * 37, divisor)
        assert evaluate(rounded, {"m": m}) == fixed
        assert fixed % divisor == 0 and fixed >= 0.9 * m * 37 and fixed >= divisor
    assert nn.make_divisible(3.0) == 8 and nn.make_divisible(24 * 1.3) == 32
    assert nn.make_divisible(3.0, 8, min_value=16) == 16

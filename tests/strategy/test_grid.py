"""GridSearch: every point exactly once, then the end."""

from __future__ import annotations

import pytest

from archsmith.space import Space, SpaceError, choice, uniform
from archsmith.strategy import GridSearch
from archsmith.strategy._grid import Permutation

from ._helpers import constrained_space, drive, json_round_trip, mixed_space


def zero(sample: dict) -> float:
    return 0.0


@pytest.mark.parametrize("shuffle", [True, False])
def test_covers_the_space_exactly_once_then_ends(shuffle: bool) -> None:
    space = mixed_space()
    strategy = GridSearch(shuffle=shuffle)
    assert strategy.can_exhaust(space)
    strategy.attach(space, seed=0)
    proposals = drive(strategy, 1000)
    assert len(proposals) == space.size() == 480
    assert len({repr(sorted(s.items())) for s in proposals}) == 480
    assert strategy.is_exhausted() and strategy.ask() is None
    assert (proposals == list(space.grid())) is not shuffle


def test_constrained_grid_is_the_valid_points() -> None:
    space = constrained_space()
    strategy = GridSearch()
    strategy.attach(space, seed=1)
    assert sorted(map(repr, drive(strategy, 100, f=zero))) == sorted(map(repr, space.grid()))


def test_continuous_space_needs_granularity() -> None:
    space = Space([choice("op", [1, 2]), uniform("dropout", 0.0, 0.5)])
    with pytest.raises(SpaceError, match="granularity"):
        GridSearch().attach(space, seed=0)
    assert not GridSearch().can_exhaust(space)
    strategy = GridSearch(granularity=2)
    strategy.attach(space, seed=0)
    assert sorted(s["dropout"] for s in drive(strategy, 100, f=zero)) == sorted([0.125, 0.25, 0.375] * 2)


def test_big_grid_state_is_small_and_resumes() -> None:
    space = Space([choice(f"x{i}", list(range(10))) for i in range(9)])  # 10**9 points
    strategy = GridSearch()
    strategy.attach(space, seed=0)
    drive(strategy, 5, f=zero)
    state = json_round_trip(strategy.state_dict())
    assert len(repr(state)) < 20_000
    resumed = GridSearch()
    resumed.attach(space, seed=0)
    resumed.load_state_dict(state)
    assert drive(resumed, 5, f=zero) == drive(strategy, 5, f=zero)


@pytest.mark.parametrize("n", [1, 2, 7, 100, 2**16 + 3])
def test_permutation_is_a_bijection(n: int) -> None:
    p = Permutation(n, seed=11)
    assert sorted(p(i) for i in range(n)) == list(range(n))

"""PolicyBasedRL: the controller learns; decisions encode and decode."""

from __future__ import annotations

import pytest

from archsmith.space import CategoricalMultiple, Numerical, Space, SpaceError, choice
from archsmith.strategy import PolicyBasedRL
from archsmith.strategy._rl import Decision

from ._helpers import drive


def toy_reward(sample: dict) -> float:
    return float(sample["a"] + sample["b"] + len(sample["m"]))


def test_controller_improves_its_expected_reward() -> None:
    space = Space([choice("a", [0, 1, 2, 3]), choice("b", [0, 1, 2, 3]), CategoricalMultiple([1, 2, 3], label="m")])
    strategy = PolicyBasedRL(samples_per_update=5, hidden_size=16, dedup=False)
    strategy.attach(space, seed=0)
    before = strategy.expected_reward(toy_reward)
    drive(strategy, 120, f=toy_reward)
    after = strategy.expected_reward(toy_reward)
    assert after > before + 2.0, (before, after)


def test_minimize_improves_too() -> None:
    space = Space([choice("a", [0, 1, 2, 3]), choice("b", [0, 1, 2, 3]), CategoricalMultiple([1, 2, 3], label="m")])
    strategy = PolicyBasedRL(samples_per_update=5, hidden_size=16, dedup=False)
    strategy.attach(space, seed=0, direction="minimize")
    before = strategy.expected_reward(toy_reward)
    drive(strategy, 120, f=toy_reward)
    assert strategy.expected_reward(toy_reward) < before - 2.0


def test_decisions_round_trip() -> None:
    leaves = [
        choice("c", ["x", "y", "z"]),
        CategoricalMultiple([1, 2, 3, 4], label="any"),
        CategoricalMultiple([1, 2, 3, 4], n_chosen=2, label="two"),
        Numerical(0, 6, quantize=1, label="small"),
        Numerical(0, 1000, quantize=1, label="big"),
        Numerical(0.0, 1.0, label="u"),
    ]
    values = ["y", [1, 4], [2, 3], 5, None, 0.375]
    for leaf, value in zip(leaves, values):
        decision = Decision(leaf, granularity=3)
        if value is None:
            assert len(decision.options) == 7  # a large grid is discretised at the quantiles
            value = decision.options[3]
        assert decision.decode(decision.encode(value)) == value
        assert leaf.check(decision.decode(decision.encode(value))) is None


def test_n_chosen_steps_are_increasing() -> None:
    decision = Decision(CategoricalMultiple(list("abcd"), n_chosen=2, label="m"), granularity=3)
    assert list(decision.allowed(0, [])) == [0, 1, 2]
    assert list(decision.allowed(1, [1])) == [2, 3]


def test_failure_policy_worst_feeds_the_batch() -> None:
    strategy = PolicyBasedRL(samples_per_update=100, hidden_size=8, on_failure="worst")
    strategy.attach(Space([choice("a", list(range(10)))]), seed=0)
    drive(strategy, 6, f=lambda s: float(s["a"]), fail_every=2)
    assert len(strategy._batch) == 6
    with pytest.raises(SpaceError, match="on_failure"):
        PolicyBasedRL(on_failure="skip")  # type: ignore[arg-type]

"""RegularizedEvolution: mutation always changes a gene; aging; failures."""

from __future__ import annotations

import random

import pytest

from archsmith.space import SpaceError
from archsmith.strategy import FinishedTrial, RegularizedEvolution
from archsmith.strategy._evolution import age, mutate, mutate_value, tournament

from ._helpers import continuous_space, drive, mixed_space


@pytest.mark.parametrize("space", [mixed_space(), continuous_space()], ids=["discrete", "continuous"])
def test_a_mutated_gene_always_takes_another_value(space) -> None:
    rng = random.Random(0)
    for _ in range(300):
        parent = space.random(rng=rng)
        for label, leaf in space.items():
            value = mutate_value(leaf, parent[label], rng)
            assert value != parent[label] and leaf.check(value) is None
        child = mutate(space, parent, 0.0, rng)  # prob 0: still one gene changes
        assert sum(child[k] != parent[k] for k in parent) == 1


def test_tournament_ranks_by_direction_and_failures_last() -> None:
    population = [({"a": 1}, 1.0), ({"a": 2}, 5.0), ({"a": 3}, None)]
    rng = random.Random(0)
    assert tournament(population, 3, lambda a, b: a > b, rng) == {"a": 2}
    assert tournament(population, 3, lambda a, b: a < b, rng) == {"a": 1}


def test_aging_removes_the_oldest() -> None:
    population: list = [({"a": i}, float(i)) for i in range(3)]
    assert [s["a"] for s, _ in age(population, ({"a": 9}, 0.0), 3)] == [1, 2, 9]


def test_children_come_from_the_population_after_it_fills() -> None:
    strategy = RegularizedEvolution(population_size=5, sample_size=5, mutation_prob=0.0)
    space = mixed_space()
    strategy.attach(space, seed=0)
    drive(strategy, 5)
    members = [s for s, _ in strategy._population]
    child = strategy.ask()
    assert child is not None
    assert min(sum(child[k] != m[k] for k in child) for m in members) == 1


@pytest.mark.parametrize("on_failure", ["ignore", "worst"])
def test_failure_policy(on_failure: str) -> None:
    strategy = RegularizedEvolution(population_size=4, sample_size=2, on_failure=on_failure)  # type: ignore[arg-type]
    strategy.attach(mixed_space(), seed=0)
    drive(strategy, 6, fail_every=2)
    expected = 3 if on_failure == "ignore" else 4
    assert len(strategy._population) == expected


def test_crossover_and_bad_arguments() -> None:
    strategy = RegularizedEvolution(population_size=4, sample_size=2, crossover=True)
    strategy.attach(mixed_space(), seed=0)
    assert len(drive(strategy, 30)) == 30
    with pytest.raises(SpaceError, match="on_failure"):
        RegularizedEvolution(on_failure="best")  # type: ignore[arg-type]
    with pytest.raises(SpaceError, match="population_size"):
        RegularizedEvolution(population_size=0)


def test_without_dedup_it_keeps_proposing() -> None:
    strategy = RegularizedEvolution(population_size=2, sample_size=2, dedup=False)
    space = mixed_space()
    strategy.attach(space, seed=0)
    assert not strategy.can_exhaust(space)
    sample = strategy.ask()
    assert sample is not None
    strategy.tell(FinishedTrial(0, sample, "succeeded", 1.0))
    assert len(drive(strategy, 600, start=1)) == 600


def test_a_mutation_changes_the_architecture_not_an_unused_gene() -> None:
    from archsmith.space import Condition, Space, choice

    space = Space(
        [choice("depth", [1, 2]), choice("op0", ["a", "b"]), *(choice(f"op{i}", ["a", "b"]) for i in range(1, 6))],
        conditions=[Condition(f"op{i}", "depth", [2]) for i in range(1, 6)],
    )
    rng = random.Random(0)
    parent = {"depth": 1, "op0": "a", **{f"op{i}": "a" for i in range(1, 6)}}
    for _ in range(100):  # of 7 genes only depth and op0 are used: one of them changes
        child = mutate(space, parent, 0.0, rng)
        assert space.architecture_key(child) != space.architecture_key(parent)

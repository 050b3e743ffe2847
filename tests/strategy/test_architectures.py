"""Strategies search architectures, not samples: over a space with conditions
(decisions inside unchosen candidates, blocks beyond the chosen depth) no
architecture is proposed twice, a finite space ends exactly, and the state stays
small (the history comes back through ``restore_history``)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from archsmith.space import Condition, Constraint, Space, choice
from archsmith.strategy import STRATEGIES, FinishedTrial, GridSearch, Random, sample_key

from ._helpers import json_round_trip, make, mixed_space, objective

NAMES = sorted(STRATEGIES)


def conditioned_space(constrained: bool = False, stack: int = 3) -> Space:
    """A depth-(1, stack) stack of 3-way choices and a 2-way head with a nested
    choice: with ``stack=3``, (3 + 9 + 27) * (1 + 2) = 117 architectures out of
    3 * 27 * 2 * 2 = 324 samples. The constraint rules out "c" at the deepest op."""
    depths = list(range(1, stack + 1))
    depth, head = choice("depth", depths), choice("head", ["plain", "gated"])
    ops = [choice(f"op{i}", ["a", "b", "c"]) for i in range(stack)]
    gate = choice("gate", ["relu", "tanh"])
    conditions = [Condition(f"op{i}", "depth", [d for d in depths if d > i]) for i in range(stack)]
    conditions.append(Condition("gate", "head", ["gated"]))
    last = f"op{stack - 1}"
    constraints = [Constraint(lambda s: not (s["depth"] == stack and s[last] == "c"), labels=["depth", last])]
    return Space([depth, *ops, head, gate], constraints=constraints if constrained else [], conditions=conditions)


def score(sample: dict[str, Any]) -> float:
    return float(sample["depth"] + (sample.get("head") == "gated"))


def run_out(strategy: Any, limit: int = 1000, start: int = 0) -> list[dict[str, Any]]:
    """Ask and tell (trial ids from ``start``) until ``limit`` proposals or None."""
    proposals = []
    for i in range(start, start + limit):
        sample = strategy.ask()
        if sample is None:
            break
        proposals.append(sample)
        strategy.tell(FinishedTrial(i, sample, "succeeded", score(sample)))
    return proposals


@pytest.mark.parametrize("constrained", [False, True])
@pytest.mark.parametrize("name", NAMES)
def test_each_architecture_is_proposed_once_then_the_search_ends(name: str, constrained: bool) -> None:
    space = conditioned_space(constrained, stack=2)
    strategy = make(name)
    strategy.attach(space, seed=0)
    if not strategy.can_exhaust(space):
        pytest.skip(f"{name} does not end by itself")
    proposals = run_out(strategy)
    keys = [space.architecture_key(s) for s in proposals]
    assert len(set(keys)) == len(keys), "an architecture was proposed twice"
    assert len(keys) == space.size() == ((3 + 6) * 3 if constrained else (3 + 9) * 3)
    assert all(space.check(s) == [] for s in proposals)
    assert strategy.is_exhausted() and strategy.ask() is None


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 3), st.integers(1, 3), st.booleans(), st.integers(0, 100))
def test_grid_search_visits_each_architecture_once(depths: int, ops: int, shuffle: bool, seed: int) -> None:
    depth = choice("depth", list(range(depths + 1)))
    leaves = [depth] + [choice(f"op{i}", list(range(ops))) for i in range(depths)]
    conditions = [Condition(f"op{i}", "depth", [d for d in range(depths + 1) if d > i]) for i in range(depths)]
    space = Space(leaves, conditions=conditions)
    grid = GridSearch(shuffle=shuffle)
    grid.attach(space, seed=seed)
    proposals = run_out(grid)
    keys = [space.architecture_key(s) for s in proposals]
    assert len(set(keys)) == len(keys) == space.size() == sum(ops**d for d in range(depths + 1))
    assert set(keys) == {space.architecture_key(s) for s in space.grid()}
    assert grid.is_exhausted()


def test_grid_search_resumes_over_architectures() -> None:
    space = conditioned_space(constrained=True)
    whole = GridSearch()
    whole.attach(space, seed=4)
    expected = run_out(whole)
    first = GridSearch()
    first.attach(space, seed=4)
    head = [first.ask() for _ in range(40)]
    resumed = GridSearch()
    resumed.attach(space, seed=4)
    resumed.load_state_dict(json_round_trip(first.state_dict()))
    assert head + run_out(resumed) == expected


@pytest.mark.parametrize("name", NAMES)
def test_resume_with_the_history_continues_identically(name: str) -> None:
    space = conditioned_space()

    whole = make(name)
    whole.attach(space, seed=2)
    expected = run_out(whole, 90)
    first = make(name)
    first.attach(space, seed=2)
    head = run_out(first, 50)
    resumed = make(name)
    resumed.attach(space, seed=2)
    resumed.load_state_dict(json_round_trip(first.state_dict()))
    resumed.restore_history(head)
    assert head + run_out(resumed, 40, start=50) == expected


@pytest.mark.parametrize("name", [n for n in NAMES if n not in ("optuna", "tpe", "nsga2")])
def test_the_state_does_not_grow_with_the_run(name: str) -> None:
    """The experiment writes the state after every trial: it must stay small.
    (Optuna's study is its list of trials: O(n) by nature.)"""
    strategy = make(name)
    strategy.attach(mixed_space(), seed=0)
    sizes = []
    for i in range(200):
        sample = strategy.ask()
        assert sample is not None
        strategy.tell(FinishedTrial(i, sample, "succeeded", objective(sample)))
        if i in (39, 199):
            sizes.append(len(json.dumps(strategy.state_dict())))
    assert sizes[1] < sizes[0] * 1.5, sizes


def test_an_older_state_with_the_seen_list_still_loads() -> None:
    space = Space([choice("a", [1, 2, 3])])
    old = Random()
    old.attach(space, seed=0)
    first = old.ask()
    assert first is not None
    state = {**old.state_dict(), "seen": [sample_key(first)]}  # how states were written before
    resumed = Random()
    resumed.attach(space, seed=0)
    resumed.load_state_dict(json_round_trip(state))
    rest = [resumed.ask(), resumed.ask()]
    assert first not in rest and None not in rest and resumed.ask() is None

"""Conditions: decisions a sample does not use make no other architecture.

``size()`` counts architectures, ``grid()`` lists each once, ``architecture_key``
names one, ``validate`` fills unused decisions left out; checked against brute
force over every assignment."""

from __future__ import annotations

import itertools
import zlib
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from archsmith.space import (
    Categorical,
    CategoricalMultiple,
    Condition,
    Constraint,
    SampleError,
    Space,
    SpaceError,
    choice,
    uniform,
)
from archsmith.space import _space as space_module


def repeat_space(ops: int = 2) -> Space:
    """A depth-(1, 2) Repeat over a block with an ``ops``-way choice, flattened."""
    return Space(
        [choice("depth", [1, 2]), choice("op0", list(range(ops))), choice("op1", list(range(ops)))],
        conditions=[Condition("op0", "depth", [1, 2]), Condition("op1", "depth", [2])],
    )


def assignments(space: Space) -> Iterator[dict[str, Any]]:
    labels = list(space)
    for values in itertools.product(*(space[label].grid() for label in labels)):
        yield dict(zip(labels, values))


def brute_keys(space: Space) -> set[str]:
    """Every architecture by brute force: the keys of all valid assignments."""
    return {space.architecture_key(s) for s in assignments(space) if space.satisfies(s)}


@pytest.mark.parametrize(("ops", "architectures", "assignments_"), [(2, 6, 8), (3, 12, 18)])
def test_a_depth_range_counts_architectures_not_assignments(ops: int, architectures: int, assignments_: int) -> None:
    space = repeat_space(ops)
    assert space.size() == architectures == len(brute_keys(space))
    assert len(list(assignments(space))) == assignments_
    grid = list(space.grid())
    assert len(grid) == architectures
    assert len({space.architecture_key(s) for s in grid}) == architectures
    assert all(s["op1"] == 0 for s in grid if s["depth"] == 1)  # unused: at its default


def test_active_labels_and_architecture_key() -> None:
    space = repeat_space()
    assert space.active_labels({"depth": 1, "op0": 1, "op1": 1}) == {"depth", "op0"}
    assert space.active_labels({"depth": 2, "op0": 1, "op1": 1}) == {"depth", "op0", "op1"}
    one = space.architecture_key({"depth": 1, "op0": 1, "op1": 0})
    assert one == space.architecture_key({"depth": 1, "op0": 1, "op1": 1})
    assert one == space.architecture_key({"op0": 1, "depth": 1, "lr": 0.1})  # order, missing and foreign labels
    assert one != space.architecture_key({"depth": 2, "op0": 1, "op1": 1})
    assert one == '{"depth": 1, "op0": 1}'
    assert space.representative({"depth": 1, "op0": 1, "op1": 1}) == {"depth": 1, "op0": 1, "op1": 0}


def test_a_space_without_conditions_keys_whole_samples() -> None:
    space = Space([choice("a", [1, 2]), choice("b", [1, 2])])
    assert space.active_labels({"a": 1, "b": 2}) == {"a", "b"}
    assert space.architecture_key({"b": 2, "a": 1}) == '{"a": 1, "b": 2}'
    assert space.conditions == {}


def test_validate_fills_an_unused_decision_left_out() -> None:
    space = repeat_space()
    assert space.validate({"depth": 1, "op0": 1}) == {"depth": 1, "op0": 1, "op1": 0}
    with pytest.raises(SampleError, match="'op1': missing"):
        space.validate({"depth": 2, "op0": 1})
    with pytest.raises(SampleError, match="'depth': missing") as info:
        space.validate({"op0": 1})  # its parent missing: op1 is unused, op0 still needed
    assert len(info.value.problems) == 1


def test_nested_conditions_chain() -> None:
    # act is used inside the "nested" candidate; inner inside act's candidate 1
    space = Space(
        [choice("outer", ["plain", "nested"]), choice("act", [0, 1]), choice("inner", [0, 1, 2])],
        conditions=[Condition("act", "outer", ["nested"]), Condition("inner", "act", [1])],
    )
    assert space.size() == 1 + 1 + 3 == len(brute_keys(space))
    assert space.active_labels({"outer": "plain", "act": 1, "inner": 2}) == {"outer"}
    assert space.validate({"outer": "plain"}) == {"outer": "plain", "act": 0, "inner": 0}


def test_a_label_used_in_several_places_is_active_if_any_is() -> None:
    space = Space(
        [choice("p", ["a", "b"]), choice("q", ["a", "b"]), choice("w", [1, 2, 3])],
        conditions=[Condition("w", "p", ["a"]), Condition("w", "q", ["b"])],
    )
    assert space.active_labels({"p": "b", "q": "a", "w": 1}) == {"p", "q"}
    assert space.active_labels({"p": "b", "q": "b", "w": 1}) == {"p", "q", "w"}
    assert space.size() == 1 + 3 * 3 == len(brute_keys(space))  # (p=b, q=a) leaves w unused
    assert "w: one of [1, 2, 3] (used if p in ['a'] or q in ['b'])" in repr(space)


def test_conditions_through_a_cycle_of_shared_labels() -> None:
    # x is used under z=1 or y=1; y under z=2 or x=1: only z opens the way in
    space = Space(
        [choice("z", [0, 1, 2]), choice("x", [0, 1]), choice("y", [0, 1])],
        conditions=[
            Condition("x", "z", [1]),
            Condition("x", "y", [1]),
            Condition("y", "z", [2]),
            Condition("y", "x", [1]),
        ],
    )
    assert space.active_labels({"z": 0, "x": 1, "y": 1}) == {"z"}
    assert space.active_labels({"z": 1, "x": 1, "y": 0}) == {"z", "x", "y"}
    assert space.size() == len(brute_keys(space)) == len(list(space.grid()))


def test_constraints_judge_architectures_with_unused_decisions_at_their_default() -> None:
    depth, a, b = choice("depth", [1, 2]), choice("a", [0, 1, 2]), choice("b", [0, 1, 2])
    space = Space(
        [depth, a, b], constraints=[Constraint(a <= b)], conditions=[Condition("b", "depth", [2])]
    )  # with depth 1, b is unused and read as 0: only a = 0 passes
    assert space.size() == 1 + 6 == len(brute_keys(space))
    assert space.size(constrained=False) == 3 + 9
    assert len(list(space.grid())) == 7
    assert space.satisfies({"depth": 1, "a": 0, "b": 2})
    assert not space.satisfies({"depth": 1, "a": 1, "b": 2})
    for seed in range(20):
        assert space.satisfies(space.random(seed=seed))


def test_a_counter_counts_a_group_that_conditions_open(monkeypatch: pytest.MonkeyPatch) -> None:
    # a constrained pair used only under gate="on": branching on the gate leaves the pair whole
    gate, a, b = choice("gate", ["off", "on"]), choice("a", [0, 1, 2]), choice("b", [0, 1, 2])
    calls = []

    def counter(leaves: Any) -> int:
        calls.append(1)
        return 3

    constraint = Constraint(lambda s: s["a"] < s["b"], labels=["a", "b"], counter=counter)
    space = Space(
        [gate, a, b],
        constraints=[constraint],
        conditions=[Condition("a", "gate", ["on"]), Condition("b", "gate", ["on"])],
    )
    assert space.size() == 3 == len(brute_keys(space))  # unused, a = b = 0 breaks a < b: no "off" architecture
    assert calls  # the pair was counted by its counter once the gate was decided
    monkeypatch.setattr(space_module, "ENUMERATION_LIMIT", 1)
    big = Space(
        [choice("g", [0, 1]), choice("c", [0, 1, 2]), choice("d", [0, 1, 2])],
        constraints=[Constraint(lambda s: s["c"] != s["d"], labels=["c", "d", "g"])],
        conditions=[Condition("d", "g", [1])],
    )
    with pytest.raises(SpaceError, match=r"couple 3 decisions with 12 architectures.*size\(constrained=False\)"):
        big.size()


def test_condition_errors_name_the_problem() -> None:
    leaves = [choice("p", [1, 2]), choice("x", [0, 1]), uniform("lr", 0.0, 1.0)]
    with pytest.raises(SpaceError, match="'nope' is not a label of the space"):
        Space(leaves, conditions=[Condition("x", "nope", [1])])
    with pytest.raises(SpaceError, match="cannot be conditioned on itself"):
        Space(leaves, conditions=[Condition("x", "x", [1])])
    with pytest.raises(SpaceError, match=r"\[3\] given for 'p', which takes one of \[1, 2\]"):
        Space(leaves, conditions=[Condition("x", "p", [3])])
    with pytest.raises(SpaceError, match="no values given"):
        Space(leaves, conditions=[Condition("x", "p", [])])
    with pytest.raises(SpaceError, match="parent 'lr' must be a discrete choice"):
        Space(leaves, conditions=[Condition("x", "lr", [0.5])])
    with pytest.raises(SpaceError, match="takes a Condition"):
        Space(leaves).add_condition(("x", "p", [1]))  # type: ignore[arg-type]


def test_continuous_decisions_under_conditions() -> None:
    space = Space([choice("use", [False, True]), uniform("p", 0.0, 1.0)], conditions=[Condition("p", "use", [True])])
    assert space.size() == float("inf")
    grid = list(space.grid(granularity=2))
    assert len(grid) == 1 + 3
    with pytest.raises(SpaceError, match="continuous"):
        list(space.grid())


# Random nested spaces against brute force ------------------------------------------------


@st.composite
def conditioned_spaces(draw: Any) -> Space:
    """Up to 5 small decisions, each maybe conditioned on an earlier one (or two),
    maybe with a constraint."""
    n = draw(st.integers(1, 5))
    leaves: list[Any] = []
    conditions = []
    for i in range(n):
        if draw(st.booleans()) or i == 0:
            leaves.append(Categorical(list(range(draw(st.integers(1, 3)))), label=f"l{i}"))
        else:
            leaves.append(CategoricalMultiple(["u", "v"], label=f"l{i}"))
        for parent in draw(st.lists(st.integers(0, i - 1), max_size=2, unique=True)) if i else []:
            grid = leaves[parent].grid()
            picked = draw(st.lists(st.sampled_from(range(len(grid))), min_size=1, unique=True))
            conditions.append(Condition(f"l{i}", f"l{parent}", [grid[k] for k in picked]))
    constraints = []
    if draw(st.booleans()):
        reads = sorted(draw(st.sets(st.integers(0, n - 1), min_size=1, max_size=2)))
        salt = draw(st.integers(0, 5))
        labels = [f"l{k}" for k in reads]
        constraints.append(
            Constraint(lambda s: zlib.crc32(f"{[s[x] for x in labels]}{salt}".encode()) % 3 != 0, labels=labels)
        )
    return Space(leaves, constraints=constraints, conditions=conditions)


@settings(max_examples=150, deadline=None)
@given(conditioned_spaces())
def test_size_and_grid_match_brute_force(space: Space) -> None:
    keys = brute_keys(space)
    assert space.size() == len(keys)
    grid = list(space.grid())
    grid_keys = [space.architecture_key(s) for s in grid]
    assert len(set(grid_keys)) == len(grid_keys)  # one sample per architecture
    assert set(grid_keys) == keys  # and every architecture
    for sample in grid:
        assert space.check(sample) == []
        assert space.representative(sample) == sample  # unused decisions at their default
    unconstrained = {space.architecture_key(s) for s in assignments(space)}
    assert space.size(constrained=False) == len(unconstrained)


@settings(max_examples=100, deadline=None)
@given(conditioned_spaces(), st.integers(0, 10**6))
def test_a_sample_validates_without_its_unused_decisions(space: Space, seed: int) -> None:
    try:
        sample = space.random(seed=seed)
    except SpaceError:
        return  # a constraint no random draw meets
    used = space.active_labels(sample)
    partial = {label: value for label, value in sample.items() if label in used}
    filled = space.validate(partial)
    assert space.architecture_key(filled) == space.architecture_key(sample)
    assert space.active_labels(filled) == used

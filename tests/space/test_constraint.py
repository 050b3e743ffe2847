"""Constraints over a sample function or a boolean expression."""

from __future__ import annotations

import pytest

from archsmith.space import Categorical, Constraint, SampleError, Space, SpaceError, choice, uniform


def test_expression_constraint_knows_its_labels_and_name():
    a, b = choice("a", [1, 2, 3]), choice("b", [1, 2, 3])
    c = Constraint(a < b)
    assert c.labels == frozenset({"a", "b"})
    assert c.name == repr(a < b)
    assert repr(c) == f"Constraint({c.name})"
    assert c({"a": 1, "b": 2}) is True
    assert c({"a": 2, "b": 2}) is False


def test_function_constraint():
    c = Constraint(lambda s: s["a"] + s["b"] <= 4, name="budget", labels=["a", "b"])
    assert c.name == "budget"
    assert c.labels == frozenset({"a", "b"})
    assert c({"a": 1, "b": 3}) is True
    assert c({"a": 2, "b": 3}) is False


def test_function_constraint_default_name_and_labels():
    def small_sum(sample):
        return sample["a"] < 3

    c = Constraint(small_sum)
    assert c.name == "small_sum"
    assert c.labels is None
    assert c({"a": 2}) is True


def test_constraint_result_is_coerced_to_bool():
    c = Constraint(lambda s: s["a"], labels=["a"])
    assert c({"a": 0}) is False
    assert c({"a": [1]}) is True


@pytest.mark.parametrize("bad", [3, "a < b", None, [1]])
def test_constraint_needs_function_or_expression(bad):
    with pytest.raises(SpaceError, match="Constraint needs a function"):
        Constraint(bad)


def test_broken_predicate_names_the_constraint():
    c = Constraint(lambda s: s["missing"] > 0, name="reads_missing")
    with pytest.raises(SpaceError, match=r"constraint 'reads_missing' raised KeyError"):
        c({"a": 1})
    space = Space([choice("a", [1, 2])], constraints=[c])
    with pytest.raises(SpaceError, match="reads_missing"):
        space.random(seed=0)


def test_constraint_on_unknown_label():
    a = choice("a", [1, 2])
    stranger = choice("stranger", [1, 2])
    with pytest.raises(SpaceError, match=r"reads labels not in the space: \['stranger'\]"):
        Space([a], constraints=[Constraint(a < stranger)])
    with pytest.raises(SpaceError, match=r"\['ghost'\]"):
        Space([a], constraints=[Constraint(lambda s: True, labels=["a", "ghost"], name="g")])


def test_add_constraint_wraps_expressions_and_functions():
    a, b = choice("a", [1, 2, 3]), choice("b", [1, 2, 3])
    space = Space([a, b])
    space.add_constraint(a <= b)
    space.add_constraint(lambda s: s["a"] != 2)
    assert all(isinstance(c, Constraint) for c in space.constraints)
    assert space.constraints[0].labels == frozenset({"a", "b"})
    expected = [{"a": 1, "b": 1}, {"a": 1, "b": 2}, {"a": 1, "b": 3}, {"a": 3, "b": 3}]
    assert list(space.grid()) == expected
    assert space.size() == 4
    assert all(space.random(seed=i) in expected for i in range(50))


def test_constraint_over_continuous_and_discrete():
    w = choice("w", [16, 32, 64])
    d = uniform("d", 0.0, 1.0)
    space = Space([w, d], constraints=[Constraint((w < 64) | (d < 0.1))])
    for seed in range(100):
        s = space.random(seed)
        assert s["w"] < 64 or s["d"] < 0.1
    assert {s["w"] for s in space.grid(2)} == {16, 32}


def test_satisfies_contains_and_validate():
    a, b = choice("a", [1, 2, 3]), choice("b", [1, 2, 3])
    space = Space([a, b], constraints=[Constraint(a < b, name="ordered")])
    assert space.satisfies({"a": 1, "b": 2})
    assert not space.satisfies({"a": 2, "b": 1})
    assert space.contains({"a": 1, "b": 2})
    assert not space.contains({"a": 2, "b": 1})
    assert space.check({"a": 2, "b": 1}) == ["violates constraint 'ordered'"]
    with pytest.raises(SampleError, match="violates constraint 'ordered'"):
        space.validate({"a": 3, "b": 3})


def test_constraints_are_only_checked_on_well_formed_samples():
    a, b = choice("a", [1, 2, 3]), choice("b", [1, 2, 3])
    space = Space([a, b], constraints=[Constraint(a < b)])
    problems = space.check({"a": 3})
    assert len(problems) == 1
    assert problems[0].startswith("'b': missing")


def test_constraint_on_shared_label_counts_once():
    x1 = Categorical([1, 2, 3], label="x")
    x2 = Categorical([1, 2, 3], label="x")
    y = choice("y", [1, 2, 3])
    space = Space([x1, x2, y], constraints=[Constraint(x1 + x2 > y)])
    assert Constraint(x1 + x2 > y).labels == frozenset({"x", "y"})
    assert space.size() == sum(1 for xv in (1, 2, 3) for yv in (1, 2, 3) if 2 * xv > yv)
    assert space.size() == len(list(space.grid()))


def test_constraint_with_no_labels_is_counted():
    space = Space([choice("a", [1, 2])], constraints=[Constraint(lambda s: False, labels=[], name="never")])
    assert space.size() == 0
    assert list(space.grid()) == []
    with pytest.raises(SpaceError, match="'never'"):
        space.random(seed=1)

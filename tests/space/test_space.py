"""Space: validation, random sampling, grid, size, defaults and label sharing."""

from __future__ import annotations

import inspect
import json
import math
import random
from collections import Counter

import pytest

from archsmith.space import (
    Categorical,
    CategoricalMultiple,
    Constraint,
    LabelConflictError,
    Numerical,
    SampleError,
    Space,
    SpaceError,
    choice,
    label_scope,
    make_rng,
    quniform,
    randint,
    uniform,
)


def line() -> int:
    """The caller's line number."""
    return inspect.currentframe().f_back.f_lineno


def mixed_space() -> Space:
    return Space(
        [
            Categorical([16, 32, 64], label="width"),
            Categorical(["relu", "gelu"], label="act"),
            Categorical([(1, 1), (3, 3)], label="kernel"),
            CategoricalMultiple(["a", "b", "c"], n_chosen=2, label="skips"),
            Numerical(0.0, 0.5, label="dropout"),
            Numerical(1e-4, 1e-1, log=True, label="lr"),
            randint("depth", 1, 5),
        ]
    )


def test_space_is_an_ordered_mapping():
    space = mixed_space()
    assert list(space) == ["width", "act", "kernel", "skips", "dropout", "lr", "depth"]
    assert len(space) == 7
    assert "width" in space and "nope" not in space
    assert space["act"].values == ["relu", "gelu"]
    assert not space.is_discrete
    text = repr(space)
    assert text.startswith("Space(7 decisions)")
    assert "width: one of [16, 32, 64]" in text


def test_space_from_mapping():
    a = choice("a", [1, 2])
    space = Space({"a": a})
    assert list(space) == ["a"] and space["a"] is a


def test_space_rejects_non_leaves():
    a = choice("a", [1, 2])
    with pytest.raises(SpaceError, match="a Space holds choices"):
        Space([a + 1])
    with pytest.raises(SpaceError, match="a Space holds choices"):
        Space([3])


# validate --------------------------------------------------------------------------------------


def test_validate_returns_canonical_sample():
    space = mixed_space()
    sample = {
        "width": 32.0,
        "act": "gelu",
        "kernel": [3, 3],
        "skips": ("c", "a"),
        "dropout": 0,
        "lr": 0.01,
        "depth": 2.0,
    }
    out = space.validate(sample)
    assert out == {
        "width": 32,
        "act": "gelu",
        "kernel": (3, 3),
        "skips": ["a", "c"],
        "dropout": 0.0,
        "lr": 0.01,
        "depth": 2,
    }
    assert type(out["width"]) is int
    assert type(out["kernel"]) is tuple
    assert type(out["dropout"]) is float
    assert type(out["depth"]) is int
    assert space.contains(sample)
    assert space.check(sample) == []


def test_validate_reports_every_problem_at_once():
    space = mixed_space()
    sample = {
        # "width" missing
        "act": "tanh",  # out of range
        "kernel": 3,  # wrong type
        "skips": ["a"],  # wrong count
        "dropout": "0.1",  # wrong type
        "lr": 1.0,  # out of range
        "depth": 5,  # out of range (randint's high is exclusive)
        "extra_label": 1,  # extra
    }
    with pytest.raises(SampleError) as e:
        space.validate(sample)
    problems = e.value.problems
    assert len(problems) == 8
    by_label = {p.split(":")[0]: p for p in problems}
    assert set(by_label) == {
        repr(x) for x in ["width", "act", "kernel", "skips", "dropout", "lr", "depth", "extra_label"]
    }
    assert "missing" in by_label["'width'"]
    assert "out of range" in by_label["'act'"]
    assert "wrong type int" in by_label["'kernel'"]
    assert "1 chosen" in by_label["'skips'"]
    assert "wrong type str" in by_label["'dropout'"]
    assert "out of range" in by_label["'lr'"]
    assert "out of range" in by_label["'depth'"]
    assert "extra label" in by_label["'extra_label'"]
    message = str(e.value)
    assert "8 problems" in message
    for p in problems:
        assert p in message
    assert not space.contains(sample)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (True, "wrong type bool"),
        (False, "wrong type bool"),
        (2, "out of range"),
        ("1", "wrong type str"),
        (None, "wrong type NoneType"),
    ],
)
def test_bool_is_not_an_int_candidate(value, problem):
    space = Space([Categorical([0, 1], label="bit")])
    with pytest.raises(SampleError) as e:
        space.validate({"bit": value})
    assert len(e.value.problems) == 1
    assert e.value.problems[0].startswith("'bit': ")
    assert problem in e.value.problems[0]


def test_one_and_one_point_zero_are_the_same_number():
    space = Space([Categorical([0, 1], label="bit"), Categorical([0.5, 2.0], label="f")])
    assert space.validate({"bit": 1.0, "f": 2}) == {"bit": 1, "f": 2.0}
    assert type(space.validate({"bit": 1.0, "f": 2})["f"]) is float


def test_validate_list_for_tuple_candidate():
    space = Space([Categorical([(1, 2), (3, 4)], label="k"), CategoricalMultiple([(0, 0), (1, 1)], label="m")])
    out = space.validate({"k": [3, 4], "m": [[1, 1]]})
    assert out == {"k": (3, 4), "m": [(1, 1)]}
    assert type(out["k"]) is tuple and type(out["m"][0]) is tuple
    # a list that matches no candidate is still an error
    with pytest.raises(SampleError, match="'k'"):
        space.validate({"k": [1, 3], "m": []})


def test_validate_non_mapping():
    space = mixed_space()
    with pytest.raises(SampleError, match="a sample is a dict"):
        space.validate([("width", 16)])
    assert space.check(None) == ["a sample is a dict of label -> value, got NoneType"]


def test_sample_error_singular_message():
    with pytest.raises(SampleError, match=r"sample is invalid \(1 problem\)"):
        Space([choice("x", [1])]).validate({})


def test_validate_checks_constraints_on_the_canonical_sample():
    k = Categorical([(1, 2), (3, 4)], label="k")
    space = Space([k], constraints=[Constraint(lambda s: isinstance(s["k"], tuple) and s["k"][0] == 3, name="k3")])
    assert space.validate({"k": [3, 4]}) == {"k": (3, 4)}
    with pytest.raises(SampleError, match="violates constraint 'k3'"):
        space.validate({"k": (1, 2)})


# random ----------------------------------------------------------------------------------------


def test_random_same_seed_same_sample():
    space = mixed_space()
    s1, s2 = space.random(seed=123), space.random(seed=123)
    assert s1 == s2
    assert json.dumps(s1, sort_keys=True) == json.dumps(s2, sort_keys=True)
    assert space.random(rng=random.Random(123)) == s1
    assert len({json.dumps(space.random(seed=i), sort_keys=True) for i in range(30)}) > 25


def test_random_samples_validate_and_are_canonical():
    space = mixed_space()
    rng = random.Random(7)
    for _ in range(300):
        s = space.random(rng=rng)
        assert space.validate(s) == s
        assert type(s["kernel"]) is tuple


def test_random_shared_rng_advances():
    space = Space([uniform("u", 0, 1)])
    rng = random.Random(0)
    assert space.random(rng=rng) != space.random(rng=rng)


def test_random_respects_weights():
    space = Space(
        [
            Categorical(["a", "b", "c"], label="w", weights=[1, 2, 7]),
            Categorical(["x", "y"], label="u"),
        ]
    )
    rng = random.Random(11)
    n = 20_000
    draws = [space.random(rng=rng) for _ in range(n)]
    freq = Counter(d["w"] for d in draws)
    assert abs(freq["a"] / n - 0.1) < 0.015
    assert abs(freq["b"] / n - 0.2) < 0.015
    assert abs(freq["c"] / n - 0.7) < 0.015
    ufreq = Counter(d["u"] for d in draws)
    assert abs(ufreq["x"] / n - 0.5) < 0.015


def test_random_with_constraints():
    a, b = choice("a", [1, 2, 3, 4]), choice("b", [1, 2, 3, 4])
    space = Space([a, b], constraints=[Constraint(a < b)])
    draws = [space.random(seed=i) for i in range(300)]
    assert all(d["a"] < d["b"] for d in draws)
    assert {(d["a"], d["b"]) for d in draws} == {(x, y) for x in range(1, 5) for y in range(1, 5) if x < y}


def test_random_unsatisfiable_constraints():
    a = choice("a", [1, 2, 3])
    space = Space([a], constraints=[Constraint(a > 5, name="impossible")])
    with pytest.raises(SpaceError, match=r"'impossible'.*unsatisfiable"):
        space.random(seed=0)


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"seed": 1, "rng": random.Random(1)}, "either seed or rng"),
        ({"seed": "1"}, "seed must be an integer"),
        ({"seed": 1.5}, "seed must be an integer"),
        ({"seed": True}, "seed must be an integer"),
        ({"rng": 5}, "rng must be a random.Random"),
    ],
)
def test_random_bad_seed_or_rng(kwargs, pattern):
    with pytest.raises(SpaceError, match=pattern):
        mixed_space().random(**kwargs)
    with pytest.raises(SpaceError, match=pattern):
        make_rng(**kwargs)


def test_make_rng():
    r = random.Random(3)
    assert make_rng(rng=r) is r
    assert make_rng(5).random() == random.Random(5).random()


def test_random_after_adding_a_leaf_draws_it():
    space = Space([choice("a", [1, 2])])
    assert set(space.random(seed=0)) == {"a"}
    space.add(choice("b", [3]))
    assert space.random(seed=0)["b"] == 3


# default -----------------------------------------------------------------------------------------


def test_default():
    space = Space(
        [
            Categorical([16, 32], label="w"),
            Categorical(["x", "y"], label="c", default="y"),
            CategoricalMultiple([1, 2, 3], n_chosen=2, label="m"),
            Numerical(0, 1, label="n"),
            Numerical(1, 100, log=True, label="lg"),
            Numerical(0, 10, quantize=5, label="q"),
        ]
    )
    d = space.default()
    assert d == {"w": 16, "c": "y", "m": [1, 2], "n": 0.5, "lg": pytest.approx(10.0), "q": 5}
    assert space.validate(d) == d


def test_default_violating_constraint():
    a = choice("a", [1, 2])
    space = Space([a], constraints=[Constraint(a == 2, name="two")])
    with pytest.raises(SpaceError, match=r"default sample violates constraints \['two'\]"):
        space.default()


# grid and size ------------------------------------------------------------------------------------


def _key(sample):
    return json.dumps(sample, sort_keys=True)


def test_grid_discrete_exhaustive():
    space = Space(
        [
            choice("a", [1, 2, 3]),
            CategoricalMultiple(["x", "y"], label="m"),
            quniform("q", 0, 1, 0.5),
            randint("r", 0, 2),
        ]
    )
    samples = list(space.grid())
    assert space.size() == 3 * 4 * 3 * 2
    assert len(samples) == space.size()
    assert len({_key(s) for s in samples}) == len(samples)
    assert all(space.validate(s) == s for s in samples)
    assert space.is_discrete


def test_grid_continuous_refines_quantiles():
    space = Space([choice("a", [1, 2]), uniform("u", 0, 8)])
    with pytest.raises(SpaceError, match=r"'u'.*granularity"):
        list(space.grid())
    assert [s["u"] for s in space.grid(1)] == [4.0, 4.0]
    g2 = list(space.grid(2))
    assert len(g2) == 2 * 3
    assert sorted({s["u"] for s in g2}) == [2.0, 4.0, 6.0]
    g3 = {s["u"] for s in space.grid(3)}
    assert g3 == {1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0}
    assert {s["u"] for s in g2} <= g3  # each level refines the previous one
    assert space.size() == math.inf


def test_grid_log_quantiles():
    space = Space([Numerical(1, 10_000, log=True, label="lg")])
    assert [s["lg"] for s in space.grid(2)] == pytest.approx([10.0, 100.0, 1000.0])


def test_grid_respects_constraints():
    a, b = choice("a", [1, 2, 3]), choice("b", [1, 2, 3])
    space = Space([a, b], constraints=[Constraint(a < b)])
    assert list(space.grid()) == [{"a": 1, "b": 2}, {"a": 1, "b": 3}, {"a": 2, "b": 3}]
    assert space.size() == 3
    assert space.size(constrained=False) == 9


def test_size_without_constraints():
    assert Space([]).size() == 1
    assert list(Space([]).grid()) == [{}]
    assert Space([choice("a", [1, 2]), CategoricalMultiple([1, 2, 3], label="m")]).size() == 16
    assert Space([choice("a", [1, 2]), CategoricalMultiple([1, 2, 3, 4], n_chosen=2, label="m")]).size() == 12
    assert Space([choice("a", [1, 2]), Numerical(0, 1, label="n")]).size() == math.inf
    assert Space([Numerical(0, 1, label="n")]).size(constrained=False) == math.inf


def test_size_with_independent_constraint_groups():
    a, b, c, d, e = (choice(x, [0, 1, 2, 3]) for x in "abcde")
    f = CategoricalMultiple([1, 2, 3], label="f")
    space = Space(
        [a, b, c, d, e, f],
        constraints=[
            Constraint(a < b),  # group {a, b}: 6 of 16
            Constraint(c + d == 3),  # group {c, d}: 4 of 16
            Constraint(lambda s: s["d"] != 0 or s["e"] == 0, labels=["d", "e"]),  # joins {c, d, e}
        ],
    )
    brute = sum(1 for _ in space.grid())
    assert space.size() == brute
    assert (
        space.size()
        == 6
        * sum(1 for c_ in range(4) for d_ in range(4) for e_ in range(4) if c_ + d_ == 3 and (d_ != 0 or e_ == 0))
        * 8
    )
    assert space.size(constrained=False) == 4**5 * 8


def test_size_with_undeclared_function_constraint_enumerates_everything():
    a, b = choice("a", [1, 2, 3]), choice("b", [1, 2, 3])
    space = Space([a, b, choice("c", [1, 2])], constraints=[Constraint(lambda s: s["a"] + s["b"] == 4)])
    assert space.size() == 3 * 2
    assert len(list(space.grid())) == 6


def test_size_beyond_enumeration_limit():
    a, b, c = (choice(x, list(range(128))) for x in "abc")
    space = Space([a, b, c], constraints=[Constraint(a + b < c, name="tight")])
    with pytest.raises(SpaceError, match=r"cannot count the space exactly.*'tight'.*constrained=False"):
        space.size()
    assert space.size(constrained=False) == 128**3


# same label = one decision --------------------------------------------------------------------------


def test_same_label_same_candidates_is_one_decision():
    a1 = Categorical([1, 2, 3], label="shared")
    a2 = Categorical([1, 2, 3], label="shared")
    space = Space([a1, a2, choice("other", [0])])
    assert len(space) == 2
    assert list(space) == ["shared", "other"]
    assert space.size() == 3
    s = space.random(seed=0)
    assert (a1 + a2).evaluate(s) == 2 * s["shared"]


def test_same_label_different_candidates_conflict_in_space():
    first = Categorical([1, 2], label="width")
    l1 = line() - 1
    second = Categorical([1, 2, 3], label="width")
    l2 = line() - 1
    with pytest.raises(LabelConflictError) as e:
        Space([first, second])
    message = str(e.value)
    assert "'width'" in message
    assert f"{__file__}:{l1}" in message
    assert f"{__file__}:{l2}" in message
    assert isinstance(e.value, SpaceError)


def test_same_label_different_kind_conflicts():
    with pytest.raises(LabelConflictError, match="'x'"):
        Space([Categorical([0, 1], label="x"), Numerical(0, 1, label="x")])


def test_conflict_detected_at_construction_inside_a_scope():
    with label_scope(root=True):
        Categorical([1, 2], label="op")
        l1 = line() - 1
        Categorical([1, 2], label="op")  # same decision: fine
        with pytest.raises(LabelConflictError) as e:
            Categorical(["conv", "pool"], label="op")
        l2 = line() - 1
    assert f"{__file__}:{l1}" in str(e.value)
    assert f"{__file__}:{l2}" in str(e.value)

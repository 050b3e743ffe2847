"""Leaves: Categorical, CategoricalMultiple, Numerical and the NNI-style shortcuts."""

from __future__ import annotations

import copy
import math
import pickle
import random
from collections import Counter

import pytest

from archsmith.space import (
    Categorical,
    CategoricalMultiple,
    Leaf,
    Numerical,
    SampleError,
    Space,
    SpaceError,
    choice,
    loguniform,
    quniform,
    randint,
    uniform,
)

# Categorical ------------------------------------------------------------------


def test_categorical_basics():
    c = Categorical([16, 32, 64], label="width")
    assert isinstance(c, Leaf)
    assert c.label == "width"
    assert c.values == [16, 32, 64]
    assert c.size() == 3
    assert c.grid() == [16, 32, 64]
    assert c.default() == 16
    assert c.is_discrete
    assert c.leaves() == [c]
    assert c.evaluate({"width": 32}) == 32
    assert repr(c) == "Categorical([16, 32, 64], label='width')"


def test_categorical_accepts_tuple_and_range():
    assert Categorical((1, 2), label="t").values == [1, 2]
    assert Categorical(range(3), label="r").values == [0, 1, 2]


def test_choice_shortcut():
    c = choice("act", ["relu", "gelu"])
    assert isinstance(c, Categorical)
    assert (c.label, c.values) == ("act", ["relu", "gelu"])


def test_categorical_explicit_default_is_canonical():
    c = Categorical([(1, 2), (3, 4)], label="k", default=[3, 4])
    assert c.default() == (3, 4)
    assert type(c.default()) is tuple


def test_categorical_invalid_default_names_label():
    with pytest.raises(SpaceError, match=r"'opt'.*default 5"):
        Categorical([1, 2], label="opt", default=5)


def test_categorical_empty_candidates():
    with pytest.raises(SpaceError, match=r"choice 'empty'.*empty") as e:
        Categorical([], label="empty")
    assert "at least one" in str(e.value)


@pytest.mark.parametrize(
    ("values", "dup"),
    [
        ([1, 2, 1], "1"),
        (["a", "b", "a"], "'a'"),
        ([1, 1.0], "1.0"),  # 1 and 1.0 are one number
        ([(1, 2), [1, 2]], r"\[1, 2\]"),  # a list and a tuple with the same items are one candidate
    ],
)
def test_categorical_duplicate_candidates(values, dup):
    with pytest.raises(SpaceError, match=rf"choice 'dup'.*candidate {dup} appears twice"):
        Categorical(values, label="dup")


def test_categorical_true_and_one_are_distinct_candidates():
    c = Categorical([True, 1], label="tb")
    assert c.size() == 2


@pytest.mark.parametrize("values", ["abc", {1, 2}, 5, None, {"a": 1}])
def test_categorical_values_must_be_a_list(values):
    with pytest.raises(SpaceError, match=r"choice 'bad'.*must be a list"):
        Categorical(values, label="bad")


@pytest.mark.parametrize("candidate", [object(), {1, 2}, b"bytes", float("nan"), {1: "x"}])
def test_categorical_non_json_candidate(candidate):
    with pytest.raises(SpaceError, match=r"choice 'obj'.*not a JSON value"):
        Categorical([1, candidate], label="obj")


@pytest.mark.parametrize(
    ("weights", "pattern"),
    [
        pytest.param([1, 2], r"2 weights for 3 candidates", id="too-few"),
        pytest.param([1, 2, 3, 4], r"4 weights for 3 candidates", id="too-many"),
        pytest.param([1, -1, 1], r"non-negative", id="negative"),
        pytest.param([0, 0, 0], r"positive sum", id="all-zero"),
        pytest.param([1, float("nan"), 1], r"non-negative", id="nan"),
        pytest.param([1, float("inf"), 1], r"weights", id="inf"),
        pytest.param(["a", "b", "c"], r"weights", id="not-numbers"),
    ],
)
def test_categorical_bad_weights(weights, pattern):
    with pytest.raises(SpaceError, match=pattern) as e:
        Categorical(["x", "y", "z"], label="prior", weights=weights)
    assert "'prior'" in str(e.value)


def test_categorical_weights_are_normalised():
    c = Categorical(["x", "y", "z"], label="w", weights=[1, 1, 2])
    assert c.weights == [0.25, 0.25, 0.5]


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        (0, True),
        (1, True),
        (1.0, True),  # same number as 1
        (True, False),  # a bool is not 1
        (False, False),
        (2, False),
        ("1", False),
        (None, False),
        ([1], False),
    ],
)
def test_categorical_check_numbers_and_bools(value, ok):
    c = Categorical([0, 1], label="bit")
    assert (c.check(value) is None) is ok


def test_categorical_check_messages():
    c = Categorical([0, 1], label="bit")
    assert "wrong type bool" in c.check(True)
    assert "wrong type str" in c.check("1")
    assert "out of range" in c.check(2)
    assert "out of range" in c.check(0.5)


def test_categorical_resolve_canonicalises():
    c = Categorical([0, 1], label="bit")
    v = c.resolve(1.0)
    assert v == 1 and type(v) is int
    t = Categorical([(1, 2), (3, 4)], label="pair")
    v = t.resolve([3, 4])
    assert v == (3, 4) and type(v) is tuple
    with pytest.raises(SampleError, match="'pair'") as e:
        t.resolve((5, 6))
    assert len(e.value.problems) == 1


def test_categorical_bool_candidates_reject_ints():
    c = Categorical([False, True], label="flag")
    assert c.check(True) is None
    assert "wrong type int" in c.check(1)


def test_categorical_evaluate_missing_and_invalid():
    c = Categorical([1, 2], label="k")
    with pytest.raises(SampleError, match=r"'k': missing"):
        c.evaluate({"other": 1})
    with pytest.raises(SampleError, match=r"'k'.*out of range"):
        c.evaluate({"k": 3})


def test_categorical_random_uniform_frequencies():
    c = Categorical(["a", "b", "c", "d"], label="u")
    rng = random.Random(1)
    n = 20_000
    counts = Counter(c.random(rng) for _ in range(n))
    assert set(counts) == {"a", "b", "c", "d"}
    for v in "abcd":
        assert abs(counts[v] / n - 0.25) < 0.02


def test_categorical_random_respects_weights():
    c = Categorical(["a", "b", "c", "never"], label="w", weights=[1, 2, 7, 0])
    rng = random.Random(2)
    n = 20_000
    counts = Counter(c.random(rng) for _ in range(n))
    assert counts["never"] == 0
    assert abs(counts["a"] / n - 0.1) < 0.02
    assert abs(counts["b"] / n - 0.2) < 0.02
    assert abs(counts["c"] / n - 0.7) < 0.02


def test_zero_weight_at_either_end_is_never_drawn():
    rng = random.Random(3)
    first = Categorical(["zero", "one"], label="f", weights=[0, 1])
    last = Categorical(["one", "zero"], label="l", weights=[1, 0])
    assert {first.random(rng) for _ in range(2000)} == {"one"}
    assert {last.random(rng) for _ in range(2000)} == {"one"}


# CategoricalMultiple --------------------------------------------------------------


def test_multiple_any_number():
    m = CategoricalMultiple(["a", "b", "c"], label="m")
    assert m.n_chosen is None
    assert m.size() == 8
    grid = m.grid()
    assert len(grid) == 8
    assert [] in grid and ["a", "b", "c"] in grid
    assert m.default() == []
    assert m.check([]) is None
    assert m.check(["c", "a"]) is None
    assert m.canonical(("c", "a")) == ["a", "c"]


def test_multiple_fixed_count():
    m = CategoricalMultiple([1, 2, 3, 4], n_chosen=2, label="m2")
    assert m.size() == 6
    grid = m.grid()
    assert len(grid) == 6
    assert all(len(g) == 2 for g in grid)
    assert m.default() == [1, 2]
    assert m.check([4, 1]) is None
    assert "3 chosen" in m.check([1, 2, 3])
    assert "repeats" in m.check([1, 1])
    assert "not among the candidates" in m.check([1, 9])
    assert "wrong type int" in m.check(1)
    assert "wrong type str" in m.check("12")


def test_multiple_default_canonical_and_checked():
    m = CategoricalMultiple(["a", "b", "c"], n_chosen=2, label="md", default=("c", "a"))
    assert m.default() == ["a", "c"]
    with pytest.raises(SpaceError, match=r"'md'.*default"):
        CategoricalMultiple(["a", "b", "c"], n_chosen=2, label="md", default=["a"])


@pytest.mark.parametrize("n_chosen", [4, 10, 0, -1, 1.0, True, "2"])
def test_multiple_bad_n_chosen(n_chosen):
    with pytest.raises(SpaceError, match=r"choice 'pick'.*n_chosen") as e:
        CategoricalMultiple([1, 2, 3], n_chosen=n_chosen, label="pick")
    assert "3 candidates" in str(e.value)


def test_multiple_empty_and_duplicate_candidates():
    with pytest.raises(SpaceError, match=r"'me'.*empty"):
        CategoricalMultiple([], label="me")
    with pytest.raises(SpaceError, match=r"'md'.*appears twice"):
        CategoricalMultiple([1, 2, 2], label="md")


def test_multiple_random_is_valid_and_covers_all_subsets():
    m = CategoricalMultiple([1, 2, 3, 4], n_chosen=2, label="m")
    rng = random.Random(4)
    seen = Counter(tuple(m.random(rng)) for _ in range(6000))
    assert len(seen) == 6
    assert all(abs(c / 6000 - 1 / 6) < 0.03 for c in seen.values())
    anyn = CategoricalMultiple([1, 2, 3], label="any")
    draws = [anyn.random(rng) for _ in range(2000)]
    assert all(anyn.check(d) is None and d == sorted(d) for d in draws)
    assert len({tuple(d) for d in draws}) == 8


def test_multiple_tuple_candidates_resolve():
    m = CategoricalMultiple([(1, 1), (2, 2)], label="mt")
    assert m.resolve([[2, 2]]) == [(2, 2)]
    assert type(m.resolve([[2, 2]])[0]) is tuple


# Numerical ------------------------------------------------------------------------


def test_numerical_continuous():
    n = Numerical(0.0, 1.0, label="drop")
    assert n.size() == math.inf
    assert not n.is_discrete
    assert n.default() == 0.5
    assert n.check(0.3) is None
    assert n.check(0) is None and n.check(1) is None
    assert "out of range" in n.check(1.5)
    assert "out of range" in n.check(-0.1)
    assert "wrong type str" in n.check("0.5")
    assert "wrong type bool" in n.check(True)
    assert "wrong type NoneType" in n.check(None)
    assert "NaN" in n.check(float("nan"))
    assert "out of range" in n.check(float("inf"))
    assert n.resolve(1) == 1.0 and type(n.resolve(1)) is float
    assert repr(n) == "Numerical(0.0, 1.0, label='drop')"


def test_numerical_huge_int_is_out_of_range_not_a_crash():
    n = Numerical(0, 1, label="big")
    assert "out of range" in n.check(10**400)


def test_numerical_grid_needs_granularity():
    n = Numerical(0, 1, label="cont")
    with pytest.raises(SpaceError, match=r"'cont'.*granularity"):
        n.grid()
    assert n.grid(1) == [0.5]
    assert n.grid(2) == [0.25, 0.5, 0.75]
    assert len(n.grid(4)) == 15
    for g in (0, -1, 1.5, True):
        with pytest.raises(SpaceError, match="granularity"):
            n.grid(g)


def test_numerical_log():
    n = Numerical(1, 100, log=True, label="lr")
    assert n.default() == pytest.approx(10.0)
    assert n.grid(1) == [pytest.approx(10.0)]
    assert n.grid(2) == pytest.approx([10**0.5, 10.0, 10**1.5])
    rng = random.Random(5)
    draws = [n.random(rng) for _ in range(10_000)]
    assert all(1 <= d <= 100 for d in draws)
    below = sum(d < 10 for d in draws) / len(draws)
    assert abs(below - 0.5) < 0.03  # log-uniform: the geometric mean is the median
    assert repr(n) == "Numerical(1, 100, log=True, label='lr')"


def test_numerical_uniform_random():
    n = Numerical(-2.0, 6.0, label="u")
    rng = random.Random(6)
    draws = [n.random(rng) for _ in range(10_000)]
    assert all(-2 <= d <= 6 and type(d) is float for d in draws)
    assert abs(sum(draws) / len(draws) - 2.0) < 0.1


def test_numerical_quantized_integer():
    n = Numerical(0, 10, quantize=2, label="q")
    assert n.integer
    assert n.size() == 6
    assert n.grid() == [0, 2, 4, 6, 8, 10]
    assert all(type(v) is int for v in n.grid())
    assert n.is_discrete
    assert n.check(4) is None
    assert n.check(4.0) is None
    assert n.resolve(4.0) == 4 and type(n.resolve(4.0)) is int
    assert "not on the grid" in n.check(3)
    assert "out of range" in n.check(12)
    assert n.default() in (4, 6) and type(n.default()) is int
    assert repr(n) == "Numerical(0, 10, quantize=2, label='q')"


def test_numerical_quantized_float():
    n = Numerical(0.1, 0.7, quantize=0.2, label="qf")
    assert n.size() == 4
    assert n.grid() == pytest.approx([0.1, 0.3, 0.5, 0.7])
    assert n.check(0.3) is None
    assert n.check(0.1 + 0.2) is None  # 0.30000000000000004 is on the grid
    assert "not on the grid" in n.check(0.2)


def test_numerical_high_not_on_grid():
    n = Numerical(0, 10, quantize=3, label="q3")
    assert n.grid() == [0, 3, 6, 9]
    assert n.size() == 4
    assert n.check(10) is not None


def test_numerical_explicit_default():
    assert Numerical(0, 10, label="d", default=3).default() == 3.0
    assert Numerical(0, 10, quantize=1, label="d", default=3.0).default() == 3
    with pytest.raises(SpaceError, match=r"numerical 'bad_default'.*default 11"):
        Numerical(0, 10, label="bad_default", default=11)
    with pytest.raises(SpaceError, match=r"numerical 'off_grid'.*default"):
        Numerical(0, 10, quantize=2, label="off_grid", default=3)


@pytest.mark.parametrize(
    ("low", "high"),
    [(1, 1), (2, 1), (0, float("inf")), (float("nan"), 1), ("0", 1), (None, 1), (0, True)],
)
def test_numerical_bad_range(low, high):
    with pytest.raises(SpaceError, match=r"numerical 'rng'.*low < high") as e:
        Numerical(low, high, label="rng")
    assert f"low={low!r}" in str(e.value) and f"high={high!r}" in str(e.value)


@pytest.mark.parametrize("low", [0, -1, -0.5])
def test_numerical_log_needs_positive_low(low):
    with pytest.raises(SpaceError, match=rf"numerical 'lg': log=True needs low > 0, got low={low}"):
        Numerical(low, 10, log=True, label="lg")


@pytest.mark.parametrize("quantize", [0, -1, "1", float("nan"), float("inf"), True])
def test_numerical_bad_quantize(quantize):
    with pytest.raises(SpaceError, match=r"numerical 'qz': quantize must be a positive number") as e:
        Numerical(0, 10, quantize=quantize, label="qz")
    assert repr(quantize) in str(e.value)


def test_numerical_log_quantized():
    n = Numerical(1, 64, log=True, quantize=1, label="lq")
    assert n.size() == 64
    rng = random.Random(7)
    draws = [n.random(rng) for _ in range(3000)]
    assert all(n.check(d) is None and type(d) is int for d in draws)
    assert sum(d <= 8 for d in draws) / len(draws) > 0.4  # log prior favours small values


# Shortcuts --------------------------------------------------------------------------


def test_uniform_quniform_loguniform():
    u = uniform("u", 0.0, 2.0)
    assert (u.label, u.low, u.high, u.log, u.quantize) == ("u", 0.0, 2.0, False, None)
    q = quniform("q", 0, 1, 0.25)
    assert q.grid() == [0, 0.25, 0.5, 0.75, 1.0]
    lg = loguniform("lg", 1e-4, 1e-1)
    assert lg.log and lg.size() == math.inf
    with pytest.raises(SpaceError, match="'lg2'"):
        loguniform("lg2", 0, 1)


def test_randint_high_is_exclusive():
    r = randint("r", 2, 6)
    assert r.grid() == [2, 3, 4, 5]
    assert r.size() == 4
    assert r.check(6) is not None
    assert r.check(5) is None
    rng = random.Random(8)
    assert {r.random(rng) for _ in range(500)} == {2, 3, 4, 5}


def test_randint_is_uniform():
    # randint is documented as "like random.randrange": every integer equally likely.
    r = randint("r", 0, 3)
    rng = random.Random(9)
    n = 30_000
    counts = Counter(r.random(rng) for _ in range(n))
    for v in (0, 1, 2):
        assert abs(counts[v] / n - 1 / 3) < 0.02, counts


@pytest.mark.parametrize(("low", "high"), [(0, 0), (3, 1), (0.0, 5), (0, "5"), (True, 5)])
def test_randint_bad_bounds(low, high):
    with pytest.raises(SpaceError, match=r"randint 'ri'.*high is exclusive"):
        randint("ri", low, high)


# Identity, copies, pickling ------------------------------------------------------------


def test_leaf_copy_keeps_identity():
    c = Categorical([1, 2], label="c")
    assert copy.copy(c) is c
    assert copy.deepcopy(c) is c
    assert copy.deepcopy({"x": [c]})["x"][0] is c


@pytest.mark.parametrize(
    "leaf",
    [
        Categorical([(1, 2), (3, 4)], label="pc", weights=[1, 3]),
        CategoricalMultiple(["a", "b"], n_chosen=1, label="pm"),
        Numerical(1, 8, log=True, quantize=1, label="pn"),
    ],
)
def test_leaf_pickles_to_the_same_decision(leaf):
    back = pickle.loads(pickle.dumps(leaf))
    assert type(back) is type(leaf)
    assert back.label == leaf.label
    assert back.same_decision(leaf)
    assert back.grid() == leaf.grid()
    assert back.default() == leaf.default()
    assert repr(back) == repr(leaf)


def test_same_decision():
    a = Categorical([1, 2], label="s")
    assert a.same_decision(Categorical([1, 2], label="s"))
    assert a.same_decision(Categorical([1.0, 2.0], label="s"))
    assert not a.same_decision(Categorical([2, 1], label="s"))
    assert not a.same_decision(Categorical([1, 2, 3], label="s"))
    assert not a.same_decision(CategoricalMultiple([1, 2], label="s"))
    n = Numerical(0, 1, label="n")
    assert n.same_decision(Numerical(0, 1, label="n"))
    assert not n.same_decision(Numerical(0, 1, log=False, quantize=0.5, label="n"))
    assert not n.same_decision(Numerical(0, 2, label="n"))


def test_auto_labels_are_unique_outside_scopes():
    a, b = Categorical([1, 2]), Categorical([1, 2])
    assert a.label != b.label
    assert a.label.startswith("global/choice_")
    n = Numerical(0, 1)
    assert n.label.startswith("global/numerical_")
    m = CategoricalMultiple([1, 2])
    assert m.label.startswith("global/multi_choice_")


def test_space_of_shortcut_leaves_validates_their_draws():
    space = Space([choice("c", [1, 2]), uniform("u", 0, 1), quniform("q", 0, 1, 0.5), randint("r", 0, 4)])
    for seed in range(20):
        s = space.random(seed)
        assert space.validate(s) == s

"""Expressions over choices: evaluation, leaves, repr (read back by eval) and misuse errors."""

from __future__ import annotations

import math
import operator
import random
import warnings

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import archsmith
import archsmith.space as sp
from archsmith.space import (
    Categorical,
    CategoricalMultiple,
    Expression,
    ExpressionError,
    Mutable,
    Numerical,
    SampleError,
    condition,
    contains_mutable,
    evaluate,
    leaves_of,
    switch_case,
    to_float,
    to_int,
)

A = Categorical([-3, -1, 0, 2, 5], label="a")
B = Categorical([1, 2, 3], label="b")
C = Numerical(-2.5, 4.0, label="c")
D = Categorical([0, 1, 2, 3], label="d")
T = Categorical([(1, 2, 3), (4, 5, 6)], label="t")

NAMESPACE = {
    "Categorical": Categorical,
    "CategoricalMultiple": CategoricalMultiple,
    "Numerical": Numerical,
    "archsmith": archsmith,
    "math": math,
}


def reparse(expr):
    return eval(repr(expr), dict(NAMESPACE))


# Evaluation ------------------------------------------------------------------------------

S = {"a": 5, "b": 2, "c": 1.5, "d": 3, "t": (4, 5, 6)}


@pytest.mark.parametrize(
    ("build", "expected"),
    [
        (lambda: A + B, 7),
        (lambda: A - B, 3),
        (lambda: A * B, 10),
        (lambda: A / B, 2.5),
        (lambda: A // B, 2),
        (lambda: A % B, 1),
        (lambda: A**B, 25),
        (lambda: A & D, 1),
        (lambda: A | B, 7),
        (lambda: A ^ D, 6),
        (lambda: A << B, 20),
        (lambda: A >> B, 1),
        (lambda: 10 + A, 15),
        (lambda: 10 - A, 5),
        (lambda: 10 * A, 50),
        (lambda: 10 / A, 2.0),
        (lambda: 11 // A, 2),
        (lambda: 11 % A, 1),
        (lambda: 2**A, 32),
        (lambda: 6 & A, 4),
        (lambda: 2 | A, 7),
        (lambda: 1 ^ A, 4),
        (lambda: -A, -5),
        (lambda: +A, 5),
        (lambda: ~A, -6),
        (lambda: abs(-A), 5),
        (lambda: A * 2 + C, 11.5),
        (lambda: A < B, False),
        (lambda: A <= 5, True),
        (lambda: A > B, True),
        (lambda: A >= 6, False),
        (lambda: A == 5, True),
        (lambda: A != 5, False),
        (lambda: 4 < A, True),  # reflected: A > 4
        (lambda: (A > 1) & (B < 3), True),
        (lambda: (A > 9) | (B == 2), True),
        (lambda: T[0], 4),
        (lambda: T[-1], 6),
        (lambda: T[D - 1], 6),
        (lambda: T[1:], (5, 6)),
        (lambda: T[::2], (4, 6)),
        (lambda: round(C), 2),
        (lambda: round(C / 7, 2), 0.21),
        (lambda: math.floor(C), 1),
        (lambda: math.ceil(C), 2),
        (lambda: math.trunc(-C), -1),
        (lambda: sp.max(A, B, 7), 7),
        (lambda: sp.max([A, B]), 5),
        (lambda: sp.min(A, B), 2),
        (lambda: sp.min([A, C, 9]), 1.5),
        (lambda: to_int(C), 1),
        (lambda: to_float(A), 5.0),
        (lambda: condition(A > 3, "big", "small"), "big"),
        (lambda: condition(A > 9, B, C), 1.5),
        (lambda: switch_case(B, {1: "one", 2: "two"}), "two"),
        (lambda: switch_case(B, {1: A, 3: C}, default=D * 10), 30),
    ],
)
def test_evaluate(build, expected):
    expr = build()
    assert isinstance(expr, Expression)
    value = expr.evaluate(S)
    assert value == expected
    assert type(value) is type(expected)
    back = reparse(expr)
    assert back.evaluate(S) == expected
    assert repr(back) == repr(expr)


def test_evaluation_validates_the_sample():
    with pytest.raises(SampleError, match=r"'a': missing"):
        (A + B).evaluate({"b": 1})
    with pytest.raises(SampleError, match=r"'b'.*out of range"):
        (A + B).evaluate({"a": 2, "b": 7})
    # values are canonicalised on the way: a list is read as the tuple candidate
    assert T[0].evaluate({"t": [1, 2, 3]}) == 1
    assert (A + 0).evaluate({"a": 2.0}) == 2 and type((A + 0).evaluate({"a": 2.0})) is int


def test_evaluate_helper_walks_containers():
    obj = {"k": [A, (B, 3)], "n": None}
    assert evaluate(obj, S) == {"k": [5, (2, 3)], "n": None}
    assert type(evaluate(obj, S)["k"][1]) is tuple
    assert evaluate(7, S) == 7
    assert contains_mutable(obj)
    assert not contains_mutable({"k": [1, (2, 3)]})
    assert leaves_of(obj) == [A, B]


# leaves() ----------------------------------------------------------------------------------


def test_leaves_distinct_in_first_seen_order():
    assert (A + B * A).leaves() == [A, B]
    assert (B + A).leaves() == [B, A]
    assert (-(A**2)).leaves() == [A]
    assert T[D].leaves() == [T, D]
    assert sp.max(C, 3, A).leaves() == [C, A]
    assert condition(A > 0, B, C).leaves() == [A, B, C]
    assert switch_case(D, {0: A, 1: 5}, default=C).leaves() == [D, A, C]
    assert switch_case(D, {0: 1}).leaves() == [D]
    assert round(C).leaves() == [C]
    assert to_int(C + A).leaves() == [C, A]


def test_slice_bound_choice_is_a_dependency():
    k = Categorical([1, 2], label="k")
    head = T[:k]
    assert {leaf.label for leaf in head.leaves()} == {"t", "k"}
    assert head.evaluate({"t": (4, 5, 6), "k": 2}) == (4, 5)


# Constant folding ---------------------------------------------------------------------------


def test_helpers_fold_constants():
    assert sp.max(1, 5, 3) == 5
    assert sp.min([4, 2]) == 2
    assert condition(True, "x", "y") == "x"
    assert condition(0, "x", "y") == "y"
    assert switch_case(2, {1: "a", 2: "b"}) == "b"
    assert switch_case(9, {1: "a"}, default="z") == "z"
    assert to_int(2.7) == 2
    assert to_float(2) == 2.0 and type(to_float(2)) is float


def test_helper_errors():
    with pytest.raises(ExpressionError, match=r"max\(\) needs at least one argument"):
        sp.max()
    with pytest.raises(ExpressionError, match=r"min\(\) needs at least one argument"):
        sp.min([])
    with pytest.raises(ExpressionError, match=r"switch_case: 9 matches no case"):
        switch_case(9, {1: "a"})
    expr = switch_case(B, {1: "one"})
    assert expr.evaluate({"b": 1}) == "one"
    with pytest.raises(ExpressionError, match=r"switch_case: value 3 of Categorical\(\[1, 2, 3\], label='b'\)"):
        expr.evaluate({"b": 3})


def test_condition_is_lazy():
    zero = Categorical([0, 1], label="z")
    expr = condition(zero == 0, -1, 10 // zero)
    assert expr.evaluate({"z": 0}) == -1
    assert expr.evaluate({"z": 1}) == 10
    sw = switch_case(zero, {0: 5, 1: 10 // zero}, default=1 // zero)
    assert sw.evaluate({"z": 0}) == 5


def test_switch_case_matches_numbers_by_value():
    assert switch_case(B, {2: "two"}, default="other").evaluate({"b": 2.0}) == "two"


# Misuse -------------------------------------------------------------------------------------

MISUSES = {
    "bool": lambda x: bool(x),
    "if": lambda x: 1 if x else 0,
    "and": lambda x: x and 1,
    "not": lambda x: not x,
    "int": lambda x: int(x),
    "float": lambda x: float(x),
    "range": lambda x: range(x),
    "index": lambda x: [1, 2, 3][x],
    "iter": lambda x: iter(x),
    "for": lambda x: [v for v in x],
    "unpack": lambda x: tuple(x),
    "len": lambda x: len(x),
    "in": lambda x: 1 in x,
    "chained-compare": lambda x: 0 < x < 3,
}


@pytest.mark.parametrize("use", list(MISUSES))
def test_misuse_raises_expression_error_naming_the_choice(use):
    x = Categorical([1, 2], label="misused_label")
    with pytest.raises(ExpressionError) as e:
        MISUSES[use](x)
    assert "misused_label" in str(e.value)
    assert isinstance(e.value, TypeError)  # code that catches TypeError still sees it


@pytest.mark.parametrize("use", ["bool", "if", "int", "range", "iter", "for"])
def test_misuse_message_points_to_condition(use):
    # The issue: bool()/if/int()/range()/iteration on a choice raise ExpressionError
    # with a message pointing to `condition`.
    x = Categorical([1, 2], label="lbl")
    with pytest.raises(ExpressionError, match=r"condition"):
        MISUSES[use](x)


def test_conversion_messages_point_to_lazy_helpers():
    x = Categorical([1, 2], label="lbl")
    with pytest.raises(ExpressionError, match=r"to_int"):
        int(x)
    with pytest.raises(ExpressionError, match=r"to_float"):
        float(x)


def test_expressions_hash_by_identity():
    x = Categorical([1, 2], label="h")
    y = x + 1
    assert {x: 1, y: 2}[y] == 2
    assert len({x, y, x}) == 2
    assert isinstance(x == 1, Expression)


def test_mutable_base_is_abstract():
    m = Mutable()
    with pytest.raises(NotImplementedError):
        m.leaves()
    with pytest.raises(NotImplementedError):
        m.evaluate({})


# repr -----------------------------------------------------------------------------------------

a, b = Categorical([1, 2], label="a"), Categorical([1, 2], label="b")
ra, rb = repr(a), repr(b)


@pytest.mark.parametrize(
    ("build", "text"),
    [
        (lambda: a + b, f"{ra} + {rb}"),
        (lambda: a - (b - 1), f"{ra} - ({rb} - 1)"),
        (lambda: (a - b) - 1, f"{ra} - {rb} - 1"),
        (lambda: 1 - (a + b), f"1 - ({ra} + {rb})"),
        (lambda: (a + b) * 2, f"({ra} + {rb}) * 2"),
        (lambda: a / (b * 2), f"{ra} / ({rb} * 2)"),
        (lambda: a**b**2, f"{ra} ** {rb} ** 2"),
        (lambda: (a**b) ** 2, f"({ra} ** {rb}) ** 2"),
        (lambda: -(a**2), f"-{ra} ** 2"),
        (lambda: (-a) ** 2, f"(-{ra}) ** 2"),
        (lambda: a**-b, f"{ra} ** -{rb}"),
        (lambda: a**-2, f"{ra} ** -2"),
        (lambda: (-2) ** a, f"(-2) ** {ra}"),
        (lambda: -2 * a, f"-2 * {ra}"),
        (lambda: a - -2, f"{ra} - -2"),
        (lambda: -(a + b), f"-({ra} + {rb})"),
        (lambda: (a < b) == (b < 2), f"({ra} < {rb}) == ({rb} < 2)"),
        (lambda: (a < b) & (b > 1), f"({ra} < {rb}) & ({rb} > 1)"),
        (lambda: a | b ^ 1, f"{ra} | {rb} ^ 1"),
        (lambda: (a | b) ^ 1, f"({ra} | {rb}) ^ 1"),
        (lambda: (a + b)[0], f"({ra} + {rb})[0]"),
        (lambda: (-a)[0], f"(-{ra})[0]"),
        (lambda: round(a / 3, 1), f"round({ra} / 3, 1)"),
        (lambda: math.floor(a), f"math.floor({ra})"),
        (lambda: sp.max(a, 3), f"archsmith.space.max({ra}, 3)"),
        (lambda: to_int(a), f"archsmith.space.to_int({ra})"),
        (lambda: condition(a == 1, "x", b), f"archsmith.space.condition({ra} == 1, 'x', {rb})"),
        (lambda: switch_case(a, {1: "x"}, default=b), f"archsmith.space.switch_case({ra}, {{1: 'x'}}, default={rb})"),
    ],
)
def test_repr_text(build, text):
    expr = build()
    assert repr(expr) == text
    assert repr(reparse(expr)) == text


def test_repr_of_negative_zero_constant_keeps_its_sign():
    x = Categorical([0, 1], label="x")
    expr = (-0.0) ** x
    assert expr.evaluate({"x": 0}) == 1.0
    assert reparse(expr).evaluate({"x": 0}) == 1.0


def test_reflected_shifts():
    x = Categorical([1, 2], label="x")
    assert (1 << x).evaluate({"x": 2}) == 4
    assert (16 >> x).evaluate({"x": 2}) == 4
    assert reparse(1 << x).evaluate({"x": 2}) == 4


# Property: eval(repr(expr)) computes the same value as expr ------------------------------------

CONSTS = st.sampled_from([-3, -2, -1, 0, 1, 2, 3, 10, 0.5, -1.5])
BINOPS = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
    "//": operator.floordiv,
    "%": operator.mod,
    "&": operator.and_,
    "|": operator.or_,
    "^": operator.xor,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}
UNARY = {"-": operator.neg, "+": operator.pos, "~": operator.invert, "abs": abs}
CALLS = {
    "round": round,
    "round1": lambda v: round(v, 1),
    "floor": math.floor,
    "ceil": math.ceil,
    "trunc": math.trunc,
    "to_int": to_int,
    "to_float": to_float,
}
LEAVES = {"a": A, "b": B, "c": C, "d": D}

leaf_nodes = st.sampled_from(sorted(LEAVES)).map(lambda n: ("leaf", n))
# exponents and shift amounts stay small, so values stay cheap to compute
small_nodes = st.one_of(
    CONSTS.filter(lambda v: isinstance(v, int) and -2 <= v <= 3).map(lambda v: ("const", v)),
    st.just(("leaf", "d")),
    st.just(("unary", "-", ("leaf", "d"))),
    st.just(("pow", ("leaf", "d"), ("const", 2))),
)


KINDS = ["bin"] * 6 + ["pow"] * 2 + ["shift", "unary", "unary", "call", "maxmin", "cond", "switch", "index"]


@st.composite
def formulas(draw, depth=4):
    """A random formula tree; every node depends on at least one choice."""
    if depth == 0 or draw(st.integers(0, 5)) == 0:
        return draw(leaf_nodes)
    kind = draw(st.sampled_from(KINDS))
    sub = formulas(depth - 1)
    operand = st.one_of(sub, sub, CONSTS.map(lambda v: ("const", v)))
    if kind == "bin":
        op, x, y = draw(st.sampled_from(sorted(BINOPS))), draw(sub), draw(operand)
        return ("bin", op, y, x) if draw(st.booleans()) else ("bin", op, x, y)
    if kind == "pow":
        if draw(st.booleans()):
            return ("pow", draw(sub), draw(small_nodes))
        return ("pow", ("const", draw(CONSTS)), draw(small_nodes.filter(lambda n: n[0] != "const")))
    if kind == "shift":
        amount = draw(small_nodes.filter(lambda n: n != ("unary", "-", ("leaf", "d"))))
        return ("shift", draw(st.sampled_from(["<<", ">>"])), draw(sub), amount)
    if kind == "unary":
        return ("unary", draw(st.sampled_from(sorted(UNARY))), draw(sub))
    if kind == "call":
        return ("call", draw(st.sampled_from(sorted(CALLS))), draw(sub))
    if kind == "maxmin":
        return (
            "maxmin",
            draw(st.sampled_from(["max", "min"])),
            draw(sub),
            draw(st.lists(operand, min_size=1, max_size=2)),
        )
    if kind == "cond":
        return ("cond", draw(sub), draw(operand), draw(operand))
    if kind == "switch":
        return ("switch", draw(sub), draw(operand), draw(operand), draw(st.none() | operand))
    return ("index", draw(sub))


def build(node):
    """The formula as an archsmith expression (exercising the operator overloads)."""
    kind = node[0]
    if kind == "leaf":
        return LEAVES[node[1]]
    if kind == "const":
        return node[1]
    if kind == "bin":
        return BINOPS[node[1]](build(node[2]), build(node[3]))
    if kind == "pow":
        return build(node[1]) ** build(node[2])
    if kind == "shift":
        op = operator.lshift if node[1] == "<<" else operator.rshift
        return op(build(node[2]), build(node[3]))
    if kind == "unary":
        return UNARY[node[1]](build(node[2]))
    if kind == "call":
        return CALLS[node[1]](build(node[2]))
    if kind == "maxmin":
        fn = sp.max if node[1] == "max" else sp.min
        return fn(build(node[2]), *(build(n) for n in node[3]))
    if kind == "cond":
        return condition(build(node[1]), build(node[2]), build(node[3]))
    if kind == "switch":
        cases = {0: build(node[2]), 1: build(node[3])}
        if node[4] is None:
            return switch_case(build(node[1]), cases)
        return switch_case(build(node[1]), cases, default=build(node[4]))
    if kind == "index":
        return T[build(node[1]) % 3]
    raise AssertionError(kind)


def direct(node, values):
    """The formula computed on plain values, with Python's own semantics."""
    kind = node[0]
    if kind == "leaf":
        return values[node[1]]
    if kind == "const":
        return node[1]
    if kind == "bin":
        return BINOPS[node[1]](direct(node[2], values), direct(node[3], values))
    if kind == "pow":
        return direct(node[1], values) ** direct(node[2], values)
    if kind == "shift":
        op = operator.lshift if node[1] == "<<" else operator.rshift
        return op(direct(node[2], values), direct(node[3], values))
    if kind == "unary":
        return UNARY[node[1]](direct(node[2], values))
    if kind == "call":
        return CALLS[node[1]](direct(node[2], values))
    if kind == "maxmin":
        fn = max if node[1] == "max" else min
        return fn(direct(node[2], values), *(direct(n, values) for n in node[3]))
    if kind == "cond":
        return direct(node[2], values) if direct(node[1], values) else direct(node[3], values)
    if kind == "switch":
        key = direct(node[1], values)
        cases = {0: node[2], 1: node[3]}
        if key in cases:
            return direct(cases[key], values)
        if node[4] is None:
            raise ExpressionError("no case")
        return direct(node[4], values)
    if kind == "index":
        return values["t"][direct(node[1], values) % 3]
    raise AssertionError(kind)


def outcome(fn):
    try:
        return ("value", fn())
    except Exception as e:
        return ("error", type(e))


def same(x, y):
    if x[0] != y[0] or type(x[1]) is not type(y[1]):
        return False
    if isinstance(x[1], float) and math.isnan(x[1]):
        return math.isnan(y[1])
    return x[1] == y[1]


samples = st.fixed_dictionaries(
    {
        "a": st.sampled_from(A.values),
        "b": st.sampled_from(B.values),
        "c": st.sampled_from([-2.5, -1.0, 0.0, 0.5, 1.5, 4.0]),
        "d": st.sampled_from(D.values),
        "t": st.sampled_from(T.values),
    }
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(node=formulas(), sample_list=st.lists(samples, min_size=1, max_size=3))
def test_repr_reads_back_to_the_same_formula(node, sample_list):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # ~True
        expr = build(node)
        assert isinstance(expr, Expression)
        text = repr(expr)
        back = eval(text, dict(NAMESPACE))
        assert repr(back) == text
        assert {leaf.label for leaf in back.leaves()} == {leaf.label for leaf in expr.leaves()}
        for sample in sample_list:
            expected = outcome(lambda s=sample: direct(node, s))
            got = outcome(lambda s=sample: expr.evaluate(s))
            again = outcome(lambda s=sample: back.evaluate(s))
            assert same(got, expected), (text, sample, got, expected)
            assert same(again, expected), (text, sample, again, expected)


def test_random_formulas_smoke():
    # A fixed-seed sweep over deep formulas that must not depend on hypothesis shrinking.
    rng = random.Random(0)
    leaves = [A, B, D]
    for _ in range(200):
        expr = rng.choice(leaves)
        for _ in range(6):
            other = rng.choice([*leaves, rng.randint(-3, 3)])
            op = rng.choice([operator.add, operator.sub, operator.mul, operator.lt, operator.eq, operator.and_])
            expr = op(expr, other) if rng.random() < 0.5 else op(other, expr)
        back = reparse(expr)
        for s in ({"a": -3, "b": 1, "d": 0}, {"a": 5, "b": 3, "d": 3}):
            assert back.evaluate(s) == expr.evaluate(s)
        assert repr(back) == repr(expr)

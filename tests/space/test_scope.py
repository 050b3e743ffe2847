"""Label scopes, automatic labels, creation sites and the fixed-sample context."""

from __future__ import annotations

import inspect

import pytest

from archsmith.space import (
    Categorical,
    CategoricalMultiple,
    LabelConflictError,
    Numerical,
    SampleError,
    Space,
    SpaceError,
    auto_label,
    caller_site,
    choice,
    current_scope,
    fixed_context,
    fixed_sample,
    label_scope,
    randint,
    sub_scope,
    uniform,
)
from archsmith.space._scope import unfixed


def line() -> int:
    return inspect.currentframe().f_back.f_lineno


# Automatic labels ------------------------------------------------------------------------------


def build():
    return [Categorical([1, 2]), Categorical([3, 4]), Numerical(0, 1), CategoricalMultiple([1, 2])]


def test_auto_labels_are_deterministic_per_build():
    with label_scope(root=True):
        first = [leaf.label for leaf in build()]
    with label_scope(root=True):
        second = [leaf.label for leaf in build()]
    assert first == second == ["choice_1", "choice_2", "numerical_1", "multi_choice_1"]


def test_named_root_and_child_scopes():
    with label_scope("net", root=True) as root:
        assert current_scope() is root
        assert Categorical([1]).label == "net/choice_1"
        with label_scope("block") as child:
            assert child.registry is root.registry
            assert Categorical([1]).label == "net/block/choice_1"
            with label_scope():  # no name: the same scope
                assert current_scope() is child
                assert Categorical([1]).label == "net/block/choice_2"
        assert Categorical([1]).label == "net/choice_2"
    assert current_scope() is None


def test_root_inside_a_scope_starts_a_fresh_namespace():
    with label_scope(root=True) as outer:
        Categorical([1, 2], label="x")
        with label_scope(root=True) as inner:
            assert inner.registry is not outer.registry
            Categorical([1, 2, 3], label="x")  # no conflict: another namespace
            assert Categorical([1]).label == "choice_1"


def test_sub_scope_uses_an_absolute_prefix():
    with label_scope("net", root=True) as root:
        with label_scope("deep"), sub_scope("op/conv") as s:
            assert s.registry is root.registry
            assert Categorical([1]).label == "op/conv/choice_1"
        with sub_scope("op/conv"):  # a fresh counter each time
            assert Categorical([1]).label == "op/conv/choice_1"
    with sub_scope("alone") as s:
        assert s.registry is None
        assert Categorical([1]).label == "alone/choice_1"


def test_unbuilt_candidate_does_not_shift_other_labels():
    def space(build_first):
        with label_scope(root=True):
            if build_first:
                with sub_scope("cand0"):
                    Categorical([1, 2])
            with sub_scope("cand1"):
                inner = Categorical([3, 4])
            return inner.label, Categorical([5, 6]).label

    assert space(True) == space(False) == ("cand1/choice_1", "choice_1")


def test_explicit_labels_are_not_prefixed():
    with label_scope("net", root=True):
        assert Categorical([1], label="width").label == "width"


@pytest.mark.parametrize("label", ["", 3, ("a",), b"x"])
def test_bad_label(label):
    with pytest.raises(SpaceError, match="label must be a non-empty string") as e:
        Categorical([1, 2], label=label)
    assert repr(label) in str(e.value)
    with pytest.raises(SpaceError, match="label must be a non-empty string"):
        auto_label(label, "choice")


def test_auto_label_outside_scope_is_global():
    n1 = int(auto_label(None, "thing").rsplit("_", 1)[1])
    assert auto_label(None, "thing") == f"global/thing_{n1 + 1}"
    assert auto_label("given", "thing") == "given"


# Label registry --------------------------------------------------------------------------------


def test_registry_shares_same_decision():
    with label_scope(root=True) as scope:
        a = Categorical([1, 2], label="s")
        b = Categorical([1.0, 2.0], label="s")
        assert scope.registry["s"] is a
        assert a is not b
    assert len(Space([a, b])) == 1


def test_registry_conflict_names_both_sites():
    with label_scope("net", root=True):
        with label_scope("a"):
            Numerical(0, 1, label="lr")
            l1 = line() - 1
        with label_scope("b"), pytest.raises(LabelConflictError) as e:
            Numerical(0, 2, label="lr")
        l2 = line() - 1
    message = str(e.value)
    assert "'lr'" in message
    assert f"{__file__}:{l1}" in message
    assert f"{__file__}:{l2}" in message
    assert "Give one of them another label" in message


def test_auto_labelled_conflict_when_the_same_scope_is_reentered():
    with label_scope(root=True):
        with label_scope("cell"):
            Categorical([1, 2])
        with label_scope("cell"), pytest.raises(LabelConflictError, match="'cell/choice_1'"):
            Categorical([1, 2, 3])


def test_created_at_points_to_user_code():
    c = choice("site", [1])
    expected = f"{__file__}:{line() - 1}"
    assert c.created_at == expected
    r = randint("site_r", 0, 3)
    assert r.created_at == f"{__file__}:{line() - 1}"


def test_caller_site():
    assert caller_site() == f"{__file__}:{line()}"


# fixed_sample ---------------------------------------------------------------------------------


def test_fixed_sample_resolves_leaves_to_values():
    sample = {"w": 32, "k": [3, 3], "m": ("b", "a"), "lr": 0.1, "q": 4.0, "r": 2, "u": 1, "c": "x"}
    with fixed_sample(sample) as ctx:
        assert fixed_context() is ctx
        w = Categorical([16, 32], label="w")
        k = Categorical([(1, 1), (3, 3)], label="k")
        m = CategoricalMultiple(["a", "b", "c"], n_chosen=2, label="m")
        lr = Numerical(1e-3, 1, log=True, label="lr")
        q = Numerical(0, 8, quantize=2, label="q")
        r = randint("r", 0, 4)
        u = uniform("u", 0, 2)
        c = choice("c", ["x", "y"])
    assert fixed_context() is None
    assert (w, k, m, lr, q, r, u, c) == (32, (3, 3), ["a", "b"], 0.1, 4, 2, 1.0, "x")
    assert type(k) is tuple
    assert type(q) is int
    assert type(u) is float
    assert ctx.used == {"w", "k", "m", "lr", "q", "r", "u", "c"}


def test_fixed_sample_missing_label():
    with fixed_sample({"other": 1}), pytest.raises(SampleError, match=r"'width': missing") as e:
        Categorical([16, 32], label="width")
    assert "fixed sample" in str(e.value)


@pytest.mark.parametrize(
    ("make", "value"),
    [
        (lambda: Categorical([0, 1], label="bad"), True),
        (lambda: Categorical([0, 1], label="bad"), 2),
        (lambda: Numerical(0, 1, label="bad"), 1.5),
        (lambda: Numerical(0, 1, label="bad"), "0.5"),
        (lambda: CategoricalMultiple([1, 2], n_chosen=1, label="bad"), [1, 2]),
        (lambda: randint("bad", 0, 3), 3),
    ],
)
def test_fixed_sample_invalid_value(make, value):
    with fixed_sample({"bad": value}), pytest.raises(SampleError, match=r"'bad'"):
        make()


def test_fixed_sample_still_checks_declarations():
    with fixed_sample({"e": 1}), pytest.raises(SpaceError, match=r"'e'.*empty"):
        Categorical([], label="e")


def test_fixed_sample_auto_labels():
    with label_scope(root=True), fixed_sample({"choice_1": 2, "choice_2": "b"}):
        assert Categorical([1, 2]) == 2
        assert Categorical(["a", "b"]) == "b"


def test_fixed_sample_nesting_and_unfixed():
    with fixed_sample({"x": 1}):
        with fixed_sample({"x": 2}):
            assert Categorical([1, 2], label="x") == 2
        assert Categorical([1, 2], label="x") == 1
        with unfixed():
            leaf = Categorical([1, 2], label="x")
            assert isinstance(leaf, Categorical)
        assert Categorical([1, 2], label="x") == 1
    assert isinstance(Categorical([1, 2], label="x"), Categorical)


def test_fixed_sample_ignores_unused_labels():
    with fixed_sample({"x": 1, "unused": 5}) as ctx:
        assert choice("x", [1, 2]) == 1
    assert ctx.used == {"x"}

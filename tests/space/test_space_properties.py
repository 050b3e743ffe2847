"""Property tests over randomly generated framework-free spaces."""

from __future__ import annotations

import math
import zlib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from archsmith.space import (
    Categorical,
    CategoricalMultiple,
    Constraint,
    Numerical,
    SampleError,
    Space,
    dumps_arch,
    loads_arch,
)

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def vk(v):
    """Identity of a value as a candidate: 1 == 1.0, True != 1, list == tuple."""
    if isinstance(v, bool):
        return ("b", v)
    if isinstance(v, (int, float)):
        return ("n", v)
    if isinstance(v, (list, tuple)):
        return ("t", *(vk(x) for x in v))
    return (type(v).__name__, v)


def same(a, b):
    """Equal with equal types all the way down (1 != 1.0 != True, tuple != list)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    return a == b


def sample_key(sample):
    return tuple((label, vk(v)) for label, v in sample.items())


def lists_for_tuples(v):
    if isinstance(v, tuple):
        return [lists_for_tuples(x) for x in v]
    if isinstance(v, list):
        return [lists_for_tuples(x) for x in v]
    return v


# Strategies --------------------------------------------------------------------------------------

ints = st.integers(-50, 50)
strings = st.text(alphabet="abcxyz", max_size=4)
pairs = st.tuples(st.integers(0, 4), st.integers(0, 4))
scalars = st.one_of(st.integers(-5, 5), st.booleans(), st.none(), strings, st.sampled_from([0.5, -2.25, 7.0]))
candidate_lists = st.one_of(
    st.lists(ints, min_size=1, max_size=6, unique=True),
    st.lists(strings, min_size=1, max_size=5, unique=True),
    st.lists(pairs, min_size=1, max_size=5, unique=True),
    st.lists(scalars, min_size=1, max_size=5, unique_by=vk),
)


@st.composite
def categoricals(draw, label):
    values = draw(candidate_lists)
    weights = draw(st.none() | st.lists(st.integers(1, 5), min_size=len(values), max_size=len(values)))
    return Categorical(values, label=label, weights=weights)


@st.composite
def multiples(draw, label):
    values = draw(
        st.one_of(
            st.lists(ints, min_size=1, max_size=4, unique=True), st.lists(pairs, min_size=1, max_size=4, unique=True)
        )
    )
    n_chosen = draw(st.none() | st.integers(1, len(values)))
    return CategoricalMultiple(values, n_chosen=n_chosen, label=label)


@st.composite
def numericals(draw, label, discrete=False):
    log = draw(st.booleans())
    if log:
        low = draw(st.sampled_from([0.001, 0.01, 0.5, 1, 2, 10]))
        high = low * draw(st.sampled_from([1.5, 10, 100]))
        if isinstance(low, int) and float(high).is_integer():
            high = int(high)
    else:
        low = draw(st.integers(-100, 100) | st.floats(-100, 100).map(lambda x: round(x, 3)))
        high = low + draw(st.integers(1, 60) | st.floats(0.01, 60).map(lambda x: round(x, 3)).filter(lambda x: x > 0))
    quantize = draw(
        st.sampled_from([1, 2, 5, 0.1, 0.25, 0.5]) if discrete else st.none() | st.sampled_from([1, 2, 0.25, 0.5])
    )
    if quantize is not None and (high - low) / quantize > 40:
        quantize = (high - low) / 7
    return Numerical(low, high, log=log, quantize=quantize, label=label)


@st.composite
def spaces(draw, discrete=False, max_leaves=5):
    labels = draw(st.lists(st.text(min_size=1, max_size=5), min_size=1, max_size=max_leaves, unique=True))
    leaves = []
    for label in labels:
        kind = draw(st.sampled_from(["cat", "multi", "num"]))
        if kind == "cat":
            leaves.append(draw(categoricals(label)))
        elif kind == "multi":
            leaves.append(draw(multiples(label)))
        else:
            leaves.append(draw(numericals(label, discrete=discrete)))
    return Space(leaves)


def invalid_values(leaf):
    """Values the leaf must reject: out of range (or off the grid) and of the wrong type."""
    if isinstance(leaf, Categorical):
        numbers = [v for v in leaf.values if isinstance(v, (int, float)) and not isinstance(v, bool)]
        out = [max(numbers) + 1 if numbers else 123456, "qqqqq", (99, 99), (1, 2, 3)]
        wrong = [{"k": 1}, [[[]]]]
        if not any(isinstance(v, bool) for v in leaf.values):
            wrong.append(True)
        if None not in leaf.values:
            wrong.append(None)
        return [v for v in out + wrong if leaf.check(v) is not None or _fail(leaf, v)]
    if isinstance(leaf, CategoricalMultiple):
        first = leaf.values[0]
        out = [[99999], [first, first], ["qqqqq"]]
        if leaf.n_chosen is not None:
            out.append(leaf.values[: leaf.n_chosen - 1])
        return out + [3, "abc", None, {"k": 1}]
    span = leaf.high - leaf.low
    out = [leaf.high + span + 1, leaf.low - span - 1]
    if leaf.quantize is not None:
        out.append(leaf.low + leaf.quantize / 2)
    return out + ["1", None, True, [leaf.low], float("nan")]


def _fail(leaf, v):
    raise AssertionError(f"{v!r} was expected to be invalid for {leaf!r}")


# Properties --------------------------------------------------------------------------------------


@SETTINGS
@given(space=spaces(), seed=st.integers(0, 2**32))
def test_random_samples_validate(space, seed):
    for i in range(10):
        sample = space.random(seed=seed + i)
        assert list(sample) == list(space)
        canonical = space.validate(sample)
        assert same(canonical, sample)
    assert same(space.random(seed=seed), space.random(seed=seed))


@SETTINGS
@given(space=spaces())
def test_default_validates(space):
    default = space.default()
    assert same(space.validate(default), default)


@SETTINGS
@given(space=spaces(discrete=True, max_leaves=4))
def test_grid_enumerates_exactly_size_distinct_samples(space):
    assert space.is_discrete
    size = space.size()
    assert isinstance(size, int)
    if size > 3000:
        return
    samples = list(space.grid())
    assert len(samples) == size
    assert len({sample_key(s) for s in samples}) == size
    for s in samples[:200]:
        assert same(space.validate(s), s)


@SETTINGS
@given(space=spaces(discrete=True, max_leaves=4), salt=st.integers(0, 10**6), data=st.data())
def test_constrained_size_matches_grid(space, salt, data):
    if space.size() > 3000:
        return
    labels = data.draw(st.lists(st.sampled_from(list(space)), min_size=1, max_size=len(space), unique=True))

    def keep(sample):
        text = repr([vk(sample[label]) for label in labels]) + str(salt)
        return zlib.crc32(text.encode()) % 3 != 0

    space.add_constraint(Constraint(keep, labels=labels, name="hash"))
    samples = list(space.grid())
    assert all(keep(s) for s in samples)
    assert space.size() == len(samples)
    assert space.size(constrained=False) >= len(samples)
    if samples:
        for seed in range(5):
            assert keep(space.random(seed=seed))


@SETTINGS
@given(space=spaces(), seed=st.integers(0, 2**32), data=st.data())
def test_validate_rejects_mutated_samples(space, seed, data):
    sample = space.random(seed=seed)
    label = data.draw(st.sampled_from(list(space)), label="label")
    mutation = data.draw(st.sampled_from(["drop", "extra", "invalid"]), label="mutation")
    bad = dict(sample)
    if mutation == "drop":
        del bad[label]
        named = label
    elif mutation == "extra":
        named = label + "#extra"
        assert named not in space
        bad[named] = sample[label]
    else:
        named = label
        bad[label] = data.draw(st.sampled_from(invalid_values(space[label])), label="value")
    try:
        space.validate(bad)
    except SampleError as e:
        assert len(e.problems) == 1, e.problems
        assert e.problems[0].startswith(f"{named!r}: "), (e.problems, named)
    else:
        raise AssertionError(f"validate accepted {bad!r} ({mutation} {named!r})")
    assert not space.contains(bad)


@SETTINGS
@given(space=spaces(), seed=st.integers(0, 2**32))
def test_json_round_trip_is_exact(space, seed):
    sample = space.random(seed=seed)
    back = loads_arch(dumps_arch(sample))
    assert same(back, sample)
    assert same(space.validate(back), sample)
    # a hand-written file with lists where the candidates are tuples reads back canonically
    as_lists = {label: lists_for_tuples(v) for label, v in sample.items()}
    assert same(space.validate(loads_arch(dumps_arch(as_lists))), sample)


@SETTINGS
@given(space=spaces(), granularity=st.integers(1, 3))
def test_grid_with_granularity_is_valid(space, granularity):
    sizes = [leaf.size() if leaf.is_discrete else 2**granularity - 1 for leaf in space.values()]
    if math.prod(sizes) > 2000:
        return
    samples = list(space.grid(granularity))
    assert len(samples) == math.prod(sizes)
    for s in samples[:100]:
        assert same(space.validate(s), s)

"""Pareto fronts, non-dominated sorting, crowding distance and NSGA-II's order,
checked against plain O(n^2) implementations written here from the definitions,
on random points with duplicates and ties, 1-4 objectives and mixed directions."""

from __future__ import annotations

import math
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from archsmith.space import (
    SpaceError,
    _pareto,
    crowding_distance,
    dominates,
    non_dominated_sort,
    pareto_front,
    pareto_order,
    pareto_ranks,
)

SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
DIRECTIONS = ("maximize", "minimize")


# The definitions, brute force ---------------------------------------------------------------------
def naive_dominates(a, b, directions) -> bool:
    """``a`` is no worse than ``b`` on every objective and better on one."""
    no_worse = all((x >= y) if d == "maximize" else (x <= y) for x, y, d in zip(a, b, directions))
    better = any((x > y) if d == "maximize" else (x < y) for x, y, d in zip(a, b, directions))
    return no_worse and better


def naive_front(values, directions, among=None) -> list[int]:
    among = range(len(values)) if among is None else among
    return [i for i in among if not any(naive_dominates(values[j], values[i], directions) for j in among)]


def naive_sort(values, directions, limit=None) -> list[list[int]]:
    remaining, fronts = list(range(len(values))), []
    while remaining and (limit is None or sum(map(len, fronts)) < limit):
        front = naive_front(values, directions, remaining)
        fronts.append(front)
        remaining = [i for i in remaining if i not in front]
    return fronts


def naive_crowding(values) -> list[float]:
    """Per objective: the two extremes get infinity (ties broken by input order),
    each other point the gap between its neighbours over the objective's range."""
    n = len(values)
    if n <= 2:
        return [math.inf] * n
    distance = [0.0] * n
    for m in range(len(values[0])):
        order = sorted(range(n), key=lambda i: (values[i][m], i))
        low, high = values[order[0]][m], values[order[-1]][m]
        distance[order[0]] = distance[order[-1]] = math.inf
        if high > low:
            for k in range(1, n - 1):
                distance[order[k]] += (values[order[k + 1]][m] - values[order[k - 1]][m]) / (high - low)
    return distance


def naive_order(values, directions) -> list[int]:
    order = []
    for front in naive_sort(values, directions):
        crowd = naive_crowding([values[i] for i in front])
        order += [i for _, i in sorted(zip(crowd, front), key=lambda pair: (-pair[0], pair[1]))]
    return order


# Random points: few distinct values, so duplicates and ties on an axis are common ----------------
@st.composite
def problems(draw, min_size: int = 0, max_size: int = 30):
    m = draw(st.integers(1, 4))
    directions = draw(st.lists(st.sampled_from(DIRECTIONS), min_size=m, max_size=m))
    number = st.one_of(st.integers(-3, 3), st.sampled_from([0.5, -1.25, 2.75, 1e6, -1e-6]))
    point = st.tuples(*[number] * m)
    distinct = draw(st.lists(point, min_size=1, max_size=max(1, max_size // 2)))
    values = draw(st.lists(st.sampled_from(distinct), min_size=min_size, max_size=max_size))
    return values, directions


@SETTINGS
@given(problems())
def test_front_and_sort_match_the_definitions(problem) -> None:
    values, directions = problem
    fronts = non_dominated_sort(values, directions)
    assert fronts == naive_sort(values, directions)
    assert pareto_front(values, directions) == (fronts[0] if fronts else [])
    # the fronts partition the points, each front in input order
    assert sorted(i for front in fronts for i in front) == list(range(len(values)))
    assert all(front == sorted(front) and front for front in fronts)
    for i, front in enumerate(fronts):
        # no point of a front dominates another of it; equal points share a front
        assert not any(dominates(values[a], values[b], directions) for a in front for b in front)
        for later in fronts[i + 1 :]:
            assert not any(dominates(values[b], values[a], directions) for a in front for b in later)
            assert not any(values[a] == values[b] for a in front for b in later)
        if i:  # every point of front i is dominated by a point of front i - 1
            assert all(any(dominates(values[a], values[b], directions) for a in fronts[i - 1]) for b in front)


@SETTINGS
@given(problems(min_size=2), st.data())
def test_dominates_matches_the_definition_and_is_a_strict_order(problem, data) -> None:
    values, directions = problem
    a, b, c = (data.draw(st.sampled_from(values)) for _ in range(3))
    assert dominates(a, b, directions) == naive_dominates(a, b, directions)
    assert not dominates(a, a, directions)
    assert not (dominates(a, b, directions) and dominates(b, a, directions))
    if dominates(a, b, directions) and dominates(b, c, directions):
        assert dominates(a, c, directions)


@SETTINGS
@given(problems())
def test_crowding_distance_matches_the_definition(problem) -> None:
    values, _ = problem
    crowd = crowding_distance(values)
    assert crowd == pytest.approx(naive_crowding(values))
    assert all(d >= 0 for d in crowd)
    if len(values) >= 2:
        assert crowd.count(math.inf) >= 2  # the extremes of the first objective at least


@SETTINGS
@given(problems())
def test_pareto_order_and_ranks_match_nsga2(problem) -> None:
    values, directions = problem
    order = pareto_order(values, directions)
    assert order == naive_order(values, directions)
    assert sorted(order) == list(range(len(values)))
    ranks = pareto_ranks(values, directions)
    for number, front in enumerate(naive_sort(values, directions)):
        crowd = naive_crowding([values[i] for i in front])
        for i, d in zip(front, crowd):
            assert ranks[i][0] == number
            assert -ranks[i][1] == pytest.approx(d)
    # the ranks order the points as pareto_order does
    assert sorted(range(len(values)), key=lambda i: (ranks[i], i)) == order


@SETTINGS
@given(problems(), st.integers(0, 35))
def test_limit_stops_early_with_the_same_prefix(problem, limit: int) -> None:
    values, directions = problem
    fronts = non_dominated_sort(values, directions)
    limited = non_dominated_sort(values, directions, limit=limit)
    assert limited == fronts[: len(limited)]
    covered = sum(map(len, limited))
    assert covered >= min(limit, len(values))
    if limited:  # no front more than needed
        assert covered - len(limited[-1]) < limit
    assert pareto_order(values, directions, limit=limit) == pareto_order(values, directions)[:limit]


@SETTINGS
@given(problems(min_size=1))
def test_flipping_a_direction_is_negating_its_objective(problem) -> None:
    values, directions = problem
    flipped = ["minimize" if d == "maximize" else "maximize" for d in directions]
    negated = [tuple(-v for v in point) for point in values]
    assert non_dominated_sort(negated, flipped) == non_dominated_sort(values, directions)
    assert pareto_front(negated, flipped) == pareto_front(values, directions)


@settings(max_examples=40, deadline=None)
@given(problems(min_size=5, max_size=40))
def test_chunked_comparison_gives_the_same_fronts(problem) -> None:
    """Dominance is checked CHUNK rows at a time; tiny chunks change nothing."""
    values, directions = problem
    expected = naive_sort(values, directions)
    for chunk in (1, 3, 7):
        with mock.patch.object(_pareto, "CHUNK", chunk):
            assert non_dominated_sort(values, directions) == expected


def test_the_docstring_example_and_a_worked_case() -> None:
    values = [(0.9, 200), (0.8, 100), (0.7, 300), (0.9, 250)]
    assert pareto_front(values, ["maximize", "minimize"]) == [0, 1]
    assert non_dominated_sort(values, ["maximize", "minimize"]) == [[0, 1], [3], [2]]
    # equal points are all on the front; a point equal on one axis and worse on the other is not
    values = [(1, 5), (1, 5), (1, 6), (2, 9), (0, 0)]
    assert pareto_front(values, ["maximize", "minimize"]) == [0, 1, 3, 4]
    assert crowding_distance([(0, 0), (1, 1), (3, 3)]) == [math.inf, 2.0, math.inf]  # (3 - 0) / 3 on each axis
    assert pareto_order([(0, 0), (1, 1), (3, 3), (2, 2)], ["maximize", "minimize"]) == [0, 2, 1, 3]


def test_empty_inputs() -> None:
    assert pareto_front([], ["maximize"]) == []
    assert non_dominated_sort([], ["maximize", "minimize"]) == []
    assert pareto_order([], ["minimize"]) == []
    assert pareto_ranks([], ["minimize"]) == []
    assert crowding_distance([]) == []
    assert crowding_distance([(1, 2)]) == [math.inf]
    assert crowding_distance([(1, 2), (3, 4)]) == [math.inf, math.inf]


@pytest.mark.parametrize(
    ("values", "directions", "message"),
    [
        ([(1, 2), (3,)], DIRECTIONS, r"each point needs 2 objective values \(one per direction\), but point 1 has 1"),
        ([(1, 2, 3)], DIRECTIONS, "each point needs 2 objective values"),
        ([(1, 2)], ["maximize"], "each point needs 1 objective values"),
        ([(1, math.nan)], DIRECTIONS, "must be finite numbers"),
        ([(1, 2), (math.inf, 0)], DIRECTIONS, "must be finite numbers"),
        ([(1, "many")], DIRECTIONS, "must be numbers"),
        ([(1, 2)], ["maximize", "max"], r"directions must be 'maximize' or 'minimize', got \['max'\]"),
        ([(1, 2)], ["maximize", None], "directions must be 'maximize' or 'minimize'"),
        ([(1, 2)], [], "give at least one direction"),
        ([], [], "give at least one direction"),
    ],
)
def test_bad_input_raises_a_clear_error(values, directions, message: str) -> None:
    for function in (pareto_front, non_dominated_sort, pareto_order, pareto_ranks):
        with pytest.raises(SpaceError, match=message):
            function(values, directions)


def test_dominates_and_crowding_distance_check_their_points() -> None:
    with pytest.raises(SpaceError, match=r"point 1 has 1"):
        dominates((1, 2), (1,), DIRECTIONS)
    with pytest.raises(SpaceError, match="must be finite"):
        dominates((1, math.nan), (1, 2), DIRECTIONS)
    with pytest.raises(SpaceError, match=r"as many as point 0\), but point 2 has 3"):
        crowding_distance([(1, 2), (2, 1), (0, 0, 0)])
    with pytest.raises(SpaceError, match="must be finite"):
        crowding_distance([(1, 2), (2, math.nan), (0, 0)])

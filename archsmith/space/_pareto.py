"""Pareto dominance for several objectives, each maximized or minimized.

Everything works on plain sequences of objective vectors and returns indices, so
strategies (selection), the experiment (the live front) and the results API (the
exported front) share one definition. Points are compared after flipping the
maximized objectives, so "smaller is better" on every axis inside.

>>> values = [(0.9, 200), (0.8, 100), (0.7, 300), (0.9, 250)]
>>> pareto_front(values, ["maximize", "minimize"])
[0, 1]
>>> non_dominated_sort(values, ["maximize", "minimize"])
[[0, 1], [3], [2]]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ._errors import SpaceError

# numpy is imported inside each function: importing archsmith (and the CLI, which
# reads results) stays fast; numpy alone took more than half of that import.
if TYPE_CHECKING:
    import numpy as np

#: Rows compared at once when checking dominance (bounds memory to CHUNK x N x M).
CHUNK = 256


def _points(values: Sequence[Sequence[float]], width: int | None) -> np.ndarray:
    """``values`` as an ``(n, m)`` array of finite floats, ``m = width`` when given;
    a clear error for a point of the wrong length, a non-number or NaN."""
    import numpy as np

    if not len(values):
        return np.zeros((0, width or 1))
    sizes = [np.size(point) for point in values]
    expected = sizes[0] if width is None else width
    wrong = next((i for i, size in enumerate(sizes) if size != expected), None)
    if wrong is not None:
        why = "one per direction" if width is not None else "as many as point 0"
        raise SpaceError(
            f"each point needs {expected} objective values ({why}), but point {wrong} has {sizes[wrong]}: "
            f"{values[wrong]!r}"
        )
    try:
        points = np.asarray(values, dtype=float).reshape(len(values), expected)
    except (TypeError, ValueError) as e:
        raise SpaceError(f"objective values must be numbers: {e}") from None
    if not np.all(np.isfinite(points)):
        raise SpaceError("objective values must be finite numbers (failed trials have none)")
    return points


def _minimizing(values: Sequence[Sequence[float]], directions: Sequence[str]) -> np.ndarray:
    import numpy as np

    if not directions:
        raise SpaceError("give at least one direction")
    bad = [d for d in directions if d not in ("maximize", "minimize")]
    if bad:
        raise SpaceError(f"directions must be 'maximize' or 'minimize', got {bad!r}")
    signs = np.array([-1.0 if d == "maximize" else 1.0 for d in directions])
    return _points(values, len(directions)) * signs


def dominates(a: Sequence[float], b: Sequence[float], directions: Sequence[str]) -> bool:
    """Whether ``a`` is at least as good as ``b`` everywhere and better somewhere."""
    import numpy as np

    pa, pb = _minimizing([a, b], directions)
    return bool(np.all(pa <= pb) and np.any(pa < pb))


def _front_mask(points: np.ndarray) -> np.ndarray:
    """Which rows no other row dominates."""
    import numpy as np

    n = len(points)
    keep = np.ones(n, dtype=bool)
    for start in range(0, n, CHUNK):
        rows = points[start : start + CHUNK, None, :]  # (c, 1, m) against all (1, n, m)
        no_worse = np.all(points[None, :, :] <= rows, axis=2)
        better = np.any(points[None, :, :] < rows, axis=2)
        keep[start : start + CHUNK] = ~np.any(no_worse & better, axis=1)
    return keep


def pareto_front(values: Sequence[Sequence[float]], directions: Sequence[str]) -> list[int]:
    """Indices of the points no other point dominates, in input order (equal
    points are all kept)."""
    import numpy as np

    points = _minimizing(values, directions)
    return [int(i) for i in np.flatnonzero(_front_mask(points))]


def non_dominated_sort(
    values: Sequence[Sequence[float]], directions: Sequence[str], limit: int | None = None
) -> list[list[int]]:
    """The successive Pareto fronts (NSGA-II's ranks), each in input order; with
    ``limit``, stop once the fronts so far hold at least ``limit`` points."""
    import numpy as np

    points = _minimizing(values, directions)
    remaining = np.arange(len(points))
    fronts: list[list[int]] = []
    covered = 0
    while len(remaining) and (limit is None or covered < limit):
        mask = _front_mask(points[remaining])
        fronts.append([int(i) for i in remaining[mask]])
        covered += int(mask.sum())
        remaining = remaining[~mask]
    return fronts


def crowding_distance(values: Sequence[Sequence[float]]) -> list[float]:
    """NSGA-II's crowding distance of each point of one front: the extremes of
    every objective get ``inf``; larger means a less crowded neighbourhood."""
    import numpy as np

    points = _points(values, None)
    n = len(points)
    distance = np.zeros(n)
    if n <= 2:
        return [math.inf] * n
    for column in points.T:
        order = np.argsort(column, kind="stable")
        span = column[order[-1]] - column[order[0]]
        distance[order[0]] = distance[order[-1]] = math.inf
        if span > 0:
            distance[order[1:-1]] += (column[order[2:]] - column[order[:-2]]) / span
    return [float(d) for d in distance]


def pareto_order(values: Sequence[Sequence[float]], directions: Sequence[str], limit: int | None = None) -> list[int]:
    """Indices best first: by front, then by crowding distance (spread-out points
    first), then by index. With ``limit``, only the first ``limit``."""
    order: list[int] = []
    for front in non_dominated_sort(values, directions, limit):
        crowd = crowding_distance([values[i] for i in front])
        order.extend(i for _, i in sorted(zip(crowd, front), key=lambda pair: (-pair[0], pair[1])))
    return order if limit is None else order[:limit]


def pareto_ranks(values: Sequence[Sequence[float]], directions: Sequence[str]) -> list[tuple[int, float]]:
    """``(front number, -crowding distance)`` per point: lower is better, as
    NSGA-II's crowded-comparison operator orders them."""
    keys: list[tuple[int, float]] = [(0, 0.0)] * len(values)
    for rank, front in enumerate(non_dominated_sort(values, directions)):
        for i, crowd in zip(front, crowding_distance([values[i] for i in front])):
            keys[i] = (rank, -crowd)
    return keys

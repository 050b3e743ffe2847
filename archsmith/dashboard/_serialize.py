"""Store objects as the dashboard's JSON: trials, decisions, numbers.

The one place that knows both the store's records and the API's shapes (see
docs/dashboard.md). Non-finite numbers become ``null``: the API answers strict JSON.
"""

from __future__ import annotations

import ast
import json
import math
import re
from collections.abc import Iterable, Sequence
from typing import Any

from archsmith.experiment import error_summary
from archsmith.space import encode_arch

#: The trial statuses the dashboard counts (``stopped``: early-stopped trials).
STATUSES = ("waiting", "running", "succeeded", "failed", "stopped")
UNFINISHED = frozenset({"waiting", "running"})


def number(value: Any) -> float | None:
    """``value`` as a finite float, else ``None`` (NaN, infinities, non-numbers)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def metrics_of(metric: Any, objectives: Sequence[tuple[str, str]]) -> dict[str, float | None]:
    """A trial's final metric by name: a dict's numeric entries, or a single number
    under the first objective's name."""
    if isinstance(metric, dict):
        return {str(k): number(v) for k, v in metric.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    if isinstance(metric, (int, float)) and not isinstance(metric, bool):
        return {objectives[0][0]: number(metric)}
    return {}


def trial_from_row(row: tuple[Any, ...], objectives: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """The TRIAL object of a row ``(id, sample, status, objective, metric, error,
    started_at, ended_at, objective_values)`` of the store's trials table
    (``steps`` is the caller's to fill). The stored sample is JSON as architecture
    files hold it, which is what the API answers."""
    tid, sample, status, objective, metric, error, started, ended, values = row
    if values is not None:
        scores: Sequence[Any] | None = json.loads(values)
    else:
        scores = None if objective is None else [objective]
    return {
        "id": tid,
        "status": status,
        "sample": json.loads(sample),
        "metrics": {} if metric is None else metrics_of(json.loads(metric), objectives),
        "objectives": {} if scores is None else {name: number(v) for (name, _), v in zip(objectives, scores)},
        "started": started,
        "ended": ended,
        "duration": None if started is None or ended is None else ended - started,
        "error": error_summary(error) or None,
        "steps": 0,
    }


_ONE_OF = re.compile(r"^one of (.*)$", re.S)
_LIST_OF = re.compile(r"^a list of .*? distinct items of (.*)$", re.S)
_RANGE = re.compile(r"^(an integer|a number) in \[([^,\]]+), ([^\]]+)\]")


def encode_value(value: Any) -> Any:
    """One sample value as JSON-ready data (tuples kept as in architecture files)."""
    return encode_arch({"v": value})["v"]


def _literal(text: str) -> Any:
    try:
        return ast.literal_eval(text.strip())
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None


def decision(label: str, description: str | None, seen: Iterable[Any]) -> dict[str, Any]:
    """A decision of the stored space: ``{"label", "kind", "values"}``.

    Read from the description the run stored (``Choice.describe()``); where that
    does not list the candidates as literals (objects), the values the trials took
    (``seen``: encoded as in architecture files).
    """
    text = description or ""
    found = _RANGE.match(text)
    if found:
        low, high = _literal(found.group(2)), _literal(found.group(3))
        if number(low) is not None and number(high) is not None:
            return {"label": label, "kind": "numerical", "values": [low, high]}
    for pattern in (_ONE_OF, _LIST_OF):
        found = pattern.match(text)
        if found:
            values = _literal(found.group(1))
            if isinstance(values, (list, tuple)):
                return {"label": label, "kind": "categorical", "values": [encode_value(v) for v in values]}
    distinct: dict[str, Any] = {}
    for value in seen:  # already encoded (trials' samples as the API answers them)
        distinct.setdefault(json.dumps(value, sort_keys=True), value)
    numeric = [number(v) for v in distinct.values()]
    if distinct and all(v is not None for v in numeric) and len(distinct) > 10:
        return {"label": label, "kind": "numerical", "values": [min(numeric), max(numeric)]}  # type: ignore[type-var]
    return {"label": label, "kind": "categorical", "values": list(distinct.values())}

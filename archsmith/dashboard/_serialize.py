"""Store objects as the dashboard's JSON: trials, decisions, numbers.

The one place that knows both the store's records and the API's shapes (see
docs/dashboard.md). Non-finite numbers become ``null``: the API answers strict JSON.
"""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Iterable, Sequence
from typing import Any

from archsmith.experiment import TrialRecord, error_summary
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


def trial_json(trial: TrialRecord, objectives: Sequence[tuple[str, str]], steps: int) -> dict[str, Any]:
    """A trial as the API's TRIAL object; ``error`` is the one-line summary."""
    values = trial.values
    return {
        "id": trial.id,
        "status": trial.status,
        "sample": encode_arch(trial.sample),
        "metrics": metrics_of(trial.metric, objectives),
        "objectives": {} if values is None else {name: number(v) for (name, _), v in zip(objectives, values)},
        "started": trial.started_at,
        "ended": trial.ended_at,
        "duration": trial.duration,
        "error": error_summary(trial.error) or None,
        "steps": steps,
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
    does not list the candidates as literals (objects), the values the trials took.
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
    for value in seen:
        distinct.setdefault(repr(value), encode_value(value))
    numeric = [number(v) for v in distinct.values()]
    if distinct and all(v is not None for v in numeric) and len(distinct) > 10:
        return {"label": label, "kind": "numerical", "values": [min(numeric), max(numeric)]}  # type: ignore[type-var]
    return {"label": label, "kind": "categorical", "values": list(distinct.values())}

"""The dashboard's plots, as Plotly figure JSON (``{"data": [...], "layout": {...}}``).

Each builder takes an experiment's cached data and answers ``{"figure", "message"}``:
a figure ready for ``Plotly.newPlot(div, figure.data, figure.layout)``, or ``None``
and why it does not apply. The dicts are written directly (not through
``plotly.graph_objects``, whose validation costs seconds at 20,000 trials).

Plotly renders a subset of HTML in text (titles, tick labels, hover text), so every
string that comes from the user (labels, candidates, metric names, errors) goes
through :func:`esc`.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Callable
from typing import Any

from archsmith.experiment import pareto_trials

from ._data import ExperimentData, NotFound
from ._importance import importances

__all__ = ["FIGURES", "esc", "figure"]

#: Curves drawn at most: the best trials and the latest ones (the rest would be noise).
MAX_CURVES = 100
Answer = dict[str, Any]


def esc(value: Any) -> str:
    """``value`` as text Plotly shows as it is (HTML-escaped)."""
    return html.escape(value if isinstance(value, str) else json.dumps(value, default=repr), quote=True)


def _answer(figure: dict[str, Any] | None = None, message: str | None = None) -> Answer:
    return {"figure": figure, "message": message}


def _layout(title: str, **more: Any) -> dict[str, Any]:
    return {"title": {"text": title}, "margin": {"l": 60, "r": 20, "t": 50, "b": 50}, "hovermode": "closest", **more}


def _scored(data: ExperimentData, index: int = 0) -> list[tuple[int, float]]:
    """``(trial id, objective value)`` of every trial with a finite value."""
    name = data.objectives[index][0]
    out = []
    for row in data.trials.values():
        value = row["objectives"].get(name)
        if value is not None:
            out.append((row["id"], value))
    return out


def history(data: ExperimentData) -> Answer:
    """Each objective per trial, with the best so far."""
    traces: list[dict[str, Any]] = []
    layout = _layout("Optimization history", showlegend=True)
    n = len(data.objectives)
    any_points = False
    for i, (name, direction) in enumerate(data.objectives):
        points = _scored(data, i)
        any_points = any_points or bool(points)
        axis = "" if i == 0 else str(i + 1)
        best, bests = None, []
        pick = max if direction == "maximize" else min
        for _, value in points:
            best = value if best is None else pick(best, value)
            bests.append(best)
        label = esc(name)
        traces.append(
            {
                "type": "scattergl",
                "mode": "markers",
                "name": label,
                "x": [t for t, _ in points],
                "y": [v for _, v in points],
                "hovertemplate": f"trial %{{x}}<br>{label} = %{{y}}<extra></extra>",
                "xaxis": f"x{axis}",
                "yaxis": f"y{axis}",
            }
        )
        traces.append(
            {
                "type": "scattergl",
                "mode": "lines",
                "name": f"best {label} so far",
                "x": [t for t, _ in points],
                "y": bests,
                "line": {"shape": "hv"},
                "xaxis": f"x{axis}",
                "yaxis": f"y{axis}",
            }
        )
        layout[f"yaxis{axis}"] = {"title": {"text": f"{label} ({direction})"}}
        layout[f"xaxis{axis}"] = {"title": {"text": "trial"}}
    if not any_points:
        return _answer(message="no trial has a value of the objective yet")
    if n > 1:
        layout["grid"] = {"rows": n, "columns": 1, "pattern": "independent"}
    return _answer({"data": traces, "layout": layout})


def _curve_value(metric: Any, objective: float | None, name: str) -> float | None:
    if objective is not None and math.isfinite(objective):
        return objective
    if isinstance(metric, dict):
        metric = metric.get(name)
    if isinstance(metric, (int, float)) and not isinstance(metric, bool) and math.isfinite(metric):
        return float(metric)
    return None


def curves(data: ExperimentData) -> Answer:
    """The intermediate results of the best trials and the latest ones."""
    name, direction = data.objectives[0]
    stepped = [row for row in data.trials.values() if row["steps"] > 0]
    if not stepped:
        return _answer(message="no trial has reported intermediate results")
    sign = -1.0 if direction == "maximize" else 1.0
    ranked = sorted(
        (r for r in stepped if r["objectives"].get(name) is not None), key=lambda r: sign * r["objectives"][name]
    )
    chosen = {r["id"] for r in ranked[: MAX_CURVES // 2]}
    for row in sorted(stepped, key=lambda r: -r["id"]):
        if len(chosen) >= MAX_CURVES:
            break
        chosen.add(row["id"])
    ids = sorted(chosen)
    results = data.intermediates(ids)
    label = esc(name)
    traces = []
    for trial_id in ids:
        points = [(step, _curve_value(metric, obj, name)) for step, metric, obj in results.get(trial_id, [])]
        points = [(s, v) for s, v in points if v is not None]
        if points:
            traces.append(
                {
                    "type": "scatter",
                    "mode": "lines+markers",
                    "name": f"trial {trial_id}",
                    "x": [s for s, _ in points],
                    "y": [v for _, v in points],
                    "hovertemplate": f"trial {trial_id}<br>step %{{x}}<br>{label} = %{{y}}<extra></extra>",
                }
            )
    shown = f" ({len(ids)} of {len(stepped)} trials: the best and the latest)" if len(stepped) > len(ids) else ""
    layout = _layout(
        f"Intermediate {label}{shown}", xaxis={"title": {"text": "step"}}, yaxis={"title": {"text": label}}
    )
    message = None if traces else "the intermediate results hold no value of the objective"
    return _answer({"data": traces, "layout": layout} if traces else None, message)


def _value_key(value: Any) -> Any:
    """A dict key per distinct value: fast for plain values (typed, so 1, 1.0 and True
    differ), JSON text for lists and dicts."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return (type(value), value)
    return json.dumps(value, sort_keys=True)


def _plain(value: Any) -> str:
    """A candidate as the text of a parallel-coordinates tick (shown as it is)."""
    return value if isinstance(value, str) else json.dumps(value, default=repr)


def _dimension(decision: dict[str, Any], values: list[Any]) -> dict[str, Any]:
    label = esc(decision["label"])
    if decision["kind"] == "numerical":
        numbers = [v if isinstance(v, (int, float)) and not isinstance(v, bool) else None for v in values]
        low, high = decision["values"]
        return {"label": label, "values": numbers, "range": [low, high]}
    position = {_value_key(v): i for i, v in enumerate(decision["values"])}
    # Parallel coordinates draw tick text as plain SVG text (entities are not decoded, so
    # escaping would show "&lt;"): the name as it is renders as text, never as markup.
    names = [_plain(v) for v in decision["values"]]
    coded = []
    for value in values:
        key = _value_key(value)
        if key not in position:  # a value the description did not list
            position[key] = len(names)
            names.append(_plain(value))
        coded.append(position[key])
    return {"label": label, "values": coded, "tickvals": list(range(len(names))), "ticktext": names}


def parallel(data: ExperimentData) -> Answer:
    """Parallel coordinates: each decision, then the objective, one line per trial."""
    name, direction = data.objectives[0]
    rows = [r for r in data.trials.values() if r["objectives"].get(name) is not None]
    if not rows:
        return _answer(message="no trial has a value of the objective yet")
    decisions = data.decisions()
    if not decisions:
        return _answer(message="the experiment's space has no decisions")
    dims = [_dimension(d, [r["sample"].get(d["label"]) for r in rows]) for d in decisions]
    objective = [r["objectives"][name] for r in rows]
    dims.append({"label": esc(name), "values": objective})
    trace = {
        "type": "parcoords",
        "dimensions": dims,
        "line": {
            "color": objective,
            "colorscale": "Viridis",
            "reversescale": direction == "minimize",
            "showscale": True,
            "colorbar": {"title": {"text": esc(name)}},
        },
    }
    return _answer({"data": [trace], "layout": _layout(f"Decisions and {esc(name)} ({len(rows)} trials)")})


def importance(data: ExperimentData) -> Answer:
    """Each decision's importance for each objective (Optuna's evaluators)."""
    found, message = importances(data)
    if not found:
        return _answer(message=message)
    traces = []
    for objective, scores in found.items():
        ordered = sorted(scores.items(), key=lambda kv: kv[1])
        traces.append(
            {
                "type": "bar",
                "orientation": "h",
                "name": esc(objective),
                "x": [v for _, v in ordered],
                "y": [esc(label) for label, _ in ordered],
                "hovertemplate": "%{y}: %{x:.3f}<extra></extra>",
            }
        )
    layout = _layout(
        "Decision importance", xaxis={"title": {"text": "importance"}}, yaxis={"automargin": True}, barmode="group"
    )
    return _answer({"data": traces, "layout": layout}, message)


def pareto(data: ExperimentData) -> Answer:
    """The trials on the first two objectives (all pairs beyond two), the front highlighted."""
    if len(data.objectives) < 2:
        return _answer(message="the Pareto front needs several objectives; this experiment has one")
    names = [n for n, _ in data.objectives]
    rows = [r for r in data.trials.values() if all(r["objectives"].get(n) is not None for n in names)]
    if not rows:
        return _answer(message="no trial has values of every objective yet")

    def front_ids() -> set[int]:
        with data.snapshot() as store:
            return {t.id for t in pareto_trials(store)}

    front = data.derived("pareto_front", front_ids)
    groups = [
        ("other trials", [r for r in rows if r["id"] not in front], {"opacity": 0.5}),
        ("Pareto front", [r for r in rows if r["id"] in front], {"size": 9}),
    ]
    labels = [esc(n) for n in names]
    traces = []
    for title, members, marker in groups:
        text = [f"trial {r['id']}" for r in members]
        if len(names) == 2:
            traces.append(
                {
                    "type": "scattergl",
                    "mode": "markers",
                    "name": title,
                    "x": [r["objectives"][names[0]] for r in members],
                    "y": [r["objectives"][names[1]] for r in members],
                    "text": text,
                    "marker": marker,
                    "hovertemplate": f"%{{text}}<br>{labels[0]} = %{{x}}<br>{labels[1]} = %{{y}}<extra></extra>",
                }
            )
        else:
            traces.append(
                {
                    "type": "splom",
                    "name": title,
                    "dimensions": [
                        {"label": lab, "values": [r["objectives"][n] for r in members]} for n, lab in zip(names, labels)
                    ],
                    "text": text,
                    "marker": marker,
                    "diagonal": {"visible": False},
                }
            )
    directions = ", ".join(f"{lab} ({d})" for lab, (_, d) in zip(labels, data.objectives))
    layout = _layout(f"Pareto front of {directions}: {len(front)} trials")
    if len(names) == 2:
        layout.update(xaxis={"title": {"text": labels[0]}}, yaxis={"title": {"text": labels[1]}})
    return _answer({"data": traces, "layout": layout})


def oneshot_curves(data: ExperimentData) -> Answer:
    """The supernet's metrics per epoch (a one-shot run)."""
    history = data.meta.get("oneshot_history") or []
    if not isinstance(history, list) or not history:
        return _answer(message="not a one-shot experiment (no supernet epochs recorded)")
    names: list[str] = []
    for entry in history:
        names.extend(k for k in entry if k != "epoch" and k not in names)
    traces = []
    for name in names:
        points = [(e["epoch"] + 1, e.get(name)) for e in history]
        points = [(x, y) for x, y in points if isinstance(y, (int, float)) and math.isfinite(y)]
        if points:
            traces.append(
                {
                    "type": "scatter",
                    "mode": "lines+markers",
                    "name": esc(name),
                    "x": [x for x, _ in points],
                    "y": [y for _, y in points],
                }
            )
    layout = _layout("Supernet training", xaxis={"title": {"text": "epoch"}, "dtick": 1})
    return _answer({"data": traces, "layout": layout})


def oneshot_probabilities(data: ExperimentData) -> Answer:
    """How the architecture's probabilities moved over the epochs, one decision at a time."""
    epochs = data.meta.get("oneshot_probabilities") or []
    if not isinstance(epochs, list) or not epochs:
        why = (
            "this one-shot algorithm learns no architecture probabilities (it samples architectures)"
            if data.oneshot()
            else "not a one-shot experiment"
        )
        return _answer(message=why)
    candidates = {d["label"]: d["values"] for d in data.decisions()}
    labels: list[str] = []
    for entry in epochs:
        labels.extend(k for k in entry["probabilities"] if k not in labels)
    traces, owner = [], []
    for label in labels:
        width = max(len(e["probabilities"].get(label, [])) for e in epochs)
        names = candidates.get(label, [])
        for j in range(width):
            name = esc(names[j]) if j < len(names) else f"candidate {j}"
            points = [
                (e["epoch"] + 1, e["probabilities"][label][j])
                for e in epochs
                if len(e["probabilities"].get(label, [])) > j
            ]
            traces.append(
                {
                    "type": "scatter",
                    "mode": "lines+markers",
                    "name": name,
                    "legendgroup": esc(label),
                    "x": [x for x, _ in points],
                    "y": [y for _, y in points],
                    "visible": label == labels[0],
                    "hovertemplate": f"{esc(label)} = {name}<br>epoch %{{x}}: %{{y:.3f}}<extra></extra>",
                }
            )
            owner.append(label)
    buttons = [
        {
            "label": esc(label),
            "method": "update",
            "args": [
                {"visible": [o == label for o in owner]},
                {"title.text": f"Architecture probabilities: {esc(label)}"},
            ],
        }
        for label in labels
    ]
    layout = _layout(
        f"Architecture probabilities: {esc(labels[0])}",
        xaxis={"title": {"text": "epoch"}, "dtick": 1},
        yaxis={"title": {"text": "probability"}, "range": [0, 1]},
        updatemenus=[{"buttons": buttons, "direction": "down", "x": 1.0, "xanchor": "right", "y": 1.15}],
    )
    return _answer({"data": traces, "layout": layout})


FIGURES: dict[str, Callable[[ExperimentData], Answer]] = {
    "history": history,
    "curves": curves,
    "parallel": parallel,
    "importance": importance,
    "pareto": pareto,
    "oneshot_curves": oneshot_curves,
    "oneshot_probabilities": oneshot_probabilities,
}


def figure(data: ExperimentData, name: str) -> Answer:
    """The figure ``name`` of an experiment, cached until its trials change."""
    builder = FIGURES.get(name)
    if builder is None:
        raise NotFound(f"no figure {name!r}; the figures are: {', '.join(FIGURES)}")
    key = None
    if name == "importance":  # costly: computed again once the scored trials grew by 5%, not per trial
        data.refresh()
        scored = sum(1 for row in data.trials.values() if row["objectives"])
        key = (data.objectives and data.objectives[0], round(math.log1p(scored) * 20), data.version.partition(".")[0])
    return data.derived(f"figure:{name}", lambda: builder(data), key)  # type: ignore[no-any-return]

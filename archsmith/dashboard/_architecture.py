"""A trial's architecture: the frozen model's module tree, and its cells as graphs.

The module tree needs the space's class (meta ``space``, ``module.Class``) importable
here and constructible without arguments (the store keeps no init arguments);
``error`` says why when it is not. Cells are drawn from the sample alone, by their
decisions' labels, so they show even where the space cannot be rebuilt:

- ``Cell``: ``<cell>/input_<node>_<j>`` (the state an op reads) and ``<cell>/op_<node>_<j>``;
- ``NasBench201Cell``: ``<cell>/<j>_<i>`` (the op on the edge from node i to node j);
- ``NasBench101Cell``: ``<cell>/num_nodes``, ``<cell>/op<j>``, ``<cell>/input<j>``.
"""

from __future__ import annotations

import importlib
import importlib.util
import math
import re
from collections import defaultdict
from typing import Any

from ._figures import esc

__all__ = ["architecture", "cell_graphs", "module_tree"]

#: Modules listed at most (as trials record them: the top of a deep tree tells most).
MAX_MODULES = 2000

_CELL_INPUT = re.compile(r"^(?P<cell>.+)/input_(?P<node>\d+)_(?P<j>\d+)$")
_CELL_OP = re.compile(r"^(?P<cell>.+)/op_(?P<node>\d+)_(?P<j>\d+)$")
_NB201_EDGE = re.compile(r"^(?P<cell>.+)/(?P<dst>\d+)_(?P<src>\d+)$")
_NB101_OP = re.compile(r"^(?P<cell>.+)/op(?P<node>\d+)$")
_NB101_INPUT = re.compile(r"^(?P<cell>.+)/input(?P<node>\d+)$")


def _space_class(dotted: Any) -> type:
    if not isinstance(dotted, str) or "." not in dotted:
        raise LookupError("the store does not name the space's class")
    module_name, _, qualname = dotted.rpartition(".")
    if module_name == "__main__":
        raise LookupError(
            f"the space class {dotted} was defined in the script that ran the search; "
            "move it into an importable module to see its module tree here"
        )
    try:
        if importlib.util.find_spec(module_name.partition(".")[0]) is None:  # no torch import for nothing
            raise LookupError(f"the module {module_name} of the space class {dotted} is not importable here")
    except (ImportError, ValueError) as e:
        raise LookupError(f"the module {module_name} of the space class {dotted} is not importable here: {e}") from e
    from archsmith.nn import ModelSpace

    try:
        obj: Any = importlib.import_module(module_name)
    except Exception as e:  # any failure of someone else's module at import
        raise LookupError(f"cannot import {module_name} (for the space class {dotted}): {type(e).__name__}: {e}") from e
    for part in qualname.split("."):
        obj = getattr(obj, part, None)
    if not (isinstance(obj, type) and issubclass(obj, ModelSpace)):
        raise LookupError(f"{dotted} is not a ModelSpace class here")
    return obj


def module_tree(dotted: Any, sample: dict[str, Any]) -> tuple[int, list[dict[str, Any]]]:
    """The frozen model of ``sample``: total parameters and ``[{path, type, params,
    depth}]`` in definition order (params: all parameters under the module)."""
    cls = _space_class(dotted)
    try:
        space = cls()
    except TypeError as e:
        raise LookupError(f"{cls.__qualname__} needs init arguments, which the store does not keep: {e}") from e
    from archsmith.nn._summary import module_summary

    summary = module_summary(space.freeze(sample), MAX_MODULES)
    return summary["total_params"], summary["modules"]


def _graph_figure(title: str, nodes: list[str], edges: list[tuple[int, int, str]]) -> dict[str, Any]:
    """Nodes left to right; each edge an arc above (forward skips) labelled with its op."""
    x = list(range(len(nodes)))
    lines: dict[str, list[Any]] = {"x": [], "y": []}
    label_x, label_y, label_text = [], [], []
    for n, (src, dst, op) in enumerate(edges):
        span = max(abs(dst - src), 1)
        height = 0.0 if span == 1 else 0.35 * span * (1 if n % 2 == 0 else -1)
        for k in range(21):
            t = k / 20
            lines["x"].append(src + (dst - src) * t)
            lines["y"].append(height * math.sin(math.pi * t))
        lines["x"].append(None)
        lines["y"].append(None)
        label_x.append((src + dst) / 2)
        label_y.append(height + (0.08 if height >= 0 else -0.08))
        label_text.append(op)
    data = [
        {
            "type": "scatter",
            "mode": "lines",
            "x": lines["x"],
            "y": lines["y"],
            "line": {"color": "#888"},
            "hoverinfo": "skip",
            "showlegend": False,
        },
        {
            "type": "scatter",
            "mode": "text",
            "x": label_x,
            "y": label_y,
            "text": label_text,
            "textfont": {"size": 11},
            "hoverinfo": "text",
            "showlegend": False,
        },
        {
            "type": "scatter",
            "mode": "markers+text",
            "x": x,
            "y": [0] * len(x),
            "text": nodes,
            "textposition": "bottom center",
            "marker": {"size": 18},
            "hoverinfo": "text",
            "showlegend": False,
        },
    ]
    layout = {
        "title": {"text": title},
        "xaxis": {"visible": False},
        "yaxis": {"visible": False},
        "margin": {"l": 20, "r": 20, "t": 40, "b": 20},
        "height": 320,
    }
    return {"data": data, "layout": layout}


def _name(value: Any) -> str:
    return esc(value)


def cell_graphs(sample: dict[str, Any]) -> list[dict[str, Any]]:
    """Every cell the sample's labels show, as ``{"label", "figure"}``."""
    cells: dict[str, dict[str, Any]] = defaultdict(lambda: {"kind": None, "parts": {}})
    for label, value in sample.items():
        for kind, pattern in (
            ("cell_input", _CELL_INPUT),
            ("cell_op", _CELL_OP),
            ("nb101_op", _NB101_OP),
            ("nb101_input", _NB101_INPUT),
            ("nb201", _NB201_EDGE),
        ):
            found = pattern.match(label)
            if found:
                cells[found["cell"]]["parts"][(kind,) + found.groups()[1:]] = value
                break
    out = []
    for cell, info in cells.items():
        parts = info["parts"]
        kinds = {k[0] for k in parts}
        edges: list[tuple[int, int, str]] = []
        if kinds <= {"cell_input", "cell_op"} and "cell_input" in kinds:
            inputs = {(int(n), int(j)): v for (k, n, j), v in parts.items() if k == "cell_input"}
            ops = {(int(n), int(j)): v for (k, n, j), v in parts.items() if k == "cell_op"}
            top = max(n for n, _ in inputs)
            first = min(n for n, _ in inputs)
            for (node, j), src in sorted(inputs.items()):
                if isinstance(src, int):
                    edges.append((src, node, _name(ops.get((node, j), "?"))))
            names = [f"in {i}" for i in range(first)] + [f"node {i}" for i in range(first, top + 1)]
        elif kinds == {"nb201"}:
            for (_, dst, src), op in sorted(parts.items()):  # <cell>/<j>_<i>: the edge from node i to node j
                edges.append((int(src), int(dst), _name(op)))
            top = max(max(s, d) for s, d, _ in edges)
            names = ["in"] + [f"node {i}" for i in range(1, top)] + ["out"]
        elif kinds <= {"nb101_op", "nb101_input"} and kinds:
            ops101 = {int(n): v for (k, n), v in parts.items() if k == "nb101_op"}
            ins = {int(n): v for (k, n), v in parts.items() if k == "nb101_input"}
            count = sample.get(f"{cell}/num_nodes")
            last = (int(count) - 1) if isinstance(count, int) else max([*ops101, *ins], default=1)
            for node, sources in sorted(ins.items()):
                if node <= last and isinstance(sources, (list, tuple)):
                    edges.extend((int(s), node, "") for s in sources if isinstance(s, int))
            names = ["in"] + [_name(ops101.get(i, "?")) for i in range(1, last)] + ["out"]
        else:
            continue
        if edges:
            out.append({"label": esc(cell), "figure": _graph_figure(f"cell {esc(cell)}", names, edges)})
    return out


def architecture(
    meta: dict[str, Any], sample: dict[str, Any], recorded: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The API's ``architecture`` object of a trial: the module tree the trial
    recorded when it built its model (``recorded``), else one rebuilt here from
    the space's class; its cells drawn from the sample."""
    total: int | None = None
    modules: list[dict[str, Any]] = []
    error = None
    if recorded is not None:
        modules = [_module_row(row) for row in recorded.get("modules", [])[:MAX_MODULES] if isinstance(row, dict)]
        total = recorded.get("total_params") if isinstance(recorded.get("total_params"), int) else None
    else:
        try:
            total, modules = module_tree(meta.get("space"), sample)
        except LookupError as e:
            error = str(e)
        except Exception as e:  # the user's __init__ or freeze failing here must not fail the page
            error = f"rebuilding the model failed: {type(e).__name__}: {e}"
    return {"total_params": total, "modules": modules, "cells": cell_graphs(sample), "error": error}


def _module_row(row: dict[str, Any]) -> dict[str, Any]:
    """One recorded module, with only the fields and types the page expects."""
    params, depth = row.get("params"), row.get("depth")
    return {
        "path": str(row.get("path", "")),
        "type": str(row.get("type", "")),
        "params": params if isinstance(params, int) else None,
        "depth": depth if isinstance(depth, int) else 0,
    }

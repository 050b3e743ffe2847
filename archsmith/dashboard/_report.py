"""``archsmith report``: an experiment's plots as one self-contained HTML file.

The file holds plotly.js (from the installed ``plotly`` package), the figures'
JSON and the summary, so it opens offline, attached to a paper or a ticket. Every
user string is HTML-escaped (figures by their builders, the rest here), and the
JSON inside ``<script>`` cannot close the element.
"""

from __future__ import annotations

import html
import json
import os
import time
from pathlib import Path
from typing import Any

from archsmith.experiment import resolve_experiment, top_trials

from ._data import ExperimentData
from ._figures import FIGURES, figure
from ._serialize import encode_value, number

__all__ = ["render_report", "write_report"]

#: The best trials listed in the report.
TOP_K = 10

_TITLES = {
    "history": "Optimization history",
    "curves": "Intermediate curves",
    "parallel": "Parallel coordinates",
    "importance": "Decision importance",
    "pareto": "Pareto front",
    "oneshot_curves": "One-shot: supernet training",
    "oneshot_probabilities": "One-shot: architecture probabilities",
}

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
td, th { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; font-size: 0.9em; }
th { background: #f3f3f3; }
.figure { height: 480px; margin: 1em 0 2em; }
.message { color: #666; font-style: italic; }
code { font-size: 0.9em; }
"""


def _script_json(value: Any) -> str:
    """JSON safe inside ``<script>``: no ``</script>``, no HTML comment openers."""
    text = json.dumps(value, allow_nan=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _e(value: Any) -> str:
    return html.escape(value if isinstance(value, str) else json.dumps(value, default=repr), quote=True)


def _time(value: float | None) -> str:
    return "-" if value is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(value))


def _summary_table(data: ExperimentData) -> str:
    summary = data.summary()
    counts = summary["counts"]
    rows = [
        ("experiment", summary["name"]),
        ("directory", str(data.directory)),
        ("status", summary["status"]),
        ("strategy", summary["strategy"] or "-"),
        ("engine", summary["engine"] or "-"),
        ("objectives", ", ".join(f"{o['name']} ({o['direction']})" for o in summary["objectives"])),
        ("trials", ", ".join(f"{k} {v}" for k, v in counts.items())),
        ("started", _time(summary["started"])),
    ]
    if summary["best"] is not None:
        values = ", ".join(f"{k} = {v}" for k, v in summary["best"]["values"].items())
        rows.append(("best", f"trial {summary['best']['trial']}: {values}"))
    body = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows)
    return f"<table>{body}</table>"


def _top_table(data: ExperimentData) -> str:
    with data.snapshot() as store:
        best = top_trials(store, TOP_K)
    if not best:
        return '<p class="message">no trial has succeeded yet</p>'
    names = [n for n, _ in data.objectives]
    head = "".join(f"<th>{_e(n)}</th>" for n in ["trial", *names, "sample"])
    rows = []
    for t in best:
        values = t.values or ()
        cells = [str(t.id), *(_e(number(v)) for v in values)]
        sample = json.dumps({k: encode_value(v) for k, v in t.sample.items()})
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + f"<td><code>{_e(sample)}</code></td></tr>")
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def render_report(data: ExperimentData) -> str:
    """The report of one experiment as an HTML document (no network needed to view it)."""
    from plotly.offline import get_plotlyjs

    data.refresh()
    sections, scripts = [], []
    for n, name in enumerate(FIGURES):
        answer = figure(data, name)
        if answer["figure"] is None:
            if (name == "pareto" and len(data.objectives) < 2) or (name.startswith("oneshot") and not data.oneshot()):
                continue  # not applicable to this kind of experiment: no empty section
            sections.append(f'<h2>{_e(_TITLES[name])}</h2><p class="message">{_e(answer["message"])}</p>')
            continue
        div = f"figure-{n}"
        note = f'<p class="message">{_e(answer["message"])}</p>' if answer["message"] else ""
        sections.append(f'<h2>{_e(_TITLES[name])}</h2>{note}<div class="figure" id="{div}"></div>')
        scripts.append(
            f'Plotly.newPlot("{div}", {_script_json(answer["figure"]["data"])}, '
            f"{_script_json(answer['figure']['layout'])}, {{responsive: true}});"
        )
    title = _e(f"archsmith report: {data.summary()['name']}")
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
        f"<title>{title}</title><style>{_STYLE}</style>"
        f"<script>{get_plotlyjs()}</script></head><body>"
        f"<h1>{title}</h1>{_summary_table(data)}"
        f"<h2>Best trials</h2>{_top_table(data)}"
        f"{''.join(sections)}"
        f'<p class="message">written {_e(_time(time.time()))} by archsmith</p>'
        f"<script>{''.join(scripts)}</script></body></html>\n"
    )


def write_report(
    exp: str | os.PathLike[str], out: str | os.PathLike[str], root: str | os.PathLike[str] | None = None
) -> Path:
    """Write the report of experiment ``exp`` (a directory, its store, or a name
    under ``root``) to ``out``; returns ``out``'s path. The store is only read.

    >>> write_report("archsmith-experiments/mnist", "report.html")  # doctest: +SKIP
    """
    directory = resolve_experiment(exp, root).parent
    data = ExperimentData(directory.name, directory)
    try:
        text = render_report(data)
    finally:
        data.close()
    path = Path(out)
    path.write_text(text, encoding="utf-8")
    return path

"""``archsmith trials EXP``: every trial, as a table, JSON or CSV.

Rich lays a table out at about 1 ms a row, so beyond :data:`RICH_ROWS` rows the
table is written as plain aligned columns (20,000 trials in well under 2 s);
``--limit``/``--offset`` page through a long listing in any format."""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from typing import Any

from rich.table import Table

from archsmith.experiment import (
    STATUSES,
    TrialRecord,
    error_summary,
    objectives_of,
    pareto_trials,
    read_experiment,
    trial_row,
)
from archsmith.space import dumps_arch

from ._common import (
    STATUS_STYLE,
    add_experiment_argument,
    console,
    number,
    objective_cells,
    objective_headers,
    plain,
    positive_int,
    require_trials,
    sample_text,
    trial_elapsed,
)

HELP = "list every trial of an experiment (table, or json/csv for machines)"
#: Longest table rich lays out; more rows are written as plain aligned columns.
RICH_ROWS = 500
CSV_COLUMNS = (
    "id",
    "status",
    "objective",
    "objective_values",
    "duration",
    "worker",
    "attempts",
    "created_at",
    "started_at",
    "ended_at",
    "sample",
    "metric",
    "error",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_experiment_argument(parser)
    parser.add_argument(
        "--format",
        choices=("table", "json", "csv"),
        default="table",
        help="table (default) for people; json or csv with the full sample, metric and error",
    )
    parser.add_argument(
        "--status", choices=STATUSES, help="only the trials with this status (stopped: ended by early stopping)"
    )
    parser.add_argument("--limit", type=positive_int, metavar="N", help="at most N trials (with --offset: a page)")
    parser.add_argument(
        "--offset", type=non_negative_int, default=0, metavar="M", help="skip the first M trials (by id)"
    )
    parser.add_argument(
        "--pareto",
        action="store_true",
        help="only the Pareto front (the trials no other beats on every objective), by the first objective",
    )
    parser.add_argument(
        "--curves",
        action="store_true",
        help="the intermediate results instead: one row per trial and step (its objective and metric)",
    )


def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer >= 0") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer >= 0")
    return value


def _select(store: Any, args: argparse.Namespace) -> list[TrialRecord]:
    """The trials asked for: by status, on the front, paged by ``--offset``/``--limit``."""
    if args.pareto:
        front = {t.id for t in pareto_trials(store)}
        trials = [t for t in store.trials(args.status) if t.id in front]
        end = None if args.limit is None else args.offset + args.limit
        return trials[args.offset : end]
    return list(store.trial_rows(args.status, limit=args.limit, offset=args.offset))


def run(args: argparse.Namespace) -> int:
    with read_experiment(args.experiment) as store:
        require_trials(store.counts(), args.experiment)
        trials = _select(store, args)
        objectives = objective_headers(objectives_of(store))
        curves = [curve_row(t.id, *point) for t in trials for point in store.intermediates(t.id)] if args.curves else []
    if args.curves:
        _print_curves(args, curves)
        return 0
    if args.format == "json":
        sys.stdout.write(json_list([trial_row(t) for t in trials]))
    elif args.format == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        for trial in trials:
            row = trial_row(trial)
            row["sample"] = dumps_arch(trial.sample, indent=None)
            row["metric"] = "" if trial.metric is None else json.dumps(row["metric"], allow_nan=False)
            row["objective_values"] = None if trial.values is None else json.dumps(row["objective_values"])
            writer.writerow(["" if row[c] is None else row[c] for c in CSV_COLUMNS])
    elif len(trials) > RICH_ROWS:
        write_plain_table(trials, objectives)
    else:
        table = Table(title=f"trials of {args.experiment}", title_justify="left")
        for column in ("id", "status", *objectives, "duration", "worker", "sample", "error"):
            table.add_column(
                column,
                justify="right" if column in ("id", *objectives, "duration") else "left",
                overflow="fold" if column in ("sample", "error") else "ellipsis",
            )
        for trial in trials:
            table.add_row(
                str(trial.id),
                plain(trial.status, STATUS_STYLE.get(trial.status, "")),
                *objective_cells(trial, len(objectives)),
                trial_elapsed(trial),
                plain(trial.worker or "-"),
                plain(sample_text(trial.sample)),
                plain(error_summary(trial.error), "red"),
            )
        console().print(table)
    return 0


def json_list(rows: list[dict[str, Any]]) -> str:
    """A JSON list with one object per line: json's C encoder writes each (with
    ``indent`` it falls back to pure Python, 5x slower on 20,000 trials)."""
    if not rows:
        return "[]\n"
    return "[\n  " + ",\n  ".join(json.dumps(row, allow_nan=False) for row in rows) + "\n]\n"


def table_cells(trial: TrialRecord, objectives: int) -> list[str]:
    """A trial's cells in the table: id, status, each objective, duration, worker,
    sample, the error's last line."""
    return [
        str(trial.id),
        trial.status,
        *objective_cells(trial, objectives),
        trial_elapsed(trial),
        trial.worker or "-",
        sample_text(trial.sample),
        error_summary(trial.error),
    ]


def write_plain_table(trials: list[TrialRecord], objectives: list[str]) -> None:
    """The table as plain aligned columns, written in one go: a long listing prints
    at once (rich would take about a second per thousand rows)."""
    header = ["id", "status", *objectives, "duration", "worker", "sample", "error"]
    rows = [table_cells(t, len(objectives)) for t in trials]
    right = {0, *range(2, 3 + len(objectives))}  # id, objectives and duration: numbers, aligned right
    last = len(header) - 1
    widths = [max(len(header[i]), *(len(row[i]) for row in rows)) for i in range(last)]

    def line(cells: list[str]) -> str:
        padded = [cell.rjust(w) if i in right else cell.ljust(w) for i, (cell, w) in enumerate(zip(cells, widths))]
        return "  ".join([*padded, cells[last]]).rstrip()

    text = [line(header), "  ".join("-" * w for w in widths) + "  -----", *map(line, rows)]
    sys.stdout.write("\n".join(text) + "\n")


CURVE_COLUMNS = ("trial", "step", "objective", "metric")


def curve_row(trial_id: int, step: int, metric: Any, objective: float | None) -> dict[str, Any]:
    """One intermediate result, as ``--curves`` prints it (a NaN as the string ``"NaN"``)."""
    return {"trial": trial_id, "step": step, "objective": _finite(objective), "metric": _finite(metric)}


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value).replace("nan", "NaN").replace("inf", "Infinity")
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    return value


def _print_curves(args: argparse.Namespace, rows: list[dict[str, Any]]) -> None:
    """Every intermediate result of the chosen trials, in trial and step order."""
    if args.format == "json":
        sys.stdout.write(json.dumps(rows, indent=2, allow_nan=False) + "\n")
    elif args.format == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(CURVE_COLUMNS)
        for row in rows:
            metric = json.dumps(row["metric"], allow_nan=False)
            writer.writerow([row["trial"], row["step"], "" if row["objective"] is None else row["objective"], metric])
    else:
        table = Table(title=f"intermediate results of {args.experiment}", title_justify="left")
        for column in CURVE_COLUMNS:
            table.add_column(column, justify="left" if column == "metric" else "right", overflow="fold")
        for row in rows:
            objective = row["objective"]
            table.add_row(
                str(row["trial"]),
                str(row["step"]),
                "-" if objective is None else number(objective) if isinstance(objective, float) else str(objective),
                plain(json.dumps(row["metric"])),
            )
        console().print(table)

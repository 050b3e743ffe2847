"""``archsmith trials EXP``: every trial, as a table, JSON or CSV."""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from typing import Any

from rich.table import Table

from archsmith.experiment import error_summary, objectives_of, pareto_trials, read_experiment, trial_row
from archsmith.space import dumps_arch

from ._common import (
    STATUS_STYLE,
    add_experiment_argument,
    console,
    number,
    objective_cells,
    objective_headers,
    plain,
    require_trials,
    sample_text,
    trial_elapsed,
)

HELP = "list every trial of an experiment (table, or json/csv for machines)"
STATUSES = ("waiting", "running", "succeeded", "failed")
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
    parser.add_argument("--status", choices=STATUSES, help="only the trials with this status")
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


def run(args: argparse.Namespace) -> int:
    with read_experiment(args.experiment) as store:
        require_trials(store.counts(), args.experiment)
        trials = store.trials(args.status)
        if args.pareto:
            front = {t.id for t in pareto_trials(store)}
            trials = [t for t in trials if t.id in front]
        objectives = objective_headers(objectives_of(store))
        curves = [curve_row(t.id, *point) for t in trials for point in store.intermediates(t.id)] if args.curves else []
    if args.curves:
        _print_curves(args, curves)
        return 0
    if args.format == "json":
        sys.stdout.write(json.dumps([trial_row(t) for t in trials], indent=2, allow_nan=False) + "\n")
    elif args.format == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        for trial in trials:
            row = trial_row(trial)
            row["sample"] = dumps_arch(trial.sample, indent=None)
            row["metric"] = "" if trial.metric is None else json.dumps(row["metric"], allow_nan=False)
            row["objective_values"] = None if trial.values is None else json.dumps(row["objective_values"])
            writer.writerow(["" if row[c] is None else row[c] for c in CSV_COLUMNS])
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

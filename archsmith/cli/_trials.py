"""``archsmith trials EXP``: every trial, as a table, JSON or CSV."""

from __future__ import annotations

import argparse
import csv
import json
import sys

from rich.table import Table

from archsmith.experiment import error_summary, objectives_of, pareto_trials, read_experiment, trial_row
from archsmith.space import dumps_arch

from ._common import (
    STATUS_STYLE,
    add_experiment_argument,
    console,
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


def run(args: argparse.Namespace) -> int:
    with read_experiment(args.experiment) as store:
        require_trials(store.counts(), args.experiment)
        trials = store.trials(args.status)
        if args.pareto:
            front = {t.id for t in pareto_trials(store)}
            trials = [t for t in trials if t.id in front]
        objectives = objective_headers(objectives_of(store))
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

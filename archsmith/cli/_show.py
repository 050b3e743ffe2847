"""``archsmith show EXP``: configuration, trial counts, the best trial and the top trials."""

from __future__ import annotations

import argparse
import json

from rich.table import Table

from archsmith.experiment import read_experiment, summarize, top_trials

from ._common import (
    STATUS_STYLE,
    add_experiment_argument,
    console,
    number,
    objective_cells,
    objective_header,
    objective_headers,
    plain,
    positive_int,
    require_trials,
    sample_text,
    timestamp,
    trial_elapsed,
)

HELP = "show an experiment: its configuration, trial counts, best trial and top trials"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_experiment_argument(parser)
    parser.add_argument("--top", metavar="K", type=positive_int, default=5, help="how many top trials (default 5)")


def _value(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def run(args: argparse.Namespace) -> int:
    with read_experiment(args.experiment) as store:
        summary = summarize(store)
        require_trials(summary.counts, args.experiment)
        top = top_trials(store, args.top)
    out = console()

    about = Table(title=f"experiment {summary.path.name}", show_header=False, title_justify="left")
    about.add_column("key", style="bold")
    about.add_column("value", overflow="fold")
    about.add_row("directory", plain(summary.path.resolve()))
    about.add_row("status", plain(summary.status, STATUS_STYLE.get(summary.status, "")))
    about.add_row("created", timestamp(summary.created_at))
    if summary.ended_at is not None and summary.status != "running":
        about.add_row("ended", timestamp(summary.ended_at))
    for key in ("space", "strategy", "mode", "seed", "labels"):
        if summary.meta.get(key) is not None:
            about.add_row(key, plain(_value(summary.meta[key])))
    for key, value in summary.config.items():
        if key != "seed":
            about.add_row(key, plain(_value(value)))
    out.print(about)
    history = summary.meta.get("oneshot_history") or []
    if history:  # a one-shot run: the supernet's epochs, then its ranking as trials
        epochs = Table(title="supernet training", title_justify="left")
        columns = [key for key in history[-1] if key not in ("epoch", "default")]
        for column in ("epoch", *columns):
            epochs.add_column(column, justify="right")
        for row in history:
            epochs.add_row(str(row["epoch"] + 1), *(number(row.get(column)) for column in columns))
        out.print(epochs)

    # "stopped" (early stopping) only where a run has such trials: most searches use no early stopping
    counts = ", ".join(f"{status} {n}" for status, n in summary.counts.items() if n or status != "stopped")
    budget = f" of max_trials {summary.max_trials}" if summary.max_trials is not None else ""
    out.print(f"trials: {summary.total}{budget} ({counts})", markup=False, soft_wrap=True)
    if summary.best is None:
        out.print("best: - (no trial has succeeded yet)", markup=False)
        return 0
    best = summary.best
    several = len(summary.objectives) > 1
    if several:
        goals = ", ".join(f"{objective_header(name)} ({direction})" for name, direction in summary.objectives)
        out.print(f"Pareto front of {goals}: {len(summary.front)} trials", markup=False, soft_wrap=True)
        title = f"top {len(top)}: the Pareto front first, spread-out trials first"
    else:
        out.print(
            f"best: trial {best.id}, {objective_header(summary.objective)} = {number(best.objective)} "
            f"({summary.direction}), sample {sample_text(best.sample)}",
            markup=False,
            soft_wrap=True,
        )
        title = f"top {len(top)} by {objective_header(summary.objective)} ({summary.direction})"

    table = Table(title=title, title_justify="left")
    headers = objective_headers(summary.objectives)
    for column in ("rank", "trial", *headers, "duration"):
        table.add_column(column, justify="right")
    if several:
        table.add_column("front")
    table.add_column("worker")
    table.add_column("sample", overflow="fold")
    on_front = {t.id for t in summary.front}
    for rank, trial in enumerate(top, 1):
        front = ["yes" if trial.id in on_front else ""] if several else []
        table.add_row(
            str(rank),
            str(trial.id),
            *objective_cells(trial, len(headers)),
            trial_elapsed(trial),
            *front,
            plain(trial.worker or "-"),
            plain(sample_text(trial.sample)),
        )
    out.print(table)
    return 0

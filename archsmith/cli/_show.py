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
    objective_header,
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
    for key in ("space", "strategy", "seed", "labels"):
        if summary.meta.get(key) is not None:
            about.add_row(key, plain(_value(summary.meta[key])))
    for key, value in summary.config.items():
        if key != "seed":
            about.add_row(key, plain(_value(value)))
    out.print(about)

    counts = ", ".join(f"{status} {n}" for status, n in summary.counts.items())
    budget = f" of max_trials {summary.max_trials}" if summary.max_trials is not None else ""
    out.print(f"trials: {summary.total}{budget} ({counts})", markup=False, soft_wrap=True)
    if summary.best is None:
        out.print("best: - (no trial has succeeded yet)", markup=False)
        return 0
    best = summary.best
    out.print(
        f"best: trial {best.id}, {objective_header(summary.objective)} = {number(best.objective)} ({summary.direction}), "
        f"sample {sample_text(best.sample)}",
        markup=False,
        soft_wrap=True,
    )

    table = Table(
        title=f"top {len(top)} by {objective_header(summary.objective)} ({summary.direction})", title_justify="left"
    )
    for column, justify in (
        ("rank", "right"),
        ("trial", "right"),
        (objective_header(summary.objective), "right"),
        ("duration", "right"),
    ):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    table.add_column("worker")
    table.add_column("sample", overflow="fold")
    for rank, trial in enumerate(top, 1):
        table.add_row(
            str(rank),
            str(trial.id),
            number(trial.objective),
            trial_elapsed(trial),
            plain(trial.worker or "-"),
            plain(sample_text(trial.sample)),
        )
    out.print(table)
    return 0

"""``archsmith list [DIR]``: the experiments under a directory."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.table import Table

from archsmith.experiment import DEFAULT_ROOT, STORE_FILE, list_experiments

from ._common import STATUS_STYLE, CommandError, console, number, plain, timestamp

HELP = "list the experiments under DIR (default ./archsmith-experiments)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("directory", metavar="DIR", nargs="?", help="where to look (default ./archsmith-experiments)")


def run(args: argparse.Namespace) -> int:
    out = console()
    if args.directory is None:  # the default: no directory yet means no search has run here
        default = Path(DEFAULT_ROOT)
        if not default.is_dir():
            out.print(
                f"no experiments: ./{default} does not exist (looked in {default.absolute()}); "
                "run a search first, or pass the directory: archsmith list DIR",
                markup=False,
                soft_wrap=True,
            )
            return 0
        args.directory = str(default)
    directory = Path(args.directory)
    if not directory.exists():  # a directory named on purpose: a mistyped path is an error
        raise CommandError(
            f"no experiments: {args.directory} does not exist (looked in {directory.absolute()}); "
            "check the path, or run `archsmith list` where ./archsmith-experiments is",
            2,
        )
    if not directory.is_dir():
        hint = f"; for this experiment: archsmith show {directory.parent}" if directory.name == STORE_FILE else ""
        raise CommandError(f"{args.directory} is a file, not a directory of experiments{hint}", 2)
    summaries = list_experiments(args.directory)
    if not summaries:
        hint = f" ({args.directory} is one itself: see `archsmith show {args.directory}`)"
        itself = (Path(args.directory) / STORE_FILE).is_file()
        out.print(f"no experiments in {args.directory}{hint if itself else ''}", markup=False, soft_wrap=True)
        return 0
    table = Table(title=f"experiments in {args.directory}")
    stopped = any(s.stopped for s in summaries)  # a column only where early stopping stopped something
    columns = ("name", "status", "trials", "failed", *(("stopped",) if stopped else ()), "best", "created")
    for column in columns:
        table.add_column(column, justify="right" if column in ("trials", "failed", "stopped", "best") else "left")
    problems = []
    for s in summaries:
        if s.error is not None:
            problems.append(f"{s.path.name}: {s.error}")
        budget = f"/{s.max_trials}" if s.max_trials is not None else ""
        if s.best is None:
            best = "-"
        elif len(s.objectives) > 1:  # no single best: how many trials are on the Pareto front
            best = f"Pareto front {len(s.front)}"
        else:
            best = f"{number(s.best.objective)} ({s.direction[:3]})"
        table.add_row(
            plain(s.path.name),
            plain(s.status, STATUS_STYLE.get(s.status, "")),
            f"{s.done}{budget}",
            str(s.failed),
            *((str(s.stopped),) if stopped else ()),
            best,
            timestamp(s.created_at),
        )
    out.print(table)
    for problem in problems:
        out.print(problem, markup=False)
    return 0

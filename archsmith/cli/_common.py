"""Helpers shared by the sub-commands: the console and how values are shown."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import Console
from rich.text import Text

from archsmith.experiment import StoreError, TrialRecord

NON_TERMINAL_WIDTH = 160


class CommandError(Exception):
    """A sub-command's failure: ``archsmith: error: <message>`` and exit ``code``."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


class _Console(Console):
    def on_broken_pipe(self) -> None:
        # rich's own handling exits with 1; a reader that has gone (`| head`) is
        # handled once, in cli.main, like any other write to the closed pipe.
        raise BrokenPipeError


def console() -> Console:
    """A rich console on the current stdout: plain text when it is not a terminal,
    then wide (``COLUMNS`` or 160) so that lines piped to a file or grep are not
    folded."""
    out = _Console(file=sys.stdout, highlight=False)
    if not out.is_terminal and "COLUMNS" not in os.environ:
        out = _Console(file=sys.stdout, highlight=False, width=NON_TERMINAL_WIDTH)
    return out


def plain(text: object, style: str = "") -> Text:
    """A table cell shown as it is (no rich markup parsing of user text)."""
    return Text(str(text), style=style)


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer")
    return value


def add_experiment_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "experiment",
        metavar="EXP",
        help="the experiment's directory, its experiment.db, or its name under ./archsmith-experiments",
    )


def require_trials(store_counts: Mapping[str, int], exp: str) -> None:
    if not sum(store_counts.values()):
        raise StoreError(f"experiment {exp!r} has no trials yet; its run has not proposed one: try again once it has")


def objective_header(objective: str) -> str:
    """The objective column's title: the metric's name, or "objective" for a plain number."""
    return "objective" if objective == "default" else objective


def objective_headers(objectives: Sequence[tuple[str, str]]) -> list[str]:
    """One column title per objective."""
    return [objective_header(name) for name, _ in objectives]


def objective_cells(trial: TrialRecord, count: int) -> list[str]:
    """The trial's value of each of ``count`` objectives ("-" where it has none)."""
    values = trial.values
    return [number(None if values is None or i >= len(values) else values[i]) for i in range(count)]


def number(value: float | None) -> str:
    return "-" if value is None else f"{value:.6g}"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.2f}s" if seconds < 10 else f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def timestamp(at: float | None) -> str:
    return "-" if at is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at))


def sample_text(sample: Mapping[str, Any]) -> str:
    return ", ".join(f"{label}={value!r}" for label, value in sample.items())


def trial_elapsed(trial: TrialRecord) -> str:
    """The duration, or for a running trial the time so far, marked with '+'."""
    if trial.duration is not None:
        return duration(trial.duration)
    if trial.status == "running" and trial.started_at is not None:
        return duration(max(0.0, time.time() - trial.started_at)) + "+"
    return "-"


STATUS_STYLE = {
    "succeeded": "green",
    "failed": "red",
    "stopped": "magenta",
    "running": "yellow",
    "waiting": "dim",
    "done": "green",
    "interrupted": "yellow",
    "stale": "red",
    "unreadable": "red",
}

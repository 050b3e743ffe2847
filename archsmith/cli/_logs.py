"""``archsmith logs EXP TRIAL [--follow] [--tail N]``: what a trial printed (its
``trials/<id>/output.log``), and a failed trial's error; ``--follow`` keeps printing
while the trial runs, as ``tail -f`` does, and stops when it ends."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from archsmith.experiment import StoreError, TrialRecord, read_experiment, trial_log

from ._common import add_experiment_argument, positive_int

HELP = "print what a trial printed (its output log) and a failed trial's error; --follow while it runs"

#: How often ``--follow`` looks for new output and for the trial's end.
POLL_SECONDS = 0.5
_RUNNING = ("waiting", "running")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_experiment_argument(parser)
    parser.add_argument("trial", metavar="TRIAL", type=positive_int, help="the trial's id (see `archsmith trials`)")
    parser.add_argument(
        "--follow", "-f", action="store_true", help="keep printing new output until the trial ends (Ctrl-C stops)"
    )
    parser.add_argument("--tail", metavar="N", type=positive_int, default=None, help="only the last N lines")


def _trial(experiment: str, trial_id: int) -> TrialRecord:
    with read_experiment(experiment) as store:
        try:
            return store.trial(trial_id)
        except StoreError:
            count = sum(store.counts().values())
            raise StoreError(
                f"experiment {experiment!r} has no trial {trial_id}"
                + (f"; its trials are numbered 1 to {count}" if count else "; it has no trials yet")
                + " (see `archsmith trials`)"
            ) from None


def _tail(text: str, lines: int | None) -> str:
    if lines is None:
        return text
    kept = text.splitlines(keepends=True)[-lines:]
    return "".join(kept)


def _print_new(path: Path, position: int) -> int:
    """Print what ``path`` holds past ``position``; the new position."""
    if not path.is_file():
        return position
    with path.open("rb") as f:
        f.seek(position)
        new = f.read()
    sys.stdout.write(new.decode("utf-8", errors="replace"))
    sys.stdout.flush()
    return position + len(new)


def run(args: argparse.Namespace) -> int:
    trial = _trial(args.experiment, args.trial)
    path = trial_log(args.experiment, args.trial)
    out = sys.stdout
    position = 0
    if path.is_file():
        data = path.read_bytes()
        position = len(data)
        out.write(_tail(data.decode("utf-8", errors="replace"), args.tail))
    elif trial.status not in _RUNNING and not args.follow:
        out.write(
            f"(trial {trial.id} left no output log: it printed nothing, or ran on an engine that keeps none)\n"
            if trial.output is None
            else _tail(trial.output, args.tail)
        )
    while args.follow and trial.status in _RUNNING:
        time.sleep(POLL_SECONDS)
        trial = _trial(args.experiment, args.trial)
        position = _print_new(path, position)  # after the status: what it printed before ending is shown
    if trial.status == "failed" and trial.error:
        out.flush()
        print(f"\n--- trial {trial.id} failed: {trial.error}", file=sys.stderr)
    out.flush()
    return 0

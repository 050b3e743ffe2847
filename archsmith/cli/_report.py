"""``archsmith report EXP -o report.html``: the dashboard's plots as one HTML file
that opens offline (plotly.js inlined)."""

from __future__ import annotations

import argparse
import sys

from archsmith.experiment import StoreError

from ._common import CommandError, add_experiment_argument

HELP = "write the experiment's plots and best trials as one self-contained HTML file (opens offline)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_experiment_argument(parser)
    parser.add_argument(
        "-o", "--out", metavar="FILE", default="report.html", help="the HTML file to write (default report.html)"
    )


def run(args: argparse.Namespace) -> int:
    try:
        import plotly  # noqa: F401 - its JavaScript goes into the file
    except ImportError:
        raise CommandError("archsmith report needs plotly: pip install 'archsmith[dashboard]'", 2) from None
    from archsmith.dashboard._data import Unreadable
    from archsmith.dashboard._report import write_report

    try:
        path = write_report(args.experiment, args.out)
    except Unreadable as e:
        # as the other commands (docs/cli.md): a file that is not an archsmith store is 2,
        # a store that fails while being read (damaged, locked) is 1
        cause = e.__cause__
        code = 2 if isinstance(cause, StoreError) and "locked" not in str(cause) else 1
        raise CommandError(
            f"{e}; if a program is writing it, retry; if the file is damaged, restore it from a copy", code
        ) from None
    except (IsADirectoryError, FileNotFoundError, PermissionError, NotADirectoryError) as e:
        raise CommandError(
            f"cannot write --out {args.out!r}: {e.strerror or e}; choose a file you can write", 1
        ) from None
    print(f"archsmith: wrote the report of {args.experiment} to {path}", file=sys.stderr)
    return 0

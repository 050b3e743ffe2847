"""``archsmith export EXP``: the best samples as JSON, to a file or stdout."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from archsmith.experiment import export_samples, export_text

from ._common import CommandError, add_experiment_argument, positive_int

HELP = "export the best samples as JSON (one sample object for --top 1, else a list, best first)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_experiment_argument(parser)
    parser.add_argument("--top", metavar="K", type=positive_int, default=1, help="how many samples (default 1)")
    parser.add_argument(
        "--out", metavar="FILE", help="write to FILE instead of stdout (--top 1: a file for archsmith.fixed_arch)"
    )
    parser.add_argument("--list", action="store_true", help="write a JSON list even for --top 1")
    parser.add_argument(
        "--pareto", action="store_true", help="write the whole Pareto front as a list, by the first objective"
    )


def _unwritable(out: str, error: OSError) -> CommandError:
    """Why ``--out`` cannot be written, and what to do instead (exit code 1)."""
    path = Path(out)
    parent = path.parent
    if isinstance(error, IsADirectoryError) or path.is_dir():
        reason = f"it is a directory; give a file name, e.g. --out {path / 'best.json'}"
    elif isinstance(error, FileNotFoundError) and not parent.exists():
        reason = f"the directory {str(parent)!r} does not exist; create it first (mkdir -p {parent})"
    elif isinstance(error, NotADirectoryError) or (parent.exists() and not parent.is_dir()):
        reason = f"{str(parent)!r} is not a directory"
    elif isinstance(error, PermissionError):
        reason = "permission denied; choose a place you can write to"
    else:
        reason = error.strerror or str(error)
    return CommandError(f"cannot write --out {out!r}: {reason}", 1)


def run(args: argparse.Namespace) -> int:
    as_list = True if args.list or args.pareto else None
    try:
        samples = export_samples(args.experiment, args.top, args.out, as_list=as_list, pareto=args.pareto)
    except OSError as e:  # reading the store raises SQLite or archsmith errors, so this is --out
        if args.out is None or isinstance(e, BrokenPipeError):
            raise
        raise _unwritable(args.out, e) from None
    if args.out is None:
        sys.stdout.write(export_text(samples, args.top, as_list=as_list) + "\n")
    else:
        if args.pareto:
            what = f"the Pareto front ({len(samples)} samples)"
        else:
            what = "the best sample" if len(samples) == 1 else f"the best {len(samples)} samples"
        print(f"archsmith: wrote {what} of {args.experiment} to {args.out}", file=sys.stderr)
    if not args.pareto and len(samples) < args.top:
        print(f"archsmith: only {len(samples)} trials have succeeded (asked for {args.top})", file=sys.stderr)
    return 0

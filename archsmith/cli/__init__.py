"""The command line: ``archsmith list / show / trials / export``, a face over the
experiment store (``archsmith.experiment``'s read-only results API).

Each sub-command is one small module with ``HELP``, ``add_arguments(parser)`` and
``run(args) -> exit code``, registered by name in ``COMMANDS``. Exit codes: 0 on
success, 2 for a usage error, a path that is not an experiment or an experiment
with nothing to show, 1 when the store cannot be read or a file cannot be written.
"""

from __future__ import annotations

import argparse
import os
import re
import sqlite3
import sys
from collections.abc import Sequence
from types import ModuleType

import archsmith
from archsmith.space import ArchsmithError

from . import _export, _list, _show, _trials

COMMANDS: dict[str, ModuleType] = {"list": _list, "show": _show, "trials": _trials, "export": _export}

_INVALID_COMMAND = re.compile(r"argument COMMAND: invalid choice: '(.*?)'")


class UsageError(Exception):
    """A command line that cannot be parsed (unknown command, bad option)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        unknown = _INVALID_COMMAND.match(message)
        if unknown:
            message = f"unknown command {unknown.group(1)!r}; choose one of: {', '.join(COMMANDS)}"
        raise UsageError(f"{self.prog}: error: {message}")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="archsmith",
        description="Look at archsmith experiments: their trials, the best architectures, and export them.",
    )
    parser.add_argument("--version", action="version", version=f"archsmith {archsmith.__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for name, module in COMMANDS.items():
        sub = commands.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(sub)
        sub.set_defaults(run=module.run)
    return parser


def _error(message: str, code: int) -> int:
    print(f"archsmith: error: {message}", file=sys.stderr)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); returns the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    except UsageError as e:
        print(e, file=sys.stderr)
        return 2
    except SystemExit as e:  # --help, --version
        return e.code if isinstance(e.code, int) else 0
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return int(args.run(args))
    except ArchsmithError as e:  # not an experiment, nothing to show, a bad samples file, ...
        return _error(str(e), 2)
    except sqlite3.Error as e:
        return _error(f"cannot read the experiment store: {e}", 1)
    except OSError as e:
        if isinstance(e, BrokenPipeError):  # `archsmith trials ... | head`: the reader has gone
            try:
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            except (OSError, ValueError):
                pass
            return 0
        return _error(f"{e.strerror or e}: {e.filename!r}" if e.filename else str(e), 1)
    except KeyboardInterrupt:
        return 130


__all__ = ["COMMANDS", "UsageError", "build_parser", "main"]

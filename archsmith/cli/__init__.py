"""The command line: ``archsmith list / show / trials / logs / export``, a face over the
experiment store (``archsmith.experiment``'s read-only results API).

Each sub-command is one small module with ``HELP``, ``add_arguments(parser)`` and
``run(args) -> exit code``, registered by name in ``COMMANDS``. Exit codes (the
table in docs/cli.md): 0 on success, 2 for a usage error, a path that is not an
experiment or not an archsmith store, or an experiment with nothing to show; 1
when a store fails while being read (SQLite error) or ``--out`` cannot be
written; 130 on Ctrl-C. Every error is one line on stderr, never a traceback.
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
from archsmith.experiment import DEFAULT_ROOT, resolve_experiment
from archsmith.space import ArchsmithError

from . import _dashboard, _export, _list, _logs, _report, _show, _trials
from ._common import CommandError

COMMANDS: dict[str, ModuleType] = {
    "list": _list,
    "show": _show,
    "trials": _trials,
    "logs": _logs,
    "export": _export,
    "dashboard": _dashboard,
    "report": _report,
}

_INVALID_COMMAND = re.compile(r"argument COMMAND: invalid choice: '(.*?)'")


class UsageError(Exception):
    """A command line that cannot be parsed (unknown command, bad option)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        unknown = _INVALID_COMMAND.match(message)
        if unknown:
            message = f"unknown command {unknown.group(1)!r}; choose one of: {', '.join(COMMANDS)}"
        # One prefix for every error ("archsmith: error: ..."), naming the sub-command
        # at fault and where its options are described.
        command = self.prog.removeprefix("archsmith").strip()
        where = f"{command}: " if command else ""
        raise UsageError(f"{where}{message} (see `{self.prog} --help`)")


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
        sub.set_defaults(run=module.run, parser=sub)
    return parser


_SQLITE_FIX = "if a program is writing it, retry; if the file is damaged, restore it from a copy"


def _store_of(args: argparse.Namespace) -> str:
    """The store a failing command read, for the message: the file when it can be named."""
    experiment = getattr(args, "experiment", None)
    if experiment is None:
        return f"an experiment store under {args.directory or DEFAULT_ROOT}"
    try:
        return f"the experiment store {str(resolve_experiment(experiment))!r}"
    except ArchsmithError:
        return f"the experiment store of {experiment!r}"


def _error(message: str, code: int) -> int:
    print(f"archsmith: error: {message}", file=sys.stderr)
    return code


def _drop_stdout() -> None:
    """Point stdout at /dev/null: what is still buffered for a reader that has gone
    (``| head``) or was interrupted is dropped instead of failing at exit."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):  # no real file descriptor (a captured stdout)
        pass


def _finish(code: int) -> int:
    """Flush stdout now, so that a closed pipe is handled here and not reported by
    the interpreter at exit (a traceback-like "Exception ignored" and code 120)."""
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _drop_stdout()
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); returns the exit code."""
    try:
        return _finish(_main(argv))
    except BrokenPipeError:  # `archsmith trials ... | head`: the reader has gone, the output is not wanted
        _drop_stdout()
        return 0
    except KeyboardInterrupt:  # Ctrl-C: stop quietly, as a shell expects (128 + SIGINT)
        return _finish(130)
    except OSError as e:  # the output itself cannot be written (`> /dev/full`, a full disk)
        _drop_stdout()
        return _error(f"cannot write the output: {e.strerror or e}", 1)


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    try:
        args, extra = parser.parse_known_args(list(sys.argv[1:] if argv is None else argv))
        if extra:  # reported by the sub-command's parser, which says where its options are
            getattr(args, "parser", parser).error(f"unrecognized arguments: {' '.join(extra)}")
    except UsageError as e:
        return _error(str(e), 2)
    except SystemExit as e:  # --help, --version
        return e.code if isinstance(e.code, int) else 0
    if args.command is None:
        return _error(f"no command given; choose one of: {', '.join(COMMANDS)} (see `archsmith --help`)", 2)
    try:
        return int(args.run(args))
    except CommandError as e:  # a sub-command's own failure, with its exit code
        return _error(str(e), e.code)
    except ArchsmithError as e:  # not an experiment, not a store, nothing to show, ...
        return _error(str(e), 2)
    except sqlite3.Error as e:  # a store that opened as one but fails while being read
        return _error(f"cannot read {_store_of(args)} (SQLite says: {e}); {_SQLITE_FIX}", 1)
    except OSError as e:
        if e.filename is None:  # stdout: handled in main, with the flush
            raise
        return _error(f"{e.strerror or e}: {e.filename!r}", 1)


__all__ = ["COMMANDS", "CommandError", "UsageError", "build_parser", "main"]

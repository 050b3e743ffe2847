"""Keeping an in-process trial's output off the driver's terminal.

While a trial runs in the driver, ``sys.stdout``/``sys.stderr`` and the file
descriptors 1 and 2 (what C extensions and child processes write to) go to the
trial's ``output.log``; the terminal sees none of it. ``breakpoint()`` still
reaches the terminal: pdb is given the saved descriptors.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import IO, Any

from ._output import log_path


def _flush(*streams: Any) -> None:
    for stream in streams:
        try:
            stream.flush()
        except (AttributeError, OSError, ValueError):
            pass


def _dup(fd: int) -> int | None:
    try:
        return os.dup(fd)
    except OSError:  # not open (a daemon closed it): nothing to redirect
        return None


class capture_output:
    """``with capture_output(log_dir, trial_id) as out:`` everything printed inside
    (Python streams and fds 1/2) goes to ``<log_dir>/<trial_id>/output.log``.

    The log is created afresh (a re-run trial's earlier log is not this attempt's)
    and removed again if the trial printed nothing. Without ``log_dir`` it does
    nothing: an engine used alone, outside an experiment, keeps no logs.
    """

    def __init__(self, log_dir: Path | None, trial_id: int) -> None:
        self.path = None if log_dir is None else log_path(log_dir, trial_id)
        self._saved_fds: dict[int, int] = {}
        self._saved_streams: tuple[Any, Any, Any] | None = None
        self._stream: IO[str] | None = None
        self._terminal: IO[str] | None = None

    def __enter__(self) -> capture_output:
        if self.path is None:
            return self
        # O_APPEND: Python's writes and the descriptors' land in order, none overwriting another.
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND | getattr(os, "O_CLOEXEC", 0)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, flags, 0o644)
        except OSError as e:  # a full or read-only disk must not fail the trial: it prints where it would have
            print(f"archsmith: cannot write {self.path} ({e}); this trial's output stays here", file=sys.stderr)
            self.path = None
            return self
        _flush(sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__)
        for target in (1, 2):
            saved = _dup(target)
            if saved is not None:
                self._saved_fds[target] = saved
                os.dup2(fd, target)
        self._stream = open(fd, "w", buffering=1, encoding="utf-8", errors="replace", closefd=True)
        self._saved_streams = sys.stdout, sys.stderr, sys.breakpointhook
        sys.stdout = sys.stderr = self._stream
        sys.breakpointhook = self._breakpoint
        return self

    def __exit__(self, *exc: object) -> None:
        self.restore()

    def restore(self) -> None:
        """Give the terminal back (idempotent; also called by a thread ending the process)."""
        if self._saved_streams is None:
            return
        _flush(sys.stdout, sys.stderr, self._stream)
        empty = False
        if self._stream is not None:
            with contextlib.suppress(OSError, ValueError):
                empty = os.fstat(self._stream.fileno()).st_size == 0  # by descriptor: no path lookup
        sys.stdout, sys.stderr, sys.breakpointhook = self._saved_streams
        self._saved_streams = None
        for target, saved in self._saved_fds.items():
            os.dup2(saved, target)
            os.close(saved)
        self._saved_fds = {}
        for stream in (self._stream, self._terminal):
            if stream is not None:
                with contextlib.suppress(OSError, ValueError):
                    stream.close()
        self._stream = self._terminal = None
        with contextlib.suppress(OSError):
            if self.path is not None and empty:
                os.unlink(self.path)  # printed nothing: no empty log, no empty directory
                os.rmdir(self.path.parent)

    def _breakpoint(self, *args: Any, **kwargs: Any) -> None:
        """``breakpoint()`` in a trial: pdb on the terminal, not in the log."""
        if os.environ.get("PYTHONBREAKPOINT") == "0":
            return
        import pdb

        saved = self._saved_fds.get(1)
        if self._terminal is None and saved is not None:
            self._terminal = open(saved, "w", buffering=1, closefd=False)
        debugger = pdb.Pdb(stdout=self._terminal) if self._terminal is not None else pdb.Pdb()
        debugger.set_trace(sys._getframe(1))

"""Keeping an in-process trial's output off the driver's terminal.

While a trial runs in the driver, ``sys.stdout``/``sys.stderr`` and the file
descriptors 1 and 2 (what C extensions and child processes write to) go to the
trial's ``output.log``; the terminal sees none of it. ``breakpoint()`` still
reaches the terminal: pdb is given the saved descriptors.

Creating a directory and a file per trial costs about a millisecond on an ext4
disk (more under load): most trials print nothing, and the in-process engine's
whole budget is 3 ms a trial. So a trial writes into one scratch file the
engine reuses (truncated per trial), and the scratch becomes the trial's
``<id>/output.log`` (a rename: the descriptors keep writing into it) only once
the trial has printed something and ended, or has run ``PROMOTE_AFTER``
seconds, so that ``archsmith logs --follow`` sees a long trial's output live.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

from ._alarm import Alarm
from ._output import log_path

#: A running trial's output shows at ``<id>/output.log`` after this many seconds.
PROMOTE_AFTER = 0.5
_SCRATCH_PREFIX = ".capture-"
_FLAGS = os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND | getattr(os, "O_CLOEXEC", 0)
#: How much of a trial's output is shown on the terminal when its log cannot be written.
_SHOWN_BYTES = 65536


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


class OutputCapture:
    """One engine's capture of the trials it runs in its own process: ``with
    capture.trial(trial_id) as out:`` everything printed inside (Python streams
    and fds 1/2) goes to ``<log_dir>/<trial_id>/output.log``; a trial that printed
    nothing leaves no log. Without ``log_dir`` it does nothing (an engine used
    alone, outside an experiment, keeps no logs). ``close()`` removes the scratch.

    >>> capture = OutputCapture(None)
    >>> with capture.trial(1) as out:
    ...     pass
    >>> out.path is None
    True
    """

    def __init__(self, log_dir: Path | None) -> None:
        self.log_dir = log_dir
        self._fd: int | None = None  # the scratch file, truncated per trial
        self._scratch = None if log_dir is None else log_dir / f"{_SCRATCH_PREFIX}{os.getpid()}.log"
        self._lock = threading.Lock()  # between a trial's end and the promoter thread
        self._promoter: Alarm | None = None
        self._swept = False  # leftover scratch files removed

    def trial(self, trial_id: int) -> capture_output:
        return capture_output(self, trial_id)

    def close(self) -> None:
        """Remove the scratch file and end the thread (idempotent): a driver with
        threads cannot fork the process engine's workers from itself."""
        if self._promoter is not None:
            self._promoter.stop()
            self._promoter = None
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
                with contextlib.suppress(OSError):
                    assert self._scratch is not None
                    os.unlink(self._scratch)

    def _scratch_fd(self) -> int:
        """The scratch file, empty; created on first use (earlier drivers' leftovers removed)."""
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            return self._fd
        assert self.log_dir is not None and self._scratch is not None
        self.log_dir.mkdir(parents=True, exist_ok=True)
        if not self._swept:  # once: a listing of the trials directory costs more as it fills
            for stale in self.log_dir.glob(f"{_SCRATCH_PREFIX}*.log"):  # a driver killed mid-trial
                with contextlib.suppress(OSError):
                    stale.unlink()
            self._swept = True
        self._fd = os.open(self._scratch, _FLAGS, 0o644)
        return self._fd

    def _promote(self, target: capture_output) -> None:
        """Make the scratch the trial's log, in place (called with the lock held)."""
        assert self._scratch is not None and target.final is not None
        target.final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self._scratch, target.final)
        target.promoted = True
        self._fd = None  # the descriptor is the trial's log now; the next trial makes a new scratch

    def _arm(self, target: capture_output | None) -> None:
        if self._promoter is None:
            if target is None:
                return
            self._promoter = Alarm("archsmith-output-capture", self._promote_running)
        self._promoter.arm(target, time.monotonic() + PROMOTE_AFTER)

    def _promote_running(self, target: capture_output) -> None:
        """The trial has run ``PROMOTE_AFTER``: its log where ``archsmith logs --follow`` looks."""
        with self._lock:
            if target.active and not target.promoted:
                with contextlib.suppress(OSError):  # a full disk: the trial's end tries again, and says so
                    self._promote(target)


class capture_output:
    """One trial's capture (see :class:`OutputCapture`); ``path`` is its log once
    the trial has ended, or None if it printed nothing."""

    def __init__(self, owner: OutputCapture, trial_id: int) -> None:
        self.owner = owner
        self.final = None if owner.log_dir is None else log_path(owner.log_dir, trial_id)
        self.path: Path | None = None
        self.promoted = False
        self.active = False
        self._fd: int | None = None
        self._saved_fds: dict[int, int] = {}
        self._saved_streams: tuple[Any, Any, Any] | None = None
        self._stream: IO[str] | None = None
        self._terminal: IO[str] | None = None

    def __enter__(self) -> capture_output:
        if self.final is None:
            return self
        owner = self.owner
        try:
            with owner._lock:
                fd = self._fd = owner._scratch_fd()
        except OSError as e:  # a full or read-only disk must not fail the trial: it prints where it would have
            print(f"archsmith: cannot write {self.final} ({e}); this trial's output stays here", file=sys.stderr)
            self.final = None
            return self
        _flush(sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__)
        for target in (1, 2):
            saved = _dup(target)
            if saved is not None:
                self._saved_fds[target] = saved
                os.dup2(fd, target)
        self._stream = open(fd, "w", buffering=1, encoding="utf-8", errors="replace", closefd=False)
        self._saved_streams = sys.stdout, sys.stderr, sys.breakpointhook
        sys.stdout = sys.stderr = self._stream
        sys.breakpointhook = self._breakpoint
        self.active = True
        owner._arm(self)
        return self

    def __exit__(self, *exc: object) -> None:
        self.restore()

    def restore(self) -> None:
        """Give the terminal back and settle the log (idempotent; also called by a
        thread ending the process)."""
        if self._saved_streams is None:
            return
        owner = self.owner
        owner._arm(None)
        _flush(sys.stdout, sys.stderr, self._stream)
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
        with owner._lock:
            self.active = False
            self._settle()

    def _settle(self) -> None:
        """The trial's log where it belongs, or none if it printed nothing."""
        assert self._fd is not None and self.final is not None
        try:
            printed = os.fstat(self._fd).st_size > 0
        except OSError:
            printed = True
        if not self.promoted:
            if not printed:
                return  # the scratch serves the next trial
            try:
                self.owner._promote(self)
            except OSError as e:
                self._show_lost(e)
                return
        os.close(self._fd)  # the log's own descriptor, no longer the scratch
        if printed:
            self.path = self.final
        else:  # promoted while running, then printed nothing: no empty log, no empty directory
            with contextlib.suppress(OSError):
                os.unlink(self.final)
                os.rmdir(self.final.parent)

    def _show_lost(self, error: OSError) -> None:
        """The log could not be made: the output goes to the terminal, with why."""
        assert self._fd is not None
        try:
            end = os.lseek(self._fd, 0, os.SEEK_END)
            data = os.pread(self._fd, _SHOWN_BYTES, max(0, end - _SHOWN_BYTES))
        except OSError:
            data = b""
        sys.stderr.write(f"archsmith: cannot write {self.final} ({error}); this trial's output follows\n")
        sys.stderr.write(data.decode("utf-8", "replace"))
        sys.stderr.flush()

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

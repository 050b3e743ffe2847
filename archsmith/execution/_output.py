"""A trial's output log: where it lives, its tail for the store, the
``faulthandler`` stack a crash or a timeout left in it, and the in-process tee."""

from __future__ import annotations

import contextlib
import os
import re
import sys
import time
from pathlib import Path
from typing import IO, Any

from ._trial import TrialEvent

TAIL_LINES = 50
TAIL_BYTES = 8192
STACK_BYTES = 16384
#: How far back ``tail`` looks for a fault report to leave out (a report lists every
#: thread's stack and extension module: a driver-forked worker's can be long).
FAULT_WINDOW = 131072
_CRASH = re.compile(rb"^Fatal Python error: .*$", re.MULTILINE)
_THREAD = re.compile(rb"^(Current thread|Thread) 0x[0-9a-f]+ ", re.MULTILINE)


def log_path(log_dir: Path, trial_id: int) -> Path:
    """``<log_dir>/<trial id>/output.log``."""
    return log_dir / str(trial_id) / "output.log"


def open_log(log_dir: Path, trial_id: int) -> int:
    """Create the trial's log afresh (a re-run trial starts a new one); return its fd."""
    path = log_path(log_dir, trial_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0), 0o644)


def size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _read_end(path: Path, limit: int, start: int = 0) -> bytes:
    try:
        with open(path, "rb") as f:
            end = f.seek(0, os.SEEK_END)
            f.seek(max(start, end - limit))
            return f.read()
    except OSError:
        return b""


def tail(path: Path) -> str | None:
    """The last ``TAIL_LINES`` lines (at most ``TAIL_BYTES``) the trial printed, or
    None if it printed nothing. A ``faulthandler`` report at the end of the log (a
    crash, or the stacks of a timed-out trial) is left out: it is the trial's error,
    and a deep stack would push the trial's own last lines out of the tail."""
    window = _read_end(path, FAULT_WINDOW)
    truncated = size(path) > len(window)
    crashes = list(_CRASH.finditer(window))
    fault = crashes[-1] if crashes else _THREAD.search(window)
    if fault is not None:
        window = window[: fault.start()]
    data = window[-TAIL_BYTES:]
    if not data.strip():
        return None
    text = data.decode("utf-8", "replace")
    if truncated or len(window) > TAIL_BYTES:
        text = text.split("\n", 1)[-1]  # drop the partial first line
    return "\n".join(text.rstrip("\n").splitlines()[-TAIL_LINES:])


def fault_stack(path: Path, since: int | None = None) -> str | None:
    """The Python stack ``faulthandler`` wrote into the log: the last crash report
    ("Fatal Python error: ..."), or, with ``since`` (the log's size before a
    dump was asked for), the thread stacks written after that point. At most
    ``STACK_BYTES`` from the report's start: the innermost frames come first."""
    if since is not None:
        data = _read_end(path, FAULT_WINDOW, start=since)
        found = _THREAD.search(data)
        start = found.start() if found else None
    else:
        data = _read_end(path, FAULT_WINDOW)
        crashes = list(_CRASH.finditer(data))
        start = crashes[-1].start() if crashes else None
    if start is None:
        return None
    report = data[start : start + STACK_BYTES].decode("utf-8", "replace").rstrip()
    return report if len(data) - start <= STACK_BYTES else report + "\n  ... (the rest of the report is in the log)"


class Tee:
    """A text stream writing to the terminal's stream and to a log file (for the
    in-process engine, where pdb still needs the terminal)."""

    def __init__(self, stream: Any, log: IO[str] | _LazyLog) -> None:
        self._stream, self._log = stream, log

    def write(self, text: str) -> int:
        try:
            self._log.write(text)
        except (OSError, ValueError):
            pass  # a full disk must not fail the trial through its prints
        return int(self._stream.write(text))

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        self._stream.flush()
        try:
            self._log.flush()
        except (OSError, ValueError):
            pass

    def __getattr__(self, name: str) -> Any:  # isatty, fileno, encoding, ... of the terminal's stream
        return getattr(self._stream, name)


class _LazyLog:
    """The log file, created on the first write: a trial that prints nothing costs
    no directory and no file (in-process trials may take a millisecond)."""

    def __init__(self, log_dir: Path, trial_id: int) -> None:
        self.log_dir, self.trial_id = log_dir, trial_id
        self._file: IO[str] | None = None

    def write(self, text: str) -> int:
        if self._file is None:
            self._file = os.fdopen(open_log(self.log_dir, self.trial_id), "w", buffering=1)
        return self._file.write(text)

    def flush(self) -> None:
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


class tee_output:
    """``with tee_output(log_dir, trial_id):`` copies ``sys.stdout``/``sys.stderr``
    into the trial's log; a no-op without ``log_dir``."""

    def __init__(self, log_dir: Path | None, trial_id: int) -> None:
        self.log_dir, self.trial_id = log_dir, trial_id
        self.path = None if log_dir is None else log_path(log_dir, trial_id)
        self._log: _LazyLog | None = None

    def __enter__(self) -> tee_output:
        if self.log_dir is not None:
            assert self.path is not None
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()  # an earlier attempt's log is not this one's
            log = self._log = _LazyLog(self.log_dir, self.trial_id)
            self._saved = sys.stdout, sys.stderr
            sys.stdout, sys.stderr = Tee(sys.stdout, log), Tee(sys.stderr, log)  # type: ignore[assignment]
        return self

    def __exit__(self, *exc: object) -> None:
        if self._log is not None:
            sys.stdout, sys.stderr = self._saved
            self._log.close()
            self._log = None


def failed_event(trial_id: int, worker: str, error: str, log_dir: Path | None, started: float | None) -> TrialEvent:
    """The finished event of a trial its engine saw die (a dead process, a lost
    actor, a timeout): failed with ``error`` and the tail of its output log."""
    now = time.time()
    output = tail(log_path(log_dir, trial_id)) if log_dir is not None else None
    return TrialEvent(
        "finished",
        trial_id,
        worker,
        status="failed",
        error=error,
        duration=now - (started or now),
        at=now,
        output=output,
    )

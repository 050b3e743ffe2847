"""One driver per experiment: an exclusive OS lock on ``<workdir>/driver.lock``.

The lock is ``flock`` on a file beside the store, not a lock inside SQLite, so
readers of the store (the CLI, the dashboard) are never blocked by it, and the
operating system releases it when the driver dies in any way, ``kill -9``
included: no stale lock is ever left to clean up by hand. The file holds the
holder's pid, host and start time, so a refused driver can name the live one.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Any

from archsmith.space import ArchsmithError

LOCK_FILE = "driver.lock"

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no flock; one driver is then the user's to ensure
    fcntl = None  # type: ignore[assignment]


class DriverLockError(ArchsmithError, RuntimeError):
    """Another driver is running this experiment."""


def read_holder(directory: Path) -> dict[str, Any] | None:
    """What the lock file says of its holder (pid, host, started), if anything."""
    try:
        return json.loads((directory / LOCK_FILE).read_text())  # type: ignore[no-any-return]
    except (OSError, ValueError):
        return None


def describe_holder(holder: dict[str, Any] | None) -> str:
    if not holder:
        return "another process"
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(holder.get("started", 0)))
    return f"pid {holder.get('pid')} on host {holder.get('host')!r} (since {started})"


class DriverLock:
    """Held for a driver's whole run: ``with DriverLock(directory): ...``.

    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp())
    >>> with DriverLock(d):  # doctest: +ELLIPSIS
    ...     DriverLock(d).acquire()
    Traceback (most recent call last):
    ...
    archsmith.experiment._lock.DriverLockError: ...
    """

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.path = self.directory / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> DriverLock:
        """Take the lock, or raise :class:`DriverLockError` naming the holder."""
        self.directory.mkdir(parents=True, exist_ok=True)
        if fcntl is None:
            return self
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)  # not inherited by workers (O_CLOEXEC)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise DriverLockError(
                    f"{self.directory} is being run by another driver, {describe_holder(read_holder(self.directory))}; "
                    "wait for it to finish or stop it (Ctrl-C, or kill its pid) before running or resuming here. "
                    "Reading it (archsmith show, Experiment.trials) works meanwhile."
                ) from None
            # The file may have been removed by the previous holder between our open and
            # flock: then we locked an orphan inode, so try again on the current file.
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        holder = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}
        os.write(fd, json.dumps(holder).encode())
        self._fd = fd
        return self

    def release(self, remove: bool = False) -> None:
        """Let go of the lock (``remove``: delete the file first, while still holding it)."""
        if self._fd is None:
            return
        if remove:
            try:
                self.path.unlink()
            except FileNotFoundError:
                pass
        else:
            os.ftruncate(self._fd, 0)  # no holder any more
        os.close(self._fd)  # closing the descriptor releases the flock
        self._fd = None

    def __enter__(self) -> DriverLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()

"""The SQLite layer under the store: raw ``sqlite3`` errors made into
:class:`StoreError` s that name the file and the fix, waiting out a lock held by
another program, and publishing a finished file atomically.

Nothing here costs anything while SQLite succeeds: the store calls SQLite directly
and only comes here from an ``except``.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar
from urllib.parse import quote

from archsmith._os import pid_alive
from archsmith.space import ArchsmithError

T = TypeVar("T")

#: SQLite's own busy wait per attempt (seconds): absorbs brief contention unseen (a
#: reader's checkpoint, WAL recovery); longer waits are ours, with reports.
BUSY_TIMEOUT = 0.1
_FIRST_REPORT, _REPORT_EVERY = 2.0, 10.0  # seconds of waiting before the first report, between reports
_FIRST_DELAY, _MAX_DELAY = 0.01, 1.0  # backoff between attempts, doubling up to the cap

STALE_CREATION = 600.0  # seconds after which a creation's temporary file is stale even if its pid lives
_READ_FIX = "reading it (archsmith show / Experiment.trials) works as it is"


class StoreError(ArchsmithError, RuntimeError):
    """A path is not an experiment store, or the store is unusable."""


def _kind(e: sqlite3.Error) -> str:
    """SQLite's error name (``SQLITE_BUSY``...); from the message before Python 3.11."""
    name = getattr(e, "sqlite_errorname", None)
    if name:
        return str(name)
    message = str(e)
    for fragment, kind in (
        ("is locked", "SQLITE_BUSY"),
        ("readonly database", "SQLITE_READONLY"),
        ("unable to open", "SQLITE_CANTOPEN"),
        ("not a database", "SQLITE_NOTADB"),
        ("malformed", "SQLITE_CORRUPT"),
        ("disk is full", "SQLITE_FULL"),
    ):
        if fragment in message:
            return kind
    return ""


def is_locked(e: sqlite3.Error) -> bool:
    return _kind(e).startswith(("SQLITE_BUSY", "SQLITE_LOCKED"))


def _permissions(path: Path) -> str:
    return stat.filemode(path.stat().st_mode)[1:]


def unwritable_reason(path: Path) -> tuple[str, str] | None:
    """Why SQLite cannot write ``path`` (what is read-only, how to fix it), or None.

    SQLite writes the file and creates ``-wal`` and ``-shm`` files beside it, so the
    directory must be writable too. ``os.access`` also sees a read-only mount (EROFS),
    which stops root as well.
    """
    directory = path.parent
    try:
        if os.statvfs(directory).f_flag & os.ST_RDONLY:
            return (
                f"{path} is on a read-only file system",
                "remount it read-write, or copy the experiment's directory to a writable place,",
            )
    except (OSError, AttributeError):  # no statvfs (Windows): the checks below still apply
        pass
    for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        if p.exists() and not os.access(p, os.W_OK):
            owner = p.stat().st_uid
            fix = f"chmod u+w {p}" if owner == os.geteuid() else f"it belongs to uid {owner}: chown or chmod {p}"
            return f"{p} is read-only (permissions {_permissions(p)})", f"make it writable ({fix})"
    if directory.exists() and not os.access(directory, os.W_OK | os.X_OK):
        return (
            f"{path}'s directory is read-only (permissions {_permissions(directory)}; SQLite creates "
            f"{path.name}-wal and -shm files beside it)",
            f"make it writable (chmod u+w {directory})",
        )
    return None


def readonly_error(reason: tuple[str, str]) -> StoreError:
    what, fix = reason
    return StoreError(f"{what}: {fix} to run or resume; {_READ_FIX}")


def corrupted_error(path: Path, e: BaseException) -> StoreError:
    return StoreError(
        f"{path} is not a readable SQLite database (corrupted?) and so is not an archsmith experiment store: "
        f"restore it from a copy, or try `sqlite3 {path} .recover` (SQLite says: {e})"
    )


def store_error(e: sqlite3.Error, path: Path, *, writing: bool) -> StoreError:
    """The :class:`StoreError` for a raw SQLite error on ``path``."""
    kind = _kind(e)
    if kind.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")):
        return corrupted_error(path, e)
    if writing:
        reason = unwritable_reason(path)
        if reason is not None:
            return readonly_error(reason)
    if kind.startswith("SQLITE_FULL"):
        return StoreError(f"the disk holding {path} is full: free some space, then resume the run")
    if kind.startswith("SQLITE_CANTOPEN"):
        return StoreError(f"cannot open {path} ({e}): check that it and its directory exist and are readable")
    if is_locked(e):
        return StoreError(f"{path} is locked ({e}) and this operation cannot wait inside a transaction")
    return StoreError(f"{path}: SQLite error: {e}")


class _LockWait:
    """Backoff, reports on stderr and the patience limit of one wait for a lock."""

    def __init__(self, path: Path, patience: float) -> None:
        self.path, self.patience = path, patience
        self.started = time.monotonic() - BUSY_TIMEOUT  # the failed first attempt waited that long
        self.next_report = self.started + _FIRST_REPORT
        self.delay = _FIRST_DELAY

    def pause(self) -> None:
        """Sleep before the next attempt, or raise once patience is spent."""
        now = time.monotonic()
        waited = now - self.started
        if waited >= self.patience:
            raise StoreError(
                f"{self.path} stayed locked by another program for {waited:.0f} s (patience {self.patience:g} s): "
                "close the program holding it (e.g. a sqlite3 shell with an open transaction: COMMIT or ROLLBACK "
                "there, or quit it), then run or resume again"
            )
        if now >= self.next_report:
            print(
                f"archsmith: waiting for {self.path}: it is locked by another program (e.g. a sqlite3 shell with "
                f"an open transaction); waited {waited:.0f} s, giving up after {self.patience:g} s",
                file=sys.stderr,
                flush=True,
            )
            self.next_report = now + _REPORT_EVERY
        wake = min(now + self.delay, self.started + self.patience, self.next_report)  # reports come on time
        time.sleep(max(wake - now, 0.0))
        self.delay = min(self.delay * 2, _MAX_DELAY)


def retry_locked(action: Callable[[], T], path: Path, patience: float, *, writing: bool = True) -> T:
    """``action()``, attempted again while another program holds a lock on ``path``,
    for up to ``patience`` seconds; every other SQLite error becomes a StoreError."""
    wait: _LockWait | None = None
    while True:
        try:
            return action()
        except sqlite3.DatabaseError as e:
            if not is_locked(e):
                raise store_error(e, path, writing=writing) from e
            wait = wait or _LockWait(path, patience)
            wait.pause()


def fsync_path(path: Path) -> None:
    """Flush a file (or a directory's entries) to disk; a no-op where unsupported."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # directories cannot be fsynced on some systems
        pass
    finally:
        os.close(fd)


def write_new(path: Path, fill: Callable[[sqlite3.Connection], None]) -> None:
    """Write a new database with ``fill(connection)`` into a temporary file beside
    ``path``, flush it, and only then give it the name ``path`` (never replacing a file:
    ``FileExistsError``): whoever looks sees no file or a whole one."""
    tmp = path.parent / f".{path.name}.creating-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        conn = sqlite3.connect(tmp, isolation_level=None)
        try:
            fill(conn)
        finally:
            conn.close()  # the last connection: its WAL is checkpointed into the file and removed
        fsync_path(tmp)
        publish(tmp, path)
    except BaseException:
        for leftover in (tmp, *sidecars(tmp)):
            leftover.unlink(missing_ok=True)
        raise


def publish(tmp: Path, path: Path) -> None:
    """Give the finished, flushed file ``tmp`` the name ``path`` atomically, never
    replacing an existing ``path`` (``FileExistsError``); ``tmp`` is gone afterwards."""
    try:
        os.link(tmp, path)  # atomic and refuses an existing name, unlike rename
    except FileExistsError:
        raise
    except OSError:  # a file system without hard links: check, then rename (callers hold the driver lock)
        if path.exists():
            raise FileExistsError(str(path)) from None
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_path(path.parent)


def connect_readonly(path: Path) -> sqlite3.Connection:
    """A read-only connection to ``path``, also in a read-only directory."""
    uri = f"file:{quote(path.as_posix())}?mode=ro"
    conn = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT, check_same_thread=False)
    try:
        conn.execute("SELECT 1 FROM sqlite_master LIMIT 1")
    except sqlite3.OperationalError as e:
        # A read-only directory, where SQLite cannot create the WAL's index (-shm). With
        # no WAL content the file alone is the whole store, and nothing can be writing it.
        wal = Path(f"{path}-wal")
        if not _kind(e).startswith(("SQLITE_CANTOPEN", "SQLITE_READONLY")) or (wal.exists() and wal.stat().st_size):
            return conn  # the error resurfaces, translated, at the first query
        conn.close()
        conn = sqlite3.connect(f"{uri}&immutable=1", uri=True, check_same_thread=False)
    except sqlite3.DatabaseError:
        pass  # corrupted: reported by the first query
    return conn


def file_id(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_dev, st.st_ino


def sidecars(path: Path) -> list[Path]:
    return [Path(f"{path}-wal"), Path(f"{path}-shm")]


def cannot_create(path: Path, e: BaseException) -> StoreError:
    reason = unwritable_reason(path)
    return readonly_error(reason) if reason else StoreError(f"cannot create {path}: {e}")


def remove_stale_creations(path: Path) -> None:
    """Remove the temporary files of :func:`write_new` s that were killed."""
    prefix = f".{path.name}.creating-"
    for leftover in path.parent.glob(f"{prefix}*"):
        pid = leftover.name[len(prefix) :].split("-")[0]
        try:
            stale = not pid_alive(int(pid)) or time.time() - leftover.stat().st_mtime > STALE_CREATION
        except (ValueError, OSError):
            continue
        if stale:
            leftover.unlink(missing_ok=True)

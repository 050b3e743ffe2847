"""The dashboard's read-only view of the experiments under one directory.

:class:`ExperimentIndex` finds the experiments (``root`` itself if it holds a store,
else its direct children that do), refuses any other path, and keeps one
:class:`ExperimentData` per experiment: a read-only connection and a cache of its
trials, refreshed by what changed. A poll with nothing new costs one ``PRAGMA
data_version`` (or one ``stat`` of a finished store); otherwise only new trials and
the unfinished ones are read again (finished trials never change), as
optuna-dashboard caches by trial counts.

Nothing here writes: a store whose run has ended (a WAL database with no ``-wal``
file beside it) is opened ``immutable``, so SQLite creates no ``-wal``/``-shm``
files either; a live store (or a rollback-journal one, which ``mode=ro`` reads
without creating files) is opened ``mode=ro``, reads the WAL the run writes and
honours its locks. A store file replaced, deleted, or written by a resumed run is
noticed by a ``stat`` and reopened.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from archsmith.experiment import STORE_FILE, Store, StoreError, TrialRecord, objectives_of, top_trials
from archsmith.experiment._sqlite import connect_readonly

from ._serialize import STATUSES, UNFINISHED, decision, number, trial_from_row

__all__ = ["DashboardError", "ExperimentData", "ExperimentIndex", "NotFound", "Unreadable"]

#: Seconds a request waits for a store locked by another program before answering 503.
LOCK_PATIENCE = 1.0
#: A running experiment whose driver has not written for this long is not live.
STALE_AFTER_SECONDS = 30.0
#: How many changes back a ``since`` version still gets only what changed.
CHANGES_KEPT = 1024
#: Meta entries not worth reading on every change (the strategy's whole state).
_SKIPPED_META = ("strategy_state", "early_stopping_state")


class DashboardError(Exception):
    """A request the dashboard cannot answer; ``status`` is its HTTP status."""

    status = 500


class NotFound(DashboardError):
    """No such experiment, trial or figure (also every path outside the root)."""

    status = 404


class Unreadable(DashboardError):
    """The store cannot be read (malformed, half-written, locked): the reason."""

    status = 503


def _finished_wal_store(path: Path) -> bool:
    """A WAL-mode database (as stores are) with no ``-wal`` file: no program has it
    open, so it can be read ``immutable`` (which creates no files). A rollback-mode
    file is not: a writer changes it in place, and ``mode=ro`` creates nothing there."""
    try:
        with open(path, "rb") as f:
            header = f.read(20)
    except OSError:
        return False
    return len(header) == 20 and header[18] == 2 and not Path(f"{path}-wal").exists()


class _ReadOnlyStore(Store):
    """A store opened without creating anything beside it (see the module's doc)."""

    immutable = False

    def _open_readonly(self) -> sqlite3.Connection:
        if not _finished_wal_store(self.path):  # a run may be writing: read its WAL, honour its locks
            return connect_readonly(self.path)
        self.immutable = True
        uri = f"file:{quote(self.path.as_posix())}?mode=ro&immutable=1"
        return sqlite3.connect(uri, uri=True, check_same_thread=False)


def _identity(path: Path) -> tuple[Any, ...]:
    """What tells that a store file was replaced, or written while opened immutable."""
    try:
        st = os.stat(path)
    except OSError:
        return (None,)
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, Path(f"{path}-wal").exists())


@dataclass
class _Best:
    trial: int
    values: dict[str, float | None]


class ExperimentData:
    """One experiment's store, read-only, with its trials cached by change.

    Every public method refreshes the cache first and raises :class:`Unreadable`
    when the store cannot be read. Thread-safe (one lock per experiment).
    """

    def __init__(self, key: str, directory: Path) -> None:
        self.key, self.directory = key, directory
        self.path = directory / STORE_FILE
        self._lock = threading.RLock()
        self._store: _ReadOnlyStore | None = None
        self._reset()

    # Loading ----------------------------------------------------------------------
    def _reset(self) -> None:
        if getattr(self, "_store", None) is not None:
            try:
                self._store.close()  # type: ignore[union-attr]
            except sqlite3.Error:
                pass
        self._store = None
        self._ident: tuple[Any, ...] = ()
        self._data_version: int | None = None
        self._token = uuid.uuid4().hex[:12]  # versions of another load are unknown
        self._seq = 0
        self._changes: deque[tuple[int, frozenset[int]]] = deque(maxlen=CHANGES_KEPT)
        self.trials: dict[int, dict[str, Any]] = {}
        self._trial_sql: str | None = None
        self._unfinished: set[int] = set()
        self._max_id = 0
        self.meta: dict[str, Any] = {}
        self.objectives: list[tuple[str, str]] = []
        self._derived: dict[str, tuple[Any, Any]] = {}  # name -> (key, value)
        self._meta_seq = 0
        self._live_connection = False

    @property
    def store(self) -> Store:
        """The open read-only store (call inside :meth:`snapshot`)."""
        assert self._store is not None
        return self._store

    @property
    def version(self) -> str:
        """Names the state of the cache; ``trials(since=version)`` gives what changed after it."""
        return f"{self._token}.{self._seq}"

    @property
    def seq(self) -> int:
        return self._seq

    def refresh(self) -> None:
        """Bring the cache up to date with the store (cheap when nothing changed)."""
        with self._lock:
            try:
                self._refresh()
            except DashboardError:
                self._reset()
                raise
            except (StoreError, sqlite3.Error, ValueError, OSError, KeyError, TypeError) as e:
                self._reset()
                raise Unreadable(f"experiment {self.key!r}: cannot read {self.path}: {e}") from e

    def _refresh(self) -> None:
        ident = _identity(self.path)
        if ident[0] is None:
            raise Unreadable(f"experiment {self.key!r}: {self.path} is gone (deleted or moved)")
        if self._store is not None and (
            ident[:2] != self._ident[:2]  # another file under the name
            or (not self._live_connection and ident != self._ident)  # written since it was opened as finished
        ):
            self._reset()
        if self._store is None:
            self._store = _ReadOnlyStore(self.path, readonly=True, lock_patience=LOCK_PATIENCE)
            self._live_connection = not self._store.immutable
            self._ident = ident
        elif not self._live_connection:
            return  # opened as finished and unchanged since: nothing to read
        conn = self.store.conn
        version = conn.execute("PRAGMA data_version").fetchone()[0]
        if version == self._data_version:
            return
        with self.snapshot():
            meta = self._read_meta()
            full = not self.trials or meta.get("store_id") != self.meta.get("store_id")
            full = full or meta.get("status") != self.meta.get("status")  # a run (re)started or ended
            count, max_id = conn.execute("SELECT COUNT(*), COALESCE(MAX(id), 0) FROM trials").fetchone()
            full = full or count < len(self.trials) or max_id < self._max_id
            if _without_heartbeat(meta) != _without_heartbeat(self.meta):
                self._meta_seq += 1
            self.meta = meta
            self.objectives = objectives_of(self.store)
            if full:
                self._load_all()
            else:
                self._load_changes(max_id)
        self._data_version = version

    @contextmanager
    def snapshot(self) -> Iterator[Store]:
        """The store read as one snapshot (a read transaction) for the block."""
        conn = self.store.conn
        if conn.in_transaction:
            yield self.store
            return
        conn.execute("BEGIN")
        try:
            yield self.store
        finally:
            if conn.in_transaction:
                try:
                    conn.execute("COMMIT")
                except sqlite3.Error:
                    pass

    def _read_meta(self) -> dict[str, Any]:
        marks = ", ".join("?" for _ in _SKIPPED_META)
        rows = self.store.conn.execute(f"SELECT key, value FROM meta WHERE key NOT IN ({marks})", _SKIPPED_META)
        return {key: json.loads(value) for key, value in rows}

    def _steps(self, ids: list[int] | None) -> dict[int, int]:
        sql = "SELECT trial_id, COUNT(*) FROM intermediates"
        if ids is None:
            return dict(self.store.conn.execute(sql + " GROUP BY trial_id").fetchall())
        out: dict[int, int] = {}
        for start in range(0, len(ids), 500):  # SQLite's limit on bound parameters
            chunk = ids[start : start + 500]
            marks = ", ".join("?" for _ in chunk)
            out.update(self.store.conn.execute(f"{sql} WHERE trial_id IN ({marks}) GROUP BY trial_id", chunk))
        return out

    def _rows(self, where: str = "", params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        """Trials as TRIAL objects, straight from their columns (the stored sample is
        already the JSON the API answers: no decoding into Python values and back)."""
        if self._trial_sql is None:
            have = {row[1] for row in self.store.conn.execute("PRAGMA table_info(trials)")}
            values = "objective_values" if "objective_values" in have else "NULL"  # stores of older archsmiths
            self._trial_sql = (
                f"SELECT id, sample, status, objective, metric, error, started_at, ended_at, {values} FROM trials"
            )
        rows = self.store.conn.execute(f"{self._trial_sql} {where} ORDER BY id", params).fetchall()
        return [trial_from_row(row, self.objectives) for row in rows]

    def _put(self, row: dict[str, Any]) -> None:
        self.trials[row["id"]] = row
        if row["status"] in UNFINISHED:
            self._unfinished.add(row["id"])
        else:
            self._unfinished.discard(row["id"])
        self._max_id = max(self._max_id, row["id"])

    def _load_all(self) -> None:
        token = self._token
        self._reset_trials()
        steps = self._steps(None)
        for row in self._rows():
            row["steps"] = steps.get(row["id"], 0)
            self._put(row)
        self._token = token if self._seq == 0 else uuid.uuid4().hex[:12]
        self._seq += 1
        self._changes.clear()

    def _reset_trials(self) -> None:
        self.trials, self._unfinished, self._max_id = {}, set(), 0
        self._derived = {}

    def _load_changes(self, max_id: int) -> None:
        """Read again what may have changed: the unfinished trials and the new ones
        (finished trials never change)."""
        unfinished = sorted(self._unfinished)
        rows = self._rows("WHERE id > ?", (self._max_id,))
        for start in range(0, len(unfinished), 500):  # SQLite's limit on bound parameters
            chunk = unfinished[start : start + 500]
            rows.extend(self._rows(f"WHERE id IN ({', '.join('?' for _ in chunk)})", tuple(chunk)))
        if len(rows) < len(unfinished) or not self._unfinished <= {r["id"] for r in rows}:
            self._load_all()  # an unfinished trial is gone: only a reload can say what happened
            return
        steps = self._steps([r["id"] for r in rows])
        changed = []
        for row in rows:
            row["steps"] = steps.get(row["id"], 0)
            if self.trials.get(row["id"]) != row:
                changed.append(row["id"])
            self._put(row)
        if changed:
            self._seq += 1
            self._changes.append((self._seq, frozenset(changed)))

    # What the API reads -------------------------------------------------------------
    def changed_since(self, version: str | None) -> tuple[list[dict[str, Any]], bool]:
        """The trials changed after ``version`` (``complete=False``), or every trial
        (``complete=True``) for no version or one this cache does not know."""
        with self._lock:
            self.refresh()
            if version is not None:
                token, _, seq_text = version.partition(".")
                seq = int(seq_text) if seq_text.isdigit() else -1
                oldest = self._changes[0][0] - 1 if self._changes else self._seq
                if token == self._token and oldest <= seq <= self._seq:
                    ids: set[int] = set()
                    for at, changed in reversed(self._changes):
                        if at <= seq:
                            break
                        ids |= changed
                    return [self.trials[i] for i in sorted(ids)], False
            return list(self.trials.values()), True

    def record(self, trial_id: int) -> TrialRecord:
        """One trial as the store's record (its whole error and output included)."""
        with self._lock:
            self.refresh()
            if trial_id not in self.trials:
                raise NotFound(f"experiment {self.key!r} has no trial {trial_id}")
            with self.snapshot() as store:
                return store.trial(trial_id)

    def architecture(self, trial_id: int) -> Any:
        """The module tree the store holds for the trial's architecture, or None."""
        with self._lock:
            with self.snapshot() as store:
                return store.architecture(trial_id)

    def derived(self, name: str, compute: Any, key: Any = None) -> Any:
        """``compute()`` cached until the trials change (figures, best trials), or
        until ``key`` changes when given."""
        with self._lock:
            self.refresh()
            key = (self._seq, self._meta_seq) if key is None else key
            cached = self._derived.get(name)
            if cached is not None and cached[0] == key:
                return cached[1]
            value = compute()
            self._derived[name] = (key, value)
            return value

    def counts(self) -> dict[str, int]:
        def count() -> dict[str, int]:
            out = dict.fromkeys(STATUSES, 0)
            for row in self.trials.values():
                out[row["status"]] = out.get(row["status"], 0) + 1
            out["total"] = len(self.trials)
            return out

        return dict(self.derived("counts", count))

    def best(self) -> _Best | None:
        def find() -> _Best | None:
            with self.snapshot() as store:
                found = top_trials(store, 1)
            if not found or found[0].values is None:
                return None
            values = {name: number(v) for (name, _), v in zip(self.objectives, found[0].values)}
            return _Best(found[0].id, values)

        return self.derived("best", find)  # type: ignore[no-any-return]

    def status(self) -> tuple[str, bool]:
        """The run's status and whether it is live (running, heartbeat fresh)."""
        status = str(self.meta.get("status", "created"))
        heartbeat = number(self.meta.get("heartbeat"))
        if status == "running" and heartbeat is not None and time.time() - heartbeat > STALE_AFTER_SECONDS:
            return "stale", False
        return status, status == "running"

    def decisions(self) -> list[dict[str, Any]]:
        def read() -> list[dict[str, Any]]:
            labels = self.meta.get("labels")
            described = self.meta.get("decisions") or {}
            if not isinstance(labels, list):
                labels = list(described) or sorted({k for t in self.trials.values() for k in t["sample"]})
            return [
                decision(
                    str(label),
                    described.get(label),
                    (t["sample"][label] for t in self.trials.values() if label in t["sample"]),
                )
                for label in labels
            ]

        return self.derived("decisions", read)  # type: ignore[no-any-return]

    def summary(self) -> dict[str, Any]:
        """The API's SUMMARY of this experiment."""
        with self._lock:
            self.refresh()
            config = self.meta.get("config") or {}
            status, live = self.status()
            best = self.best()
            max_trials = config.get("max_trials")
            return {
                "key": self.key,
                "name": str(config.get("name") or self.directory.name),
                "status": status,
                "live": live,
                "strategy": _text(self.meta.get("strategy")),
                "engine": _text(config.get("engine")),
                "objectives": [{"name": n, "direction": d} for n, d in self.objectives],
                "counts": self.counts(),
                "max_trials": max_trials if isinstance(max_trials, int) else None,
                "best": None if best is None else {"trial": best.trial, "values": best.values},
                "started": number(self.meta.get("created_at")),
                "error": None,
            }

    def oneshot(self) -> bool:
        return self.meta.get("mode") == "oneshot" or bool(self.meta.get("oneshot_history"))

    def detail(self) -> dict[str, Any]:
        """SUMMARY plus config, decisions, version and whether it is one-shot."""
        with self._lock:
            out = self.summary()
            out.update(
                config=self.meta.get("config") or {},
                decisions=self.decisions(),
                version=self.version,
                oneshot=self.oneshot(),
            )
            return out

    def intermediates(self, ids: list[int]) -> dict[int, list[tuple[int, Any, float | None]]]:
        """The intermediate results of ``ids``, read in one snapshot."""
        with self._lock:
            self.refresh()
            with self.snapshot() as store:
                return {i: store.intermediates(i) for i in ids}

    def close(self) -> None:
        with self._lock:
            self._reset()


def _without_heartbeat(meta: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in meta.items() if k != "heartbeat"}


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _unreadable_summary(key: str, directory: Path, error: str) -> dict[str, Any]:
    return {
        "key": key,
        "name": directory.name,
        "status": "unreadable",
        "live": False,
        "strategy": None,
        "engine": None,
        "objectives": [],
        "counts": dict.fromkeys((*STATUSES, "total"), 0),
        "max_trials": None,
        "best": None,
        "started": None,
        "error": error,
    }


class ExperimentIndex:
    """The experiments the dashboard serves: ``root`` itself if it holds a store,
    else its direct children that do, each under its directory's name.

    Only those are served: a key with a path separator, ``..``, a hidden name, or
    a directory (or store file) that is a symlink leading outside ``root`` is not
    found. The directories are looked at again on every listing, so experiments
    started later appear.

    >>> index = ExperimentIndex("archsmith-experiments")   # doctest: +SKIP
    >>> [s["key"] for s in index.summaries()]               # doctest: +SKIP
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        path = Path(root)
        if not path.is_dir():
            raise NotADirectoryError(
                f"{str(root)!r} is not a directory: give an experiment's directory or one that holds experiments"
            )
        self.root = path.resolve()
        self._lock = threading.Lock()
        self._data: dict[str, ExperimentData] = {}

    def _inside(self, path: Path) -> bool:
        try:
            return path.resolve().is_relative_to(self.root)
        except (OSError, RuntimeError):  # a symlink loop
            return False

    def discover(self) -> dict[str, Path]:
        """``{key: directory}`` of the experiments under the root, by key."""
        if (self.root / STORE_FILE).is_file() and self._inside(self.root / STORE_FILE):
            return {self.root.name: self.root}
        found = {}
        try:
            children = sorted(self.root.iterdir())
        except OSError:
            return {}
        for child in children:
            if child.name.startswith(".") or not self._inside(child):
                continue
            store = child / STORE_FILE
            try:
                if store.is_file() and self._inside(store):
                    found[child.name] = child
            except OSError:
                continue
        return found

    def get(self, key: str) -> ExperimentData:
        """The experiment named ``key``; :class:`NotFound` for anything else."""
        if not key or key in (".", "..") or any(c in key for c in "/\\\0") or key.startswith("."):
            raise NotFound(f"no experiment {key!r} under {self.root}")
        directory = self.discover().get(key)
        if directory is None:
            raise NotFound(f"no experiment {key!r} under {self.root}")
        with self._lock:
            data = self._data.get(key)
            if data is None or data.directory != directory:
                data = self._data[key] = ExperimentData(key, directory)
            return data

    def summaries(self) -> list[dict[str, Any]]:
        """Every experiment's SUMMARY; an unreadable store's has ``error`` set."""
        out = []
        for key, directory in self.discover().items():
            try:
                out.append(self.get(key).summary())
            except DashboardError as e:
                out.append(_unreadable_summary(key, directory, str(e)))
        return out

    def close(self) -> None:
        with self._lock:
            for data in self._data.values():
                data.close()
            self._data.clear()

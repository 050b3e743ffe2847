"""The experiment store: one SQLite file (WAL) per experiment.

Only the driver writes; the CLI and the dashboard open it read-only, and WAL lets
them read while a run writes. Samples and metrics are JSON (``dumps_arch`` keeps
tuples exact). SQLite's errors surface as :class:`StoreError` s naming the file and
the fix; a lock held by another program is waited out, with reports (``_sqlite.py``).
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from archsmith.space import dumps_arch, loads_arch

from ._sqlite import (
    BUSY_TIMEOUT,
    StoreError,
    cannot_create,
    connect_readonly,
    file_id,
    is_locked,
    readonly_error,
    remove_stale_creations,
    retry_locked,
    sidecars,
    store_error,
    unwritable_reason,
    write_new,
)

__all__ = [
    "LOCK_PATIENCE",
    "STATUSES",
    "STORE_FILE",
    "Store",
    "StoreError",
    "TrialRecord",
    "find_store",
    "iter_experiments",
]

STORE_FILE = "experiment.db"
#: Each trial's output goes to ``<experiment dir>/trials/<id>/output.log``.
TRIALS_DIR = "trials"
#: Where archsmith 0.x before the ``architectures`` table kept a trial's module tree
#: (``archsmith.nn.module_summary``): ``TRIALS_DIR/<id>/``; still read for such stores.
ARCHITECTURE_FILE = "architecture.json"
SCHEMA_VERSION = 1
#: Seconds a write waits for a lock held by another program before a StoreError.
LOCK_PATIENCE = 120.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS trials (
    id INTEGER PRIMARY KEY,
    sample TEXT NOT NULL,
    status TEXT NOT NULL,          -- waiting | running | succeeded | failed | stopped
    objective REAL,                -- the objective's value, when succeeded
    metric TEXT,                   -- the final metric (JSON)
    error TEXT,
    worker TEXT,
    created_at REAL NOT NULL,
    started_at REAL,
    ended_at REAL,
    attempts INTEGER NOT NULL DEFAULT 0,
    stopped_early INTEGER NOT NULL DEFAULT 0,
    objective_values TEXT,         -- every objective's value (JSON list), several objectives only
    output TEXT,                   -- the tail of a failed trial's output
    arch_key TEXT                  -- the architecture's canonical key
);
CREATE TABLE IF NOT EXISTS intermediates (
    trial_id INTEGER NOT NULL REFERENCES trials(id),
    step INTEGER NOT NULL,
    metric TEXT NOT NULL,
    objective REAL,
    at REAL NOT NULL,
    PRIMARY KEY (trial_id, step)
);
CREATE INDEX IF NOT EXISTS trials_status ON trials(status);
CREATE TABLE IF NOT EXISTS architectures (
    arch_key TEXT PRIMARY KEY,     -- trials.arch_key
    tree TEXT NOT NULL             -- the built model's module tree (JSON), for viewers
);
"""
_STATEMENTS = [s.strip() for s in _SCHEMA.split(";") if s.strip()]

#: Columns added after the first release, for ``ALTER TABLE`` on older stores.
_ADDED_COLUMNS = (
    ("stopped_early", "INTEGER NOT NULL DEFAULT 0"),
    ("objective_values", "TEXT"),
    ("output", "TEXT"),
    ("arch_key", "TEXT"),
)
_BASE_COLUMNS = "id, sample, status, objective, metric, error, worker, created_at, started_at, ended_at, attempts"
_DEFAULTS = {"stopped_early": "0", "objective_values": "NULL", "output": "NULL", "arch_key": "NULL"}
#: Every status a trial can have. ``stopped``: an early-stopping rule ended it; its
#: metric is its last result, kept, but it does not rank among the best (as Optuna's
#: pruned trials do not): it never ran its full budget.
STATUSES = ("waiting", "running", "succeeded", "failed", "stopped")
#: A trial's status as read: stores of earlier archsmith releases recorded an
#: early-stopped trial as ``succeeded`` with ``stopped_early`` set.
_STATUS_READ = "(CASE WHEN status = 'succeeded' AND stopped_early = 1 THEN 'stopped' ELSE status END)"


@dataclass
class TrialRecord:
    """One row of the trials table, decoded.

    ``status``: ``waiting``, ``running``, ``succeeded``, ``failed`` or ``stopped``
    (ended by an early-stopping rule; ``objective`` and ``metric`` hold its last
    result, and it is not ranked among the best trials)."""

    id: int
    sample: dict[str, Any]
    status: str
    objective: float | None
    metric: Any
    error: str | None
    worker: str | None
    created_at: float
    started_at: float | None
    ended_at: float | None
    attempts: int
    stopped_early: bool = False
    objective_values: tuple[float, ...] | None = None
    output: str | None = None
    arch_key: str | None = None

    @property
    def values(self) -> tuple[float, ...] | None:
        """Every objective's value (``(objective,)`` with one objective); ``None``
        unless the trial succeeded."""
        if self.objective_values is not None:
            return self.objective_values
        return None if self.objective is None else (self.objective,)

    @property
    def duration(self) -> float | None:
        if self.started_at is None or self.ended_at is None:
            return None
        return self.ended_at - self.started_at


def find_store(path: str | Path) -> Path:
    """The store file of an experiment directory (or the file itself)."""
    p = Path(path)
    candidate = p / STORE_FILE if p.is_dir() else p
    if not candidate.is_file():
        raise StoreError(f"{str(path)!r} is not an archsmith experiment (no {STORE_FILE} in it)")
    return candidate


class Store:
    """Read and write one experiment's SQLite file.

    ``lock_patience``: seconds a write waits for a lock held by another program
    (default :data:`LOCK_PATIENCE`), reporting on stderr while it waits.
    """

    def __init__(self, path: str | Path, *, readonly: bool = False, lock_patience: float | None = None) -> None:
        self.path = Path(path)
        self.readonly = readonly
        self.lock_patience = LOCK_PATIENCE if lock_patience is None else lock_patience
        self._opened = False
        self.conn = self._open_readonly() if readonly else self._open_writable()
        try:
            tables = {r[0] for r in self._rows("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if "trials" not in tables:
                raise StoreError(f"{str(self.path)!r} is not an archsmith experiment store (it has no trials table)")
            # A read-only store of an older archsmith lacks the newer columns: read their defaults.
            have = {row[1] for row in self._rows("PRAGMA table_info(trials)")}
            added = (name if name in have else f"{default} AS {name}" for name, default in _DEFAULTS.items())
            self._status = _STATUS_READ if "stopped_early" in have else "status"
            self._has_architectures = "architectures" in tables
            self._columns = ", ".join([_BASE_COLUMNS.replace("status", f"{self._status} AS status", 1), *added])
            #: The random id :meth:`create` gave this store (None for a store of an older archsmith).
            self.store_id: str | None = self.get_meta("store_id")
            self._identity = file_id(self.path)
            # The WAL and its index this connection uses, by name beside the file: unlinked
            # if the file is deleted or replaced, so that they are never paired with another.
            self._sidecars = [] if readonly else [(p, file_id(p)) for p in sidecars(self.path)]
            self._opened = True
        except BaseException:
            self.conn.close()
            raise

    @classmethod
    def create(cls, path: str | Path, meta: dict[str, Any], **kwargs: Any) -> Store:
        """Create a store at ``path`` holding the schema and ``meta`` (plus a random
        ``store_id``), all at once: it is written to a temporary file beside ``path``,
        flushed, and only then given its name, so a creation killed at any point
        leaves either no store or a complete one. Refuses an existing ``path``.
        ``kwargs`` go to ``Store(path, ...)``, which opens it."""
        path = Path(path)
        if path.exists():
            raise StoreError(f"{path} already exists: resume it, or choose another directory for a new experiment")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            remove_stale_creations(path)
            for sidecar in sidecars(path):  # a deleted store's WAL would be replayed into the new one
                sidecar.unlink(missing_ok=True)
        except OSError as e:
            raise cannot_create(path, e) from e
        rows = {**meta, "schema_version": SCHEMA_VERSION, "store_id": uuid.uuid4().hex}

        def fill(conn: sqlite3.Connection) -> None:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("BEGIN IMMEDIATE")
            for statement in _STATEMENTS:
                conn.execute(statement)
            conn.executemany(
                "INSERT INTO meta (key, value) VALUES (?, ?)", [(k, json.dumps(v)) for k, v in rows.items()]
            )
            conn.execute("COMMIT")

        try:
            write_new(path, fill)
        except FileExistsError:
            raise StoreError(f"{path} was created by another process meanwhile: resume it instead") from None
        except (OSError, sqlite3.Error) as e:
            raise cannot_create(path, e) from e
        return cls(path, **kwargs)

    def _open_readonly(self) -> sqlite3.Connection:
        return connect_readonly(find_store(self.path))

    def _open_writable(self) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise cannot_create(self.path, e) from e
        reason = unwritable_reason(self.path)
        if reason is not None:
            raise readonly_error(reason)
        self.conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False)
        try:
            retry_locked(self._prepare, self.path, self.lock_patience)
        except BaseException:
            self.conn.close()
            raise
        return self.conn

    def _prepare(self) -> None:
        """WAL mode, and the schema brought up to date; no write lock when it is."""
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across process crashes
        tables = {r[0] for r in self.conn.execute("SELECT name FROM sqlite_master")}
        columns = {r[1] for r in self.conn.execute("PRAGMA table_info(trials)")}
        keys = {r[0] for r in self.conn.execute("SELECT key FROM meta")} if "meta" in tables else set()
        if (
            tables >= {"meta", "trials", "intermediates", "trials_status", "architectures"}
            and columns >= {c for c, _ in _ADDED_COLUMNS}
            and keys >= {"schema_version", "store_id"}
        ):
            return
        with self.transaction():
            for statement in _STATEMENTS:
                self.conn.execute(statement)
            have = {row[1] for row in self.conn.execute("PRAGMA table_info(trials)")}
            for column, kind in _ADDED_COLUMNS:  # a store written by an older archsmith
                if column not in have:
                    self.conn.execute(f"ALTER TABLE trials ADD COLUMN {column} {kind}")
            for key, value in (("schema_version", SCHEMA_VERSION), ("store_id", uuid.uuid4().hex)):
                self.conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)", (key, json.dumps(value)))

    def close(self) -> None:
        if not self.readonly:
            self.check_identity()  # a file replaced since the last check: detach from it first
        self.conn.close()

    # SQLite calls: direct while they succeed; waits and translated errors after ------
    def _run(self, sql: str, params: tuple[Any, ...] = ()) -> sqlite3.Cursor:
        try:
            return self.conn.execute(sql, params)
        except sqlite3.DatabaseError as e:
            return self._failed(e, lambda: self.conn.execute(sql, params))

    def _rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        try:
            return self.conn.execute(sql, params).fetchall()
        except sqlite3.DatabaseError as e:
            return self._failed(e, lambda: self.conn.execute(sql, params).fetchall())

    def _failed(self, e: sqlite3.DatabaseError, again: Callable[[], Any]) -> Any:
        """Wait out a lock held by another program (not inside a transaction, which
        holds the locks it needs), or raise the StoreError for ``e``.

        A read-only store that opened as a store but is damaged further in raises
        SQLite's own error: the CLI tells that case apart (exit 1, docs/cli.md)."""
        if self.readonly and self._opened and not is_locked(e):
            raise e
        if self.conn.in_transaction:
            raise store_error(e, self.path, writing=not self.readonly) from e
        return retry_locked(again, self.path, self.lock_patience, writing=not self.readonly)

    # Identity ----------------------------------------------------------------------
    def check_identity(self) -> str | None:
        """None while ``self.path`` is still the file this connection uses; else what
        happened to it (deleted, or replaced by another file). A ``stat``: cheap."""
        now = file_id(self.path)
        if now == self._identity:
            return None
        # SQLite keeps writing our WAL under its name: a file put in our file's place (or
        # one created there later) would read our frames as its own. Only our open
        # descriptors need them now.
        for sidecar, ident in self._sidecars:
            if ident is not None and file_id(sidecar) == ident:
                sidecar.unlink(missing_ok=True)
        if now is None:
            return f"{self.path} was deleted while the run was writing it"
        return f"{self.path} was replaced by another file while the run was writing it"

    def rescue(self, dest: str | Path) -> Path:
        """Copy the database this connection has open to the new file ``dest``, even
        after its file was deleted (the open connection keeps it alive). Call it
        outside a transaction."""
        dest = Path(dest)
        if dest.exists():
            raise StoreError(f"cannot rescue {self.path} to {dest}: it exists; choose a new path")
        dest.parent.mkdir(parents=True, exist_ok=True)

        def fill(target: sqlite3.Connection) -> None:
            self.conn.backup(target)
            target.execute("PRAGMA journal_mode=WAL")

        try:
            write_new(dest, fill)
        except (OSError, sqlite3.Error) as e:
            raise StoreError(f"cannot rescue {self.path} to {dest}: {e}") from e
        return dest

    # Transactions ------------------------------------------------------------------
    def transaction(self) -> _Transaction:
        """``with store.transaction():`` groups writes so they land together or not at
        all; a transaction inside another joins it."""
        return _Transaction(self)

    # Meta --------------------------------------------------------------------------
    def set_meta(self, key: str, value: Any) -> None:
        self._run("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, json.dumps(value)))

    def get_meta(self, key: str, default: Any = None) -> Any:
        rows = self._rows("SELECT value FROM meta WHERE key = ?", (key,))
        return default if not rows else json.loads(rows[0][0])

    # Trials ------------------------------------------------------------------------
    def add_trial(self, sample: dict[str, Any], arch_key: str | None = None) -> int:
        cur = self._run(
            "INSERT INTO trials (sample, status, created_at, arch_key) VALUES (?, 'waiting', ?, ?)",
            (dumps_arch(sample, indent=None), time.time(), arch_key),
        )
        assert cur.lastrowid is not None
        return cur.lastrowid

    def record_architecture(self, arch_key: str, tree: Any) -> None:
        """Keep the module tree of the architecture ``arch_key`` (once: the same
        architecture builds the same tree)."""
        self._run(
            "INSERT OR IGNORE INTO architectures (arch_key, tree) VALUES (?, ?)",
            (arch_key, json.dumps(tree, separators=(",", ":"))),
        )

    def architecture(self, trial_id: int) -> Any:
        """The module tree recorded for the trial's architecture, or None (none
        recorded, or a store of an archsmith that kept it in a file)."""
        if not self._has_architectures:
            return None
        rows = self._rows(
            "SELECT a.tree FROM trials t JOIN architectures a ON a.arch_key = t.arch_key WHERE t.id = ?", (trial_id,)
        )
        return json.loads(rows[0][0]) if rows else None

    def mark_running(self, trial_id: int, worker: str | None, at: float) -> None:
        self._run(
            "UPDATE trials SET status = 'running', worker = ?, started_at = ?, attempts = attempts + 1 WHERE id = ?",
            (worker, at, trial_id),
        )

    def add_intermediate(self, trial_id: int, step: int, metric: Any, objective: float | None, at: float) -> None:
        self._run(
            "INSERT OR REPLACE INTO intermediates (trial_id, step, metric, objective, at) VALUES (?, ?, ?, ?, ?)",
            (trial_id, step, json.dumps(metric), objective, at),
        )

    def finish_trial(
        self,
        trial_id: int,
        status: str,
        *,
        metric: Any = None,
        objective: float | None = None,
        error: str | None = None,
        worker: str | None = None,
        at: float | None = None,
        stopped_early: bool = False,
        values: list[float] | tuple[float, ...] | None = None,
        output: str | None = None,
    ) -> None:
        self._run(
            "UPDATE trials SET status = ?, metric = ?, objective = ?, error = ?, worker = COALESCE(?, worker), "
            "ended_at = ?, started_at = COALESCE(started_at, ?), stopped_early = ?, objective_values = ?, "
            "output = ? WHERE id = ?",
            (
                status,
                None if metric is None else json.dumps(metric),
                objective,
                error,
                worker,
                at,
                at,
                int(stopped_early),
                None if values is None else json.dumps(list(values)),
                output,
                trial_id,
            ),
        )

    def delete_trials(self) -> None:
        """Remove every trial, its intermediate results and recorded module trees."""
        with self.transaction():
            self._run("DELETE FROM intermediates")
            self._run("DELETE FROM trials")
            self._run("DELETE FROM architectures")

    def requeue_unfinished(self, cancelled: bool = False) -> list[int]:
        """Trials that were waiting or running when a run ended go back to waiting.

        ``cancelled``: the run itself cancelled the running ones (Ctrl-C, shutdown), so
        their last attempt does not count against them.
        """
        unfinished = "status IN ('waiting', 'running')"
        with self.transaction():
            ids = [r[0] for r in self._rows(f"SELECT id FROM trials WHERE {unfinished} ORDER BY id")]
            if cancelled:
                self._run("UPDATE trials SET attempts = MAX(attempts - 1, 0) WHERE status = 'running'")
            self._run(f"UPDATE trials SET status = 'waiting', worker = NULL, started_at = NULL WHERE {unfinished}")
            self._run("DELETE FROM intermediates WHERE trial_id IN (SELECT id FROM trials WHERE status = 'waiting')")
        return ids

    def fail_exhausted(self, max_attempts: int, reason: str) -> list[int]:
        """Mark the waiting or running trials that have had ``max_attempts`` attempts
        as failed, with ``reason`` as their error (``{attempts}`` in it is replaced by
        their count); returns their ids."""
        now = time.time()
        with self.transaction():
            rows = self._rows(
                "SELECT id, attempts FROM trials WHERE status IN ('waiting', 'running') AND attempts >= ? ORDER BY id",
                (max_attempts,),
            )
            for trial_id, attempts in rows:
                self._run(
                    "UPDATE trials SET status = 'failed', error = ?, ended_at = ?, "
                    "started_at = COALESCE(started_at, ?) WHERE id = ?",
                    (reason.replace("{attempts}", str(attempts)), now, now, trial_id),
                )
        return [trial_id for trial_id, _ in rows]

    def trials(self, status: str | None = None) -> list[TrialRecord]:
        """Every trial (or those with ``status``), by id."""
        where = f" WHERE {self._status} = ?" if status else ""
        query = f"SELECT {self._columns} FROM trials{where} ORDER BY id"
        return [self._record(row) for row in self._rows(query, (status,) if status else ())]

    def trial_rows(
        self, status: str | None = None, *, limit: int | None = None, offset: int = 0
    ) -> Iterator[TrialRecord]:
        """Trials by id, decoded one at a time (a long listing starts at once and
        holds one row in memory); ``limit``/``offset`` page through them."""
        where = f" WHERE {self._status} = ?" if status else ""
        query = f"SELECT {self._columns} FROM trials{where} ORDER BY id LIMIT ? OFFSET ?"
        params = (*((status,) if status else ()), -1 if limit is None else limit, offset)
        try:
            cursor = self.conn.execute(query, params)
        except sqlite3.DatabaseError as e:
            cursor = self._failed(e, lambda: self.conn.execute(query, params))
        for row in cursor:
            yield self._record(row)

    def count(self, status: str | None = None) -> int:
        """How many trials (with ``status``)."""
        where = f" WHERE {self._status} = ?" if status else ""
        return int(self._rows(f"SELECT COUNT(*) FROM trials{where}", (status,) if status else ())[0][0])

    def trial(self, trial_id: int) -> TrialRecord:
        rows = self._rows(f"SELECT {self._columns} FROM trials WHERE id = ?", (trial_id,))
        if not rows:
            raise StoreError(f"no trial {trial_id} in {self.path}")
        return self._record(rows[0])

    def intermediates(self, trial_id: int) -> list[tuple[int, Any, float | None]]:
        rows = self._rows(
            "SELECT step, metric, objective FROM intermediates WHERE trial_id = ? ORDER BY step", (trial_id,)
        )
        return [(step, json.loads(metric), objective) for step, metric, objective in rows]

    def counts(self) -> dict[str, int]:
        """Trials per status (every status in :data:`STATUSES`, zero included)."""
        out = dict.fromkeys(STATUSES, 0)
        for status, n in self._rows(f"SELECT {self._status}, COUNT(*) FROM trials GROUP BY 1"):
            out[status] = n
        return out

    def best(self, direction: str, k: int = 1) -> list[TrialRecord]:
        order = "DESC" if direction == "maximize" else "ASC"
        rows = self._rows(
            f"SELECT {self._columns} FROM trials WHERE {self._status} = 'succeeded' AND objective IS NOT NULL "
            f"ORDER BY objective {order}, id LIMIT ?",
            (k,),
        )
        return [self._record(row) for row in rows]

    @staticmethod
    def _record(row: tuple[Any, ...]) -> TrialRecord:
        (tid, sample, status, objective, metric, error, worker, created, started, ended, attempts, stopped, values) = (
            row[:13]
        )
        return TrialRecord(
            tid,
            loads_arch(sample),
            status,
            objective,
            None if metric is None else json.loads(metric),
            error,
            worker,
            created,
            started,
            ended,
            attempts,
            bool(stopped),
            None if values is None else tuple(json.loads(values)),
            row[13],
            row[14],
        )


class _Transaction:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.joined = False

    def __enter__(self) -> None:
        self.joined = self.store.conn.in_transaction
        if not self.joined:
            self.store._run("BEGIN IMMEDIATE")  # waits out another program's write lock

    def __exit__(self, exc_type: Any, *rest: Any) -> None:
        conn = self.store.conn
        if self.joined or not conn.in_transaction:  # joined an outer one, or SQLite rolled back already
            return
        if exc_type is not None:
            conn.execute("ROLLBACK")
            return
        try:
            conn.execute("COMMIT")
        except sqlite3.DatabaseError as e:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise store_error(e, self.store.path, writing=True) from e


def iter_experiments(root: str | Path) -> Iterator[Path]:
    """Experiment directories directly under ``root``."""
    base = Path(root)
    if not base.is_dir():
        return
    for child in sorted(base.iterdir()):
        if (child / STORE_FILE).is_file():
            yield child

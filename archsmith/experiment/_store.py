"""The experiment store: one SQLite file (WAL) per experiment.

Only the driver writes; the CLI and the dashboard open it read-only, and WAL lets
them read while a run writes. Samples and metrics are JSON (``dumps_arch`` keeps
tuples exact).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from archsmith.space import ArchsmithError, dumps_arch, loads_arch

STORE_FILE = "experiment.db"
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS trials (
    id INTEGER PRIMARY KEY,
    sample TEXT NOT NULL,
    status TEXT NOT NULL,          -- waiting | running | succeeded | failed
    objective REAL,                -- the objective's value, when succeeded
    metric TEXT,                   -- the final metric (JSON)
    error TEXT,
    worker TEXT,
    created_at REAL NOT NULL,
    started_at REAL,
    ended_at REAL,
    attempts INTEGER NOT NULL DEFAULT 0,
    stopped_early INTEGER NOT NULL DEFAULT 0,
    objective_values TEXT          -- every objective's value (JSON list), several objectives only
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
"""


#: Columns added after the first release, for ``ALTER TABLE`` on older stores.
_ADDED_COLUMNS = (("stopped_early", "INTEGER NOT NULL DEFAULT 0"), ("objective_values", "TEXT"))
_BASE_COLUMNS = "id, sample, status, objective, metric, error, worker, created_at, started_at, ended_at, attempts"
_DEFAULTS = {"stopped_early": "0", "objective_values": "NULL"}


class StoreError(ArchsmithError, RuntimeError):
    """A path is not an experiment store, or the store is unusable."""


@dataclass
class TrialRecord:
    """One row of the trials table, decoded."""

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
    """Read and write one experiment's SQLite file."""

    def __init__(self, path: str | Path, *, readonly: bool = False) -> None:
        self.path = Path(path)
        self.readonly = readonly
        if readonly:
            uri = f"file:{find_store(self.path).as_posix()}?mode=ro"
            self.conn = sqlite3.connect(uri, uri=True, timeout=30, check_same_thread=False)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across process crashes
            self.conn.executescript(_SCHEMA)
            self._add_missing_columns()
            if self.get_meta("schema_version") is None:
                self.set_meta("schema_version", SCHEMA_VERSION)
        try:
            self.conn.execute("SELECT 1 FROM trials LIMIT 1")
        except sqlite3.DatabaseError as e:
            raise StoreError(f"{str(self.path)!r} is not an archsmith experiment store: {e}") from None
        # A read-only store of an older archsmith lacks the newer columns: read their defaults.
        have = {row[1] for row in self.conn.execute("PRAGMA table_info(trials)")}
        added = (name if name in have else f"{default} AS {name}" for name, default in _DEFAULTS.items())
        self._columns = ", ".join([_BASE_COLUMNS, *added])

    def _add_missing_columns(self) -> None:
        """Bring a store written by an older archsmith up to this schema."""
        have = {row[1] for row in self.conn.execute("PRAGMA table_info(trials)")}
        for column, kind in _ADDED_COLUMNS:
            if column not in have:
                self.conn.execute(f"ALTER TABLE trials ADD COLUMN {column} {kind}")

    def close(self) -> None:
        self.conn.close()

    # Transactions ------------------------------------------------------------------
    def transaction(self) -> _Transaction:
        """``with store.transaction():`` groups writes so they land together or not at all."""
        return _Transaction(self.conn)

    # Meta --------------------------------------------------------------------------
    def set_meta(self, key: str, value: Any) -> None:
        self.conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, json.dumps(value)))

    def get_meta(self, key: str, default: Any = None) -> Any:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return default if row is None else json.loads(row[0])

    # Trials ------------------------------------------------------------------------
    def add_trial(self, sample: dict[str, Any]) -> int:
        cur = self.conn.execute(
            "INSERT INTO trials (sample, status, created_at) VALUES (?, 'waiting', ?)",
            (dumps_arch(sample, indent=None), time.time()),
        )
        assert cur.lastrowid is not None
        return cur.lastrowid

    def mark_running(self, trial_id: int, worker: str | None, at: float) -> None:
        self.conn.execute(
            "UPDATE trials SET status = 'running', worker = ?, started_at = ?, attempts = attempts + 1 WHERE id = ?",
            (worker, at, trial_id),
        )

    def add_intermediate(self, trial_id: int, step: int, metric: Any, objective: float | None, at: float) -> None:
        self.conn.execute(
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
    ) -> None:
        self.conn.execute(
            "UPDATE trials SET status = ?, metric = ?, objective = ?, error = ?, worker = COALESCE(?, worker), "
            "ended_at = ?, started_at = COALESCE(started_at, ?), stopped_early = ?, objective_values = ? WHERE id = ?",
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
                trial_id,
            ),
        )

    def delete_trials(self) -> None:
        """Remove every trial and its intermediate results."""
        self.conn.execute("DELETE FROM intermediates")
        self.conn.execute("DELETE FROM trials")

    def requeue_unfinished(self) -> list[int]:
        """Trials that were waiting or running when a run died go back to waiting."""
        ids = [
            r[0] for r in self.conn.execute("SELECT id FROM trials WHERE status IN ('waiting', 'running') ORDER BY id")
        ]
        self.conn.execute(
            "UPDATE trials SET status = 'waiting', worker = NULL, started_at = NULL WHERE status IN ('waiting', 'running')"
        )
        self.conn.execute(
            "DELETE FROM intermediates WHERE trial_id IN (SELECT id FROM trials WHERE status = 'waiting')"
        )
        return ids

    def trials(self, status: str | None = None) -> list[TrialRecord]:
        query = f"SELECT {self._columns} FROM trials" + (" WHERE status = ?" if status else "") + " ORDER BY id"
        return [self._record(row) for row in self.conn.execute(query, (status,) if status else ())]

    def trial(self, trial_id: int) -> TrialRecord:
        row = self.conn.execute(f"SELECT {self._columns} FROM trials WHERE id = ?", (trial_id,)).fetchone()
        if row is None:
            raise StoreError(f"no trial {trial_id} in {self.path}")
        return self._record(row)

    def intermediates(self, trial_id: int) -> list[tuple[int, Any, float | None]]:
        rows = self.conn.execute(
            "SELECT step, metric, objective FROM intermediates WHERE trial_id = ? ORDER BY step", (trial_id,)
        )
        return [(step, json.loads(metric), objective) for step, metric, objective in rows]

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(("waiting", "running", "succeeded", "failed"), 0)
        for status, n in self.conn.execute("SELECT status, COUNT(*) FROM trials GROUP BY status"):
            out[status] = n
        return out

    def best(self, direction: str, k: int = 1) -> list[TrialRecord]:
        order = "DESC" if direction == "maximize" else "ASC"
        rows = self.conn.execute(
            f"SELECT {self._columns} FROM trials WHERE status = 'succeeded' AND objective IS NOT NULL "
            f"ORDER BY objective {order}, id LIMIT ?",
            (k,),
        )
        return [self._record(row) for row in rows]

    @staticmethod
    def _record(row: tuple[Any, ...]) -> TrialRecord:
        (tid, sample, status, objective, metric, error, worker, created, started, ended, attempts, stopped, values) = (
            row
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
        )


class _Transaction:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: Any, *rest: Any) -> None:
        self.conn.execute("COMMIT" if exc_type is None else "ROLLBACK")


def iter_experiments(root: str | Path) -> Iterator[Path]:
    """Experiment directories directly under ``root``."""
    base = Path(root)
    if not base.is_dir():
        return
    for child in sorted(base.iterdir()):
        if (child / STORE_FILE).is_file():
            yield child

"""Reading results out of an experiment's store, without its space or evaluator.

Everything here opens the store read-only and reads it as one consistent
snapshot, so it is safe on a run that is still writing (WAL lets a reader and the
driver work at once). The command line (``archsmith list / show / trials /
export``) is built on these functions; use them the same way from Python.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from archsmith.space import SpaceError, decode_arch, dumps_arch, encode_arch, pareto_front, pareto_order, read_json_file

from ._config import DEFAULT_ROOT
from ._store import STORE_FILE, TRIALS_DIR, Store, StoreError, TrialRecord, iter_experiments


def resolve_experiment(exp: str | os.PathLike[str], root: str | os.PathLike[str] | None = None) -> Path:
    """The store file of ``exp``: an experiment's directory, its ``experiment.db``,
    or the name of an experiment under ``root`` (default ``./archsmith-experiments``)."""
    path = Path(exp)
    if path.exists():
        if path.is_dir() and not (path / STORE_FILE).is_file():
            raise StoreError(f"{str(exp)!r} is not an archsmith experiment (no {STORE_FILE} in it)")
        return path / STORE_FILE if path.is_dir() else path
    base = Path(DEFAULT_ROOT if root is None else root)
    named = base / path / STORE_FILE
    if len(path.parts) == 1 and named.is_file():
        return named
    raise StoreError(
        f"{str(exp)!r} is not an archsmith experiment: no such directory, and no experiment of that name in {str(base)!r}"
    )


def trial_log(exp: str | os.PathLike[str], trial_id: int, root: str | os.PathLike[str] | None = None) -> Path:
    """Where the engines wrote what trial ``trial_id`` of ``exp`` printed (the file
    may not exist: a trial that printed nothing, or an engine that keeps no logs)."""
    return resolve_experiment(exp, root).parent / TRIALS_DIR / str(trial_id) / "output.log"


@contextmanager
def read_experiment(exp: str | os.PathLike[str], root: str | os.PathLike[str] | None = None) -> Iterator[Store]:
    """``with read_experiment(exp) as store:`` a read-only store, read as one snapshot.

    Every query inside the block sees the store as it was when the block began,
    even while the run writes. ``exp`` is resolved by :func:`resolve_experiment`.
    """
    store = Store(resolve_experiment(exp, root), readonly=True)
    try:
        store.conn.execute("BEGIN")  # a deferred read transaction: one snapshot, no lock on writers
        try:
            yield store
        finally:
            if store.conn.in_transaction:
                # ends the snapshot; on a damaged store the error already raised is the one to see
                with suppress(sqlite3.Error):
                    store.conn.execute("COMMIT")
    finally:
        store.close()


def direction_of(store: Store) -> str:
    """The stored objective direction (``"maximize"`` if the run never recorded one)."""
    config = store.get_meta("config") or {}
    return str(store.get_meta("direction", config.get("direction", "maximize")))


def objectives_of(store: Store) -> list[tuple[str, str]]:
    """``(name, direction)`` of each objective the run optimised."""
    names, directions = store.get_meta("objectives"), store.get_meta("directions")
    if isinstance(names, list) and isinstance(directions, list) and len(names) == len(directions) > 0:
        return [(str(n), str(d)) for n, d in zip(names, directions)]
    config = store.get_meta("config") or {}
    objective = store.get_meta("objective", config.get("objective", "default"))
    return [(str(objective), direction_of(store))]


def _scored(store: Store) -> list[TrialRecord]:
    return [t for t in store.trials("succeeded") if t.values is not None]


def top_trials(store: Store, k: int = 1) -> list[TrialRecord]:
    """The ``k`` best succeeded trials, best first by the stored direction; ties go to
    the lower trial id. Trials stopped early are not ranked (their last result is
    not a full run's, as Optuna leaves pruned trials out of ``best_trial``). With several objectives: by Pareto front, then crowding
    distance (NSGA-II's order), so the first trials are the front, spread out."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    objectives = objectives_of(store)
    if len(objectives) == 1:
        return store.best(objectives[0][1], k)
    trials = _scored(store)
    order = pareto_order([t.values for t in trials], [d for _, d in objectives], limit=k)  # type: ignore[misc]
    return [trials[i] for i in order]


def pareto_trials(store: Store) -> list[TrialRecord]:
    """The Pareto front: the succeeded trials (not those stopped early) no other
    trial beats on every objective, ordered by the first objective (best first), then trial id. With
    one objective: the trials that share the best value."""
    objectives = objectives_of(store)
    trials = _scored(store)
    if not trials:
        return []
    directions = [d for _, d in objectives]
    front = [trials[i] for i in pareto_front([t.values for t in trials], directions)]  # type: ignore[misc]
    sign = -1.0 if directions[0] == "maximize" else 1.0
    return sorted(front, key=lambda t: (sign * t.values[0], t.id))  # type: ignore[index]


@dataclass
class ExperimentSummary:
    """What ``archsmith list`` and ``archsmith show`` print about one experiment."""

    path: Path
    name: str
    status: str
    counts: dict[str, int] = field(default_factory=dict)
    objective: str = "default"
    direction: str = "maximize"
    best: TrialRecord | None = None
    #: every objective as ``(name, direction)``; more than one: a Pareto search
    objectives: list[tuple[str, str]] = field(default_factory=list)
    front: list[TrialRecord] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    created_at: float | None = None
    ended_at: float | None = None
    error: str | None = None

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def done(self) -> int:
        """Finished trials: succeeded, failed or stopped early."""
        return sum(self.counts.get(status, 0) for status in ("succeeded", "failed", "stopped"))

    @property
    def failed(self) -> int:
        return self.counts.get("failed", 0)

    @property
    def stopped(self) -> int:
        """Trials an early-stopping rule ended (not ranked among the best)."""
        return self.counts.get("stopped", 0)

    @property
    def max_trials(self) -> int | None:
        value = self.config.get("max_trials")
        return value if isinstance(value, int) else None


_SUMMARY_META = ("seed", "space", "strategy", "labels", "mode", "oneshot_history")


#: A running experiment whose driver has not written for this long is reported stale.
STALE_AFTER_SECONDS = 30.0


def run_status(store: Store) -> str:
    """The stored status; ``"stale"`` for a "running" one whose driver stopped
    writing its heartbeat (killed with SIGKILL, or its machine went away)."""
    status = str(store.get_meta("status", "created"))
    heartbeat = store.get_meta("heartbeat")
    if status == "running" and heartbeat is not None and time.time() - float(heartbeat) > STALE_AFTER_SECONDS:
        return "stale"
    return status


def summarize(store: Store) -> ExperimentSummary:
    """The experiment's status, trial counts, best trial and configuration."""
    directory = store.path.parent
    config = store.get_meta("config") or {}
    created = store.get_meta("created_at")
    if created is None:  # a store whose run never got going: its first trial, if any
        row = store.conn.execute("SELECT MIN(created_at) FROM trials").fetchone()
        created = row[0] if row else None
    best = top_trials(store, 1)
    objectives = objectives_of(store)
    return ExperimentSummary(
        path=directory,
        name=config.get("name") or directory.name,
        status=run_status(store),
        counts=store.counts(),
        objective=objectives[0][0],
        direction=objectives[0][1],
        best=best[0] if best else None,
        objectives=objectives,
        front=pareto_trials(store) if len(objectives) > 1 else [],
        config=config,
        meta={key: store.get_meta(key) for key in _SUMMARY_META},
        created_at=created,
        ended_at=store.get_meta("ended_at"),
    )


def list_experiments(root: str | os.PathLike[str] | None = None) -> list[ExperimentSummary]:
    """A summary of every experiment directly under ``root`` (default
    ``./archsmith-experiments``), by name. A store that cannot be read is listed
    with status ``"unreadable"`` and the reason in ``error``."""
    base = Path(DEFAULT_ROOT if root is None else root)
    if not base.is_dir():
        raise StoreError(f"{str(base)!r} is not a directory (experiments live in ./{DEFAULT_ROOT} unless configured)")
    out = []
    for directory in iter_experiments(base):
        try:
            with read_experiment(directory) as store:
                out.append(summarize(store))
        except (StoreError, sqlite3.Error, ValueError) as e:
            out.append(ExperimentSummary(directory, directory.name, "unreadable", error=str(e)))
    return out


def top_samples(
    exp: str | os.PathLike[str], k: int = 1, root: str | os.PathLike[str] | None = None
) -> list[dict[str, Any]]:
    """The samples of the ``k`` best trials of the experiment stored at ``exp``, best
    first; no model space needed. Fewer than ``k`` when fewer trials succeeded."""
    with read_experiment(exp, root) as store:
        return [t.sample for t in top_trials(store, k)]


# Lists of samples on disk -----------------------------------------------------------
def dumps_samples(samples: Sequence[Mapping[str, Any]], *, indent: int | None = 2) -> str:
    """Samples as a JSON list, each encoded as :func:`archsmith.save_arch` does
    (tuples stay tuples); :func:`loads_samples` reads it back exactly."""
    return json.dumps([encode_arch(s) for s in samples], indent=indent, allow_nan=False)


def _samples(data: Any) -> list[dict[str, Any]]:
    if isinstance(data, dict):
        return [decode_arch(data)]
    if not isinstance(data, list):
        raise SpaceError(f"a samples file holds a JSON list of samples, got {type(data).__name__}")
    return [decode_arch(item) for item in data]


def loads_samples(text: str) -> list[dict[str, Any]]:
    """Samples from JSON text: a list of samples, or one sample (a list of one)."""
    return _samples(json.loads(text))


def load_samples(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Read the samples of a file written by ``archsmith export`` (either shape) or
    by :func:`archsmith.save_arch`."""
    data = read_json_file(path, "samples file")
    try:
        return _samples(data)
    except SpaceError as e:
        raise SpaceError(f"samples file {str(path)!r}: {e}") from None


def export_text(samples: Sequence[Mapping[str, Any]], k: int = 1, *, as_list: bool | None = None) -> str:
    """The JSON text ``export_samples`` writes: for ``k == 1`` one sample object (the
    architecture file of :func:`archsmith.save_arch`), else a list, best first;
    ``as_list=True`` gives a list for ``k == 1`` too. The shape follows what was
    asked, never how many trials happened to succeed."""
    if as_list or (as_list is None and k != 1):
        return dumps_samples(samples)
    if len(samples) != 1:
        raise ValueError(f"one sample object needs exactly one sample, got {len(samples)}")
    return dumps_arch(samples[0])


def export_samples(
    exp: str | os.PathLike[str],
    k: int = 1,
    path: str | os.PathLike[str] | None = None,
    *,
    as_list: bool | None = None,
    root: str | os.PathLike[str] | None = None,
    pareto: bool = False,
) -> list[dict[str, Any]]:
    """The ``k`` best samples of a stored experiment, best first (ties to the lower
    trial id), written to ``path`` as JSON when given (see :func:`export_text`).
    ``pareto=True``: the whole Pareto front instead (``k`` ignored; always a list).

    ``k=1`` writes the file that :func:`archsmith.load_arch` and
    :func:`archsmith.fixed_arch` read; a list file reads back with
    :func:`load_samples`. Raises ``StoreError`` when no trial has succeeded.
    """
    with read_experiment(exp, root) as store:
        samples = [t.sample for t in (pareto_trials(store) if pareto else top_trials(store, k))]
        if not samples:
            what = "trials" if sum(store.counts().values()) == 0 else "succeeded trial"
            raise StoreError(f"experiment {str(exp)!r} has no {what} yet: there is nothing to export")
    if path is not None:
        text = dumps_samples(samples) if pareto else export_text(samples, k, as_list=as_list)
        Path(path).write_text(text + "\n", encoding="utf-8")
    return samples


# Trials as rows ---------------------------------------------------------------------
def error_summary(error: str | None) -> str:
    """A trial's error in one line: a traceback's exception line, else the first
    line (a crash or timeout reason, before the stack faulthandler wrote)."""
    if not error:
        return ""
    lines = [line.strip() for line in error.strip().splitlines() if line.strip()]
    if not lines:
        return ""
    return lines[-1] if lines[0].startswith("Traceback") else lines[0]


def _json_safe(value: Any) -> Any:
    """Non-finite floats (a trial may report NaN) as the strings ``"NaN"``,
    ``"Infinity"``, ``"-Infinity"``, so the result is strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def trial_row(trial: TrialRecord, now: float | None = None) -> dict[str, Any]:
    """A trial as plain JSON-ready data: the sample encoded as in architecture files
    (tuples as ``{"__tuple__": [...]}``), a non-finite metric as a string (strict
    JSON), times in seconds since the epoch, and
    ``elapsed``: the duration, or for a running trial the time it has run so far."""
    elapsed = trial.duration
    if elapsed is None and trial.status == "running" and trial.started_at is not None:
        elapsed = (time.time() if now is None else now) - trial.started_at
    return {
        "id": trial.id,
        "status": trial.status,
        "objective": trial.objective,
        "objective_values": None if trial.values is None else list(trial.values),
        "metric": _json_safe(trial.metric),
        "duration": trial.duration,
        "elapsed": elapsed,
        "worker": trial.worker,
        "attempts": trial.attempts,
        "created_at": trial.created_at,
        "started_at": trial.started_at,
        "ended_at": trial.ended_at,
        "sample": encode_arch(trial.sample),
        "error": trial.error,
    }

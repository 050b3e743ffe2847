"""The dashboard's data layer: read-only stores, the poll cache, traversal refusal,
malformed stores. Stores are generated through the real Store API."""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path

import pytest

from archsmith.dashboard._data import ExperimentData, ExperimentIndex, NotFound, Unreadable
from archsmith.experiment import STORE_FILE, Store

from ._runs import add_finished_trial, generate_store

TRIALS = 300


def files_of(root: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``root`` with its (mtime in ns, size)."""
    return {str(p.relative_to(root)): (p.stat().st_mtime_ns, p.stat().st_size) for p in root.rglob("*") if p.is_file()}


@pytest.fixture
def live(tmp_path: Path):
    """A store of 300 trials whose writer stays open, as a running driver's does."""
    writer = generate_store(tmp_path / "live", TRIALS, keep_open=True)
    assert writer is not None
    data = ExperimentData("live", tmp_path / "live")
    yield writer, data
    data.close()
    writer.close()


def test_a_poll_with_nothing_new_asks_sqlite_one_pragma(live) -> None:
    _, data = live
    rows, complete = data.changed_since(None)
    assert complete and len(rows) == TRIALS
    statements: list[str] = []
    data.store.conn.set_trace_callback(statements.append)
    rows, complete = data.changed_since(data.version)
    assert (rows, complete) == ([], False)
    assert statements == ["PRAGMA data_version"]  # O(1): no trial is read


def test_polls_bring_new_trials_and_trials_that_finished(live) -> None:
    import random

    writer, data = live
    data.refresh()
    first = data.version
    rng = random.Random(5)
    with writer.transaction():
        new = [add_finished_trial(writer, rng) for _ in range(10)]
        running = writer.add_trial({"width": 16})
        writer.mark_running(running, "w", 1.0)
    statements: list[str] = []
    data.store.conn.set_trace_callback(statements.append)
    rows, complete = data.changed_since(first)
    assert not complete and [r["id"] for r in rows] == [*new, running]
    assert not any("FROM trials ORDER BY" in s for s in statements)  # never the whole table
    assert rows[-1]["status"] == "running" and rows[-1]["steps"] == 0
    second = data.version
    writer.add_intermediate(running, 0, {"val_acc": 0.5}, 0.5, 2.0)
    rows, _ = data.changed_since(second)
    assert [(r["id"], r["steps"]) for r in rows] == [(running, 1)]
    writer.finish_trial(running, "succeeded", metric={"val_acc": 0.9}, objective=0.9, at=3.0)
    rows, complete = data.changed_since(data.version)
    assert not complete and [(r["id"], r["status"], r["objectives"]) for r in rows] == [
        (running, "succeeded", {"val_acc": 0.9})
    ]
    # the first version still answers everything that changed since, once each
    rows, complete = data.changed_since(first)
    assert not complete and [r["id"] for r in rows] == [*new, running]
    assert data.counts()["total"] == TRIALS + 11


@pytest.mark.parametrize("version", ["nonsense", "abc.1", "", "x.99999"])
def test_an_unknown_or_stale_version_gets_everything(live, version: str) -> None:
    _, data = live
    rows, complete = data.changed_since(version)
    assert complete and len(rows) == TRIALS


def test_a_finished_store_is_read_without_creating_or_touching_a_file(tmp_path: Path) -> None:
    generate_store(tmp_path / "done", 50)
    assert not (tmp_path / "done" / f"{STORE_FILE}-wal").exists()
    before = files_of(tmp_path)
    index = ExperimentIndex(tmp_path)
    data = index.get("done")
    assert len(data.changed_since(None)[0]) == 50
    assert data.summary()["counts"]["total"] == 50 and data.decisions()
    index.close()
    assert files_of(tmp_path) == before


def test_a_finished_store_opened_immutable_sees_a_resumed_run(tmp_path: Path) -> None:
    import random

    generate_store(tmp_path / "done", 20)
    data = ExperimentData("done", tmp_path / "done")
    version = data.version if data.changed_since(None) else ""
    writer = Store(tmp_path / "done" / STORE_FILE)  # a resumed run
    try:
        add_finished_trial(writer, random.Random(0))
        rows, complete = data.changed_since(version)
        assert complete and len(rows) == 21  # reopened: every trial, under a new version
    finally:
        writer.close()
        data.close()


def test_a_live_store_is_read_without_creating_a_file(live, tmp_path: Path) -> None:
    _, data = live
    names = set(files_of(tmp_path))
    data.changed_since(None)
    data.summary()
    assert set(files_of(tmp_path)) == names


# Malformed stores ------------------------------------------------------------------------
def _valid(tmp_path: Path) -> Path:
    generate_store(tmp_path / "source", 30)
    return tmp_path / "source" / STORE_FILE


def test_garbage_truncated_and_empty_stores_are_unreadable_with_the_reason(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    source = _valid(tmp_path).read_bytes()
    for key, content in {
        "garbage": b"not a database at all " * 200,
        "truncated": source[: len(source) // 2],
        "empty": b"",
        "header-only": source[:100],
    }.items():
        (root / key).mkdir()
        (root / key / STORE_FILE).write_bytes(content)
    (root / "good").mkdir()
    (root / "good" / STORE_FILE).write_bytes(source)
    index = ExperimentIndex(root)
    summaries = {s["key"]: s for s in index.summaries()}
    assert summaries["good"]["error"] is None and summaries["good"]["counts"]["total"] == 30
    for key in ("garbage", "truncated", "empty", "header-only"):
        assert summaries[key]["status"] == "unreadable", key
        assert str(root / key / STORE_FILE) in summaries[key]["error"]
        with pytest.raises(Unreadable):
            index.get(key).changed_since(None)
    index.close()


def test_a_store_locked_mid_write_is_unreadable_then_read_once_released(tmp_path: Path) -> None:
    """A rollback-journal store whose writer holds its exclusive lock (a write in
    progress): the request says so after a second, and a later one reads it."""
    path = _valid(tmp_path)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=DELETE")
    conn.execute("BEGIN EXCLUSIVE")
    conn.execute("INSERT INTO meta (key, value) VALUES ('x', '1')")
    data = ExperimentData("source", path.parent)
    try:
        with pytest.raises(Unreadable, match="locked"):
            data.changed_since(None)
        conn.execute("COMMIT")
        assert len(data.changed_since(None)[0]) == 30
    finally:
        conn.close()
        data.close()


def test_a_store_replaced_while_served_is_read_afresh(tmp_path: Path) -> None:
    generate_store(tmp_path / "a", 5)
    generate_store(tmp_path / "b", 7, seed=1)
    data = ExperimentData("a", tmp_path / "a")
    assert len(data.changed_since(None)[0]) == 5
    os.replace(tmp_path / "b" / STORE_FILE, tmp_path / "a" / STORE_FILE)
    rows, complete = data.changed_since(data.version)
    assert complete and len(rows) == 7
    (tmp_path / "a" / STORE_FILE).unlink()
    with pytest.raises(Unreadable, match="gone"):
        data.changed_since(None)
    data.close()


# Discovery and traversal ------------------------------------------------------------------
def test_discovery_and_refused_keys(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    generate_store(root / "one", 3)
    generate_store(root / ".hidden", 3)
    generate_store(tmp_path / "outside", 3)
    (root / "not-an-experiment").mkdir()
    (root / "link-out").symlink_to(tmp_path / "outside")  # a directory leading outside the root
    (root / "db-out").mkdir()
    (root / "db-out" / STORE_FILE).symlink_to(tmp_path / "outside" / STORE_FILE)  # a store file leading outside
    (root / "link-in").symlink_to(root / "one")  # inside the root: served
    index = ExperimentIndex(root)
    assert sorted(index.discover()) == ["link-in", "one"]
    for key in (
        "..",
        ".",
        "",
        "../outside",
        "/etc",
        str(tmp_path / "outside"),
        "one/..",
        ".hidden",
        "link-out",
        "db-out",
        "a\0b",
    ):
        with pytest.raises(NotFound):
            index.get(key)
    assert index.get("one").summary()["counts"]["total"] == 3


def test_an_experiment_directory_itself_is_the_root(tmp_path: Path) -> None:
    generate_store(tmp_path / "solo", 4)
    index = ExperimentIndex(tmp_path / "solo")
    assert list(index.discover()) == ["solo"] and index.get("solo").summary()["counts"]["total"] == 4
    with pytest.raises(NotADirectoryError, match="not a directory"):
        ExperimentIndex(tmp_path / "solo" / STORE_FILE)


def test_a_store_deleted_between_listing_and_reading(tmp_path: Path) -> None:
    generate_store(tmp_path / "gone", 2)
    index = ExperimentIndex(tmp_path)
    data = index.get("gone")
    shutil.rmtree(tmp_path / "gone")
    with pytest.raises(Unreadable):
        data.summary()
    with pytest.raises(NotFound):
        index.get("gone")

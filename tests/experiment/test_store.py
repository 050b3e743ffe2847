"""The store: one SQLite file per experiment, in WAL mode, holding the config, each
trial's sample, status, intermediate and final metrics, timings, worker and error
text, and the strategy's state. A new run never overwrites an existing one."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest

from archsmith.experiment import STORE_FILE, ExperimentError, Store, StoreError
from archsmith.strategy import sample_key

from ._experiment_helpers import deadline, make_experiment, read_meta, read_trials


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    workdir = tmp_path_factory.mktemp("store") / "exp"
    with deadline(60):
        make_experiment(workdir, max_trials=4, metric="dict", objective="acc", faults={2: "raise"}).run()
    return workdir


def test_one_sqlite_file_in_wal_mode(finished_run: Path) -> None:
    files = {p.name for p in finished_run.iterdir()}
    assert STORE_FILE in files
    assert files <= {STORE_FILE, f"{STORE_FILE}-wal", f"{STORE_FILE}-shm"}, f"unexpected files: {files}"
    conn = sqlite3.connect(finished_run / STORE_FILE)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        conn.close()


def test_each_experiment_has_its_own_file(tmp_path: Path) -> None:
    with deadline(60):
        make_experiment(tmp_path / "a", max_trials=2).run()
        make_experiment(tmp_path / "b", max_trials=3).run()
    assert len(read_trials(tmp_path / "a")) == 2
    assert len(read_trials(tmp_path / "b")) == 3


def test_store_holds_the_config(finished_run: Path) -> None:
    config = read_meta(finished_run, "config")
    assert config["max_trials"] == 4 and config["objective"] == "acc" and config["engine"] == "inprocess"
    assert config["workdir"] == str(finished_run)
    assert read_meta(finished_run, "seed") == 0
    assert read_meta(finished_run, "direction") == "maximize"
    assert read_meta(finished_run, "labels") == ["width", "scale"]
    assert read_meta(finished_run, "status") == "done"


def test_store_holds_every_trial_in_full(finished_run: Path) -> None:
    trials = read_trials(finished_run)
    assert [t.id for t in trials] == [1, 2, 3, 4]
    assert [t.status for t in trials] == ["succeeded", "failed", "succeeded", "succeeded"]
    store = Store(finished_run / STORE_FILE, readonly=True)
    try:
        for t in trials:
            assert set(t.sample) == {"width", "scale"}
            expected = t.sample["width"] * t.sample["scale"]
            assert t.worker == "main"
            assert t.created_at <= t.started_at <= t.ended_at  # type: ignore[operator]
            assert t.attempts == 1
            steps = store.intermediates(t.id)
            assert [s for s, _, _ in steps] == [0, 1]
            assert steps[1][1] == {"acc": expected, "loss": -expected}
            assert steps[1][2] == expected  # the objective of each intermediate result
            if t.status == "succeeded":
                assert t.metric == {"acc": expected, "loss": -expected}
                assert t.objective == expected
                assert t.error is None
            else:
                assert t.objective is None
                assert "RuntimeError: trial 2 failed on purpose" in (t.error or "")
    finally:
        store.close()


def test_store_holds_the_strategy_state(finished_run: Path) -> None:
    state = read_meta(finished_run, "strategy_state")
    assert "rng" in state
    json.dumps(state)  # JSON all the way down
    assert sorted(state["seen"]) == sorted(sample_key(t.sample) for t in read_trials(finished_run))


def test_the_store_is_plain_sqlite_readable_without_archsmith(finished_run: Path) -> None:
    conn = sqlite3.connect(f"file:{finished_run / STORE_FILE}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT id, status, error FROM trials ORDER BY id").fetchall()
    finally:
        conn.close()
    assert [(i, s) for i, s, _ in rows] == [(1, "succeeded"), (2, "failed"), (3, "succeeded"), (4, "succeeded")]
    assert "failed on purpose" in rows[1][2]


def test_a_second_run_in_the_same_workdir_is_refused_and_overwrites_nothing(finished_run: Path) -> None:
    db = finished_run / STORE_FILE
    listing = sorted(p.name for p in finished_run.iterdir())
    content, mtime = db.read_bytes(), os.stat(db).st_mtime_ns
    trials = read_trials(finished_run)

    with pytest.raises(ExperimentError, match=r"resume=True"):
        make_experiment(finished_run, max_trials=4, metric="dict", objective="acc").run()
    with pytest.raises(ExperimentError, match=r"resume=True"):  # even with another config or space
        make_experiment(finished_run, widths=(7, 8), max_trials=9).run()

    assert sorted(p.name for p in finished_run.iterdir()) == listing
    assert db.read_bytes() == content
    assert os.stat(db).st_mtime_ns == mtime
    assert read_trials(finished_run) == trials


def test_a_path_that_is_not_a_store_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / STORE_FILE).write_text("not a database")
    with pytest.raises(StoreError, match="not an archsmith experiment"):
        Store(tmp_path / STORE_FILE, readonly=True)
    with pytest.raises(StoreError, match="not an archsmith experiment"):
        Store(tmp_path / "missing", readonly=True)

"""The store: one SQLite file per experiment, in WAL mode, holding the config, each
trial's sample, status, intermediate and final metrics, timings, worker and error
text, and the strategy's state. A new run never overwrites an existing one."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest

from archsmith.experiment import STORE_FILE, ExperimentError, Store, StoreError, TrialRecord
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
    # Beside the store only its WAL files, and the directory of the trials' output logs.
    assert files <= {STORE_FILE, f"{STORE_FILE}-wal", f"{STORE_FILE}-shm", "trials"}, f"unexpected files: {files}"
    assert not (finished_run / "trials").is_file()
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
    # What the strategy has seen is rebuilt from the stored trials on resume (restore_history),
    # so the state holds no copy of it; an older state's copy matched the trials.
    assert "seen" not in state or sorted(state["seen"]) == sorted(
        sample_key(t.sample) for t in read_trials(finished_run)
    )


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


# The store's API, on real files ------------------------------------------------------------
# The trials table of the first release, and of the release before output/arch_key.
_FIRST_TRIALS = (
    "CREATE TABLE trials (id INTEGER PRIMARY KEY, sample TEXT NOT NULL, status TEXT NOT NULL, objective REAL, "
    "metric TEXT, error TEXT, worker TEXT, created_at REAL NOT NULL, started_at REAL, ended_at REAL, "
    "attempts INTEGER NOT NULL DEFAULT 0"
)
_OLDER_SCHEMAS = {
    "first": _FIRST_TRIALS + ")",
    "previous": _FIRST_TRIALS + ", stopped_early INTEGER NOT NULL DEFAULT 0, objective_values TEXT)",
}


def old_store(path: Path, release: str) -> Path:
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        conn.execute(_OLDER_SCHEMAS[release])
        conn.execute(
            "CREATE TABLE intermediates (trial_id INTEGER NOT NULL, step INTEGER NOT NULL, metric TEXT NOT NULL, "
            "objective REAL, at REAL NOT NULL, PRIMARY KEY (trial_id, step))"
        )
        conn.execute("INSERT INTO meta VALUES ('schema_version', '1'), ('seed', '4')")
        conn.execute(
            "INSERT INTO trials (sample, status, objective, metric, created_at, attempts) "
            "VALUES ('{\"w\": 1}', 'succeeded', 0.5, '0.5', 1.0, 1)"
        )
    conn.close()
    return path


@pytest.mark.parametrize("release", ["first", "previous"])
def test_an_older_store_reads_as_it_is_and_gains_the_new_columns_when_written(tmp_path: Path, release: str) -> None:
    path = old_store(tmp_path / STORE_FILE, release)
    before = path.read_bytes()
    reader = Store(path, readonly=True)
    try:
        (trial,) = reader.trials()
        assert (trial.output, trial.arch_key, trial.stopped_early, trial.values) == (None, None, False, (0.5,))
        assert reader.store_id is None
    finally:
        reader.close()
    assert path.read_bytes() == before  # reading changed nothing
    store = Store(path)
    try:
        columns = {row[1] for row in store.conn.execute("PRAGMA table_info(trials)")}
        assert {"stopped_early", "objective_values", "output", "arch_key"} <= columns
        assert store.store_id is not None and len(store.store_id) == 32 and store.get_meta("seed") == 4
        trial_id = store.add_trial({"w": 2}, arch_key="w=2")
        store.finish_trial(trial_id, "failed", error="boom", output="...\nValueError: bad", at=2.0)
        assert store.trial(trial_id).arch_key == "w=2" and store.trial(trial_id).output == "...\nValueError: bad"
        assert store.trial(1).output is None
    finally:
        store.close()


def test_trial_records_keep_their_positional_fields() -> None:
    record = TrialRecord(1, {"w": 1}, "waiting", None, None, None, None, 0.0, None, None, 0)
    assert (record.output, record.arch_key, record.stopped_early, record.objective_values) == (None, None, False, None)


def _trial_in(store: Store, status: str, attempts: int) -> int:
    trial_id = store.add_trial({"w": attempts})
    for _ in range(attempts):
        store.mark_running(trial_id, "w0", 1.0)
    if status == "waiting":
        store.conn.execute("UPDATE trials SET status = 'waiting' WHERE id = ?", (trial_id,))
    elif status != "running":
        store.finish_trial(trial_id, status, at=2.0)
    store.add_intermediate(trial_id, 0, 0.1, 0.1, 1.5)
    return trial_id


@pytest.mark.parametrize("cancelled", [False, True])
def test_requeue_unfinished_and_cancelled_attempts(tmp_path: Path, cancelled: bool) -> None:
    store = Store.create(tmp_path / STORE_FILE, {})
    try:
        done = _trial_in(store, "succeeded", 1)
        waiting = _trial_in(store, "waiting", 1)
        running = _trial_in(store, "running", 2)
        assert store.requeue_unfinished(cancelled=cancelled) == [waiting, running]
        by_id = {t.id: t for t in store.trials()}
        assert by_id[done].status == "succeeded" and store.intermediates(done)
        assert [(by_id[i].status, by_id[i].worker, by_id[i].started_at) for i in (waiting, running)] == [
            ("waiting", None, None)
        ] * 2
        # Only the running trial's attempt was cut short by the run's own cancellation.
        assert (by_id[waiting].attempts, by_id[running].attempts) == (1, 1 if cancelled else 2)
        assert store.intermediates(waiting) == store.intermediates(running) == []
    finally:
        store.close()


def test_fail_exhausted_fails_the_trials_out_of_attempts(tmp_path: Path) -> None:
    store = Store.create(tmp_path / STORE_FILE, {})
    try:
        once = _trial_in(store, "running", 1)
        thrice = _trial_in(store, "running", 3)
        waiting_twice = _trial_in(store, "waiting", 2)
        failed = _trial_in(store, "failed", 5)
        reason = "crashed the driver {attempts} times in a row; not run again"
        assert store.fail_exhausted(2, reason) == [thrice, waiting_twice]
        by_id = {t.id: t for t in store.trials()}
        assert by_id[thrice].status == by_id[waiting_twice].status == "failed"
        assert by_id[thrice].error == "crashed the driver 3 times in a row; not run again"
        assert by_id[waiting_twice].error == "crashed the driver 2 times in a row; not run again"
        assert by_id[thrice].ended_at is not None and by_id[thrice].started_at is not None
        assert by_id[once].status == "running" and by_id[failed].error is None
        assert store.requeue_unfinished() == [once]
        assert store.fail_exhausted(2, "{attempts}") == []
    finally:
        store.close()


def test_a_transaction_inside_another_joins_it(tmp_path: Path) -> None:
    store = Store.create(tmp_path / STORE_FILE, {})
    try:
        with pytest.raises(ValueError), store.transaction():
            store.add_trial({"w": 1})
            store.requeue_unfinished()  # a transaction of its own, joining this one
            raise ValueError
        assert store.trials() == []  # all rolled back together
        with store.transaction():
            store.add_trial({"w": 1})
            with store.transaction():
                store.set_meta("k", 1)
        assert len(store.trials()) == 1 and store.get_meta("k") == 1
    finally:
        store.close()

"""A store deleted or replaced under a running driver stops the run with an
error, and what the run had recorded is rescued into a file it names, from
which resume continues."""

from __future__ import annotations

import re
import shutil
import signal
from pathlib import Path

import pytest

from archsmith.experiment import STORE_FILE, ExperimentError, Store

from ._experiment_helpers import count, kill_group, make_experiment, poll_store, read_trials, start_run


def _rescued(out: str) -> Path:
    match = re.search(r"saved in (\S+experiment\.db\.rescued-\S+?):", out)
    assert match, out
    return Path(match.group(1))


def test_a_deleted_store_stops_the_run_and_is_rescued(tmp_path: Path) -> None:
    workdir = tmp_path / "exp"
    proc = start_run(workdir, "--max-trials", "14", "--sleep", "0.3", "--engine", "process")
    try:
        poll_store(proc, workdir, lambda trials: count(trials, "succeeded") >= 3)
        for suffix in ("", "-wal", "-shm"):
            (workdir / f"{STORE_FILE}{suffix}").unlink(missing_ok=True)
        out, err = proc.communicate(timeout=60)
    finally:
        kill_group(proc)
    assert proc.returncode == 1, (out, err)
    assert "RUN FAILED" in out and "deleted" in out
    assert "strategy is exhausted" not in out + err
    rescued = _rescued(out)
    store = Store(rescued, readonly=True)
    try:
        done = count(store.trials(), "succeeded")
    finally:
        store.close()
    assert done >= 3
    # Put it back and resume: nothing it had is lost, the budget completes.
    shutil.move(rescued, workdir / STORE_FILE)
    make_experiment(workdir, max_trials=14, engine="inprocess", sleep=0.0).run(resume=True)
    trials = read_trials(workdir)
    assert count(trials, "succeeded") == 14 and len(trials) == 14


def test_a_replaced_store_is_not_taken_for_this_run(tmp_path: Path) -> None:
    other = tmp_path / "other"
    make_experiment(other, max_trials=2).run()
    workdir = tmp_path / "exp"
    proc = start_run(workdir, "--max-trials", "14", "--sleep", "0.3", "--engine", "process")
    try:
        poll_store(proc, workdir, lambda trials: count(trials, "succeeded") >= 2)
        shutil.copy(other / STORE_FILE, workdir / "incoming.db")
        (workdir / "incoming.db").replace(workdir / STORE_FILE)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        kill_group(proc)
    assert proc.returncode == 1, (out, err)
    assert "replaced" in out
    # The replacement is left as it was: 2 trials of the other run.
    assert len(read_trials(workdir)) == 2
    assert _rescued(out).exists()


def test_resume_of_a_directory_whose_store_vanished_is_refused(tmp_path: Path) -> None:
    workdir = tmp_path / "exp"
    make_experiment(workdir, max_trials=2).run()
    (workdir / "trials").mkdir(exist_ok=True)  # what a run leaves beside its store (trial logs)
    (workdir / STORE_FILE).rename(tmp_path / "moved.db")
    with pytest.raises(ExperimentError, match=r"experiment\.db is missing"):
        make_experiment(workdir, max_trials=4).run(resume=True)
    (tmp_path / "moved.db").rename(workdir / f"{STORE_FILE}.rescued-20260101-000000")
    with pytest.raises(ExperimentError, match="rescued store"):
        make_experiment(workdir, max_trials=4).run(resume=True)

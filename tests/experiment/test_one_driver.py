"""One driver per experiment: a second driver on a live run's directory is refused
with the live one's pid and host (fresh and resumed alike), readers are never
blocked, and the lock dies with its holder (kill -9 included)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from archsmith.experiment import ExperimentError
from archsmith.experiment._lock import LOCK_FILE, DriverLock, DriverLockError

from ._experiment_helpers import count, kill_group, make_experiment, poll_store, read_trials, start_run


def _running(proc: subprocess.Popen[str], workdir: Path) -> None:
    poll_store(proc, workdir, lambda trials: count(trials, "succeeded") >= 1)


@pytest.mark.parametrize("resume", [False, True])
def test_a_second_driver_is_refused_naming_the_live_one(tmp_path: Path, resume: bool) -> None:
    workdir = tmp_path / "exp"
    proc = start_run(workdir, "--max-trials", "40", "--sleep", "0.3", "--engine", "process")
    try:
        _running(proc, workdir)
        second = make_experiment(workdir, max_trials=40, engine="inprocess")
        with pytest.raises(ExperimentError) as info:
            second.run(resume=resume)
        message = str(info.value)
        assert f"pid {proc.pid}" in message and socket.gethostname() in message
        assert "another driver" in message
        # Readers are not blocked: the store reads while the first driver runs.
        assert read_trials(workdir)
        assert second.trials()
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=60)
    finally:
        kill_group(proc)
    trials = read_trials(workdir)
    samples = [json.dumps(t.sample, sort_keys=True) for t in trials]
    assert len(samples) == len(set(samples)), "the refused driver must not have added trials"


def test_two_drivers_started_together_run_one_search(tmp_path: Path) -> None:
    """Two scripts started at the same moment on one directory: exactly one runs,
    the budget is met once, no sample twice. (Trials of 0.5 s keep the winner
    running for seconds, so the loser, however slowly it starts, meets it live.)"""
    workdir = tmp_path / "exp"
    procs = [start_run(workdir, "--max-trials", "8", "--sleep", "0.5", "--engine", "inprocess") for _ in range(2)]
    outputs = [p.communicate(timeout=90) for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert codes == [0, 1], outputs
    refused = next(out for (out, _), p in zip(outputs, procs) if p.returncode == 1)
    assert "another driver" in refused
    trials = read_trials(workdir)
    assert len(trials) == 8 and count(trials, "succeeded") == 8
    assert len({json.dumps(t.sample, sort_keys=True) for t in trials}) == 8


def test_the_lock_dies_with_a_killed_driver(tmp_path: Path) -> None:
    workdir = tmp_path / "exp"
    proc = start_run(workdir, "--max-trials", "12", "--sleep", "0.3", "--engine", "process")
    try:
        _running(proc, workdir)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=30)
    finally:
        kill_group(proc)
    resumed = make_experiment(workdir, max_trials=12, engine="inprocess", sleep=0.0)
    resumed.run(resume=True)
    assert count(read_trials(workdir), "succeeded") == 12
    assert not (workdir / LOCK_FILE).exists(), "a finished run removes its lock file"


def test_lock_in_one_process_and_across_processes(tmp_path: Path) -> None:
    with DriverLock(tmp_path):
        with pytest.raises(DriverLockError, match=f"pid {os.getpid()}"):
            DriverLock(tmp_path).acquire()
        probe = subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys; from archsmith.experiment._lock import DriverLock\n"
                "try:\n    DriverLock(sys.argv[1]).acquire()\nexcept Exception as e:\n    print(e)\n",
                str(tmp_path),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert f"pid {os.getpid()}" in probe.stdout
    DriverLock(tmp_path).acquire().release()  # free again

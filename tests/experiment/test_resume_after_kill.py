"""The key resume test: the driver of a process-engine run is SIGKILLed mid-run
(some trials finished, others running); a new process resumes it. No finished
trial is lost, changed or duplicated, the trials that were running re-run, exactly
``max_trials`` trials exist and all finished, no sample repeats, and the samples
are those of an uninterrupted run with the same seed."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from ._experiment_helpers import (
    RUN_SCRIPT,
    count,
    deadline,
    kill_group,
    make_experiment,
    poll_store,
    read_meta,
    read_trials,
    sample_key,
    start_run,
)

MAX_TRIALS = 12
SEED = 3


def test_sigkill_mid_run_then_resume(tmp_path: Path) -> None:
    workdir = tmp_path / "exp"
    args = ["--max-trials", str(MAX_TRIALS), "--sleep", "0.4", "--concurrency", "2", "--seed", str(SEED)]
    proc = start_run(workdir, *args)
    try:
        poll_store(proc, workdir, lambda ts: count(ts, "succeeded") >= 3 and count(ts, "running") == 2)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        kill_group(proc)  # the orphaned workers too
    assert proc.returncode == -signal.SIGKILL

    before = read_trials(workdir)  # what the store held when the driver died
    finished_before = {t.id: t for t in before if t.status in ("succeeded", "failed")}
    running_before = {t.id for t in before if t.status == "running"}
    assert len(finished_before) >= 3 and running_before, [(t.id, t.status) for t in before]
    assert len(before) < MAX_TRIALS, "the kill came mid-run"

    resumed = subprocess.run(
        [sys.executable, str(RUN_SCRIPT), str(workdir), "--resume", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-3000:]
    after = read_trials(workdir)

    # Exactly max_trials trials, all finished, none duplicated.
    assert [t.id for t in after] == list(range(1, MAX_TRIALS + 1))
    assert all(t.status == "succeeded" for t in after), [(t.id, t.status, t.error) for t in after]
    assert len({sample_key(t.sample) for t in after}) == MAX_TRIALS, "a sample repeats (Random(dedup=True))"
    assert read_meta(workdir, "status") == "done"

    by_id = {t.id: t for t in after}
    for trial_id, old in finished_before.items():
        assert by_id[trial_id] == old, f"trial {trial_id}, finished before the kill, changed on resume"
    for trial_id in running_before:
        new = by_id[trial_id]
        assert new.sample == next(t.sample for t in before if t.id == trial_id)
        assert new.attempts == 2, f"trial {trial_id} was running at the kill and must have run again"

    # The same samples, in the same order, as an uninterrupted run with the same seed.
    with deadline(60):
        make_experiment(tmp_path / "uninterrupted", max_trials=MAX_TRIALS, seed=SEED).run()
    assert [t.sample for t in after] == [t.sample for t in read_trials(tmp_path / "uninterrupted")]

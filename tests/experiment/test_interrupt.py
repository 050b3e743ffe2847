"""Ctrl-C ends a run cleanly: the process exits normally, the store is consistent
(no trial left 'running'; unfinished ones are 'waiting') and ``run(resume=True)``
completes the budget."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from ._experiment_helpers import (
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

MAX_TRIALS = 10


def test_ctrl_c_on_a_process_engine_run_then_resume(tmp_path: Path) -> None:
    workdir = tmp_path / "exp"
    # Trials long enough that, even on a loaded machine, Ctrl-C lands before the budget is spent.
    proc = start_run(workdir, "--max-trials", str(MAX_TRIALS), "--sleep", "1.0", "--concurrency", "2")
    try:
        seen = poll_store(proc, workdir, lambda ts: count(ts, "succeeded") >= 2 and count(ts, "running") >= 1)
        running_at_interrupt = {t.id for t in seen if t.status == "running"}
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C in a terminal reaches the whole process group
        out, err = proc.communicate(timeout=30)
    finally:
        kill_group(proc)

    # It exits cleanly: run() returns, no traceback.
    assert proc.returncode == 0, out[-2000:] + err[-3000:]
    assert "RUN RETURNED" in out
    assert "Traceback" not in err, err[-3000:]
    assert "interrupted" in out

    # The store is consistent.
    trials = read_trials(workdir)
    statuses = {t.status for t in trials}
    assert statuses <= {"succeeded", "failed", "waiting"}, f"trials left in another state: {statuses}"
    assert running_at_interrupt, "the interrupt came while trials were running"
    for t in trials:
        if t.id in running_at_interrupt and t.status == "waiting":
            assert t.worker is None and t.started_at is None
    waiting = [t for t in trials if t.status == "waiting"]
    assert read_meta(workdir, "status") == ("interrupted" if waiting else "done")
    finished_before = {t.id: t for t in trials if t.status in ("succeeded", "failed")}
    assert 2 <= len(finished_before) < MAX_TRIALS

    # A new Experiment on the interrupted run exports what finished, best first.
    succeeded = sorted((t for t in trials if t.status == "succeeded"), key=lambda t: (-t.objective, t.id))
    reloaded = make_experiment(workdir, max_trials=MAX_TRIALS, engine="inprocess")
    assert reloaded.export_top_models(MAX_TRIALS) == [t.sample for t in succeeded]

    # run(resume=True) completes the budget (in this process, with the in-process engine: same store, same space).
    with deadline(60):
        make_experiment(workdir, max_trials=MAX_TRIALS, engine="inprocess").run(resume=True)
    after = read_trials(workdir)
    assert [t.id for t in after] == list(range(1, MAX_TRIALS + 1))
    assert all(t.status == "succeeded" for t in after)
    assert len({sample_key(t.sample) for t in after}) == MAX_TRIALS
    for t in after:
        if t.id in finished_before:
            assert t == finished_before[t.id], "a trial finished before Ctrl-C changed on resume"
    assert read_meta(workdir, "status") == "done"


def test_ctrl_c_during_an_in_process_trial(tmp_path: Path) -> None:
    interrupt = {4}
    with deadline(60):
        make_experiment(tmp_path, max_trials=6, interrupt=interrupt).run()
    trials = read_trials(tmp_path)
    assert [(t.id, t.status) for t in trials] == [(1, "succeeded"), (2, "succeeded"), (3, "succeeded"), (4, "waiting")]
    assert read_meta(tmp_path, "status") == "interrupted"

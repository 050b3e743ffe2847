"""The process engine against faults injected with real processes: a worker that
segfaults while a child it forked holds its socket, a worker that dies just after
its trial, processes a trial leaves behind, a driver killed with SIGKILL, and the
trial log (output tail, faulthandler stack) of failed trials."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from archsmith.execution import ProcessEngine, TrialEvent

from ._execution_helpers import (
    descendants_of,
    finished,
    is_worker,
    payload,
    process_gone,
    run_trials,
    trial,
    wait_gone,
)

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc and Linux process control")

TRIAL_TIMEOUT = 2.0
SCRIPTS = Path(__file__).parent / "scripts"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("trials")


@pytest.fixture(scope="module")
def engine(log_dir: Path) -> Iterator[ProcessEngine]:
    """One engine for the module (workers take a second to start), with a log dir."""
    engine = ProcessEngine(concurrency=2, trial_timeout=TRIAL_TIMEOUT, log_dir=log_dir)
    engine.start(payload())
    yield engine
    engine.shutdown()


def pids_reported(events: list[TrialEvent], *keys: str) -> set[int]:
    return {
        int(e.metric[k])
        for e in events
        if e.kind == "intermediate" and isinstance(e.metric, dict)
        for k in keys
        if k in e.metric
    }


def test_segfault_is_noticed_although_a_forked_child_holds_the_socket(engine: ProcessEngine) -> None:
    events = run_trials(engine, [trial(1, "fork_segv"), trial(2)], deadline=20)
    done = finished(events[1])
    assert done.status == "failed"
    assert "SIGSEGV" in (done.error or "")
    # Noticed from the socket it would hang until the child's 60 s sleep ends (past the
    # deadline); from the timeout it would say so. Measured from the trial's start, not
    # the test's, so worker start-up on a loaded machine does not count.
    (started,) = [e for e in events[1] if e.kind == "started"]
    assert done.at - started.at < 10, "the death was noticed late"
    assert "timed out" not in (done.error or "")
    assert [e.step for e in events[1] if e.kind == "intermediate"] == [0, 1, 2], "messages sent before the crash"
    (child,) = pids_reported(events[1], "child")
    assert not wait_gone({child}, 5), "the forked child outlived its worker"
    assert finished(events[2]).status == "succeeded"


def test_segfault_error_holds_the_python_stack(engine: ProcessEngine) -> None:
    events = run_trials(engine, [trial(3, "segv_ctypes")], deadline=20)
    error = finished(events[3]).error or ""
    assert "SIGSEGV" in error
    assert "Fatal Python error: Segmentation fault" in error
    assert "in behave" in error, error  # the trial's own function, from faulthandler


def test_worker_dying_after_its_trial_fails_no_other_trial(engine: ProcessEngine) -> None:
    capacity = engine.capacity
    events = run_trials(engine, [trial(10, "die_soon")], deadline=20)
    assert finished(events[10]).status == "succeeded"
    time.sleep(0.3)  # its worker is dead now, and wait() has not looked
    next_trials = [trial(20 + i) for i in range(capacity)]
    for t in next_trials:  # one lands on the dead worker: neither call raises
        engine.submit(t)
        engine.request_stop(t.id)
    got: list[TrialEvent] = []
    end = time.time() + 30
    while len([e for e in got if e.kind == "finished"]) < capacity:
        assert time.time() < end, f"trials did not finish: {got}"
        got += engine.wait(0.2)
    for t in next_trials:
        done = finished([e for e in got if e.trial_id == t.id])
        assert done.status == "succeeded", f"trial {t.id}, sent to a worker that had died, failed: {done.error}"
    assert engine.capacity == capacity


def test_processes_a_trial_started_end_with_it(engine: ProcessEngine) -> None:
    events = run_trials(engine, [trial(30, "popen")], deadline=20)
    done = finished(events[30])
    assert done.status == "succeeded", done.error
    pids = {int(done.metric["sleep"]), int(done.metric["orphan"])}
    assert not wait_gone(pids, 2), "a process the trial started outlived the trial"
    assert finished(run_trials(engine, [trial(31)])[31]).status == "succeeded"


def test_timeout_kills_the_trials_processes_and_says_where_it_hung(engine: ProcessEngine) -> None:
    events = run_trials(engine, [trial(40, "popen_hang")], deadline=30)
    done = finished(events[40])
    assert done.status == "failed"
    assert "trial_timeout" in (done.error or "")
    assert "faulthandler" in (done.error or "") and "in behave" in (done.error or ""), done.error
    pids = pids_reported(events[40], "sleep", "orphan")
    assert len(pids) == 2 and not wait_gone(pids, 5)


def test_failed_trial_carries_its_output_tail(engine: ProcessEngine, log_dir: Path) -> None:
    events = run_trials(engine, [trial(50, "print_raise"), trial(51)], deadline=20)
    done = finished(events[50])
    assert done.status == "failed"
    assert "ValueError: boom after printing" in (done.error or "")
    assert "Traceback" in (done.error or "")
    output = done.output or ""
    for line in ("hello from print", "hello from fd 1", "hello from a child process", "hello from stderr"):
        assert line in output, f"{line!r} missing from the output tail: {output!r}"
    assert (log_dir / "50" / "output.log").read_text().count("hello") == 4
    ok = finished(events[51])
    assert ok.status == "succeeded" and ok.output is None
    assert (log_dir / "51" / "output.log").exists()


def test_output_tail_is_bounded(tmp_path: Path) -> None:
    from archsmith.execution._output import tail

    log = tmp_path / "output.log"
    log.write_text("".join(f"line {i} " + "x" * 300 + "\n" for i in range(1000)))
    text = tail(log) or ""
    assert len(text.encode()) <= 8192
    assert text.splitlines()[-1].startswith("line 999 ")
    assert len(text.splitlines()) <= 50 and text.splitlines()[0].startswith("line ")
    log.write_text("".join(f"line {i}\n" for i in range(100)))
    assert (tail(log) or "").splitlines() == [f"line {i}" for i in range(50, 100)]


def test_output_tail_leaves_out_a_fault_report(tmp_path: Path) -> None:
    """A crash report (long in a worker forked from a big driver: every thread's
    stack and extension module) is the trial's error; its output tail keeps what
    the trial printed."""
    from archsmith.execution._output import fault_stack, tail

    log = tmp_path / "output.log"
    printed = "".join(f"epoch {i}\n" for i in range(5))
    frames = "".join(f'  File "/deep/module_{i}.py", line {i} in f{i}\n' for i in range(400))
    report = f"Fatal Python error: Segmentation fault\n\nCurrent thread 0x00007f (most recent call first):\n{frames}"
    log.write_text(printed + report + "\nExtension modules: " + ", ".join(f"m{i}" for i in range(178)) + "\n")
    assert tail(log) == printed.rstrip("\n")
    assert (fault_stack(log) or "").startswith("Fatal Python error: Segmentation fault")
    stacks = "".join(f"Thread 0x{i:04x} (most recent call first):\n{frames}" for i in range(2))
    log.write_text(printed + stacks)  # a timed-out trial's dumped stacks
    assert tail(log) == printed.rstrip("\n")
    log.write_text(report)  # it printed nothing before it crashed
    assert tail(log) is None


def test_workers_and_their_trials_processes_die_with_a_killed_driver() -> None:
    driver = subprocess.Popen(
        [sys.executable, str(SCRIPTS / "driver_killed.py")],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
        start_new_session=True,
    )
    started: set[int] = set()
    try:
        assert driver.stdout is not None
        line = driver.stdout.readline()
        reported = set(json.loads(line).values())
        assert len(reported) == 3, line
        started = descendants_of(driver.pid) | reported  # workers, their guards, the trials' processes
        assert reported <= descendants_of(driver.pid), "the orphaned sleep reparents to its worker (a subreaper)"
        workers = {p for p in started if is_worker(p)}
        assert len(workers) >= 2

        driver.send_signal(signal.SIGKILL)
        driver.wait(10)

        alive = wait_gone(started, 5)
        assert not alive, f"processes outlived their killed driver: {sorted(alive)}"
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait(10)
        for pid in started:  # only processes this test started
            if not process_gone(pid):
                os.kill(pid, signal.SIGKILL)


def test_without_pidfds_a_dead_worker_is_found_by_polling(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where ``os.pidfd_open`` is unavailable (old kernels, other systems), the
    engine polls its workers instead; a forked child holding the socket still
    cannot hide the death."""
    import archsmith.execution._process as process_module

    monkeypatch.setattr(process_module, "pidfd", lambda pid: None)
    engine = ProcessEngine(concurrency=1, trial_timeout=30)
    engine.start(payload())
    try:
        start = time.time()
        events = run_trials(engine, [trial(1, "fork_segv"), trial(2)], deadline=40)
        done = finished(events[1])
        assert done.status == "failed" and "SIGSEGV" in (done.error or "")
        assert done.duration is not None and done.duration < 10, "noticed by polling, not by the timeout"
        assert finished(events[2]).status == "succeeded"
        assert not wait_gone(pids_reported(events[1], "child"), 5)
        assert time.time() - start < 40
    finally:
        engine.shutdown()


def test_descendants_found_with_and_without_children_lists() -> None:
    from archsmith.execution import _processes

    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        me = os.getpid()
        assert sleeper.pid in _processes.descendants(me, group=os.getpgrp())  # the /proc scan
        if _processes.CHILDREN_LISTS:
            assert sleeper.pid in _processes.descendants(me)  # per-task children lists
    finally:
        sleeper.kill()
        sleeper.wait()

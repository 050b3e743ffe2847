"""How the process engine starts its workers: forked from a template process
(itself forked from the driver where that is safe, else a fresh interpreter), or
spawned. Checked with real processes: who forked whom, what a forked worker
does not inherit from the driver, the refusals, and recovery when the template
itself dies."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from archsmith.execution import EngineError, ProcessEngine

from ._execution_helpers import finished, parent_of, payload, run_trials, started, trial, worker_pids

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="templates are Linux-only")

SCRIPTS = Path(__file__).parent / "scripts"


@pytest.fixture(scope="module")
def fork_checks() -> dict[str, str]:
    """The checks of ``scripts/worker_start_checks.py``, run in a fresh process (this
    one may hold threads of earlier tests, which rule forking it out)."""
    result = subprocess.run(
        [sys.executable, str(SCRIPTS / "worker_start_checks.py")], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return json.loads(result.stdout.splitlines()[-1])  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    "check",
    [
        "fork_forks_the_driver_once_and_every_worker_from_that_template",
        "a_forked_worker_leaves_the_drivers_descriptors_and_streams_behind",
        "the_drivers_signal_handlers_stay_behind",
        "a_driver_log_file_handler_writes_nowhere_in_a_worker",
        "a_driver_with_a_faulthandler_timer_armed_forks",
        "workers_use_openmp_after_the_driver_did",
        "a_dead_template_is_replaced_and_the_run_goes_on",
    ],
)
def test_forked_from_the_driver(fork_checks: dict[str, str], check: str) -> None:
    assert fork_checks.get(check) == "ok", fork_checks.get(check, f"{check} did not run: {sorted(fork_checks)}")


def test_forkserver_template_is_a_fresh_interpreter_and_replaces_workers_without_one() -> None:
    with started(ProcessEngine(concurrency=1, worker_start="forkserver")) as engine:
        assert engine.start_method == "forkserver"
        events = run_trials(engine, [trial(1, "sigkill"), trial(2)], deadline=120)
        assert finished(events[1]).status == "failed" and finished(events[2]).status == "succeeded"
        (pid,) = worker_pids(engine)
        template = parent_of(pid)
        assert b"archsmith.execution._template" in Path(f"/proc/{template}/cmdline").read_bytes()
        assert parent_of(template) == os.getpid()


def test_auto_falls_back_to_a_fresh_template_while_another_thread_runs() -> None:
    stop = threading.Event()
    busy = threading.Thread(target=stop.wait, name="busy-helper", daemon=True)
    busy.start()
    try:
        with pytest.raises(EngineError, match=r"worker_start='fork' is unsafe here: .*busy-helper.*'forkserver'"):
            ProcessEngine(concurrency=1, worker_start="fork").start(payload())
        with started(ProcessEngine(concurrency=1, worker_start="auto")) as engine:
            assert engine.start_method == "forkserver"
            assert "busy-helper" in (engine.start_note or "")
            assert finished(run_trials(engine, [trial(1)], deadline=120)[1]).status == "succeeded"
    finally:
        stop.set()
        busy.join()


def test_unknown_worker_start_names_the_choices(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(EngineError, match=r"worker_start='vfork' .*auto, fork, forkserver, spawn"):
        ProcessEngine(worker_start="vfork")  # type: ignore[arg-type]
    monkeypatch.setenv("ARCHSMITH_WORKER_START", "threads")
    with pytest.raises(EngineError, match=r"ARCHSMITH_WORKER_START='threads'"):
        ProcessEngine()
    monkeypatch.setenv("ARCHSMITH_WORKER_START", "spawn")
    assert ProcessEngine().worker_start == "spawn"

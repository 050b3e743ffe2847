"""Checks of workers forked from a template forked from the driver, run by
tests/execution/test_worker_start.py in this fresh process (a test process may
hold threads of earlier tests, which rule forking out). ``worker_start_checks.py
[NAME...]`` runs each ``check_NAME`` (all by default) and prints one JSON line:
{name: "ok" or the traceback}."""

from __future__ import annotations

import contextlib
import faulthandler
import io
import json
import logging
import os
import signal
import sys
import tempfile
import time
import traceback
from pathlib import Path

import cloudpickle
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from archsmith.evaluator import FunctionalEvaluator
from archsmith.execution import ProcessEngine, TrialPayload
from archsmith.execution._forking import fork_blockers
from tests.execution._execution_helpers import (
    Net,
    finished,
    is_worker,
    parent_of,
    run_trials,
    started,
    trial,
    wait_gone,
    worker_pids,
)

cloudpickle.register_pickle_by_value(sys.modules[__name__])


def check_fork_forks_the_driver_once_and_every_worker_from_that_template() -> None:
    with started(ProcessEngine(concurrency=2, worker_start="fork")) as engine:
        assert engine.start_method == "fork" and engine.start_note is None
        events = run_trials(engine, [trial(1), trial(2), trial(3, "sigkill"), trial(4)])
        assert [finished(events[i]).status for i in (1, 2, 3, 4)] == ["succeeded", "succeeded", "failed", "succeeded"]
        pids = worker_pids(engine)
        (template,) = {parent_of(pid) for pid in pids}  # the replacement of the killed worker too
        assert parent_of(template) == os.getpid()
        assert Path(f"/proc/{template}/comm").read_text().strip() == "archsmith-tmpl"
        assert all(is_worker(pid) for pid in pids)
        # Forked, not a fresh interpreter: same program and arguments as this process.
        assert {Path(f"/proc/{p}/cmdline").read_bytes() for p in pids} == {Path("/proc/self/cmdline").read_bytes()}
    assert wait_gone(pids | {template}, 5) == set(), "shutdown() left the template or a worker"


def check_a_forked_worker_leaves_the_drivers_descriptors_and_streams_behind() -> None:
    """The driver's close-on-exec files (its experiment lock, its store) are not
    held by workers, and a driver whose ``sys.stdout`` is redirected still gets
    each trial's prints in the trial's log."""
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        secret = tmp_path / "driver-only.txt"
        with open(secret, "w") as held, contextlib.redirect_stdout(io.StringIO()) as captured:
            assert not os.get_inheritable(held.fileno())
            engine = ProcessEngine(concurrency=1, worker_start="fork", log_dir=tmp_path / "logs")
            with started(engine):
                events = run_trials(engine, [trial(7, "print_raise")])
                (pid,) = worker_pids(engine)
                for process in (pid, parent_of(pid)):
                    links = {os.readlink(f) for f in Path(f"/proc/{process}/fd").iterdir() if f.exists()}
                    assert str(secret) not in links, f"process {process} holds the driver's file"
        assert "hello from print" in (finished(events[7]).output or "")
        assert "hello" not in captured.getvalue()


def signal_mask(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1], 16)
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def check_the_drivers_signal_handlers_stay_behind() -> None:
    """As across exec: the driver's Python handlers are not the worker's, ignored
    signals stay ignored (SIGPIPE: a write to a closed socket raises, it does not
    kill), and Ctrl-C is the driver's alone."""
    previous = signal.signal(signal.SIGTERM, lambda *_: None)
    try:
        with started(ProcessEngine(concurrency=1, worker_start="fork")) as engine:
            assert finished(run_trials(engine, [trial(1)])[1]).status == "succeeded"
            (pid,) = worker_pids(engine)
            for process in (pid, parent_of(pid)):
                caught, ignored = signal_mask(process, "SigCgt"), signal_mask(process, "SigIgn")
                bit = lambda sig: 1 << (sig - 1)  # noqa: E731
                assert not caught & bit(signal.SIGTERM), f"process {process} kept the driver's SIGTERM handler"
                assert ignored & bit(signal.SIGPIPE) and ignored & bit(signal.SIGINT), f"process {process}"
    finally:
        signal.signal(signal.SIGTERM, previous)


def check_a_driver_with_a_faulthandler_timer_armed_forks() -> None:
    """``faulthandler.dump_traceback_later`` (a C thread, e.g. a test's deadline)
    armed in the driver: the forked template must not wait for that thread."""
    faulthandler.dump_traceback_later(600, exit=True)
    try:
        with started(ProcessEngine(concurrency=1, trial_timeout=30, worker_start="fork")) as engine:
            assert finished(run_trials(engine, [trial(1)], deadline=30)[1]).status == "succeeded"
    finally:
        faulthandler.cancel_dump_traceback_later()


def log_through_the_driver(model: torch.nn.Module) -> dict[str, float]:
    logger = logging.getLogger("user-script")
    logger.error("a line from the trial")
    (handler,) = logger.handlers  # the driver's, inherited
    where = os.readlink(f"/proc/self/fd/{handler.stream.fileno()}")
    return {"value": 1.0, "devnull": float(where == "/dev/null")}


def check_a_driver_log_file_handler_writes_nowhere_in_a_worker() -> None:
    """A ``logging.FileHandler`` of the driver's, used by trial code in a worker:
    its descriptor was released, but its number is not reused for the worker's
    socket (the line would corrupt the protocol), nor does the line reach the file."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "driver.log"
        handler = logging.FileHandler(path)
        logger = logging.getLogger("user-script")
        logger.addHandler(handler)
        try:
            work = TrialPayload(Net, (), {}, FunctionalEvaluator(log_through_the_driver))
            with started(ProcessEngine(concurrency=1, trial_timeout=30, worker_start="fork"), work) as engine:
                events = run_trials(engine, [trial(1), trial(2), trial(3)], deadline=60)
                assert [finished(events[i]).status for i in (1, 2, 3)] == ["succeeded"] * 3, events
                assert all(finished(events[i]).metric["devnull"] == 1.0 for i in (1, 2, 3))
            handler.flush()
            assert "a line from the trial" not in path.read_text()
        finally:
            logger.removeHandler(handler)
            handler.close()


def parallel_sum(model: torch.nn.Module) -> float:
    x = torch.ones(600, 600)
    return float((x @ x).sum() / 600**3) + torch.get_num_threads()


def check_workers_use_openmp_after_the_driver_did() -> None:
    """GNU libgomp deadlocks a forked child that uses the pool its parent had
    started; the engine retires the pool before forking."""
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        x = torch.ones(600, 600)
        assert float((x @ x).sum()) == 600**3  # the driver's OpenMP pool is running now
        work = TrialPayload(Net, (), {}, FunctionalEvaluator(parallel_sum))
        with started(ProcessEngine(concurrency=1, trial_timeout=30, worker_start="fork"), work) as engine:
            events = run_trials(engine, [trial(1)], deadline=60)
            done = finished(events[1])
            assert done.status == "succeeded", done.error
            assert done.metric == 1.0 + (os.cpu_count() or 1)  # the worker's own thread count, in use
    finally:
        torch.set_num_threads(previous)


def check_a_dead_template_is_replaced_and_the_run_goes_on() -> None:
    with started(ProcessEngine(concurrency=2, trial_timeout=30, worker_start="fork")) as engine:
        assert finished(run_trials(engine, [trial(1)])[1]).status == "succeeded"
        old = worker_pids(engine)
        (template,) = {parent_of(pid) for pid in old}
        os.kill(template, signal.SIGKILL)
        assert wait_gone(old, 15) == set(), "workers outlived their template"  # 5 s missed once under load
        time.sleep(0.1)
        events = run_trials(engine, [trial(2), trial(3), trial(4)], deadline=60)
        assert {finished(events[i]).status for i in (2, 3, 4)} == {"succeeded"}
        new = worker_pids(engine)
        assert not (new & old)
        assert {parent_of(pid) for pid in new} != {template}


if __name__ == "__main__":
    assert fork_blockers() == [], f"this fresh process should be forkable: {fork_blockers()}"
    names = sys.argv[1:] or [name[len("check_") :] for name in list(globals()) if name.startswith("check_")]
    results = {}
    for name in names:
        try:
            globals()[f"check_{name}"]()
            results[name] = "ok"
        except BaseException:
            results[name] = traceback.format_exc()
    print(json.dumps(results), flush=True)

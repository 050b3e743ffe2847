"""Shared pieces of the engine tests: a tiny model space, an evaluator whose
behaviour (succeed, raise, crash, hang, ...) is chosen per trial by the sample's
``action`` label, a generic way to build any registered engine, and a way to see
the worker processes this test process has spawned.

This module is pickled *by value* (as a user's ``__main__`` would be), so worker
processes never need to import it."""

from __future__ import annotations

import contextlib
import ctypes
import inspect
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cloudpickle
import torch

import archsmith.nn as nn
from archsmith.evaluator import FunctionalEvaluator, report_intermediate_result
from archsmith.execution import ENGINES, Engine, ProcessEngine, Trial, TrialEvent, TrialPayload

cloudpickle.register_pickle_by_value(sys.modules[__name__])

ACTIONS = [
    "ok",
    "slow",
    "hang",
    "raise",
    "nan",
    "inf",
    "string",
    "none",
    "bad_dict",
    "sysexit",
    "exit",
    "segv_ctypes",
    "sigkill",
    "nan_aux",
    "fork_segv",
    "die_soon",
    "popen",
    "popen_hang",
    "print_raise",
    "fork_hang",
]


class Net(nn.ModelSpace):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, nn.choice("width", [2, 3, 4]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


def _fork_sleeper(seconds: float) -> None:
    """Fork a child that sleeps (holding the worker's inherited fds) and report its pid."""
    child = os.fork()
    if child == 0:
        time.sleep(seconds)
        os._exit(0)
    report_intermediate_result({"child": float(child)})


def behave(model: torch.nn.Module, action: str) -> Any:
    """Report two intermediate results, then do what ``action`` says."""
    width = model(torch.ones(1, 4)).shape[1]
    report_intermediate_result(0.25)
    report_intermediate_result({"step": 1.0, "pid": float(os.getpid())})
    if action == "slow":
        time.sleep(0.4)
    elif action == "hang":
        time.sleep(120)
    elif action == "raise":
        raise ValueError("boom from the trial")
    elif action == "nan":
        return float("nan")
    elif action == "inf":
        return float("inf")
    elif action == "nan_aux":  # NaN in a key that is not the objective: not the engine's business
        return {"value": float(width), "aux": float("nan"), "pid": float(os.getpid())}
    elif action == "fork_segv":  # the forked child keeps the worker's socket open after the segfault
        _fork_sleeper(60)
        ctypes.string_at(0)
    elif action == "fork_hang":
        _fork_sleeper(1000)
        time.sleep(120)
    elif action == "die_soon":  # e.g. a thread of the evaluator kills the process after the trial returned
        threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGKILL)).start()
    elif action in ("popen", "popen_hang"):
        sleeper = subprocess.Popen(["sleep", "1000"])
        shell = subprocess.run(["sh", "-c", "sleep 1000 > /dev/null 2>&1 & echo $!"], capture_output=True, text=True)
        orphan = int(shell.stdout)  # its parent (the shell) has exited: an orphan now
        pids = {"sleep": float(sleeper.pid), "orphan": float(orphan)}
        report_intermediate_result(pids)
        if action == "popen_hang":
            time.sleep(120)
        return {"value": float(width), "pid": float(os.getpid()), **pids}
    elif action == "print_raise":
        print("hello from print")
        sys.stdout.flush()
        os.write(1, b"hello from fd 1\n")
        subprocess.run(["echo", "hello from a child process"])
        print("hello from stderr", file=sys.stderr)
        raise ValueError("boom after printing")
    elif action == "string":
        return "not a number"
    elif action == "none":
        return None
    elif action == "bad_dict":
        return {"value": [1, 2]}
    elif action == "sysexit":
        sys.exit(2)
    elif action == "exit":
        os._exit(3)
    elif action == "segv_ctypes":
        ctypes.string_at(0)
    elif action == "sigkill":  # what the kernel's OOM killer does
        os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(5)
    return {"value": float(width), "pid": float(os.getpid())}


def payload() -> TrialPayload:
    return TrialPayload(Net, (), {}, FunctionalEvaluator(behave, action=nn.choice("action", ACTIONS)))


def make_engine(
    name: str, *, concurrency: int = 2, trial_timeout: float | None = None, log_dir: Path | None = None
) -> Engine:
    """Build the engine registered as ``name`` with the settings it accepts, so an
    engine registered later gets every parametrized test without edits here."""
    cls = ENGINES[name]
    accepted = inspect.signature(cls).parameters
    settings = {"concurrency": concurrency, "trial_timeout": trial_timeout, "log_dir": log_dir}
    return cls(**{k: v for k, v in settings.items() if k in accepted})  # type: ignore[no-any-return]


def trial(trial_id: int, action: str = "ok", width: int = 3) -> Trial:
    return Trial(trial_id, {"width": width, "action": action})


def run_trials(engine: Engine, trials: list[Trial], deadline: float = 60.0) -> dict[int, list[TrialEvent]]:
    """Submit ``trials`` as capacity allows and wait until each has finished.

    Returns every event, per trial id, in the order the engine gave them. A
    ``BaseException`` escaping ``wait`` (other than Ctrl-C) is recorded as a
    synthetic finished event with ``status="escaped"`` for the trials it took down,
    so one misbehaving trial does not hide the outcome of the others."""
    events: dict[int, list[TrialEvent]] = {t.id: [] for t in trials}
    queue = list(trials)
    unfinished = {t.id for t in trials}
    end = time.time() + deadline
    while unfinished:
        if time.time() > end:
            last = {i: (events[i][-1].kind if events[i] else "nothing") for i in sorted(unfinished)}
            raise AssertionError(f"trials did not finish within {deadline} s (their last event): {last}")
        while queue and engine.capacity > 0:
            engine.submit(queue.pop(0))
        running_before = set(engine.running())
        try:
            got = engine.wait(0.2)
        except KeyboardInterrupt:
            raise
        except BaseException as e:
            lost = running_before - set(engine.running())
            for trial_id in lost:
                events[trial_id].append(TrialEvent("finished", trial_id, status="escaped", error=repr(e)))
                unfinished.discard(trial_id)
            continue
        for event in got:
            events.setdefault(event.trial_id, []).append(event)
            if event.kind == "finished":
                unfinished.discard(event.trial_id)
    return events


def finished(events: list[TrialEvent]) -> TrialEvent:
    done = [e for e in events if e.kind == "finished"]
    assert len(done) == 1, f"expected exactly one finished event, got {events}"
    return done[0]


def is_worker(pid: int) -> bool:
    """Whether ``pid`` is a live archsmith worker process (workers name themselves,
    forked or spawned)."""
    try:
        name = Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return False
    # Ray names its actors' processes after the actor class (15 bytes of "ray::_TrialActor").
    return name in ("archsmith-work", "ray::_TrialActo") and not process_gone(pid)


def worker_processes() -> set[int]:
    """Pids of the live (non-zombie) archsmith worker processes descending from
    this process (its children, or its template's)."""
    return {pid for pid in descendants_of(os.getpid()) if is_worker(pid)}


def descendants_of(root: int) -> set[int]:
    """Pids of the live descendants of ``root`` (a scan of /proc)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    found, todo = set(), [root]
    while todo:
        parent = todo.pop()
        for pid, ppid in parents.items():
            if ppid == parent and pid not in found:
                found.add(pid)
                todo.append(pid)
    return found


def wait_gone(pids: set[int], deadline: float = 5.0) -> set[int]:
    """Wait up to ``deadline`` seconds for ``pids`` to be gone; return those still alive."""
    end = time.time() + deadline
    while True:
        alive = {p for p in pids if not process_gone(p)}
        if not alive or time.time() > end:
            return alive
        time.sleep(0.02)


def process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def parent_of(pid: int) -> int:
    """The parent pid of ``pid`` (from /proc)."""
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def worker_pids(engine: ProcessEngine) -> set[int]:
    return {w.process.pid for w in engine._workers}


@contextlib.contextmanager
def started(engine: ProcessEngine, work: TrialPayload | None = None) -> Iterator[ProcessEngine]:
    """``engine`` started with ``work`` (the default payload), shut down after."""
    engine.start(work or payload())
    try:
        yield engine
    finally:
        engine.shutdown()

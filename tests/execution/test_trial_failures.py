"""Failure injection: a trial that raises, returns NaN or a non-number, hangs past
``trial_timeout`` or kills its own process becomes a *failed* trial carrying its
error text; a dead worker is replaced and the following trials succeed.

Every fault runs on every registered engine where it is survivable (an engine
whose trials run in the driver's own process cannot survive a segfault)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest

from archsmith.execution import ENGINES, Engine, TrialEvent

from ._execution_helpers import finished, make_engine, payload, run_trials, trial, worker_processes

TRIAL_TIMEOUT = 1.5
NAN_AUX = 999  # the trial whose metric dict holds NaN in a key that is not the objective

# action -> text the failed trial's error must contain (one of them, for a tuple). Faults that end a worker come
# early and alternate with cheap ones, so worker restarts overlap with other trials.
FAULTS = {
    "hang": "trial_timeout",
    "raise": "ValueError: boom from the trial",
    "exit": "exited with code 3",
    "nan": "not finite",  # a plain number is the objective
    "segv_ctypes": "SIGSEGV",  # a real segfault (os.kill(pid, SIGSEGV) would end the same way)
    "inf": "not finite",
    "sigkill": "SIGKILL",  # what the kernel's OOM killer sends
    "string": "not a number",
    "sysexit": ("SystemExit: 2", "exited with code 2"),  # e.g. argparse in training code calls sys.exit(2)
    "none": "neither returned a metric",
    "bad_dict": "not a number",
}
# Faults that end the process they run in: only an engine running trials elsewhere survives them.
KILLS_ITS_PROCESS = {"exit", "segv_ctypes", "sigkill"}
IN_DRIVER = {"inprocess"}
# What an engine whose trials run in remote actors can say of a process that died: the exit
# code and signal are its node's to know (Ray reports only that the actor's process died).
REMOTE_DEATH = {"ray": "the Ray actor's process died"}


def faults_for(engine_name: str) -> list[str]:
    return [f for f in FAULTS if not (engine_name in IN_DRIVER and f in KILLS_ITS_PROCESS)]


class Outcome:
    def __init__(self, name: str, engine: Engine, events: dict[int, list[TrialEvent]], ids: dict[str, int]) -> None:
        self.name, self.engine, self.events, self.ids = name, engine, events, ids


@pytest.fixture(scope="module", params=sorted(ENGINES))
def outcome(request: pytest.FixtureRequest) -> Iterator[Outcome]:
    """All faults of one engine in a single batch (worker restarts overlap), with a
    healthy trial after each fault."""
    name = request.param
    engine = make_engine(name, concurrency=2, trial_timeout=TRIAL_TIMEOUT)
    engine.start(payload())
    trials, ids = [], {}
    for n, fault in enumerate(faults_for(name)):
        ids[fault] = 10 * n + 1
        trials += [trial(10 * n + 1, fault), trial(10 * n + 2, "ok")]
    trials.append(trial(NAN_AUX, "nan_aux"))
    events = run_trials(engine, trials, deadline=90)
    yield Outcome(name, engine, events, ids)
    engine.shutdown()


@pytest.mark.parametrize("fault", list(FAULTS))
def test_fault_becomes_a_failed_trial_with_its_error(outcome: Outcome, fault: str) -> None:
    if fault not in outcome.ids:
        pytest.skip("this fault would end the driver itself on an engine that runs trials in it")
    done = finished(outcome.events[outcome.ids[fault]])
    assert done.status == "failed", f"{fault}: expected a failed trial, got {done}"
    expected = FAULTS[fault] if isinstance(FAULTS[fault], tuple) else (FAULTS[fault],)
    if fault in KILLS_ITS_PROCESS and outcome.name in REMOTE_DEATH:
        expected = (REMOTE_DEATH[outcome.name],)
    assert done.error and any(text in done.error for text in expected), (
        f"{fault}: error text lacks {FAULTS[fault]!r}: {done.error!r}"
    )
    assert done.metric is None


@pytest.mark.parametrize("fault", list(FAULTS))
def test_trial_after_fault_succeeds(outcome: Outcome, fault: str) -> None:
    if fault not in outcome.ids:
        pytest.skip("not run on this engine")
    done = finished(outcome.events[outcome.ids[fault] + 1])
    assert done.status == "succeeded", done.error


def test_intermediate_results_before_a_fault_are_kept(outcome: Outcome) -> None:
    for fault, trial_id in outcome.ids.items():
        if finished(outcome.events[trial_id]).status == "escaped":
            continue  # the fault escaped the engine (reported by test_fault_becomes_a_failed_trial_with_its_error)
        steps = [e.step for e in outcome.events[trial_id] if e.kind == "intermediate"]
        assert steps == [0, 1], f"{fault}: intermediate results reported before the fault were lost: {steps}"


def test_timeout_is_enforced_promptly(outcome: Outcome) -> None:
    done = finished(outcome.events[outcome.ids["hang"]])
    assert done.duration is not None
    assert TRIAL_TIMEOUT <= done.duration < TRIAL_TIMEOUT + 3


def test_dead_workers_are_replaced_and_the_engine_goes_on(outcome: Outcome) -> None:
    engine = outcome.engine
    capacity = engine.capacity
    assert engine.running() == []
    events = run_trials(engine, [trial(900 + i, "ok", width=2 + i % 3) for i in range(4)])
    for i in range(4):
        done = finished(events[900 + i])
        assert done.status == "succeeded", done.error
        assert done.metric["value"] == 2 + i % 3
    assert engine.capacity == capacity
    pids = {int(finished(events[900 + i]).metric["pid"]) for i in range(4)}
    if pids == {os.getpid()}:
        return  # trials run in the driver: there are no workers to replace
    killed = {
        fault: int(next(e.metric["pid"] for e in outcome.events[trial_id] if e.kind == "intermediate" and e.step == 1))
        for fault, trial_id in outcome.ids.items()
        if fault in KILLS_ITS_PROCESS | {"hang"}  # sys.exit() fails the trial; its worker lives on
    }
    end = time.time() + 5
    while len(worker_processes()) != capacity and time.time() < end:
        time.sleep(0.05)
    alive = worker_processes()
    assert len(alive) == capacity, f"expected one live worker per slot, found {len(alive)}"
    assert pids <= alive
    assert not (set(killed.values()) & alive), f"processes of killed trials are still alive: {killed}"


def test_nan_in_a_key_that_is_not_the_objective_is_not_a_failure(outcome: Outcome) -> None:
    """Only the experiment knows which key is the objective (it fails a non-finite
    one); the engine passes a dict metric through, NaN included."""
    done = finished(outcome.events[NAN_AUX])
    assert done.status == "succeeded", done.error
    assert done.metric["value"] == 3.0
    assert done.metric["aux"] != done.metric["aux"]  # NaN

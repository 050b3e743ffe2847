"""The engine interface (start, submit, wait, capacity, running, cancel, shutdown),
tested on every registered engine: an engine registered later gets these tests."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest

from archsmith.execution import ENGINES, Engine, TrialEvent

from ._execution_helpers import (
    finished,
    make_engine,
    payload,
    process_gone,
    run_trials,
    trial,
    worker_processes,
)

# Trials of these engines run inside wait(), in the caller: only a queued trial can be cancelled.
RUNS_INSIDE_WAIT = {"inprocess"}


class EngineHolder:
    """One started engine per engine name and test module (workers take seconds to
    start); restarted if a test shut it down."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._engine: Engine | None = None

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = make_engine(self.name, concurrency=2)
            self._engine.start(payload())
        return self._engine

    def forget(self) -> None:
        self._engine = None

    def close(self) -> None:
        if self._engine is not None:
            self._engine.shutdown()
            self._engine = None


@pytest.fixture(scope="module", params=sorted(ENGINES))
def holder(request: pytest.FixtureRequest) -> Iterator[EngineHolder]:
    h = EngineHolder(request.param)
    yield h
    h.close()


def collect_until_finished(engine: Engine, ids: set[int], deadline: float = 60.0) -> list[TrialEvent]:
    events: list[TrialEvent] = []
    end = time.time() + deadline
    while not ids <= {e.trial_id for e in events if e.kind == "finished"}:
        assert time.time() < end, f"trials {ids} did not finish: {events}"
        events += engine.wait(0.2)
    return events


def wait_until_running(engine: Engine, trial_id: int, deadline: float = 60.0) -> int:
    """Wait for the trial's second intermediate result (the trial code is running);
    return the pid it reported."""
    end = time.time() + deadline
    while True:
        for event in engine.wait(0.2):
            if event.trial_id == trial_id and event.kind == "intermediate" and event.step == 1:
                return int(event.metric["pid"])
        assert time.time() < end, f"trial {trial_id} never started"


def test_submit_capacity_running_and_wait(holder: EngineHolder) -> None:
    engine = holder.engine
    capacity = engine.capacity
    assert capacity >= 1
    assert engine.running() == []
    ids = list(range(100, 100 + capacity))
    for n, trial_id in enumerate(ids, 1):
        engine.submit(trial(trial_id, "slow", width=2 + n % 3))
        assert engine.capacity == capacity - n
        assert sorted(engine.running()) == ids[:n]
    assert engine.capacity == 0

    events = collect_until_finished(engine, set(ids))

    assert engine.capacity == capacity
    assert engine.running() == []
    for n, trial_id in enumerate(ids, 1):
        mine = [e for e in events if e.trial_id == trial_id]
        kinds = [e.kind for e in mine]
        assert kinds == ["started", "intermediate", "intermediate", "finished"], mine
        assert [e.step for e in mine if e.kind == "intermediate"] == [0, 1]
        assert mine[1].metric == 0.25
        done = mine[-1]
        assert done.status == "succeeded", done.error
        assert done.metric["value"] == 2 + n % 3  # the sample reached the model: width == out_features
        assert done.error is None
        assert done.worker, "a finished event names the worker that ran it"
        assert done.duration is not None and done.duration >= 0.4
        assert mine[0].at <= done.at


def test_wait_returns_promptly_when_nothing_runs(holder: EngineHolder) -> None:
    engine = holder.engine
    start = time.time()
    assert engine.wait(0.3) == []
    assert time.time() - start < 2.0


def test_trials_on_several_workers_run_side_by_side(holder: EngineHolder) -> None:
    engine = holder.engine
    if engine.capacity < 2:
        pytest.skip("this engine runs one trial at a time")
    events = run_trials(engine, [trial(200, "slow"), trial(201, "slow")])
    a, b = finished(events[200]), finished(events[201])
    assert a.status == b.status == "succeeded"
    assert a.worker != b.worker
    assert a.metric["pid"] != b.metric["pid"]
    started = {i: next(e.at for e in events[i] if e.kind == "started") for i in (200, 201)}
    assert started[200] < b.at and started[201] < a.at, "both trials should run at the same time"


def test_cancel_a_submitted_trial(holder: EngineHolder) -> None:
    engine = holder.engine
    capacity = engine.capacity
    engine.submit(trial(300, "hang"))
    assert 300 in engine.running()
    engine.cancel(300)
    assert 300 not in engine.running()
    assert engine.capacity == capacity

    engine.submit(trial(301))
    events = collect_until_finished(engine, {301})
    assert [e for e in events if e.trial_id == 300 and e.kind == "finished"] == [], "a cancelled trial never finishes"
    assert finished([e for e in events if e.trial_id == 301]).status == "succeeded"
    events += engine.wait(0.5)
    assert [e for e in events if e.trial_id == 300 and e.kind == "finished"] == []
    assert engine.running() == []
    assert engine.capacity == capacity


def test_cancel_a_trial_while_it_runs(holder: EngineHolder) -> None:
    if holder.name in RUNS_INSIDE_WAIT:
        pytest.skip(f"{holder.name} runs a trial inside wait(); it cannot be cancelled mid-run")
    engine = holder.engine
    capacity = engine.capacity
    engine.submit(trial(400, "hang"))
    pid = wait_until_running(engine, 400)

    engine.cancel(400)

    assert engine.running() == []
    assert engine.capacity == capacity
    end = time.time() + 10
    while not process_gone(pid):
        assert time.time() < end, "cancel() left the trial's process running"
        time.sleep(0.05)
    events = run_trials(engine, [trial(401), trial(402)])
    assert [e for e in events.get(400, []) if e.kind == "finished"] == []
    assert finished(events[401]).status == finished(events[402]).status == "succeeded"
    assert pid not in {finished(events[i]).metric["pid"] for i in (401, 402)}


def test_shutdown_stops_everything_even_a_hanging_trial(holder: EngineHolder) -> None:
    engine = holder.engine
    before = worker_processes()
    engine.submit(trial(500, "hang"))
    pid = None
    if holder.name not in RUNS_INSIDE_WAIT:
        pid = wait_until_running(engine, 500)
        assert pid != os.getpid()

    start = time.time()
    holder.forget()
    engine.shutdown()

    assert time.time() - start < 10, "shutdown() must not wait for a running trial"
    assert engine.running() == []
    if pid is not None:
        assert process_gone(pid)
    assert not (worker_processes() & before), "shutdown() left worker processes alive"
    engine.shutdown()  # a second shutdown is harmless

"""``ProcessEngine``: trials in persistent local worker processes.

Each worker gets the pickled space recipe and evaluator once, at start, then runs
trials sent over its pipe. A worker that dies (segfault, ``os._exit``, OOM kill)
or runs a trial past ``trial_timeout`` is replaced; its trial fails.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from multiprocessing.connection import Connection, wait
from typing import Any

import cloudpickle

from archsmith.space import ArchsmithError

from ._base import Engine
from ._registry import register_engine
from ._trial import Trial, TrialEvent, TrialPayload


class EngineError(ArchsmithError, RuntimeError):
    """The engine cannot run trials at all (e.g. workers cannot load the payload)."""


def _exit_reason(code: int | None) -> str:
    if code is None:
        return "it stopped responding"
    if code < 0:
        try:
            return f"it was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"it was killed by signal {-code}"
    return f"it exited with code {code}"


def _failed(worker: _Worker, error: str) -> TrialEvent:
    """The finished event of the trial a dead or killed worker was running."""
    now = time.time()
    assert worker.trial is not None
    return TrialEvent(
        "finished",
        worker.trial,
        worker.name,
        status="failed",
        error=error,
        duration=now - (worker.started or now),
        at=now,
    )


class _Worker:
    def __init__(self, name: str, process: Any, conn: Connection) -> None:
        self.name, self.process, self.conn = name, process, conn
        self.trial: int | None = None
        self.started: float | None = None  # when the trial began running (not when it was sent)
        self.ready = False


@register_engine("process")
class ProcessEngine(Engine):
    """``concurrency`` persistent worker processes on this machine."""

    def __init__(
        self,
        concurrency: int = 2,
        trial_timeout: float | None = None,
        gpus_per_trial: int = 0,
    ) -> None:
        super().__init__(trial_timeout)
        self.concurrency = concurrency
        self.gpus_per_trial = gpus_per_trial
        self._workers: list[_Worker] = []
        self._payload = b""
        self._spawned = 0
        self._devices: list[str | None] = [None] * concurrency

    # Workers --------------------------------------------------------------------
    def start(self, payload: TrialPayload) -> None:
        try:
            self._payload = cloudpickle.dumps(payload)
        except Exception as e:
            raise EngineError(
                f"the model space or evaluator cannot be pickled for worker processes: {e}. "
                "Keep data sets and models picklable (no open files, locks or live connections), "
                "or use engine='inprocess'."
            ) from e
        self._devices = self._assign_devices()
        self._workers = [self._spawn(i) for i in range(self.concurrency)]

    def _assign_devices(self) -> list[str | None]:
        if not self.gpus_per_trial:
            return [None] * self.concurrency
        import torch

        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        need = self.gpus_per_trial * self.concurrency
        if count < need:
            raise EngineError(
                f"gpus_per_trial={self.gpus_per_trial} x concurrency={self.concurrency} needs {need} GPUs, "
                f"but {count} are visible; lower them, or use gpus_per_trial=0 for CPU"
            )
        g = self.gpus_per_trial
        return [",".join(str(d) for d in range(i * g, (i + 1) * g)) for i in range(self.concurrency)]

    def _spawn(self, slot: int) -> _Worker:
        self._spawned += 1
        name = f"worker-{self._spawned}"
        ours, theirs = socket.socketpair()
        threads = max(1, (os.cpu_count() or 1) // self.concurrency)
        env = dict(os.environ, OMP_NUM_THREADS=str(threads))
        if self._devices[slot] is not None:
            env["CUDA_VISIBLE_DEVICES"] = self._devices[slot]  # type: ignore[assignment]
        process = subprocess.Popen(
            [sys.executable, "-m", "archsmith.execution._worker", str(theirs.fileno()), name, str(threads)],
            pass_fds=[theirs.fileno()],
            env=env,
            stdin=subprocess.DEVNULL,
        )
        theirs.close()
        conn = Connection(ours.detach())
        conn.send_bytes(self._payload)  # once per worker, not per trial
        return _Worker(name, process, conn)

    def _replace(self, worker: _Worker) -> None:
        slot = self._workers.index(worker)
        if worker.process.poll() is None:
            worker.process.kill()
        worker.process.wait(5)
        worker.conn.close()
        self._workers[slot] = self._spawn(slot)

    # Engine interface -----------------------------------------------------------------
    @property
    def capacity(self) -> int:
        return sum(1 for w in self._workers if w.trial is None)

    def submit(self, trial: Trial) -> None:
        worker = next(w for w in self._workers if w.trial is None)
        worker.trial, worker.started = trial.id, None
        worker.conn.send(("trial", trial.id, trial.sample, trial.seed))

    def running(self) -> list[int]:
        return [w.trial for w in self._workers if w.trial is not None]

    def cancel(self, trial_id: int) -> None:
        for worker in self._workers:
            if worker.trial == trial_id:
                self._replace(worker)

    def request_stop(self, trial_id: int) -> None:
        for worker in self._workers:
            if worker.trial == trial_id:
                worker.conn.send(("stop_trial", trial_id))

    def wait(self, timeout: float) -> list[TrialEvent]:
        events: list[TrialEvent] = []
        if self.trial_timeout:
            busy = [w.started + self.trial_timeout - time.time() for w in self._workers if w.started is not None]
            if busy:
                timeout = max(0.0, min(timeout, *busy))
        # A worker that dies closes its socket, so its connection turns readable.
        handles: dict[Any, _Worker] = {w.conn: w for w in self._workers}
        for handle in wait(list(handles), timeout):
            worker = handles[handle]
            if worker in self._workers:
                self._collect(worker, events)
        self._enforce_timeouts(events)
        return events

    def _collect(self, worker: _Worker, events: list[TrialEvent]) -> None:
        try:
            while worker.conn.poll():
                self._handle(worker, worker.conn.recv(), events)
            return
        except (EOFError, OSError):
            pass
        try:
            worker.process.wait(5)
        except subprocess.TimeoutExpired:
            worker.process.kill()
        if worker.trial is not None:
            reason = _exit_reason(worker.process.returncode)
            events.append(_failed(worker, f"the worker process died while running the trial: {reason}"))
        self._replace(worker)

    def _handle(self, worker: _Worker, msg: tuple[Any, ...], events: list[TrialEvent]) -> None:
        kind = msg[0]
        if kind == "ready":
            worker.ready = True
        elif kind == "fatal":
            self.shutdown()
            raise EngineError(f"a worker could not load the model space and evaluator:\n{msg[1]}")
        elif kind == "started":
            worker.started = msg[2]
            events.append(TrialEvent("started", msg[1], worker.name, at=msg[2]))
        elif kind == "intermediate":
            events.append(TrialEvent("intermediate", msg[1], worker.name, step=msg[2], metric=msg[3], at=msg[4]))
        elif kind == "finished":
            event: TrialEvent = msg[1]
            if event.trial_id == worker.trial:
                worker.trial, worker.started = None, None
                events.append(event)

    def _enforce_timeouts(self, events: list[TrialEvent]) -> None:
        if not self.trial_timeout:
            return
        now = time.time()
        for worker in list(self._workers):
            if worker.trial is not None and worker.started is not None and now - worker.started > self.trial_timeout:
                error = f"timed out after {self.trial_timeout} s (trial_timeout); the worker was replaced"
                events.append(_failed(worker, error))
                self._replace(worker)

    def shutdown(self) -> None:
        for worker in self._workers:
            try:
                worker.conn.send(("shutdown",))
            except OSError:
                pass
            if worker.trial is not None:
                worker.process.kill()  # a running trial is cancelled, not awaited
        deadline = time.time() + 5
        for worker in self._workers:
            try:
                worker.process.wait(max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                worker.process.kill()
                worker.process.wait(1)
            worker.conn.close()
        self._workers = []

"""``ProcessEngine``: trials in persistent local worker processes.

Each worker gets the pickled space recipe and evaluator once, at start, then runs
trials sent over its socket. The engine watches each worker *process* (a pidfd,
or ``poll()`` where pidfds are unavailable), not only its socket, which a child
the trial forked may hold open.

Faults it survives, each ending as a failed trial (the engine goes on):

- a trial that raises, returns NaN or a non-number (see ``Runner``);
- a worker that dies while running a trial (segfault, ``os._exit``, the OOM
  killer's SIGKILL), even with a forked child holding its socket: the messages it
  sent before dying are kept, the trial fails with the exit reason (and, with
  ``log_dir``, the Python stack ``faulthandler`` wrote), the worker is replaced;
- a trial past ``trial_timeout``: the worker is asked for its stack (SIGUSR1,
  with ``log_dir``), then killed with its process group and replaced;
- a worker dying between trials (a thread or ``atexit`` of the previous trial):
  a trial it had been sent but not started is resubmitted to its replacement;
  sending to a dead worker never raises.

Processes a trial starts never outlive it: workers are child subreapers that kill
them after each trial, and a replaced worker's whole process group is killed.
Workers die with the driver (even by SIGKILL), taking their trial's processes
along. See ``_worker`` and ``_processes`` for the mechanisms (Linux-strong,
portable fallbacks elsewhere).

Workers start fast: on Linux they are forked from a template process that has
torch loaded (forked from the driver itself where that is safe), not started as
fresh interpreters; see ``_launch``. Either way the user's script is never
re-imported (a ``__main__`` without an ``if __name__ == "__main__":`` guard works).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

import cloudpickle

from archsmith.space import ArchsmithError

from ._base import Engine
from ._launch import (
    Launcher,
    LaunchError,
    LaunchRequest,
    WorkerProcess,
    WorkerStart,
    make_launcher,
    resolve_worker_start,
)
from ._output import failed_event, fault_stack, log_path, size, tail
from ._processes import pidfd
from ._registry import register_engine
from ._trial import Trial, TrialEvent, TrialPayload

#: How many times a trial is resubmitted after workers died before it started.
MAX_RESUBMITS = 3
#: Workers dying one after another before they are ready: the payload kills them.
MAX_FAILED_STARTS = 3
#: Without pidfds, dead workers are noticed by polling this often (seconds).
POLL_DEAD = 0.5
#: How long a timed-out worker gets to write its stack before it is killed.
STACK_DUMP_WAIT = 0.2


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


class _Worker:
    def __init__(self, name: str, process: WorkerProcess, conn: Connection) -> None:
        self.name, self.process, self.conn = name, process, conn
        self.pidfd = pidfd(process.pid)  # readable once the process exits, whoever holds its socket
        self.trial: Trial | None = None
        self.started: float | None = None  # when the trial began running (not when it was sent)
        self.ready = False

    @property
    def trial_id(self) -> int | None:
        return None if self.trial is None else self.trial.id

    def send(self, msg: tuple[Any, ...]) -> None:
        """Send, ignoring a dead worker (``wait()`` notices the death and deals with it)."""
        try:
            self.conn.send(msg)
        except OSError:
            pass

    def kill_group(self) -> None:
        """SIGKILL the worker and every process of its group (its trial's). Call
        before reaping it: an unreaped worker keeps its group id from reuse."""
        pid = self.process.pid
        try:
            group = os.getpgid(pid)
        except OSError:
            group = None
        if group == pid and group != os.getpgrp():  # its own group, never the driver's
            with contextlib.suppress(OSError):
                os.killpg(group, signal.SIGKILL)
        elif self.process.returncode is None:
            with contextlib.suppress(OSError):
                self.process.kill()

    def reap(self) -> int | None:
        try:
            return self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            try:
                return self.process.wait(5)
            except subprocess.TimeoutExpired:
                return None

    def close(self) -> None:
        self.conn.close()
        if self.pidfd is not None:
            os.close(self.pidfd)
            self.pidfd = None


@register_engine("process")
class ProcessEngine(Engine):
    """``concurrency`` persistent worker processes on this machine.

    With ``log_dir``, each trial's output (fds 1 and 2: C code and child processes
    included) goes to ``<log_dir>/<trial id>/output.log``, and a failed trial's
    event carries the log's tail (``TrialEvent.output``) and, for a crash or a
    timeout, the Python stack ``faulthandler`` wrote there (in ``error``).

    ``worker_start`` is how workers start: ``"auto"`` (forked from a template
    process, itself forked from this one where that is safe), ``"fork"``,
    ``"forkserver"`` or ``"spawn"``; ``None`` reads ``$ARCHSMITH_WORKER_START``
    (default ``"auto"``). See ``archsmith.execution._launch``. After ``start()``,
    ``start_method`` says which was used and ``start_note`` why it is not ``fork``."""

    def __init__(
        self,
        concurrency: int = 2,
        trial_timeout: float | None = None,
        gpus_per_trial: int = 0,
        *,
        log_dir: Path | None = None,
        worker_start: WorkerStart | None = None,
    ) -> None:
        super().__init__(trial_timeout)
        try:
            self.worker_start = resolve_worker_start(worker_start)
        except LaunchError as e:
            raise EngineError(str(e)) from None
        self.concurrency = concurrency
        self.gpus_per_trial = gpus_per_trial
        self.log_dir = None if log_dir is None else Path(log_dir).absolute()
        self._launcher: Launcher | None = None
        self._workers: list[_Worker] = []
        self._payload = b""
        self._spawned = 0
        self._failed_starts = 0
        self._resubmits: dict[int, int] = {}
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
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
        try:
            self._launcher = make_launcher(self.worker_start)
        except LaunchError as e:
            raise EngineError(str(e)) from None
        self._workers = self._spawn(*range(self.concurrency))

    @property
    def start_method(self) -> str | None:
        """How workers are started (``"fork"``, ``"forkserver"``, ``"spawn"``); None before ``start()``."""
        return None if self._launcher is None else self._launcher.method

    @property
    def start_note(self) -> str | None:
        """Why workers are not forked from this process, where ``auto`` wanted to."""
        return None if self._launcher is None else self._launcher.note

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

    def _spawn(self, *slots: int) -> list[_Worker]:
        """Start a worker for each slot: all asked for at once (a template forks them
        back to back), then each sent the payload."""
        threads = max(1, (os.cpu_count() or 1) // self.concurrency)
        requests, ours = [], []
        for slot in slots:
            self._spawned += 1
            mine, theirs = socket.socketpair()
            env = {"OMP_NUM_THREADS": str(threads)}
            device = self._devices[slot]
            if device is not None:
                env["CUDA_VISIBLE_DEVICES"] = device
            requests.append(LaunchRequest(f"worker-{self._spawned}", theirs, env, threads, self.log_dir))
            ours.append(mine)
        assert self._launcher is not None, "start() first"
        try:
            processes = self._launcher.launch(requests)
        except LaunchError as e:
            for sock in ours:
                sock.close()
            self.shutdown()
            raise EngineError(f"cannot start worker processes: {e}") from e
        finally:
            for request in requests:
                request.sock.close()
        workers = []
        for request, mine, process in zip(requests, ours, processes):
            conn = Connection(mine.detach())
            workers.append(_Worker(request.name, process, conn))
            try:
                conn.send_bytes(self._payload)  # once per worker, not per trial
            except OSError:
                pass  # it died at once: wait() finds out
        return workers

    def _replace(self, worker: _Worker) -> _Worker:
        """Kill ``worker`` with its process group and start another in its slot."""
        slot = self._workers.index(worker)
        worker.kill_group()
        worker.reap()
        worker.close()
        (new,) = self._spawn(slot)
        self._workers[slot] = new
        return new

    # Engine interface -----------------------------------------------------------------
    @property
    def capacity(self) -> int:
        return sum(1 for w in self._workers if w.trial is None)

    def submit(self, trial: Trial) -> None:
        worker = next(w for w in self._workers if w.trial is None)
        self._send_trial(worker, trial)

    def _send_trial(self, worker: _Worker, trial: Trial) -> None:
        worker.trial, worker.started = trial, None
        worker.send(("trial", trial.id, trial.sample, trial.seed))

    def running(self) -> list[int]:
        return [w.trial.id for w in self._workers if w.trial is not None]

    def cancel(self, trial_id: int) -> None:
        for worker in list(self._workers):
            if worker.trial_id == trial_id:
                self._replace(worker)

    def request_stop(self, trial_id: int) -> None:
        for worker in self._workers:
            if worker.trial_id == trial_id:
                worker.send(("stop_trial", trial_id))

    def wait(self, timeout: float) -> list[TrialEvent]:
        events: list[TrialEvent] = []
        if self.trial_timeout:
            busy = [w.started + self.trial_timeout - time.time() for w in self._workers if w.started is not None]
            if busy:
                timeout = max(0.0, min(timeout, *busy))
        if any(w.pidfd is None for w in self._workers):
            timeout = min(timeout, POLL_DEAD)
        handles: dict[Any, _Worker] = {}
        for w in self._workers:
            handles[w.conn] = w
            if w.pidfd is not None:
                handles[w.pidfd] = w
        dead: list[_Worker] = []
        for handle in wait(list(handles), timeout):
            worker = handles[handle]
            if worker in dead:
                continue
            if handle is worker.conn and self._collect(worker, events):
                continue
            dead.append(worker)  # its process exited, or its socket closed
        for worker in self._workers:
            if worker.pidfd is None and worker not in dead and worker.process.poll() is not None:
                dead.append(worker)
        for worker in dead:
            if worker in self._workers:
                self._bury(worker, events)
        self._enforce_timeouts(events)
        return events

    def _collect(self, worker: _Worker, events: list[TrialEvent]) -> bool:
        """Handle the messages waiting on the worker's socket; False once it is closed."""
        try:
            while worker.conn.poll():
                self._handle(worker, worker.conn.recv(), events)
        except (EOFError, OSError):
            return False
        return True

    def _bury(self, worker: _Worker, events: list[TrialEvent]) -> None:
        """A worker exited (or closed its socket): keep what it sent, kill what is
        left of its process group, fail or resubmit its trial, replace it."""
        self._collect(worker, events)  # messages sent before it died: a "finished" among them
        worker.kill_group()  # e.g. a forked child holding its socket, processes its trial started
        reason = _exit_reason(worker.reap())
        trial, started, was_ready = worker.trial, worker.started, worker.ready
        if not was_ready:
            self._failed_starts += 1
            if self._failed_starts >= MAX_FAILED_STARTS:
                self.shutdown()
                raise EngineError(
                    f"{MAX_FAILED_STARTS} worker processes died while loading the model space and evaluator "
                    f"(the last: {reason}); run a trial with engine='inprocess' to see the fault"
                )
        new = self._replace(worker)
        if trial is None:
            return
        if started is None:  # it never began: not the trial's fault
            count = self._resubmits[trial.id] = self._resubmits.get(trial.id, 0) + 1
            if count <= MAX_RESUBMITS:
                self._send_trial(new, trial)
                return
            events.append(
                self._failed(
                    worker,
                    trial,
                    f"{count} worker processes died before the trial could start (the last: {reason})",
                    started,
                )
            )
            return
        error = f"the worker process died while running the trial: {reason}"
        stack = fault_stack(log_path(self.log_dir, trial.id)) if self.log_dir is not None else None
        events.append(self._failed(worker, trial, error + (f"\n\n{stack}" if stack else ""), started))

    def _handle(self, worker: _Worker, msg: tuple[Any, ...], events: list[TrialEvent]) -> None:
        kind = msg[0]
        if kind == "ready":
            worker.ready = True
            self._failed_starts = 0
        elif kind == "fatal":
            self.shutdown()
            raise EngineError(f"a worker could not load the model space and evaluator:\n{msg[1]}")
        elif kind == "started":
            if msg[1] == worker.trial_id:
                worker.started = msg[2]
                self._resubmits.pop(msg[1], None)
                events.append(TrialEvent("started", msg[1], worker.name, at=msg[2]))
        elif kind == "intermediate":
            events.append(TrialEvent("intermediate", msg[1], worker.name, step=msg[2], metric=msg[3], at=msg[4]))
        elif kind == "finished":
            event: TrialEvent = msg[1]
            if event.trial_id == worker.trial_id:
                worker.trial, worker.started = None, None
                if event.status != "succeeded" and self.log_dir is not None:
                    event.output = tail(log_path(self.log_dir, event.trial_id))
                events.append(event)

    def _failed(self, worker: _Worker, trial: Trial, error: str, started: float | None) -> TrialEvent:
        """The finished event of the trial a dead or killed worker had."""
        return failed_event(trial.id, worker.name, error, self.log_dir, started)

    def _enforce_timeouts(self, events: list[TrialEvent]) -> None:
        if not self.trial_timeout:
            return
        now = time.time()
        late = [
            w
            for w in self._workers
            if w.trial is not None and w.started is not None and now - w.started > self.trial_timeout
        ]
        if not late:
            return
        marks: dict[int, int] = {}
        if self.log_dir is not None:  # ask each for the stack it is stuck in (faulthandler writes it to the log)
            for worker in late:
                assert worker.trial is not None
                marks[id(worker)] = size(log_path(self.log_dir, worker.trial.id))
                with contextlib.suppress(OSError):
                    os.kill(worker.process.pid, signal.SIGUSR1)
            time.sleep(STACK_DUMP_WAIT)
        for worker in late:
            trial, started = worker.trial, worker.started
            assert trial is not None
            self._replace(worker)
            error = f"timed out after {self.trial_timeout} s (trial_timeout); the worker was replaced"
            if self.log_dir is not None:
                stack = fault_stack(log_path(self.log_dir, trial.id), since=marks[id(worker)])
                if stack:
                    error += f"\n\nwhere it was (faulthandler):\n{stack}"
            events.append(self._failed(worker, trial, error, started))

    def shutdown(self) -> None:
        for worker in self._workers:
            worker.send(("shutdown",))
            if worker.trial is not None:
                worker.kill_group()  # a running trial is cancelled, not awaited
        deadline = time.time() + 5
        for worker in self._workers:
            try:
                worker.process.wait(max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                worker.kill_group()
                worker.reap()
            worker.close()
        self._workers = []
        if self._launcher is not None:
            self._launcher.close()

"""``InProcessEngine``: trials run one by one in the driver (pdb works).

Faults it survives, each ending as a failed trial: a trial that raises (even
``SystemExit``), returns NaN or a non-number, or runs past ``trial_timeout``.
It cannot survive a trial that ends the process (segfault, ``os._exit``, OOM
kill): use ``engine="process"`` for such code.

Timeouts (main thread of a Unix process only) raise ``_TrialTimeout`` from
SIGALRM. A trial that catches ``BaseException`` and goes on is pushed out: for
``timeout_grace`` seconds the timeout is raised again every ``TICK`` and, through
a trace function, on every line the trial's own code runs, an ``except`` clause's
body included, so it escapes each handler that catches it and the process lives
on. A trial still running after the grace period (a double handler in one frame,
a C call that never returns) is recorded as failed through ``listener`` and the
process ends (``os._exit(EXIT_CODE)``) with a message saying ``run(resume=True)``
continues; a watchdog thread does the same if the trial never returns to Python
code to see the signal.
"""

from __future__ import annotations

import collections
import os
import signal
import sys
import threading
import time
import traceback
from pathlib import Path
from types import CodeType, FrameType
from typing import Any

from ._alarm import Alarm
from ._base import Engine
from ._capture import OutputCapture, capture_output
from ._output import tail
from ._registry import register_engine
from ._run import Runner
from ._trial import Trial, TrialEvent, TrialPayload

#: How often the timeout is raised again while a trial does not stop (seconds).
TICK = 0.1
#: The process's exit status when a trial could not be stopped (EX_SOFTWARE).
EXIT_CODE = 70
#: How long past the grace period the watchdog thread waits for the main thread.
WATCHDOG_EXTRA = 1.0

_ARCHSMITH_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep  # the package's root


class _TrialTimeout(BaseException):
    """Raised by the alarm handler; a BaseException so user code's ``except
    Exception`` cannot swallow it."""


def _ours(code: CodeType) -> bool:
    """archsmith's own frames, never interrupted by the escalation: they let the
    timeout through and their clean-up must run."""
    return code.co_filename.startswith(_ARCHSMITH_DIR)


def in_callback(frame: FrameType | None) -> bool:
    """Whether ``frame`` runs inside archsmith code that the trial called (a report
    going to the store, ``should_stop``...): the timeout must not cut that short.
    Seen from the inside out: an archsmith frame, then a frame of the trial's."""
    stop = InProcessEngine.wait.__code__
    seen_ours = False
    while frame is not None and frame.f_code is not stop:
        if _ours(frame.f_code):
            seen_ours = True
        elif seen_ours:
            return True
        frame = frame.f_back
    return False


@register_engine("inprocess")
class InProcessEngine(Engine):
    """Sequential, in the driver's process. ``trial_timeout`` is enforced with
    SIGALRM when running in the main thread of a Unix process.

    With ``log_dir``, everything a trial prints (``sys.stdout``/``sys.stderr``,
    and fds 1/2: C extensions, child processes) goes to
    ``<log_dir>/<trial id>/output.log``, never to the driver's terminal
    (``breakpoint()`` still opens pdb there); a failed trial's event carries the
    log's tail (``TrialEvent.output``)."""

    #: After ``trial_timeout``, how long a trial that catches the timeout is pushed before the process ends.
    timeout_grace: float = 2.0

    def __init__(self, trial_timeout: float | None = None, *, log_dir: Path | None = None) -> None:
        super().__init__(trial_timeout)
        self.log_dir = None if log_dir is None else Path(log_dir).absolute()
        self._queue: collections.deque[Trial] = collections.deque()
        self._started: Trial | None = None  # announced by one wait(), run by the next
        self._runner: Runner | None = None
        self._stop: set[int] = set()
        self._watchdog: Alarm | None = None
        self._ending = threading.Lock()  # held by whoever ends the process over a trial that did not stop
        self._output = OutputCapture(self.log_dir)
        self._capture: capture_output | None = None  # the running trial's, given back before the process ends

    def start(self, payload: TrialPayload) -> None:
        self._runner = Runner(payload)

    @property
    def capacity(self) -> int:
        return 0 if self._queue or self._started else 1

    def submit(self, trial: Trial) -> None:
        self._queue.append(trial)

    def running(self) -> list[int]:
        return [t.id for t in (self._started, *self._queue) if t is not None]

    def cancel(self, trial_id: int) -> None:
        self._queue = collections.deque(t for t in self._queue if t.id != trial_id)
        if self._started is not None and self._started.id == trial_id:
            self._started = None

    def request_stop(self, trial_id: int) -> None:
        self._stop.add(trial_id)

    def wait(self, timeout: float) -> list[TrialEvent]:
        if self._started is None:
            if not self._queue:
                time.sleep(min(timeout, 0.01))
                return []
            # Announce first, so the store shows the trial running while it runs.
            self._started = self._queue.popleft()
            return [TrialEvent("started", self._started.id, "main", at=time.time())]
        runner = self._runner
        assert runner is not None, "start() the engine first"
        trial, self._started = self._started, None
        events: list[TrialEvent] = []

        def on_intermediate(step: int, metric: Any) -> None:
            event = TrialEvent("intermediate", trial.id, "main", step=step, metric=metric, at=time.time())
            if self.listener is not None:
                self.listener(event)  # now, while the trial runs
            else:
                events.append(event)

        start = time.time()
        timed_out = f"timed out after {self.trial_timeout} s (trial_timeout)"
        with self._output.trial(trial.id) as output, _Deadline(self, trial, start) as deadline:
            self._capture = output
            try:
                done = runner.run(trial, "main", on_intermediate, lambda: trial.id in self._stop)
            except _TrialTimeout:
                deadline.disarm()  # before any more code runs (format_exc is traced code)
                done = self._failed(trial, start, f"{timed_out}; where it was:\n{traceback.format_exc()}")
            finally:
                self._capture = None
        if deadline.fired and done.status == "succeeded":
            done = self._failed(trial, start, f"{timed_out}; it caught the timeout and went on (except BaseException?)")
        if done.status != "succeeded" and output.path is not None:
            done.output = tail(output.path)
        done.at = time.time()
        events.append(done)
        return events

    def _failed(self, trial: Trial, start: float, error: str) -> TrialEvent:
        return TrialEvent("finished", trial.id, "main", status="failed", error=error, duration=time.time() - start)

    def _end_process(self, deadline: _Deadline) -> None:
        """The trial did not stop: record it as failed, say why, end the process.

        Runs in the main thread (from the alarm handler) or in the watchdog thread;
        the first caller wins, the other blocks until the process is gone. Returns
        only if the trial ended meanwhile."""
        self._ending.acquire()
        if not deadline.active:
            self._ending.release()
            return
        trial, start = deadline.trial, deadline.start
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        event = self._failed(
            trial,
            start,
            f"timed out after {self.trial_timeout} s (trial_timeout) and did not stop within "
            f"{self.timeout_grace} s after (it catches BaseException, or is stuck in C code); the process was ended",
        )
        event.at = time.time()
        capture = self._capture
        if capture is not None:
            capture.restore()  # the log settled; the message below is for the terminal, not the log
            event.output = None if capture.path is None else tail(capture.path)
        recorded = "it is recorded as failed"
        try:
            if self.listener is None:
                recorded = "it could not be recorded (no listener)"
            else:
                self.listener(event)  # the experiment stores it durably before returning
        except BaseException:
            recorded = f"recording it failed:\n{traceback.format_exc()}"
        message = (
            f"\narchsmith: trial {trial.id} did not stop at its timeout (it catches BaseException?); {recorded}; "
            "run(resume=True) continues; use engine='process' to contain such code\n"
        )
        try:
            os.write(2, message.encode())
        finally:
            os._exit(EXIT_CODE)

    def shutdown(self) -> None:
        self._queue.clear()
        self._started = None
        self._output.close()
        if self._watchdog is not None:  # threads left running would keep the process engine from forking
            self._watchdog.stop()
            self._watchdog = None


class _Deadline:
    """``trial_timeout`` for one trial: SIGALRM raises ``_TrialTimeout``; if the
    trial swallows it, it is raised again each ``TICK`` and on each line of the
    trial's code, for ``timeout_grace`` seconds; then the process ends."""

    def __init__(self, engine: InProcessEngine, trial: Trial, start: float) -> None:
        seconds = engine.trial_timeout
        usable = seconds and hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
        self.seconds = seconds if usable else None
        self.engine, self.trial, self.start = engine, trial, start
        self.active = False
        self.disarmed = False
        self.fired_at: float | None = None
        self.trace = self._trace  # one bound method, so sys.gettrace() can be compared with it

    @property
    def fired(self) -> bool:
        return self.fired_at is not None

    def __enter__(self) -> _Deadline:
        if not self.seconds:
            return self
        engine = self.engine
        self.previous = signal.signal(signal.SIGALRM, self._fire)
        self.previous_trace, self.previous_profile = sys.gettrace(), sys.getprofile()
        self.active = True
        signal.setitimer(signal.ITIMER_REAL, self.seconds)
        if engine._watchdog is None:
            engine._watchdog = _watchdog()
        engine._watchdog.arm(self, time.monotonic() + self.seconds + engine.timeout_grace + WATCHDOG_EXTRA)
        return self

    def __exit__(self, *exc: object) -> None:
        self.disarm()

    def disarm(self) -> None:
        """The trial is over: no more raising (idempotent)."""
        if not self.seconds or self.disarmed:
            return
        self.active = False  # first: a late tick does nothing now
        with self.engine._ending:
            pass  # the watchdog is not ending the process over this trial (or we wait for it to)
        self.disarmed = True
        signal.setitimer(signal.ITIMER_REAL, 0)
        if self.fired_at is not None:
            sys.setprofile(self.previous_profile)  # first: the profile hook would set the tracer again
            sys.settrace(self.previous_trace)
        signal.signal(signal.SIGALRM, self.previous)
        assert self.engine._watchdog is not None
        self.engine._watchdog.arm(None, 0.0)

    def _fire(self, signum: int, frame: FrameType | None) -> None:
        if not self.active:
            return
        now = time.monotonic()
        if self.fired_at is None:
            self.fired_at = now
            signal.setitimer(signal.ITIMER_REAL, TICK, TICK)
        if in_callback(frame):
            return  # the trial called into archsmith (a report, the store): the next tick raises
        if now - self.fired_at >= self.engine.timeout_grace:
            self.engine._end_process(self)
        self._escalate(frame)
        raise _TrialTimeout()

    # Pushing a trial that swallows the timeout --------------------------------------------
    def _escalate(self, frame: FrameType | None) -> None:
        """Trace the trial's frames: their next line raises again (see ``_trace``)."""
        sys.settrace(self.trace)
        sys.setprofile(self._profile)
        stop = InProcessEngine.wait.__code__
        while frame is not None and frame.f_code is not stop:
            if not _ours(frame.f_code):
                frame.f_trace = self.trace
            frame = frame.f_back

    def _trace(self, frame: FrameType, event: str, arg: Any) -> Any:
        # Raising here also switches tracing off (CPython's rule); _profile turns it back on at the next call.
        if event == "line" and self.active and not _ours(frame.f_code) and not in_callback(frame):
            raise _TrialTimeout()
        return self.trace

    def _profile(self, frame: FrameType, event: str, arg: Any) -> None:
        if not self.active:
            return
        if sys.gettrace() is not self.trace:
            sys.settrace(self.trace)
        for f in (frame, frame.f_back):
            if f is not None and f.f_trace is None and not _ours(f.f_code):
                f.f_trace = self.trace


def _watchdog() -> Alarm:
    """Ends the process over a trial that never came back to Python code to see
    its timeout (the alarm handler only runs between bytecodes)."""

    def fire(target: _Deadline) -> None:
        frame = sys._current_frames().get(threading.main_thread().ident or 0)
        if in_callback(frame):  # not while it writes to the store: a little later
            if target.active:
                alarm.rearm_if_unchanged(target, time.monotonic() + TICK)
            return
        target.engine._end_process(target)

    alarm = Alarm("archsmith-trial-watchdog", fire)
    return alarm

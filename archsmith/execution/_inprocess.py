"""``InProcessEngine``: trials run one by one in the driver (pdb works)."""

from __future__ import annotations

import collections
import signal
import threading
import time
from typing import Any

from ._base import Engine
from ._registry import register_engine
from ._run import Runner
from ._trial import Trial, TrialEvent, TrialPayload


class _TrialTimeout(BaseException):
    """Raised by the alarm handler; a BaseException so user code's ``except
    Exception`` cannot swallow it."""


@register_engine("inprocess")
class InProcessEngine(Engine):
    """Sequential, in the driver's process. ``trial_timeout`` is enforced with
    SIGALRM when running in the main thread of a Unix process."""

    def __init__(self, trial_timeout: float | None = None) -> None:
        super().__init__(trial_timeout)
        self._queue: collections.deque[Trial] = collections.deque()
        self._started: Trial | None = None  # announced by one wait(), run by the next
        self._runner: Runner | None = None
        self._stop: set[int] = set()

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
        assert self._runner is not None, "start() the engine first"
        trial, self._started = self._started, None
        events: list[TrialEvent] = []

        def on_intermediate(step: int, metric: Any) -> None:
            event = TrialEvent("intermediate", trial.id, "main", step=step, metric=metric, at=time.time())
            if self.listener is not None:
                self.listener(event)  # now, while the trial runs
            else:
                events.append(event)

        start = time.time()
        with _alarm(self.trial_timeout):
            try:
                done = self._runner.run(trial, "main", on_intermediate, lambda: trial.id in self._stop)
            except _TrialTimeout:
                done = TrialEvent(
                    "finished",
                    trial.id,
                    "main",
                    status="failed",
                    error=f"timed out after {self.trial_timeout} s (trial_timeout)",
                    duration=time.time() - start,
                )
        done.at = time.time()
        events.append(done)
        return events

    def shutdown(self) -> None:
        self._queue.clear()
        self._started = None


class _alarm:
    def __init__(self, seconds: float | None) -> None:
        usable = seconds and hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
        self.seconds = seconds if usable else None

    def __enter__(self) -> None:
        if self.seconds:
            self.previous = signal.signal(signal.SIGALRM, self._fire)
            signal.setitimer(signal.ITIMER_REAL, self.seconds)

    def __exit__(self, *exc: object) -> None:
        if self.seconds:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self.previous)

    @staticmethod
    def _fire(signum: int, frame: Any) -> None:
        raise _TrialTimeout()

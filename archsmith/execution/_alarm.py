"""``Alarm``: a daemon thread that calls back about one target once its time has
come. The in-process engine's watchdog (a trial past its timeout that never
returns to Python code) and the output capture's promotion of a long trial's log
both use one."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any


class Alarm(threading.Thread):
    """Calls ``fire(target)`` in this thread once ``arm(target, at)``'s monotonic
    time ``at`` has passed, unless armed again (or with ``None``) first.

    Arming wakes the thread only when it sleeps with no deadline or the new
    deadline is sooner: trials in a row cost no thread switch each.

    >>> fired = []
    >>> alarm = Alarm("example", fired.append)
    >>> alarm.arm("target", time.monotonic())
    >>> time.sleep(0.2); alarm.stop(); fired
    ['target']
    """

    def __init__(self, name: str, fire: Callable[[Any], None]) -> None:
        super().__init__(name=name, daemon=True)
        self._fire = fire
        self._cond = threading.Condition()
        self._target: Any = None
        self._at = 0.0
        self._idle = False
        self._until = 0.0  # the deadline the thread sleeps until
        self._stopping = False
        self.start()

    def arm(self, target: Any, at: float) -> None:
        """Fire for ``target`` at ``at`` (``None``: for nothing)."""
        with self._cond:
            wake = target is not None and (self._idle or at < self._until)
            self._target, self._at = target, at
            if wake:
                self._cond.notify()

    def rearm_if_unchanged(self, target: Any, at: float) -> bool:
        """From ``fire``: try ``target`` again at ``at`` unless armed meanwhile."""
        with self._cond:
            if self._target is not None:
                return False
            self._target, self._at = target, at
            return True

    def stop(self) -> None:
        """End the thread (a driver with threads cannot fork workers from itself)."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
        if threading.current_thread() is not self:
            self.join()

    def run(self) -> None:
        while True:
            with self._cond:
                if self._stopping:
                    return
                target = self._target
                if target is None:
                    self._idle = True
                    self._cond.wait()
                    self._idle = False
                    continue
                left = self._at - time.monotonic()
                if left > 0:
                    self._until = self._at
                    self._cond.wait(left)
                    continue
                self._target = None
            self._fire(target)

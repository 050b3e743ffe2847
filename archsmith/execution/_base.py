"""``Engine``: runs trials. The experiment loop sees only this interface, so a
local, process or cluster engine can be swapped by name."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable

from ._trial import Trial, TrialEvent, TrialPayload


class Engine(ABC):
    """Submit trials, collect their events. A trial that raises, crashes its
    process, hangs past ``trial_timeout`` or reports a non-finite plain-number
    metric ends as a *failed* finished event; the engine itself goes on. (In a
    dict metric only the objective counts: the experiment judges it.)

    Engines that keep trial logs take a keyword ``log_dir``: each trial's output
    goes to ``<log_dir>/<trial id>/output.log`` and a failed trial's event carries
    its tail in ``TrialEvent.output``."""

    #: Engines that run a trial inside ``wait()`` hand its intermediate events to
    #: this callback as they happen (so an early-stopping rule can act in time)
    #: instead of returning them afterwards.
    listener: Callable[[TrialEvent], None] | None = None

    def __init__(self, trial_timeout: float | None = None) -> None:
        self.trial_timeout = trial_timeout

    @abstractmethod
    def start(self, payload: TrialPayload) -> None:
        """Prepare workers with the payload (sent once, not per trial)."""

    @property
    @abstractmethod
    def capacity(self) -> int:
        """How many more trials can be submitted now."""

    @abstractmethod
    def submit(self, trial: Trial) -> None:
        """Start a trial (``capacity`` must be positive)."""

    @abstractmethod
    def wait(self, timeout: float) -> list[TrialEvent]:
        """Events since the last call, waiting up to ``timeout`` seconds for one."""

    @abstractmethod
    def running(self) -> list[int]:
        """Ids of the trials submitted and not yet finished."""

    @abstractmethod
    def cancel(self, trial_id: int) -> None:
        """Stop a running trial; it produces no finished event."""

    def request_stop(self, trial_id: int) -> None:  # noqa: B027 - optional hook
        """Ask a running trial to stop early (it sees ``should_stop()``)."""

    @abstractmethod
    def shutdown(self) -> None:
        """Stop every worker; cancel what still runs."""

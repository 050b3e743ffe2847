"""Progress while a run goes: a rich live panel on a terminal, log lines elsewhere."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

from ._results import error_summary


@dataclass
class Snapshot:
    done: int
    running: int
    failed: int
    budget: int | None
    best: float | None
    best_trial: int | None
    elapsed: float
    max_duration: float | None
    front: int | None = None  # trials on the Pareto front (several objectives only)


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    seconds = int(seconds)
    h, rest = divmod(seconds, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60:02d}:{rest % 60:02d}"


def eta(s: Snapshot) -> float | None:
    """Seconds left: by trial rate against the budget, capped by the duration limit."""
    left = []
    if s.budget is not None and s.done:
        left.append(s.elapsed / s.done * (s.budget - s.done))
    if s.max_duration is not None:
        left.append(max(0.0, s.max_duration - s.elapsed))
    return min(left) if left else None


class ProgressView:
    """Shows trials done / running / failed, the best so far, elapsed time and ETA."""

    def __init__(self, title: str, objective: str | Sequence[str], console: Console | None = None) -> None:
        self.title = title
        self.objectives = (objective,) if isinstance(objective, str) else tuple(objective)
        self.objective = ", ".join(self.objectives)
        self.console = console or Console(file=sys.stdout)
        self.live: Live | None = None
        self._last = Snapshot(0, 0, 0, None, None, None, 0.0, None)

    def start(self) -> None:
        if self.console.is_terminal:
            self.live = Live(self._table(), console=self.console, refresh_per_second=4, transient=False)
            self.live.start()
        else:
            self._say(f"{self.title}: started")

    def update(self, snapshot: Snapshot) -> None:
        self._last = snapshot
        if self.live is not None:
            self.live.update(self._table())

    def trial_finished(
        self, trial_id: int, status: str, value: float | Sequence[float] | None, error: str | None, s: Snapshot
    ) -> None:
        """``value``: the objective's value, or one per objective."""
        self._last = s
        if self.live is not None:
            self.live.update(self._table())
            return
        if value is None:
            outcome = error_summary(error) or "unknown error"
        else:
            values = (value,) if isinstance(value, (int, float)) else tuple(value)
            outcome = ", ".join(f"{name}={v:.6g}" for name, v in zip(self.objectives, values))
        budget = f"/{s.budget}" if s.budget is not None else ""
        self._say(
            f"trial {trial_id} {status}: {outcome} | done {s.done}{budget}, running {s.running}, "
            f"failed {s.failed} | {self._best(s)} | {_clock(s.elapsed)} elapsed, ETA {_clock(eta(s))}"
        )

    @staticmethod
    def _best_value(s: Snapshot) -> str:
        if s.front is not None:
            return f"{s.front} trials"
        return f"{s.best:.6g} (trial {s.best_trial})" if s.best is not None else "-"

    def _best_label(self, s: Snapshot) -> str:
        return "Pareto front" if s.front is not None else "best"

    def _best(self, s: Snapshot) -> str:
        return f"{self._best_label(s)} {self._best_value(s)}"

    def epoch_finished(self, epoch: int, epochs: int, metrics: dict[str, float], elapsed: float) -> None:
        """A line per one-shot epoch: its metrics, elapsed time and ETA."""
        shown = ", ".join(f"{k}={v:.4g}" for k, v in metrics.items() if k != "default")
        left = elapsed / (epoch + 1) * (epochs - epoch - 1) if epoch + 1 else None
        self._say(f"epoch {epoch + 1}/{epochs}: {shown} | {_clock(elapsed)} elapsed, ETA {_clock(left)}")

    def stop(self, message: str) -> None:
        if self.live is not None:
            self.live.update(self._table())
            self.live.stop()
            self.live = None
        self._say(message)

    def _say(self, text: str) -> None:
        self.console.print(f"[archsmith] {text}", markup=False, highlight=False, soft_wrap=True)

    def _table(self) -> Any:
        s = self._last
        table = Table(title=f"archsmith · {self.title}", show_header=False, min_width=48)
        budget = f" / {s.budget}" if s.budget is not None else ""
        table.add_row("trials done", f"{s.done}{budget}")
        table.add_row("running", str(s.running))
        table.add_row("failed", str(s.failed))
        table.add_row(f"{self._best_label(s)} {self.objective}", self._best_value(s))
        table.add_row("elapsed", _clock(s.elapsed))
        table.add_row("ETA", _clock(eta(s)))
        return table

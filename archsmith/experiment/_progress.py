"""Progress while a run goes: a rich live panel on a terminal, log lines elsewhere.

On a terminal each finished trial leaves one line above the panel (its id,
status, objective values, decisions and duration), so the scroll-back shows the
whole run, and the run ends with a summary table: the best trials, the count per
status and the time taken. Elsewhere (a log file, CI) each event is one plain line.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from archsmith.space import pareto_order

from ._results import error_summary

#: Trials the summary table lists as the best.
SUMMARY_TOP = 5
#: Characters of a trial's decisions shown in its history line.
DECISIONS_WIDTH = 72
_STATUS_STYLE = {"succeeded": "green", "failed": "red", "stopped": "yellow"}


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
    stopped: int = 0  # trials an early-stopping rule ended (counted in done)


@dataclass
class _Finished:
    trial_id: int
    status: str
    values: tuple[float, ...] | None
    sample: Mapping[str, Any] | None
    duration: float | None
    error: str | None


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    seconds = int(seconds)
    h, rest = divmod(seconds, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60:02d}:{rest % 60:02d}"


def _seconds(duration: float | None) -> str:
    if duration is None:
        return "-"
    return f"{duration:.2f}s" if duration < 60 else _clock(duration)


def decisions_text(sample: Mapping[str, Any] | None, width: int = DECISIONS_WIDTH) -> str:
    """``label=value`` pairs of a sample on one line, cut to ``width`` characters."""
    if not sample:
        return ""
    text = " ".join(f"{label}={value}" for label, value in sample.items())
    return text if len(text) <= width else text[: width - 1] + "…"


def eta(s: Snapshot) -> float | None:
    """Seconds left: by trial rate against the budget, capped by the duration limit."""
    left = []
    if s.budget is not None and s.done:
        left.append(s.elapsed / s.done * (s.budget - s.done))
    if s.max_duration is not None:
        left.append(max(0.0, s.max_duration - s.elapsed))
    return min(left) if left else None


def _terminal_stream() -> IO[str] | None:
    """A stream of its own onto the terminal behind ``sys.stdout``: the panel keeps
    drawing there while an in-process trial's fds 1/2 go to its log."""
    try:
        if not sys.stdout.isatty():
            return None
        return open(os.dup(sys.stdout.fileno()), "w", buffering=1, encoding=sys.stdout.encoding or "utf-8")
    except (AttributeError, OSError, ValueError):  # no real descriptor behind it (Jupyter, a test's capture)
        return None


class ProgressView:
    """Shows trials done / running / failed / stopped, the best so far, elapsed time and ETA.

    ``directions``: one per objective (``"maximize"`` or ``"minimize"``), to rank
    the summary table's best trials; every objective is maximized if not given.
    """

    def __init__(
        self,
        title: str,
        objective: str | Sequence[str],
        console: Console | None = None,
        directions: Sequence[str] | None = None,
    ) -> None:
        self.title = title
        self.objectives = (objective,) if isinstance(objective, str) else tuple(objective)
        self.objective = ", ".join(self.objectives)
        self.directions = tuple(directions) if directions is not None else ("maximize",) * len(self.objectives)
        if len(self.directions) != len(self.objectives):
            raise ValueError(f"one direction per objective: {self.objectives} vs {self.directions}")
        self._own_stream: IO[str] | None = None
        self._plain = console is None  # our own console: off a terminal, lines are written as they are
        if console is None:
            self._own_stream = _terminal_stream()
            console = Console(file=self._own_stream or sys.stdout)
        self.console = console
        self.live: Live | None = None
        self._last = Snapshot(0, 0, 0, None, None, None, 0.0, None)
        self._history: list[_Finished] = []

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
        self,
        trial_id: int,
        status: str,
        value: float | Sequence[float] | None,
        error: str | None,
        s: Snapshot,
        *,
        sample: Mapping[str, Any] | None = None,
        duration: float | None = None,
    ) -> None:
        """``value``: the objective's value, or one per objective; ``sample``: the
        trial's decisions; ``duration``: seconds it ran."""
        self._last = s
        values = None if value is None else ((value,) if isinstance(value, (int, float)) else tuple(value))
        finished = _Finished(trial_id, status, values, sample, duration, error)
        self._history.append(finished)
        if self.live is not None:
            self.live.update(self._table())
            self.live.console.print(self._history_line(finished))  # drawn above the panel, stays in the scroll-back
            return
        budget = f"/{s.budget}" if s.budget is not None else ""
        stopped = f", stopped {s.stopped}" if s.stopped else ""
        self._say(
            f"trial {trial_id} {status}: {self._outcome(finished)} | done {s.done}{budget}, running {s.running}, "
            f"failed {s.failed}{stopped} | {self._best(s)} | {_clock(s.elapsed)} elapsed, ETA {_clock(eta(s))}"
        )

    def _outcome(self, f: _Finished) -> str:
        if f.values is None:
            return error_summary(f.error) or "unknown error"
        return ", ".join(f"{name}={v:.6g}" for name, v in zip(self.objectives, f.values))

    def _history_line(self, f: _Finished) -> Text:
        line = Text()
        line.append(f"trial {f.trial_id:>4} ")
        line.append(f"{f.status:<9}", style=_STATUS_STYLE.get(f.status, ""))
        line.append(f" {self._outcome(f)}")
        decisions = decisions_text(f.sample)
        if decisions:
            line.append(f"  {decisions}", style="dim")
        line.append(f"  {_seconds(f.duration)}")
        line.no_wrap, line.overflow = True, "ellipsis"
        return line

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
            if self._history:
                self.console.print(self.summary())
        self._say(message)
        if self._own_stream is not None:
            with contextlib.suppress(OSError, ValueError):
                self._own_stream.close()
            self._own_stream = None

    def _say(self, text: str) -> None:
        if self._plain and self.live is None and not self.console.is_terminal:
            # rich's print costs ~0.6 ms a line: a fifth of the in-process engine's budget per trial
            stream = self.console.file
            stream.write(f"[archsmith] {text}\n")
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
            return
        self.console.print(f"[archsmith] {text}", markup=False, highlight=False, soft_wrap=True)

    def best_finished(self, k: int = SUMMARY_TOP) -> list[_Finished]:
        """This run's ``k`` best succeeded trials: by the objective's direction, or,
        with several objectives, by Pareto front then crowding (as ``top_trials``)."""
        scored = [f for f in self._history if f.status == "succeeded" and f.values is not None]
        order = pareto_order([f.values for f in scored], self.directions, limit=k)  # type: ignore[misc]
        return [scored[i] for i in order][:k]

    def summary(self) -> Group:
        """The table the run ends with: best trials, trials per status, time."""
        best = Table(title=f"archsmith · {self.title}: best trials", title_justify="left")
        best.add_column("trial", justify="right")
        for name, direction in zip(self.objectives, self.directions):
            best.add_column(f"{name} ({'max' if direction == 'maximize' else 'min'})", justify="right")
        best.add_column("decisions")
        best.add_column("duration", justify="right")
        for f in self.best_finished():
            values = [f"{v:.6g}" for v in f.values or ()]
            best.add_row(str(f.trial_id), *values, decisions_text(f.sample), _seconds(f.duration))
        counts: dict[str, int] = {}
        for f in self._history:
            counts[f.status] = counts.get(f.status, 0) + 1
        totals = Table(show_header=False, title_justify="left")
        for status, n in sorted(counts.items()):
            totals.add_row(Text(status, style=_STATUS_STYLE.get(status, "")), str(n))
        totals.add_row("time", _clock(self._last.elapsed))
        return Group(best, totals)

    def _table(self) -> Any:
        s = self._last
        table = Table(title=f"archsmith · {self.title}", show_header=False, min_width=48)
        budget = f" / {s.budget}" if s.budget is not None else ""
        table.add_row("trials done", f"{s.done}{budget}")
        table.add_row("running", str(s.running))
        table.add_row("failed", str(s.failed))
        if s.stopped:
            table.add_row("stopped early", str(s.stopped))
        table.add_row(f"{self._best_label(s)} {self.objective}", self._best_value(s))
        table.add_row("elapsed", _clock(s.elapsed))
        table.add_row("ETA", _clock(eta(s)))
        return table

"""The ``"benchmark"`` engine and :class:`NasBench201Evaluator`.

This file is where the benchmark meets the execution and evaluator layers (the
rest of the package imports only ``archsmith.space`` and ``archsmith.nn``).
``ExperimentConfig(engine="benchmark")`` answers each trial by a table lookup
from its sample: no model is built, no training runs, so a search of hundreds of
trials takes seconds. The evaluator in the payload says which table, dataset and
metric; its ``evaluate`` also works inside a real trial (any engine), looking the
trial's sample up.
"""

from __future__ import annotations

import collections
import math
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from archsmith.evaluator import Evaluator, current_trial
from archsmith.execution import Engine, EngineError, ProcessEngine, Trial, TrialEvent, TrialPayload, register_engine
from archsmith.execution._capture import OutputCapture

from ._table import BenchmarkError, NasBench201Table, column_name


class NasBench201Evaluator(Evaluator):
    """Scores an NB201 architecture by its accuracy (%) in the table.

    ``table``: a :class:`NasBench201Table`, a path to a CSV of the same shape, or
    ``None`` for the default file. Only the path travels when pickled; the table
    is (re)loaded, once per process, where it is used.
    """

    def __init__(
        self,
        dataset: str = "cifar10",
        metric: str = "val",
        table: NasBench201Table | str | os.PathLike[str] | None = None,
    ) -> None:
        column_name(dataset, metric)  # unknown dataset/metric: fail now, not in a trial
        self.dataset, self.metric = dataset, metric
        if isinstance(table, NasBench201Table):
            self._table: NasBench201Table | None = table
            self.path: str | None = str(table.path) if table.path is not None else None
        else:
            self._table = None
            self.path = str(Path(table)) if table is not None else None
            self.table  # noqa: B018 - a missing file is reported at construction

    @property
    def table(self) -> NasBench201Table:
        if self._table is None:
            self._table = NasBench201Table.load(self.path)
        return self._table

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        if self._table is not None and self._table.path is not None:  # a file's table is reloaded, not shipped
            state["_table"] = None
        return state

    def preferred_direction(self, objective: str) -> str | None:
        return "maximize"  # accuracies

    def query(self, sample: Mapping[str, Any]) -> float:
        """The configured accuracy of the architecture in ``sample``."""
        return self.table.query(sample, self.dataset, self.metric)

    def evaluate(self, model: torch.nn.Module) -> float:
        """The table's accuracy for the running trial's sample (``model`` is not
        trained: the benchmark already did that)."""
        ctx = current_trial()
        if ctx is None:
            raise BenchmarkError(
                "NasBench201Evaluator.evaluate looks the running trial's sample up; call it inside a trial, "
                "or use evaluator.query(sample)"
            )
        return self.query(ctx.sample)

    def __repr__(self) -> str:
        return f"NasBench201Evaluator(dataset={self.dataset!r}, metric={self.metric!r}, table={self.path!r})"


@register_engine("benchmark")
class BenchmarkEngine(Engine):
    """Answers trials from a benchmark table when the payload's evaluator has a
    ``query(sample) -> metric`` method (as :class:`NasBench201Evaluator` does):
    ``concurrency`` trials are "in flight" at once, so a strategy sees the same
    batches as with a real engine; a lookup that fails is a failed trial. Any
    other evaluator runs for real, as with the default ``"process"`` engine."""

    def __init__(
        self,
        concurrency: int = 1,
        trial_timeout: float | None = None,
        gpus_per_trial: int = 0,
        *,
        log_dir: Path | None = None,
    ) -> None:
        super().__init__(trial_timeout)
        self.concurrency = max(1, int(concurrency))
        self.gpus_per_trial = gpus_per_trial
        self.log_dir = log_dir  # a lookup's prints (a user's query) go to its trial's log, as on every engine
        self._output = OutputCapture(log_dir)
        self._queue: collections.deque[Trial] = collections.deque()
        self._evaluator: Any = None
        self._real: Engine | None = None  # the process engine, for an evaluator that is not a table

    def start(self, payload: TrialPayload) -> None:
        evaluator = payload.evaluator
        if callable(getattr(evaluator, "query", None)):
            self._evaluator = evaluator
            return
        self._real = ProcessEngine(
            concurrency=self.concurrency,
            trial_timeout=self.trial_timeout,
            gpus_per_trial=self.gpus_per_trial,
            log_dir=self.log_dir,
        )
        self._real.start(payload)

    @property
    def capacity(self) -> int:
        if self._real is not None:
            return self._real.capacity
        return self.concurrency - len(self._queue)

    def submit(self, trial: Trial) -> None:
        if self._real is not None:
            return self._real.submit(trial)
        self._queue.append(trial)

    def running(self) -> list[int]:
        if self._real is not None:
            return self._real.running()
        return [t.id for t in self._queue]

    def cancel(self, trial_id: int) -> None:
        if self._real is not None:
            return self._real.cancel(trial_id)
        self._queue = collections.deque(t for t in self._queue if t.id != trial_id)

    def request_stop(self, trial_id: int) -> None:
        if self._real is not None:
            self._real.request_stop(trial_id)

    def wait(self, timeout: float) -> list[TrialEvent]:
        if self._real is not None:
            return self._real.wait(timeout)
        if not self._queue:
            time.sleep(min(timeout, 0.01))
            return []
        if self._evaluator is None:
            raise EngineError("start() the engine first")
        events = []
        while self._queue:
            trial = self._queue.popleft()
            at = time.time()
            events.append(TrialEvent("started", trial.id, "benchmark", at=at))
            try:
                with self._output.trial(trial.id):
                    value = float(self._evaluator.query(trial.sample))
                if not math.isfinite(value):
                    raise BenchmarkError(f"the table holds a non-finite value ({value}) for this architecture")
            except Exception as e:
                error = f"{type(e).__name__}: {e}"
                events.append(TrialEvent("finished", trial.id, "benchmark", status="failed", error=error, at=at))
                continue
            events.append(
                TrialEvent("finished", trial.id, "benchmark", metric=value, status="succeeded", duration=0.0, at=at)
            )
        return events

    def shutdown(self) -> None:
        self._queue.clear()
        self._output.close()
        if self._real is not None:
            self._real.shutdown()

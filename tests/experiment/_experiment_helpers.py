"""Shared pieces of the experiment tests: a small model space, an evaluator whose
objective is known from the sample, experiment construction, store reading, a
guard against runs that never end, and helpers for driving a run in a subprocess.

This module is pickled *by value* (as a user's ``__main__`` would be), so worker
processes never need to import it; scripts under ``scripts/`` import it too."""

from __future__ import annotations

import contextlib
import faulthandler
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cloudpickle
import torch

import archsmith.nn as nn
from archsmith import strategy as strategies
from archsmith.evaluator import FunctionalEvaluator, current_trial, report_intermediate_result
from archsmith.experiment import Experiment, ExperimentConfig, Store, TrialRecord

cloudpickle.register_pickle_by_value(sys.modules[__name__])

HERE = Path(__file__).resolve().parent
RUN_SCRIPT = HERE / "scripts" / "run_experiment.py"
WIDTHS = (2, 3, 4, 5)
SCALES = (1.0, 2.0, 3.0, 4.0)


class Net(nn.ModelSpace):
    def __init__(self, widths: tuple[int, ...] = WIDTHS) -> None:
        super().__init__()
        self.fc = nn.Linear(4, nn.choice("width", list(widths)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


def score(
    model: torch.nn.Module,
    scale: float,
    sleep: float = 0.0,
    metric: str = "plain",
    faults: dict[int, str] | None = None,
    interrupt: set[int] | None = None,
) -> Any:
    """Objective = width * scale. Reports two intermediate results, then sleeps.

    ``metric="dict"`` returns ``{"acc": objective, "loss": -objective}``;
    ``metric="loss_only"`` returns ``{"loss": ...}`` (no ``acc``). ``faults`` maps
    a trial id to a fault: raise / nan / nan_loss / string / hang / exit / segv
    (the last two end the process). A trial whose id is in
    ``interrupt`` raises ``KeyboardInterrupt`` (as if the user pressed Ctrl-C
    during it) and leaves the set, so it passes when re-run."""
    trial_id = current_trial().trial_id  # type: ignore[union-attr]
    value = float(model.fc.out_features * scale)
    for step in range(2):
        report_intermediate_result({"acc": value * (step + 1) / 2, "loss": -value} if metric != "plain" else value / 2)
    fault = (faults or {}).get(trial_id)
    print(f"trial {trial_id}: training width {model.fc.out_features}", flush=True)
    if fault == "raise":
        raise RuntimeError(f"trial {trial_id} failed on purpose")
    if fault == "nan":
        return float("nan")
    if fault == "nan_loss":  # NaN in a key that is not the objective
        return {"acc": value, "loss": float("nan")}
    if fault == "string":
        return "twelve"
    if fault == "hang":
        time.sleep(60)
    if fault == "exit":  # takes its whole process down, as a segfault or the OOM killer would
        os._exit(3)
    if fault == "segv":
        os.kill(os.getpid(), signal.SIGSEGV)
    if interrupt is not None and trial_id in interrupt:  # a set: the evaluator gets this very object
        interrupt.discard(trial_id)
        raise KeyboardInterrupt
    if sleep:
        time.sleep(sleep)
    if metric == "dict":
        return {"acc": value, "loss": -value}
    if metric == "loss_only":
        return {"loss": -value}
    return value


def make_experiment(
    workdir: Path | str,
    *,
    widths: tuple[int, ...] = WIDTHS,
    scales: tuple[float, ...] = SCALES,
    strategy: strategies.Strategy | None = None,
    sleep: float = 0.0,
    metric: str = "plain",
    faults: dict[int, str] | None = None,
    interrupt: set[int] | None = None,
    **config: Any,
) -> Experiment:
    config.setdefault("engine", "inprocess")
    config.setdefault("direction", "maximize")
    config.setdefault("seed", 0)
    evaluator = FunctionalEvaluator(
        score, scale=nn.choice("scale", list(scales)), sleep=sleep, metric=metric, faults=faults, interrupt=interrupt
    )
    return Experiment(
        Net(widths),
        evaluator,
        strategy if strategy is not None else strategies.Random(dedup=True),
        ExperimentConfig(workdir=str(workdir), **config),
    )


def read_trials(workdir: Path | str) -> list[TrialRecord]:
    store = Store(Path(workdir) / "experiment.db", readonly=True)
    try:
        return store.trials()
    finally:
        store.close()


def read_meta(workdir: Path | str, key: str) -> Any:
    store = Store(Path(workdir) / "experiment.db", readonly=True)
    try:
        return store.get_meta(key)
    finally:
        store.close()


def sample_key(sample: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(sorted(sample.items()))


@contextlib.contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Abort the whole test process with every thread's traceback if the block
    runs past ``seconds``: a run that never ends must fail, not hang the suite."""
    faulthandler.dump_traceback_later(seconds, exit=True, file=sys.__stderr__)
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()


# Subprocess runs -------------------------------------------------------------------
def _terminal_signals() -> None:
    # A child inherits an ignored SIGINT (a test process may have it ignored, e.g.
    # after Lightning handled a Ctrl-C); a terminal's foreground job never does.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_run(workdir: Path, *args: str) -> subprocess.Popen[str]:
    """``scripts/run_experiment.py WORKDIR ARGS...`` in its own session (so a
    signal can reach its whole process group, as a terminal's Ctrl-C does)."""
    return subprocess.Popen(
        [sys.executable, str(RUN_SCRIPT), str(workdir), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        cwd=workdir.parent,
        preexec_fn=_terminal_signals,
    )


def poll_store(
    proc: subprocess.Popen[str], workdir: Path, until: Callable[[list[TrialRecord]], bool], timeout: float = 90
) -> list[TrialRecord]:
    """Read the store's trials (read-only) until ``until(trials)`` holds, and
    return that reading; fail if the run ends first."""
    db = workdir / "experiment.db"
    end = time.time() + timeout
    while time.time() < end:
        if proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"the run ended before the point of interest:\n{out[-2000:]}\n{err[-2000:]}")
        trials = None
        if db.exists():
            try:
                trials = read_trials(workdir)
            except Exception:
                trials = None
        if trials and until(trials):
            return trials
        time.sleep(0.03)
    kill_group(proc)
    raise AssertionError(f"the run never reached the point of interest within {timeout} s")


def count(trials: list[TrialRecord], status: str) -> int:
    return sum(t.status == status for t in trials)


def kill_group(proc: subprocess.Popen[str]) -> None:
    """SIGKILL whatever is left of the run's process group (orphaned workers)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, 9)

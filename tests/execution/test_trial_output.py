"""What a trial prints never reaches the driver's terminal, on every engine: it
goes to ``<workdir>/trials/<id>/output.log`` (Python's streams, and fds 1/2 that
C code and child processes write to), and a failed trial's traceback and last
output lines are stored with it."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import cloudpickle
import pytest

import archsmith.nn as nn
from archsmith import strategy
from archsmith.evaluator import FunctionalEvaluator, current_trial
from archsmith.execution import InProcessEngine, Trial, TrialPayload
from archsmith.experiment import Experiment, ExperimentConfig, Store

from ._execution_helpers import Net, finished, run_trials

cloudpickle.register_pickle_by_value(sys.modules[__name__])


def noisy(model: object, fail: bool) -> float:
    trial = current_trial().trial_id  # type: ignore[union-attr]
    print(f"print {trial}")
    print(f"stderr {trial}", file=sys.stderr)
    sys.stdout.flush()
    os.write(1, f"fd1 {trial}\n".encode())  # as C code writes
    os.write(2, f"fd2 {trial}\n".encode())
    subprocess.run(["echo", f"child {trial}"], check=True)  # a child process inherits fds 1/2
    if fail:
        raise RuntimeError(f"noisy failure {trial}")
    return 1.0


def silent(model: object, fail: bool) -> float:
    return 1.0


LINES = ("print", "stderr", "fd1", "fd2", "child")


def slow_printer(model: object, log: str) -> float:
    """Prints, waits past PROMOTE_AFTER, then looks for its own log file."""
    from archsmith.execution._capture import PROMOTE_AFTER

    print("early", flush=True)
    deadline = time.time() + PROMOTE_AFTER + 10
    while not os.path.exists(log) and time.time() < deadline:
        time.sleep(0.05)
    print("seen early" if os.path.exists(log) else "not seen", flush=True)
    print("late", flush=True)
    return 1.0


def test_in_process_output_goes_to_the_log_only(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    engine = InProcessEngine(log_dir=tmp_path)
    engine.start(TrialPayload(Net, (), {}, FunctionalEvaluator(noisy, fail=nn.choice("fail", [True, False]))))
    streams = sys.stdout, sys.stderr
    events = run_trials(engine, [Trial(1, {"width": 2, "fail": True}), Trial(2, {"width": 2, "fail": False})])
    shown = capfd.readouterr()
    assert (sys.stdout, sys.stderr) == streams, "the streams are restored"
    assert not any(word in shown.out + shown.err for word in LINES), f"the terminal shows it: {shown}"

    failed, ok = finished(events[1]), finished(events[2])
    assert failed.status == "failed" and "RuntimeError: noisy failure 1" in (failed.error or "")
    assert "Traceback" in (failed.error or "")
    assert failed.output is not None and all(f"{word} 1" in failed.output for word in LINES)
    assert ok.status == "succeeded" and ok.output is None
    log = (tmp_path / "2" / "output.log").read_text()
    assert log.splitlines() == [f"{word} 2" for word in LINES]  # in the order they were written


def test_a_silent_trial_leaves_no_log(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    engine = InProcessEngine(log_dir=tmp_path)
    engine.start(TrialPayload(Net, (), {}, FunctionalEvaluator(silent, fail=False)))
    assert finished(run_trials(engine, [Trial(1, {"width": 2})])[1]).status == "succeeded"
    assert not (tmp_path / "1").exists()
    print("after")  # the terminal is back
    os.write(1, b"fd after\n")
    assert capfd.readouterr().out == "after\nfd after\n"


@pytest.mark.parametrize("engine", ["inprocess", "process", "benchmark"])
def test_an_experiments_trials_print_only_to_their_logs(
    engine: str, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """``benchmark`` with an evaluator that is no table runs trials for real."""
    evaluator = FunctionalEvaluator(noisy, fail=nn.choice("fail", [True, False]))
    config = ExperimentConfig(engine=engine, workdir=tmp_path, seed=0, max_trials=2, direction="maximize")
    Experiment(Net(), evaluator, strategy.GridSearch(), config).run()
    shown = capfd.readouterr()
    assert "[archsmith]" in shown.out  # the driver's own lines are there
    assert not any(f"{word} " in shown.out + shown.err for word in LINES), f"the terminal shows trials' output: {shown}"

    store = Store(tmp_path / "experiment.db", readonly=True)
    try:
        trials = store.trials()
    finally:
        store.close()
    assert len(trials) == 2
    for trial in trials:
        log = (tmp_path / "trials" / str(trial.id) / "output.log").read_text()
        assert all(f"{word} {trial.id}" in log for word in LINES), log
        if trial.sample["fail"]:
            assert trial.status == "failed" and f"RuntimeError: noisy failure {trial.id}" in (trial.error or "")
            assert trial.output is not None and f"child {trial.id}" in trial.output
        else:
            assert trial.status == "succeeded" and trial.output is None


def test_a_log_that_cannot_be_written_leaves_the_output_on_the_terminal(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("")  # the log's directory cannot be created under a file
    engine = InProcessEngine(log_dir=blocked)
    engine.start(TrialPayload(Net, (), {}, FunctionalEvaluator(noisy, fail=False)))
    assert finished(run_trials(engine, [Trial(1, {"width": 2})])[1]).status == "succeeded"
    shown = capfd.readouterr()
    assert "print 1" in shown.out and f"cannot write {blocked / '1' / 'output.log'}" in shown.err


class PrintingTable(FunctionalEvaluator):
    """A table the benchmark engine looks up in the driver (``query``), printing as it goes."""

    def __init__(self) -> None:
        super().__init__(silent, fail=False)

    def query(self, sample: dict[str, object]) -> float:
        print(f"looked up {sample['width']}")
        os.write(2, b"fd2 lookup\n")
        return float(sample["width"])  # type: ignore[arg-type]


def test_a_table_lookup_prints_only_to_its_log(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    config = ExperimentConfig(engine="benchmark", workdir=tmp_path, seed=0, max_trials=1, direction="maximize")
    Experiment(Net(), PrintingTable(), strategy.GridSearch(), config).run()
    shown = capfd.readouterr()
    assert "looked up" not in shown.out + shown.err and "fd2 lookup" not in shown.err
    log = (tmp_path / "trials" / "1" / "output.log").read_text()
    assert "looked up" in log and "fd2 lookup" in log


def test_an_in_process_run_leaves_no_thread_behind(tmp_path: Path) -> None:
    """The capture's and the timeout watchdog's threads end with the run: a driver
    with threads could not fork the process engine's workers from itself for a
    next run."""
    before = set(threading.enumerate())  # engines other tests left unshut keep theirs
    config = ExperimentConfig(
        engine="inprocess", workdir=tmp_path, seed=0, max_trials=2, direction="maximize", trial_timeout=60
    )  # a timeout: the watchdog thread too
    Experiment(Net(), FunctionalEvaluator(noisy, fail=False), strategy.GridSearch(), config).run()
    assert not [t.name for t in set(threading.enumerate()) - before]
    assert not list((tmp_path / "trials").glob(".capture-*")), "the scratch file is removed"


def test_a_long_trials_output_shows_while_it_runs(tmp_path: Path) -> None:
    """Past PROMOTE_AFTER a running trial's scratch becomes its log, in place."""
    engine = InProcessEngine(log_dir=tmp_path)
    engine.start(TrialPayload(Net, (), {}, FunctionalEvaluator(slow_printer, log=str(tmp_path / "1" / "output.log"))))
    event = finished(run_trials(engine, [Trial(1, {"width": 2})])[1])
    engine.shutdown()
    assert event.status == "succeeded", event.error
    assert (tmp_path / "1" / "output.log").read_text() == "early\nseen early\nlate\n"

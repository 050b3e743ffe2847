"""A run that never started a trial leaves nothing behind (workers that cannot
load the evaluator, a start refused), and a store that holds nothing (a driver
killed in its first milliseconds) neither blocks a new run nor resume."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cloudpickle
import pytest

import archsmith.nn as nn
from archsmith import strategy
from archsmith.execution import EngineError
from archsmith.experiment import STORE_FILE, Experiment, ExperimentConfig, ExperimentError, Store

from ._experiment_helpers import count, deadline, make_experiment, read_trials

cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers get this module's evaluator by value


class Unloadable:
    """An evaluator that pickles but cannot be unpickled in a worker."""

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (_fail_to_load, ())


def _fail_to_load() -> None:
    raise RuntimeError("this evaluator cannot be loaded in a worker")


class Space(nn.ModelSpace):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, nn.choice("width", [2, 3]))


def _evaluator(model, broken=None):  # type: ignore[no-untyped-def]
    return 1.0


def test_workers_that_cannot_load_the_evaluator_leave_nothing_behind(tmp_path: Path) -> None:
    from archsmith.evaluator import FunctionalEvaluator

    workdir = tmp_path / "exp"
    exp = Experiment(
        Space(),
        FunctionalEvaluator(_evaluator, broken=Unloadable()),
        strategy.Random(),
        ExperimentConfig(max_trials=2, engine="process", direction="maximize", workdir=workdir),
    )
    with deadline(60), pytest.raises(EngineError, match="cannot be loaded in a worker"):
        exp.run()
    assert not workdir.exists(), f"left behind: {list(workdir.iterdir()) if workdir.exists() else ''}"
    # An existing directory is kept, emptied of what the run wrote.
    workdir.mkdir()
    (workdir / "notes.txt").write_text("mine")
    with deadline(60), pytest.raises(EngineError):
        exp.run()
    assert sorted(p.name for p in workdir.iterdir()) == ["notes.txt"]


def test_a_store_that_holds_nothing_does_not_block_a_new_run_or_resume(tmp_path: Path) -> None:
    for resume in (False, True):
        workdir = tmp_path / f"resume-{resume}"
        store = Store.create(workdir / STORE_FILE, {"labels": ["width", "scale"], "seed": 3})
        store.close()
        with deadline(60):
            make_experiment(workdir, max_trials=3).run(resume=resume)
        assert count(read_trials(workdir), "succeeded") == 3


def test_a_driver_killed_at_random_early_moments_never_blocks_the_directory(tmp_path: Path) -> None:
    """kill -9 of a fresh run in its first instants (store creation included),
    repeatedly: each time, a new run() works, or (when trials had run) resume does."""
    script = Path(__file__).parent / "scripts" / "run_experiment.py"
    for i, delay in enumerate((0.05, 0.3, 0.6, 0.9, 1.2, 1.6)):
        workdir = tmp_path / f"exp{i}"
        proc = subprocess.Popen(
            [sys.executable, str(script), str(workdir), "--engine", "inprocess", "--max-trials", "3", "--sleep", "0"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(delay)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        with deadline(60):
            try:
                make_experiment(workdir, max_trials=3).run()
            except ExperimentError as e:  # it got as far as running trials: resume completes them
                assert "already holds an experiment" in str(e)
                make_experiment(workdir, max_trials=3).run(resume=True)
        assert count(read_trials(workdir), "succeeded") == 3


def test_a_non_resumed_run_on_a_directory_with_results_is_still_refused(tmp_path: Path) -> None:
    with deadline(60):
        make_experiment(tmp_path, max_trials=2).run()
    with pytest.raises(ExperimentError, match="already holds an experiment"):
        make_experiment(tmp_path, max_trials=2).run()

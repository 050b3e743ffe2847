"""The ``stopped`` status of early-stopped trials: stored, counted, not ranked,
never re-run on resume, shown by the CLI; stores of earlier releases (which wrote
``succeeded`` with ``stopped_early`` set) read the same way."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

import archsmith
import archsmith.nn as nn
from archsmith.cli import main
from archsmith.evaluator import FunctionalEvaluator
from archsmith.experiment import Experiment, ExperimentConfig, Store, read_experiment, summarize, top_trials
from archsmith.strategy import GridSearch, MedianStop

STEPS = 4


class Quality(nn.ModelSpace):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(1, 1)
        self.quality = nn.ValueChoice([0.9, 0.8, 0.1, 0.05, 0.95], label="quality")


def train(model: object) -> float:
    quality, value = archsmith.current_sample()["quality"], 0.0
    for step in range(STEPS):
        value = quality * (step + 1) / STEPS
        archsmith.report_intermediate_result(value)
        if archsmith.should_stop():
            break
    return value


def search(workdir: Path, max_trials: int, resume: bool = False) -> Experiment:
    config = ExperimentConfig(max_trials=max_trials, engine="inprocess", workdir=workdir, seed=0, direction="maximize")
    exp = Experiment(
        Quality(), FunctionalEvaluator(train), GridSearch(shuffle=False), config, early_stopping=MedianStop(1, 2)
    )
    return exp.run(resume=resume)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    workdir = tmp_path_factory.mktemp("stopped")
    search(workdir, 4)
    return workdir


def test_stopped_trials_are_stored_counted_and_not_ranked(run: Path) -> None:
    with read_experiment(run) as store:
        trials = store.trials()
        stopped = store.trials("stopped")
        summary = summarize(store)
        top = top_trials(store, 10)
    assert [t.sample["quality"] for t in stopped] == [0.1, 0.05]  # below the median: stopped
    assert all(t.stopped_early and t.objective is not None and t.objective < 0.1 for t in stopped)
    assert summary.stopped == 2 and summary.counts["stopped"] == 2 and summary.done == 4
    assert [t.sample["quality"] for t in top] == [0.9, 0.8]  # only the full runs rank
    assert {t.status for t in trials} == {"succeeded", "stopped"}


def test_resume_does_not_rerun_a_stopped_trial(tmp_path: Path) -> None:
    search(tmp_path, 4)
    search(tmp_path, 5, resume=True)
    store = Store(tmp_path / "experiment.db", readonly=True)
    try:
        trials = store.trials()
        assert len(trials) == 5
        assert [t.attempts for t in trials] == [1] * 5
        assert [t.id for t in store.trials("stopped")] == [3, 4]
        assert store.get_meta("status") == "done"
    finally:
        store.close()


def test_the_cli_counts_and_filters_them(run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["trials", str(run), "--status", "stopped", "--format", "json"]) == 0
    assert [r["id"] for r in json.loads(capsys.readouterr().out)] == [3, 4]
    assert main(["show", str(run)]) == 0
    assert "succeeded 2, failed 0, stopped 2" in capsys.readouterr().out
    assert main(["list", str(run.parent)]) == 0
    out = capsys.readouterr().out
    assert "stopped" in out.splitlines()[2]  # the header has the column


def test_a_store_of_an_earlier_release_reads_stopped_trials_as_stopped(run: Path, tmp_path: Path) -> None:
    """Earlier releases wrote an early-stopped trial as succeeded with stopped_early = 1."""
    old = tmp_path / "old"
    old.mkdir()
    with sqlite3.connect(run / "experiment.db") as source, sqlite3.connect(old / "experiment.db") as target:
        source.backup(target)
        target.execute("UPDATE trials SET status = 'succeeded' WHERE status = 'stopped'")
    for readonly in (True, False):
        store = Store(old / "experiment.db", readonly=readonly)
        try:
            assert [t.id for t in store.trials("stopped")] == [3, 4]
            assert store.counts()["stopped"] == 2 and store.counts()["succeeded"] == 2
            assert [t.id for t in store.best("maximize", 10)] == [1, 2]
        finally:
            store.close()

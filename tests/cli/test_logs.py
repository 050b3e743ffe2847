"""``archsmith logs EXP TRIAL [--follow] [--tail N]``."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from archsmith import strategy
from archsmith.cli import main
from archsmith.experiment import Experiment, ExperimentConfig, read_experiment, trial_log

from ._spaces import Width, grid_run


def chatty(model) -> float:
    """Prints three lines; the widest model fails."""
    width = model.fc.out_features
    for line in range(3):
        print(f"width {width} line {line}")
    if width == 3:
        raise RuntimeError("width 3 is not allowed here")
    return float(width)


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return grid_run(tmp_path_factory.mktemp("logs") / "run", chatty)


def test_a_trial_output_is_printed_whole_or_its_tail(finished: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["logs", str(finished), "1"]) == 0
    assert capsys.readouterr().out.splitlines() == [f"width 1 line {i}" for i in range(3)]
    assert main(["logs", str(finished), "2", "--tail", "1"]) == 0
    assert capsys.readouterr().out.splitlines() == ["width 2 line 2"]


def test_a_failed_trial_shows_its_output_and_its_error(finished: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["logs", str(finished), "3"]) == 0
    captured = capsys.readouterr()
    assert "width 3 line 2" in captured.out
    assert "trial 3 failed" in captured.err and "width 3 is not allowed here" in captured.err


def test_a_trial_without_a_log_shows_what_the_store_kept(finished: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = trial_log(finished, 3)
    kept = log.read_text()
    log.unlink()
    try:
        assert main(["logs", str(finished), "3"]) == 0
        out = capsys.readouterr().out
        with read_experiment(finished) as store:
            stored = store.trial(3).output
        assert stored and stored in out  # the failed trial's output tail, stored with it
        log_1 = trial_log(finished, 1)
        text_1 = log_1.read_text()
        log_1.unlink()
        try:
            assert main(["logs", str(finished), "1"]) == 0
            assert "left no output log" in capsys.readouterr().out
        finally:
            log_1.write_text(text_1)
    finally:
        log.write_text(kept)


def test_an_unknown_trial_or_experiment_is_a_usage_error(
    finished: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["logs", str(finished), "9"]) == 2
    assert "has no trial 9; its trials are numbered 1 to 3" in capsys.readouterr().err
    assert main(["logs", str(tmp_path / "nothing"), "1"]) == 2
    assert "is not an archsmith experiment" in capsys.readouterr().err
    assert main(["logs", str(finished), "0"]) == 2
    assert "not a positive integer" in capsys.readouterr().err


def slow(model) -> float:
    print("before the pause", flush=True)
    time.sleep(2.0)
    print("after the pause", flush=True)
    return 1.0


def test_follow_prints_while_the_trial_runs_and_stops_when_it_ends(tmp_path: Path) -> None:
    workdir = tmp_path / "run"
    config = ExperimentConfig(engine="inprocess", workdir=workdir, seed=0, direction="maximize", max_trials=1)
    run = threading.Thread(target=Experiment(Width(), slow, strategy.Random(), config).run)
    run.start()
    try:
        deadline = time.time() + 30
        while not ((workdir / "experiment.db").exists() and trial_log(workdir, 1).is_file()):
            assert time.time() < deadline, "the trial never started"
            time.sleep(0.05)
        follow = subprocess.run(
            [sys.executable, "-m", "archsmith", "logs", str(workdir), "1", "--follow"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        run.join(timeout=60)
    assert follow.returncode == 0, follow.stderr
    assert follow.stdout.splitlines() == ["before the pause", "after the pause"]

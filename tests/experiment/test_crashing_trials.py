"""A trial that takes the whole driver down (in-process engine) is re-run on
resume at most ``max_attempts`` times, then recorded as failed with the reason;
a run that ends by an error never says it finished normally."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from archsmith.experiment import ExperimentError

from ._experiment_helpers import RUN_SCRIPT, count, deadline, make_experiment, read_trials


def _run(workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    import sys

    return subprocess.run(
        [sys.executable, str(RUN_SCRIPT), str(workdir), "--engine", "inprocess", "--sleep", "0", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_trial_that_kills_the_driver_fails_after_max_attempts(tmp_path: Path) -> None:
    workdir = tmp_path / "exp"
    args = ("--max-trials", "5", "--fault", "3=exit")
    first = _run(workdir, *args)
    assert first.returncode == 3, first.stderr
    trials = read_trials(workdir)
    assert [t.status for t in trials] == ["succeeded", "succeeded", "running"]
    second = _run(workdir, "--resume", *args)  # attempt 2: it crashes again
    assert second.returncode == 3
    assert read_trials(workdir)[2].attempts == 2
    third = _run(workdir, "--resume", *args)  # no third attempt: failed, the run completes
    assert third.returncode == 0, third.stdout + third.stderr
    trials = read_trials(workdir)
    assert trials[2].status == "failed" and "max_attempts=2" in (trials[2].error or "")
    assert "engine='process'" in trials[2].error
    assert count(trials, "succeeded") == 4 and len(trials) == 5


def test_ctrl_c_does_not_count_as_an_attempt(tmp_path: Path) -> None:
    with deadline(60):
        make_experiment(tmp_path, max_trials=4, interrupt={2}).run()
    assert read_trials(tmp_path)[1].attempts == 0
    with deadline(60):
        make_experiment(tmp_path, max_trials=4, interrupt={2}).run(resume=True)  # interrupted again
    with deadline(60):
        make_experiment(tmp_path, max_trials=4).run(resume=True)
    assert count(read_trials(tmp_path), "succeeded") == 4


def test_an_error_in_the_loop_is_not_reported_as_a_normal_end(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from archsmith import strategy

    class Broken(strategy.Random):
        def tell(self, trial):  # type: ignore[no-untyped-def]
            raise RuntimeError("the strategy broke")

    with deadline(60), pytest.raises(RuntimeError, match="the strategy broke"):
        make_experiment(tmp_path, max_trials=4, strategy=Broken()).run()
    out = capsys.readouterr()
    text = out.out + out.err
    assert "stopped by an error: RuntimeError: the strategy broke" in text
    assert "strategy is exhausted" not in text and "max_trials" not in text
    with pytest.raises(ExperimentError, match="already holds"):
        make_experiment(tmp_path, max_trials=4).run()

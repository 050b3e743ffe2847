"""The in-process engine against a trial that swallows its timeout (``except
BaseException``), run in a subprocess: it is pushed out and the run goes on; one
that cannot be pushed out is recorded as failed and the process ends with a
clear message, never a hang."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parent / "scripts" / "inprocess_timeout.py"
EXIT_CODE = 70


RUNS = {
    "swallow": ("swallow", "swallow_deeper"),
    "nested": ("nested",),
    "blocked": ("blocked",),
    "logged": ("--log-dir={logs}", "nested"),  # trial output captured into its log: the message still shows
}


class ScriptRun:
    def __init__(self, result: subprocess.CompletedProcess[str], took: float) -> None:
        self.result, self.took = result, took
        self.finished = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, ScriptRun]:
    """The script runs, started side by side (each spends seconds importing torch)."""
    start = time.time()
    logs = tmp_path_factory.mktemp("logs")
    procs = {
        name: subprocess.Popen(
            [sys.executable, str(SCRIPT), *(action.format(logs=logs) for action in actions)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=SCRIPT.parent,
        )
        for name, actions in RUNS.items()
    }
    done = {}
    for name, proc in procs.items():
        try:
            out, err = proc.communicate(timeout=max(1.0, 90 - (time.time() - start)))
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
        done[name] = ScriptRun(subprocess.CompletedProcess(proc.args, proc.returncode, out, err), time.time() - start)
    return done


def test_trials_that_swallow_their_timeout_are_pushed_out_and_the_run_goes_on(runs: dict[str, ScriptRun]) -> None:
    # A loop catching BaseException around its work; the same, called from another such loop.
    run = runs["swallow"]
    result = run.result
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "DONE" in result.stdout
    assert [(e["id"], e["status"]) for e in run.finished] == [(1, "failed"), (2, "failed"), (3, "succeeded")]
    for event in run.finished[:2]:
        assert "timed out after 0.5 s (trial_timeout)" in str(event["error"])
        assert "in swallow" in str(event["error"]), "the error says where it was"


@pytest.mark.parametrize("name", ["nested", "blocked", "logged"])
def test_trial_that_cannot_be_stopped_is_recorded_and_the_process_ends(runs: dict[str, ScriptRun], name: str) -> None:
    # "nested": two handlers in one frame; "blocked": never back in Python code to see the alarm.
    run = runs[name]
    result = run.result
    assert result.returncode == EXIT_CODE, result.stdout[-2000:] + result.stderr[-2000:]
    assert "DONE" not in result.stdout
    assert [(e["id"], e["status"]) for e in run.finished] == [(1, "failed")], "the listener recorded it first"
    assert "did not stop" in str(run.finished[0]["error"])
    assert "trial 1 did not stop at its timeout (it catches BaseException?); it is recorded as failed" in result.stderr
    assert "run(resume=True) continues" in result.stderr and "engine='process'" in result.stderr
    if name == "logged":  # the trial's own print went to its log, the engine's message to the terminal
        printed = [line for line in result.stdout.splitlines() if not line.startswith("{")]  # not the listener's
        assert not any("trial doing" in line for line in printed) and run.finished[0]["output"] == "trial doing nested"

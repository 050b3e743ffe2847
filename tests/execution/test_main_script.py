"""A real user script, run as a subprocess with the process engine: its model space,
evaluator function and data set live in ``__main__`` (no ``if __name__ ==
"__main__":`` guard) and just work; the payload reaches each worker once, not
once per trial."""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

from archsmith.experiment import Store, TrialRecord

SCRIPT = Path(__file__).parent / "scripts" / "search_in_main.py"


@dataclass
class ScriptRun:
    result: subprocess.CompletedProcess[str]
    trials: list[TrialRecord]
    unpickled_by: list[int]


@pytest.fixture(scope="module")
def script_run(tmp_path_factory: pytest.TempPathFactory) -> ScriptRun:
    tmp = tmp_path_factory.mktemp("main_script")
    log = tmp / "unpickled.txt"
    log.touch()
    result = subprocess.run(
        [sys.executable, str(SCRIPT), str(tmp / "exp"), str(log)],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=tmp,
    )
    trials: list[TrialRecord] = []
    if (tmp / "exp" / "experiment.db").exists():
        store = Store(tmp / "exp" / "experiment.db", readonly=True)
        trials = store.trials()
        store.close()
    return ScriptRun(result, trials, [int(line) for line in log.read_text().split()])


def test_the_script_really_has_everything_in_main_and_no_guard() -> None:
    text = SCRIPT.read_text()
    assert not re.search(r"^\s*if\s+__name__", text, re.MULTILINE)
    assert "class TinyNet(nn.ModelSpace)" in text and "def train(" in text and "class CountingData" in text


def test_script_with_main_objects_runs_to_the_end(script_run: ScriptRun) -> None:
    result = script_run.result
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "best: [{" in result.stdout
    assert "Traceback" not in result.stderr, result.stderr[-3000:]


def test_every_architecture_ran_once_and_only_the_killed_trial_failed(script_run: ScriptRun) -> None:
    trials = script_run.trials
    assert len(trials) == 9, "3 x 3 architectures, Random(dedup=True), no max_trials: exactly size() trials"
    assert len({tuple(sorted(t.sample.items())) for t in trials}) == 9
    failed = [t for t in trials if t.status == "failed"]
    assert [t.sample for t in failed] == [{"hidden": 4, "lr": 0.5}]
    assert "SIGKILL" in (failed[0].error or "")
    succeeded = [t for t in trials if t.status == "succeeded"]
    assert len(succeeded) == 8
    assert all(0.0 <= t.objective <= 1.0 for t in succeeded)  # objective="acc" picked from the dict
    assert all(t.worker and t.worker.startswith("worker-") for t in trials)


def test_payload_reaches_each_worker_once_not_once_per_trial(script_run: ScriptRun) -> None:
    unpickled_by = script_run.unpickled_by
    per_process = Counter(unpickled_by)
    assert all(n == 1 for n in per_process.values()), f"a worker unpickled the payload more than once: {per_process}"
    # Two workers at the start, and the replacement of the one whose trial was killed (unless the run
    # ended and shut it down before it had loaded).
    assert len(unpickled_by) in (2, 3), f"expected 2 workers + at most 1 replacement, got {unpickled_by}"
    trial_pids = [int(t.metric["pid"]) for t in script_run.trials if t.status == "succeeded"]
    assert set(trial_pids) <= set(unpickled_by), "every trial ran in a worker that loaded the payload"
    assert len(trial_pids) > len(unpickled_by)
    assert max(Counter(trial_pids).values()) >= 2, "some worker ran several trials on one copy of the payload"

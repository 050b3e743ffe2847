"""The Ray engine on a real two-node Ray cluster on 127.0.0.1.

One module-scoped run of ``scripts/ray_cluster.py`` inside private network and
PID namespaces (only ``lo`` up, so Ray can use nothing but 127.0.0.1, and every
process it starts dies with the namespace) starts the cluster, runs every
scenario's searches through ``ray_address`` and stops the cluster; the tests
then read the scenarios' stores and logs. Ray starts slowly on a loaded
2-core machine: one cluster serves every scenario."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from archsmith.experiment import Store, TrialRecord

from ._netns import refusal

SCRIPT = Path(__file__).resolve().parent / "scripts" / "ray_cluster.py"
PORT = 6390  # the cluster's GCS port (scripts/ray_cluster.py)
LIMIT = 900  # seconds for the whole cluster session; each step inside has its own timeout

pytest.importorskip("ray")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, Any]]]:
    reason = refusal()
    if reason is not None:
        pytest.skip(reason)
    out = tmp_path_factory.mktemp("ray-cluster")
    command = [
        "unshare",
        "--net",
        "--pid",
        "--fork",
        "--kill-child",
        "--mount-proc",
        sys.executable,
        str(SCRIPT),
        str(out),
    ]
    try:
        subprocess.run(command, timeout=LIMIT, capture_output=True)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the Ray cluster session took over {LIMIT} s")  # --kill-child: the namespace died with it
    results = json.loads((out / "results.json").read_text())
    yield out, results


def _trials(out: Path, scenario: str) -> list[TrialRecord]:
    store = Store(out / scenario / "experiment.db", readonly=True)
    try:
        return store.trials()
    finally:
        store.close()


def _log(out: Path, scenario: str, trial_id: int) -> str:
    path = out / scenario / "trials" / str(trial_id) / "output.log"
    return path.read_text() if path.exists() else ""


def _ok(results: dict[str, Any], step: str) -> str:
    result = results[step]
    assert result["rc"] == 0, f"{step} failed ({result['rc']}):\n{result['out'][-4000:]}"
    return str(result["out"])


def test_the_cluster_started_on_loopback_and_stopped(cluster: tuple[Path, dict[str, Any]]) -> None:
    _, results = cluster
    assert "error" not in results, results.get("error")
    for step in ("lo", "head", "second"):
        _ok(results, step)
    _ok(results, "stop")
    ours = f"raylet.*--gcs-address=127.0.0.1:{PORT}"
    leftover = subprocess.run(["pgrep", "-f", ours], capture_output=True, text=True).stdout
    assert leftover == "", f"raylets outlived the test's cluster: {leftover}"


def test_failed_trials_raise_crash_and_hang_while_the_others_stream(cluster: tuple[Path, dict[str, Any]]) -> None:
    out, results = cluster
    output = _ok(results, "drivers")
    trials = {t.id: t for t in _trials(out, "faults")}
    assert trials[1].status == "failed" and "failed on purpose" in (trials[1].error or "")
    assert trials[2].status == "failed" and "process died" in (trials[2].error or "")
    assert trials[3].status == "failed" and "timed out after 8.0 s" in (trials[3].error or "")
    assert "in work" in (trials[3].error or "").split("where it was:")[1]  # the evaluator's frame it hung in
    good = [t for t in trials.values() if t.id > 3]
    assert good and all(t.status == "succeeded" for t in good)
    store = Store(out / "faults" / "experiment.db", readonly=True)
    try:
        for t in good:  # both intermediate results reached the driver and the store
            assert [step for step, *_ in store.intermediates(t.id)] == [0, 1]
    finally:
        store.close()
    for t in good:  # a trial's output is in its log on the driver, never on the driver's terminal
        assert f"trial {t.id} node=" in _log(out, "faults", t.id)
        assert f"trial {t.id} node=" not in output
    assert "trial 1 node=" in _log(out, "faults", 1)  # a failed trial's log, and its tail in the store
    assert "trial 1 node=" in (trials[1].output or "")


def test_early_stopping_reaches_trials_on_the_second_node(cluster: tuple[Path, dict[str, Any]]) -> None:
    out, results = cluster
    _ok(results, "drivers")
    trials = {t.id: t for t in _trials(out, "early_stop")}
    assert [trials[i].status for i in (1, 2)] == ["succeeded", "succeeded"]
    bad = [trials[i] for i in (3, 4, 5)]
    assert all(t.stopped_early for t in bad), [(t.id, t.status) for t in bad]
    logs = {t.id: _log(out, "early_stop", t.id) for t in bad}
    assert all("stopped at step" in log for log in logs.values()), logs
    assert any("node=second" in log for log in logs.values()), logs


def test_each_trial_gets_its_own_gpu(cluster: tuple[Path, dict[str, Any]]) -> None:
    out, results = cluster
    _ok(results, "drivers")
    trials = _trials(out, "gpu")
    assert len(trials) == 4 and all(t.status == "succeeded" for t in trials)
    seen = set()
    for t in trials:
        log = _log(out, "gpu", t.id)
        assert "node=head" in log  # the only node with GPUs
        seen.add(log.split("CUDA_VISIBLE_DEVICES=")[1].split()[0])
    assert seen == {"0", "1"}  # two actors, one fake GPU each


def test_kill_9_of_the_driver_then_resume(cluster: tuple[Path, dict[str, Any]]) -> None:
    out, results = cluster
    _ok(results, "resume")
    assert results["resume"]["killed_with_succeeded"] >= 2
    trials = _trials(out, "resume")
    assert sorted(t.id for t in trials) == [1, 2, 3, 4, 5, 6]
    assert all(t.status == "succeeded" for t in trials)
    assert sorted(t.sample["width"] for t in trials) == [2, 3, 4, 5, 6, 7]  # nothing run twice under two ids


def test_a_lost_node_reruns_its_trial_and_the_search_completes(cluster: tuple[Path, dict[str, Any]]) -> None:
    out, results = cluster
    _ok(results, "node_loss")
    trials = _trials(out, "node_loss")
    assert sorted(t.id for t in trials) == [1, 2, 3, 4, 5, 6]  # the full budget, each trial once
    assert all(t.status == "succeeded" for t in trials), [(t.id, t.status, t.error) for t in trials]
    rerun = [t for t in trials if t.attempts > 1]
    assert len(rerun) == 1 and rerun[0].attempts == 2, [(t.id, t.attempts) for t in trials]
    log = _log(out, "node_loss", rerun[0].id)
    assert "node=head" in log  # the re-run's log replaced the lost attempt's

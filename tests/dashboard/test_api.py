"""The JSON API over real experiments: a grid search (one objective, a failed trial,
HTML in a label, a candidate and an error), the same with two objectives, and a
store that is not one. FastAPI's TestClient talks to the router."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from archsmith.dashboard._api import api_router
from archsmith.dashboard._data import ExperimentIndex
from archsmith.experiment import STORE_FILE, export_samples, loads_samples

from ._runs import XSS_ERROR, XSS_LABEL, XSS_OP, generate_store, multi_run, single_run

FIGURES = ("history", "curves", "parallel", "importance", "pareto", "oneshot_curves", "oneshot_probabilities")


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("api")
    root = base / "root"
    single_run(root / "single")
    multi_run(root / "multi")
    (root / "broken").mkdir()
    (root / "broken" / STORE_FILE).write_bytes(b"half a store, garbage after" * 100)
    generate_store(base / "outside", 3)
    (root / "escape").symlink_to(base / "outside")
    return root


@pytest.fixture(scope="module")
def client(root: Path) -> TestClient:
    app = FastAPI()
    app.include_router(api_router(ExperimentIndex(root)), prefix="/api")
    return TestClient(app)


def test_the_list_has_every_experiment_and_the_broken_one_with_its_error(client: TestClient, root: Path) -> None:
    answer = client.get("/api/experiments").json()
    assert answer["root"] == str(root.resolve())
    by_key = {e["key"]: e for e in answer["experiments"]}
    assert sorted(by_key) == ["broken", "multi", "single"]  # the symlink leading outside is not served
    single = by_key["single"]
    assert single["counts"] == {"waiting": 0, "running": 0, "succeeded": 11, "failed": 1, "stopped": 0, "total": 12}
    assert single["objectives"] == [{"name": "acc", "direction": "maximize"}]
    assert single["best"] == {"trial": 11, "values": {"acc": 0.6}} and single["status"] == "done"
    assert not single["live"] and single["engine"] == "inprocess" and "GridSearch" in single["strategy"]
    assert single["error"] is None and isinstance(single["started"], float)
    assert by_key["multi"]["objectives"] == [
        {"name": "acc", "direction": "maximize"},
        {"name": "size", "direction": "minimize"},
    ]
    broken = by_key["broken"]
    assert broken["status"] == "unreadable" and str(root / "broken" / STORE_FILE) in broken["error"]


def test_an_experiment_with_its_decisions_and_version(client: TestClient) -> None:
    answer = client.get("/api/experiments/single").json()
    assert answer["decisions"] == [
        {"label": XSS_LABEL, "kind": "categorical", "values": [1, 2, 3, 4, 5, 6]},
        {"label": "act", "kind": "categorical", "values": [XSS_OP, "tanh"]},
    ]
    assert answer["config"]["objective"] == "acc" and not answer["oneshot"] and answer["version"]


def test_trials_and_a_poll(client: TestClient) -> None:
    answer = client.get("/api/experiments/single/trials").json()
    assert answer["complete"] and [t["id"] for t in answer["trials"]] == list(range(1, 13))
    first = answer["trials"][0]
    assert first["sample"] == {XSS_LABEL: 1, "act": XSS_OP} and first["status"] == "succeeded"
    assert first["metrics"] == {"acc": 0.1, "size": 1.0} and first["objectives"] == {"acc": 0.1}
    assert first["steps"] == 3 and first["duration"] == pytest.approx(first["ended"] - first["started"])
    failed = answer["trials"][-1]
    assert failed["status"] == "failed" and XSS_ERROR in failed["error"] and failed["objectives"] == {}
    poll = client.get("/api/experiments/single/trials", params={"since": answer["version"]}).json()
    assert poll == {"version": answer["version"], "complete": False, "trials": []}
    stale = client.get("/api/experiments/single/trials", params={"since": "old.1"}).json()
    assert stale["complete"] and len(stale["trials"]) == 12


def test_a_trial_in_detail(client: TestClient) -> None:
    trial = client.get("/api/experiments/single/trials/2").json()
    assert trial["sample"] == {XSS_LABEL: 1, "act": "tanh"}
    assert [s["step"] for s in trial["intermediates"]] == [0, 1, 2]
    assert trial["intermediates"][2]["metrics"]["acc"] == pytest.approx(0.15)
    assert "training width 1" in trial["log_tail"]
    arch = trial["architecture"]
    assert arch["error"] is None and arch["total_params"] == 4  # Linear(3, 1)
    assert [(m["path"], m["type"], m["params"], m["depth"]) for m in arch["modules"]] == [
        ("(model)", "Small", 4, 0),
        ("fc", "Linear", 4, 1),
        ("act", "Tanh", 0, 1),
    ]
    failed = client.get("/api/experiments/single/trials/12").json()
    assert failed["error"].startswith("Traceback") and XSS_ERROR in failed["error"]


def test_every_figure_answers_a_figure_or_why_not(client: TestClient) -> None:
    for key in ("single", "multi"):
        for name in FIGURES:
            answer = client.get(f"/api/experiments/{key}/figures/{name}").json()
            assert set(answer) == {"figure", "message"}
            assert (answer["figure"] is None) == (answer["message"] is not None) or name == "importance"
            if answer["figure"] is not None:
                assert set(answer["figure"]) == {"data", "layout"} and answer["figure"]["data"]
    assert client.get("/api/experiments/single/figures/pareto").json()["figure"] is None
    assert client.get("/api/experiments/multi/figures/pareto").json()["figure"] is not None


def test_top_k_downloads_what_archsmith_export_writes(client: TestClient, root: Path) -> None:
    response = client.get("/api/experiments/single/top", params={"k": 3})
    assert response.status_code == 200
    assert response.headers["content-disposition"] == 'attachment; filename="single-top3.json"'
    assert loads_samples(response.text) == export_samples(root / "single", 3)
    one = client.get("/api/experiments/single/top", params={"k": 1})
    assert json.loads(one.text) == export_samples(root / "single", 1)[0]  # k=1: one sample object, as export
    assert client.get("/api/experiments/single/top", params={"k": 0}).status_code == 422


@pytest.mark.parametrize(
    "path",
    [
        "/api/experiments/nope",
        "/api/experiments/single/trials/99",
        "/api/experiments/single/figures/nope",
        "/api/experiments/%2e%2e",
        "/api/experiments/..%2f..%2fetc",
        "/api/experiments/%2Fetc%2Fpasswd",
        "/api/experiments/escape",
        "/api/experiments/escape/trials",
        "/api/experiments/.%2e/trials",
        "/api/experiments/single%00/trials",
    ],
)
def test_unknown_things_and_traversal_are_not_found(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404, response.text
    assert "detail" in response.json()


@pytest.mark.parametrize("path", ["", "/trials", "/trials/1", "/figures/history", "/top"])
def test_an_unreadable_store_is_503_with_the_reason(client: TestClient, root: Path, path: str) -> None:
    response = client.get(f"/api/experiments/broken{path}")
    assert response.status_code == 503
    assert str(root / "broken" / STORE_FILE) in response.json()["detail"]


def test_serving_changes_no_file(root: Path) -> None:
    def files() -> dict[str, tuple[int, int]]:
        return {str(p): (p.stat().st_mtime_ns, p.stat().st_size) for p in root.rglob("*") if p.is_file()}

    before = files()
    app = FastAPI()
    app.include_router(api_router(ExperimentIndex(root)), prefix="/api")
    fresh = TestClient(app)
    for key in ("single", "multi", "broken"):
        for path in ("", "/trials", "/trials/1", "/top", *(f"/figures/{n}" for n in FIGURES)):
            fresh.get(f"/api/experiments/{key}{path}")
    assert files() == before


def test_a_live_poll_over_http_brings_only_the_new_trials(tmp_path: Path) -> None:
    import random

    from ._runs import add_finished_trial

    writer = generate_store(tmp_path / "live", 200, keep_open=True)
    assert writer is not None
    app = FastAPI()
    app.include_router(api_router(ExperimentIndex(tmp_path)), prefix="/api")
    client = TestClient(app)
    try:
        first = client.get("/api/experiments/live/trials").json()
        assert first["complete"] and len(first["trials"]) == 200
        writer.set_meta("heartbeat", time.time())  # a driver's heartbeat: live however slow the machine
        assert client.get("/api/experiments/live").json()["live"]
        rng = random.Random(9)
        new = [add_finished_trial(writer, rng) for _ in range(10)]
        poll = client.get("/api/experiments/live/trials", params={"since": first["version"]}).json()
        assert not poll["complete"] and [t["id"] for t in poll["trials"]] == new
        again = client.get("/api/experiments/live/trials", params={"since": poll["version"]}).json()
        assert again["trials"] == [] and again["version"] == poll["version"]
        whole = client.get("/api/experiments/live/trials").json()
        assert whole["complete"] and len(whole["trials"]) == 210 and whole["version"] == poll["version"]
    finally:
        writer.close()


def test_a_log_leading_outside_the_experiment_is_not_served(tmp_path: Path) -> None:
    generate_store(tmp_path / "root" / "exp", 2)
    secret = tmp_path / "secret.txt"
    secret.write_text("do not serve me")
    (tmp_path / "root" / "exp" / "trials" / "1").mkdir(parents=True)
    (tmp_path / "root" / "exp" / "trials" / "1" / "output.log").symlink_to(secret)
    (tmp_path / "root" / "exp" / "trials" / "2").mkdir(parents=True)
    (tmp_path / "root" / "exp" / "trials" / "2" / "output.log").write_text("line 1\nline 2\n")
    app = FastAPI()
    app.include_router(api_router(ExperimentIndex(tmp_path / "root")), prefix="/api")
    client = TestClient(app)
    assert client.get("/api/experiments/exp/trials/1").json()["log_tail"] == ""
    trial = client.get("/api/experiments/exp/trials/2").json()
    assert trial["log_tail"] == "line 1\nline 2"
    assert trial["architecture"]["error"] and "bench" in trial["architecture"]["error"]  # its space is not importable

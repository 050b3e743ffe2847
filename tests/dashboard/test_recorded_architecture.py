"""A trial records its module tree when it builds its model, so the dashboard shows
it for any space, even one defined where the dashboard cannot import it."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import torch
from fastapi import FastAPI
from fastapi.testclient import TestClient

import archsmith.nn as nn
from archsmith import strategy
from archsmith.dashboard._api import api_router
from archsmith.dashboard._data import ExperimentIndex
from archsmith.evaluator import FunctionalEvaluator
from archsmith.experiment import Experiment, ExperimentConfig
from archsmith.experiment._store import Store


@pytest.mark.parametrize("engine", ["inprocess", "process"])
def test_a_space_the_dashboard_cannot_import_still_shows_its_modules(tmp_path: Path, engine: str) -> None:
    class Local(nn.ModelSpace):  # a class in a function: no viewer can import it
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(2, nn.ValueChoice([1, 3], label="width"))
            self.body = torch.nn.Sequential(torch.nn.ReLU(), torch.nn.Linear(1, 1, bias=False))

    def _fails_when_wide(model: Any) -> float:  # local too: shipped to workers by value
        if model.fc.out_features == 3:
            raise RuntimeError("too wide")
        return float(model.fc.out_features)

    config = ExperimentConfig(
        engine=engine, workdir=tmp_path / "root" / "exp", objective="default", direction="maximize", seed=0
    )
    Experiment(Local(), FunctionalEvaluator(_fails_when_wide), strategy.GridSearch(shuffle=False), config).run()
    store = Store(tmp_path / "root" / "exp" / "experiment.db", readonly=True)
    try:
        recorded = store.architecture(1)
    finally:
        store.close()
    assert recorded["total_params"] == 3 + 1  # Linear(2, 1) and the bias-free Linear(1, 1)
    assert not (tmp_path / "root" / "exp" / "trials" / "1" / "architecture.json").exists()  # no file per trial

    app = FastAPI()
    app.include_router(api_router(ExperimentIndex(tmp_path / "root")), prefix="/api")
    client = TestClient(app)
    narrow = client.get("/api/experiments/exp/trials/1").json()["architecture"]
    assert narrow["error"] is None and narrow["total_params"] == 4
    assert [(m["path"], m["type"], m["params"], m["depth"]) for m in narrow["modules"]] == [
        ("(model)", "Local", 4, 0),
        ("fc", "Linear", 3, 1),
        ("body", "Sequential", 1, 1),
        ("body.0", "ReLU", 0, 2),
        ("body.1", "Linear", 1, 2),
    ]
    # A trial that failed after its model was built still shows it.
    wide = client.get("/api/experiments/exp/trials/2").json()
    assert wide["status"] == "failed" and wide["architecture"]["total_params"] == 9 + 1


def test_a_recorded_tree_that_is_not_one_falls_back_to_rebuilding(tmp_path: Path) -> None:
    from archsmith.dashboard._architecture import architecture

    meta = {"space": "__main__.Gone"}
    rebuilt = architecture(meta, {}, None)
    assert rebuilt["modules"] == [] and "__main__" in rebuilt["error"]
    shown = architecture(meta, {}, {"total_params": 5, "modules": [{"path": "<b>x</b>", "type": 3, "depth": "?"}]})
    assert shown["error"] is None and shown["total_params"] == 5
    assert shown["modules"] == [{"path": "<b>x</b>", "type": "3", "params": None, "depth": 0}]


def test_one_tree_per_architecture_and_older_stores_files_still_read(tmp_path: Path) -> None:
    class Space(nn.ModelSpace):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(2, nn.ValueChoice([1, 3], label="width"))

    workdir = tmp_path / "root" / "exp"
    config = ExperimentConfig(engine="inprocess", workdir=workdir, direction="maximize", seed=0, max_trials=6)
    Experiment(Space(), FunctionalEvaluator(lambda model: 1.0), strategy.Random(dedup=False), config).run()
    with sqlite3.connect(workdir / "experiment.db") as db:
        keys = db.execute("SELECT COUNT(DISTINCT arch_key), COUNT(*) FROM trials").fetchone()
        trees = db.execute("SELECT COUNT(*) FROM architectures").fetchone()[0]
    assert trees == keys[0] < keys[1]

    # A store written before the table kept trees in trials/<id>/architecture.json.
    with sqlite3.connect(workdir / "experiment.db") as db:
        db.execute("DROP TABLE architectures")
    tree = {"total_params": 7, "modules": [{"path": "(model)", "type": "Old", "params": 7, "depth": 0}]}
    (workdir / "trials" / "1").mkdir(parents=True)
    (workdir / "trials" / "1" / "architecture.json").write_text(json.dumps(tree))
    client = TestClient(_app(tmp_path / "root"))
    shown = client.get("/api/experiments/exp/trials/1").json()["architecture"]
    assert shown["total_params"] == 7 and shown["modules"][0]["type"] == "Old"


def _app(root: Path) -> FastAPI:
    app = FastAPI()
    app.include_router(api_router(ExperimentIndex(root)), prefix="/api")
    return app

"""GPUs: asking for one on a machine without any fails clearly, naming the setting,
before any trial runs, whatever the engine; CPU-only works by default."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import archsmith.nn as nn
from archsmith import strategy
from archsmith.execution import ENGINES, EngineError, ProcessEngine
from archsmith.experiment import Experiment, ExperimentConfig, Store
from archsmith.space import ArchsmithError

from ._execution_helpers import payload, worker_processes

pytestmark = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the behaviour on a machine without GPUs")


class Net(nn.ModelSpace):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, nn.choice("width", [2, 3]))


def marking_evaluator(marker: Path):
    def evaluate(model: torch.nn.Module) -> float:
        marker.write_text("a trial ran")
        return 1.0

    return evaluate


@pytest.mark.parametrize("engine", sorted(ENGINES))
def test_gpus_per_trial_without_gpus_fails_before_any_trial(engine: str, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    experiment = None
    with pytest.raises(ArchsmithError, match="gpus_per_trial"):  # at the config (Ray asks resources_per_trial) or run
        config = ExperimentConfig(
            max_trials=2, engine=engine, gpus_per_trial=1, direction="maximize", seed=0, workdir=tmp_path / "exp"
        )
        experiment = Experiment(Net(), marking_evaluator(marker), strategy.Random(), config)
        experiment.run()

    assert not marker.exists(), "a trial ran although the GPU request cannot be met"
    if experiment is not None and experiment.store_path.exists():
        store = Store(experiment.store_path, readonly=True)
        try:
            assert store.trials() == []
        finally:
            store.close()


def test_a_refused_start_leaves_no_store_claiming_to_run(tmp_path: Path) -> None:
    config = ExperimentConfig(
        max_trials=2, engine="process", gpus_per_trial=1, direction="maximize", seed=0, workdir=tmp_path
    )
    experiment = Experiment(Net(), marking_evaluator(tmp_path / "ran"), strategy.Random(), config)
    with pytest.raises(ArchsmithError, match="gpus_per_trial"):
        experiment.run()
    if experiment.store_path.exists():
        store = Store(experiment.store_path, readonly=True)
        try:
            status = store.get_meta("status")
        finally:
            store.close()
        assert status != "running", "the store says the experiment runs, but it never started"


def test_process_engine_refuses_before_starting_workers() -> None:
    before = worker_processes()
    engine = ProcessEngine(concurrency=2, gpus_per_trial=1)
    with pytest.raises(EngineError, match=r"gpus_per_trial=1.*needs 2 GPUs.*0 are visible"):
        engine.start(payload())
    assert worker_processes() == before
    assert engine.running() == [] and engine.capacity == 0
    engine.shutdown()


def test_cpu_only_is_the_default(tmp_path: Path) -> None:
    assert ExperimentConfig().gpus_per_trial == 0
    config = ExperimentConfig(max_trials=2, engine="inprocess", direction="maximize", seed=0, workdir=tmp_path)
    experiment = Experiment(Net(), marking_evaluator(tmp_path / "ran"), strategy.Random(), config).run()
    assert [t.status for t in experiment.trials()] == ["succeeded", "succeeded"]

"""``engine="ray"`` without an address: a private Ray on loopback, started for the
run and stopped after it."""

from __future__ import annotations

from pathlib import Path

import pytest

from archsmith import strategy as strategies
from archsmith.evaluator import FunctionalEvaluator
from archsmith.experiment import Experiment, ExperimentConfig, Store

from ._ray_helpers import Net, work

ray = pytest.importorskip("ray")


def test_a_search_on_a_local_ray_started_and_stopped_for_it(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    config = ExperimentConfig(engine="ray", concurrency=2, max_trials=3, direction="maximize", seed=0, workdir=tmp_path)
    experiment = Experiment(Net(), FunctionalEvaluator(work, mode="faults", fault={}), strategies.Random(), config)
    experiment.run()
    assert not ray.is_initialized()  # the Ray it started is stopped
    store = Store(tmp_path / "experiment.db", readonly=True)
    try:
        trials = store.trials()
        assert len(trials) == 3 and all(t.status == "succeeded" for t in trials)
        assert all(len(store.intermediates(t.id)) == 2 for t in trials)
    finally:
        store.close()
    printed = capfd.readouterr()
    for t in trials:
        assert f"trial {t.id} node=head" in (tmp_path / "trials" / str(t.id) / "output.log").read_text()
        assert f"trial {t.id} node=" not in printed.out + printed.err

"""A trial that raises, returns NaN or a non-number, or exceeds ``trial_timeout``
is a failed trial with its error text in the store; the experiment goes on and
the remaining trials succeed. (Process-killing faults: tests/execution.)"""

from __future__ import annotations

import math
import os
import signal
import sys
from pathlib import Path

import cloudpickle
import pytest
import torch

from archsmith import strategy
from archsmith.evaluator import FunctionalEvaluator, current_trial
from archsmith.experiment import Experiment, ExperimentConfig

from ._experiment_helpers import Net, deadline, make_experiment, read_meta, read_trials

cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers get this module's evaluators by value

FAULTS = {2: "raise", 3: "nan", 5: "string", 6: "hang"}


def test_faults_fail_their_trials_and_the_run_goes_on(tmp_path: Path) -> None:
    with deadline(60):
        make_experiment(tmp_path, max_trials=8, faults=dict(FAULTS), trial_timeout=1).run()
    trials = {t.id: t for t in read_trials(tmp_path)}
    assert sorted(trials) == list(range(1, 9))
    errors = {i: trials[i].error or "" for i in FAULTS}
    assert "RuntimeError: trial 2 failed on purpose" in errors[2]
    assert "not finite" in errors[3]
    assert "not a number" in errors[5]
    assert "timed out" in errors[6] and "trial_timeout" in errors[6]
    for i, t in trials.items():
        if i in FAULTS:
            assert t.status == "failed" and t.objective is None and t.metric is None, t
            assert t.ended_at is not None
        else:
            assert t.status == "succeeded", t.error
            assert t.objective == t.sample["width"] * t.sample["scale"]
    assert 1.0 <= trials[6].duration < 4  # type: ignore[operator]
    assert read_meta(tmp_path, "status") == "done"


@pytest.mark.parametrize("engine", ["inprocess", "process"])
def test_nan_in_a_metric_that_is_not_an_objective_is_kept(tmp_path: Path, engine: str) -> None:
    with deadline(90):
        make_experiment(
            tmp_path, max_trials=3, engine=engine, metric="dict", objective="acc", faults={2: "nan_loss"}
        ).run()
    trial = {t.id: t for t in read_trials(tmp_path)}[2]
    assert trial.status == "succeeded", trial.error
    assert trial.objective == trial.sample["width"] * trial.sample["scale"]
    assert math.isnan(trial.metric["loss"])


def test_a_failed_trial_keeps_its_traceback_and_output(tmp_path: Path) -> None:
    faults = {2: "raise", 3: "segv", 4: "hang"}
    with deadline(120):
        make_experiment(tmp_path, max_trials=5, engine="process", faults=faults, trial_timeout=3).run()
    trials = {t.id: t for t in read_trials(tmp_path)}
    for trial_id in faults:
        trial = trials[trial_id]
        assert trial.status == "failed"
        assert f"trial {trial_id}: training width" in (trial.output or ""), trial
        assert (tmp_path / "trials" / str(trial_id) / "output.log").exists()
    assert "Traceback" in trials[2].error and "failed on purpose" in trials[2].error
    assert "SIGSEGV" in trials[3].error and "score" in trials[3].error, "the crash report names where it died"
    assert "timed out" in trials[4].error and "in score" in trials[4].error, "the timeout says where it hung"
    assert trials[1].output is None and trials[5].status == "succeeded", "a success keeps no output tail"


def _segfault_with_a_dataloader(model: torch.nn.Module) -> float:
    """Segfaults while two DataLoader worker processes (forked, holding the
    worker's pipe) are alive: the run must notice the death, not hang."""
    data = torch.utils.data.TensorDataset(torch.zeros(64, 4))
    loader = iter(torch.utils.data.DataLoader(data, batch_size=4, num_workers=2))
    next(loader)
    if current_trial().trial_id == 2:  # type: ignore[union-attr]
        os.kill(os.getpid(), signal.SIGSEGV)
    return float(model.fc.out_features)


def test_a_worker_segfaulting_beside_dataloader_workers_fails_its_trial_only(tmp_path: Path) -> None:
    exp = Experiment(
        Net(),
        FunctionalEvaluator(_segfault_with_a_dataloader),
        strategy.Random(),
        ExperimentConfig(max_trials=3, engine="process", workdir=tmp_path, seed=0, direction="maximize"),
    )
    with deadline(120):
        exp.run()
    trials = {t.id: t for t in exp.trials()}
    assert trials[2].status == "failed" and "SIGSEGV" in trials[2].error
    assert trials[1].status == trials[3].status == "succeeded"

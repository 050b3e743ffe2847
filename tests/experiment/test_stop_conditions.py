"""``run()`` always ends: by the trial budget, by ``max_duration``, when the strategy
is exhausted; a setup nothing would end is refused up front. (Ctrl-C:
test_interrupt.py.)"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from archsmith import strategy
from archsmith.experiment import ExperimentError

from ._experiment_helpers import deadline, make_experiment, read_meta, read_trials, sample_key


def test_ends_at_the_trial_budget(tmp_path: Path) -> None:
    with deadline(60):
        make_experiment(tmp_path, max_trials=5).run()
    trials = read_trials(tmp_path)
    assert [t.id for t in trials] == [1, 2, 3, 4, 5]
    assert all(t.status == "succeeded" for t in trials)
    assert read_meta(tmp_path, "status") == "done"


def test_failed_trials_count_towards_the_budget(tmp_path: Path) -> None:
    with deadline(60):
        make_experiment(tmp_path, max_trials=4, faults={1: "raise", 2: "nan"}).run()
    assert [t.status for t in read_trials(tmp_path)] == ["failed", "failed", "succeeded", "succeeded"]


@pytest.mark.parametrize("max_duration", [1.0, "1s"])
def test_ends_at_max_duration(tmp_path: Path, max_duration: float | str) -> None:
    start = time.time()
    with deadline(60):
        make_experiment(
            tmp_path, strategy=strategy.Random(dedup=False), sleep=0.2, max_duration=max_duration, max_trials=None
        ).run()
    elapsed = time.time() - start
    assert 1.0 <= elapsed < 4.0
    trials = read_trials(tmp_path)
    assert 2 <= len(trials) <= 7, "about 1 s of 0.2 s trials"
    assert not [t for t in trials if t.status == "running"]


def test_ends_when_the_strategy_is_exhausted_with_exactly_size_trials(tmp_path: Path) -> None:
    experiment = make_experiment(tmp_path, widths=(2, 3, 4), scales=(1.0, 2.0), max_trials=None)
    size = experiment.search_space.size()
    assert size == 6
    with deadline(60):
        experiment.run()
    trials = read_trials(tmp_path)
    assert len(trials) == size
    assert len({sample_key(t.sample) for t in trials}) == size
    assert read_meta(tmp_path, "status") == "done"


def test_exhaustion_ends_the_run_before_a_larger_budget(tmp_path: Path) -> None:
    with deadline(60):
        make_experiment(tmp_path, widths=(2, 3), scales=(1.0, 2.0), max_trials=100).run()
    assert len(read_trials(tmp_path)) == 4


def test_an_unbounded_space_without_budget_is_refused(tmp_path: Path) -> None:
    import archsmith.nn as nn
    from archsmith.evaluator import FunctionalEvaluator
    from archsmith.experiment import Experiment, ExperimentConfig

    class Continuous(nn.ModelSpace):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 2)

    evaluator = FunctionalEvaluator(lambda model, lr: lr, lr=nn.uniform("lr", 0.0, 1.0))
    config = ExperimentConfig(engine="inprocess", direction="maximize", workdir=tmp_path)
    experiment = Experiment(Continuous(), evaluator, strategy.Random(), config)
    with pytest.raises(ExperimentError, match=r"max_trials"):
        experiment.run()


def test_a_strategy_that_never_exhausts_without_budget_is_refused(tmp_path: Path) -> None:
    """Random(dedup=False) on a finite space never ends by itself: with no budget,
    run() must refuse to start rather than loop forever. (A safety Ctrl-C after a
    few trials keeps this test from hanging if it does not.)"""
    interrupt = {10}
    experiment = make_experiment(
        tmp_path, strategy=strategy.Random(dedup=False), widths=(2, 3), scales=(1.0,), interrupt=interrupt
    )
    with deadline(60):
        try:
            experiment.run()
        except ExperimentError as e:
            assert "max_trials" in str(e)
            return
    trials = read_trials(tmp_path)
    pytest.fail(f"run() started a search nothing would end; it ran {len(trials)} trials until a (simulated) Ctrl-C")

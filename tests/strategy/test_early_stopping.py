"""Early-stopping rules: on synthetic learning curves, and inside an experiment."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import archsmith
import archsmith.nn as nn
from archsmith.evaluator import FunctionalEvaluator
from archsmith.experiment import Experiment, ExperimentConfig, Store, top_trials
from archsmith.space import SpaceError
from archsmith.strategy import EarlyStopping, Hyperband, MedianStop, Random, SuccessiveHalving

STEPS = 9


def curve(quality: float, step: int) -> float:
    """A learning curve that saturates at ``quality``."""
    return quality * (1 - 0.5 ** (step + 1))


def run_curves(rule: EarlyStopping, qualities: list[float], direction: str = "maximize") -> dict[int, int]:
    """Feed each trial's curve in turn; how many steps each trial ran."""
    rule.attach(direction)  # type: ignore[arg-type]
    ran = {}
    for trial_id, quality in enumerate(qualities, start=1):
        sign = 1 if direction == "maximize" else -1
        for step in range(STEPS):
            if rule.should_stop(trial_id, step, sign * curve(quality, step)):
                break
        ran[trial_id] = step + 1
    return ran


@pytest.mark.parametrize("direction", ["maximize", "minimize"])
@pytest.mark.parametrize(
    "rule", [lambda: MedianStop(grace_steps=1, min_trials=3), lambda: SuccessiveHalving(1, 3), lambda: Hyperband(9, 3)]
)
def test_good_trials_run_to_the_end_and_bad_ones_stop_early(rule, direction: str) -> None:
    qualities = [0.9, 0.8, 0.85, 0.95, 0.2, 0.97, 0.1, 0.3, 0.99, 0.05, 0.98, 0.15]
    ran = run_curves(rule(), qualities, direction)
    best = max(range(len(qualities)), key=lambda i: qualities[i]) + 1
    assert ran[best] == STEPS  # the best trial is never stopped
    bad = [i + 1 for i, q in enumerate(qualities) if q < 0.35 and i >= 4]
    assert sum(ran[t] for t in bad) < STEPS * len(bad)  # the bad ones lose steps
    assert sum(ran.values()) < STEPS * len(qualities)


def test_median_stop_waits_for_enough_trials_and_the_grace_period() -> None:
    rule = MedianStop(grace_steps=2, min_trials=2)
    rule.attach("maximize")
    for step in range(3):
        assert not rule.should_stop(1, step, 0.9)
    assert not rule.should_stop(2, 0, 0.0)  # only one other trial, and within the grace period
    assert not rule.should_stop(2, 1, 0.0)
    for step in range(3):
        rule.should_stop(3, step, 0.8)
    assert rule.should_stop(2, 2, 0.0)  # below the median of trials 1 and 3 at step 2


def test_successive_halving_judges_only_at_rungs() -> None:
    rule = SuccessiveHalving(min_step=1, reduction_factor=2, max_step=8)
    assert [s for s in range(10) if rule._is_rung(s)] == [1, 2, 4]
    rule.attach("maximize")
    assert not rule.should_stop(1, 1, 0.9)  # one result at the rung: too few to judge
    assert rule.should_stop(2, 1, 0.1)  # the worse half of two
    assert not rule.should_stop(3, 3, 0.0)  # not a rung


def keys(state: object) -> set[str]:
    """Every dict key anywhere in a state (trial ids are keys)."""
    if isinstance(state, dict):
        return set(state) | {k for v in state.values() for k in keys(v)}
    if isinstance(state, list):
        return {k for v in state for k in keys(v)}
    return set()


@pytest.mark.parametrize(
    ("make", "trial"), [(lambda: MedianStop(), 2), (lambda: SuccessiveHalving(), 2), (lambda: Hyperband(9), 4)]
)
def test_state_round_trips_through_json_and_forget_drops_a_trial(make, trial: int) -> None:
    qualities = [0.9, 0.1, 0.8, 0.2, 0.7]
    rule = make()
    run_curves(rule, qualities)
    again = make()
    again.attach("maximize")
    again.load_state_dict(json.loads(json.dumps(rule.state_dict())))
    assert again.state_dict() == rule.state_dict()
    assert str(trial) in keys(again.state_dict())
    again.forget(trial)
    assert str(trial) not in keys(again.state_dict())  # the trial is gone everywhere


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: MedianStop(min_trials=0), "min_trials"),
        (lambda: SuccessiveHalving(reduction_factor=1), "reduction_factor"),
        (lambda: SuccessiveHalving(min_step=4, max_step=2), "max_step"),
        (lambda: Hyperband(max_step=0), "max_step"),
    ],
)
def test_bad_settings_are_named(build, message: str) -> None:
    with pytest.raises(SpaceError, match=message):
        build()


class Quality(nn.ModelSpace):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(1, 1)
        self.quality = nn.ValueChoice([0.05, 0.1, 0.2, 0.8, 0.9, 0.95, 0.99], label="quality")


def train(model: object) -> float:
    quality = archsmith.current_sample()["quality"]
    value = 0.0
    for step in range(STEPS):
        value = curve(quality, step)
        archsmith.report_intermediate_result(value)
        if archsmith.should_stop():
            break
    return value


def test_an_experiment_stops_bad_trials_and_the_strategy_is_told(tmp_path: Path) -> None:
    told = []

    class Watching(Random):
        def tell(self, trial):  # type: ignore[no-untyped-def]
            told.append(trial)

    config = ExperimentConfig(max_trials=7, engine="inprocess", workdir=tmp_path, seed=0, direction="maximize")
    exp = Experiment(Quality(), FunctionalEvaluator(train), Watching(), config, early_stopping=MedianStop(1, 2))
    exp.run()
    store = Store(tmp_path / "experiment.db", readonly=True)
    trials = store.trials()
    steps = {t.id: len(store.intermediates(t.id)) for t in trials}
    stopped = [t for t in trials if t.status == "stopped"]
    assert all(t.status == "succeeded" for t in trials if t not in stopped)
    assert all(t.stopped_early and t.objective is not None for t in stopped)  # its last result is kept
    assert stopped and all(steps[t.id] < STEPS for t in stopped)
    assert all(steps[t.id] == STEPS for t in trials if not t.stopped_early)
    assert max(trials, key=lambda t: t.sample["quality"]).stopped_early is False
    assert {t.trial_id for t in told if t.stopped_early} == {t.id for t in stopped}
    assert all(t.status == "succeeded" for t in told)  # strategies hear of a stopped trial as before
    assert store.counts()["stopped"] == len(stopped)
    assert all(t.status == "succeeded" for t in top_trials(store, len(trials)))  # stopped trials do not rank
    assert store.get_meta("early_stopping_state") is not None
    store.close()


def test_early_stopping_must_be_a_rule() -> None:
    with pytest.raises(Exception, match="early_stopping must be"):
        Experiment(
            Quality(), FunctionalEvaluator(train), Random(), ExperimentConfig(direction="maximize"), early_stopping=3
        )  # type: ignore[arg-type]


class DigitsMLP(nn.ModelSpace):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(64, nn.ValueChoice([16, 32], label="hidden")), nn.ReLU())
        self.head = nn.Linear(nn.ValueChoice([16, 32], label="hidden"), 10)

    def forward(self, x):  # type: ignore[no-untyped-def]
        return self.head(self.body(x))


def test_real_training_on_digits_stops_the_runs_that_do_not_learn(tmp_path: Path) -> None:
    import torch
    from sklearn.datasets import load_digits
    from torch.utils.data import DataLoader, TensorDataset

    from archsmith.evaluator import Classification
    from archsmith.strategy import GridSearch

    digits = load_digits()
    x = torch.tensor(digits.data[:600], dtype=torch.float32) / 16.0
    y = torch.tensor(digits.target[:600], dtype=torch.long)
    train_data = DataLoader(TensorDataset(x[:450], y[:450]), batch_size=64, shuffle=True)
    val_data = DataLoader(TensorDataset(x[450:], y[450:]), batch_size=150)
    epochs = 5
    evaluator = Classification(
        learning_rate=nn.ValueChoice([3e-2, 1e-2, 1e-7, 1e-8], label="lr"),
        train_dataloaders=train_data,
        val_dataloaders=val_data,
        max_epochs=epochs,
        num_classes=10,
        seed=0,
    )
    config = ExperimentConfig(max_trials=4, engine="inprocess", workdir=tmp_path, seed=0)
    space = DigitsMLP()
    exp = Experiment(space, evaluator, GridSearch(shuffle=False), config, early_stopping=MedianStop(1, 2))
    exp.run()
    store = Store(tmp_path / "experiment.db", readonly=True)
    by_lr = {t.sample["lr"]: t for t in store.trials() if t.sample["hidden"] == 16}
    epochs_run = {lr: len(store.intermediates(t.id)) for lr, t in by_lr.items()}
    store.close()
    assert not by_lr[3e-2].stopped_early and epochs_run[3e-2] == epochs
    assert by_lr[1e-7].stopped_early and epochs_run[1e-7] < epochs
    assert by_lr[3e-2].objective > 0.5 > by_lr[1e-7].objective

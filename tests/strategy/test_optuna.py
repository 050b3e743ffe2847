"""``OptunaStrategy`` and ``TPE``: ask/tell over archsmith spaces, on NAS-Bench-201."""

from __future__ import annotations

import statistics
import subprocess
import sys
from pathlib import Path

import optuna
import pytest

from archsmith.benchmarks.nasbench201 import NasBench201Evaluator, NasBench201Space, NasBench201Table
from archsmith.experiment import ExperimentConfig
from archsmith.experiment._experiment import Experiment
from archsmith.space import CategoricalMultiple, Constraint, Space, SpaceError, choice, loguniform, quniform, randint
from archsmith.strategy import STRATEGIES, TPE, FinishedTrial, OptunaStrategy, Random


@pytest.fixture(scope="module")
def table() -> NasBench201Table:
    return NasBench201Table.load()


@pytest.fixture(scope="module")
def nb201() -> Space:
    return NasBench201Space().search_space


def search(strategy, space: Space, score, n: int, seed: int = 0, direction: str = "maximize") -> list[float]:
    strategy.attach(space, seed=seed, direction=direction)
    values = []
    for t in range(n):
        sample = strategy.ask()
        assert space.contains(sample)
        values.append(score(sample))
        strategy.tell(FinishedTrial(t, sample, "succeeded", values[-1]))
    return values


def test_registered_and_optuna_is_loaded_lazily() -> None:
    assert STRATEGIES["tpe"] is TPE and STRATEGIES["optuna"] is OptunaStrategy
    code = "import sys, archsmith, archsmith.strategy; assert 'optuna' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_tpe_beats_random_on_nasbench201(nb201: Space, table: NasBench201Table) -> None:
    seeds = range(4)
    tpe = [max(search(TPE(), nb201, table.query, 100, seed)) for seed in seeds]
    rnd = [max(search(Random(), nb201, table.query, 100, seed)) for seed in seeds]
    assert statistics.mean(tpe) > statistics.mean(rnd)


def test_minimize_works(nb201: Space, table: NasBench201Table) -> None:
    values = search(TPE(n_startup_trials=10), nb201, table.query, 60, seed=1, direction="minimize")
    # the study minimises: the second half searches around the worst cells
    assert statistics.mean(values[30:]) < statistics.mean(values[:10])
    assert min(values) < 30


def test_failed_trials_are_told_as_failures(nb201: Space) -> None:
    strategy = TPE(n_startup_trials=3)
    strategy.attach(nb201, seed=0)
    for t in range(6):
        sample = strategy.ask()
        strategy.tell(FinishedTrial(t, sample, "failed", None))
    states = [record[2] for record in strategy.state_dict()["trials"]]
    assert states == ["FAIL"] * 6
    assert strategy.ask() is not None


def _resume_run(space: Space, score, resume_at: int | None, n: int = 30, concurrency: int = 1) -> list:
    strategy = TPE(n_startup_trials=5)
    strategy.attach(space, seed=7)
    asked: list = []
    pending: list = []
    t = 0
    while len(asked) < n:
        if resume_at is not None and len(asked) == resume_at:
            state = strategy.state_dict()
            strategy = TPE(n_startup_trials=5)
            strategy.attach(space, seed=7)
            strategy.load_state_dict(state)
        sample = strategy.ask()
        asked.append(sample)
        pending.append(sample)
        if len(pending) >= concurrency:
            done = pending.pop(0)
            strategy.tell(FinishedTrial(t, done, "succeeded", score(done)))
            t += 1
    return asked


@pytest.mark.parametrize("concurrency", [1, 3])
def test_a_resumed_search_makes_the_same_proposals(nb201: Space, table: NasBench201Table, concurrency: int) -> None:
    straight = _resume_run(nb201, table.query, None, concurrency=concurrency)
    assert _resume_run(nb201, table.query, 12, concurrency=concurrency) == straight
    assert _resume_run(nb201, table.query, 3, concurrency=concurrency) == straight


def test_constraints_are_respected_and_rejections_are_pruned() -> None:
    a, b = choice("a", [0, 1, 2, 3]), choice("b", [0, 1, 2, 3])
    space = Space([a, b], constraints=[Constraint(a < b)])
    strategy = TPE(n_startup_trials=5, dedup=False)  # 6 architectures, asked 25 times
    values = search(strategy, space, lambda s: s["b"] - s["a"], 25)
    assert len(values) == 25  # every sample checked by search(): contains() includes the constraints
    states = [r[2] for r in strategy.state_dict()["trials"]]
    assert "PRUNED" in states and states.count("COMPLETE") == 25


def test_an_unsatisfiable_looking_constraint_falls_back_to_a_valid_random_sample() -> None:
    a = choice("a", list(range(50)))
    space = Space([a], constraints=[Constraint(lambda s: s["a"] == 17, labels=["a"])])
    strategy = OptunaStrategy(optuna.samplers.RandomSampler, max_rejections=2)
    strategy.attach(space, seed=0)
    assert strategy.ask() == {"a": 17}


def test_every_leaf_kind_maps_to_optuna() -> None:
    space = Space(
        [
            choice("cat", ["x", [1, 2], None]),
            CategoricalMultiple(["p", "q", "r", "s"], n_chosen=2, label="pick"),
            CategoricalMultiple(["u", "v"], label="any"),
            loguniform("lr", 1e-4, 1e-1),
            quniform("drop", 0.0, 1.0, 0.25),
            randint("depth", 1, 9),
        ]
    )
    for sampler in (TPE(n_startup_trials=4), OptunaStrategy(optuna.samplers.RandomSampler), OptunaStrategy()):
        values = search(sampler, space, lambda s: s["lr"] + len(s["pick"]), 12)  # search() validates each
        assert len(values) == 12
    with pytest.raises(SpaceError, match="sampler must be"):
        OptunaStrategy(sampler=42)


def test_an_experiment_with_tpe_on_the_benchmark_engine_resumes(tmp_path: Path) -> None:
    def experiment(n: int, where: str) -> Experiment:
        config = ExperimentConfig(
            engine="benchmark", max_trials=n, direction="maximize", seed=3, workdir=tmp_path / where
        )
        return Experiment(NasBench201Space(), NasBench201Evaluator(), TPE(n_startup_trials=5), config)

    # (with concurrency > 1 a budget boundary changes what was running at each ask, so
    # only a sequential run can be compared proposal by proposal)
    experiment(15, "a").run()
    resumed = experiment(30, "a").run(resume=True)
    straight = experiment(30, "b").run()
    assert resumed.export_top_models(k=30) == straight.export_top_models(k=30)


def test_tpe_never_runs_one_cell_twice(nb201: Space, table: NasBench201Table) -> None:
    """Without dedup TPE proposed one NAS-Bench-201 cell 7 times in 100 trials."""
    strategy = TPE()
    strategy.attach(nb201, seed=0)
    proposals = []
    for t in range(100):
        sample = strategy.ask()
        assert sample is not None
        proposals.append(nb201.architecture_key(sample))
        strategy.tell(FinishedTrial(t, sample, "succeeded", table.query(sample)))
    assert len(set(proposals)) == 100


def test_a_repeated_proposal_is_answered_with_the_earlier_result_and_re_asked() -> None:
    space = Space([choice("a", [0, 1, 2])])
    strategy = TPE(n_startup_trials=1)
    strategy.attach(space, seed=0)
    values = {}
    for t in range(3):
        sample = strategy.ask()
        assert sample is not None and sample["a"] not in values
        values[sample["a"]] = float(sample["a"])
        strategy.tell(FinishedTrial(t, sample, "succeeded", values[sample["a"]]))
    assert strategy.is_exhausted() and strategy.ask() is None
    records = strategy.state_dict()["trials"]
    repeats = [r for r in records if r[3] is None]  # answered, never run
    assert repeats, "TPE proposed no architecture twice on a 3-point space"
    for params, value, state, _, _ in repeats:
        assert state == "COMPLETE" and value == float(params["a"])  # the earlier trial's result


def test_a_repeat_of_a_running_trial_is_told_failed() -> None:
    space = Space([choice("a", [0, 1])])
    strategy = OptunaStrategy(optuna.samplers.RandomSampler)
    strategy.attach(space, seed=0)
    first, second = strategy.ask(), strategy.ask()  # both in flight
    assert first is not None and second is not None and first != second
    states = [r[2] for r in strategy.state_dict()["trials"]]
    assert set(states) <= {"RUNNING", "FAIL"} and states.count("RUNNING") == 2
    assert strategy.ask() is None and strategy.is_exhausted()


def test_dedup_off_keeps_proposing() -> None:
    space = Space([choice("a", [0, 1])])
    strategy = TPE(dedup=False)
    strategy.attach(space, seed=0)
    assert not strategy.can_exhaust(space)
    assert all(strategy.ask() is not None for _ in range(5))
    assert "dedup=False" in repr(strategy)

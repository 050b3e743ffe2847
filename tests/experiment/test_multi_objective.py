"""Several objectives in real (in-process) experiments: the Pareto front of a run
against the front found here by enumerating the space, the results API and the
command line on it, every multi-objective strategy finding most of a known front,
resume, the refusals and config errors, failed trials, old stores and progress."""

from __future__ import annotations

import functools
import io
import itertools
import json
import math
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cloudpickle
import pytest
from rich.console import Console

import archsmith
import archsmith.nn as nn
from archsmith import strategy as strategies
from archsmith.cli import main
from archsmith.evaluator import FunctionalEvaluator, current_trial
from archsmith.experiment import (
    STORE_FILE,
    ConfigError,
    Experiment,
    ExperimentConfig,
    ExperimentError,
    Store,
    load_samples,
    objectives_of,
    pareto_trials,
    read_experiment,
    summarize,
    top_trials,
    trial_row,
)
from archsmith.experiment._progress import ProgressView, Snapshot
from archsmith.space import pareto_order
from archsmith.strategy import STRATEGIES, MedianStop

from ._experiment_helpers import deadline

cloudpickle.register_pickle_by_value(sys.modules[__name__])

Sample = dict[str, Any]
MULTI_OBJECTIVE = sorted(name for name, cls in STRATEGIES.items() if getattr(cls, "multi_objective", False))


# Spaces whose objectives are known from the sample -------------------------------------------------
class Net(nn.ModelSpace):
    """One decision in the model (``a``); the others are the evaluator's."""

    def __init__(self, a: tuple[Any, ...]) -> None:
        super().__init__()
        self.a = nn.choice("a", list(a))


def report(model: Any, f: Callable[[Sample], dict[str, float]], **hyper: Any) -> dict[str, float]:
    """The evaluator: the case's objectives of the trial's sample."""
    return f(archsmith.current_sample())


class Case:
    """A space (label -> candidates; ``a`` in the model, the rest in the evaluator)
    and its objectives, a pure function of the sample."""

    def __init__(self, choices: dict[str, list[Any]], objectives: dict[str, str], f: Callable[[Sample], dict]) -> None:
        self.choices, self.objectives, self.f = choices, objectives, f
        self.names, self.directions = list(objectives), list(objectives.values())

    def samples(self) -> list[Sample]:
        """Every architecture, enumerated here (not by archsmith)."""
        return [dict(zip(self.choices, values)) for values in itertools.product(*self.choices.values())]

    def values(self, sample: Sample) -> tuple[float, ...]:
        metric = self.f(sample)
        return tuple(float(metric[name]) for name in self.names)

    def experiment(
        self,
        workdir: Path,
        strategy: strategies.Strategy,
        evaluate: Callable[..., Any] = report,
        extra: dict[str, Any] | None = None,
        early_stopping: Any = None,
        **config: Any,
    ) -> Experiment:
        config.setdefault("engine", "inprocess")
        config.setdefault("seed", 0)
        if "objective" not in config:
            config["objective"], config["direction"] = self.names, self.directions
        hyper = {label: nn.choice(label, values) for label, values in self.choices.items() if label != "a"}
        evaluator = FunctionalEvaluator(evaluate, f=self.f, **hyper, **(extra or {}))
        return Experiment(
            Net(tuple(self.choices["a"])),
            evaluator,
            strategy,
            ExperimentConfig(workdir=str(workdir), **config),
            early_stopping=early_stopping,
        )

    # Brute force ------------------------------------------------------------------------------------
    def dominates(self, x: tuple[float, ...], y: tuple[float, ...]) -> bool:
        pairs = list(zip(x, y, self.directions))
        no_worse = all((a >= b) if d == "maximize" else (a <= b) for a, b, d in pairs)
        return no_worse and any((a > b) if d == "maximize" else (a < b) for a, b, d in pairs)

    def front(self, samples: list[Sample]) -> list[Sample]:
        """The samples no other of ``samples`` dominates, by comparing every pair."""
        values = [self.values(s) for s in samples]
        return [s for s, v in zip(samples, values) if not any(self.dominates(w, v) for w in values)]

    def fronts(self, samples: list[Sample]) -> list[list[Sample]]:
        """The successive Pareto fronts of ``samples``."""
        remaining, fronts = list(samples), []
        while remaining:
            fronts.append(self.front(remaining))
            remaining = [s for s in remaining if s not in fronts[-1]]
        return fronts


def two_objectives(s: Sample) -> dict[str, float]:
    """``c`` changes nothing (every point has an equal twin: on the front and off
    it); ``acc`` is capped (ties)."""
    return {
        "acc": min(s["a"] + s["b"], 4) + 0.5 * s["d"],
        "latency": s["a"] + 2 * s["b"] * (1 - s["d"]) + s["d"],
        "x": 1,
    }


def three_objectives(s: Sample) -> dict[str, float]:
    return {"acc": min(s["a"] + s["c"], 5), "params": s["a"] + s["b"], "latency": (2 - s["c"]) + (3 - s["b"])}


def searched_objectives(s: Sample) -> dict[str, float]:
    """384 points, 15 on the front: ``c = 3``, and ``b = 0`` or ``a = 7``."""
    return {"acc": s["a"] + s["b"] - abs(s["c"] - 3), "params": s["a"] + 2 * s["b"] + abs(s["c"] - 3)}


TWO = Case(
    {"a": [0, 1, 2, 3], "b": [0, 1, 2], "c": ["x", "y"], "d": [0, 1]},  # 48 architectures, front 8
    {"acc": "maximize", "latency": "minimize"},
    two_objectives,
)
THREE = Case(
    {"a": [0, 1, 2, 3, 4], "b": [0, 1, 2, 3], "c": [0, 1, 2]},  # 60 architectures, front 16
    {"acc": "maximize", "params": "minimize", "latency": "minimize"},
    three_objectives,
)
SEARCHED = Case(
    {"a": list(range(8)), "b": list(range(8)), "c": list(range(6))},
    {"acc": "maximize", "params": "minimize"},
    searched_objectives,
)


def key(sample: Sample) -> tuple[Any, ...]:
    return tuple(sorted(sample.items()))


def keys(samples: list[Sample]) -> set[tuple[Any, ...]]:
    return {key(s) for s in samples}


def cli(capsys: pytest.CaptureFixture[str], *argv: Any) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(autouse=True)
def _wide(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # rich tables: no folding of the cells the tests look for


# The front of a whole grid against brute force -----------------------------------------------------
@pytest.fixture(scope="module", params=["two", "three"])
def searched_grid(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[Case, Path]:
    """Every architecture of the case tried once (the grid ends by itself). The
    two-objective case is configured with a dict, the other with lists."""
    case = {"two": TWO, "three": THREE}[request.param]
    workdir = tmp_path_factory.mktemp(request.param) / "grid"
    config = {"objective": case.objectives} if case is TWO else {}
    with deadline(60):
        case.experiment(workdir, strategies.GridSearch(), **config).run()
    return case, workdir


def test_the_front_is_the_brute_force_front(searched_grid: tuple[Case, Path]) -> None:
    case, workdir = searched_grid
    exp = case.experiment(workdir, strategies.GridSearch())
    trials = exp.trials()
    assert len(trials) == len(case.samples()) and all(t.status == "succeeded" for t in trials)
    assert keys([t.sample for t in trials]) == keys(case.samples())
    fronts = case.fronts(case.samples())
    assert len(fronts) >= 3 and len(fronts[0]) in (8, 16)

    front = exp.pareto_front()
    assert keys(front) == keys(fronts[0]) and len(front) == len(fronts[0])
    if case is TWO:  # equal points are all on the front (and all off it: every point has a twin)
        assert len({case.values(s) for s in front}) == len(front) // 2
    # ordered by the first objective, best first, then by trial id
    trial_id = {key(t.sample): t.id for t in trials}
    assert front == sorted(fronts[0], key=lambda s: (-case.values(s)[0], trial_id[key(s)]))
    assert exp.export_top_models(k=None) == front
    models = exp.pareto_front(formatter="instance")
    assert [m.a for m in models] == [s["a"] for s in front]


def test_top_models_are_the_front_then_the_second_front(searched_grid: tuple[Case, Path]) -> None:
    case, workdir = searched_grid
    exp = case.experiment(workdir, strategies.GridSearch())
    first, second, *_ = case.fronts(case.samples())
    n = len(first)
    assert keys(exp.export_top_models(k=n)) == keys(first)
    longer = exp.export_top_models(k=n + 3)
    assert keys(longer[:n]) == keys(first) and keys(longer[n:]) <= keys(second) and len(longer) == n + 3
    assert keys(exp.export_top_models(k=n + len(second))[n:]) == keys(second)
    everything = exp.export_top_models(k=10_000)
    assert len(everything) == len(case.samples())
    # NSGA-II's order over the stored trials, in id order: front, then crowding distance
    trials = exp.trials()
    expected = [trials[i].sample for i in pareto_order([case.values(t.sample) for t in trials], case.directions)]
    assert everything == expected
    assert exp.export_top_models(k=1) == expected[:1]


def test_results_api_and_cli_agree_with_the_front(
    searched_grid: tuple[Case, Path], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    case, workdir = searched_grid
    front = case.experiment(workdir, strategies.GridSearch()).pareto_front()
    with read_experiment(workdir) as store:
        assert objectives_of(store) == list(case.objectives.items())
        assert [t.sample for t in pareto_trials(store)] == front
        assert [t.sample for t in top_trials(store, len(front))] == case.experiment(
            workdir, strategies.GridSearch()
        ).export_top_models(len(front))
        summary = summarize(store)
        assert summary.objectives == list(case.objectives.items()) and summary.objective == case.names[0]
        assert [t.sample for t in summary.front] == front

    code, out, _ = cli(capsys, "export", workdir, "--pareto")
    assert code == 0 and json.loads(out) == front
    code, _, err = cli(capsys, "export", workdir, "--pareto", "--out", tmp_path / "front.json")
    assert code == 0 and f"the Pareto front ({len(front)} samples)" in err
    assert load_samples(tmp_path / "front.json") == front

    code, out, _ = cli(capsys, "trials", workdir, "--pareto", "--format", "json")
    rows = json.loads(out)
    assert code == 0 and keys([r["sample"] for r in rows]) == keys(front) and len(rows) == len(front)
    assert [r["id"] for r in rows] == sorted(r["id"] for r in rows)  # id order, as without --pareto
    for row in rows:
        assert row["objective_values"] == list(case.values(row["sample"]))
        assert row["objective"] == case.values(row["sample"])[0]

    code, out, _ = cli(capsys, "trials", workdir, "--pareto")
    header = next(line for line in out.splitlines() if "status" in line)
    assert code == 0 and all(name in header for name in case.names)

    code, out, _ = cli(capsys, "show", workdir, "--top", "3")
    goals = ", ".join(f"{name} ({direction})" for name, direction in case.objectives.items())
    assert code == 0 and f"Pareto front of {goals}: {len(front)} trials" in out
    assert "the Pareto front first" in out

    code, out, _ = cli(capsys, "list", workdir.parent)
    assert code == 0 and f"Pareto front {len(front)}" in out


# Every multi-objective strategy finds most of a known front ---------------------------------------
#: Small settings where the defaults are sized for long searches.
STRATEGY_KWARGS: dict[str, dict[str, Any]] = {
    "regularized_evolution": {"population_size": 16, "sample_size": 4, "mutation_prob": 0.3},
    "nsga2": {"population_size": 16},
}
BUDGET = 150  # of SEARCHED's 384 architectures; random sampling finds 150/384 = 39% of any front on average
SEEDS = (0, 1, 2)
#: The least mean fraction of SEARCHED's 15-point front found in BUDGET trials over SEEDS. Measured over
#: seeds 0-29 (front points found, mean / min): random 6.0 / 3, grid 5.5 / 3, regularized_evolution
#: 10.8 / 6, nsga2 9.2 / 5, optuna (TPE) 10.7 / 5, tpe 15 / 15; on SEEDS the means are 0.44, 0.33, 0.67,
#: 0.60, 0.56 and 1.0. The learning strategies' thresholds are above random sampling's 0.39.
MIN_FRACTION = {"tpe": 0.9, "regularized_evolution": 0.5, "nsga2": 0.45, "optuna": 0.45, "random": 0.2, "grid": 0.2}


def make(name: str) -> strategies.Strategy:
    return STRATEGIES[name](**STRATEGY_KWARGS.get(name, {}))


@functools.cache
def searched_front() -> frozenset[tuple[Any, ...]]:
    return frozenset(keys(SEARCHED.front(SEARCHED.samples())))


def test_the_searched_case_has_a_small_known_front() -> None:
    front = SEARCHED.front(SEARCHED.samples())
    assert len(SEARCHED.samples()) == 384 and len(front) == 15
    assert all(s["c"] == 3 and (s["b"] == 0 or s["a"] == 7) for s in front)


@pytest.mark.parametrize("name", MULTI_OBJECTIVE)
def test_strategy_finds_most_of_the_front(name: str, tmp_path: Path) -> None:
    front = searched_front()
    fractions = []
    for seed in SEEDS:
        with deadline(120):
            exp = SEARCHED.experiment(tmp_path / str(seed), make(name), max_trials=BUDGET, seed=seed).run()
        trials = exp.trials()
        assert len(trials) == BUDGET and all(t.status == "succeeded" for t in trials)
        for t in trials:
            assert t.values == SEARCHED.values(t.sample)
        fractions.append(len(keys([t.sample for t in trials]) & front) / len(front))
        # the experiment's own front is the best of what it tried
        tried = [t.sample for t in trials]
        assert keys(exp.pareto_front()) == keys(SEARCHED.front(tried))
    mean = sum(fractions) / len(fractions)
    assert mean >= MIN_FRACTION.get(name, 0.2), f"{name} found {fractions} of the front"


@pytest.mark.parametrize("name", MULTI_OBJECTIVE)
def test_same_seed_same_trials(name: str, tmp_path: Path) -> None:
    runs = []
    for run in range(2):
        with deadline(60):
            exp = SEARCHED.experiment(tmp_path / str(run), make(name), max_trials=40, seed=11).run()
        runs.append([(t.sample, t.status, t.values) for t in exp.trials()])
    assert runs[0] == runs[1]


# Resume --------------------------------------------------------------------------------------------
def interrupting(model: Any, f: Callable[[Sample], dict], interrupt: set[int], **hyper: Any) -> dict[str, float]:
    """Like ``report``; a trial whose id is in ``interrupt`` is a Ctrl-C (once)."""
    trial_id = current_trial().trial_id  # type: ignore[union-attr]
    if trial_id in interrupt:
        interrupt.discard(trial_id)
        raise KeyboardInterrupt
    return f(archsmith.current_sample())


RESUMED = {
    "regularized_evolution": lambda: strategies.RegularizedEvolution(population_size=8, sample_size=3),
    "nsga2": lambda: strategies.NSGAII(population_size=8),
}


@pytest.mark.parametrize("name", sorted(RESUMED))
@pytest.mark.parametrize("stop", ["budget", "ctrl-c"])
def test_resume_mid_search_continues_the_same_search(name: str, stop: str, tmp_path: Path) -> None:
    """Stopped mid-generation (NSGA-II: trial 21 or 13 of generations of 8), then
    resumed to 40 trials: the samples of the run that never stopped."""
    make_strategy = RESUMED[name]
    extra: dict[str, Any] = {"interrupt": set()}
    with deadline(60):
        whole = SEARCHED.experiment(tmp_path / "whole", make_strategy(), interrupting, extra, max_trials=40, seed=4)
        expected = [t.sample for t in whole.run().trials()]

    workdir = tmp_path / "stopped"
    with deadline(60):
        if stop == "budget":
            SEARCHED.experiment(workdir, make_strategy(), interrupting, extra, max_trials=21, seed=4).run()
        else:
            extra = {"interrupt": {13}}
            SEARCHED.experiment(workdir, make_strategy(), interrupting, extra, max_trials=40, seed=4).run()
    with read_experiment(workdir) as store:
        before = store.trials()
    assert len(before) == (21 if stop == "budget" else 13)
    if stop == "ctrl-c":
        assert before[-1].status == "waiting" and not extra["interrupt"]

    with deadline(60):
        resumed = SEARCHED.experiment(workdir, make_strategy(), interrupting, extra, max_trials=40, seed=4)
        after = resumed.run(resume=True).trials()
    assert [t.sample for t in after] == expected
    assert all(t.status == "succeeded" for t in after)
    assert keys(resumed.pareto_front()) == keys(whole.pareto_front())


# Refusals and config errors -----------------------------------------------------------------------
def test_a_single_objective_strategy_is_refused_naming_those_that_can(tmp_path: Path) -> None:
    with pytest.raises(ExperimentError) as error:
        TWO.experiment(tmp_path / "rl", strategies.PolicyBasedRL())
    message = str(error.value)
    assert "PolicyBasedRL searches one objective, but 2 were given" in message
    for name in MULTI_OBJECTIVE:
        assert name in message
    assert "policy_rl" not in message
    assert not (tmp_path / "rl").exists(), "refused before anything is written"


def test_early_stopping_with_several_objectives_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ExperimentError, match=r"early stopping ranks trials by one objective, but 2 were given"):
        TWO.experiment(tmp_path / "es", strategies.Random(), early_stopping=MedianStop())
    assert not (tmp_path / "es").exists()


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            {"objective": ["acc", "latency"], "direction": ["maximize"]},
            r"2 objectives \['acc', 'latency'\] but 1 direc",
        ),
        ({"objective": ["acc"], "direction": ["maximize", "minimize"]}, "1 objectives.*but 2 directions"),
        ({"objective": ["acc", "acc"], "direction": ["maximize", "minimize"]}, "objective names repeat"),
        ({"objective": {"acc": "maximize", "latency": "minimize"}, "direction": "maximize"}, "leave direction=None"),
        ({"objective": ["default", "latency"], "direction": ["maximize", "minimize"]}, "'default' names a plain"),
        ({"objective": ["acc", "latency"], "direction": "maximize"}, "need one direction each"),
        ({"objective": {"acc": "maximize", "latency": "smaller"}}, "direction must be 'maximize' or 'minimize'"),
        ({"objective": ["acc", ""], "direction": ["maximize", "minimize"]}, "objective must be a metric name"),
        ({"objective": [], "direction": None}, "objective is empty"),
        ({"objective": "acc", "direction": ["maximize", "minimize"]}, "one objective 'acc' takes one direction"),
    ],
)
def test_config_errors(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ExperimentConfig(**config)


def test_config_forms_agree() -> None:
    as_dict = ExperimentConfig(objective={"acc": "maximize", "latency": "minimize"})
    as_lists = ExperimentConfig(objective=["acc", "latency"], direction=["maximize", "minimize"])
    assert as_dict.objectives == as_lists.objectives == ("acc", "latency")
    assert as_dict.directions == as_lists.directions == ("maximize", "minimize")
    assert ExperimentConfig(objective=["acc"], direction="minimize").directions == ("minimize",)
    assert as_dict.to_dict()["objective"] == {"acc": "maximize", "latency": "minimize"}


@pytest.mark.parametrize("direction", [None, ["maximize", None]])
def test_a_function_evaluator_must_be_told_every_direction(direction: Any, tmp_path: Path) -> None:
    missing = "acc" if direction is None else "latency"
    with pytest.raises(ExperimentError, match=rf"say whether a higher '{missing}' is better: give each objective"):
        TWO.experiment(tmp_path, strategies.Random(), objective=["acc", "latency"], direction=direction)


# Failed trials ---------------------------------------------------------------------------------------
def faulty(model: Any, f: Callable[[Sample], dict], **hyper: Any) -> Any:
    """``b = 1``: a plain number; ``b = 2, d = 0``: no latency; ``b = 2, d = 1``:
    NaN latency; anything else: both objectives."""
    sample = archsmith.current_sample()
    if sample["b"] == 1:
        return 3.0
    if sample["b"] == 2:
        return {"acc": 1.0} if sample["d"] == 0 else {"acc": 1.0, "latency": math.nan}
    return f(sample)


def test_a_trial_without_every_objective_fails_and_the_run_goes_on(tmp_path: Path) -> None:
    with deadline(60):
        exp = TWO.experiment(tmp_path, strategies.GridSearch(), faulty).run()
    trials = exp.trials()
    assert len(trials) == 48
    for t in trials:
        if t.sample["b"] == 0:
            assert t.status == "succeeded" and t.values == TWO.values(t.sample) and t.error is None
            continue
        assert t.status == "failed" and t.values is None and t.objective is None
        if t.sample["b"] == 1:
            assert "a plain number was reported but there are 2 objectives ['acc', 'latency']" in t.error
        elif t.sample["d"] == 0:
            assert "the objective 'latency' is not in the reported metric ['acc']" in t.error
        else:
            assert "the objective 'latency' is nan" in t.error
    ok = [t.sample for t in trials if t.status == "succeeded"]
    assert keys(exp.pareto_front()) == keys(TWO.front(ok))
    with read_experiment(tmp_path) as store:
        assert store.counts()["failed"] == 32
        assert all(t.status == "succeeded" for t in top_trials(store, 100))


@pytest.mark.parametrize("name", ["regularized_evolution", "nsga2", "tpe"])
def test_learning_strategies_take_failed_trials_in_their_stride(name: str, tmp_path: Path) -> None:
    strategy = make(name)
    if name == "regularized_evolution":
        strategy = strategies.RegularizedEvolution(population_size=8, sample_size=3, on_failure="worst")
    with deadline(60):
        exp = TWO.experiment(tmp_path, strategy, faulty, max_trials=30).run()
    trials = exp.trials()
    assert len(trials) == 30 and {t.status for t in trials} == {"succeeded", "failed"}


# The store -----------------------------------------------------------------------------------------
def test_the_store_keeps_every_objective(tmp_path: Path) -> None:
    with deadline(60):
        TWO.experiment(tmp_path, strategies.GridSearch(), faulty, max_trials=12).run()
    connection = sqlite3.connect(tmp_path / STORE_FILE)
    try:
        rows = connection.execute("SELECT status, objective, objective_values, sample FROM trials").fetchall()
        meta = dict(connection.execute("SELECT key, value FROM meta").fetchall())
    finally:
        connection.close()
    for status, objective, values, sample in rows:
        if status == "succeeded":
            expected = TWO.values(json.loads(sample))
            assert json.loads(values) == list(expected) and objective == expected[0]
        else:
            assert values is None and objective is None
    assert json.loads(meta["objectives"]) == ["acc", "latency"]
    assert json.loads(meta["directions"]) == ["maximize", "minimize"]
    assert json.loads(meta["objective"]) == "acc" and json.loads(meta["direction"]) == "maximize"


OLD_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE trials (
    id INTEGER PRIMARY KEY,
    sample TEXT NOT NULL,
    status TEXT NOT NULL,
    objective REAL,
    metric TEXT,
    error TEXT,
    worker TEXT,
    created_at REAL NOT NULL,
    started_at REAL,
    ended_at REAL,
    attempts INTEGER NOT NULL DEFAULT 0,
    stopped_early INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE intermediates (
    trial_id INTEGER NOT NULL REFERENCES trials(id),
    step INTEGER NOT NULL,
    metric TEXT NOT NULL,
    objective REAL,
    at REAL NOT NULL,
    PRIMARY KEY (trial_id, step)
);
CREATE INDEX trials_status ON trials(status);
"""


def old_store(directory: Path) -> Path:
    """A store as the release before several objectives wrote it: no
    ``objective_values`` column, no ``objectives`` meta; one succeeded trial."""
    directory.mkdir()
    path = directory / STORE_FILE
    connection = sqlite3.connect(path)
    connection.executescript(OLD_SCHEMA)
    for name, value in (("objective", "acc"), ("direction", "maximize"), ("status", "done"), ("schema_version", 1)):
        connection.execute("INSERT INTO meta VALUES (?, ?)", (name, json.dumps(value)))
    connection.execute(
        "INSERT INTO trials (sample, status, objective, metric, worker, created_at, started_at, ended_at, attempts) "
        "VALUES (?, 'succeeded', 0.75, ?, 'main', 1.0, 2.0, 3.5, 1)",
        (json.dumps({"a": 2, "b": 1}), json.dumps({"acc": 0.75, "loss": 0.1})),
    )
    connection.commit()
    connection.close()
    return path


def columns(path: Path) -> list[str]:
    connection = sqlite3.connect(path)
    try:
        return [row[1] for row in connection.execute("PRAGMA table_info(trials)")]
    finally:
        connection.close()


def test_an_old_store_reads_read_only_and_migrates_when_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = old_store(tmp_path / "old")
    with read_experiment(tmp_path / "old") as store:  # read-only: nothing can be added, defaults are read
        [trial] = store.trials()
        assert trial.objective_values is None and trial.values == (0.75,) and not trial.stopped_early
        assert objectives_of(store) == [("acc", "maximize")]
        assert pareto_trials(store) == [trial] == top_trials(store, 5)
        summary = summarize(store)
        assert summary.best == trial and summary.front == [] and summary.objectives == [("acc", "maximize")]
        assert trial_row(trial)["objective_values"] == [0.75]  # one objective: its value
    assert "objective_values" not in columns(path)
    code, out, _ = cli(capsys, "show", tmp_path / "old")
    assert code == 0 and "best: trial 1, acc = 0.75 (maximize)" in out
    code, out, _ = cli(capsys, "export", tmp_path / "old", "--pareto")
    assert code == 0 and json.loads(out) == [{"a": 2, "b": 1}]

    store = Store(path)  # writable: the column is added, the old row keeps its values
    try:
        assert store.trials() == [trial]
        new = store.add_trial({"a": 3, "b": 0})
        store.finish_trial(new, "succeeded", metric={"acc": 0.5, "loss": 0.2}, objective=0.5, values=[0.5, 0.2])
        assert store.trial(new).values == (0.5, 0.2)
    finally:
        store.close()
    assert columns(path)[-3:] == ["objective_values", "output", "arch_key"]


# Progress ------------------------------------------------------------------------------------------
def test_progress_lines_show_each_objective_and_the_front_size(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    with deadline(60):
        exp = TWO.experiment(tmp_path, strategies.GridSearch(), faulty, max_trials=20).run()
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.startswith("[archsmith] trial ")]
    trials = exp.trials()
    assert len(lines) == 20
    succeeded: list[Sample] = []
    for line, t in zip(lines, trials):
        assert line.startswith(f"[archsmith] trial {t.id} {t.status}: ")
        if t.status == "succeeded":
            succeeded.append(t.sample)
            acc, latency = TWO.values(t.sample)
            assert f": acc={acc:.6g}, latency={latency:.6g} |" in line
        front = len(TWO.front(succeeded))
        assert f"| Pareto front {front} trials |" in line, line
        assert "| best " not in line
    assert 0 < len(succeeded) < 20
    final = len(TWO.front(succeeded))
    assert f"the Pareto front of acc, latency holds {final} trials" in out


def test_the_terminal_panel_shows_the_front_size() -> None:
    out = io.StringIO()
    view = ProgressView("demo", ["acc", "latency"], Console(file=out, force_terminal=True, width=100))
    view.start()
    view.trial_finished(3, "succeeded", (0.5, 2.0), None, Snapshot(3, 0, 0, 10, 0.5, 1, 3.0, None, front=2))
    view.stop("finished")
    text = out.getvalue()
    assert "Pareto front acc, latency" in text and "2 trials" in text

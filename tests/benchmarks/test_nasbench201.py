"""NAS-Bench-201: the table, the sample <-> string mapping, the model space and the
``"benchmark"`` engine."""

from __future__ import annotations

import itertools
import pickle
import shutil
import time
from pathlib import Path

import pytest
import torch

from archsmith import strategy
from archsmith.benchmarks.nasbench201 import (
    EDGES,
    OPS,
    BenchmarkError,
    NasBench201Evaluator,
    NasBench201Space,
    NasBench201Table,
    default_path,
    sample_to_string,
    string_to_sample,
)
from archsmith.execution import ENGINES
from archsmith.experiment import ExperimentConfig, read_experiment
from archsmith.experiment._experiment import Experiment
from archsmith.nn import MutableModule

BEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_1x1~1|nor_conv_3x3~2|"
FIRST = "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|"


@pytest.fixture(scope="module")
def table() -> NasBench201Table:
    return NasBench201Table.load()


# The table ------------------------------------------------------------------------


def test_the_table_holds_every_cell_with_the_documented_facts(table: NasBench201Table) -> None:
    assert len(table) == 15625
    assert default_path().name == "mini_bench_12ep.csv"
    assert table.best("cifar10", "val") == (BEST, pytest.approx(84.892))
    assert table.index(BEST) == 13714
    assert table.index(FIRST) == 0
    assert table.query(FIRST) == pytest.approx(63.364)  # cifar10 val by default
    assert table.query_all(FIRST) == pytest.approx(
        {
            "cifar10-val": 63.364,
            "cifar10-test": 69.55,
            "cifar100-val": 31.84,
            "cifar100-test": 31.26,
            "imagenet-val": 18.466667,
            "imagenet-test": 17.0,
        }
    )
    assert table.query(FIRST, "imagenet", "test") == pytest.approx(17.0)
    assert NasBench201Table.load() is table  # read once per process


def test_a_query_takes_a_string_or_a_sample(table: NasBench201Table) -> None:
    sample = NasBench201Space.string_to_sample(BEST)
    assert table.query(sample, "cifar100", "test") == table.query(BEST, "cifar100", "test")
    other_label = string_to_sample(BEST, label="mycell")
    assert table.query(other_label) == table.query(BEST)
    assert BEST in table and sample in table and "nonsense" not in table


@pytest.mark.parametrize(
    ("arch", "dataset", "metric", "message"),
    [
        (BEST.replace("skip_connect", "sep_conv_5x5"), "cifar10", "val", "unknown operation 'sep_conv_5x5'"),
        (BEST, "mnist", "val", "unknown dataset 'mnist'"),
        (BEST, "cifar10", "train", "unknown metric 'train'"),
        ("|none~0|+|none~0|none~1|", "cifar10", "val", "3 nodes"),
        ("|none~1|+|none~0|none~1|+|none~0|none~1|none~2|", "cifar10", "val", "must read 'op~0'"),
        ({"cell/1_0": "none"}, "cifar10", "val", "no edge 'cell/2_0'"),
        ({"a/1_0": "none", "b/1_0": "none"}, "cifar10", "val", "cannot tell the NB201 cell"),
        (42, "cifar10", "val", "is a dict"),
    ],
)
def test_bad_queries_say_what_is_wrong(table: NasBench201Table, arch, dataset, metric, message) -> None:
    with pytest.raises(BenchmarkError, match=message):
        table.query(arch, dataset, metric)


def test_another_file_of_the_same_shape_loads_and_bad_files_are_named(table: NasBench201Table, tmp_path: Path) -> None:
    lines = default_path().read_text().splitlines()
    small = tmp_path / "small.csv"
    small.write_text("\n".join(lines[:3]) + "\n")
    sub = NasBench201Table.load(small)
    assert len(sub) == 2 and sub.query(FIRST) == table.query(FIRST)
    with pytest.raises(BenchmarkError, match="not in the table"):
        sub.query(BEST)
    with pytest.raises(BenchmarkError, match="does not exist"):
        NasBench201Table.load(tmp_path / "missing.csv")
    broken = tmp_path / "broken.csv"
    broken.write_text("arch,cellstr,cifar10-val\n0,x,1\n")
    with pytest.raises(BenchmarkError, match=r"columns .* are missing"):
        NasBench201Table.load(broken)


def test_the_default_path_can_be_overridden(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    copy = tmp_path / "nb201.csv"
    shutil.copy(default_path(), copy)
    monkeypatch.setenv("ARCHSMITH_NASBENCH201", str(copy))
    assert default_path() == copy
    monkeypatch.setenv("ARCHSMITH_NASBENCH201", str(tmp_path / "nowhere.csv"))
    with pytest.raises(BenchmarkError, match="does not exist"):
        NasBench201Table.load()


# The mapping ----------------------------------------------------------------------


def test_string_sample_round_trip_is_exact_for_all_15625_cells(table: NasBench201Table) -> None:
    space = NasBench201Space(cells_per_stage=1)
    archs = table.archs()
    expected = {
        "|" + "|+|".join("|".join(f"{o}~{i}" for i, o in enumerate(n)) for n in nodes) + "|" for nodes in _all_cells()
    }
    assert set(archs) == expected  # the table is the whole space, isomorphic cells included
    samples = set()
    for arch in archs:
        sample = space.string_to_sample(arch)
        assert space.sample_to_string(sample) == arch
        samples.add(tuple(sample[f"cell/{j}_{i}"] for j, i in EDGES))
    assert len(samples) == 15625
    assert space.search_space.validate(space.string_to_sample(BEST))
    for seed in range(20):
        sample = space.random(seed=seed)
        assert space.string_to_sample(space.sample_to_string(sample)) == sample
        assert sample_to_string(sample) in table


def _all_cells():
    for ops in itertools.product(OPS, repeat=6):
        yield (ops[0],), ops[1:3], ops[3:6]


# The model space ------------------------------------------------------------------


def test_the_space_is_one_shared_cell_decision() -> None:
    space = NasBench201Space()
    assert list(space.search_space) == [f"cell/{j}_{i}" for j, i in EDGES]
    assert all(space.search_space[label].values == list(OPS) for label in space.search_space)
    assert space.size() == 15625


@pytest.mark.parametrize("arch", [BEST, FIRST, "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"])
def test_frozen_cells_match_the_parameter_formula_and_run(arch: str) -> None:
    space = NasBench201Space(num_classes=10)
    model = space.freeze(space.string_to_sample(arch))
    params = sum(p.numel() for p in model.parameters())
    n3, n1 = arch.count("nor_conv_3x3"), arch.count("nor_conv_1x1")
    assert params == 72656 + 65 * 10 + 243040 * n3 + 28000 * n1  # SOURCES.md, exact for this space
    assert not [m for m in model.modules() if isinstance(m, MutableModule)]  # a plain model
    out = model(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 10) and torch.isfinite(out).all()


def test_small_variants_run() -> None:
    space = NasBench201Space(num_classes=100, channels=8, cells_per_stage=1)
    model = space.freeze(space.random(seed=3))
    assert model(torch.randn(1, 3, 16, 16)).shape == (1, 100)


# The benchmark engine -------------------------------------------------------------


def _trials(exp: Experiment) -> list:
    with read_experiment(exp.directory) as store:
        return store.trials()


def _experiment(tmp_path: Path, max_trials: int, strat=None, **kw) -> Experiment:
    config = ExperimentConfig(
        engine="benchmark", max_trials=max_trials, direction="maximize", seed=0, workdir=tmp_path / "exp", **kw
    )
    return Experiment(NasBench201Space(), NasBench201Evaluator(), strat or strategy.Random(), config)


def test_the_engine_is_registered() -> None:
    assert "benchmark" in ENGINES
    ExperimentConfig(engine="benchmark", max_trials=1)


def test_an_experiment_of_100_trials_runs_in_seconds(tmp_path: Path, table: NasBench201Table) -> None:
    start = time.time()
    exp = _experiment(tmp_path, 100).run()
    assert time.time() - start < 20
    trials = _trials(exp)
    assert len(trials) == 100 and all(t.status == "succeeded" for t in trials)
    for t in trials[:10]:
        assert t.objective == pytest.approx(table.query(t.sample, "cifar10", "val"))
    top = exp.export_top_models(k=3)
    values = [table.query(s) for s in top]
    assert values == sorted(values, reverse=True)
    assert values[0] == max(t.objective for t in trials)
    model = exp.export_top_models(k=1, formatter="instance")[0]
    assert model(torch.randn(1, 3, 32, 32)).shape == (1, 10)


def test_resume_continues_without_losing_trials(tmp_path: Path) -> None:
    _experiment(tmp_path, 30).run()
    resumed = _experiment(tmp_path, 60).run(resume=True)
    trials = _trials(resumed)
    assert len(trials) == 60 and all(t.status == "succeeded" for t in trials)
    keys = {NasBench201Space.sample_to_string(t.sample) for t in trials}
    assert len(keys) == 60  # Random's dedup state survived the resume
    straight = _experiment(tmp_path / "straight", 60).run()
    assert [t.sample for t in _trials(straight)] == [t.sample for t in trials]


def test_other_datasets_metrics_concurrency_and_failures(tmp_path: Path, table: NasBench201Table) -> None:
    lines = default_path().read_text().splitlines()
    small = tmp_path / "small.csv"
    small.write_text("\n".join(lines[:200]) + "\n")  # most samples are missing: failed trials
    evaluator = NasBench201Evaluator("cifar100", "test", table=small)
    config = ExperimentConfig(
        engine="benchmark", max_trials=20, direction="maximize", seed=1, concurrency=4, workdir=tmp_path / "exp"
    )
    exp = Experiment(NasBench201Space(), evaluator, strategy.Random(), config).run()
    trials = _trials(exp)
    assert len(trials) == 20
    for t in trials:
        if t.status == "succeeded":
            assert t.objective == pytest.approx(table.query(t.sample, "cifar100", "test"))
        else:
            assert "not in the table" in (t.error or "")
    assert any(t.status == "failed" for t in trials)


def test_the_evaluator_checks_its_arguments_pickles_small_and_works_in_a_real_trial(tmp_path: Path) -> None:
    with pytest.raises(BenchmarkError, match="unknown dataset"):
        NasBench201Evaluator("svhn")
    with pytest.raises(BenchmarkError, match="unknown metric"):
        NasBench201Evaluator(metric="train")
    with pytest.raises(BenchmarkError, match="does not exist"):
        NasBench201Evaluator(table=tmp_path / "none.csv")
    evaluator = NasBench201Evaluator("imagenet", "val")
    assert len(pickle.dumps(evaluator)) < 2000
    assert pickle.loads(pickle.dumps(evaluator)).query(string_to_sample(BEST)) == evaluator.query(BEST)  # type: ignore[arg-type]
    with pytest.raises(BenchmarkError, match="inside a trial"):
        evaluator.evaluate(torch.nn.Identity())
    # the in-process engine builds the model and calls evaluate(): same answer as the table
    config = ExperimentConfig(engine="inprocess", max_trials=2, direction="maximize", seed=0, workdir=tmp_path / "e")
    exp = Experiment(NasBench201Space(channels=4, cells_per_stage=1), evaluator, strategy.Random(), config).run()
    for t in _trials(exp):
        assert t.status == "succeeded" and t.objective == pytest.approx(evaluator.query(t.sample))

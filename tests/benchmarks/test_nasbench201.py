"""NAS-Bench-201: the table, the sample <-> string mapping, the model space and the
``"benchmark"`` engine."""

from __future__ import annotations

import gzip
import itertools
import json
import lzma
import os
import pickle
import subprocess
import sys
import textwrap
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
    packaged_file,
    sample_to_string,
    string_to_sample,
)
from archsmith.benchmarks.nasbench201._table import PACKAGED_FILE, PATH_VARIABLE
from archsmith.execution import ENGINES
from archsmith.experiment import ExperimentConfig, read_experiment
from archsmith.experiment._experiment import Experiment
from archsmith.nn import MutableModule

BEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_1x1~1|nor_conv_3x3~2|"
FIRST = "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|"
REPO = Path(__file__).resolve().parents[2]


def _csv_lines() -> list[str]:
    """The shipped table as CSV lines (header first)."""
    return lzma.decompress(packaged_file().read_bytes()).decode("utf-8").splitlines()


@pytest.fixture(scope="module")
def table() -> NasBench201Table:
    return NasBench201Table.load()


# The table ------------------------------------------------------------------------


def test_the_table_holds_every_cell_with_the_documented_facts(table: NasBench201Table) -> None:
    assert len(table) == 15625
    assert default_path() == packaged_file() and packaged_file().name == PACKAGED_FILE
    assert table.path == packaged_file()
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
    lines = _csv_lines()
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


def test_the_default_path_can_be_overridden(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, table: NasBench201Table
) -> None:
    copy = tmp_path / "nb201.csv"
    copy.write_text("\n".join(_csv_lines()[:3]) + "\n")
    monkeypatch.setenv(PATH_VARIABLE, str(copy))
    assert default_path() == copy
    assert len(NasBench201Table.load()) == 2
    assert len(NasBench201Table.load(packaged_file())) == 15625  # an explicit path wins over the variable


@pytest.mark.parametrize("where", ["nowhere.csv", "a directory"])
def test_a_bad_variable_names_itself_and_the_fix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, where: str) -> None:
    bad = tmp_path / where
    if where == "a directory":
        bad.mkdir()
    monkeypatch.setenv(PATH_VARIABLE, str(bad))
    with pytest.raises(BenchmarkError) as info:
        NasBench201Table.load()
    message = str(info.value)
    assert f"${PATH_VARIABLE} is set to {str(bad)!r}, which is not a file" in message
    assert "unset it to use the table shipped with archsmith" in message
    with pytest.raises(BenchmarkError, match=PATH_VARIABLE):
        NasBench201Evaluator()  # the evaluator loads its table at construction: the same message


def test_compressed_and_plain_files_read_the_same(tmp_path: Path, table: NasBench201Table) -> None:
    text = "\n".join(_csv_lines()[:50]) + "\n"
    (tmp_path / "t.csv").write_text(text)
    (tmp_path / "t.csv.gz").write_bytes(gzip.compress(text.encode()))
    (tmp_path / "t.csv.xz").write_bytes(lzma.compress(text.encode()))
    tables = [NasBench201Table.load(tmp_path / name) for name in ("t.csv", "t.csv.gz", "t.csv.xz")]
    assert all(len(t) == 49 for t in tables)
    assert {a: t.query_all(a) for t in tables[1:] for a in t.archs()} == {
        a: tables[0].query_all(a) for a in tables[0].archs()
    }
    assert tables[0].query_all(FIRST) == table.query_all(FIRST) and tables[0].index(FIRST) == 0


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("bad.csv.xz", b"not xz at all", "cannot read it as an NB201 table"),
        ("bad.csv.gz", b"not gzip", "cannot read it as an NB201 table"),
        ("latin1.csv", "arch,cellstr\n0,caf\xe9\n".encode("latin-1"), "cannot read it as an NB201 table"),
        ("empty.csv", b"", r"columns \['cellstr', .*\] are missing"),
        (
            "header.csv",
            (
                "arch,cellstr,"
                + ",".join(f"{d}-{m}" for d in ("cifar10", "cifar100", "imagenet") for m in ("val", "test"))
                + "\n"
            ).encode(),
            "has no rows",
        ),
        (
            "short.csv",
            b"arch,cellstr,cifar10-val,cifar10-test,cifar100-val,cifar100-test,imagenet-val,imagenet-test\n0,"
            + FIRST.encode()
            + b",1,2\n",
            "row 2",
        ),
        (
            "badcell.csv",
            b"arch,cellstr,cifar10-val,cifar10-test,cifar100-val,cifar100-test,imagenet-val,imagenet-test\n0,|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|,1,2,3,4,5,6\n",
            "row 2: .*unknown operation 'conv'",
        ),
        (
            "twice.csv",
            b"arch,cellstr,cifar10-val,cifar10-test,cifar100-val,cifar100-test,imagenet-val,imagenet-test\n"
            + b"".join(b"%d," % i + FIRST.encode() + b",1,2,3,4,5,6\n" for i in range(2)),
            "row 3: .* is in the table twice",
        ),
    ],
)
def test_a_bad_table_file_is_named_with_what_is_wrong(tmp_path: Path, name: str, content: bytes, message: str) -> None:
    file = tmp_path / name
    file.write_bytes(content)
    with pytest.raises(BenchmarkError, match=message) as info:
        NasBench201Table.load(file)
    assert str(file) in str(info.value)


def _python(code: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter in ``cwd``, without $ARCHSMITH_NASBENCH201."""
    clean = {k: v for k, v in os.environ.items() if k != PATH_VARIABLE}
    clean["PYTHONPATH"] = str(REPO)  # this checkout's archsmith, whatever the venv has installed
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=cwd,
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_shipped_table_loads_from_anywhere_and_nothing_reads_a_shared_folder(tmp_path: Path) -> None:
    # cwd outside the checkout and no variable: only the file inside the package can answer.
    # An audit hook records every file the process opens while loading.
    code = """
        import json, sys
        from archsmith.benchmarks.nasbench201 import NasBench201Table, packaged_file
        opened = []
        sys.addaudithook(lambda event, args: opened.append(str(args[0])) if event == "open" else None)
        table = NasBench201Table.load()
        best, value = table.best("cifar10", "val")
        print(json.dumps({"rows": len(table), "best": value, "index": table.index(best),
                          "path": str(table.path), "packaged": str(packaged_file()), "opened": opened}))
    """
    result = _python(code, tmp_path)
    assert result.returncode == 0, result.stderr
    facts = json.loads(result.stdout)
    assert facts["rows"] == 15625 and round(facts["best"], 2) == 84.89 and facts["index"] == 13714
    assert facts["path"] == facts["packaged"] == str(REPO / "archsmith/benchmarks/nasbench201/data" / PACKAGED_FILE)
    assert [f for f in facts["opened"] if f.endswith((".csv", ".xz", ".gz"))] == [facts["path"]]
    assert not [f for f in facts["opened"] if "shared" in Path(f).parts]


def test_a_bad_variable_fails_clearly_in_a_fresh_process(tmp_path: Path) -> None:
    code = """
        from archsmith.benchmarks.nasbench201 import NasBench201Table
        NasBench201Table.load()
    """
    result = _python(code, tmp_path, {PATH_VARIABLE: str(tmp_path / "missing.csv")})
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("archsmith.benchmarks.nasbench201._table.BenchmarkError: $ARCHSMITH_NASBENCH201 is set to")
    assert "missing.csv" in last and "shipped with archsmith" in last


def test_importing_reads_no_table() -> None:
    # The table is read on first use: importing the packages opens no data file.
    code = """
        import sys
        opened = []
        sys.addaudithook(lambda event, args: opened.append(str(args[0])) if event == "open" else None)
        import archsmith.benchmarks
        assert "archsmith.benchmarks.nasbench201" not in sys.modules, "import archsmith.benchmarks stays cheap"
        import archsmith.benchmarks.nasbench201 as nb
        from archsmith.benchmarks.nasbench201 import _table
        assert _table._CACHE == {}
        assert not [f for f in opened if f.endswith((".csv", ".xz", ".gz"))], opened
    """
    result = _python(code, REPO)
    assert result.returncode == 0, result.stderr


def test_the_table_is_declared_as_package_data() -> None:
    # setuptools puts into a wheel what pyproject's package-data globs match: the
    # shipped table and its provenance must both match.
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    globs = config["tool"]["setuptools"]["package-data"]["archsmith.benchmarks.nasbench201"]
    package = REPO / "archsmith" / "benchmarks" / "nasbench201"
    matched = {p.relative_to(package).as_posix() for g in globs for p in package.glob(g)}
    assert matched == {f"data/{PACKAGED_FILE}", "data/README.md"}


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
    assert params == 72656 + 65 * 10 + 243040 * n3 + 28000 * n1  # data/README.md's source, exact for this space
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
    lines = _csv_lines()
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

"""The command line: every sub-command and format, the error paths, the console
script and ``python -m archsmith``, and reading a store while a run writes it."""

from __future__ import annotations

import csv
import io
import json
import math
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

import archsmith
import archsmith.nn as nn
from archsmith import strategy
from archsmith.cli import COMMANDS, main
from archsmith.evaluator import FunctionalEvaluator, report_intermediate_result
from archsmith.experiment import (
    STORE_FILE,
    Experiment,
    ExperimentConfig,
    Store,
    StoreError,
    error_summary,
    export_samples,
    export_text,
    list_experiments,
    load_samples,
    loads_samples,
    read_experiment,
    resolve_experiment,
    top_samples,
    top_trials,
)
from archsmith.space import dumps_arch, loads_arch

KERNELS = [(1, 3), (3, 1), (3, 3)]


class Net(nn.ModelSpace):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, nn.choice("k", KERNELS))
        self.fc = nn.Linear(4, nn.choice("h", [2, 3, 4, 5, 6, 7]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


def capped(model: torch.nn.Module) -> float:
    """Objective min(h, 5): h = 5, 6, 7 tie. h = 3 raises, h = 2 gives NaN (both fail)."""
    h = model(torch.ones(1, 4)).shape[1]
    report_intermediate_result(h / 2)
    if h == 3:
        raise ValueError("h = 3 is not allowed\nsecond line of the message")
    return math.nan if h == 2 else float(min(h, 5))


def width(model: torch.nn.Module) -> float:
    return float(model(torch.ones(1, 4)).shape[1])


def run_experiment(workdir: Path, fn: Any, max_trials: int, direction: str = "maximize") -> None:
    config = ExperimentConfig(max_trials=max_trials, engine="inprocess", workdir=workdir, seed=0, direction=direction)
    Experiment(Net(), FunctionalEvaluator(fn), strategy.Random(), config).run()


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``base/archsmith-experiments/`` with finished, empty, live, all-failed and broken experiments."""
    base = tmp_path_factory.mktemp("cli")
    root = base / "archsmith-experiments"
    run_experiment(root / "search", capped, 12)
    run_experiment(root / "minimize", width, 5, direction="minimize")
    empty = Store(root / "empty" / STORE_FILE)  # a run that has not proposed a trial yet
    empty.set_meta("config", ExperimentConfig(max_trials=3, engine="inprocess", workdir=root / "empty").to_dict())
    empty.set_meta("status", "running")
    empty.close()
    live = Store(root / "live" / STORE_FILE)  # a run in progress: one trial done, one running, one waiting
    live.set_meta("status", "running")
    live.set_meta("direction", "maximize")
    now = time.time()
    for i, h in enumerate((4, 6, 7)):
        live.add_trial({"k": KERNELS[i], "h": h})
    live.mark_running(1, "worker-0", now - 2)
    live.finish_trial(1, "succeeded", metric={"acc": 0.5}, objective=0.5, worker="worker-0", at=now - 1)
    live.mark_running(2, "worker-1", now - 30)
    live.close()
    failed = Store(root / "all-failed" / STORE_FILE)
    failed.add_trial({"k": KERNELS[0], "h": 2})
    failed.finish_trial(1, "failed", error="RuntimeError: out of memory", at=now)
    failed.close()
    (root / "broken").mkdir()
    (root / "broken" / STORE_FILE).write_text("this is not a database\n")
    (root / "not-an-experiment").mkdir()
    return base


@pytest.fixture(autouse=True)
def _wide(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # rich tables: no folding of the cells the tests look for


@pytest.fixture
def root(base: Path) -> Path:
    return base / "archsmith-experiments"


def cli(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def trials_json(capsys: pytest.CaptureFixture[str], exp: Path) -> list[dict[str, Any]]:
    code, out, _ = cli(capsys, "trials", exp, "--format", "json")
    assert code == 0
    return json.loads(out)  # type: ignore[no-any-return]


def ranked(rows: list[dict[str, Any]], direction: str = "maximize") -> list[dict[str, Any]]:
    """Succeeded trials, best first, ties to the lower id: computed here independently."""
    sign = -1 if direction == "maximize" else 1
    return sorted((r for r in rows if r["status"] == "succeeded"), key=lambda r: (sign * r["objective"], r["id"]))


# list -----------------------------------------------------------------------------------
def test_list_shows_every_experiment(capsys: pytest.CaptureFixture[str], root: Path) -> None:
    code, out, err = cli(capsys, "list", root)
    assert code == 0 and err == ""
    for name in ("search", "minimize", "empty", "live", "all-failed", "broken"):
        assert name in out
    assert "not-an-experiment" not in out
    search = next(line for line in out.splitlines() if " search " in line)
    assert "done" in search and "12/12" in search and "5 (max)" in search
    with read_experiment(root / "minimize") as store:
        lowest = min(t.objective or 0.0 for t in store.trials("succeeded"))
    assert f"{lowest:g} (min)" in next(line for line in out.splitlines() if " minimize " in line)
    assert "running" in next(line for line in out.splitlines() if " live " in line)
    assert "unreadable" in next(line for line in out.splitlines() if " broken " in line)
    assert "broken: " in out  # the reason, below the table


def test_list_and_names_under_the_default_root(
    capsys: pytest.CaptureFixture[str], base: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(base)
    code, out, _ = cli(capsys, "list")
    assert code == 0 and "search" in out and "minimize" in out
    code, out, _ = cli(capsys, "show", "search")  # a name under ./archsmith-experiments
    assert code == 0 and str(base / "archsmith-experiments" / "search") in out
    assert resolve_experiment("search") == Path("archsmith-experiments", "search", STORE_FILE)


def test_list_of_a_directory_without_experiments(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, _ = cli(capsys, "list", tmp_path)
    assert code == 0 and "no experiments" in out
    code, _, err = cli(capsys, "list", tmp_path / "missing")
    assert code == 2 and f"{tmp_path / 'missing'} does not exist (looked in {tmp_path / 'missing'})" in err


# show -----------------------------------------------------------------------------------
def test_show(capsys: pytest.CaptureFixture[str], root: Path) -> None:
    rows = trials_json(capsys, root / "search")
    best = ranked(rows)
    code, out, err = cli(capsys, "show", root / "search", "--top", "3")
    assert code == 0 and err == ""
    assert "inprocess" in out and "max_trials" in out and "Random" in out and "__main__" not in out
    succeeded = sum(r["status"] == "succeeded" for r in rows)
    assert f"succeeded {succeeded}, failed {len(rows) - succeeded}" in out
    assert f"best: trial {best[0]['id']}, objective = 5 (maximize)" in out
    top = out[out.index("top 3") :]
    table_rows = [line for line in top.splitlines() if line.startswith("│")]
    assert [int(line.split("│")[2]) for line in table_rows] == [r["id"] for r in best[:3]]


def test_show_follows_the_stored_direction(capsys: pytest.CaptureFixture[str], root: Path) -> None:
    code, out, _ = cli(capsys, "show", root / "minimize")
    assert code == 0
    best = ranked(trials_json(capsys, root / "minimize"), "minimize")[0]
    assert f"best: trial {best['id']}, objective = {best['objective']:g} (minimize)" in out


def test_show_a_live_run(capsys: pytest.CaptureFixture[str], root: Path) -> None:
    code, out, _ = cli(capsys, "show", root / "live")
    assert code == 0
    assert "running" in out and "waiting 1, running 1, succeeded 1, failed 0" in out
    code, out, _ = cli(capsys, "show", root / "all-failed")
    assert code == 0 and "no trial has succeeded yet" in out


# trials ---------------------------------------------------------------------------------
def test_trials_table(capsys: pytest.CaptureFixture[str], root: Path) -> None:
    rows = trials_json(capsys, root / "search")
    code, out, _ = cli(capsys, "trials", root / "search")
    assert code == 0
    assert out.count("│ succeeded") == sum(r["status"] == "succeeded" for r in rows)
    assert "second line of the message" in out  # a failed trial's error: its last line
    assert "Traceback" not in out
    code, out, _ = cli(capsys, "trials", root / "live")
    assert code == 0 and "s+" in out  # the running trial's time so far


def test_trials_json(capsys: pytest.CaptureFixture[str], root: Path) -> None:
    rows = trials_json(capsys, root / "search")
    assert [r["id"] for r in rows] == list(range(1, 13))
    with read_experiment(root / "search") as store:
        records = store.trials()
    for row, record in zip(rows, records):
        assert loads_arch(json.dumps(row["sample"])) == record.sample
        assert isinstance(loads_arch(json.dumps(row["sample"]))["k"], tuple)
        assert row["error"] == record.error and row["worker"] == "main"
        assert row["duration"] == pytest.approx(record.duration)
    failed = [r for r in rows if r["status"] == "failed"]
    assert failed and all("Traceback" in r["error"] or "NaN" in r["error"] or "nan" in r["error"] for r in failed)
    nan = [r for r in rows if r["metric"] == "NaN"]  # a NaN metric stays strict JSON
    assert all(r["status"] == "failed" for r in nan)
    code, out, _ = cli(capsys, "trials", root / "search", "--format", "json", "--status", "failed")
    assert code == 0 and [r["id"] for r in json.loads(out)] == [r["id"] for r in failed]


def test_trials_csv(capsys: pytest.CaptureFixture[str], root: Path) -> None:
    rows = trials_json(capsys, root / "search")
    code, out, _ = cli(capsys, "trials", root / "search", "--format", "csv")
    assert code == 0
    table = list(csv.DictReader(io.StringIO(out)))
    assert [int(r["id"]) for r in table] == [r["id"] for r in rows]
    for line, row in zip(table, rows):
        assert line["status"] == row["status"]
        assert loads_arch(line["sample"]) == loads_arch(json.dumps(row["sample"]))
        assert line["error"] == (row["error"] or "")  # the whole traceback, newlines and all
        assert (float(line["objective"]) if line["objective"] else None) == row["objective"]


# export ---------------------------------------------------------------------------------
def test_export_top1_to_stdout(capsys: pytest.CaptureFixture[str], root: Path) -> None:
    best = ranked(trials_json(capsys, root / "search"))
    code, out, _ = cli(capsys, "export", root / "search")
    assert code == 0
    assert loads_arch(out) == loads_arch(json.dumps(best[0]["sample"]))
    code, out, _ = cli(capsys, "export", root / "search", "--list")
    assert code == 0 and loads_samples(out) == [loads_arch(json.dumps(best[0]["sample"]))]
    assert json.loads(out)[0] == best[0]["sample"]


def test_export_top_k_breaks_ties_by_trial_id(capsys: pytest.CaptureFixture[str], root: Path, tmp_path: Path) -> None:
    best = ranked(trials_json(capsys, root / "search"))
    assert best[0]["objective"] == best[1]["objective"] == best[2]["objective"]  # the tie-break is exercised
    out_file = tmp_path / "top.json"
    code, out, err = cli(capsys, "export", root / "search", "--top", "3", "--out", out_file)
    assert code == 0 and out == "" and "wrote the best 3 samples" in err
    samples = load_samples(out_file)
    assert samples == [loads_arch(json.dumps(r["sample"])) for r in best[:3]]
    assert all(isinstance(s["k"], tuple) for s in samples)
    code, out, err = cli(capsys, "export", root / "search", "--top", "50")
    assert code == 0 and len(json.loads(out)) == len(best) and f"only {len(best)} trials" in err


def test_export_top1_is_an_architecture_file(capsys: pytest.CaptureFixture[str], root: Path, tmp_path: Path) -> None:
    path = tmp_path / "best.json"
    code, _, _ = cli(capsys, "export", root / "minimize", "--out", path)
    assert code == 0
    sample = archsmith.load_arch(path)
    assert sample == top_samples(root / "minimize", 1)[0] and isinstance(sample["k"], tuple)
    with archsmith.fixed_arch(path):
        model = Net()
    assert model.conv.kernel_size == sample["k"] and model.fc.out_features == sample["h"]


# errors ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["nope"], "unknown command 'nope'"),
        (["show", "{root}/not-an-experiment"], "is not an archsmith experiment"),
        (["trials", "{root}/does-not-exist"], "is not an archsmith experiment"),
        (["export", "no-such-name"], "is not an archsmith experiment"),
        (["show", "{root}/broken"], "is not an archsmith experiment store"),
        (["show", "{root}/empty"], "has no trials yet"),
        (["trials", "{root}/empty", "--format", "json"], "has no trials yet"),
        (["export", "{root}/empty"], "has no trials yet"),
        (["export", "{root}/all-failed"], "no succeeded trial"),
        (["trials", "{root}/search", "--format", "xml"], "invalid choice: 'xml'"),
        (["export", "{root}/search", "--top", "0"], "not a positive integer"),
        (["show"], "required: EXP"),
    ],
)
def test_errors_exit_2_with_one_line(
    capsys: pytest.CaptureFixture[str], root: Path, argv: list[str], message: str
) -> None:
    code, out, err = cli(capsys, *(a.format(root=root) for a in argv))
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "error: " in err and message in err, err
    assert "Traceback" not in err


def test_no_command_is_a_usage_error_naming_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys)
    assert code == 2 and out == "" and err.count("\n") == 1
    assert err.startswith("archsmith: error: no command given") and all(name in err for name in COMMANDS)
    assert cli(capsys, "--help")[0] == 0
    code, out, _ = cli(capsys, "--version")
    assert code == 0 and archsmith.__version__ in out


def test_unwritable_out_file_exits_1(capsys: pytest.CaptureFixture[str], root: Path, tmp_path: Path) -> None:
    code, _, err = cli(capsys, "export", root / "search", "--out", tmp_path / "missing-dir" / "best.json")
    assert code == 1 and err.count("\n") == 1 and "Traceback" not in err


# the Python API the command line is built on -------------------------------------------------
def test_results_api(root: Path, tmp_path: Path) -> None:
    names = {s.path.name: s for s in list_experiments(root)}
    assert names["search"].status == "done" and names["search"].done == 12
    assert names["broken"].status == "unreadable" and names["broken"].error
    assert names["empty"].total == 0 and names["empty"].best is None
    with read_experiment(root / "minimize") as store:
        assert [t.objective for t in top_trials(store, 5)] == sorted(
            t.objective or 0.0 for t in store.trials("succeeded")
        )
    samples = top_samples(root / "search", 3)
    assert export_samples(root / "search", 3, tmp_path / "a.json") == samples
    assert load_samples(tmp_path / "a.json") == samples
    assert loads_samples(export_text(samples[:1])) == samples[:1]  # k=1: one object, read back as a list of one
    assert json.loads(export_text(samples[:1], as_list=True)) == [json.loads(dumps_arch(samples[0]))]
    assert error_summary("Traceback ...\n  File x\nValueError: bad\n\n") == "ValueError: bad"
    with pytest.raises(StoreError, match="not an archsmith experiment"):
        resolve_experiment(root / "not-an-experiment")


# real processes ---------------------------------------------------------------------------
@pytest.mark.usefixtures("writer")  # its start-up overlaps these two
def test_console_script_and_python_m(root: Path) -> None:
    script = Path(sys.executable).with_name("archsmith")
    assert script.exists(), "the console script is missing: run `pip install -e .`"

    def start(*argv: str | Path) -> subprocess.Popen[str]:
        return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    listing = start(script, "list", root)
    export = start(sys.executable, "-m", "archsmith", "export", root / "search", "--top", "2")
    out, err = listing.communicate(timeout=120)
    assert listing.returncode == 0, err
    assert "search" in out and "minimize" in out and "unreadable" in out
    out, err = export.communicate(timeout=120)
    assert export.returncode == 0, err
    assert loads_samples(out) == top_samples(root / "search", 2)


WRITER = textwrap.dedent(
    """
    import os, sys, time
    import torch
    import archsmith.nn as nn
    from archsmith import strategy
    from archsmith.evaluator import FunctionalEvaluator, report_intermediate_result
    from archsmith.experiment import Experiment, ExperimentConfig

    class Net(nn.ModelSpace):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, nn.choice("h", list(range(1, 41))))
        def forward(self, x):
            return self.fc(x)

    calls = []

    def slow(model):
        calls.append(1)
        report_intermediate_result(0.5)
        if len(calls) == 5:  # hold the run mid-way until the test has read enough
            deadline = time.time() + 120
            while not os.path.exists(sys.argv[3]) and time.time() < deadline:
                time.sleep(0.02)
        time.sleep(0.02)
        return float(model(torch.ones(1, 4)).shape[1])

    config = ExperimentConfig(max_trials=20, engine="inprocess", workdir=sys.argv[1], seed=0, direction="maximize")
    experiment = Experiment(Net(), FunctionalEvaluator(slow), strategy.Random(), config)
    deadline = time.time() + 300
    while not os.path.exists(sys.argv[2]):  # started early, to overlap its imports; runs on "go"
        if time.time() > deadline:
            sys.exit("never told to go")
        time.sleep(0.02)
    experiment.run()
    """
)


@pytest.fixture(scope="module")
def writer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[subprocess.Popen[str], Path, Path, Path]]:
    """A process that will run an experiment (in-process engine) once its ``go``
    file exists: started before it is needed, so that its start-up (importing
    torch) overlaps other tests. Its fifth trial waits for the ``release`` file, so
    the test reads while the run is certainly in progress."""
    workdir = tmp_path_factory.mktemp("live") / "runs" / "writing"
    go, release = workdir.parent.parent / "go", workdir.parent.parent / "release"
    process = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(workdir), str(go), str(release)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    yield process, workdir, go, release
    if process.poll() is None:
        process.kill()
        process.wait()


def test_reading_while_a_run_writes(
    capsys: pytest.CaptureFixture[str], writer: tuple[subprocess.Popen[str], Path, Path, Path]
) -> None:
    process, workdir, go, release = writer
    go.touch()
    deadline = time.time() + 120
    while True:  # until the run has finished a trial
        assert process.poll() is None, process.communicate()[0]
        assert time.time() < deadline, "the writer never finished a trial"
        if (workdir / STORE_FILE).exists():
            try:
                with read_experiment(workdir) as store:
                    if store.counts()["succeeded"]:
                        break
            except StoreError:
                pass  # the file exists, its schema is not written yet
        time.sleep(0.02)
    reads, seen, first = 0, 0, None
    while process.poll() is None:
        rows = trials_json(capsys, workdir)
        assert len(rows) >= seen and all(r["status"] in ("succeeded", "waiting", "running") for r in rows)
        seen = len(rows)
        first = seen if first is None else first
        code, out, _ = cli(capsys, "show", workdir)
        assert code == 0 and "best: trial" in out
        assert cli(capsys, "export", workdir, "--top", "3")[0] == 0
        assert cli(capsys, "list", workdir.parent)[0] == 0
        reads += 1
        if reads == 5:
            release.touch()  # let the run go on: later reads overlap its writes
        time.sleep(0.01)
    output = process.communicate(timeout=60)[0]
    assert process.returncode == 0, output  # the writer was not disturbed
    assert "max_trials (20) reached" in output and "locked" not in output
    assert reads >= 5 and first is not None and 0 < first <= 5  # the reads began while the run was writing
    rows = trials_json(capsys, workdir)
    assert len(rows) == 20 and all(r["status"] == "succeeded" for r in rows)
    code, out, _ = cli(capsys, "list", workdir.parent)
    assert code == 0 and "done" in out and "20/20" in out


def test_a_running_experiment_whose_driver_stopped_writing_is_stale(tmp_path: Path) -> None:
    import time as _time

    from archsmith.experiment import Store, run_status

    store = Store(tmp_path / "experiment.db")
    store.set_meta("status", "running")
    store.set_meta("heartbeat", _time.time())
    assert run_status(store) == "running"
    store.set_meta("heartbeat", _time.time() - 3600)
    assert run_status(store) == "stale"
    store.set_meta("status", "done")
    assert run_status(store) == "done"
    store.close()

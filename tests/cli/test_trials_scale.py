"""``archsmith trials`` on 20,000 trials: the plain table (rich lays out about a
row a millisecond, so long listings skip it) is complete and correct, as are
json, csv, ``--status stopped`` and ``--limit``/``--offset`` pages. The timing is
benchmarks' business (benchmarks/dashboard_bench.py); this checks the content."""

from __future__ import annotations

import csv
import io
import json
import random
from pathlib import Path

import pytest

from archsmith.cli import main
from archsmith.cli._trials import RICH_ROWS
from archsmith.experiment import Store

COUNT = 20_000
STATUS_OF = ("succeeded", "succeeded", "failed", "stopped", "running")


def status(trial_id: int) -> str:
    return STATUS_OF[trial_id % len(STATUS_OF)]


def objective(trial_id: int) -> float:
    return round((trial_id * 7919 % 10_000) / 10_000, 4)


def build(path: Path, count: int = COUNT) -> Path:
    """A store written as a run writes it (the real Store API), every status in it."""
    rng = random.Random(0)
    meta = {"objectives": ["val_acc"], "directions": ["maximize"], "config": {"name": "big"}, "status": "done"}
    store = Store.create(path / "experiment.db", meta)
    with store.transaction():
        for _ in range(count):
            trial_id = store.add_trial({"width": rng.choice([16, 32, 64]), "op": rng.choice(["conv3", "conv5"])})
            store.mark_running(trial_id, "w1", 1000.0 + trial_id)
            kind = status(trial_id)
            if kind == "running":
                continue
            if kind == "failed":
                store.finish_trial(
                    trial_id, "failed", error=f"Traceback ...\nValueError: bad {trial_id}", at=1001.5 + trial_id
                )
            else:
                value = objective(trial_id)
                store.finish_trial(
                    trial_id,
                    kind,
                    metric={"val_acc": value},
                    objective=value,
                    at=1001.5 + trial_id,
                    stopped_early=kind == "stopped",
                )
    store.close()
    return path


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp("scale") / "big")


def output(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main(list(argv)) == 0
    return capsys.readouterr().out


def test_the_plain_table_holds_every_trial(big: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = output(capsys, "trials", str(big)).splitlines()
    assert lines[0].split() == ["id", "status", "val_acc", "duration", "worker", "sample", "error"]
    assert set(lines[1].replace(" ", "")) == {"-"}
    rows = lines[2:]
    assert len(rows) == COUNT > RICH_ROWS
    width = len(lines[0].split("sample")[0])  # columns are aligned: the sample starts at the same place
    for trial_id, line in enumerate(rows, start=1):
        cells = line.split()
        assert int(cells[0]) == trial_id and cells[1] == status(trial_id), line
        if status(trial_id) in ("succeeded", "stopped"):
            assert float(cells[2]) == objective(trial_id) and cells[3] == "1.50s" and cells[4] == "w1"
        elif status(trial_id) == "failed":
            assert cells[2] == "-" and line.endswith(f"ValueError: bad {trial_id}")
        else:
            assert cells[2] == "-" and cells[3].endswith("+")  # running: the time so far
        assert line[width:].startswith("width=")


def test_status_and_pages(big: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stopped = json.loads(output(capsys, "trials", str(big), "--status", "stopped", "--format", "json"))
    assert [r["id"] for r in stopped] == [i for i in range(1, COUNT + 1) if status(i) == "stopped"]
    assert all(r["status"] == "stopped" and r["objective"] == objective(r["id"]) for r in stopped)
    page = json.loads(output(capsys, "trials", str(big), "--limit", "3", "--offset", "10", "--format", "json"))
    assert [r["id"] for r in page] == [11, 12, 13]
    table = output(capsys, "trials", str(big), "--limit", "5", "--offset", "19998").splitlines()
    cells = [line.split("│")[1].strip() for line in table if line.startswith("│")]
    ids = [cell for cell in cells if cell]  # a narrow console wraps a row onto lines with an empty id cell
    assert ids == ["19999", "20000"]  # a short page is rich's table


def test_json_and_csv_hold_every_trial(big: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = json.loads(output(capsys, "trials", str(big), "--format", "json"))
    assert [r["id"] for r in rows] == list(range(1, COUNT + 1))
    assert [r["status"] for r in rows] == [status(i) for i in range(1, COUNT + 1)]
    table = list(csv.DictReader(io.StringIO(output(capsys, "trials", str(big), "--format", "csv"))))
    assert [int(r["id"]) for r in table] == list(range(1, COUNT + 1))
    assert all((float(r["objective"]) if r["objective"] else None) == row["objective"] for r, row in zip(table, rows))


def test_a_short_listing_is_still_a_rich_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    small = build(tmp_path / "small", count=5)
    out = output(capsys, "trials", str(small))
    assert "│ stopped" in out and "│ succeeded" in out  # rich's table, with the stopped status


def test_bad_pages_are_usage_errors(big: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for argv, message in ((["--limit", "0"], "'0' is not a positive integer"), (["--offset", "-1"], ">= 0")):
        assert main(["trials", str(big), *argv]) == 2 and message in capsys.readouterr().err

"""``archsmith trials EXP --curves``: the intermediate results, per trial and step."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from archsmith.cli import main
from archsmith.evaluator import report_intermediate_result

from ._spaces import grid_run


def learning(model) -> float:
    """Three steps of width * step; the widest reports a NaN at its last step and fails."""
    width = model.fc.out_features
    for step in range(1, 4):
        report_intermediate_result(float("nan") if width == 3 and step == 3 else float(width * step))
    if width == 3:
        raise RuntimeError("diverged")
    return float(width * 3)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return grid_run(tmp_path_factory.mktemp("curves") / "run", learning)


def test_json_has_one_row_per_trial_and_step(run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["trials", str(run), "--curves", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["trial"], r["step"]) for r in rows] == [(t, s) for t in (1, 2, 3) for s in (0, 1, 2)]
    assert [r["objective"] for r in rows if r["trial"] == 2] == [2.0, 4.0, 6.0]
    assert rows[-1]["objective"] is None and rows[-1]["metric"] == "NaN"  # strict JSON: a NaN is a string


def test_filters_apply_and_csv_reads_back(run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["trials", str(run), "--curves", "--status", "failed", "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert {r["trial"] for r in rows} == {"3"} and [r["step"] for r in rows] == ["0", "1", "2"]
    assert rows[0]["objective"] == "3.0" and json.loads(rows[0]["metric"]) == 3.0


def test_the_pareto_filter_and_the_table(run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["trials", str(run), "--curves", "--pareto", "--format", "json"]) == 0
    assert {r["trial"] for r in json.loads(capsys.readouterr().out)} == {2}  # the best trial is the front
    assert main(["trials", str(run), "--curves"]) == 0
    out = capsys.readouterr().out
    assert "intermediate results of" in out
    assert all(column in out for column in ("trial", "step", "objective", "metric"))
    assert "NaN" in out

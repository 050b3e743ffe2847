"""Every objective has a direction (nothing assumes maximize), and an objective
named in a dict metric must be there: a trial whose metric lacks it fails clearly."""

from __future__ import annotations

from pathlib import Path

import pytest

from ._experiment_helpers import deadline, make_experiment, read_trials


def objective_of(sample: dict) -> float:
    return sample["width"] * sample["scale"]


@pytest.fixture(scope="module")
def minimized(tmp_path_factory: pytest.TempPathFactory) -> Path:
    workdir = tmp_path_factory.mktemp("minimize") / "exp"
    with deadline(60):
        make_experiment(workdir, max_trials=10, direction="minimize").run()
    return workdir


def test_minimize_exports_the_lowest_objective_first(minimized: Path) -> None:
    values = sorted(t.objective for t in read_trials(minimized))
    top = make_experiment(minimized, max_trials=10, direction="minimize").export_top_models(3)
    assert [objective_of(s) for s in top] == values[:3]


def test_maximize_exports_the_highest_objective_first(tmp_path: Path) -> None:
    with deadline(60):
        experiment = make_experiment(tmp_path, max_trials=10, direction="maximize").run()
    values = sorted((t.objective for t in read_trials(tmp_path)), reverse=True)
    assert [objective_of(s) for s in experiment.export_top_models(3)] == values[:3]


def test_a_reloaded_experiment_keeps_the_runs_direction(minimized: Path) -> None:
    values = sorted(t.objective for t in read_trials(minimized))
    reloaded = make_experiment(minimized, max_trials=10, direction="maximize")  # its config disagrees with the run
    assert [objective_of(s) for s in reloaded.export_top_models(2)] == values[:2]


def test_the_run_summary_names_the_lowest_as_best(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with deadline(60):
        make_experiment(tmp_path, max_trials=6, direction="minimize").run()
    trials = read_trials(tmp_path)
    best = min(trials, key=lambda t: (t.objective, t.id))
    assert f"best default = {best.objective:.6g} (trial {best.id})" in capsys.readouterr().out


def test_objective_named_in_a_dict_metric(tmp_path: Path) -> None:
    with deadline(60):
        experiment = make_experiment(
            tmp_path, max_trials=5, metric="dict", objective="loss", direction="minimize"
        ).run()
    trials = read_trials(tmp_path)
    assert all(t.status == "succeeded" for t in trials)
    assert all(t.objective == -objective_of(t.sample) for t in trials)  # loss = -width*scale
    best = experiment.export_top_models(1)[0]
    assert objective_of(best) == max(objective_of(t.sample) for t in trials)


def test_a_metric_without_the_objective_fails_the_trial_clearly(tmp_path: Path) -> None:
    with deadline(60):
        experiment = make_experiment(tmp_path, max_trials=3, metric="loss_only", objective="acc").run()
    trials = read_trials(tmp_path)
    assert len(trials) == 3, "the run goes on past trials that lack the objective"
    for t in trials:
        assert t.status == "failed"
        assert t.objective is None
        assert "'acc'" in (t.error or "") and "loss" in (t.error or ""), t.error
    assert experiment.export_top_models(3) == []


def test_a_plain_number_with_a_named_objective_fails_the_trial_clearly(tmp_path: Path) -> None:
    with deadline(60):
        make_experiment(tmp_path, max_trials=2, metric="plain", objective="acc").run()
    for t in read_trials(tmp_path):
        assert t.status == "failed"
        assert "'acc'" in (t.error or "") and "plain number" in (t.error or ""), t.error

"""``export_top_models(k, formatter)`` on a finished, an interrupted and a reloaded
experiment (a new ``Experiment`` on the same workdir, never run)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from archsmith.experiment import Experiment, ExperimentError

from ._experiment_helpers import deadline, make_experiment, read_trials


def best_first(workdir: Path) -> list[dict]:
    succeeded = [t for t in read_trials(workdir) if t.status == "succeeded"]
    return [t.sample for t in sorted(succeeded, key=lambda t: (-t.objective, t.id))]  # type: ignore[operator]


def check_export(experiment: Experiment, expected: list[dict], k: int) -> None:
    samples = experiment.export_top_models(k, formatter="dict")
    assert samples == expected[:k]
    assert experiment.export_top_models(k) == samples  # "dict" is the default
    models = experiment.export_top_models(k, formatter="instance")
    assert len(models) == len(samples)
    for model, sample in zip(models, samples):
        assert isinstance(model, torch.nn.Module)
        assert type(model.fc) is torch.nn.Linear, "a plain PyTorch layer, no search types left"
        assert model.fc.out_features == sample["width"]
        assert model(torch.ones(1, 4)).shape == (1, sample["width"])


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> tuple[Experiment, Path]:
    workdir = tmp_path_factory.mktemp("export") / "exp"
    with deadline(60):
        experiment = make_experiment(workdir, max_trials=8, faults={1: "raise", 3: "nan"}).run()
    return experiment, workdir


def test_export_from_a_finished_run(finished: tuple[Experiment, Path]) -> None:
    experiment, workdir = finished
    expected = best_first(workdir)
    assert len(expected) == 6, "failed trials are never exported"
    check_export(experiment, expected, 3)
    check_export(experiment, expected, 1)
    assert experiment.export_top_models(50) == expected, "k beyond the succeeded trials gives all of them"


def test_export_from_a_reloaded_experiment(finished: tuple[Experiment, Path]) -> None:
    _, workdir = finished
    reloaded = make_experiment(workdir, max_trials=8)
    check_export(reloaded, best_first(workdir), 3)


def test_export_from_an_interrupted_run(tmp_path: Path) -> None:
    with deadline(60):
        experiment = make_experiment(tmp_path, max_trials=8, interrupt={5}).run()
    assert [t.status for t in read_trials(tmp_path)] == ["succeeded"] * 4 + ["waiting"]
    expected = best_first(tmp_path)
    check_export(experiment, expected, 3)
    assert experiment.export_top_models(8) == expected
    check_export(make_experiment(tmp_path, max_trials=8), expected, 2)


def test_export_with_an_unknown_formatter_is_a_clear_error(finished: tuple[Experiment, Path]) -> None:
    with pytest.raises(ExperimentError, match="formatter"):
        finished[0].export_top_models(1, formatter="json")


def test_export_before_any_run_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ExperimentError, match="no run"):
        make_experiment(tmp_path, max_trials=2).export_top_models(1)


@pytest.mark.parametrize("k", [-1, 1.5])
def test_export_with_a_bad_k_is_a_clear_error(finished: tuple[Experiment, Path], k: object) -> None:
    with pytest.raises(ExperimentError, match="k"):
        finished[0].export_top_models(k)  # type: ignore[arg-type]

"""``run(resume=True)``: finished trials are kept, unfinished ones re-run, the
strategy's state is restored and the run continues to the same (or a raised)
budget, with the samples an uninterrupted run would have drawn. (A driver killed
mid-run: test_resume_after_kill.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from archsmith.experiment import ExperimentError

from ._experiment_helpers import deadline, make_experiment, read_meta, read_trials, sample_key


def uninterrupted_samples(workdir: Path, max_trials: int, seed: int) -> list[dict]:
    with deadline(60):
        make_experiment(workdir, max_trials=max_trials, seed=seed).run()
    return [t.sample for t in read_trials(workdir)]


def test_resume_after_ctrl_c_continues_the_same_search(tmp_path: Path) -> None:
    expected = uninterrupted_samples(tmp_path / "uninterrupted", 8, seed=5)
    workdir = tmp_path / "exp"
    with deadline(60):
        make_experiment(workdir, max_trials=8, seed=5, interrupt={4}).run()
    before = read_trials(workdir)
    assert [t.status for t in before] == ["succeeded"] * 3 + ["waiting"]
    state = read_meta(workdir, "strategy_state")
    assert state is not None and "rng" in state, "the strategy's state is stored"

    with deadline(60):
        make_experiment(workdir, max_trials=8, seed=5).run(resume=True)
    after = read_trials(workdir)
    assert [t.id for t in after] == list(range(1, 9))
    assert all(t.status == "succeeded" for t in after)
    assert after[:3] == before[:3], "trials finished before the interrupt are kept as they were"
    assert after[3].sample == before[3].sample, "the unfinished trial re-ran with its own sample"
    assert [t.sample for t in after] == expected


def test_resume_with_a_raised_budget(tmp_path: Path) -> None:
    expected = uninterrupted_samples(tmp_path / "uninterrupted", 7, seed=2)
    workdir = tmp_path / "exp"
    with deadline(60):
        make_experiment(workdir, max_trials=4, seed=2).run()
    before = read_trials(workdir)
    assert len(before) == 4 and read_meta(workdir, "status") == "done"

    with deadline(60):
        make_experiment(workdir, max_trials=7, seed=2).run(resume=True)
    after = read_trials(workdir)
    assert [t.id for t in after] == list(range(1, 8))
    assert all(t.status == "succeeded" for t in after)
    assert after[:4] == before
    assert len({sample_key(t.sample) for t in after}) == 7
    assert [t.sample for t in after] == expected
    assert read_meta(workdir, "config")["max_trials"] == 7


def test_resume_of_a_finished_run_adds_nothing(tmp_path: Path) -> None:
    with deadline(60):
        make_experiment(tmp_path, max_trials=3).run()
    before = read_trials(tmp_path)
    with deadline(60):
        make_experiment(tmp_path, max_trials=3).run(resume=True)
    assert read_trials(tmp_path) == before


def test_resume_restores_dedup_state_until_the_space_is_exhausted(tmp_path: Path) -> None:
    with deadline(60):
        make_experiment(tmp_path, widths=(2, 3, 4), scales=(1.0, 2.0), max_trials=4).run()
    with deadline(60):
        make_experiment(tmp_path, widths=(2, 3, 4), scales=(1.0, 2.0), max_trials=None).run(resume=True)
    trials = read_trials(tmp_path)
    assert len(trials) == 6
    assert len({sample_key(t.sample) for t in trials}) == 6


def test_resume_against_another_space_is_refused(tmp_path: Path) -> None:
    with deadline(60):
        make_experiment(tmp_path, max_trials=2).run()
    before = read_trials(tmp_path)
    from archsmith import nn, strategy
    from archsmith.experiment import Experiment, ExperimentConfig

    class Other(nn.ModelSpace):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, nn.choice("depth", [1, 2]))

    other = Experiment(
        Other(),
        lambda model: 1.0,
        strategy.Random(),
        ExperimentConfig(max_trials=4, engine="inprocess", direction="maximize", workdir=tmp_path),
    )
    with pytest.raises(
        ExperimentError, match=r"cannot resume(.|\n)*labels: stored \['width', 'scale'\], now \['depth'\]"
    ):
        other.run(resume=True)
    assert read_trials(tmp_path) == before

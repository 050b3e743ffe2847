"""Resume is refused, with every difference listed, when the stored run searched
another space, objective, direction, seed or strategy; budget, concurrency,
engine and timeouts may change. ``warm_start`` is how to go on with another
strategy: the earlier run's finished trials are told to it, not re-run."""

from __future__ import annotations

from pathlib import Path

import pytest

from archsmith import strategy
from archsmith.experiment import ExperimentError

from ._experiment_helpers import count, deadline, make_experiment, read_meta, read_trials, sample_key

# (what changes, the make_experiment arguments that change it, the word the error must use)
CHANGES = [
    ("objective", {"objective": "acc", "metric": "dict"}, "objectives: stored ['default'], now ['acc']"),
    ("direction", {"direction": "minimize"}, "directions: stored ['maximize'], now ['minimize']"),
    ("seed", {"seed": 99}, "seed: stored 0, now 99"),
    ("strategy", {"strategy": strategy.RegularizedEvolution(population_size=3, sample_size=2)}, "strategy: stored"),
    ("candidates", {"widths": (2, 3, 4, 6)}, "decisions: stored"),
]


@pytest.mark.parametrize(("what", "change", "says"), CHANGES, ids=[c[0] for c in CHANGES])
def test_resume_with_another_search_is_refused_naming_the_difference(
    tmp_path: Path, what: str, change: dict, says: str
) -> None:
    with deadline(60):
        make_experiment(tmp_path, max_trials=3).run()
    before = read_trials(tmp_path)
    with pytest.raises(ExperimentError) as info:
        make_experiment(tmp_path, max_trials=6, **change).run(resume=True)
    message = str(info.value)
    assert says in message, message
    assert "warm_start=" in message, "the error says how to go on with another search"
    assert read_trials(tmp_path) == before, "a refused resume changes nothing"


def test_every_difference_is_listed_at_once(tmp_path: Path) -> None:
    with deadline(60):
        make_experiment(tmp_path, max_trials=3).run()
    with pytest.raises(ExperimentError) as info:
        make_experiment(tmp_path, max_trials=6, seed=4, direction="minimize", strategy=strategy.GridSearch()).run(
            resume=True
        )
    message = str(info.value)
    for key in ("directions:", "seed:", "strategy:"):
        assert key in message, message


def test_budget_concurrency_engine_and_timeouts_may_change(tmp_path: Path) -> None:
    with deadline(60):
        make_experiment(tmp_path, max_trials=3).run()
    with deadline(90):
        make_experiment(tmp_path, max_trials=6, engine="process", concurrency=2, trial_timeout=30).run(resume=True)
    trials = read_trials(tmp_path)
    assert count(trials, "succeeded") == 6 and len({sample_key(t.sample) for t in trials}) == 6
    config = read_meta(tmp_path, "config")
    assert config["engine"] == "process" and config["concurrency"] == 2 and config["max_trials"] == 6


def test_resume_without_a_seed_takes_the_stored_one(tmp_path: Path) -> None:
    with deadline(60):
        make_experiment(tmp_path, max_trials=3, seed=None).run()
    seed = read_meta(tmp_path, "seed")
    with deadline(60):
        make_experiment(tmp_path, max_trials=5, seed=None).run(resume=True)
    assert read_meta(tmp_path, "seed") == seed and len(read_trials(tmp_path)) == 5


def test_warm_start_tells_the_new_strategy_and_reruns_nothing(tmp_path: Path) -> None:
    first = tmp_path / "random"
    with deadline(60):
        make_experiment(first, max_trials=6).run()
    earlier = read_trials(first)
    evolution = strategy.RegularizedEvolution(population_size=4, sample_size=2)
    second = tmp_path / "evolution"
    with deadline(60):
        exp = make_experiment(second, max_trials=5, strategy=evolution, warm_start=first)
        exp.run()
    trials = read_trials(second)
    copied, new = trials[:6], trials[6:]
    assert [t.sample for t in copied] == [t.sample for t in earlier]
    assert [t.objective for t in copied] == [t.objective for t in earlier]
    assert all(t.started_at is None or t.worker.startswith("warm-start") for t in copied)
    assert len(new) == 5, "max_trials counts this run's own trials"
    seen = {sample_key(t.sample) for t in copied}
    assert not any(sample_key(t.sample) in seen for t in new), "a warm-started trial is never re-run"
    assert exp.export_top_models(1)[0] == max(trials, key=lambda t: t.objective).sample
    # The warm-started run resumes like any other.
    with deadline(60):
        make_experiment(second, max_trials=7, strategy=evolution, warm_start=first).run(resume=True)
    assert len(read_trials(second)) == 13


def test_warm_start_from_another_space_or_objective_is_refused(tmp_path: Path) -> None:
    first = tmp_path / "first"
    with deadline(60):
        make_experiment(first, max_trials=3).run()
    with pytest.raises(ExperimentError, match=r"warm_start=.*another space"):
        make_experiment(tmp_path / "a", max_trials=3, scales=(1.0, 5.0), warm_start=first).run()
    with pytest.raises(ExperimentError, match=r"warm_start=.*'acc'"):
        make_experiment(tmp_path / "b", max_trials=3, objective="acc", metric="dict", warm_start=first).run()
    with pytest.raises(ExperimentError, match=r"warm_start: .*not an archsmith experiment"):
        make_experiment(tmp_path / "c", max_trials=3, warm_start=tmp_path / "nowhere").run()
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists(), "a refused run leaves nothing"


def test_warm_started_grid_search_skips_what_the_earlier_run_tried(tmp_path: Path) -> None:
    first = tmp_path / "random"
    with deadline(60):
        make_experiment(first, max_trials=5).run()
    with deadline(60):
        make_experiment(tmp_path / "grid", strategy=strategy.GridSearch(), warm_start=first).run()
    trials = read_trials(tmp_path / "grid")
    assert len(trials) == 16, "the grid completes the space: 5 told, 11 run"
    assert len({sample_key(t.sample) for t in trials}) == 16

"""Same seed, same sequence of samples (in-process engine); another seed, another one."""

from __future__ import annotations

from pathlib import Path

from archsmith import strategy

from ._experiment_helpers import deadline, make_experiment, read_meta, read_trials


def samples(workdir: Path, seed: int | None, **kwargs: object) -> list[dict]:
    with deadline(60):
        make_experiment(workdir, max_trials=10, seed=seed, **kwargs).run()  # type: ignore[arg-type]
    return [t.sample for t in read_trials(workdir)]


def test_same_seed_same_samples(tmp_path: Path) -> None:
    first = samples(tmp_path / "a", 11)
    assert samples(tmp_path / "b", 11) == first
    assert samples(tmp_path / "c", 12) != first


def test_same_seed_same_samples_without_dedup(tmp_path: Path) -> None:
    first = samples(tmp_path / "a", 4, strategy=strategy.Random(dedup=False))
    assert samples(tmp_path / "b", 4, strategy=strategy.Random(dedup=False)) == first


def test_an_unseeded_run_records_its_seed_and_replays_from_it(tmp_path: Path) -> None:
    first = samples(tmp_path / "a", None)
    seed = read_meta(tmp_path / "a", "seed")
    assert isinstance(seed, int)
    assert samples(tmp_path / "b", seed) == first

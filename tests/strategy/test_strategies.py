"""Every registered strategy: sanity, determinism, resume, constraints,
direction and failures (a newly registered strategy is tested for free)."""

from __future__ import annotations

import pytest

from archsmith.space import SpaceError
from archsmith.strategy import STRATEGIES, FinishedTrial, sample_key

from ._helpers import (
    RANDOM_ONLY,
    constrained_space,
    continuous_space,
    drive,
    json_round_trip,
    make,
    mixed_space,
    objective,
)

NAMES = sorted(STRATEGIES)
OPTIMUM = {"maximize": 19.0, "minimize": 0.0}
#: Trials a learning strategy gets to find the optimum of ``mixed_space`` (480 samples).
BUDGET = 200


@pytest.mark.parametrize("name", NAMES)
def test_proposals_are_valid_samples(name: str) -> None:
    strategy = make(name)
    strategy.attach(mixed_space(), seed=0)
    proposals = drive(strategy, 30)
    assert len(proposals) == 30
    for sample in proposals:
        assert strategy.space.check(sample) == []


@pytest.mark.parametrize("name", NAMES)
def test_continuous_space_is_supported_or_refused_before_the_first_trial(name: str) -> None:
    strategy = make(name)
    try:
        strategy.attach(continuous_space(), seed=0)
    except SpaceError as e:
        assert "dropout" in str(e)
        return
    for sample in drive(strategy, 10, f=lambda s: s["dropout"]):
        assert strategy.space.check(sample) == []


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_proposals(name: str) -> None:
    runs = []
    for _ in range(2):
        strategy = make(name)
        strategy.attach(mixed_space(), seed=3, direction="minimize")
        runs.append(drive(strategy, 25, fail_every=7))
    assert runs[0] == runs[1]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("direction", ["maximize", "minimize"])
def test_resume_from_json_state_continues_identically(name: str, direction: str) -> None:
    whole = make(name)
    whole.attach(mixed_space(), seed=5, direction=direction)  # type: ignore[arg-type]
    expected = drive(whole, 30, fail_every=6)

    first = make(name)
    first.attach(mixed_space(), seed=5, direction=direction)  # type: ignore[arg-type]
    head = drive(first, 13, fail_every=6)
    resumed = make(name)
    resumed.attach(mixed_space(), seed=5, direction=direction)  # type: ignore[arg-type]
    resumed.load_state_dict(json_round_trip(first.state_dict()))
    resumed.restore_history(head)  # the experiment hands back every stored trial
    tail = drive(resumed, 17, fail_every=6, start=13)
    assert head + tail == expected


@pytest.mark.parametrize("name", NAMES)
def test_resume_with_trials_in_flight(name: str) -> None:
    """The experiment saves the state after each ask, before results come in."""

    def run(split: bool) -> list:
        strategy = make(name)
        strategy.attach(mixed_space(), seed=1)
        asked = [strategy.ask() for _ in range(3)]
        if split:
            fresh = make(name)
            fresh.attach(mixed_space(), seed=1)
            fresh.load_state_dict(json_round_trip(strategy.state_dict()))
            fresh.restore_history(asked)
            strategy = fresh
        for i, sample in enumerate(asked):
            strategy.tell(FinishedTrial(i, sample, "succeeded", objective(sample)))  # type: ignore[arg-type]
        return asked + drive(strategy, 12, start=3)

    assert run(split=True) == run(split=False)


@pytest.mark.parametrize("name", NAMES)
def test_constraints_are_never_violated(name: str) -> None:
    strategy = make(name)
    strategy.attach(constrained_space(), seed=0)
    proposals = drive(strategy, 40, f=lambda s: float(s["a"] + s["b"] + s["c"]))
    assert proposals
    for sample in proposals:
        assert sample["a"] < sample["b"] and sample["c"] <= sample["a"]


@pytest.mark.parametrize("name", [n for n in NAMES if n not in RANDOM_ONLY])
@pytest.mark.parametrize("direction", ["maximize", "minimize"])
def test_direction_is_respected(name: str, direction: str) -> None:
    strategy = make(name)
    strategy.attach(mixed_space(), seed=0, direction=direction)  # type: ignore[arg-type]
    budget = 480 if name == "grid" else BUDGET
    for i in range(budget):
        sample = strategy.ask()
        assert sample is not None
        if objective(sample) == OPTIMUM[direction]:
            return
        strategy.tell(FinishedTrial(i, sample, "succeeded", objective(sample)))
    pytest.fail(f"{name} did not find the {direction[:3]}imum of objective() in {budget} trials")


@pytest.mark.parametrize("name", NAMES)
def test_failed_trials_are_tolerated(name: str) -> None:
    strategy = make(name)
    strategy.attach(mixed_space(), seed=0)
    assert len(drive(strategy, 20, fail_every=1)) == 20  # every trial fails
    assert len(drive(strategy, 20, fail_every=2, start=20)) == 20


@pytest.mark.parametrize("name", NAMES)
def test_a_finite_space_ends_cleanly_if_the_strategy_says_so(name: str) -> None:
    strategy = make(name)
    space = constrained_space()
    strategy.attach(space, seed=0)
    if not strategy.can_exhaust(space):
        pytest.skip(f"{name} does not end by itself")
    proposals = drive(strategy, 1000, f=lambda s: float(s["a"]))
    keys = {tuple(sorted(s.items())) for s in proposals}
    assert len(keys) == len(proposals) == space.size()
    assert strategy.is_exhausted() and strategy.ask() is None


@pytest.mark.parametrize("name", NAMES)
def test_trials_of_an_earlier_run_are_told_without_being_asked(name: str) -> None:
    """Warm start: the experiment hands back an earlier run's trials (history, then
    ``tell``) that this strategy never proposed; it learns from them or ignores
    them, never fails, and a deduplicating one does not propose them again."""
    earlier = make("random")
    earlier.attach(mixed_space(), seed=11)
    foreign = drive(earlier, 25, fail_every=5)
    strategy = make(name)
    strategy.attach(mixed_space(), seed=3)
    strategy.restore_history(foreign)
    for i, sample in enumerate(foreign):
        failed = i % 5 == 4
        strategy.tell(
            FinishedTrial(i, sample, "failed" if failed else "succeeded", None if failed else objective(sample))
        )
    strategy.tell(FinishedTrial(99, {"op": "nope"}, "succeeded", 1.0))  # not even a sample of this space
    proposals = drive(strategy, 30, start=100)
    assert len(proposals) == 30
    if getattr(strategy, "dedup", False):
        known = {sample_key(s) for s in foreign}
        assert not known & {sample_key(s) for s in proposals}


def test_evolution_learns_from_trials_it_never_proposed() -> None:
    strategy = make("regularized_evolution")
    strategy.attach(mixed_space(), seed=0)
    best = {"op": "none", "inputs": [1, 2, 3], "pair": ["b", "c"], "depth": 8}
    strategy.tell(FinishedTrial(0, best, "succeeded", objective(best)))
    assert strategy.state_dict()["population"] == [[best, 19.0]]

"""Spaces, objectives and a driver for strategy tests (no engine needed)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from archsmith.space import CategoricalMultiple, Constraint, Numerical, Sample, Space, choice, uniform
from archsmith.strategy import STRATEGIES, FinishedTrial, Strategy

#: Small settings per registered strategy; any other one is built with ``cls()``.
TEST_KWARGS: dict[str, dict[str, Any]] = {
    "regularized_evolution": {"population_size": 8, "sample_size": 3, "mutation_prob": 0.3},
    "policy_rl": {"samples_per_update": 4, "hidden_size": 8},
}
#: Strategies that only sample at random: exempt from "finds the optimum".
RANDOM_ONLY = {"random"}


def make(name: str, **overrides: Any) -> Strategy:
    return STRATEGIES[name](**{**TEST_KWARGS.get(name, {}), **overrides})


def mixed_space() -> Space:
    """Discrete, every kind of leaf: 4 * 8 * 3 * 5 = 480 samples."""
    return Space(
        [
            choice("op", ["conv", "pool", "skip", "none"]),
            CategoricalMultiple([1, 2, 3], label="inputs"),
            CategoricalMultiple(["a", "b", "c"], n_chosen=2, label="pair"),
            Numerical(0, 8, quantize=2, label="depth"),
        ]
    )


def continuous_space() -> Space:
    return Space([choice("op", ["conv", "pool"]), uniform("dropout", 0.0, 0.5)])


def constrained_space() -> Space:
    a, b = choice("a", list(range(6))), choice("b", list(range(6)))
    return Space(
        [a, b, choice("c", [0, 1])],
        constraints=[Constraint(a < b), Constraint(lambda s: s["c"] <= s["a"], labels=["a", "c"])],
    )


def objective(sample: Sample) -> float:
    """Separable and unique-optimum on ``mixed_space``: max 3+6+2+8 = 19 at
    op=none, inputs=[1,2,3], pair=[b,c], depth=8; min 0 at op=conv, inputs=[], pair=[a,b], depth=0."""
    op = ["conv", "pool", "skip", "none"].index(sample["op"])
    pair = {"a": 0, "b": 1, "c": 2}
    return float(op + sum(sample["inputs"]) + sum(pair[x] for x in sample["pair"]) - 1 + sample["depth"])


def drive(
    strategy: Strategy,
    steps: int,
    f: Callable[[Sample], float] = objective,
    fail_every: int | None = None,
    start: int = 0,
) -> list[Sample]:
    """Ask/tell ``steps`` times (stopping early at ``None``); every
    ``fail_every``-th trial fails. Returns the proposals."""
    proposals = []
    for i in range(start, start + steps):
        sample = strategy.ask()
        if sample is None:
            break
        sample = strategy.space.validate(sample)
        proposals.append(sample)
        if fail_every and i % fail_every == fail_every - 1:
            strategy.tell(FinishedTrial(i, sample, "failed", None))
        else:
            strategy.tell(FinishedTrial(i, sample, "succeeded", f(sample)))
    return proposals


def json_round_trip(state: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(state, allow_nan=False))

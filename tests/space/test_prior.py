"""``prior=`` on choices: validated, and what random sampling draws by."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from typing import Any

import pytest

from archsmith.space import Categorical, Space, SpaceError, choice

PRIOR = [0.1, 0.6, 0.3]
DRAWS = 20_000


def assert_follows(draws: Sequence[Any], values: Sequence[Any], prior: Sequence[float]) -> None:
    """Every value's frequency within 1.5% (absolute) of its prior: at 20,000 draws
    that is over 4 standard deviations, yet far below the 23% a uniform draw of the
    values above would miss by."""
    counts = Counter(draws)
    for value, p in zip(values, prior):
        assert abs(counts[value] / len(draws) - p) < 0.015, (value, counts[value] / len(draws), p)


def test_space_random_draws_by_the_prior() -> None:
    space = Space([choice("op", ["a", "b", "c"], prior=PRIOR), choice("free", [1, 2])])
    rng = random.Random(0)
    samples = [space.random(rng=rng) for _ in range(DRAWS)]
    assert_follows([s["op"] for s in samples], ["a", "b", "c"], PRIOR)
    assert_follows([s["free"] for s in samples], [1, 2], [0.5, 0.5])


def test_a_zero_probability_is_never_drawn() -> None:
    leaf = Categorical([1, 2, 3], label="never_3", prior=[0.5, 0.5, 0.0])
    rng = random.Random(1)
    assert {leaf.random(rng) for _ in range(2000)} == {1, 2}


@pytest.mark.parametrize(
    ("prior", "match"),
    [
        ([0.5, 0.5], r"choice 'bad_prior': prior has 2 probabilities for 3 candidates; give one per candidate"),
        ([0.5, 0.7, -0.2], r"choice 'bad_prior': prior .* negative .*\[0, 1\]"),
        ([0.2, 0.2, 0.2], r"choice 'bad_prior': prior .* sums to 0.6.*, not 1; divide each by the sum"),
        ([0.5, 0.5, 1e-5], r"choice 'bad_prior': prior .* not 1"),
        (["a", 0.5, 0.5], r"choice 'bad_prior': prior must be a list of numbers"),
        ("abc", r"choice 'bad_prior': prior must be a list of probabilities"),
    ],
)
def test_a_bad_prior_names_the_label_and_the_fix(prior: Any, match: str) -> None:
    with pytest.raises(SpaceError, match=match):
        choice("bad_prior", [1, 2, 3], prior=prior)


def test_a_sum_within_1e_6_of_1_is_a_prior() -> None:
    assert Categorical([1, 2, 3], label="close", prior=[0.2, 0.3, 0.5 + 5e-7]).weights is not None


def test_weights_and_prior_together_are_refused() -> None:
    with pytest.raises(SpaceError, match=r"choice 'both': give weights or prior, not both"):
        Categorical([1, 2], label="both", weights=[1, 1], prior=[0.5, 0.5])

"""Every registered strategy proposes only architectures that meet a cost
constraint, over thousands of proposals, and a constraint that leaves nothing ends
the search with an error naming it and the smallest cost seen (never a hang)."""

from __future__ import annotations

import pytest
import torch

import archsmith.nn as nn
from archsmith.profiler import FlopsProfiler, NumParamsProfiler
from archsmith.space import Space, SpaceError
from archsmith.strategy import STRATEGIES

from ._helpers import drive, make

NAMES = sorted(STRATEGIES)
#: Proposals per strategy: the model-based ones learn from every result, so fewer.
PROPOSALS = {"optuna": 800, "tpe": 800, "nsga2": 800, "policy_rl": 1000}


class Widths(nn.ModelSpace):
    """A three-layer MLP: 4 widths x 4 widths x 3 activations x 4 dropouts (192 architectures)."""

    def __init__(self) -> None:
        super().__init__()
        w1 = nn.ValueChoice([4, 8, 16, 32], label="w1")
        w2 = nn.ValueChoice([4, 8, 16, 32], label="w2")
        self.fc1 = nn.Linear(8, w1)
        self.act = nn.LayerChoice([torch.nn.ReLU(), torch.nn.Tanh(), torch.nn.GELU()], label="act")
        self.fc2 = nn.Linear(w1, w2)
        self.drop = nn.Dropout(nn.ValueChoice([0.0, 0.1, 0.2, 0.3], label="p"))
        self.out = nn.Linear(w2, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.drop(self.fc2(self.act(self.fc1(x)))))


@pytest.fixture(scope="module")
def profilers() -> tuple[Widths, NumParamsProfiler, FlopsProfiler]:
    space = Widths()
    return space, NumParamsProfiler(space), FlopsProfiler(space, torch.zeros(1, 8))


def widest(sample: dict) -> float:
    """An objective that pulls every strategy towards the constraint's bound."""
    return float(sample["w1"] * sample["w2"])


@pytest.mark.parametrize("name", NAMES)
def test_no_proposal_breaks_a_cost_constraint(name: str, profilers: tuple) -> None:
    space, params, flops = profilers
    bound = 400.0
    constraint = params <= bound
    strategy = make(name, dedup=False) if name != "grid" else make(name)
    strategy.attach(Space(space.search_space.values(), [constraint]), seed=1, direction="maximize")
    proposals = drive(strategy, PROPOSALS.get(name, 3000), f=widest)
    assert len(proposals) >= (40 if name == "grid" else PROPOSALS.get(name, 3000))  # grid: each point once
    costs = [params.profile(s) for s in proposals]
    assert max(costs) <= bound
    assert min(costs) < bound / 2  # the bound is met, not by proposing one architecture forever
    assert flops.profile(proposals[-1]) > 0


@pytest.mark.parametrize("name", NAMES)
def test_an_unsatisfiable_constraint_ends_with_the_smallest_cost(name: str, profilers: tuple) -> None:
    space, params, _ = profilers
    smallest = min(params.profile(s) for s in space.search_space.grid())
    constraint = params < smallest
    strategy = make(name)
    with pytest.raises(SpaceError) as caught:  # at attach where the strategy counts the space, else at ask
        strategy.attach(Space(space.search_space.values(), [constraint]), seed=0)
        drive(strategy, 3)
    text = str(caught.value)
    assert f"params < {smallest:.4g}" in text
    assert f"the smallest params seen was {smallest:.4g}" in text
    assert "Loosen them" in text


def test_a_range_and_its_errors(profilers: tuple) -> None:
    space, params, _ = profilers
    band = (params >= 200) & (params <= 400)
    assert band.name == "params >= 200 and params <= 400"
    strategy = make("random")
    strategy.attach(Space(space.search_space.values(), [band]), seed=0)
    assert all(200 <= params.profile(s) <= 400 for s in drive(strategy, 200, f=widest))
    with pytest.raises(ValueError, match="chained comparison"):
        bool(200 <= params <= 400)
    with pytest.raises(ValueError, match="low bound is above"):
        params.between(400, 200)
    with pytest.raises(ValueError, match="must be a number"):
        params <= "300"
    other = NumParamsProfiler(space)
    with pytest.raises(ValueError, match="same p"):
        (params >= 1) & (other <= 2)

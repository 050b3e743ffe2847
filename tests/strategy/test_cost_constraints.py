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


def test_optuna_learns_how_far_a_proposal_broke_the_constraint(profilers: tuple) -> None:
    space, params, _ = profilers
    strategy = make("tpe")
    strategy.attach(Space(space.search_space.values(), [params <= 200]), seed=0, direction="maximize")
    drive(strategy, 30, f=widest)
    pruned = [t for t in strategy._study.trials if t.state.name == "PRUNED"]
    assert pruned, "a constraint this tight rejects some of TPE's proposals"
    for trial in pruned:
        [(name, violation)] = trial.constraints.items()
        assert name == "params <= 200"
        cost = params.profile(strategy._to_sample(trial.params))
        assert violation == pytest.approx((cost - 200) / 200, rel=1e-6)


def test_a_cost_constraint_on_a_large_space_is_not_enumerated() -> None:
    class Wide(nn.ModelSpace):
        """12 width choices of 4: 16.7M architectures, far past what counting may enumerate."""

        def __init__(self) -> None:
            super().__init__()
            self.layers = nn.Sequential(*[nn.Linear(4, nn.ValueChoice([1, 2, 3, 4], label=f"w{i}")) for i in range(12)])

    space = Wide()
    params = NumParamsProfiler(space)
    constrained = Space(space.search_space.values(), [params <= 100])
    with pytest.raises(SpaceError, match="more than 16,384 to enumerate"):
        constrained.size()
    strategy = make("regularized_evolution")
    strategy.attach(constrained, seed=0)  # counting gives up at once: the space is searched, not counted
    assert all(params.profile(s) <= 100 for s in drive(strategy, 50, f=lambda s: 0.0))

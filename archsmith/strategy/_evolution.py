"""``RegularizedEvolution`` (Real et al., 2019): tournament selection, mutation
and aging, as three small functions over a population of ``(sample, value)``."""

from __future__ import annotations

import math
import random
from typing import Any, Literal

from archsmith.space import CategoricalMultiple, Leaf, Numerical, Sample, Space, SpaceError, pareto_ranks

from ._base import Directions, FinishedTrial, Strategy
from ._dedup import Dedup, countable_size
from ._registry import register_strategy

#: How many mutations ``ask`` tries to find a new sample that meets the constraints.
MUTATION_TRIES = 100

Member = tuple[Sample, Any]  # a sample and its objective, or objectives (None: a failed trial, ranked worst)


def can_mutate(leaf: Leaf) -> bool:
    """Whether ``leaf`` has a value other than any given one."""
    return leaf.size() > 1


def mutate_value(leaf: Leaf, value: Any, rng: random.Random) -> Any:
    """A value of ``leaf`` that is always different from ``value``."""
    if isinstance(leaf, CategoricalMultiple):
        n = len(leaf.values)
        chosen = {i for i, v in enumerate(leaf.values) if any(type(v) is type(x) and v == x for x in value)}
        if leaf.n_chosen is None:  # flip one candidate in or out
            chosen ^= {rng.randrange(n)}
        else:  # swap one chosen candidate for one left out
            left_out = [i for i in range(n) if i not in chosen]
            chosen = (chosen - {rng.choice(sorted(chosen))}) | {rng.choice(left_out)}
        return [leaf.values[i] for i in sorted(chosen)]
    if isinstance(leaf, Numerical) and not leaf.is_discrete:
        while True:
            new = leaf.random(rng)
            if new != value:
                return new
    if isinstance(leaf, Numerical):
        assert leaf.quantize is not None
        n, current = int(leaf.size()), round((value - leaf.low) / leaf.quantize)
        k = rng.randrange(n - 1)
        return leaf.canonical(leaf.low + (k + (k >= current)) * leaf.quantize)
    grid = leaf.grid()  # Categorical
    current = leaf.index_of(value)  # type: ignore[attr-defined]
    weights = getattr(leaf, "weights", None)
    if weights is not None:  # another value, drawn by the prior
        others = [i for i in range(len(grid)) if i != current and weights[i] > 0]
        if not others:  # the prior allows no other value
            return value
        return grid[rng.choices(others, [weights[i] for i in others])[0]]
    k = rng.randrange(len(grid) - 1)
    return grid[k + (k >= current)]


def mutate(space: Space, parent: Sample, prob: float, rng: random.Random) -> Sample:
    """``parent`` with each mutable gene its architecture uses changed with
    probability ``prob``, and at least one changed (an unused gene would change
    nothing)."""
    used = space.active_labels(parent)
    genes = [label for label, leaf in space.items() if can_mutate(leaf) and label in used]
    chosen = [label for label in genes if rng.random() < prob] or [rng.choice(genes)]
    child = dict(parent)
    for label in chosen:
        child[label] = mutate_value(space[label], parent[label], rng)
    return child


def crossover(first: Sample, second: Sample, rng: random.Random) -> Sample:
    """Uniform crossover: each gene from either parent."""
    return {label: (first if rng.random() < 0.5 else second)[label] for label in first}


def tournament(population: list[Member], sample_size: int, better: Any, rng: random.Random) -> Sample:
    """The best of ``sample_size`` members drawn at random (failed ones rank last)."""
    contestants = rng.sample(population, min(sample_size, len(population)))
    best = contestants[0]
    for member in contestants[1:]:
        if best[1] is None or (member[1] is not None and better(member[1], best[1])):
            best = member
    return best[0]


def pareto_tournament(population: list[Member], sample_size: int, directions: Any, rng: random.Random) -> Sample:
    """Multi-objective tournament (NSGA-II's crowded comparison): of ``sample_size``
    members drawn at random, the one on the best Pareto front of the population,
    the least crowded on ties; failed members rank last."""
    scored = [i for i, (_, values) in enumerate(population) if values is not None]
    ranks = pareto_ranks([population[i][1] for i in scored], directions)  # type: ignore[misc]
    key = dict(zip(scored, ranks))
    contestants = rng.sample(range(len(population)), min(sample_size, len(population)))
    return population[min(contestants, key=lambda i: key.get(i, (math.inf, 0.0)))][0]


def age(population: list[Member], newcomer: Member, size: int) -> list[Member]:
    """The population with ``newcomer`` added and its oldest members removed."""
    return [*population, newcomer][-size:]


@register_strategy("regularized_evolution")
class RegularizedEvolution(Dedup, Strategy):
    """Regularized (aging) evolution.

    Random samples until ``population_size`` trials are in (or asked); then each
    proposal mutates the winner of a tournament among ``sample_size`` random
    members (with ``crossover``, of two winners crossed over first). A mutated gene
    always takes a different value, and at least one gene mutates. Each finished
    trial joins the population and the oldest leaves, also a trial it never
    proposed (an earlier run's, when an experiment warm-starts). With several objectives the
    tournament is won by Pareto rank, then crowding distance (as in NSGA-II).
    ``on_failure="ignore"``
    drops failed trials; ``"worst"`` keeps them, ranked below every success. With
    ``dedup`` no architecture is proposed twice while an unseen one can be found,
    and a finite space ends the search once every architecture was proposed. The
    state holds the population and the proposals in flight: bounded, however long
    the run.

    >>> from archsmith.space import Space, choice
    >>> strategy = RegularizedEvolution(population_size=2, sample_size=2)
    >>> strategy.attach(Space([choice("a", [1, 2, 3])]), seed=0)
    >>> sorted(strategy.ask()["a"] for _ in range(3)), strategy.ask()
    ([1, 2, 3], None)
    """

    multi_objective = True
    honours_prior = True  # the initial population samples by it, mutations draw by it

    def __init__(
        self,
        population_size: int = 100,
        sample_size: int = 25,
        mutation_prob: float = 0.05,
        crossover: bool = False,
        dedup: bool = True,
        on_failure: Literal["ignore", "worst"] = "ignore",
    ) -> None:
        if isinstance(population_size, bool) or not isinstance(population_size, int) or population_size < 1:
            raise SpaceError(f"population_size must be a positive integer, got {population_size!r}")
        if isinstance(sample_size, bool) or not isinstance(sample_size, int) or not 1 <= sample_size:
            raise SpaceError(f"sample_size must be a positive integer, got {sample_size!r}")
        if not 0.0 <= mutation_prob <= 1.0:
            raise SpaceError(f"mutation_prob must be in [0, 1], got {mutation_prob!r}")
        if on_failure not in ("ignore", "worst"):
            raise SpaceError(f"on_failure must be 'ignore' or 'worst', got {on_failure!r}")
        self.population_size, self.sample_size = population_size, min(sample_size, population_size)
        self.mutation_prob, self.crossover, self.dedup, self.on_failure = mutation_prob, crossover, dedup, on_failure
        self._population: list[Member] = []
        self._pending: list[str] = []  # architecture keys asked and not told yet
        self._forget(math.inf)

    def attach(self, space: Space, *, seed: int, direction: Directions = "maximize") -> None:
        super().attach(space, seed=seed, direction=direction)
        self._population, self._pending = [], []
        self._forget(countable_size(space))

    # Proposing --------------------------------------------------------------------
    def _random(self) -> Sample:
        return self.space.random(rng=self.rng)

    def _winner(self) -> Sample:
        if self.is_multi_objective:
            return pareto_tournament(self._population, self.sample_size, self.directions, self.rng)
        return tournament(self._population, self.sample_size, self.better, self.rng)

    def _child(self) -> Sample:
        parent = self._winner()
        if self.crossover and len(self._population) > 1:
            other = self._winner()
            parent = crossover(parent, other, self.rng)
        return mutate(self.space, parent, self.mutation_prob, self.rng)

    def _propose(self) -> Sample | None:
        filling = len(self._population) + len(self._pending) < self.population_size or not self._population
        if filling or len(self.space) == 0 or not any(can_mutate(leaf) for leaf in self.space.values()):
            make = self._random
        else:
            make = self._child
        for _ in range(MUTATION_TRIES):
            sample = make()
            if self.space.satisfies(sample) and self._is_new(sample):
                return sample
        for _ in range(MUTATION_TRIES):  # stuck around seen samples: a random unseen one
            sample = self._random()
            if self._is_new(sample):
                return sample
        return next(self._unseen(), None)

    def ask(self) -> Sample | None:
        if self.is_exhausted():
            return None
        sample = self._propose()
        if sample is not None:
            self._pending.append(self.space.architecture_key(sample))
            self._remember(sample)
        return sample

    def tell(self, trial: FinishedTrial) -> None:
        key = self.space.architecture_key(trial.sample)
        if key in self._pending:
            self._pending.remove(key)
        elif "" in self._pending:  # in flight when an older state (a bare count) was saved
            self._pending.remove("")
        values = trial.objective_values() if trial.status == "succeeded" else None
        if values is None and self.on_failure == "ignore":
            return
        value: Any = None if values is None else (list(values) if self.is_multi_objective else values[0])
        self._population = age(self._population, (dict(trial.sample), value), self.population_size)

    # State ------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        population = [[sample, value] for sample, value in self._population]
        return {**super().state_dict(), "population": population, "pending": list(self._pending)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self._population = [(dict(sample), value) for sample, value in state["population"]]
        pending = state["pending"]
        self._pending = [""] * int(pending) if isinstance(pending, int) else [str(key) for key in pending]
        self._load_seen(state)

    def __repr__(self) -> str:
        return (
            f"RegularizedEvolution(population_size={self.population_size}, sample_size={self.sample_size}, "
            f"mutation_prob={self.mutation_prob}, crossover={self.crossover}, dedup={self.dedup}, "
            f"on_failure={self.on_failure!r})"
        )

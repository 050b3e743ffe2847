"""``PolicyBasedRL``: an ENAS-style LSTM controller trained by REINFORCE.

Each decision of the flat space becomes one or more *steps*; at each step the
controller's LSTM cell emits logits for that step's options (one softmax head
per step), and the chosen option is fed back as the next step's input:

- ``Categorical``: one step over its candidates;
- ``CategoricalMultiple`` with any number chosen: one Bernoulli step (a two-way
  head) per candidate; with ``n_chosen=k``: ``k`` steps picking candidate indices
  in increasing order, so a subset has exactly one sequence;
- ``Numerical``: one step over a discretisation: every grid point of a quantized
  number with at most ``2**granularity - 1`` of them, else the ``2**granularity - 1``
  quantiles of :meth:`Space.grid` (snapped to the grid if quantized).
"""

from __future__ import annotations

import base64
import io
import math
import random
from typing import Any, Literal

import torch

from archsmith.space import Categorical, CategoricalMultiple, Leaf, Sample, SampleError, Space, SpaceError

from ._base import Directions, FinishedTrial, Strategy
from ._dedup import Dedup, countable_size
from ._registry import register_strategy

#: How many policy samples ``ask`` draws to find one that is new and meets the
#: constraints before it falls back to as many random samples.
SAMPLING_TRIES = 20


def quantiles(leaf: Any, granularity: int) -> list[float]:
    """The ``2**granularity - 1`` quantiles of a numerical leaf's prior (as
    :meth:`Space.grid` gives for a continuous leaf)."""
    parts = 2**granularity
    if leaf.log:
        low, high = math.log(leaf.low), math.log(leaf.high)
        return [math.exp(low + k / parts * (high - low)) for k in range(1, parts)]
    return [leaf.low + k / parts * (leaf.high - leaf.low) for k in range(1, parts)]


class Decision:
    """One leaf as a sequence of controller steps: ``sizes`` (options per step),
    ``allowed`` (the options open at a step given the earlier ones), ``decode``
    (steps -> value) and ``encode`` (value -> steps)."""

    def __init__(self, leaf: Leaf, granularity: int) -> None:
        self.leaf = leaf
        if isinstance(leaf, Categorical):
            self.options: list[Any] = list(leaf.values)
            self.sizes = [len(self.options)]
        elif isinstance(leaf, CategoricalMultiple):
            n = len(leaf.values)
            self.sizes = [2] * n if leaf.n_chosen is None else [n] * leaf.n_chosen
        else:
            grid = leaf.grid() if leaf.is_discrete and leaf.size() < 2**granularity else quantiles(leaf, granularity)
            self.options = list(dict.fromkeys(leaf.canonical(x) for x in grid))
            self.sizes = [len(self.options)]

    def allowed(self, step: int, earlier: list[int]) -> range:
        leaf = self.leaf
        if isinstance(leaf, CategoricalMultiple) and leaf.n_chosen is not None:
            low = earlier[-1] + 1 if earlier else 0
            return range(low, len(leaf.values) - (leaf.n_chosen - step) + 1)
        return range(self.sizes[step])

    def decode(self, steps: list[int]) -> Any:
        leaf = self.leaf
        if isinstance(leaf, CategoricalMultiple):
            if leaf.n_chosen is None:
                return [v for v, bit in zip(leaf.values, steps) if bit]
            return [leaf.values[i] for i in steps]
        return self.options[steps[0]]

    def encode(self, value: Any) -> list[int]:
        leaf = self.leaf
        if isinstance(leaf, CategoricalMultiple):
            chosen = [i for i, v in enumerate(leaf.values) if any(type(v) is type(x) and v == x for x in value)]
            return [int(i in chosen) for i in range(len(leaf.values))] if leaf.n_chosen is None else chosen
        if isinstance(leaf, Categorical):
            return [leaf.index_of(value) or 0]
        return [min(range(len(self.options)), key=lambda i: abs(self.options[i] - value))]


def draw(rng: random.Random, probabilities: torch.Tensor) -> int:
    """An option drawn with ``rng`` from ``probabilities`` (so a Python rng, which
    a strategy checkpoints as JSON, decides every sample)."""
    u, total = rng.random(), 0.0
    probs = probabilities.tolist()
    for i, p in enumerate(probs):
        total += p
        if u < total:
            return i
    return max(i for i, p in enumerate(probs) if p > 0)


class Controller(torch.nn.Module):
    """An LSTM cell stepping over the decisions, one softmax head per step."""

    def __init__(self, sizes: list[int], hidden_size: int) -> None:
        super().__init__()
        self.start = torch.nn.Parameter(torch.zeros(1, hidden_size))
        self.embeddings = torch.nn.ModuleList(torch.nn.Embedding(n, hidden_size) for n in sizes)
        self.cell = torch.nn.LSTMCell(hidden_size, hidden_size)
        self.heads = torch.nn.ModuleList(torch.nn.Linear(hidden_size, n) for n in sizes)

    def run(self, decisions: list[Decision], choose: Any) -> tuple[list[list[int]], torch.Tensor, torch.Tensor]:
        """Step through ``decisions``; ``choose(step_index, probabilities)`` picks
        each option. Returns the steps per decision, their log-probability and the
        policy's entropy along the way."""
        inputs, state = self.start, None
        log_prob, entropy, index = torch.zeros(()), torch.zeros(()), 0
        chosen: list[list[int]] = []
        for decision in decisions:
            steps: list[int] = []
            for step in range(len(decision.sizes)):
                state = self.cell(inputs, state)
                logits = self.heads[index](state[0])[0]
                open_ = decision.allowed(step, steps)
                mask = torch.full_like(logits, -math.inf)
                mask[open_.start : open_.stop] = 0.0
                log_p = torch.log_softmax(logits + mask, dim=-1)
                option = choose(index, log_p.detach().exp())
                log_prob = log_prob + log_p[option]
                p = log_p.exp()
                entropy = entropy - (p * log_p.masked_fill(p == 0, 0.0)).sum()
                inputs = self.embeddings[index](torch.tensor([option]))
                steps.append(option)
                index += 1
            chosen.append(steps)
        return chosen, log_prob, entropy


@register_strategy("policy_rl")
class PolicyBasedRL(Dedup, Strategy):
    """REINFORCE on an LSTM controller (ENAS-style; see the module's docstring for
    how each kind of decision is encoded).

    Every ``samples_per_update`` finished trials make one Adam step on
    ``-(advantage * log p(sample)) - entropy_weight * entropy``, where the reward
    is the objective (negated to minimize), the advantage is the reward minus a
    moving-average baseline (``baseline_decay``) divided by the batch's reward
    spread, and ``log p`` is the current policy's log-probability of the sample.
    ``ask`` never waits: it samples from the current policy; with ``dedup`` it
    never proposes one architecture twice. Failed trials are
    dropped (``on_failure="ignore"``) or get the worst reward seen so far
    (``"worst"``). Weights, optimizer state and the batch are in the state.

    >>> from archsmith.space import Space, choice
    >>> strategy = PolicyBasedRL(hidden_size=8)
    >>> strategy.attach(Space([choice("a", [1, 2])]), seed=0)
    >>> sorted(strategy.ask()["a"] for _ in range(2)), strategy.ask()
    ([1, 2], None)
    """

    def __init__(
        self,
        samples_per_update: int = 10,
        learning_rate: float = 0.05,
        entropy_weight: float = 1e-4,
        baseline_decay: float = 0.9,
        hidden_size: int = 32,
        granularity: int = 3,
        dedup: bool = True,
        on_failure: Literal["ignore", "worst"] = "ignore",
    ) -> None:
        if isinstance(samples_per_update, bool) or not isinstance(samples_per_update, int) or samples_per_update < 1:
            raise SpaceError(f"samples_per_update must be a positive integer, got {samples_per_update!r}")
        if not 0.0 <= baseline_decay < 1.0:
            raise SpaceError(f"baseline_decay must be in [0, 1), got {baseline_decay!r}")
        if isinstance(granularity, bool) or not isinstance(granularity, int) or granularity < 1:
            raise SpaceError(f"granularity must be an integer >= 1, got {granularity!r}")
        if on_failure not in ("ignore", "worst"):
            raise SpaceError(f"on_failure must be 'ignore' or 'worst', got {on_failure!r}")
        self.samples_per_update, self.learning_rate = samples_per_update, learning_rate
        self.entropy_weight, self.baseline_decay, self.hidden_size = entropy_weight, baseline_decay, hidden_size
        self.granularity, self.dedup, self.on_failure = granularity, dedup, on_failure

    def attach(self, space: Space, *, seed: int, direction: Directions = "maximize") -> None:
        super().attach(space, seed=seed, direction=direction)
        self._decisions = [Decision(leaf, self.granularity) for leaf in space.values()]
        sizes = [n for d in self._decisions for n in d.sizes]
        generator = torch.Generator().manual_seed(self.rng.getrandbits(63))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(torch.randint(2**62, (), generator=generator)))
            self.controller = Controller(sizes, self.hidden_size)
        self.optimizer = torch.optim.Adam(self.controller.parameters(), lr=self.learning_rate)
        self._batch: list[tuple[Sample, float]] = []
        self._baseline: float | None = None
        self._worst: float | None = None
        self._forget(self._reachable(space))

    def _reachable(self, space: Space) -> float:
        """How many samples the policy can propose (for exhaustion under dedup)."""
        if not space.is_discrete or any(
            len(d.options) < d.leaf.size() for d in self._decisions if hasattr(d, "options")
        ):
            return math.inf
        return countable_size(space)

    # Proposing --------------------------------------------------------------------
    def _draw(self, _index: int, probabilities: torch.Tensor) -> int:
        return draw(self.rng, probabilities)  # the strategy's rng: its state is the base state

    def _sample_policy(self) -> Sample:
        with torch.no_grad():
            steps, _, _ = self.controller.run(self._decisions, self._draw)
        return {d.leaf.label: d.decode(s) for d, s in zip(self._decisions, steps)}

    def ask(self) -> Sample | None:
        if self.is_exhausted():
            return None
        for draw in (self._sample_policy, lambda: self.space.random(rng=self.rng)):
            # the policy first; if it keeps proposing seen or invalid samples, a random unseen one
            for _ in range(SAMPLING_TRIES):
                sample = draw()
                if self.space.satisfies(sample) and self._is_new(sample):
                    self._remember(sample)
                    return sample
        for sample in self._unseen():  # nearly exhausted: the first unseen one in grid order
            self._remember(sample)
            return sample
        return None

    # Learning ---------------------------------------------------------------------
    def _log_prob(self, sample: Sample) -> tuple[torch.Tensor, torch.Tensor]:
        forced = iter([step for d in self._decisions for step in d.encode(sample[d.leaf.label])])
        _, log_prob, entropy = self.controller.run(self._decisions, lambda _i, _p: next(forced))
        return log_prob, entropy

    def tell(self, trial: FinishedTrial) -> None:
        """Learn from a finished trial. One this strategy never proposed (an earlier
        run's, on warm start) is learnt from too: its log-probability under the
        current policy is recomputed at the update, as for the strategy's own
        (REINFORCE then leans off-policy). A sample that does not fit the space
        is ignored."""
        try:
            sample = self.space.validate(trial.sample)
        except SampleError:
            return
        if trial.status == "succeeded" and trial.value is not None:
            reward = float(trial.value) if self.direction == "maximize" else -float(trial.value)
            self._worst = reward if self._worst is None else min(self._worst, reward)
        elif self.on_failure == "worst" and self._worst is not None:
            reward = self._worst
        else:
            return
        self._batch.append((sample, reward))
        if len(self._batch) >= self.samples_per_update:
            self._update()

    def _update(self) -> None:
        rewards = torch.tensor([reward for _, reward in self._batch], dtype=torch.float64)
        mean = float(rewards.mean())
        baseline = (
            mean if self._baseline is None else self.baseline_decay * self._baseline + (1 - self.baseline_decay) * mean
        )
        spread = float(rewards.std()) if len(rewards) > 1 else 0.0
        advantages = ((rewards - baseline) / (spread if spread > 1e-12 else 1.0)).float()
        loss = torch.zeros(())
        for (sample, _), advantage in zip(self._batch, advantages):
            log_prob, entropy = self._log_prob(sample)
            loss = loss - advantage * log_prob - self.entropy_weight * entropy
        self.optimizer.zero_grad()
        (loss / len(self._batch)).backward()
        self.optimizer.step()
        self._baseline, self._batch = baseline, []

    def expected_reward(self, reward: Any, samples: int = 200) -> float:
        """The mean of ``reward(sample)`` over ``samples`` policy draws (leaves the
        strategy's rng as it was; for diagnostics and tests)."""
        state = self.rng.getstate()
        try:
            return sum(reward(self._sample_policy()) for _ in range(samples)) / samples
        finally:
            self.rng.setstate(state)

    # State ------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        # The weights and Adam's moments travel as one base64 blob of torch.save:
        # exact, and about 5x smaller than JSON lists (it is written after every ask/tell).
        blob = io.BytesIO()
        torch.save({"controller": self.controller.state_dict(), "optimizer": self.optimizer.state_dict()}, blob)
        return {
            **super().state_dict(),
            "weights": base64.b64encode(blob.getvalue()).decode("ascii"),
            "batch": [[sample, reward] for sample, reward in self._batch],
            "baseline": self._baseline,
            "worst": self._worst,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        weights = torch.load(io.BytesIO(base64.b64decode(state["weights"])), weights_only=True)
        self.controller.load_state_dict(weights["controller"])
        self.optimizer.load_state_dict(weights["optimizer"])
        self._batch = [(dict(sample), float(reward)) for sample, reward in state["batch"]]
        self._baseline, self._worst = state["baseline"], state["worst"]
        self._load_seen(state)

    def __repr__(self) -> str:
        return (
            f"PolicyBasedRL(samples_per_update={self.samples_per_update}, learning_rate={self.learning_rate}, "
            f"entropy_weight={self.entropy_weight}, baseline_decay={self.baseline_decay}, "
            f"hidden_size={self.hidden_size}, granularity={self.granularity}, dedup={self.dedup}, "
            f"on_failure={self.on_failure!r})"
        )

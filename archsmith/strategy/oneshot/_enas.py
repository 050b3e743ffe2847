"""``ENAS`` (Pham et al., 2018): efficient neural architecture search via
parameter sharing.

An LSTM controller (the :class:`~archsmith.strategy._rl.Controller` of
``PolicyBasedRL``, with its encoding of each decision) proposes architectures.
Each epoch alternates two phases, as in the paper:

1. weights: every training step trains the shared weights on one path the
   controller samples;
2. controller: ``ctrl_steps`` paths are sampled, each rewarded by its accuracy
   (for regression: minus its mean squared error) on one architecture batch with
   the shared weights (supernet in eval mode), and the controller is trained by
   REINFORCE: ``-(reward - baseline) * log p(path) - entropy_weight * entropy``,
   the losses of ``ctrl_steps_aggregate`` samples averaged per Adam step; the
   baseline is an exponential moving average of the rewards (``baseline_decay``),
   updated before each advantage is taken.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from archsmith.space import Sample, Space, SpaceError

from .._dedup import countable_size
from .._rl import SAMPLING_TRIES, Controller, Decision, draw
from ._base import Ranking, _cycle
from ._hooks import OneShotCallback
from ._spos import ValidationRanked, _positive_int

Policy = tuple[Sample, torch.Tensor, torch.Tensor]  # a sample, its log-probability and the entropy


class ENAS(ValidationRanked):
    """ENAS: an LSTM controller trained by REINFORCE picks the paths of a sampling
    supernet (see the module's docstring for the two phases).

    - ``ctrl_lr``: Adam's learning rate for the controller (the paper's 3.5e-4 is
      for hundreds of epochs; raise it for short searches);
    - ``ctrl_steps``: samples in each epoch's controller phase, one architecture
      batch each; ``ctrl_steps_aggregate``: samples per controller update;
    - ``entropy_weight``: weight of the policy's entropy bonus;
      ``baseline_decay``: decay of the reward's moving-average baseline;
    - ``hidden_size``: the controller's LSTM width; ``granularity``: how finely a
      numerical choice is discretised (as in ``PolicyBasedRL``);
    - ``ranking_samples``: distinct architectures the trained controller proposes
      for the final ranking (its most likely one among them); each is scored by
      the validation metric with the supernet's weights, best first
      (``score_name`` is ``val_acc``, maximized, or ``val_mse``, minimized);
    - ``arch_data``: the rewards' batches — ``"val"`` (the validation data, the
      paper's protocol and the default) or ``"split"`` (half of the training
      data; the weights then train on the other half);
    - ``callbacks``: ``OneShotCallback``s (see ``OneShotStrategy``).

    Every epoch is validated on the controller's most likely architecture. The
    controller, its optimizer and the baseline are checkpointed.

    Constraints (``ExperimentConfig(constraints=[...])``) are honoured by the
    controller: every path it draws, in training, in its phase and for the
    ranking, meets them (draws that break them are rejected, as for the space's
    own constraints), so it learns among those architectures only.
    """

    family = "sampling"
    uses_arch_data = True
    honours_constraints = True
    arch_batch_per_step = False  # the controller phase reads arch_loader after the epoch

    def __init__(
        self,
        ctrl_lr: float = 3.5e-4,
        ctrl_steps: int = 200,
        ctrl_steps_aggregate: int = 20,
        entropy_weight: float = 1e-4,
        baseline_decay: float = 0.99,
        hidden_size: int = 64,
        granularity: int = 3,
        ranking_samples: int = 20,
        *,
        arch_data: str = "val",
        top_k: int = 10,
        callbacks: Sequence[OneShotCallback] | None = None,
    ) -> None:
        super().__init__(arch_data=arch_data, top_k=top_k, callbacks=callbacks)
        if isinstance(ctrl_lr, bool) or not isinstance(ctrl_lr, (int, float)) or not ctrl_lr > 0:
            raise SpaceError(f"ctrl_lr must be a positive number, got {ctrl_lr!r}")
        self.ctrl_steps = _positive_int("ctrl_steps", ctrl_steps)
        self.ctrl_steps_aggregate = _positive_int("ctrl_steps_aggregate", ctrl_steps_aggregate)
        if ctrl_steps_aggregate > ctrl_steps:
            raise SpaceError(
                f"ctrl_steps_aggregate ({ctrl_steps_aggregate}) must be at most ctrl_steps ({ctrl_steps}): "
                "an update averages ctrl_steps_aggregate of an epoch's ctrl_steps samples"
            )
        if isinstance(entropy_weight, bool) or not isinstance(entropy_weight, (int, float)) or not entropy_weight >= 0:
            raise SpaceError(f"entropy_weight must be a number >= 0, got {entropy_weight!r}")
        if isinstance(baseline_decay, bool) or not isinstance(baseline_decay, (int, float)):
            raise SpaceError(f"baseline_decay must be a number in [0, 1), got {baseline_decay!r}")
        if not 0.0 <= baseline_decay < 1.0:
            raise SpaceError(f"baseline_decay must be in [0, 1), got {baseline_decay!r}")
        self.ctrl_lr, self.entropy_weight, self.baseline_decay = float(ctrl_lr), entropy_weight, baseline_decay
        self.hidden_size = _positive_int("hidden_size", hidden_size)
        self.granularity = _positive_int("granularity", granularity)
        self.ranking_samples = _positive_int("ranking_samples", ranking_samples)

    def configure(self) -> None:
        super().configure()
        self._decisions = [Decision(leaf, self.granularity) for leaf in self.supernet.search_space.values()]
        sizes = [n for d in self._decisions for n in d.sizes]
        with torch.random.fork_rng(devices=[]):  # the seed's weights, whatever torch's generator holds
            torch.manual_seed(self.rng.getrandbits(63))
            self.controller = Controller(sizes, self.hidden_size)
            for parameter in self.controller.parameters():  # the paper's initialisation
                torch.nn.init.uniform_(parameter, -0.1, 0.1)
        self.ctrl_optimizer = torch.optim.Adam(self.controller.parameters(), lr=self.ctrl_lr)
        self.baseline: float | None = None

    # The controller's policy ----------------------------------------------------------
    def _draw(self, _index: int, probabilities: torch.Tensor) -> int:
        return draw(self.rng, probabilities)  # the strategy's rng, checkpointed with the search

    def _run(self, choose: Any) -> Policy:
        steps, log_prob, entropy = self.controller.run(self._decisions, choose)
        return {d.leaf.label: d.decode(s) for d, s in zip(self._decisions, steps)}, log_prob, entropy

    def _forced(self, sample: Sample) -> Policy:
        forced = iter([step for d in self._decisions for step in d.encode(sample[d.leaf.label])])
        _, log_prob, entropy = self.controller.run(self._decisions, lambda _i, _p: next(forced))
        return sample, log_prob, entropy

    def sample_policy(self) -> Policy:
        """A path drawn from the controller that meets the space's constraints (after
        ``SAMPLING_TRIES`` rejected draws: a random one), with its log-probability
        and the policy's entropy (differentiable unless under ``no_grad``)."""
        space = self._space()
        for _ in range(SAMPLING_TRIES):
            sample, log_prob, entropy = self._run(self._draw)
            if space.satisfies(sample):
                return sample, log_prob, entropy
        return self._forced(space.random(rng=self.rng))

    def greedy_sample(self) -> Sample:
        """The controller's most likely path (option by option); if it breaks a
        constraint, a drawn one that does not."""
        with torch.no_grad():
            sample, _, _ = self._run(lambda _i, p: int(torch.argmax(p)))
            if self._space().satisfies(sample):
                return sample
            return self.sample_policy()[0]

    def _space(self) -> Space:
        """The space with the search's constraints (see ``OneShotStrategy.search``)."""
        return getattr(self, "constrained_space", self.supernet.search_space)

    # The two phases --------------------------------------------------------------------
    def training_step(self, batch: Any, arch_batch: Any) -> dict[str, float]:
        with torch.no_grad():
            sample, _, _ = self.sample_policy()
        self.supernet.set_sample(sample)
        return {"train_loss": self.weight_step(batch)}

    def on_epoch_end(self, epoch: int, max_epochs: int) -> dict[str, float]:
        """The controller phase: ``ctrl_steps`` rewarded samples, an update every
        ``ctrl_steps_aggregate`` (and one for the remainder)."""
        batches = _cycle(self.arch_loader)
        self.supernet.eval()  # rewards are deterministic, batch-norm statistics untouched
        self.controller.train()
        rewards, entropies, group = [], [], []
        try:
            for step in range(self.ctrl_steps):
                sample, log_prob, entropy = self.sample_policy()
                reward = self.reward(sample, next(batches))
                self.baseline = (
                    reward
                    if self.baseline is None
                    else self.baseline_decay * self.baseline + (1 - self.baseline_decay) * reward
                )
                group.append(-(reward - self.baseline) * log_prob - self.entropy_weight * entropy)
                rewards.append(reward)
                entropies.append(float(entropy.detach()))
                if len(group) == self.ctrl_steps_aggregate or step == self.ctrl_steps - 1:
                    self.ctrl_optimizer.zero_grad()
                    torch.stack(group).mean().backward()
                    self.ctrl_optimizer.step()
                    group = []
        finally:
            self.supernet.train()
        return {
            "ctrl_reward": sum(rewards) / len(rewards),
            "ctrl_entropy": sum(entropies) / len(entropies),
            "ctrl_baseline": float(self.baseline if self.baseline is not None else math.nan),
        }

    def validation_sample(self) -> Sample:
        return self.greedy_sample()

    def ranking(self, k: int) -> Ranking:
        """Up to ``max(k, ranking_samples)`` distinct architectures from the
        controller (its most likely one included), best first by their validation
        score. A converged controller proposes few distinct ones: random
        architectures then make up the number (where the space has them)."""
        space = self._space()
        wanted = max(k, self.ranking_samples)
        wanted = int(min(wanted, countable_size(space)))  # a small space: each of its architectures
        candidates = {self.supernet.architecture_key(sample): sample for sample in [self.greedy_sample()]}
        with torch.no_grad():
            for draw in (lambda: self.sample_policy()[0], lambda: space.random(rng=self.rng)):
                for _ in range(wanted * SAMPLING_TRIES):
                    if len(candidates) >= wanted:
                        break
                    sample = draw()
                    candidates.setdefault(self.supernet.architecture_key(sample), sample)
        scored = [(dict(sample), self.validation_score(sample)) for sample in candidates.values()]
        return self.best_first(scored, k)

    # State -----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            **super().state_dict(),
            "controller": self.controller.state_dict(),
            "ctrl_optimizer": self.ctrl_optimizer.state_dict(),
            "baseline": self.baseline,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.controller.load_state_dict(state["controller"])
        self.ctrl_optimizer.load_state_dict(state["ctrl_optimizer"])
        self.baseline = state["baseline"]

    def __repr__(self) -> str:
        return (
            f"ENAS(ctrl_lr={self.ctrl_lr}, ctrl_steps={self.ctrl_steps}, "
            f"ctrl_steps_aggregate={self.ctrl_steps_aggregate}, entropy_weight={self.entropy_weight}, "
            f"baseline_decay={self.baseline_decay}, hidden_size={self.hidden_size}, "
            f"granularity={self.granularity}, ranking_samples={self.ranking_samples}, arch_data={self.arch_data!r})"
        )

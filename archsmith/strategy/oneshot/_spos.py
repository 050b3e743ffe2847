"""``RandomOneShot``: single-path one-shot NAS with uniform sampling (SPOS; Guo et
al., 2020), and ``ValidationRanked``, the base of the algorithms whose ranking
scores subnets by the recipe's validation metric with the supernet's weights.

SPOS trains the supernet one uniformly random path per step, then searches the
trained supernet with a multi-trial strategy (regularized evolution by default),
each subnet scored on the validation data with the weights it inherits —
optionally after recalibrating the batch-norm statistics for that subnet on a
few training batches, as in the paper.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch

from archsmith.evaluator import Evaluator, TrainingRecipe
from archsmith.nn import ModelSpace
from archsmith.space import Constraint, Sample, SpaceError

from .._base import FinishedTrial, Strategy
from .._evolution import RegularizedEvolution
from ._base import OneShotStrategy, Ranking, _reseed_loaders, recipe_of
from ._hooks import OneShotCallback
from ._sliced import SlicedBatchNorm


def best_first(scored: list[tuple[Sample, float]], direction: str) -> Ranking:
    """``scored`` sorted best first in ``direction`` (a NaN score last; ties keep
    their order)."""

    def key(item: tuple[Sample, float]) -> float:
        value = item[1]
        if math.isnan(value):
            return math.inf
        return -value if direction == "maximize" else value

    return sorted(scored, key=key)


def _positive_int(name: str, value: Any, *, zero: bool = False) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < (0 if zero else 1):
        what = "an integer >= 0" if zero else "a positive integer"
        raise SpaceError(f"{name} must be {what}, got {value!r}")
    return value


class ValidationRanked(OneShotStrategy):
    """Base of algorithms that rank subnets by the recipe's validation metric
    (``val_acc``, maximized, for ``Classification``; ``val_mse``, minimized, for
    ``Regression``) with the weights they inherit from the supernet.

    ``score_name``/``score_direction`` are set per instance from the evaluator, in
    ``check`` (which ``Experiment`` calls before it records them) and again when
    the search starts.
    """

    def check(self, space: ModelSpace, evaluator: Evaluator, constraints: Sequence[Constraint] = ()) -> None:
        super().check(space, evaluator, constraints)
        self._use_score_of(recipe_of(evaluator, self.name))

    def configure(self) -> None:
        super().configure()
        self._use_score_of(self.recipe)

    def _use_score_of(self, recipe: TrainingRecipe) -> None:
        self.score_name, self.score_direction = recipe.metric_name, recipe.direction

    def best_first(self, scored: list[tuple[Sample, float]], k: int) -> Ranking:
        """The ``k`` best of ``scored`` in the recipe's direction, best first."""
        return best_first(scored, self.recipe.direction)[:k]


def _batch_norms(module: torch.nn.Module) -> list[torch.nn.Module]:
    """The batch-norm layers (plain or sliced) of ``module`` that keep running statistics."""
    return [
        m
        for m in module.modules()
        if isinstance(m, (torch.nn.modules.batchnorm._BatchNorm, SlicedBatchNorm))
        and getattr(m, "running_mean", None) is not None
    ]


@contextmanager
def kept_statistics(norms: list[torch.nn.Module]) -> Iterator[None]:
    """Restore the running statistics of ``norms`` on exit."""
    saved = [{name: b.clone() for name, b in m.named_buffers(recurse=False) if b is not None} for m in norms]
    try:
        yield
    finally:
        with torch.no_grad():
            for m, buffers in zip(norms, saved):
                for name, value in buffers.items():
                    getattr(m, name).copy_(value)


@contextmanager
def cumulative_statistics(norms: list[torch.nn.Module]) -> Iterator[None]:
    """Reset the running statistics of ``norms`` and average them over the batches
    run inside (``momentum=None``, torch's cumulative average); momenta restored on exit."""
    momenta = []
    layers: list[Any] = list(norms)  # plain and sliced batch norms: the same buffers, momentum elsewhere
    with torch.no_grad():
        for m in layers:
            m.running_mean.zero_()
            m.running_var.fill_(1.0)
            if getattr(m, "num_batches_tracked", None) is not None:
                m.num_batches_tracked.zero_()
            if isinstance(m, SlicedBatchNorm):  # its momentum is an init argument, read each forward
                momenta.append(m.init_arguments.get("momentum"))
                m.init_arguments["momentum"] = None
            else:
                momenta.append(m.momentum)
                m.momentum = None
    try:
        yield
    finally:
        for m, momentum in zip(layers, momenta):
            if isinstance(m, SlicedBatchNorm):
                m.init_arguments["momentum"] = momentum
            else:
                m.momentum = momentum


class RandomOneShot(ValidationRanked):
    """Single-path one-shot search with uniform sampling (SPOS).

    Each training step trains the weights of one architecture drawn uniformly at
    random (``space.random``, constraints respected). After training, ``search``
    (any multi-trial ask/tell strategy instance; default
    ``RegularizedEvolution(population_size=20, sample_size=5)``, or e.g.
    ``Random()``) proposes ``search_budget`` subnets, each scored by the recipe's
    validation metric with the supernet's weights; the ranking holds the best,
    best first (``score_name`` is ``val_acc``, maximized, or ``val_mse``, minimized).

    - ``bn_calibration_batches``: before scoring a subnet, reset the batch-norm
      running statistics and average them over that many training batches run
      through the subnet (in train mode, without gradients; the same batches for
      every subnet), as in the paper — recommended for spaces with batch norm
      (0: off). The supernet's statistics are restored after the ranking;
    - ``callbacks``: ``OneShotCallback``s (see ``OneShotStrategy``).

    The per-epoch validation runs one fixed random architecture (drawn when the
    search starts), a gauge of how the shared weights train. The given ``search``
    instance is copied, never changed.

    Constraints (``ExperimentConfig(constraints=[...])``, e.g.
    ``FlopsProfiler(space, x) <= 3e8``) are honoured by the search after
    training: ``search`` proposes from the space with them added, and only
    architectures that meet them are scored and ranked. Training still samples
    every architecture, so the shared weights serve any bound.
    """

    family = "sampling"
    uses_arch_data = False
    honours_constraints = True

    def __init__(
        self,
        search: Strategy | None = None,
        search_budget: int = 100,
        bn_calibration_batches: int = 0,
        *,
        top_k: int = 10,
        callbacks: Sequence[OneShotCallback] | None = None,
    ) -> None:
        super().__init__(top_k=top_k, callbacks=callbacks)
        if search is None:
            search = RegularizedEvolution(population_size=20, sample_size=5)
        if isinstance(search, type):
            raise SpaceError(
                f"search must be a strategy instance, got the class {search.__name__}; pass {search.__name__}()"
            )
        if not isinstance(search, Strategy):
            raise SpaceError(
                "search must be a multi-trial ask/tell strategy instance (RegularizedEvolution(), Random(), "
                f"...) to search the trained supernet, got {search!r}"
            )
        self.search_strategy = search
        self.search_budget = _positive_int("search_budget", search_budget)
        self.bn_calibration_batches = _positive_int("bn_calibration_batches", bn_calibration_batches, zero=True)

    def configure(self) -> None:
        super().configure()
        self._reference = self.supernet.search_space.random(rng=self.rng)

    def training_step(self, batch: Any, arch_batch: Any) -> dict[str, float]:
        self.supernet.set_sample(self.supernet.search_space.random(rng=self.rng))
        return {"train_loss": self.weight_step(batch)}

    def validation_sample(self) -> Sample:
        return self._reference

    # The search over the trained supernet ----------------------------------------------
    def ranking(self, k: int) -> Ranking:
        space = getattr(self, "constrained_space", self.supernet.search_space)
        strategy = copy.deepcopy(self.search_strategy)
        strategy.attach(space, seed=self.rng.getrandbits(31), direction=self.recipe.direction)  # type: ignore[arg-type]
        calibration_seed = self.rng.getrandbits(31)
        norms = _batch_norms(self.supernet) if self.bn_calibration_batches else []
        scored: dict[str, tuple[Sample, float]] = {}
        was_training = self.supernet.training
        self.supernet.eval()  # once, not per subnet: a cell supernet holds thousands of modules
        try:
            with kept_statistics(norms):
                for trial_id in range(self.search_budget):
                    sample = strategy.ask()
                    if sample is None:  # exhausted (told synchronously: never waiting)
                        break
                    if not space.satisfies(sample):  # a search that ignores constraints: never ranked
                        strategy.tell(FinishedTrial(trial_id, dict(sample), "failed", None))
                        continue
                    key = self.supernet.architecture_key(sample)
                    if key in scored:
                        score = scored[key][1]
                    else:
                        if norms:
                            self.calibrate(sample, norms, calibration_seed)
                        score = self.validation_score(sample)
                        scored[key] = (dict(sample), score)
                    strategy.tell(FinishedTrial(trial_id, dict(sample), "succeeded", score))
        finally:
            self.supernet.train(was_training)
        return self.best_first(list(scored.values()), k)

    def calibrate(self, sample: Sample, norms: list[torch.nn.Module], seed: int) -> None:
        """Recompute the batch-norm statistics of ``sample``'s path on the first
        ``bn_calibration_batches`` training batches (the same ones for any ``seed``)."""
        data = self.recipe.train_data
        self.supernet.set_sample(sample)
        was_training = self.supernet.training
        self.supernet.train()
        try:
            with torch.random.fork_rng(devices=[]), torch.no_grad(), cumulative_statistics(norms):
                torch.manual_seed(seed)  # a loader shuffling with torch's generator draws the same batches
                _reseed_loaders(seed, data)
                for i, batch in enumerate(data):
                    if i == self.bn_calibration_batches:
                        break
                    x, _ = self.recipe.split(batch)
                    self.supernet(x)
        finally:
            self.supernet.train(was_training)

    def __repr__(self) -> str:
        return (
            f"RandomOneShot(search={self.search_strategy!r}, search_budget={self.search_budget}, "
            f"bn_calibration_batches={self.bn_calibration_batches})"
        )

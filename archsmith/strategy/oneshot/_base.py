"""``OneShotStrategy``: the base of the weight-sharing algorithms, and their
training loop.

The loop is small and explicit (no Lightning): it takes data, loss, optimizer and
epochs from the evaluator's :class:`~archsmith.evaluator.TrainingRecipe`, gives
each step a training batch and — for algorithms that learn the architecture on
other data — an architecture batch, validates once per epoch, reports the
epoch's metrics and checkpoints everything so an interrupted search resumes at
the next epoch. An algorithm implements ``training_step`` and ``ranking``.

Users hook into the loop with ``OneShotCallback``s (``callbacks=[...]`` on the
strategy); the evaluator's Lightning ``EarlyStopping`` and ``ModelCheckpoint``
callbacks run as ``MetricEarlyStopping`` and ``SupernetCheckpoint`` hooks.
"""

from __future__ import annotations

import logging
import os
import random
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

import torch

from archsmith.evaluator import Evaluator, TrainingRecipe
from archsmith.nn import ModelSpace
from archsmith.space import Condition, Constraint, Sample, Space, SpaceError

from ._checkpoint import SupernetCheckpoint
from ._hooks import MetricEarlyStopping, OneShotCallback, OneShotState
from ._ranking import most_probable
from ._supernet import FAMILY_ALGORITHMS, Supernet, check_supported

EpochCallback = Callable[[int, int, dict[str, float]], None]
Ranking = list[tuple[Sample, float]]

logger = logging.getLogger("archsmith.oneshot")


def check_architecture_training(arc_learning_rate: float, gradient_clip_val: float | None, warmup_epochs: int) -> None:
    """The arguments the gradient-based algorithms (DARTS, Proxyless) share."""
    if not arc_learning_rate > 0:
        raise SpaceError(f"arc_learning_rate must be positive, got {arc_learning_rate!r}")
    if gradient_clip_val is not None and not gradient_clip_val > 0:
        raise SpaceError(f"gradient_clip_val must be positive or None, got {gradient_clip_val!r}")
    if isinstance(warmup_epochs, bool) or not isinstance(warmup_epochs, int) or warmup_epochs < 0:
        raise SpaceError(f"warmup_epochs must be an integer >= 0, got {warmup_epochs!r}")


def checked_constraints(constraints: Sequence[Constraint] | None, algorithm: str) -> list[Constraint]:
    """``constraints`` as a list, each an ``archsmith.space.Constraint`` (a
    ``CostConstraint`` such as ``FlopsProfiler(space, x) <= 3e8`` is one)."""
    if constraints is None:
        return []
    if isinstance(constraints, Constraint) or not isinstance(constraints, (list, tuple)):
        raise SpaceError(f"{algorithm}: constraints must be a list of archsmith.space.Constraint, got {constraints!r}")
    for constraint in constraints:
        if not isinstance(constraint, Constraint):
            raise SpaceError(
                f"{algorithm}: constraints=[{constraint!r}] is not an archsmith.space.Constraint; write "
                "Constraint(fn) for a predicate, or profiler <= bound (e.g. FlopsProfiler(space, x) <= 3e8)"
            )
    return list(constraints)


def constrained(space: Space, constraints: Sequence[Constraint]) -> Space:
    """``space`` with ``constraints`` added (its own constraints and conditions
    kept); ``space`` itself when there are none."""
    if not constraints:
        return space
    conditions = [
        Condition(label, parent, values)
        for label, alternatives in space.conditions.items()
        for parent, values in alternatives.items()
    ]
    return Space(space.values(), [*space.constraints, *constraints], conditions)


def recipe_of(evaluator: Evaluator, algorithm: str) -> TrainingRecipe:
    """The evaluator's training recipe, or a clear error for one without."""
    make = getattr(evaluator, "training_recipe", None)
    if make is None:
        raise SpaceError(
            f"{algorithm} trains a supernet with the data, loss and optimizer of a Classification or Regression "
            f"evaluator; {type(evaluator).__name__} does not provide them (no training_recipe())"
        )
    return make()  # type: ignore[no-any-return]


def checked_callbacks(callbacks: Sequence[OneShotCallback] | None, algorithm: str) -> list[OneShotCallback]:
    """``callbacks`` as a list, each checked to be a ``OneShotCallback``."""
    if callbacks is None:
        return []
    if isinstance(callbacks, OneShotCallback) or not isinstance(callbacks, (list, tuple)):
        raise SpaceError(f"{algorithm}: callbacks must be a list of OneShotCallback, got {callbacks!r}")
    for callback in callbacks:
        if isinstance(callback, OneShotCallback):
            continue
        name = type(callback).__name__
        if type(callback).__module__.split(".")[0] in ("lightning", "pytorch_lightning"):
            raise SpaceError(
                f"{algorithm}: callbacks=[{name}(...)] is a Lightning callback, but a one-shot search trains in "
                "archsmith's own loop, not a Lightning Trainer; give Lightning callbacks to the evaluator "
                "(Classification(callbacks=[...]) honours EarlyStopping and ModelCheckpoint, and refuses the others by "
                "name) or write an "
                "archsmith.strategy.oneshot.OneShotCallback"
            )
        raise SpaceError(
            f"{algorithm}: callbacks=[{name}(...)] is not an archsmith.strategy.oneshot.OneShotCallback; subclass it "
            "and override on_epoch_start / on_step_end / on_epoch_end"
        )
    return list(callbacks)


def _split_loader(loader: Any, seed: int) -> tuple[Any, Any]:
    """Two loaders over the two halves of ``loader``'s (map-style) data set."""
    dataset = getattr(loader, "dataset", None)
    if dataset is None or not hasattr(dataset, "__len__") or len(dataset) < 2:
        raise SpaceError(
            "arch_data='split' needs a DataLoader over a data set with a length to split in two; "
            "pass arch_data='val' to learn the architecture on the validation data instead"
        )
    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed)).tolist()
    half = len(order) // 2
    loaders: list[Any] = []
    for part in (order[:half], order[half:]):
        subset = torch.utils.data.Subset(dataset, part)
        loaders.append(
            torch.utils.data.DataLoader(
                subset,
                batch_size=loader.batch_size or 1,
                shuffle=True,
                drop_last=bool(getattr(loader, "drop_last", False)),
                collate_fn=loader.collate_fn,
                generator=torch.Generator().manual_seed(seed + len(loaders)),
            )
        )
    return loaders[0], loaders[1]


def rebuilt(space: ModelSpace) -> ModelSpace:
    """``space`` built again from its class and init arguments, under the seeded
    global generator: its weights then depend on the seed only (as a trial's model
    does in a multi-trial search), while what its ``__init__`` sets (pretrained or
    frozen layers) is kept."""
    args, kwargs = space.init_arguments
    return type(space)(*args, **kwargs)


def _hook_keys(callbacks: list[OneShotCallback]) -> list[str]:
    """A checkpoint key per callback: its type and its rank among those of its
    type, so adding or removing callbacks of other types keeps the others' state."""
    seen: dict[str, int] = {}
    keys = []
    for callback in callbacks:
        name = type(callback).__qualname__
        keys.append(f"{name}#{seen.get(name, 0)}")
        seen[name] = seen.get(name, 0) + 1
    return keys


def _cycle(loader: Any) -> Iterator[Any]:
    while True:
        empty = True
        for batch in loader:
            empty = False
            yield batch
        if empty:
            raise SpaceError("the architecture data is empty")


def _reseed_loaders(seed: int, *loaders: Any) -> None:
    for i, loader in enumerate(loaders):
        generator = getattr(loader, "generator", None)
        if isinstance(generator, torch.Generator):
            generator.manual_seed(seed * 7_919 + i)


class OneShotStrategy(ABC):
    """Base of one-shot algorithms: ``Experiment(space, evaluator, DARTS(), config)``.

    - ``family``: the kind of mixed ops the supernet gets (see ``MIXED_OPS``);
    - ``arch_data``: where architecture steps get their batches, for algorithms
      that take them: ``"split"`` (half of the training data, the other half
      trains the weights; DARTS' protocol) or ``"val"`` (the validation data);
    - ``top_k``: how many architectures the exported ranking holds;
    - ``callbacks``: ``OneShotCallback``s, called at each epoch's start and end and
      after each step (then the evaluator's ``EarlyStopping`` and ``ModelCheckpoint``
      callbacks, as ``MetricEarlyStopping`` and ``SupernetCheckpoint``).
    """

    family: ClassVar[str] = "sampling"
    #: Whether the algorithm learns the architecture on data of its own
    #: (``arch_loader``), and whether each ``training_step`` gets a batch of it.
    uses_arch_data: ClassVar[bool] = False
    arch_batch_per_step: ClassVar[bool] = True
    #: Whether the algorithm can honour hard constraints (``ExperimentConfig.constraints``):
    #: those that search by sampling architectures reject the ones that break them;
    #: those that learn a distribution refuse them (``check_constraints``).
    honours_constraints: ClassVar[bool] = False
    #: What the ranking's score is and which way it is better (an algorithm that
    #: ranks by the recipe's metric sets its own per instance, in ``check``).
    score_name: str = "arch_probability"
    score_direction: str = "maximize"

    supernet: Supernet
    recipe: TrainingRecipe
    rng: random.Random
    #: The data of the weight steps and of the architecture steps (``None`` unless
    #: ``uses_arch_data``), set by ``search``.
    train_loader: Any
    arch_loader: Any

    def __init__(
        self, *, arch_data: str = "split", top_k: int = 10, callbacks: Sequence[OneShotCallback] | None = None
    ) -> None:
        if arch_data not in ("split", "val"):
            raise SpaceError(f"arch_data must be 'split' (half the training data) or 'val', got {arch_data!r}")
        if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
            raise SpaceError(f"top_k must be a positive integer (architectures to rank), got {top_k!r}")
        self.arch_data, self.top_k = arch_data, top_k
        self.callbacks = checked_callbacks(callbacks, type(self).__name__)
        #: why the last search stopped before its last epoch (a callback's reason), else ``None``
        self.stop_reason: str | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # ABCMeta sets __abstractmethods__ only after this hook runs (reading it here finds
        # nothing), so look for methods still abstract: an abstract base is no algorithm.
        if not any(getattr(getattr(cls, name, None), "__isabstractmethod__", False) for name in dir(cls)):
            FAMILY_ALGORITHMS.setdefault(cls.family, [])
            if cls.__name__ not in FAMILY_ALGORITHMS[cls.family]:
                FAMILY_ALGORITHMS[cls.family].append(cls.__name__)

    @property
    def name(self) -> str:
        return type(self).__name__

    # Checks, before anything runs ------------------------------------------------------
    def check(self, space: ModelSpace, evaluator: Evaluator, constraints: Sequence[Constraint] = ()) -> None:
        """Every reason this algorithm cannot search ``space`` with ``evaluator``
        (and ``constraints``), raised before any training."""
        check_supported(space, self.family, self.name)
        self.check_recipe(recipe_of(evaluator, self.name))
        self.check_constraints(constraints)

    def check_constraints(self, constraints: Sequence[Constraint] | None) -> list[Constraint]:
        """``constraints`` checked, or a clear error if this algorithm cannot honour
        hard constraints."""
        constraints = checked_constraints(constraints, self.name)
        if constraints and not self.honours_constraints:
            names = ", ".join(repr(c.name) for c in constraints)
            raise SpaceError(
                f"{self.name} learns a distribution over every architecture and cannot honour the hard "
                f"constraints [{names}]: penalise the cost instead ({self.name}(cost=profiler, cost_weight=...), "
                "a soft preference), or search with RandomOneShot or ENAS, which rank only architectures that "
                "meet the constraints"
            )
        return constraints

    def check_recipe(self, recipe: TrainingRecipe) -> None:
        """Refuse the evaluator's Trainer settings this algorithm cannot honour."""
        if recipe.gradient_clip_val is not None and hasattr(self, "gradient_clip_val"):  # DARTS, Proxyless
            raise SpaceError(
                f"{self.name} clips the weights' gradients with its own setting; pass "
                f"{self.name}(gradient_clip_val={recipe.gradient_clip_val}) instead of the evaluator's "
                "gradient_clip_val (which multi-trial searches with the evaluator still use)"
            )

    # What an algorithm implements ------------------------------------------------------
    def configure(self) -> None:
        """Create optimizers and state once ``supernet``, ``recipe``, ``rng`` are set."""
        self.weight_optimizer = self.recipe.make_optimizer(self.supernet.weight_parameters())

    def on_epoch_start(self, epoch: int, max_epochs: int) -> None:  # noqa: B027 - optional hook
        """Called before each epoch (temperature schedules, warm-up)."""

    def on_epoch_end(self, epoch: int, max_epochs: int) -> dict[str, float]:
        """Called after each epoch's training steps, before validation (e.g. ENAS'
        controller phase); returns extra metrics to show."""
        return {}

    @abstractmethod
    def training_step(self, batch: Any, arch_batch: Any) -> dict[str, float]:
        """One step on a training batch (and an architecture batch, if
        ``uses_arch_data``); returns what to show (e.g. the loss)."""

    def validation_sample(self) -> Sample | None:
        """The architecture validated after each epoch (``None``: the supernet as it
        is, e.g. DARTS' weighted mix)."""
        return None

    @abstractmethod
    def ranking(self, k: int) -> Ranking:
        """The ``k`` best architectures, best first, each with its score."""

    def state_dict(self) -> dict[str, Any]:
        """Everything the algorithm needs to resume (``torch.save``-able)."""
        return {"weight_optimizer": self.weight_optimizer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.weight_optimizer.load_state_dict(state["weight_optimizer"])

    # Helpers for algorithms -------------------------------------------------------------
    def weight_step(self, batch: Any) -> float:
        """A plain training step of the supernet's weights on ``batch``; the loss."""
        self.weight_optimizer.zero_grad()
        _, _, loss = self.recipe.loss(self.supernet, batch)
        if loss.requires_grad:  # a sampled path may have no weights at all (identity ops only)
            loss.backward()
            self.recipe.clip_gradients(self.supernet.weight_parameters())
            self.weight_optimizer.step()
        return float(loss.detach())

    def validation_score(self, sample: Sample, data: Any = None) -> float:
        """The recipe's validation score of ``sample``'s subnet with the supernet's
        weights (on the validation data, or ``data``); in the recipe's direction."""
        self.supernet.set_sample(sample)
        return float(self.recipe.validate(self.supernet, data)[self.recipe.metric_name])

    def reward(self, sample: Sample, batch: Any) -> float:
        """The recipe's score (accuracy; negated MSE) of ``sample``'s path on ``batch``,
        higher is better."""
        self.supernet.set_sample(sample)
        with torch.no_grad():
            x, y = self.recipe.split(batch)
            out = self.supernet(x)
            if self.recipe.task == "regression" and out.shape != y.shape and out.numel() == y.numel():
                out = out.reshape(y.shape)
            total, n = self.recipe.score(out, y)
        score = total / max(1, n)
        return score if self.recipe.direction == "maximize" else -score

    # The loop ---------------------------------------------------------------------------
    def search(
        self,
        space: ModelSpace,
        evaluator: Evaluator,
        *,
        seed: int,
        checkpoint: str | os.PathLike[str] | None = None,
        on_epoch: EpochCallback | None = None,
        deadline: float | None = None,
        device: str | torch.device | None = None,
        constraints: Sequence[Constraint] | None = None,
    ) -> Ranking:
        """Train the supernet for the recipe's epochs (resuming from ``checkpoint``
        when it exists) and return the ranking of the top ``top_k`` architectures.

        ``constraints``: architectures the ranking must meet (on top of the space's
        own constraints); an algorithm that cannot honour them, or constraints no
        architecture meets, fail here, before any training.

        ``deadline`` (a ``time.time()``): no epoch starts after it (``stopped_after``
        then holds the last epoch); ``device``: where the supernet and the batches go.
        A callback that asks to stop (``OneShotState.request_stop``; the evaluator's
        ``EarlyStopping``) ends the search after that epoch: ``stopped_after`` and
        ``stop_reason`` say when and why, and the architectures are ranked as usual.
        """
        constraints = self.check_constraints(constraints)
        self.recipe = recipe_of(evaluator, self.name)
        self.check_recipe(self.recipe)
        self.recipe.device = None if device is None else torch.device(device)
        self.stopped_after: int | None = None
        self.stop_reason = None
        torch.manual_seed(seed)
        self.rng = random.Random(seed)
        self.supernet = Supernet(rebuilt(space), self.family, self.name)
        #: the space the ranking (and a constraint-honouring algorithm's sampling) draws from
        self.constrained_space = constrained(self.supernet.search_space, constraints)
        if constraints:  # an unsatisfiable constraint: the space's error naming it, before any training
            self.constrained_space.random(rng=random.Random(seed))
        if self.recipe.device is not None:
            self.supernet.to(self.recipe.device)
        self.configure()
        train, arch = self.recipe.train_data, None
        if self.uses_arch_data:
            train, arch = _split_loader(train, seed) if self.arch_data == "split" else (train, self.recipe.val_data)
        # kept for phases outside the steps (ENAS' controller phase after the epoch)
        self.train_loader, self.arch_loader = train, arch
        epochs = self.recipe.max_epochs
        # The evaluator's rules run after the user's hooks, fresh per search; checkpoints last, as in Lightning.
        self._hooks = [
            *self.callbacks,
            *(MetricEarlyStopping.from_rule(rule) for rule in self.recipe.early_stopping),
            *(SupernetCheckpoint.from_rule(rule) for rule in self.recipe.checkpointing),
        ]
        state = OneShotState(self, epochs)
        start = 0
        path = Path(checkpoint) if checkpoint is not None else None
        if path is not None and path.exists():
            start = self._restore(path, state) + 1
            if state.stop_reason is not None:  # the stored run was stopped by a callback: it is over
                self.stopped_after, self.stop_reason, start = start - 1, state.stop_reason, epochs
        with torch.autograd.set_detect_anomaly(self.recipe.detect_anomaly):
            if start < epochs:
                state.epoch = start
                self._call("on_search_start", state)
            for epoch in range(start, epochs):
                self._train_epoch(epoch, state, train, arch, seed, path, on_epoch)
                if state.stop_reason is not None:
                    self.stopped_after, self.stop_reason = epoch, state.stop_reason
                    break
                if deadline is not None and time.time() >= deadline and epoch + 1 < epochs:
                    self.stopped_after = epoch
                    break
            state.ranking = self.ranking(self.top_k)
        self._call("on_search_end", state)
        return state.ranking

    def _train_epoch(
        self,
        epoch: int,
        state: OneShotState,
        train: Any,
        arch: Any,
        seed: int,
        path: Path | None,
        on_epoch: EpochCallback | None,
    ) -> None:
        epochs = state.max_epochs
        may_stop = epoch + 1 >= self.recipe.min_epochs  # as Lightning: no stop before min_epochs
        state.epoch, state.metrics, state.architecture = epoch, {}, None
        self.supernet.train()
        _reseed_loaders(seed + epoch, train, arch)
        self.on_epoch_start(epoch, epochs)
        self._call("on_epoch_start", state)
        arch_batches = _cycle(arch) if arch is not None and self.arch_batch_per_step else None
        totals: dict[str, float] = {}
        steps, cut = 0, False
        for batch in train:
            shown = self.training_step(batch, next(arch_batches) if arch_batches is not None else None)
            for key, value in shown.items():
                totals[key] = totals.get(key, 0.0) + value
            state.batch_index, state.step_metrics = steps, shown
            steps += 1
            state.step += 1
            self._call("on_step_end", state)
            if state.stop_reason is not None and may_stop:
                cut = True
                break
        if not steps:
            raise SpaceError("the training data is empty; give a non-empty train_dataloaders")
        metrics = {key: value / steps for key, value in totals.items()}
        metrics.update(self.on_epoch_end(epoch, epochs))
        sample = self.validation_sample()
        if sample is not None:
            self.supernet.set_sample(sample)
        metrics.update(self.recipe.validate(self.supernet))
        state.metrics = metrics
        if self._hooks:
            state.architecture = sample if sample is not None else self._most_probable()
        self._call("on_epoch_end", state)
        if state.stop_reason is not None and not may_stop:
            logger.info(
                "a stop was asked after epoch %d (%s), but min_epochs=%d is not reached: training goes on",
                epoch + 1,
                state.stop_reason,
                self.recipe.min_epochs,
            )
            state.stop_reason = None
        if state.stop_reason is not None and epoch + 1 == epochs and not cut:
            state.stop_reason = None  # asked after the last whole epoch: the run ended anyway, nothing was cut short
        if path is not None:
            self._save(path, epoch, state)
        if on_epoch is not None:
            on_epoch(epoch, epochs, metrics)

    def _most_probable(self) -> Sample | None:
        """The most probable architecture, for algorithms with architecture parameters."""
        decisions = self.supernet.decisions
        if not decisions.labels_with_alphas():
            return None
        found = most_probable(decisions, self.supernet.search_space, 1, self.supernet.active_labels)
        return found[0][0] if found else None

    def _call(self, hook: str, state: OneShotState) -> None:
        for callback in self._hooks:
            getattr(callback, hook)(state)

    def _save(self, path: Path, epoch: int, hooks: OneShotState) -> None:
        state = {
            "epoch": epoch,
            "step": hooks.step,
            "stop_reason": hooks.stop_reason,
            "callbacks": {key: c.state_dict() for key, c in zip(_hook_keys(self._hooks), self._hooks)},
            "supernet": self.supernet.state_dict(),
            "algorithm": self.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "rng": self.rng.getstate(),
        }
        tmp = path.with_suffix(".tmp")
        torch.save(state, tmp)
        os.replace(tmp, path)  # a crash mid-write leaves the previous checkpoint whole

    def _restore(self, path: Path, hooks: OneShotState) -> int:
        state = torch.load(path, weights_only=False, map_location=self.recipe.device)
        self.supernet.load_state_dict(state["supernet"])
        self.load_state_dict(state["algorithm"])
        torch.set_rng_state(state["torch_rng"])
        self.rng.setstate(state["rng"])
        hooks.step, hooks.stop_reason = int(state.get("step", 0)), state.get("stop_reason")
        saved = state.get("callbacks", {})
        for key, callback in zip(_hook_keys(self._hooks), self._hooks):
            if key in saved:  # a callback added since starts afresh
                callback.load_state_dict(saved[key])
        return int(state["epoch"])

    def __repr__(self) -> str:
        return f"{self.name}()"

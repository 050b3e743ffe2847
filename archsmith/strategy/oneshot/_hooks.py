"""Hooks into a one-shot search's loop: ``OneShotCallback`` (what a user
subclasses), ``OneShotState`` (what each hook sees) and ``MetricEarlyStopping``
(Lightning's ``EarlyStopping`` rule, run by the loop once per epoch).

A one-shot search trains in archsmith's own loop, not a Lightning Trainer, so a
Lightning callback's hooks are never called there; this is their counterpart::

    class Log(OneShotCallback):
        def on_epoch_end(self, state):
            print(state.epoch, state.metrics["val_acc"], state.probabilities)

    DARTS(callbacks=[Log()])
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from archsmith.space import Sample, SpaceError

if TYPE_CHECKING:
    from ._base import OneShotStrategy
    from ._supernet import Supernet

logger = logging.getLogger("archsmith.oneshot")


@dataclass
class OneShotState:
    """Where a one-shot search stands, as each hook of a ``OneShotCallback`` sees it.

    - ``algorithm``: the strategy running the search (its optimizers, its state);
    - ``epoch`` (from 0) and ``max_epochs``; ``step``: training steps taken since
      the search began (counting resumed epochs); ``batch_index``: the step's
      index in its epoch;
    - ``step_metrics``: what the last training step showed (e.g. ``train_loss``,
      ``arch_loss``); ``metrics``: the epoch's metrics — training values averaged
      over its steps, the algorithm's own, and the validation ones (``val_acc`` or
      ``val_mse``, ``val_loss``, ``default``); empty until ``on_epoch_end``, where
      a callback may add its own (recorded with the epoch, and seen by the
      callbacks after it: an ``EarlyStopping`` may monitor them);
    - ``architecture``: the architecture validated at the epoch's end (for
      DARTS-like algorithms, which validate the whole supernet: the most probable
      one); ``None`` until ``on_epoch_end``;
    - ``ranking``: the final ranking, in ``on_search_end`` only;
    - ``stop_reason``: why the search stops early (``None`` while it goes on).
    """

    algorithm: OneShotStrategy
    max_epochs: int
    epoch: int = 0
    step: int = 0
    batch_index: int = 0
    step_metrics: dict[str, float] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    architecture: Sample | None = None
    ranking: list[tuple[Sample, float]] | None = None
    stop_reason: str | None = None

    @property
    def supernet(self) -> Supernet:
        """The supernet being trained."""
        return self.algorithm.supernet

    @property
    def probabilities(self) -> dict[str, list[float]]:
        """``label -> probability of each option`` for algorithms with architecture
        parameters (DARTS, GumbelDARTS, Proxyless); empty for the others."""
        return self.supernet.decisions.probabilities()

    def request_stop(self, reason: str) -> None:
        """Stop the search early, as ``trainer.should_stop = True`` does: from
        ``on_step_end`` the epoch ends after this step; either way the epoch is
        validated and checkpointed, and the architectures are ranked. Not before
        the evaluator's ``min_epochs`` have run (as in Lightning); a stop asked
        after the last epoch's end changes nothing (the search ends there anyway)."""
        if not isinstance(reason, str) or not reason:
            raise SpaceError("request_stop needs the reason as a non-empty string (it is shown and stored)")
        if self.stop_reason is None:
            self.stop_reason = reason


class OneShotCallback:
    """Base of hooks into a one-shot search; override the ones you need.

    Pass instances to the strategy (``RandomOneShot(callbacks=[...])``). Hooks run
    in the order given; ``on_epoch_start`` before an epoch's first step,
    ``on_step_end`` after each training step, ``on_epoch_end`` after the epoch's
    validation (before its checkpoint and before the epoch is recorded),
    ``on_search_end`` after the ranking. A callback with state to keep across a
    resumed run returns it from ``state_dict`` (it is checkpointed with the
    supernet after every epoch).
    """

    def on_search_start(self, state: OneShotState) -> None:
        """Before the first epoch this run trains (after a resume: the next one)."""

    def on_epoch_start(self, state: OneShotState) -> None:
        """Before each epoch's first step."""

    def on_step_end(self, state: OneShotState) -> None:
        """After each training step (``state.step_metrics`` holds what it showed)."""

    def on_epoch_end(self, state: OneShotState) -> None:
        """After each epoch's validation (``state.metrics``, ``state.architecture``)."""

    def on_search_end(self, state: OneShotState) -> None:
        """After the ranking (``state.ranking``), once training is over."""

    def state_dict(self) -> dict[str, Any]:
        """What to checkpoint so that a resumed search continues this callback."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what ``state_dict`` returned."""


class MetricEarlyStopping(OneShotCallback):
    """Lightning's ``EarlyStopping`` rule on a one-shot search's epoch metrics:
    checked after each epoch's validation, with ``monitor``, ``mode``,
    ``patience``, ``min_delta``, ``strict``, ``check_finite``,
    ``stopping_threshold`` and ``divergence_threshold`` meaning what they mean in
    Lightning. A ``Classification(callbacks=[EarlyStopping(...)])`` gets one of
    these in a one-shot search; it may also be passed to a strategy directly.
    """

    def __init__(
        self,
        monitor: str,
        min_delta: float = 0.0,
        patience: int = 3,
        mode: str = "min",
        *,
        strict: bool = True,
        check_finite: bool = True,
        stopping_threshold: float | None = None,
        divergence_threshold: float | None = None,
        verbose: bool = False,
    ) -> None:
        if not isinstance(monitor, str) or not monitor:
            raise SpaceError(f"monitor must be the name of an epoch metric (e.g. 'val_loss'), got {monitor!r}")
        if mode not in ("min", "max"):
            raise SpaceError(f"mode must be 'min' or 'max', got {mode!r}")
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 0:
            raise SpaceError(f"patience must be an integer >= 0, got {patience!r}")
        self.monitor, self.mode, self.patience = monitor, mode, patience
        # As Lightning: an improvement is current - min_delta beyond the best, in the mode's direction.
        self.min_delta = float(min_delta) if mode == "max" else -float(min_delta)
        self.strict, self.check_finite, self.verbose = strict, check_finite, verbose
        self.stopping_threshold, self.divergence_threshold = stopping_threshold, divergence_threshold
        self.wait_count = 0
        self.best_score = -math.inf if mode == "max" else math.inf

    @classmethod
    def from_rule(cls, rule: Any) -> MetricEarlyStopping:
        """One built from a ``TrainingRecipe``'s ``EarlyStoppingRule``."""
        return cls(
            rule.monitor,
            rule.min_delta,
            rule.patience,
            rule.mode,
            strict=rule.strict,
            check_finite=rule.check_finite,
            stopping_threshold=rule.stopping_threshold,
            divergence_threshold=rule.divergence_threshold,
            verbose=rule.verbose,
        )

    def _better(self, a: float, b: float) -> bool:
        return a > b if self.mode == "max" else a < b

    def on_epoch_end(self, state: OneShotState) -> None:
        if self.monitor not in state.metrics:
            message = (
                f"early stopping monitors {self.monitor!r}, which this one-shot search does not report; "
                f"monitor one of {sorted(state.metrics)}"
            )
            if self.strict:
                raise SpaceError(message)
            if self.verbose:
                logger.warning(message)
            return
        reason = self.check(float(state.metrics[self.monitor]))
        if reason is not None:
            state.request_stop(reason)

    def check(self, current: float) -> str | None:
        """Take one epoch's value of the monitored metric; the reason to stop, or
        ``None`` (Lightning's ``_evaluate_stopping_criteria``, in the same order)."""
        sign = ">" if self.mode == "max" else "<"
        reason = None
        if self.check_finite and not math.isfinite(current):
            reason = f"{self.monitor} = {current} is not finite; the best was {self.best_score:.6g}"
        elif self.stopping_threshold is not None and self._better(current, self.stopping_threshold):
            reason = f"stopping threshold reached: {self.monitor} = {current:.6g} {sign} {self.stopping_threshold}"
        elif self.divergence_threshold is not None and self._better(-current, -self.divergence_threshold):
            opposite = "<" if self.mode == "max" else ">"
            reason = (
                f"divergence threshold reached: {self.monitor} = {current:.6g} {opposite} {self.divergence_threshold}"
            )
        elif self._better(current - self.min_delta, self.best_score):
            self.best_score, self.wait_count = current, 0
        else:
            self.wait_count += 1
            if self.wait_count >= self.patience:
                reason = (
                    f"{self.monitor} did not improve in the last {self.wait_count} epochs "
                    f"(patience {self.patience}, min_delta {abs(self.min_delta)}); the best was {self.best_score:.6g}"
                )
        if reason is not None and self.verbose:
            logger.info("early stopping: %s", reason)
        return reason

    def state_dict(self) -> dict[str, Any]:
        return {"wait_count": self.wait_count, "best_score": self.best_score}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.wait_count, self.best_score = int(state["wait_count"]), float(state["best_score"])

    def __repr__(self) -> str:
        return f"MetricEarlyStopping(monitor={self.monitor!r}, mode={self.mode!r}, patience={self.patience})"

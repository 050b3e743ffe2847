"""``TrainingRecipe``: what a built-in evaluator knows about training a model —
data, loss, optimizer, epochs and how to score — for code that runs its own loop
(the one-shot algorithms train a supernet with it instead of a Lightning Trainer).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch


@dataclass(frozen=True)
class EarlyStoppingRule:
    """The settings of a Lightning ``EarlyStopping`` callback, for a loop that
    checks them itself once per epoch, after validation (as Lightning does).

    ``min_delta`` is as the user gave it (Lightning flips its sign internally for
    ``mode="min"``); the others mean what they mean in Lightning.
    """

    monitor: str
    min_delta: float = 0.0
    patience: int = 3
    mode: str = "min"
    strict: bool = True
    check_finite: bool = True
    stopping_threshold: float | None = None
    divergence_threshold: float | None = None
    verbose: bool = False


@dataclass(frozen=True)
class CheckpointRule:
    """The settings of a Lightning ``ModelCheckpoint`` callback (``dirpath``
    resolved as Lightning does), for a loop that saves its model itself after
    each epoch's validation."""

    dirpath: str
    filename: str | None = None
    monitor: str | None = None
    mode: str = "min"
    save_top_k: int = 1
    save_last: bool = False
    save_weights_only: bool = False
    every_n_epochs: int = 1
    auto_insert_metric_name: bool = True
    enable_version_counter: bool = True
    verbose: bool = False


@dataclass
class TrainingRecipe:
    """Data, loss and optimizer of a ``Classification``/``Regression`` evaluator.

    ``task`` is ``"classification"`` (score: accuracy, maximized) or
    ``"regression"`` (score: mean squared error, minimized).

    The Trainer settings a loop of one's own honours: ``early_stopping`` (one
    rule per Lightning ``EarlyStopping`` callback), ``checkpointing`` (one per
    ``ModelCheckpoint``), ``min_epochs`` (no stop before it), ``gradient_clip_val``/``gradient_clip_algorithm`` (see
    ``clip_gradients``) and ``detect_anomaly``.
    """

    task: str
    criterion: Callable[..., torch.Tensor]
    make_optimizer: Callable[[Iterable[torch.nn.Parameter]], torch.optim.Optimizer]
    train_data: Any
    val_data: Any
    max_epochs: int
    learning_rate: float
    seed: int | None = None
    #: where ``split`` puts each batch (``None``: where it is)
    device: torch.device | None = None
    early_stopping: tuple[EarlyStoppingRule, ...] = ()
    checkpointing: tuple[CheckpointRule, ...] = ()
    min_epochs: int = 0
    gradient_clip_val: float | None = None
    gradient_clip_algorithm: str = "norm"
    detect_anomaly: bool = False

    @property
    def metric_name(self) -> str:
        return "val_acc" if self.task == "classification" else "val_mse"

    @property
    def direction(self) -> str:
        return "maximize" if self.task == "classification" else "minimize"

    def clip_gradients(self, parameters: Iterable[torch.nn.Parameter]) -> None:
        """Clip the gradients of ``parameters`` as ``Trainer(gradient_clip_val=...,
        gradient_clip_algorithm=...)`` would (their norm, or each value); nothing
        when ``gradient_clip_val`` is unset or 0."""
        if not self.gradient_clip_val:
            return
        if self.gradient_clip_algorithm == "value":
            torch.nn.utils.clip_grad_value_(list(parameters), self.gradient_clip_val)
        else:
            torch.nn.utils.clip_grad_norm_(list(parameters), self.gradient_clip_val)

    def split(self, batch: Any) -> tuple[Any, torch.Tensor]:
        """``(inputs, targets)`` of a batch, on ``device``."""
        if isinstance(batch, (list, tuple)) and len(batch) == 2:
            x, y = batch[0], batch[1]
        elif isinstance(batch, dict) and {"x", "y"} <= set(batch):
            x, y = batch["x"], batch["y"]
        else:
            raise ValueError(f"a batch must be (inputs, targets), got {type(batch).__name__}")
        return self._to_device(x), self._to_device(y)

    def _to_device(self, value: Any) -> Any:
        if self.device is None:
            return value
        if isinstance(value, torch.Tensor):
            return value.to(self.device, non_blocking=True)
        if isinstance(value, (list, tuple)):
            return type(value)(self._to_device(v) for v in value)
        if isinstance(value, dict):
            return {k: self._to_device(v) for k, v in value.items()}
        return value

    def loss(self, model: torch.nn.Module, batch: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(outputs, targets, loss)`` of ``model`` on ``batch``."""
        x, y = self.split(batch)
        out = model(x)
        if self.task == "regression" and out.shape != y.shape and out.numel() == y.numel():
            out = out.reshape(y.shape)
        return out, y, self.criterion(out, y)

    def score(self, outputs: torch.Tensor, targets: torch.Tensor) -> tuple[float, int]:
        """``(sum of the per-item score, items)``: correct predictions, or squared errors."""
        if self.task == "classification":
            if outputs.ndim == 1 or outputs.shape[-1] == 1:
                predicted = (outputs.reshape(-1) > 0).long()
            else:
                predicted = outputs.argmax(dim=-1)
            target = (
                targets.argmax(dim=-1)
                if targets.is_floating_point() and targets.shape == outputs.shape and targets.ndim > 1
                else targets
            )
            return float((predicted == target.reshape(predicted.shape)).sum()), len(predicted)
        diff = (outputs - targets).double()
        return float((diff**2).sum()), diff.numel()

    @torch.no_grad()
    def validate(self, model: torch.nn.Module, data: Any = None) -> dict[str, float]:
        """``{metric_name: score, "val_loss": ...}`` (``val_acc`` or ``val_mse``; and
        ``"val_mae"`` for regression, as the evaluator reports) of ``model`` on the
        validation data (or ``data``), in eval mode."""
        was_training = model.training
        if was_training:  # train()/eval() walk every module: costly on a supernet scored many times
            model.eval()
        total, count, loss_sum, batches, absolute = 0.0, 0, 0.0, 0, 0.0
        try:
            for batch in self.val_data if data is None else data:
                out, y, loss = self.loss(model, batch)
                s, n = self.score(out, y)
                total, count = total + s, count + n
                loss_sum, batches = loss_sum + float(loss) * len(y), batches + len(y)
                if self.task == "regression":
                    absolute += float((out - y).double().abs().sum())
        finally:
            if was_training:
                model.train()
        if not count:
            raise ValueError("the validation data is empty; give a non-empty val_dataloaders")
        score = total / count
        metrics = {self.metric_name: score, "val_loss": loss_sum / max(1, batches)}
        if self.task == "regression":
            metrics["val_mae"] = absolute / count
        return metrics

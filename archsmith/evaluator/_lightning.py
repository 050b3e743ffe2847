"""Lightning-based evaluators: ``Classification``, ``Regression`` and ``Lightning``.

This module (with ``_oneshot_settings``, which only it imports) is the only part
of archsmith that imports Lightning (the ``lightning`` package, 2.4 or newer);
``archsmith.evaluator`` loads it on first use of one of these names.

``Classification`` / ``Regression`` train the frozen model with a small built-in
``LightningModule`` (loss, optimizer, accuracy or MSE). ``Lightning`` runs a
``LightningModule`` of your own. All three report validation metrics once per
epoch (``report_intermediate_result``), the last one as the final result
(``report_final_result``, also returned), and stop at the end of an epoch when
``should_stop()`` says so (early stopping).
"""

from __future__ import annotations

import contextlib
import copy
import difflib
import inspect
import logging
import math
import signal
import threading
import warnings
from collections.abc import Callable, Iterator, Mapping
from typing import Any, cast

import lightning.pytorch as pl
import torch
from lightning.fabric.utilities.seed import seed_everything
from lightning.fabric.utilities.warnings import PossibleUserWarning
from lightning.pytorch.callbacks import ModelCheckpoint

from archsmith.space import Categorical, Mutable, Numerical, SpaceError, contains_mutable

from ._base import Evaluator
from ._metric import MetricError
from ._oneshot_settings import oneshot_settings
from ._recipe import TrainingRecipe
from ._trial import current_trial, report_final_result, report_intermediate_result, should_stop

__all__ = ["Classification", "Lightning", "Regression"]

DEFAULT_MAX_EPOCHS = 10

# Quiet, CPU-friendly defaults; the user's trainer kwargs override each of them.
_TRAINER_DEFAULTS: dict[str, Any] = {
    "accelerator": "auto",
    "devices": 1,
    "logger": False,
    "enable_checkpointing": False,
    "enable_progress_bar": False,
    "enable_model_summary": False,
    "num_sanity_val_steps": 0,
}
_LENGTH_KEYS = ("max_epochs", "max_steps", "max_time")


# Argument checks -------------------------------------------------------------------


def _possible_values(value: Any) -> list[Any] | None:
    """The values ``value`` may take in a trial; ``None`` when that is not known
    before the trial (an expression over choices): then it is checked at evaluate time."""
    if isinstance(value, Categorical):
        return list(value.values)
    if isinstance(value, Numerical):
        return [value.low, value.high]
    if isinstance(value, Mutable):
        return None
    return [value]


def _check_number(owner: str, name: str, value: Any, *, positive: bool, integer: bool = False) -> None:
    """``value`` (or each value a choice may take) is a finite number, > 0 or >= 0."""
    for v in _possible_values(value) or []:
        ok = isinstance(v, int) if integer else isinstance(v, (int, float))
        if isinstance(v, bool) or not ok or not math.isfinite(v) or (v <= 0 if positive else v < 0):
            via = f" (a value of the choice {value!r})" if isinstance(value, Mutable) else ""
            wanted = f"{'a positive' if positive else 'a non-negative'} {'integer' if integer else 'number'}"
            example = {"learning_rate": "1e-3", "weight_decay": "1e-4", "max_epochs": "5", "seed": "0"}.get(name, "1")
            raise SpaceError(f"{owner}: {name}={v!r}{via} is not valid; {name} must be {wanted}, e.g. {name}={example}")


def _check_data(owner: str, train: Any, val: Any, datamodule: Any, *, need_val: bool) -> None:
    if datamodule is not None:
        if train is not None or val is not None:
            raise SpaceError(
                f"{owner}: give either train_dataloaders/val_dataloaders or datamodule, not both; "
                "drop the dataloaders (the datamodule provides them) or drop datamodule"
            )
        if not isinstance(datamodule, pl.LightningDataModule):
            raise SpaceError(
                f"{owner}: datamodule={datamodule!r} is not a lightning.pytorch.LightningDataModule; "
                "pass one, or pass train_dataloaders=... and val_dataloaders=... instead"
            )
        return
    if train is None:
        raise SpaceError(
            f"{owner}: no training data; pass train_dataloaders=DataLoader(...)"
            + (" and val_dataloaders=DataLoader(...)" if need_val else "")
            + " or datamodule=a LightningDataModule"
        )
    if need_val and val is None:
        raise SpaceError(
            f"{owner}: no validation data, so there is nothing to score the model on; pass "
            "val_dataloaders=DataLoader(...) (a held-out split), or a datamodule with val_dataloader()"
        )


def _check_trainer_kwargs(owner: str, kwargs: Mapping[str, Any]) -> None:
    accepted = inspect.signature(pl.Trainer.__init__).parameters
    for key in kwargs:
        if key not in accepted:
            close = difflib.get_close_matches(key, [k for k in accepted if k != "self"], n=1)
            hint = f"did you mean {close[0]}?" if close else "remove it or fix the spelling"
            raise SpaceError(f"{owner}: {key} is not an argument of lightning.pytorch.Trainer; {hint}")
    callbacks = kwargs.get("callbacks")
    if callbacks is not None and contains_mutable(callbacks):
        raise SpaceError(f"{owner}: callbacks cannot hold choices; choose their settings in another argument")


def _build_criterion(owner: str, criterion: Any) -> Callable[..., Any]:
    if isinstance(criterion, type):
        if not issubclass(criterion, torch.nn.Module):
            raise SpaceError(
                f"{owner}: criterion={criterion.__name__} is not a loss; pass a loss class such as "
                "torch.nn.CrossEntropyLoss, an instance such as torch.nn.MSELoss(reduction='mean'), "
                "or a function loss(outputs, targets)"
            )
        try:
            return criterion()
        except TypeError as e:
            raise SpaceError(
                f"{owner}: criterion={criterion.__name__} could not be built with no arguments ({e}); "
                f"pass an instance instead, e.g. criterion={criterion.__name__}(...)"
            ) from None
    if isinstance(criterion, torch.nn.Module) or (callable(criterion) and not isinstance(criterion, Mutable)):
        return criterion
    raise SpaceError(
        f"{owner}: criterion={criterion!r} is not a loss; pass a loss class such as torch.nn.CrossEntropyLoss, "
        "an instance such as torch.nn.MSELoss(), or a function loss(outputs, targets)"
    )


def _optimizer_factory(owner: str, optimizer: Any) -> Callable[..., torch.optim.Optimizer]:
    """An optimizer class, a function ``(params, lr=, weight_decay=, **kw)``, or the name
    of a ``torch.optim`` class (names may be choices: ``choice("opt", ["Adam", "SGD"])``)."""
    if isinstance(optimizer, str):
        found = getattr(torch.optim, optimizer, None)
        if not (isinstance(found, type) and issubclass(found, torch.optim.Optimizer)):
            names = sorted(
                n for n, c in vars(torch.optim).items() if isinstance(c, type) and issubclass(c, torch.optim.Optimizer)
            )
            names = [n for n in names if n != "Optimizer"]
            raise SpaceError(
                f"{owner}: optimizer={optimizer!r} is not a torch.optim optimizer; use a class such as "
                f"torch.optim.Adam or one of the names {names}"
            )
        return found
    if isinstance(optimizer, type):
        if not issubclass(optimizer, torch.optim.Optimizer):
            raise SpaceError(
                f"{owner}: optimizer={optimizer.__name__} is not a torch.optim.Optimizer subclass; pass e.g. "
                "torch.optim.Adam, a name such as 'SGD', or a function (params, lr, weight_decay) -> Optimizer"
            )
        return optimizer
    if callable(optimizer) and not isinstance(optimizer, Mutable):
        return optimizer
    raise SpaceError(
        f"{owner}: optimizer={optimizer!r} is not an optimizer; pass a class such as torch.optim.Adam, "
        "a name such as 'SGD' (a choice of names works too), or a function (params, lr, weight_decay) -> Optimizer"
    )


def _check_optimizer(owner: str, optimizer: Any) -> None:
    if isinstance(optimizer, Mutable):
        if not isinstance(optimizer, Categorical):
            raise SpaceError(
                f"{owner}: optimizer={optimizer!r} must be a plain choice of torch.optim names, "
                "e.g. archsmith.space.choice('optimizer', ['Adam', 'SGD'])"
            )
        for name in optimizer.values:
            _optimizer_factory(owner, name)
        return
    _optimizer_factory(owner, optimizer)


# Running a trainer -------------------------------------------------------------------


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence Lightning's chatter (device info, 'few workers' hints) during one run."""
    loggers = [logging.getLogger(name) for name in ("lightning.pytorch", "lightning.fabric", "lightning")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=PossibleUserWarning)
            warnings.filterwarnings("ignore", message=".*does not have many workers.*")
            # Lightning's tree helpers trip a deprecation in newer torch; not the user's concern.
            warnings.filterwarnings("ignore", message=".*LeafSpec.*is deprecated.*")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


@contextlib.contextmanager
def _interrupt_passes_through() -> Iterator[None]:
    """Lightning answers Ctrl-C inside ``fit`` by ignoring SIGINT from then on and
    calling ``sys.exit(1)``. Give the experiment its ``KeyboardInterrupt`` back (so a
    run ends cleanly) and restore the SIGINT handler."""
    main_thread = threading.current_thread() is threading.main_thread()
    handler = signal.getsignal(signal.SIGINT) if main_thread else None
    try:
        yield
    except SystemExit as exit_:
        if isinstance(exit_.__context__, KeyboardInterrupt):
            raise KeyboardInterrupt from None
        raise
    finally:
        if main_thread and handler is not None and signal.getsignal(signal.SIGINT) is not handler:
            signal.signal(signal.SIGINT, handler)


def _make_trainer(trainer_kwargs: Mapping[str, Any], extra_callbacks: list[pl.Callback]) -> pl.Trainer:
    kwargs = dict(_TRAINER_DEFAULTS)
    if not any(k in trainer_kwargs for k in _LENGTH_KEYS):
        kwargs["max_epochs"] = DEFAULT_MAX_EPOCHS
    kwargs.update(trainer_kwargs)
    callbacks = kwargs.pop("callbacks", None) or []
    if not isinstance(callbacks, (list, tuple)):
        callbacks = [callbacks]
    # A fresh copy per trial: stateful callbacks (EarlyStopping, ...) must not leak between trials.
    kwargs["callbacks"] = [*copy.deepcopy(list(callbacks)), *extra_callbacks]
    if "enable_checkpointing" not in trainer_kwargs and any(isinstance(c, ModelCheckpoint) for c in callbacks):
        kwargs["enable_checkpointing"] = True  # a ModelCheckpoint given is one asked for (the default here is off)
    return pl.Trainer(**kwargs)


def _seed(seed: Any, *loaders: Any) -> None:
    """Seed torch, numpy and random, and the generators the user's DataLoaders carry
    (``DataLoader(..., generator=g)`` shuffles with ``g``, not the global seed)."""
    if seed is None:
        return
    seed_everything(int(seed), workers=True, verbose=False)
    for loader in _loaders(loaders):
        generator = getattr(loader, "generator", None)
        if isinstance(generator, torch.Generator):
            generator.manual_seed(int(seed))
        sampler_generator = getattr(getattr(loader, "sampler", None), "generator", None)
        if isinstance(sampler_generator, torch.Generator) and sampler_generator is not generator:
            sampler_generator.manual_seed(int(seed))


def _loaders(obj: Any) -> Iterator[Any]:
    if isinstance(obj, (list, tuple)):
        for item in obj:
            yield from _loaders(item)
    elif isinstance(obj, Mapping):
        for item in obj.values():
            yield from _loaders(item)
    elif isinstance(obj, torch.utils.data.DataLoader):
        yield obj


def _scalars(metrics: Mapping[str, Any]) -> dict[str, float]:
    """The single-number entries of Lightning's ``callback_metrics``, as floats."""
    out: dict[str, float] = {}
    for key, value in metrics.items():
        if isinstance(value, torch.Tensor):
            if value.numel() != 1:
                continue
            out[key] = float(value.detach().cpu().item())
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out[key] = float(value)
    return out


def _report_final(metric: dict[str, float]) -> dict[str, float] | Any:
    ctx = current_trial()
    if ctx is not None and ctx.final is not None:  # the training code reported it already
        return ctx.final
    report_final_result(metric)
    return metric


def _stop_if_asked(trainer: pl.Trainer) -> None:
    if should_stop():
        trainer.should_stop = True


class _ReportCallback(pl.Callback):
    """For ``Lightning``: reports what the module logged at the end of each training
    epoch (after its validation) and obeys ``should_stop()``."""

    def __init__(self, objective: str | None) -> None:
        self.objective = objective

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        metric = _scalars(trainer.callback_metrics)
        if metric:
            report_intermediate_result(metric)
        _stop_if_asked(trainer)


# The built-in module of Classification / Regression ----------------------------------


def _split(batch: Any, owner: str) -> tuple[Any, torch.Tensor]:
    if isinstance(batch, (list, tuple)) and len(batch) >= 2:
        return batch[0], batch[1]
    raise TypeError(
        f"{owner} expects each batch to be (inputs, targets), as a TensorDataset gives; got "
        f"{type(batch).__name__}. Wrap your dataset to return pairs, or use archsmith.evaluator.Lightning "
        "with a LightningModule of your own"
    )


class _SupervisedModule(pl.LightningModule):
    """Trains ``model`` with ``criterion``; sums the epoch's metrics itself (no
    dependence on Lightning's logging internals, which vary between releases)."""

    def __init__(
        self,
        model: torch.nn.Module,
        criterion: Callable[..., Any],
        optimizer: Callable[..., torch.optim.Optimizer],
        optimizer_kwargs: dict[str, Any],
        task: str,
        owner: str,
        num_classes: int | None,
    ) -> None:
        super().__init__()
        self.model = model
        self.criterion = criterion
        self.optimizer = optimizer
        self.optimizer_kwargs = optimizer_kwargs
        self.task = task
        self.owner = owner
        self.num_classes = num_classes
        self.val_metrics: dict[str, float] | None = None
        self.val_fresh = False
        # Sums stay tensors on the model's device until the epoch ends: no sync per step.
        self._train: list[Any] = [0.0, 0]
        self._val: dict[str, Any] = {}

    def forward(self, x: Any) -> Any:
        return self.model(x)

    def configure_optimizers(self) -> Any:
        return self.optimizer(self.model.parameters(), **self.optimizer_kwargs)

    def _outputs(self, batch: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x, y = _split(batch, self.owner)
        out = self.model(x)
        if self.task == "regression" and out.shape != y.shape and out.numel() == y.numel():
            out = out.reshape(y.shape)  # (N, 1) outputs against (N,) targets
        if self.task == "classification" and self.num_classes is not None and out.ndim == 2:
            if out.shape[1] != self.num_classes:
                raise ValueError(
                    f"{self.owner}(num_classes={self.num_classes}): the model outputs {out.shape[1]} scores per "
                    f"sample; make its last layer output {self.num_classes}, or fix num_classes"
                )
        return out, y, self.criterion(out, y)

    def on_train_epoch_start(self) -> None:
        self._train = [0.0, 0]

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        _, y, loss = self._outputs(batch)
        n = len(y)
        self._train[0] = self._train[0] + loss.detach() * n
        self._train[1] += n
        return loss

    def on_validation_epoch_start(self) -> None:
        self._val = {"n": 0, "loss": 0.0, "correct": 0.0, "squared": 0.0, "absolute": 0.0, "elements": 0}

    def validation_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        out, y, loss = self._outputs(batch)
        n = len(y)
        acc = self._val
        acc["n"] += n
        acc["loss"] = acc["loss"] + loss.detach() * n
        if self.task == "classification":
            if out.ndim == 1 or out.shape[-1] == 1:  # one logit per sample: binary
                predicted = (out.reshape(-1) > 0).long()
            else:
                predicted = out.argmax(dim=-1)
            target = y.argmax(dim=-1) if y.is_floating_point() and y.shape == out.shape and y.ndim > 1 else y
            acc["correct"] = acc["correct"] + (predicted == target.reshape(predicted.shape)).sum()
        else:
            diff = (out - y).double()
            acc["squared"] = acc["squared"] + (diff**2).sum()
            acc["absolute"] = acc["absolute"] + diff.abs().sum()
            acc["elements"] += diff.numel()

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking:
            return
        acc = self._val
        n = max(1, int(acc["n"]))
        metrics = {"val_loss": float(acc["loss"]) / n}
        if self.task == "classification":
            metrics["val_acc"] = float(acc["correct"]) / n
        else:
            elements = max(1, int(acc["elements"]))
            metrics["val_mse"] = float(acc["squared"]) / elements
            metrics["val_mae"] = float(acc["absolute"]) / elements
        self.val_metrics = metrics
        self.val_fresh = True
        self.log_dict(metrics)

    def train_loss(self) -> float | None:
        total, n = self._train
        return float(total) / n if n else None

    def epoch_metric(self) -> dict[str, float]:
        metric = dict(self.val_metrics or {})
        train_loss = self.train_loss()
        if train_loss is not None:
            metric["train_loss"] = train_loss
        return metric

    def on_train_epoch_end(self) -> None:
        train_loss = self.train_loss()
        if train_loss is not None:
            self.log("train_loss", train_loss)
        if self.val_fresh:  # epochs without validation (check_val_every_n_epoch > 1) report nothing
            report_intermediate_result(self.epoch_metric())
            self.val_fresh = False
        _stop_if_asked(self.trainer)


class _Supervised(Evaluator):
    """Shared body of ``Classification`` and ``Regression``."""

    _task = ""
    _default_criterion: type[torch.nn.Module] = torch.nn.Module

    def __init__(
        self,
        criterion: Any = None,
        learning_rate: Any = 1e-3,
        weight_decay: Any = 0.0,
        optimizer: Any = torch.optim.Adam,
        train_dataloaders: Any = None,
        val_dataloaders: Any = None,
        datamodule: Any = None,
        max_epochs: Any = DEFAULT_MAX_EPOCHS,
        num_classes: int | None = None,
        *,
        optimizer_kwargs: dict[str, Any] | None = None,
        seed: Any = None,
        **trainer_kwargs: Any,
    ) -> None:
        owner = type(self).__name__
        _check_data(owner, train_dataloaders, val_dataloaders, datamodule, need_val=True)
        self.criterion = self._default_criterion if criterion is None else criterion
        _build_criterion(owner, self.criterion)  # fails now, not in a worker
        _check_number(owner, "learning_rate", learning_rate, positive=True)
        _check_number(owner, "weight_decay", weight_decay, positive=False)
        _check_number(owner, "max_epochs", max_epochs, positive=True, integer=True)
        if seed is not None:
            _check_number(owner, "seed", seed, positive=False, integer=True)
        if num_classes is not None and (
            isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1
        ):
            raise SpaceError(
                f"{owner}: num_classes={num_classes!r} must be a positive integer (or None to skip the check)"
            )
        _check_optimizer(owner, optimizer)
        if optimizer_kwargs is not None and not isinstance(optimizer_kwargs, dict):
            raise SpaceError(f"{owner}: optimizer_kwargs={optimizer_kwargs!r} must be a dict, e.g. {{'momentum': 0.9}}")
        for key in ("lr", "weight_decay", "params"):
            if optimizer_kwargs and key in optimizer_kwargs:
                raise SpaceError(
                    f"{owner}: optimizer_kwargs sets {key!r}, which {owner} sets itself; "
                    + ("use learning_rate=..." if key == "lr" else f"use {key}=..." if key != "params" else "remove it")
                )
        _check_trainer_kwargs(owner, trainer_kwargs)
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.optimizer = optimizer
        self.optimizer_kwargs = dict(optimizer_kwargs or {})
        self.train_dataloaders = train_dataloaders
        self.val_dataloaders = val_dataloaders
        self.datamodule = datamodule
        self.max_epochs = max_epochs
        self.num_classes = num_classes
        self.seed = seed
        self.trainer_kwargs = trainer_kwargs

    def arguments(self) -> dict[str, Any]:
        return {
            "learning_rate": self.learning_rate,
            "weight_decay": self.weight_decay,
            "optimizer": self.optimizer,
            "optimizer_kwargs": self.optimizer_kwargs,
            "max_epochs": self.max_epochs,
            "seed": self.seed,
            "trainer_kwargs": self.trainer_kwargs,
        }

    def evaluate(self, model: torch.nn.Module) -> dict[str, float]:
        owner = type(self).__name__
        args = self.resolved()
        # Choices may hide values the constructor could not check (expressions over choices).
        _check_number(owner, "learning_rate", args["learning_rate"], positive=True)
        _check_number(owner, "weight_decay", args["weight_decay"], positive=False)
        _check_number(owner, "max_epochs", args["max_epochs"], positive=True, integer=True)
        optimizer = _optimizer_factory(owner, args["optimizer"])
        optimizer_kwargs = {
            "lr": args["learning_rate"],
            "weight_decay": args["weight_decay"],
            **args["optimizer_kwargs"],
        }
        module = _SupervisedModule(
            model,
            copy.deepcopy(_build_criterion(owner, self.criterion)),
            optimizer,
            optimizer_kwargs,
            self._task,
            owner,
            self.num_classes,
        )
        with _quiet(), _interrupt_passes_through():
            _seed(args["seed"], self.train_dataloaders, self.val_dataloaders)
            trainer = _make_trainer({"max_epochs": args["max_epochs"], **args["trainer_kwargs"]}, [])
            data: dict[str, Any] = (
                {"datamodule": self.datamodule}
                if self.datamodule is not None
                else {"train_dataloaders": self.train_dataloaders, "val_dataloaders": self.val_dataloaders}
            )
            trainer.fit(module, **data)
            if module.val_metrics is None:  # validation never ran during fit (e.g. check_val_every_n_epoch)
                if self.datamodule is not None:
                    trainer.validate(module, datamodule=self.datamodule, verbose=False)
                else:
                    trainer.validate(module, dataloaders=self.val_dataloaders, verbose=False)
        if module.val_metrics is None:
            raise MetricError(
                f"{owner}: validation produced no metric (is the validation data empty, or limit_val_batches=0?); "
                "give a non-empty val_dataloaders"
            )
        return _report_final(module.epoch_metric())

    def training_recipe(self) -> TrainingRecipe:
        """Data, loss, optimizer and epochs for a training loop of one's own (the
        one-shot algorithms use it). The arguments must not be choices here: a
        supernet is trained with one setting.

        Trainer kwargs and callbacks carry over where they mean something per
        epoch or step (``EarlyStopping``, ``min_epochs``, ``gradient_clip_val``,
        ``detect_anomaly``); any other is refused here, by name, with what to use
        instead. The evaluator itself is left unchanged."""
        owner = type(self).__name__
        leaves = self.search_space_leaves()
        if leaves:
            raise SpaceError(
                f"{owner}: {', '.join(repr(leaf.label) for leaf in leaves)} are choices, but a one-shot search "
                "trains one supernet with one setting; fix them to one value (or search them with a multi-trial "
                "strategy)"
            )
        args = self.resolved()
        settings = oneshot_settings(owner, args["trainer_kwargs"])  # refusals first: before any data is set up
        optimizer = _optimizer_factory(owner, args["optimizer"])
        kwargs = {"lr": args["learning_rate"], "weight_decay": args["weight_decay"], **args["optimizer_kwargs"]}
        train, val = self.train_dataloaders, self.val_dataloaders
        if self.datamodule is not None:
            self.datamodule.setup("fit")
            train, val = self.datamodule.train_dataloader(), self.datamodule.val_dataloader()
        return TrainingRecipe(
            task=self._task,
            criterion=copy.deepcopy(_build_criterion(owner, self.criterion)),
            make_optimizer=lambda params: optimizer(params, **kwargs),
            train_data=train,
            val_data=val,
            max_epochs=int(args["max_epochs"]),
            learning_rate=float(args["learning_rate"]),
            seed=args["seed"],
            **settings,
        )

    def __repr__(self) -> str:
        shown = {
            "criterion": getattr(self.criterion, "__name__", self.criterion),
            # `is`, never `==`: a choice compared with == builds an expression
            **{k: v for k, v in self.arguments().items() if v is not None and not (isinstance(v, dict) and not v)},
        }
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in shown.items())})"


class Classification(_Supervised):
    """Trains the model as a classifier and scores it by validation accuracy.

    Reports, per epoch and as the final result, ``{"val_acc", "val_loss",
    "train_loss"}``; ``val_acc`` is its primary metric, the experiment's objective
    unless told otherwise (``objective="default"`` names it too, as in NNI), and is
    to be maximized. ``learning_rate``,
    ``weight_decay``, ``max_epochs``, ``seed``, ``optimizer`` (as a ``torch.optim``
    name), ``optimizer_kwargs`` values and trainer kwargs may be choices: they join
    the search space. Batches are ``(inputs, targets)``; targets are class indices
    (or one-hot rows); a model with a single output is read as a binary logit.
    Other keyword arguments go to ``lightning.pytorch.Trainer``.
    """

    _task = "classification"
    #: The metric an experiment optimises when ``objective`` is not given (or is ``"default"``).
    primary_metric = "val_acc"

    def preferred_direction(self, objective: str) -> str | None:
        return "maximize" if objective in ("default", "val_acc") else "minimize" if "loss" in objective else None

    _default_criterion = torch.nn.CrossEntropyLoss  # criterion=None (the default) means this


class Regression(_Supervised):
    """Trains the model as a regressor and scores it by validation mean squared error.

    Reports ``{"val_mse", "val_mae", "val_loss", "train_loss"}``; ``val_mse`` is its
    primary metric (the experiment's objective unless told otherwise;
    ``objective="default"`` names it too) and is minimized. Model
    outputs of shape ``(N, 1)`` are compared with targets of shape ``(N,)``.
    Otherwise as :class:`Classification`.
    """

    _task = "regression"
    #: The metric an experiment optimises when ``objective`` is not given (or is ``"default"``).
    primary_metric = "val_mse"

    def preferred_direction(self, objective: str) -> str | None:
        known = ("default", "val_mse", "val_mae", "val_loss", "train_loss")
        return "minimize" if objective in known else None

    _default_criterion = torch.nn.MSELoss

    def __init__(
        self,
        criterion: Any = torch.nn.MSELoss,
        learning_rate: Any = 1e-3,
        weight_decay: Any = 0.0,
        optimizer: Any = torch.optim.Adam,
        train_dataloaders: Any = None,
        val_dataloaders: Any = None,
        datamodule: Any = None,
        max_epochs: Any = DEFAULT_MAX_EPOCHS,
        *,
        optimizer_kwargs: dict[str, Any] | None = None,
        seed: Any = None,
        **trainer_kwargs: Any,
    ) -> None:
        super().__init__(
            criterion,
            learning_rate,
            weight_decay,
            optimizer,
            train_dataloaders,
            val_dataloaders,
            datamodule,
            max_epochs,
            None,
            optimizer_kwargs=optimizer_kwargs,
            seed=seed,
            **trainer_kwargs,
        )


# Your own LightningModule -----------------------------------------------------------


class Lightning(Evaluator):
    """Runs a ``LightningModule`` of your own on the frozen model.

    ``module`` gets the model in one of two ways:

    - a factory: a ``LightningModule`` class whose ``__init__`` takes the model as
      its first argument, or any function ``module(model, **module_kwargs)`` that
      returns a ``LightningModule``;
    - NNI's way: a ``LightningModule`` (class or instance) with a
      ``set_model(self, model)`` method. An instance is deep-copied for each trial,
      so trials never share weights or optimizer state.

    Metrics are what the module logs with ``self.log(...)`` (in ``training_step``,
    ``validation_step`` or ``on_validation_epoch_end``): after each training epoch
    (and its validation) every scalar in ``trainer.callback_metrics`` is reported;
    after training, the final one. ``objective="val_acc"`` makes that metric the
    primary one (the experiment's objective unless told otherwise), and a run
    whose module never logged it fails; without ``objective``, log ``"default"``
    yourself or name the experiment's ``objective``. ``trainer_kwargs``,
    ``module_kwargs`` and ``seed`` may hold choices.
    """

    def __init__(
        self,
        module: Any,
        trainer_kwargs: dict[str, Any] | None = None,
        train_dataloaders: Any = None,
        val_dataloaders: Any = None,
        datamodule: Any = None,
        *,
        module_kwargs: dict[str, Any] | None = None,
        objective: str | None = None,
        seed: Any = None,
    ) -> None:
        owner = "Lightning"
        _check_data(owner, train_dataloaders, val_dataloaders, datamodule, need_val=False)
        if trainer_kwargs is not None and not isinstance(trainer_kwargs, dict):
            raise SpaceError(f"{owner}: trainer_kwargs={trainer_kwargs!r} must be a dict of Trainer arguments")
        if module_kwargs is not None and not isinstance(module_kwargs, dict):
            raise SpaceError(f"{owner}: module_kwargs={module_kwargs!r} must be a dict of arguments for module(...)")
        _check_trainer_kwargs(owner, trainer_kwargs or {})
        if isinstance(module, pl.LightningModule):
            if not callable(getattr(module, "set_model", None)):
                raise SpaceError(
                    f"{owner}: module is a {type(module).__name__} instance without a set_model(model) method, so "
                    "the model cannot be put into it; add `def set_model(self, model): self.model = model`, or "
                    f"pass a factory: Lightning(lambda model: {type(module).__name__}(model), ...)"
                )
            if module_kwargs:
                raise SpaceError(
                    f"{owner}: module_kwargs only apply when module is a class or function; set them on the "
                    "instance, or pass the class"
                )
        elif not callable(module):
            raise SpaceError(
                f"{owner}: module={module!r} is not a LightningModule; pass a LightningModule class taking the "
                "model, a function model -> LightningModule, or an instance with set_model(model)"
            )
        if seed is not None:
            _check_number(owner, "seed", seed, positive=False, integer=True)
        if objective is not None and not isinstance(objective, str):
            raise SpaceError(f"{owner}: objective={objective!r} must be the name of a logged metric, e.g. 'val_acc'")
        self.module = module
        self.trainer_kwargs = dict(trainer_kwargs or {})
        self.train_dataloaders = train_dataloaders
        self.val_dataloaders = val_dataloaders
        self.datamodule = datamodule
        self.module_kwargs = dict(module_kwargs or {})
        self.objective = objective
        self.seed = seed

    @property
    def primary_metric(self) -> str:
        """The metric an experiment optimises when its ``objective`` is not given
        (or is ``"default"``): ``objective``, else ``"default"``."""
        return self.objective or "default"

    def arguments(self) -> dict[str, Any]:
        return {"trainer_kwargs": self.trainer_kwargs, "module_kwargs": self.module_kwargs, "seed": self.seed}

    def _build(self, model: torch.nn.Module, module_kwargs: dict[str, Any]) -> pl.LightningModule:
        module = self.module
        if isinstance(module, pl.LightningModule):
            built = copy.deepcopy(module)
            cast(Any, built).set_model(model)
            return built
        if isinstance(module, type) and callable(getattr(module, "set_model", None)):
            try:  # NNI style: built without the model when its __init__ allows it, then given the model
                inspect.signature(module).bind(**module_kwargs)
            except TypeError:
                pass
            else:
                built = module(**module_kwargs)
                cast(Any, built).set_model(model)
                return built
        if isinstance(module, type):
            try:
                inspect.signature(module).bind(model, **module_kwargs)
            except TypeError as e:
                raise TypeError(
                    f"Lightning: {module.__name__} cannot be built as {module.__name__}(model, **module_kwargs) "
                    f"({e}); make the model its first __init__ argument, or add a set_model(self, model) method"
                ) from None
        built = module(model, **module_kwargs)
        if not isinstance(built, pl.LightningModule):
            raise TypeError(
                f"Lightning: module(model) returned {type(built).__name__}, not a lightning.pytorch.LightningModule; "
                "return one (note: import it from `lightning.pytorch`, not the older `pytorch_lightning` package)"
            )
        return built

    def evaluate(self, model: torch.nn.Module) -> Any:
        args = self.resolved()
        module = self._build(model, args["module_kwargs"])
        with _quiet(), _interrupt_passes_through():
            _seed(args["seed"], self.train_dataloaders, self.val_dataloaders)
            trainer = _make_trainer(args["trainer_kwargs"], [_ReportCallback(self.objective)])
            if self.datamodule is not None:
                trainer.fit(module, datamodule=self.datamodule)
            else:
                trainer.fit(module, train_dataloaders=self.train_dataloaders, val_dataloaders=self.val_dataloaders)
        metric = _scalars(trainer.callback_metrics)
        if self.objective is not None:
            if self.objective not in metric:
                raise MetricError(
                    f"Lightning(objective={self.objective!r}): the module never logged {self.objective!r} "
                    f"(it logged {sorted(metric)}); call self.log({self.objective!r}, value) in validation_step"
                )
        if not metric:
            raise MetricError(
                "Lightning: the module logged no metric, so the trial has no result; call "
                "self.log('default', value) (or self.log('val_acc', ...) with objective='val_acc') in validation_step"
            )
        return _report_final(metric)

    def __repr__(self) -> str:
        name = getattr(self.module, "__qualname__", type(self.module).__name__)
        return f"Lightning({name}, trainer_kwargs={self.trainer_kwargs!r})"

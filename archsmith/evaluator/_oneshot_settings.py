"""Which ``lightning.pytorch.Trainer`` arguments and callbacks of a
``Classification``/``Regression`` carry over to a one-shot search, which trains
in archsmith's own loop instead of a Trainer.

Each argument is honoured (it becomes a ``TrainingRecipe`` field the loop
obeys), has no effect in Lightning's ``fit`` either (accepted), or is refused by
name with what to use instead. Nothing is ignored silently. Imported by
``_lightning`` only (it imports Lightning).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any

from lightning.pytorch.callbacks import (
    Callback,
    EarlyStopping,
    LearningRateMonitor,
    ModelCheckpoint,
    ModelSummary,
    ProgressBar,
)

from archsmith.space import SpaceError

from ._recipe import CheckpointRule, EarlyStoppingRule

_HOOK = (
    "write an archsmith.strategy.oneshot.OneShotCallback (on_epoch_start, on_step_end, on_epoch_end) and pass "
    "it to the one-shot strategy, e.g. RandomOneShot(callbacks=[...])"
)

#: Values of a Trainer argument that change nothing about training, as this
#: package's Trainer defaults (``_TRAINER_DEFAULTS``) or Lightning's own define them.
_NEUTRAL: dict[str, tuple[Any, ...]] = {
    "accelerator": ("auto",),
    "strategy": ("auto",),
    "devices": (1, "1"),
    "num_nodes": (1,),
    "precision": (None, 32, "32", "32-true"),
    "logger": (False,),
    "fast_dev_run": (False, 0),
    "max_steps": (-1, None),
    "min_steps": (None, 0),
    "max_time": (None,),
    "limit_train_batches": (None, 1.0),
    "limit_val_batches": (None, 1.0),
    "overfit_batches": (0, 0.0),
    "val_check_interval": (None, 1.0),
    "check_val_every_n_epoch": (1,),
    "num_sanity_val_steps": (0,),
    "enable_progress_bar": (False,),
    "enable_model_summary": (False,),
    "accumulate_grad_batches": (1,),
    "deterministic": (None, False),
    "benchmark": (None,),
    "inference_mode": (True,),
    "profiler": (None,),
    "detect_anomaly": (False,),
    "barebones": (False,),
    "plugins": (None,),
    "reload_dataloaders_every_n_epochs": (0,),
    "model_registry": (None,),
}

#: Arguments with no effect on ``fit`` without a logger and on one device, in
#: Lightning as here: any value is accepted.
_NO_EFFECT_ON_FIT = frozenset(
    {
        "limit_test_batches",
        "limit_predict_batches",
        "log_every_n_steps",
        "default_root_dir",  # read where ModelCheckpoint needs it
        "enable_autolog_hparams",
        "use_distributed_sampler",
        "sync_batchnorm",
    }
)

_LENGTH = "a one-shot search trains whole epochs: set the evaluator's max_epochs"
_DEVICE = "a one-shot search runs on one device, a GPU when ExperimentConfig(gpus_per_trial=1), else the CPU"
_DISPLAY = "a one-shot search prints one line per epoch itself (archsmith show lists them)"

#: Why each refused argument is refused, and what to use instead.
_INSTEAD: dict[str, str] = {
    "accelerator": f"{_DEVICE}; drop accelerator",
    "strategy": f"{_DEVICE}, with no distributed strategy; drop strategy",
    "devices": f"{_DEVICE}; drop devices",
    "num_nodes": f"{_DEVICE}; drop num_nodes",
    "precision": "a one-shot search trains in float32; drop precision for it",
    "logger": "a one-shot search records each epoch's metrics in the experiment's store (archsmith show, "
    f"meta 'oneshot_history'); to send them elsewhere, {_HOOK}",
    "fast_dev_run": "for a quick one-shot run set max_epochs=1 and pass small DataLoaders",
    "max_steps": _LENGTH,
    "min_steps": f"{_LENGTH} (min_epochs is honoured)",
    "max_time": "bound a one-shot run with ExperimentConfig(max_duration=...)",
    "limit_train_batches": "pass a smaller train DataLoader (e.g. over a torch.utils.data.Subset)",
    "limit_val_batches": "pass a smaller val DataLoader (e.g. over a torch.utils.data.Subset)",
    "overfit_batches": "pass a DataLoader over the few batches to overfit",
    "val_check_interval": "a one-shot search validates once per epoch",
    "check_val_every_n_epoch": "a one-shot search validates once per epoch (every epoch)",
    "num_sanity_val_steps": "a one-shot search runs no sanity validation; drop it",
    "enable_progress_bar": _DISPLAY,
    "enable_model_summary": _DISPLAY,
    "accumulate_grad_batches": "one-shot algorithms step their optimizers on every batch; use a larger "
    "batch_size in the train DataLoader",
    "deterministic": "a one-shot search is seeded by the experiment's seed; for deterministic kernels call "
    "torch.use_deterministic_algorithms(True) before run()",
    "benchmark": "set torch.backends.cudnn.benchmark yourself before run()",
    "inference_mode": "one-shot validation runs under torch.no_grad",
    "profiler": f"to time a one-shot search, {_HOOK}",
    "barebones": "a one-shot search has no Lightning machinery to strip",
    "plugins": "a one-shot search runs no Lightning plugins",
    "reload_dataloaders_every_n_epochs": "a one-shot search reads the evaluator's DataLoaders as given",
    "model_registry": "save the supernet (exp.supernet) or the exported architectures yourself",
}

#: Why each refused kind of callback is refused, and what to use instead.
_CALLBACK_INSTEAD: tuple[tuple[type, str], ...] = (
    (
        LearningRateMonitor,
        "a one-shot search has no logger and no learning-rate schedule (the weights train at the evaluator's "
        "learning_rate throughout); to record the optimizers' param_groups, " + _HOOK,
    ),
    (ProgressBar, _DISPLAY),
    (ModelSummary, _DISPLAY),
)


def _refuse(owner: str, what: str, why: str) -> SpaceError:
    return SpaceError(
        f"{owner}: {what} has no effect in a one-shot search, which trains in archsmith's own loop, not a "
        f"Lightning Trainer; {why}. (Multi-trial searches pass it to Lightning unchanged.)"
    )


def _early_stopping_rule(callback: EarlyStopping) -> EarlyStoppingRule:
    # Lightning stores min_delta negated for mode="min"; the rule keeps the user's value.
    min_delta = callback.min_delta if callback.mode == "max" else -callback.min_delta
    return EarlyStoppingRule(
        monitor=callback.monitor,
        min_delta=float(min_delta),
        patience=int(callback.patience),
        mode=callback.mode,
        strict=bool(callback.strict),
        check_finite=bool(callback.check_finite),
        stopping_threshold=callback.stopping_threshold,
        divergence_threshold=callback.divergence_threshold,
        verbose=bool(callback.verbose),
    )


def _checkpoint_rule(owner: str, callback: ModelCheckpoint, root: Any) -> CheckpointRule:
    # The trigger settings are private in Lightning (stable across 2.x); the public ones are checked first.
    refused = {
        "every_n_train_steps": getattr(callback, "_every_n_train_steps", 0) or None,
        "train_time_interval": getattr(callback, "_train_time_interval", None),
        "save_on_exception": getattr(callback, "save_on_exception", False) or None,
        "save_last='link'": True if callback.save_last == "link" else None,
    }
    for name, value in refused.items():
        if value is not None:
            shown = name if "=" in name else f"{name}={value!r}"
            raise _refuse(
                owner,
                f"callbacks=[ModelCheckpoint({shown})]",
                "a one-shot search saves after an epoch's validation only (every_n_epochs), as plain files",
            )
    dirpath = callback.dirpath  # Lightning's default without a logger: <default_root_dir>/checkpoints
    if dirpath is None:
        dirpath = os.path.join(os.fspath(root) if root is not None else os.getcwd(), "checkpoints")
    return CheckpointRule(
        dirpath=os.fspath(dirpath),
        filename=callback.filename,
        monitor=callback.monitor,
        mode=callback.mode,
        save_top_k=int(callback.save_top_k),
        save_last=bool(callback.save_last),
        save_weights_only=bool(callback.save_weights_only),
        every_n_epochs=int(getattr(callback, "_every_n_epochs", 1)),
        auto_insert_metric_name=bool(callback.auto_insert_metric_name),
        enable_version_counter=bool(getattr(callback, "_enable_version_counter", True)),
        verbose=bool(callback.verbose),
    )


def _callback_rules(
    owner: str, callbacks: Any, root: Any
) -> tuple[tuple[EarlyStoppingRule, ...], tuple[CheckpointRule, ...]]:
    if callbacks is None:
        return (), ()
    listed = list(callbacks) if isinstance(callbacks, (list, tuple)) else [callbacks]
    rules, checkpoints = [], []
    for callback in listed:
        name = type(callback).__name__
        # exact types only: a subclass may override hooks a one-shot loop never calls
        if type(callback) is EarlyStopping:
            rules.append(_early_stopping_rule(callback))
            continue
        if type(callback) is ModelCheckpoint:
            checkpoints.append(_checkpoint_rule(owner, callback, root))
            continue
        why = next((text for kind, text in _CALLBACK_INSTEAD if isinstance(callback, kind)), None)
        if why is None:
            if isinstance(callback, (EarlyStopping, ModelCheckpoint)):
                base = "EarlyStopping" if isinstance(callback, EarlyStopping) else "ModelCheckpoint"
                why = (
                    f"{name} subclasses {base}, and its own hooks would never be called; use a plain {base}, or {_HOOK}"
                )
            elif isinstance(callback, Callback):
                why = f"its hooks would never be called; {_HOOK}"
            else:
                why = f"it is not a Lightning callback; {_HOOK}"
        raise _refuse(owner, f"callbacks=[{name}(...)]", why)
    return tuple(rules), tuple(checkpoints)


def oneshot_settings(owner: str, trainer_kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The ``TrainingRecipe`` fields that honour ``trainer_kwargs`` in a one-shot
    loop; a ``SpaceError`` naming the first argument or callback it cannot honour."""
    settings: dict[str, Any] = {}
    checkpointing = False  # this package's default; Lightning's is True
    for key, value in trainer_kwargs.items():
        if key == "callbacks":
            root = trainer_kwargs.get("default_root_dir")
            settings["early_stopping"], settings["checkpointing"] = _callback_rules(owner, value, root)
        elif key == "enable_checkpointing":
            checkpointing = bool(value)
        elif key == "min_epochs":
            if value is not None:
                if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                    raise SpaceError(f"{owner}: min_epochs={value!r} must be an integer >= 0")
                settings["min_epochs"] = value
        elif key == "gradient_clip_val":
            if value is not None:
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                    raise SpaceError(f"{owner}: gradient_clip_val={value!r} must be a finite number >= 0")
                if value < 0:
                    raise SpaceError(f"{owner}: gradient_clip_val={value!r} must be >= 0 (0 or None: no clipping)")
                settings["gradient_clip_val"] = float(value) or None
        elif key == "gradient_clip_algorithm":
            if value is not None:
                if value not in ("norm", "value"):
                    raise SpaceError(f"{owner}: gradient_clip_algorithm={value!r} must be 'norm' or 'value'")
                settings["gradient_clip_algorithm"] = value
        elif key == "detect_anomaly":
            settings["detect_anomaly"] = bool(value)
        elif key in _NO_EFFECT_ON_FIT:
            continue
        elif any(
            value is neutral or (type(value) is type(neutral) and value == neutral) for neutral in _NEUTRAL.get(key, ())
        ):
            continue
        else:
            why = _INSTEAD.get(
                key, f"it has no counterpart in archsmith's loop; drop it for the one-shot search, or {_HOOK}"
            )
            raise _refuse(owner, f"Trainer argument {key}={value!r}", why)
    if checkpointing and not settings.get("checkpointing"):  # as Lightning: a default ModelCheckpoint()
        settings["checkpointing"] = (
            _checkpoint_rule(owner, ModelCheckpoint(), trainer_kwargs.get("default_root_dir")),
        )
    if "gradient_clip_algorithm" in settings and "gradient_clip_val" not in settings:
        settings.pop("gradient_clip_algorithm")  # Lightning ignores the algorithm without a value as well
    return settings

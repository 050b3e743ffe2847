"""``SupernetCheckpoint``: Lightning's ``ModelCheckpoint`` for a one-shot search —
the supernet saved after an epoch's validation, the best ``save_top_k`` by a
monitored metric (or the latest), with Lightning's file names.

A file holds ``{"epoch", "global_step", "state_dict"`` (the supernet's),
``"metrics", "architecture"`` (the one validated), and, unless
``save_weights_only``, ``"algorithm"`` (the strategy's state)``}``: load it with
``torch.load(path, weights_only=False)`` and
``space.freeze(sample, weights_from=...)`` a supernet holding ``state_dict``.
"""

from __future__ import annotations

import logging
import math
import os
import re
from pathlib import Path
from typing import Any

import torch

from archsmith.space import SpaceError

from ._hooks import OneShotCallback, OneShotState

logger = logging.getLogger("archsmith.oneshot")

LAST = "last"


class SupernetCheckpoint(OneShotCallback):
    """Save the supernet every ``every_n_epochs`` epochs into ``dirpath``, as
    ``ModelCheckpoint`` does: with ``monitor``, the ``save_top_k`` best epochs in
    ``mode`` (``-1``: all; a NaN counts as the worst); without, the latest only
    (``save_top_k=1``), every one (``-1``) or none (``0``). ``save_last`` also
    writes ``last.ckpt`` each time. ``filename`` is Lightning's template
    (``"{epoch}-{val_loss:.2f}"`` gives ``epoch=3-val_loss=0.12.ckpt``; default
    ``"{epoch}-{step}"``, ``step`` counting training steps); a name taken by a file
    this callback did not write gets ``-v1``, ``-v2``, ... (``enable_version_counter``).

    ``best_model_path``, ``best_model_score``, ``best_k_models`` and
    ``last_model_path`` say what was saved (and are kept across a resume).
    """

    def __init__(
        self,
        dirpath: str | os.PathLike[str],
        filename: str | None = None,
        monitor: str | None = None,
        mode: str = "min",
        save_top_k: int = 1,
        *,
        save_last: bool = False,
        save_weights_only: bool = False,
        every_n_epochs: int = 1,
        auto_insert_metric_name: bool = True,
        enable_version_counter: bool = True,
        verbose: bool = False,
    ) -> None:
        if mode not in ("min", "max"):
            raise SpaceError(f"mode must be 'min' or 'max', got {mode!r}")
        if isinstance(save_top_k, bool) or not isinstance(save_top_k, int) or save_top_k < -1:
            raise SpaceError(f"save_top_k must be an integer >= -1 (-1: keep all), got {save_top_k!r}")
        if monitor is None and save_top_k not in (-1, 0, 1):
            raise SpaceError(
                f"save_top_k={save_top_k} needs a monitor to rank epochs by; give monitor='val_loss' (or another "
                "epoch metric), or save_top_k=1 (the latest), -1 (all), 0 (none)"
            )
        if isinstance(every_n_epochs, bool) or not isinstance(every_n_epochs, int) or every_n_epochs < 0:
            raise SpaceError(f"every_n_epochs must be an integer >= 0 (0: never), got {every_n_epochs!r}")
        self.dirpath = Path(dirpath)
        self.filename, self.monitor, self.mode, self.save_top_k = filename, monitor, mode, save_top_k
        self.save_last, self.save_weights_only, self.every_n_epochs = save_last, save_weights_only, every_n_epochs
        self.auto_insert_metric_name, self.enable_version_counter = auto_insert_metric_name, enable_version_counter
        self.verbose = verbose
        self.best_k_models: dict[str, float] = {}
        self.best_model_path, self.last_model_path = "", ""
        self.best_model_score: float | None = None
        self._written: set[str] = set()

    @classmethod
    def from_rule(cls, rule: Any) -> SupernetCheckpoint:
        """One built from a ``TrainingRecipe``'s ``CheckpointRule``."""
        return cls(
            rule.dirpath,
            rule.filename,
            rule.monitor,
            rule.mode,
            rule.save_top_k,
            save_last=rule.save_last,
            save_weights_only=rule.save_weights_only,
            every_n_epochs=rule.every_n_epochs,
            auto_insert_metric_name=rule.auto_insert_metric_name,
            enable_version_counter=rule.enable_version_counter,
            verbose=rule.verbose,
        )

    # Naming --------------------------------------------------------------------------
    def format_name(self, values: dict[str, Any]) -> str:
        """Lightning's ``_format_checkpoint_name``: each ``{name}`` of the template
        becomes ``name=value`` (or ``value``), a missing value 0."""
        template = self.filename or "{epoch}-{step}"
        values = dict(values)
        for group in sorted(re.findall(r"(\{.*?)[:\}]", template), key=len, reverse=True):
            name = group[1:]
            if self.auto_insert_metric_name:
                template = template.replace(group, name + "={" + name)
            template = template.replace(group, f"{{0[{name}]")
            values.setdefault(name, 0)
        return template.format(values)

    def _path(self, name: str) -> Path:
        path = self.dirpath / f"{name}.ckpt"
        version = 1
        while self.enable_version_counter and path.exists() and str(path) not in self._written:
            path = self.dirpath / f"{name}-v{version}.ckpt"
            version += 1
        return path

    # Saving --------------------------------------------------------------------------
    def on_epoch_end(self, state: OneShotState) -> None:
        if not self.every_n_epochs or (state.epoch + 1) % self.every_n_epochs:
            return
        if self.save_top_k:
            self._save_top_k(state)
        if self.save_last:
            self.last_model_path = str(self._write(state, self._path(LAST)))

    def _save_top_k(self, state: OneShotState) -> None:
        name = self.format_name({"epoch": state.epoch, "step": state.step, **state.metrics})
        if self.monitor is None:
            path = self._write(state, self._path(name))
            if self.save_top_k == 1:  # the latest only
                for old in list(self.best_k_models):
                    if old != str(path):
                        self._remove(old)
                self.best_k_models = {}
            self.best_k_models[str(path)] = math.nan
            self.best_model_path = str(path)
            return
        if self.monitor not in state.metrics:
            raise SpaceError(
                f"checkpointing monitors {self.monitor!r}, which this one-shot search does not report; monitor one "
                f"of {sorted(state.metrics)}"
            )
        current = float(state.metrics[self.monitor])
        if math.isnan(current):  # as Lightning: a NaN ranks last
            current = math.inf if self.mode == "min" else -math.inf
        if 0 < self.save_top_k <= len(self.best_k_models):
            worst = self._worst()
            if not self._better(current, self.best_k_models[worst]):
                return
            self._remove(worst)
            del self.best_k_models[worst]
        path = self._write(state, self._path(name))
        self.best_k_models[str(path)] = current
        best = min(self.best_k_models, key=lambda p: self._rank(self.best_k_models[p]))
        self.best_model_path, self.best_model_score = best, self.best_k_models[best]
        if self.verbose:
            logger.info("epoch %d: %s = %.6g, saved %s", state.epoch + 1, self.monitor, current, path)

    def _better(self, a: float, b: float) -> bool:
        return a < b if self.mode == "min" else a > b

    def _rank(self, score: float) -> float:
        return score if self.mode == "min" else -score

    def _worst(self) -> str:
        return max(self.best_k_models, key=lambda p: self._rank(self.best_k_models[p]))

    def _write(self, state: OneShotState, path: Path) -> Path:
        content: dict[str, Any] = {
            "epoch": state.epoch,
            "global_step": state.step,
            "state_dict": state.supernet.state_dict(),
            "metrics": dict(state.metrics),
            "architecture": state.architecture,
        }
        if not self.save_weights_only:
            content["algorithm"] = state.algorithm.state_dict()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        torch.save(content, tmp)
        os.replace(tmp, path)  # never a half-written checkpoint under the final name
        self._written.add(str(path))
        return path

    def _remove(self, path: str) -> None:
        if path in self._written and path != self.last_model_path:
            Path(path).unlink(missing_ok=True)

    # Resume --------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "best_k_models": dict(self.best_k_models),
            "best_model_path": self.best_model_path,
            "best_model_score": self.best_model_score,
            "last_model_path": self.last_model_path,
            "written": sorted(self._written),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best_k_models = dict(state["best_k_models"])
        self.best_model_path, self.best_model_score = state["best_model_path"], state["best_model_score"]
        self.last_model_path, self._written = state["last_model_path"], set(state["written"])

    def __repr__(self) -> str:
        return (
            f"SupernetCheckpoint(dirpath={str(self.dirpath)!r}, monitor={self.monitor!r}, mode={self.mode!r}, "
            f"save_top_k={self.save_top_k})"
        )

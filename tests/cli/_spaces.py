"""A one-decision space for command-line tests that need a finished run: three
architectures, so a grid search runs trials 1, 2 and 3 with widths 1, 2 and 3."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import archsmith.nn as nn
from archsmith import strategy
from archsmith.experiment import Experiment, ExperimentConfig


class Width(nn.ModelSpace):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(2, nn.ValueChoice([1, 2, 3], label="width"))


def grid_run(workdir: Path, evaluator: Callable[[Any], float]) -> Path:
    """Every architecture of ``Width`` run in order, in this process, under ``workdir``."""
    config = ExperimentConfig(engine="inprocess", workdir=workdir, seed=0, direction="maximize")
    Experiment(Width(), evaluator, strategy.GridSearch(shuffle=False), config).run()
    return workdir

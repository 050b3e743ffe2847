"""Real experiments for the backend's tests (API, data, figures, report): each run
once per test module, in this process. The spaces live here, in an importable
module, so the architecture view can rebuild their frozen models."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import archsmith
import archsmith.nn as nn
from archsmith import strategy
from archsmith.evaluator import FunctionalEvaluator
from archsmith.experiment import Experiment, ExperimentConfig

#: A label and a candidate that are HTML: figures and the report must show them as text.
XSS_LABEL = "<script>alert('label')</script>"
XSS_OP = "<img src=x onerror=alert('op')>"
XSS_ERROR = "</script><script>alert('error')</script>"


class Small(nn.ModelSpace):
    """Six widths x two activations (one named like an HTML tag): 12 architectures."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3, nn.ValueChoice([1, 2, 3, 4, 5, 6], label=XSS_LABEL))
        self.act = nn.LayerChoice({XSS_OP: nn.ReLU(), "tanh": nn.Tanh()}, label="act")


def _score(model: Any) -> dict[str, float]:
    """Three intermediate results; width 6 with tanh fails with HTML in its error."""
    width = model.fc.out_features
    tanh = isinstance(model.act, __import__("torch").nn.Tanh)
    print(f"training width {width}")
    if width == 6 and tanh:
        raise RuntimeError(XSS_ERROR)
    acc = width / 10 + (0.05 if tanh else 0.0)
    for step in range(3):
        archsmith.report_intermediate_result({"acc": acc * (step + 1) / 3, "size": float(width)})
    return {"acc": acc, "size": float(width * (2 if tanh else 1))}


def single_run(workdir: Path) -> Path:
    """Every architecture of :class:`Small` by grid (12 trials, one failed); objective acc."""
    config = ExperimentConfig(engine="inprocess", workdir=workdir, seed=0, objective="acc", direction="maximize")
    Experiment(Small(), FunctionalEvaluator(_score), strategy.GridSearch(shuffle=False), config).run()
    return workdir


def multi_run(workdir: Path) -> Path:
    """The same grid with two objectives: acc (maximize) and size (minimize)."""
    config = ExperimentConfig(
        engine="inprocess",
        workdir=workdir,
        seed=0,
        objective=["acc", "size"],
        direction=["maximize", "minimize"],
    )
    Experiment(Small(), FunctionalEvaluator(_score), strategy.GridSearch(shuffle=False), config).run()
    return workdir


def oneshot_run(workdir: Path) -> Path:
    """DARTS on the one-shot tests' layer-choice task, two epochs."""
    from tests.strategy.oneshot._spaces import TASKS, evaluator, make

    task = TASKS["layer_choice"]
    config = ExperimentConfig(workdir=workdir, seed=0)
    Experiment(task.make(), evaluator(task, epochs=2), make("darts"), config).run()
    return workdir


def _bench() -> Any:
    """benchmarks/dashboard_bench.py, whose store generator (the real Store API)
    the tests share (``benchmarks`` is a directory of scripts, not a package)."""
    import importlib.util
    import sys

    name = "_archsmith_dashboard_bench"
    if name not in sys.modules:
        path = Path(__file__).resolve().parents[2] / "benchmarks" / "dashboard_bench.py"
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


generate_store = _bench().generate_store
add_finished_trial = _bench().add_finished_trial

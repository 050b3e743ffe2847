"""Real experiments for the dashboard's app and browser tests: a tiny space whose
decision label, candidate names and a failed trial's error carry HTML (they must show as
text), searched whole by a grid in this process; a live run in a subprocess whose trials
wait for a file; a store that is not one."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import archsmith
import archsmith.nn as nn
from archsmith import strategy
from archsmith.evaluator import FunctionalEvaluator
from archsmith.experiment import STORE_FILE, Experiment, ExperimentConfig
from archsmith.space import Numerical

#: Strings that would run script if any page put them into the DOM as HTML.
XSS_LABEL = "<script>window.__xss = 1</script>"
XSS_VALUE = "<img src=x onerror=window.__xss=2>"
XSS_ERROR = "<b>bad</b> <img src=x onerror=window.__xss=3>"
#: An experiment directory (and so a key and name) that is HTML too.
XSS_KEY = "grid-<img src=x onerror=window.__xss=4>"


class Marked(nn.ModelSpace):
    """Two widths x two activations (one named like an HTML tag) x a numerical 0..1."""

    def __init__(self) -> None:
        super().__init__()
        width = nn.ValueChoice([4, 8], label=XSS_LABEL)
        self.fc = nn.Linear(2, width)
        self.act = nn.ValueChoice([XSS_VALUE, "relu"], label="act")
        self.scale = Numerical(0, 1, quantize=1, label="scale")


def score(model: Any) -> dict[str, float]:
    """Three intermediate results and a final ``acc``/``loss``; one architecture fails
    with HTML in its error."""
    width = model.fc.out_features
    print(f"training width {width} <i>act</i> {model.act}")
    if width == 8 and model.act == "relu" and model.scale == 1:
        raise RuntimeError(XSS_ERROR)
    acc = width / 10 + (0.05 if model.act == "relu" else 0.0) + 0.01 * model.scale
    for step in range(3):
        archsmith.report_intermediate_result({"acc": acc * (step + 1) / 3, "loss": 1.0 / (step + 1 + width)})
    return {"acc": acc, "loss": 1.0 / (3 + width)}


def grid_run(workdir: Path) -> Path:
    """Every architecture of :class:`Marked` (8 trials, one failed), in this process."""
    config = ExperimentConfig(engine="inprocess", workdir=workdir, seed=0, objective="acc", direction="maximize")
    Experiment(Marked(), FunctionalEvaluator(score), strategy.GridSearch(shuffle=False), config).run()
    return workdir


def malformed(workdir: Path) -> Path:
    """A directory whose store file is not SQLite (as a half-copied or damaged one is)."""
    workdir.mkdir(parents=True)
    (workdir / STORE_FILE).write_bytes(b"this is not an SQLite database" * 64)
    return workdir


class Gated(nn.ModelSpace):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(2, nn.ValueChoice([1, 2, 3, 4], label="width"))


def _gated_score(model: Any, gate: str) -> float:
    """Waits until the gate file holds a number >= this trial's width (the trial's turn)."""
    width = model.fc.out_features
    path = Path(gate)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if path.is_file() and path.read_text().strip() and int(path.read_text()) >= width:
            return float(width)
        time.sleep(0.05)
    raise TimeoutError(f"{gate} never let width {width} through")


def live_run(workdir: Path, gate: Path) -> None:
    """Four trials run one after another, each waiting for its turn in ``gate``."""
    config = ExperimentConfig(engine="inprocess", workdir=workdir, seed=0, direction="maximize")
    evaluator = FunctionalEvaluator(_gated_score, gate=str(gate))
    Experiment(Gated(), evaluator, strategy.GridSearch(shuffle=False), config).run()


if __name__ == "__main__":  # python -m tests.dashboard._experiments WORKDIR GATE
    live_run(Path(sys.argv[1]), Path(sys.argv[2]))

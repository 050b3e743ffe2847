"""Shared pieces of the Ray tests: evaluators for the cluster scenarios and the
experiments they run. Pickled *by value* (as a user's ``__main__`` would be), so
Ray actors never need to import it.

The second node of the test cluster runs with ``ARCHSMITH_TEST_NODE=second`` in
its environment; every evaluator prints ``node=<that>`` to its output log, so a
test can tell where a trial ran."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import cloudpickle
import torch

import archsmith.nn as nn
from archsmith import strategy as strategies
from archsmith.evaluator import FunctionalEvaluator, current_trial, report_intermediate_result, should_stop
from archsmith.experiment import Experiment, ExperimentConfig

cloudpickle.register_pickle_by_value(sys.modules[__name__])

NODE_ENV = "ARCHSMITH_TEST_NODE"
#: A directory both nodes' trials see (the test cluster's nodes share this machine).
MARKERS_ENV = "ARCHSMITH_TEST_MARKERS"


class Net(nn.ModelSpace):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, nn.choice("width", [2, 3, 4, 5, 6, 7]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


def node() -> str:
    return os.environ.get(NODE_ENV, "head")


def reach_both_nodes(scenario: str, patience: float = 90.0) -> None:
    """Trials start on the first actor ready, and the second node's actor (a new
    process importing torch) may come up after a short scenario's trials are all
    done on the head. Where a scenario must reach the second node, a trial on the
    head waits until one has started there."""
    markers = os.environ.get(MARKERS_ENV)
    if not markers:
        return
    directory = Path(markers)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{scenario}-{node()}").touch()
    deadline = time.time() + patience
    while node() == "head" and not (directory / f"{scenario}-second").exists() and time.time() < deadline:
        time.sleep(0.05)


def _raylet_pid() -> int | None:
    """The raylet this process descends from (Ray workers are its children)."""
    pid = os.getppid()
    while pid > 1:
        try:
            comm = Path(f"/proc/{pid}/comm").read_text().strip()
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return None
        if comm == "raylet":
            return pid
        pid = int(stat.rsplit(")", 1)[1].split()[1])
    return None


def with_pid(model: object, value: float) -> dict[str, float]:
    """``value``, and the process that ran the trial."""
    return {"default": value, "pid": float(os.getpid())}


def work(model: torch.nn.Module, mode: str, fault: dict[int, str]) -> Any:
    """Objective = width. Prints where it runs, reports two intermediates, then:

    - ``mode="faults"``: the trial id's fault (raise / exit / segv / hang), else sleeps 0.3 s;
    - ``mode="node_loss"``: on the second node, kills that node's raylet (the node
      is lost mid-trial); elsewhere sleeps 1.5 s;
    - ``mode="slow"``: sleeps 1.5 s;
    - ``mode="gpu"``: prints the GPUs Ray gave it, sleeps 1 s."""
    trial_id = current_trial().trial_id  # type: ignore[union-attr]
    width = float(model.fc.out_features)  # type: ignore[union-attr,arg-type]
    print(f"trial {trial_id} node={node()} CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES')}", flush=True)
    if mode == "node_loss":
        reach_both_nodes(mode)
    report_intermediate_result(width / 2)
    report_intermediate_result(width)
    kind = fault.get(trial_id)
    if kind == "raise":
        raise RuntimeError(f"trial {trial_id} failed on purpose")
    if kind == "exit":
        os._exit(3)
    if kind == "segv":
        os.kill(os.getpid(), signal.SIGSEGV)
    if kind == "hang":
        time.sleep(120)
    if mode == "node_loss" and node() == "second":
        time.sleep(0.5)
        raylet = _raylet_pid()
        print(f"killing this node's raylet {raylet}", flush=True)
        if raylet is not None:
            os.kill(raylet, signal.SIGKILL)
        time.sleep(120)  # the node's processes die with it
    time.sleep({"faults": 0.3, "node_loss": 1.5, "slow": 1.5, "gpu": 1.0}.get(mode, 0.0))
    return width


def quality(model: torch.nn.Module, good: bool) -> float:
    """Good trials report 10 at steps 0-7 and end; bad ones report 0 for up to 100
    steps of 0.1 s, and end when asked to stop."""
    print(f"trial {current_trial().trial_id} node={node()}", flush=True)  # type: ignore[union-attr]
    reach_both_nodes("early_stop")
    steps = 8 if good else 100
    for step in range(steps):
        report_intermediate_result(10.0 if good else 0.0)
        if should_stop():
            print(f"stopped at step {step}", flush=True)
            return 0.0
        time.sleep(0.02 if good else 0.1)
    return 10.0 if good else 0.0


class Quality(nn.ModelSpace):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, nn.choice("width", [2, 3, 4, 5, 6]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


def experiment(scenario: str, workdir: Path | str, address: str | None, **config: Any) -> Experiment:
    """The experiment a cluster scenario runs, through ``ray_address=address``."""
    config = {"engine": "ray", "ray_address": address, "seed": 0, "direction": "maximize", **config}
    if scenario == "early_stop":
        # widths 2 and 3 are good (they come first in the grid), the other three are bad
        return Experiment(
            Quality(),
            FunctionalEvaluator(_quality_by_width),
            strategies.GridSearch(shuffle=False),
            ExperimentConfig(workdir=str(workdir), **config),
            early_stopping=strategies.MedianStop(grace_steps=5, min_trials=2),
        )
    faults = {1: "raise", 2: "exit", 3: "hang"} if scenario == "faults" else {}
    mode = {"faults": "faults", "node_loss": "node_loss", "resume": "slow", "gpu": "gpu"}[scenario]
    return Experiment(
        Net(),
        FunctionalEvaluator(work, mode=mode, fault=faults),
        strategies.GridSearch(shuffle=False),
        ExperimentConfig(workdir=str(workdir), **config),
    )


def _quality_by_width(model: torch.nn.Module) -> float:
    return quality(model, good=int(model.fc.out_features) <= 3)  # type: ignore[union-attr,arg-type]

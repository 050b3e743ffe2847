"""A driver for tests/execution/test_inprocess_timeout.py: ``inprocess_timeout.py
ACTION...`` runs a trial doing each ACTION under the in-process engine with
``trial_timeout=0.5``, then a healthy trial; the listener prints each finished
event as a JSON line (as the experiment stores it), then "DONE"."""

import json
import signal
import sys
import time
from pathlib import Path
from typing import Any

import torch

import archsmith.nn as nn
from archsmith.evaluator import FunctionalEvaluator
from archsmith.execution import InProcessEngine, Trial, TrialEvent, TrialPayload


class Net(nn.ModelSpace):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, nn.choice("width", [2, 3]))


def swallow() -> None:
    """Catches everything, the timeout included, and goes on."""
    while True:
        try:
            time.sleep(0.05)
        except BaseException:
            pass


def swallow_deeper() -> None:
    while True:
        try:
            swallow()
        except BaseException:
            pass


def nested() -> None:
    """Two handlers in one frame: beyond what the engine can push out."""
    while True:
        try:
            while True:
                try:
                    time.sleep(0.05)
                except BaseException:
                    pass
        except BaseException:
            pass


def blocked() -> None:
    """Never back in Python code to see the alarm (as in a C call that never returns)."""
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
    time.sleep(30)


def evaluate(model: torch.nn.Module, action: str) -> Any:
    print(f"trial doing {action}", flush=True)
    if action != "ok":
        {"swallow": swallow, "swallow_deeper": swallow_deeper, "nested": nested, "blocked": blocked}[action]()
    return 1.0


def listener(event: TrialEvent) -> None:
    if event.kind == "finished":
        finished = {"id": event.trial_id, "status": event.status, "error": event.error, "output": event.output}
        print(json.dumps(finished), flush=True)


arguments = sys.argv[1:]
log_dir = None  # --log-dir=PATH: trials' output goes to logs there
if arguments and arguments[0].startswith("--log-dir="):
    log_dir = Path(arguments.pop(0).split("=", 1)[1])
actions = [*arguments, "ok"]
engine = InProcessEngine(trial_timeout=0.5, log_dir=log_dir)
engine.timeout_grace = 0.6
engine.listener = listener
engine.start(TrialPayload(Net, (), {}, FunctionalEvaluator(evaluate, action=nn.choice("action", sorted(set(actions))))))
for trial_id, chosen in enumerate(actions, 1):
    engine.submit(Trial(trial_id, {"width": 2, "action": chosen}))
    while engine.running():
        for event in engine.wait(0.1):
            listener(event)
print("DONE", flush=True)

"""The live panel's history and summary: on a terminal each finished trial leaves
a line above the panel (id, status, objectives, decisions, duration) and the run
ends with a table of the best trials, the count per status and the time; off a
terminal each event stays one plain line. A real run on a pseudo-terminal shows
the panel and the history, and none of what its in-process trials print."""

from __future__ import annotations

import io
import os
import pty
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from rich.console import Console

from archsmith.experiment._progress import ProgressView, Snapshot, decisions_text


def snap(done: int, stopped: int = 0) -> Snapshot:
    return Snapshot(done, 0, 1, 4, 0.2, 2, 65.0, None, stopped=stopped)


def finish_four(view: ProgressView) -> None:
    view.start()
    view.trial_finished(1, "succeeded", 0.5, None, snap(1), sample={"width": 16, "op": "conv3"}, duration=1.25)
    view.trial_finished(2, "succeeded", 0.2, None, snap(2), sample={"width": 32, "op": "conv5"}, duration=2.5)
    view.trial_finished(
        3, "failed", None, "Traceback ...\nValueError: boom", snap(3), sample={"width": 64}, duration=0.1
    )
    view.trial_finished(4, "stopped", 0.9, None, snap(4, stopped=1), sample={"width": 8, "op": "conv3"}, duration=0.4)
    view.stop("finished: max_trials (4) reached")


def test_a_terminal_keeps_one_line_per_trial_and_ends_with_a_summary() -> None:
    console = Console(file=io.StringIO(), force_terminal=True, record=True, width=120)
    finish_four(ProgressView("demo", "val_mse", console, directions=["minimize"]))
    text = console.export_text()
    lines = text.splitlines()
    # each line once, above the panel (the recording also holds the panel's redraws between them)
    history = re.findall(r"trial +(\d+) (\w+) +([^\n]*?)(?=\n|  +archsmith)", text)
    assert [h[:2] for h in history] == [("1", "succeeded"), ("2", "succeeded"), ("3", "failed"), ("4", "stopped")]
    history = [h[2] for h in history]
    assert "val_mse=0.5" in history[0] and "width=16 op=conv3" in history[0] and "1.25s" in history[0]
    assert "ValueError: boom" in history[2]
    assert "stopped early" in text  # the panel's row, once a trial was stopped
    summary = text[text.index("best trials") :]
    assert "val_mse (min)" in summary
    best = [line for line in summary.splitlines() if "width=" in line]
    assert [line.split("│")[1].strip() for line in best] == ["2", "1"]  # minimized; the stopped one is not ranked
    for status, count in (("succeeded", 2), ("failed", 1), ("stopped", 1)):
        assert any(status in line and line.rstrip(" │").endswith(str(count)) for line in summary.splitlines())
    assert "01:05" in summary  # the time
    assert lines[-1] == "[archsmith] finished: max_trials (4) reached"


def test_several_objectives_rank_by_pareto_front() -> None:
    console = Console(file=io.StringIO(), force_terminal=True, record=True, width=140)
    view = ProgressView("pareto", ["acc", "params"], console, directions=["maximize", "minimize"])
    view.start()
    for trial_id, values in enumerate([(0.9, 100.0), (0.8, 50.0), (0.7, 200.0)], start=1):
        view.trial_finished(trial_id, "succeeded", values, None, snap(trial_id), sample={"w": trial_id})
    view.stop("done")
    assert [f.trial_id for f in view.best_finished()] == [1, 2, 3]  # the front (1, 2), then the dominated 3
    text = console.export_text()
    assert "acc (max)" in text and "params (min)" in text


def test_off_a_terminal_each_event_is_one_plain_line() -> None:
    out = io.StringIO()
    finish_four(ProgressView("demo", "val_acc", Console(file=out, force_terminal=False, width=60)))
    lines = out.getvalue().splitlines()
    assert len(lines) == 6 and all(line.startswith("[archsmith] ") for line in lines)
    assert lines[4].startswith("[archsmith] trial 4 stopped: val_acc=0.9 | done 4/4, running 0, failed 1, stopped 1")
    assert "\x1b[" not in out.getvalue()


def test_decisions_are_cut_to_one_line() -> None:
    assert decisions_text({"a": 1, "b": "x"}) == "a=1 b=x"
    assert len(decisions_text({f"label{i}": i for i in range(40)}, width=30)) == 30
    assert decisions_text(None) == ""
    with pytest.raises(ValueError, match="one direction per objective"):
        ProgressView("x", ["a", "b"], directions=["maximize"])


SCRIPT = textwrap.dedent(
    """
    import os, sys
    import archsmith.nn as nn
    from archsmith import strategy
    from archsmith.evaluator import FunctionalEvaluator, current_trial
    from archsmith.experiment import Experiment, ExperimentConfig

    class Net(nn.ModelSpace):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(2, nn.choice("width", [2, 3, 4]))

    def noisy(model):
        trial = current_trial().trial_id
        print(f"PRINTED-{trial}")
        os.write(2, f"FD2-{trial}\\n".encode())
        return float(model.fc.out_features)

    config = ExperimentConfig(engine="inprocess", workdir=sys.argv[1], seed=0, max_trials=3, direction="maximize")
    Experiment(Net(), FunctionalEvaluator(noisy), strategy.GridSearch(), config).run()
    """
)


def test_a_run_on_a_terminal_shows_its_history_and_not_its_trials_output(tmp_path: Path) -> None:
    master, slave = pty.openpty()
    env = {**os.environ, "COLUMNS": "120", "LINES": "40", "TERM": "xterm"}
    process = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, str(tmp_path)], stdin=slave, stdout=slave, stderr=slave, env=env
    )
    os.close(slave)
    chunks = []
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    assert process.wait(timeout=30) == 0
    seen = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", b"".join(chunks).decode(errors="replace"))  # no colours
    assert "PRINTED-" not in seen and "FD2-" not in seen, seen
    for trial_id in (1, 2, 3):
        assert f"trial    {trial_id} succeeded" in seen
        log = (tmp_path / "trials" / str(trial_id) / "output.log").read_text()
        assert f"PRINTED-{trial_id}" in log and f"FD2-{trial_id}" in log
    assert "best trials" in seen and "trials done" in seen  # the summary and the live panel

"""The progress view: a live panel on a terminal, one log line per trial elsewhere."""

from __future__ import annotations

import io

from rich.console import Console

from archsmith.experiment._progress import ProgressView, Snapshot, eta


def snapshot(done: int, elapsed: float, budget: int | None = 10, max_duration: float | None = None) -> Snapshot:
    return Snapshot(done, 2, 1, budget, 0.75, 3, elapsed, max_duration)


def test_eta_follows_the_trial_rate_and_the_duration_limit() -> None:
    assert eta(snapshot(5, 50.0)) == 50.0  # 10 s per trial, 5 to go
    assert eta(snapshot(5, 50.0, max_duration=60.0)) == 10.0  # the duration limit comes first
    assert eta(snapshot(0, 5.0)) is None
    assert eta(snapshot(0, 5.0, budget=None)) is None


def test_terminal_gets_a_live_panel_with_counts_best_and_eta() -> None:
    out = io.StringIO()
    view = ProgressView("demo", "acc", Console(file=out, force_terminal=True, width=100))
    view.start()
    view.update(snapshot(4, 40.0))
    view.trial_finished(7, "succeeded", 0.75, None, snapshot(5, 50.0))
    view.stop("finished: max_trials (10) reached")
    text = out.getvalue()
    for expected in ("trials done", "5 / 10", "running", "failed", "best acc", "0.75 (trial 3)", "ETA", "00:50"):
        assert expected in text, expected
    assert "[archsmith] finished: max_trials (10) reached" in text


def test_without_a_terminal_each_finished_trial_is_one_plain_line() -> None:
    out = io.StringIO()
    view = ProgressView("demo", "acc", Console(file=out, force_terminal=False, width=60))
    view.start()
    view.trial_finished(7, "succeeded", 0.75, None, snapshot(5, 50.0))
    view.trial_finished(8, "failed", None, "Traceback ...\nValueError: boom", snapshot(6, 60.0))
    view.stop("finished")
    lines = out.getvalue().splitlines()
    assert lines[0] == "[archsmith] demo: started"
    assert lines[1].startswith("[archsmith] trial 7 succeeded: acc=0.75 | done 5/10, running 2, failed 1")
    assert "ETA 00:50" in lines[1]  # one line however narrow the console
    assert lines[2].startswith("[archsmith] trial 8 failed: ValueError: boom |")
    assert "\x1b[" not in out.getvalue()  # no terminal control codes in logs

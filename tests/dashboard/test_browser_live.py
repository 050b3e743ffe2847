"""A live run seen in headless Chromium: trials finishing in another process appear in
the open experiment page (table and history) without a reload, and the page stops
calling itself live when the run ends."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ._serve import chromium_missing, serve

if chromium_missing() is not None:  # before importing selenium: it may be what is missing
    pytest.skip(str(chromium_missing()), allow_module_level=True)

from ._pages import console_errors, draw_figure, open_page, texts, wait_for

REPO = Path(__file__).resolve().parents[2]


def _api(url: str, path: str) -> Any:
    return httpx.get(url + "/api" + path, timeout=20).json()


def _wait(condition: Any, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A dashboard over a run of four trials in a subprocess, each waiting its turn
    in a gate file; trial 1 is let through. Yields the URL and the gate."""
    root = tmp_path_factory.mktemp("live")
    gate = root / "gate"
    gate.write_text("1")
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    run = subprocess.Popen(
        [sys.executable, "-m", "tests.dashboard._experiments", str(root / "run"), str(gate)],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        with serve(root) as url:

            def one_done() -> bool:
                listed = _api(url, "/experiments")["experiments"]
                return bool(listed) and listed[0]["counts"]["succeeded"] >= 1 and listed[0]["live"]

            _wait(lambda: run.poll() is not None or one_done(), "the run's first trial")
            assert run.poll() is None, run.stderr.read() if run.stderr else ""
            yield url, gate
    finally:
        gate.write_text("4")
        try:
            run.wait(60)
        except subprocess.TimeoutExpired:
            run.kill()
            run.wait()


def _statuses(browser: Any) -> dict[int, str]:
    rows = browser.execute_script(
        "return Array.from(document.querySelectorAll('#trials tbody tr')).map((r) => [r.dataset.trial, r.dataset.status])"
    )
    return {int(trial): status for trial, status in rows}


def test_finished_trials_appear_without_a_reload(live: tuple[str, Path], browser: Any) -> None:
    url, gate = live
    open_page(browser, url + "/experiments/run")
    assert "live" in texts(browser, "h1")[0]
    assert _statuses(browser)[1] == "succeeded"
    draw_figure(browser, "history")
    assert browser.execute_script("return document.getElementById('fig-history')._fullData[0]._length") == 1
    browser.execute_script("window.__sameDocument = true")

    gate.write_text("2")  # trial 2 finishes in the other process
    wait_for(browser, 'return document.querySelector(\'#trials tr[data-trial="2"][data-status="succeeded"]\') !== null')
    wait_for(
        browser,
        "const gd = document.getElementById('fig-history'); return gd._fullData && gd._fullData[0]._length === 2",
    )
    assert browser.execute_script("return window.__sameDocument") is True  # merged in place, never reloaded

    gate.write_text("4")  # the rest, and the run ends
    wait_for(browser, "return document.querySelectorAll('#trials tr[data-status=\"succeeded\"]').length === 4")
    wait_for(browser, "return document.querySelector('h1 .live') === null")
    assert _statuses(browser) == {1: "succeeded", 2: "succeeded", 3: "succeeded", 4: "succeeded"}
    assert browser.execute_script("return window.__sameDocument") is True
    assert console_errors(browser) == []

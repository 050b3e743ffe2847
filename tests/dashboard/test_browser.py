"""The dashboard in headless Chromium over a real experiment whose key, decision label,
candidate and failed trial's error are HTML: the pages load with no console error,
the plots are drawn and hold the trials, sorting and filtering work, user strings show
as text and run nothing, a store that cannot be read shows an error panel."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from ._experiments import XSS_ERROR, XSS_KEY, XSS_LABEL, XSS_VALUE
from ._serve import chromium_missing, serve

if chromium_missing() is not None:  # before importing selenium: it may be what is missing
    pytest.skip(str(chromium_missing()), allow_module_level=True)

from ._pages import NOTHING_INJECTED, console_errors, draw_figure, injected, open_page, texts, wait_for

KEY = quote(XSS_KEY, safe="")
SCORED = 7  # the grid's eight trials, one failed


@pytest.fixture(scope="module")
def site(dashboard_root: Path) -> Iterator[str]:
    with serve(dashboard_root) as url:
        yield url


def test_the_experiments_list(site: str, browser: Any) -> None:
    open_page(browser, site + "/")
    rows = wait_for(browser, "return document.querySelectorAll('#experiments tbody tr').length === 2")
    assert rows
    names = texts(browser, "#experiments tbody tr td:first-child a")
    assert sorted(names) == sorted(["broken", XSS_KEY])
    broken = texts(browser, "#experiments tr[data-key='broken']")[0]
    assert "unreadable" in broken and "not a readable SQLite database" in broken
    grid = browser.execute_script("return document.querySelector('#experiments tbody tr:not(.row-error)').innerText")
    assert "GridSearch" in grid and "\t7\t1\t8\t" in grid and "0.85 (trial 7)" in grid
    assert injected(browser) == NOTHING_INJECTED
    assert console_errors(browser) == []


def _first_column(browser: Any) -> list[int]:
    return [int(t) for t in texts(browser, "#trials tbody tr td:first-child")]


def _click_header(browser: Any, title: str) -> None:
    browser.execute_script(
        "Array.from(document.querySelectorAll('#trials thead th')).find((th) => th.dataset.column === arguments[0]).click()",
        title,
    )


def _choose(browser: Any, selector: str, value: str) -> None:
    browser.execute_script(
        "const s = document.querySelector(arguments[0]); s.value = arguments[1];"
        "s.dispatchEvent(new Event(s.tagName === 'SELECT' ? 'change' : 'input'))",
        selector,
        value,
    )


def test_the_trial_table_sorts_and_filters(site: str, browser: Any) -> None:
    open_page(browser, f"{site}/experiments/{KEY}")
    _click_header(browser, "obj:acc")
    assert _first_column(browser) == [1, 2, 3, 4, 5, 6, 7, 8]  # by acc, the failed trial (none) last
    _click_header(browser, "obj:acc")
    assert _first_column(browser) == [7, 6, 5, 4, 3, 2, 1, 8]  # descending, still last
    _click_header(browser, "id")
    _choose(browser, "#filter-status", "failed")
    assert _first_column(browser) == [8]
    _choose(browser, "#filter-status", "")
    act = browser.execute_script(
        "return Array.from(document.querySelectorAll('#filters select[data-decision]')).find((s) =>"
        " Array.from(s.options).some((o) => o.textContent === arguments[0])).dataset.decision",
        XSS_VALUE,
    )
    _choose(browser, f"#filters select[data-decision='{act}']", f'"{XSS_VALUE}"'.replace("\\", "\\\\"))
    assert _first_column(browser) == [1, 2, 5, 6]
    _choose(browser, "#filters input[data-bound='low']", "1")
    assert _first_column(browser) == [2, 6]
    assert "(2 of 8 shown by the filters)" in texts(browser, "#trial-count")[0]
    assert console_errors(browser) == []


def test_the_experiment_page_draws_the_trials(site: str, browser: Any) -> None:
    open_page(browser, f"{site}/experiments/{KEY}")
    assert texts(browser, "h1")[0].startswith(XSS_KEY)
    assert len(texts(browser, "#trials tbody tr")) == 8
    assert XSS_LABEL in texts(browser, "#trials thead th")
    assert texts(browser, "#trials tbody td").count(XSS_VALUE) == 4
    # History: its points are the scored trials (a WebGL trace on a canvas: counted in
    # the trace Plotly drew, after its own checks of the data).
    for name in ("history", "curves", "parallel", "pareto", "oneshot_curves"):
        draw_figure(browser, name)
    assert browser.execute_script("return document.querySelectorAll('#fig-history canvas').length") > 0
    points = browser.execute_script("return document.getElementById('fig-history')._fullData[0]._length")
    assert points == SCORED
    # Intermediate curves: one SVG line per scored trial, three steps each.
    assert (
        browser.execute_script("return document.querySelectorAll('#fig-curves .scatterlayer .trace').length") == SCORED
    )
    assert browser.execute_script("return document.querySelectorAll('#fig-curves path.point').length") == 3 * SCORED
    # Parallel coordinates: three decisions and the objective, over every scored trial.
    parallel = browser.execute_script(
        "const gd = document.getElementById('fig-parallel');"
        "return [gd.querySelectorAll('canvas').length, gd._fullData[0].dimensions.length,"
        " gd._fullData[0].dimensions[0].values.length, gd.innerText]"
    )
    assert parallel[0] > 0 and parallel[1] == 4 and parallel[2] == SCORED
    assert XSS_LABEL in parallel[3]  # the axis name shows the label as typed
    assert XSS_VALUE in parallel[3]  # and a tick the candidate as typed: text, not markup
    # Figures that do not apply say why instead.
    assert "several objectives" in texts(browser, "#fig-pareto")[0]
    assert "not a one-shot experiment" in texts(browser, "#fig-oneshot_curves")[0]
    download = browser.execute_script("return document.getElementById('download-top').getAttribute('href')")
    assert download == f"/api/experiments/{KEY}/top?k=5"
    assert injected(browser) == NOTHING_INJECTED
    assert console_errors(browser) == []


def test_the_trial_pages(site: str, browser: Any) -> None:
    open_page(browser, f"{site}/experiments/{KEY}/trials/8")
    assert XSS_LABEL in texts(browser, "#sample th")
    error = texts(browser, "#error")[0]
    assert XSS_ERROR in error and "Traceback" in error
    assert "failed" in texts(browser, "h1")[0]
    assert injected(browser) == NOTHING_INJECTED
    open_page(browser, f"{site}/experiments/{KEY}/trials/7")
    wait_for(browser, "return document.querySelector('#fig-curve .main-svg') !== null")
    assert browser.execute_script("return document.querySelectorAll('#fig-curve .scatterlayer .trace').length") == 2
    assert browser.execute_script("return document.querySelectorAll('#fig-curve path.point').length") == 6
    assert "training width 8 <i>act</i> relu" in texts(browser, "#log")[0]
    modules = texts(browser, "#modules tbody tr td:nth-child(2)")
    assert "Linear" in modules
    assert injected(browser) == NOTHING_INJECTED
    assert console_errors(browser) == []


def test_an_unreadable_store_shows_an_error_panel(site: str, browser: Any) -> None:
    open_page(browser, f"{site}/experiments/broken")
    panel = texts(browser, ".error-panel")
    assert len(panel) == 1 and "not a readable SQLite database" in panel[0]
    assert console_errors(browser, expected=("/api/experiments/broken ",)) == []


def test_traversal_from_the_page_finds_nothing(site: str, browser: Any) -> None:
    open_page(browser, site + "/")
    statuses = browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "Promise.all(arguments[0].map((p) => fetch(p).then((r) => r.status))).then(done);",
        ["/experiments/..%2F..", "/api/experiments/..%2F..%2Fetc", "/api/experiments/%2e%2e", "/static/..%2F_app.py"],
    )
    assert statuses == [404, 404, 404, 404]
    console_errors(browser)  # the 404s the page asked for

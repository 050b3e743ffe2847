"""What the browser tests ask of a page: wait for it, read its console, check that no
user string became markup."""

from __future__ import annotations

from typing import Any

from selenium.webdriver.support.ui import WebDriverWait

#: The only scripts a page may hold: ours, by their paths.
OUR_SCRIPTS = {
    "/vendor/plotly.min.js",
    "/static/common.js",
    "/static/index.js",
    "/static/experiment.js",
    "/static/trial.js",
}

WAIT_SECONDS = 30


def wait_for(driver: Any, script: str, timeout: float = WAIT_SECONDS) -> Any:
    """Waits until ``script`` (a JavaScript expression's body, ``return ...``) is truthy; its value."""
    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(lambda d: d.execute_script(script))


def open_page(driver: Any, url: str) -> None:
    """Loads ``url`` and waits until its script has drawn it (or shown an error panel)."""
    driver.get(url)
    wait_for(driver, "return document.body.dataset.loaded === '1' || document.querySelector('.error-panel') !== null")


def console_errors(driver: Any, expected: tuple[str, ...] = ()) -> list[str]:
    """The page's console errors since the last call, less those naming an ``expected`` text."""
    return [
        entry["message"]
        for entry in driver.get_log("browser")
        if entry["level"] == "SEVERE" and not any(text in entry["message"] for text in expected)
    ]


def injected(driver: Any) -> dict[str, Any]:
    """Whatever a user string could have done as markup: the flag its script would set,
    scripts other than ours, images (the pages have none)."""
    return driver.execute_script(
        """
        const ours = new Set(arguments[0]);
        return {
          flag: window.__xss === undefined ? null : window.__xss,
          scripts: Array.from(document.querySelectorAll('script'))
            .map((s) => s.src ? new URL(s.src).pathname : 'inline:' + s.textContent)
            .filter((src) => !ours.has(src)),
          images: document.querySelectorAll('img').length,
        };
        """,
        sorted(OUR_SCRIPTS),
    )


NOTHING_INJECTED = {"flag": None, "scripts": [], "images": 0}


def texts(driver: Any, selector: str) -> list[str]:
    return driver.execute_script(
        "return Array.from(document.querySelectorAll(arguments[0])).map((e) => e.textContent)", selector
    )


def draw_figure(driver: Any, name: str) -> None:
    """Scrolls the experiment page's figure ``name`` into view and waits until it is
    drawn for the trials the page holds (figures are drawn when seen)."""
    driver.execute_script("document.getElementById('fig-' + arguments[0]).scrollIntoView()", name)
    wait_for(
        driver,
        "return document.getElementById('fig-' + arguments[0]).dataset.version === String(state.version)".replace(
            "arguments[0]", repr(name)
        ),
    )

"""A real dashboard server (uvicorn on 127.0.0.1, a free port, in a thread) and a
headless Chromium driving it, for the browser tests and the screenshots."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CHROMIUM = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")
CHROMEDRIVER = ("/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver")


@contextmanager
def serve(root: Path) -> Iterator[str]:
    """The dashboard over ``root`` on a free loopback port; yields its base URL."""
    import uvicorn

    from archsmith.dashboard import create_app

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    app = create_app(root, allowed_hosts=["127.0.0.1", "localhost"])
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the dashboard server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def chromium_missing() -> str | None:
    """Why headless Chromium cannot run here (None when it can)."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install 'archsmith[dev]')"
    if not any(Path(p).is_file() for p in CHROMIUM) and not shutil.which("chromium"):
        return "chromium is not installed (apt-get install chromium chromium-driver; `make test` does it)"
    if not any(Path(p).is_file() for p in CHROMEDRIVER) and not shutil.which("chromedriver"):
        return "chromedriver is not installed (apt-get install chromium-driver; `make test` does it)"
    return None


def chromium(width: int = 1200, height: int = 900) -> Any:
    """A headless Chromium (selenium WebDriver) that keeps the pages' console messages."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    binary = next((p for p in CHROMIUM if Path(p).is_file()), None) or shutil.which("chromium")
    options.binary_location = str(binary)
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-extensions",
        "--disable-background-networking",
        f"--window-size={width},{height}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver_path = next((p for p in CHROMEDRIVER if Path(p).is_file()), None) or shutil.which("chromedriver")
    return webdriver.Chrome(service=Service(executable_path=str(driver_path)), options=options)

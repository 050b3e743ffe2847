"""Experiments the dashboard's app and browser tests serve: built once per session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ._experiments import XSS_KEY, grid_run, malformed


@pytest.fixture(scope="session")
def dashboard_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory of two experiments: a finished grid search whose key, label, candidate
    and failed trial's error are HTML, and a store that is not SQLite ("broken")."""
    root = tmp_path_factory.mktemp("dashboard")
    grid_run(root / XSS_KEY)
    malformed(root / "broken")
    return root


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """A headless Chromium per browser-test module (those modules skip first where it is missing)."""
    from ._serve import chromium

    driver = chromium()
    try:
        yield driver
    finally:
        driver.quit()

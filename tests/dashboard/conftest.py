"""Experiments the dashboard's app and browser tests serve: built once per session."""

from __future__ import annotations

from pathlib import Path

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

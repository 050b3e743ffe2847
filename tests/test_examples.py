"""Every script under examples/ runs to completion (long ones with a small budget)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))
# Scripts whose full run is the README's main job get a small budget here.
SMALL_ARGS = {
    "digits_search.py": ["2", "1"],
    "digits_oneshot.py": ["darts", "1"],
    "digits_pareto.py": ["4", "1"],
    "digits_hardware.py": ["4", "1"],
}


def run_example(script: Path, cwd: Path) -> str:
    result = subprocess.run(
        [sys.executable, str(script), *SMALL_ARGS.get(script.name, [])],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=cwd,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.name)
def test_example_runs(script: Path, tmp_path: Path) -> None:
    assert run_example(script, tmp_path).strip()


def test_demo_prints_size_decisions_and_three_frozen_models(tmp_path: Path) -> None:
    out = run_example(ROOT / "examples" / "demo_space.py", tmp_path)
    assert "architectures" in out and "width" in out
    assert out.count("frozen:") == 3
    assert out.count("output (4, 10)") == 3


def test_digits_search_reports_best_and_leaves_the_experiment_on_disk(tmp_path: Path) -> None:
    out = run_example(ROOT / "examples" / "digits_search.py", tmp_path)
    assert "best architecture" in out and "validation accuracy" in out
    stores = list((tmp_path / "archsmith-experiments").glob("digits-*/experiment.db"))
    assert len(stores) == 1

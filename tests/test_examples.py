"""Every script under examples/ runs to completion."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.name)
def test_example_runs(script: Path) -> None:
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()


def test_demo_prints_size_decisions_and_three_frozen_models() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "demo_space.py")], capture_output=True, text=True, check=True
    ).stdout
    assert "architectures" in out and "width" in out
    assert out.count("frozen:") == 3
    assert out.count("output (4, 10)") == 3

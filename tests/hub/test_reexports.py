"""The hub re-exports the NAS-Bench-201 space, and importing the hub pulls in no
layer above it (DESIGN.md: the hub imports only space and nn)."""

from __future__ import annotations

import subprocess
import sys

from archsmith.benchmarks.nasbench201 import NasBench201Space
from archsmith.hub import NasBench201


def test_nasbench201_is_the_benchmark_space() -> None:
    assert NasBench201 is NasBench201Space
    assert NasBench201().size() == 5**6


def test_importing_the_hub_loads_no_higher_layer() -> None:
    code = (
        "import sys, archsmith.hub\n"
        "print(sorted(m for m in ('archsmith.experiment', 'archsmith.execution', 'archsmith.evaluator') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]"

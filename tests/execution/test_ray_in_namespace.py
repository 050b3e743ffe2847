"""The tests that start a Ray of their own (the engine contract's ``ray`` cases:
faults, intermediates, capacity, timeouts; a search on a local Ray) run here, in a
pytest session inside private network and PID namespaces with only ``lo`` up,
so no traffic leaves loopback and no Ray process outlives the session."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ._netns import INSIDE, command, inside, refusal

HERE = Path(__file__).resolve().parent
FILES = ["test_engine_interface.py", "test_trial_failures.py", "test_gpus.py", "test_ray_local.py"]
LIMIT = 600


def test_the_ray_cases_pass_on_loopback_only() -> None:
    if inside():
        pytest.skip("already inside the namespace")
    reason = refusal()
    if reason is not None:
        pytest.skip(reason)
    pytest.importorskip("ray")
    args = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-k",
        "ray",
        *(str(HERE / f) for f in FILES),
    ]
    env = {**os.environ, INSIDE: "1", "RAY_USAGE_STATS_ENABLED": "0"}
    try:
        done = subprocess.run(
            command(*args), capture_output=True, text=True, timeout=LIMIT, env=env, cwd=HERE.parents[1]
        )
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"the Ray cases took over {LIMIT} s:\n{(e.stdout or '')[-4000:]}")
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-6000:]
    summary = out.strip().splitlines()[-1]
    assert " passed" in summary and "skipped" not in summary, out[-3000:]  # every Ray case ran

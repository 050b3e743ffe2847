"""Ray only inside a private network namespace: Ray registers a node under the
machine's interface address even when told 127.0.0.1, so every test that starts
Ray runs where only ``lo`` exists (``unshare --net``, root)."""

from __future__ import annotations

import os
import shutil
import subprocess

#: Set in the environment of a test session running inside such a namespace.
INSIDE = "ARCHSMITH_TEST_IN_NETNS"


def inside() -> bool:
    """Whether this test session runs inside a private network namespace of ours."""
    return os.environ.get(INSIDE) == "1"


def refusal() -> str | None:
    """Why tests cannot make their namespaces here, or None if they can."""
    if shutil.which("unshare") is None:
        return "the unshare command is not installed"
    if os.geteuid() != 0:
        return "private network namespaces need root (unshare -n); CI runs as root"
    probe = subprocess.run(["unshare", "--net", "--pid", "--fork", "--mount-proc", "true"], capture_output=True)
    if probe.returncode != 0:
        return f"unshare is not permitted here: {probe.stderr.decode().strip()}"
    return None


def command(*argv: str) -> list[str]:
    """``argv`` run in new network and PID namespaces with ``lo`` up: every process
    it starts dies with it (``--kill-child``)."""
    script = 'ip link set lo up && exec "$@"'
    return ["unshare", "--net", "--pid", "--fork", "--kill-child", "--mount-proc", "sh", "-c", script, "sh", *argv]

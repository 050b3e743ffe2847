"""A real two-node Ray cluster on 127.0.0.1 and the searches the Ray tests run on it.

``python ray_cluster.py OUT`` (run inside a private network namespace with only
``lo``, and a PID namespace, by ``tests/execution/test_ray_cluster.py``): brings
``lo`` up, starts a head node (2 CPUs, 2 fake GPUs) and a second node (1 CPU)
that joins it, runs the scenarios' drivers against it through ``ray_address``
(the last one loses the second node mid-run), writes ``OUT/results.json`` and
stops the cluster, even when a step fails. Each step has a timeout.

``python ray_cluster.py --driver SCENARIO[,SCENARIO...] OUT ADDRESS [--resume]``
runs the scenarios' experiments (see ``_ray_helpers.experiment``) in one driver.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
PORT = 6390
ADDRESS = f"127.0.0.1:{PORT}"
RAY = str(Path(sys.executable).parent / "ray")
#: Settings of each scenario's experiment.
CONFIGS: dict[str, dict[str, object]] = {
    "faults": {"max_trials": 5, "trial_timeout": 8.0},
    "early_stop": {},
    "gpu": {"max_trials": 4, "resources_per_trial": {"cpu": 1, "gpu": 1}},
    "resume": {"max_trials": 6},
    "node_loss": {"max_trials": 6, "max_retries": 1},
}


def driver(scenarios: list[str], out: Path, address: str, resume: bool) -> None:
    from _ray_helpers import experiment

    for scenario in scenarios:
        start = time.time()
        experiment(scenario, out / scenario, address, **CONFIGS[scenario]).run(resume=resume)  # type: ignore[arg-type]
        print(f"SCENARIO {scenario} DONE in {time.time() - start:.1f} s", flush=True)


def run(args: list[str], timeout: float, env: dict[str, str] | None = None) -> dict[str, object]:
    start = time.time()
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=env)
        return {"rc": done.returncode, "out": done.stdout + done.stderr, "wall": time.time() - start}
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        return {"rc": "timeout", "out": out, "wall": time.time() - start}


def start_node(args: list[str], env: dict[str, str], tries: int = 3) -> dict[str, object]:
    """``ray start``, tried again where it timed out: Ray gives a raylet 30 s to
    register, which a loaded 2-core machine can miss."""
    for _ in range(tries):
        result = run(args, 180, env)
        if result["rc"] == 0 or "timed out during startup" not in str(result["out"]):
            return result
        if "--head" in args:
            run([RAY, "stop", "--force"], 60)
    return result


def driver_args(scenarios: str, out: Path, *extra: str) -> list[str]:
    return [sys.executable, __file__, "--driver", scenarios, str(out), ADDRESS, *extra]


def succeeded(db: Path) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
            return int(conn.execute("SELECT count(*) FROM trials WHERE status = 'succeeded'").fetchone()[0])
    except sqlite3.Error:
        return 0


def kill_and_resume(out: Path, env: dict[str, str]) -> dict[str, object]:
    """Start the resume scenario's driver, SIGKILL it once 2 trials succeeded, resume it."""
    start = time.time()
    proc = subprocess.Popen(
        driver_args("resume", out), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    killed_at = None
    while time.time() - start < 240 and proc.poll() is None:
        if succeeded(out / "resume" / "experiment.db") >= 2:
            proc.send_signal(signal.SIGKILL)
            killed_at = succeeded(out / "resume" / "experiment.db")
            break
        time.sleep(0.1)
    proc.kill()
    first = proc.communicate()[0]
    second = run(driver_args("resume", out, "--resume"), 240, env)
    return {**second, "first": first, "killed_with_succeeded": killed_at, "wall": time.time() - start}


def main(out: Path) -> None:
    results: dict[str, object] = {}
    env = dict(
        os.environ,
        RAY_health_check_period_ms="500",  # a lost node is noticed in about a second
        RAY_health_check_failure_threshold="3",
        RAY_health_check_initial_delay_ms="0",
        RAY_USAGE_STATS_ENABLED="0",
        RAY_AUTH_MODE="disabled",  # a private loopback cluster: no token to hand around
        RAY_preload_python_modules="torch,archsmith.execution._run",  # as docs/scale.md advises
        ARCHSMITH_TEST_MARKERS=str(out / "markers"),  # _ray_helpers.reach_both_nodes
    )
    try:
        results["lo"] = run(["ip", "link", "set", "lo", "up"], 10)
        common = ["--node-ip-address", "127.0.0.1", "--disable-usage-stats"]
        results["head"] = start_node(
            [RAY, "start", "--head", "--port", str(PORT), "--num-cpus", "2", "--num-gpus", "2",
             "--include-dashboard", "false", "--ray-client-server-port", "10001", *common],
            env,
        )  # fmt: skip
        results["second"] = start_node(
            [RAY, "start", "--address", ADDRESS, "--num-cpus", "1", "--num-gpus", "0", *common],
            {**env, "ARCHSMITH_TEST_NODE": "second"},
        )
        results["drivers"] = run(driver_args("faults,early_stop,gpu", out), 360, env)
        results["resume"] = kill_and_resume(out, env)
        results["node_loss"] = run(driver_args("node_loss", out), 240, env)
    except BaseException:
        results["error"] = traceback.format_exc()
    finally:
        results["stop"] = run([RAY, "stop", "--force"], 60)  # the PID namespace's end kills anything left
        (out / "results.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    if sys.argv[1] == "--driver":
        driver(sys.argv[2].split(","), Path(sys.argv[3]), sys.argv[4], "--resume" in sys.argv)
    else:
        main(Path(sys.argv[1]))

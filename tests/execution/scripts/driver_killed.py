"""A driver for tests/execution/test_worker_processes.py: starts a ProcessEngine
whose two trials start processes (``sleep 1000``, an orphaned ``sleep``, a forked
child) and hang; prints their pids as one JSON line, then waits to be killed."""

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from archsmith.execution import ProcessEngine
from tests.execution._execution_helpers import payload, trial

engine = ProcessEngine(concurrency=2)
engine.start(payload())
engine.submit(trial(1, "popen_hang"))
engine.submit(trial(2, "fork_hang"))
pids: dict[str, float] = {}
end = time.time() + 60
while len(pids) < 3 and time.time() < end:
    for event in engine.wait(0.2):
        if event.kind == "intermediate" and isinstance(event.metric, dict):
            pids.update({k: v for k, v in event.metric.items() if k in ("sleep", "orphan", "child")})
print(json.dumps({k: int(v) for k, v in pids.items()}), flush=True)
time.sleep(1000)

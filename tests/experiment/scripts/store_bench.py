"""Micro-benchmark of the store's hot path: N transactions of add_trial + mark_running
+ finish_trial (what the experiment loop writes per trial), on a real file.

``python store_bench.py [N] [REPEATS]``; prints the best per-transaction time in µs.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
from archsmith.experiment import Store

N = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
REPEATS = int(sys.argv[2]) if len(sys.argv) > 2 else 5


def once(directory: Path) -> float:
    path = directory / "experiment.db"
    store = Store.create(path, {"seed": 0}) if hasattr(Store, "create") else Store(path)
    try:
        start = time.perf_counter()
        for i in range(N):
            with store.transaction():
                trial_id = store.add_trial({"width": i, "op": "conv"})
                store.set_meta("strategy_state", {"rng": i})
            store.mark_running(trial_id, "main", time.time())
            with store.transaction():
                store.finish_trial(trial_id, "succeeded", metric={"acc": 0.5}, objective=0.5, at=time.time())
        return (time.perf_counter() - start) / N
    finally:
        store.close()
        for p in directory.iterdir():
            p.unlink()


with tempfile.TemporaryDirectory() as tmp:
    times = [once(Path(tmp)) for _ in range(REPEATS)]
print(
    f"{N} trials x {REPEATS}: best {min(times) * 1e6:.1f} µs/trial, median {statistics.median(times) * 1e6:.1f} µs/trial"
)

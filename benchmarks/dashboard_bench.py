"""The dashboard at scale: a generated store of 20,000 trials, served live.

Generates the store through the real ``Store`` API (a driver's writes: trials with
samples, five intermediate results each, final metrics, some failed and some
early-stopped), keeps that writer open as a live run would, and prints:

- each API endpoint's time, first (cold: the whole store read) and again (warm);
- the pages (``/`` and an experiment's page) when the frontend's app is installed;
- a live poll (``trials?since=VERSION``) with nothing new, and with 10 new trials;
- ``archsmith report`` of the store, and ``archsmith trials EXP`` as a subprocess.

The imports the server makes in the background when it starts (torch for the
architecture view, Optuna for importance: seconds, once) are timed apart, first.

Targets (issue 13): pages and API answers <= 2 s; a poll costs what is new.

Run: ``.venv/bin/python benchmarks/dashboard_bench.py [--trials 20000]``.
"""

from __future__ import annotations

import argparse
import functools
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from archsmith.experiment import STORE_FILE, Store

OPS = ["conv3x3", "conv5x5", "sepconv3x3", "maxpool", "skip", "<b>none</b>"]
WIDTHS = [16, 32, 64, 128]
STEPS = 5


def generate_store(directory: Path, trials: int, seed: int = 0, *, keep_open: bool = False) -> Store | None:
    """A finished-looking experiment of ``trials`` trials under ``directory``, written
    through the Store API; ``keep_open``: return the writer (a live run's driver)
    with the status ``running``, else close it (status ``done``)."""
    rng = random.Random(seed)
    labels = [f"cell/op_{i}" for i in range(4)] + ["width", "lr"]
    decisions = {f"cell/op_{i}": f"one of {OPS!r}" for i in range(4)}
    decisions.update(width=f"one of {WIDTHS!r}", lr="a number in [0.0001, 0.1]")
    meta = {
        "space": "bench.Net",
        "space_class": "Net",
        "labels": labels,
        "decisions": decisions,
        "objectives": ["val_acc"],
        "directions": ["maximize"],
        "objective": "val_acc",
        "direction": "maximize",
        "strategy": "RegularizedEvolution()",
        "seed": seed,
        "created_at": time.time() - trials,
        "config": {"max_trials": trials, "engine": "process", "objective": "val_acc", "direction": "maximize"},
        "status": "running",
        "heartbeat": time.time(),
    }
    store = Store.create(directory / STORE_FILE, meta)
    with store.transaction():
        for _ in range(trials):
            add_finished_trial(store, rng, labels)
    if keep_open:
        return store
    store.set_meta("status", "done")
    store.close()
    return None


def add_finished_trial(store: Store, rng: random.Random, labels: list[str] | None = None) -> int:
    """One trial as a driver records it: sample, start, steps, end."""
    sample: dict[str, Any] = {f"cell/op_{i}": rng.choice(OPS) for i in range(4)}
    sample.update(width=rng.choice(WIDTHS), lr=round(10 ** rng.uniform(-4, -1), 6))
    score = (
        0.5
        + 0.1 * WIDTHS.index(sample["width"]) / 3
        + 0.05 * sum(op.startswith("conv") for op in sample.values() if isinstance(op, str))
    )
    now = time.time()
    trial = store.add_trial(sample)
    store.mark_running(trial, "worker-0", now)
    fate = rng.random()
    steps = STEPS if fate > 0.05 else rng.randrange(1, STEPS)
    for step in range(steps):
        value = score * (step + 1) / STEPS + rng.gauss(0, 0.01)
        store.add_intermediate(trial, step, {"val_acc": value, "loss": 1 - value}, value, now)
    if fate < 0.03:
        store.finish_trial(
            trial, "failed", error="Traceback (most recent call last):\nRuntimeError: CUDA out of memory", at=now + 1
        )
    elif fate < 0.05:
        store.finish_trial(trial, "stopped", metric={"val_acc": value}, objective=value, at=now + 1, stopped_early=True)
    else:
        final = score + rng.gauss(0, 0.02)
        store.finish_trial(
            trial, "succeeded", metric={"val_acc": final, "loss": 1 - final}, objective=final, at=now + 1
        )
    return trial


def timed(what: str, action: Callable[[], Any]) -> Any:
    """Run ``action``, printing its wall time and this process's CPU time (the server
    runs in this process: on a loaded machine the CPU time is the steadier figure)."""
    start, cpu = time.perf_counter(), time.process_time()
    result = action()
    elapsed, used = time.perf_counter() - start, time.process_time() - cpu
    print(f"  {what:<48} {elapsed * 1000:9.1f} ms wall {used * 1000:9.1f} ms CPU")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20_000)
    args = parser.parse_args()

    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from archsmith.dashboard._api import api_router
    from archsmith.dashboard._data import ExperimentIndex
    from archsmith.dashboard._report import write_report

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"machine: {os.cpu_count()} CPUs, load average {load:.1f} (wall times stretch with the load)")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        key = "big"
        print(f"generating {args.trials} trials ({STEPS} intermediate results each) through the Store API")
        writer = timed("generate the store", lambda: generate_store(root / key, args.trials, keep_open=True))
        assert writer is not None
        try:
            from archsmith.dashboard import create_app

            app = create_app(root)
            pages = True
        except (ImportError, AttributeError):
            app, pages = FastAPI(), False
            app.include_router(api_router(ExperimentIndex(root)), prefix="/api")
        client = TestClient(app)
        from archsmith.dashboard._api import _warm_up

        # what the server imports in the background at start (torch, Optuna): once per server
        timed("start-up imports (background, once per server)", _warm_up)

        def get(path: str) -> Any:
            response = client.get(path)
            assert response.status_code == 200, (path, response.status_code, response.text[:300])
            return response

        base = f"/api/experiments/{key}"
        endpoints = [
            "/api/experiments",
            base,
            f"{base}/trials",
            f"{base}/trials/1",
            *(f"{base}/figures/{name}" for name in ("history", "curves", "parallel", "importance", "pareto")),
            f"{base}/top?k=5",
        ]
        print("API, first request (cold: reads the store) and again (warm: cached)")
        for path in endpoints:
            timed(f"GET {path.replace(base, '…/' + key)}", functools.partial(get, path))
            timed("  again", functools.partial(get, path))
        if pages:
            print("pages")
            for path in ("/", f"/experiments/{key}", f"/experiments/{key}/trials/1"):
                timed(f"GET {path}", functools.partial(get, path))
        version = get(f"{base}/trials").json()["version"]
        print("live polls")
        answer = timed("poll with nothing new", lambda: get(f"{base}/trials?since={version}").json())
        assert answer["trials"] == [] and not answer["complete"]
        rng = random.Random(1)
        with writer.transaction():
            for _ in range(10):
                add_finished_trial(writer, rng)
            writer.set_meta("heartbeat", time.time())
        answer = timed("poll with 10 new trials", lambda: get(f"{base}/trials?since={version}").json())
        assert len(answer["trials"]) == 10 and not answer["complete"], (len(answer["trials"]), answer["complete"])
        timed("figure history after the 10 new trials", lambda: get(f"{base}/figures/history"))
        writer.set_meta("status", "done")
        writer.close()
        timed("archsmith report (in-process)", lambda: write_report(root / key, root / "report.html"))
        size = (root / "report.html").stat().st_size
        print(f"  report size {size / 1e6:.1f} MB")
        cli = [sys.executable, "-m", "archsmith", "trials", str(root / key)]
        timed(
            "archsmith trials EXP (subprocess, to a pipe)", lambda: subprocess.run(cli, capture_output=True, check=True)
        )
        timed(
            "python -m archsmith --version (start-up alone)",
            lambda: subprocess.run([sys.executable, "-m", "archsmith", "--version"], capture_output=True, check=True),
        )


if __name__ == "__main__":
    main()

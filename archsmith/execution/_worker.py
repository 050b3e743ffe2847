"""A worker process: ``python -m archsmith.execution._worker FD NAME THREADS``.

Workers are plain subprocesses talking over an inherited socket, not
``multiprocessing`` children, so a user's script is never re-imported in them (an
unguarded script works) and the payload, pickled by value, is all they need.

Protocol, over one duplex pipe:
driver -> worker: ("trial", id, sample, seed) | ("stop_trial", id) | ("shutdown",)
worker -> driver: ("ready",) | ("fatal", text) | ("started", id, at) |
                  ("intermediate", id, step, metric, at) | ("finished", event)
"""

from __future__ import annotations

import signal
import sys
import time
import traceback
from multiprocessing.connection import Connection
from typing import Any


def worker_main(conn: Connection, name: str, threads: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's to handle
    try:
        payload = conn.recv_bytes()
        import cloudpickle
        import torch

        torch.set_num_threads(threads)
        from ._run import Runner
        from ._trial import Trial

        runner = Runner(cloudpickle.loads(payload))
    except BaseException:
        conn.send(("fatal", traceback.format_exc()))
        return
    conn.send(("ready",))
    stop: set[int] = set()
    shutdown = False

    def drain() -> None:
        nonlocal shutdown
        while conn.poll():
            msg = conn.recv()
            if msg[0] == "stop_trial":
                stop.add(msg[1])
            elif msg[0] == "shutdown":
                shutdown = True
            else:
                pending.append(msg)

    pending: list[Any] = []
    while not shutdown:
        try:
            msg = pending.pop(0) if pending else conn.recv()
        except EOFError:
            return  # the driver is gone
        if msg[0] == "shutdown":
            return
        if msg[0] == "stop_trial":
            stop.add(msg[1])
            continue
        _, trial_id, sample, seed = msg
        conn.send(("started", trial_id, time.time()))

        def on_intermediate(step: int, metric: Any, trial_id: int = trial_id) -> None:
            conn.send(("intermediate", trial_id, step, metric, time.time()))

        def stop_requested(trial_id: int = trial_id) -> bool:
            drain()
            return trial_id in stop

        event = runner.run(Trial(trial_id, sample, seed), name, on_intermediate, stop_requested)
        event.at = time.time()
        conn.send(("finished", event))


if __name__ == "__main__":
    fd, worker_name, thread_count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    worker_main(Connection(int(fd)), worker_name, thread_count)

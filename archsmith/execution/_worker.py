"""A worker process: forked from a template (``_template``), or spawned as
``python -m archsmith.execution._worker FD NAME THREADS PARENT_PID [LOG_DIR]``.

Workers talk over a socket of their own, and are not ``multiprocessing``
children, so a user's script is never re-imported in them (an unguarded script
works) and the payload, pickled by value, is all they need.

A worker leads its own process group (a session of its own) and:

- dies with its parent, the driver or the template, which dies with the driver
  (``PR_SET_PDEATHSIG``; a ``getppid`` watch elsewhere);
- forks a guard that kills the worker's process group once the worker is gone, so
  processes a trial started never outlive a worker killed by SIGKILL;
- is a child subreaper and, after each trial, kills the processes that appeared
  during it (a ``subprocess``, ``DataLoader`` workers, a forked child...);
- with ``LOG_DIR``, sends each trial's fds 1 and 2 to ``LOG_DIR/<trial id>/output.log``
  (C code and child processes included) and has ``faulthandler`` write the Python
  stack there on a crash, or on SIGUSR1 (the driver's timeout asks for it).

Protocol, over one duplex pipe:
driver -> worker: ("trial", id, sample, seed) | ("stop_trial", id) | ("shutdown",)
worker -> driver: ("ready",) | ("fatal", text) | ("started", id, at) |
                  ("intermediate", id, step, metric, at) | ("finished", event)
"""

from __future__ import annotations

import faulthandler
import os
import signal
import sys
import time
import traceback
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from ._processes import TrialProcesses, die_with_parent, set_process_name, start_group_guard


class _redirected:
    """Send fds 1 and 2 to the trial's log while it runs (a no-op without a log dir)."""

    def __init__(self, log_dir: Path | None, trial_id: int) -> None:
        self.log_dir, self.trial_id = log_dir, trial_id
        self.saved: tuple[int, int] | None = None

    def __enter__(self) -> None:
        if self.log_dir is None:
            return
        from ._output import open_log

        try:
            fd = open_log(self.log_dir, self.trial_id)
        except OSError as e:
            print(f"archsmith: cannot write the log of trial {self.trial_id}: {e}", file=sys.stderr)
            return
        sys.stdout.flush()
        sys.stderr.flush()
        self.saved = os.dup(1), os.dup(2)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)

    def __exit__(self, *exc: object) -> None:
        if self.saved is None:
            return
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os.dup2(self.saved[0], 1)
        os.dup2(self.saved[1], 2)
        os.close(self.saved[0])
        os.close(self.saved[1])
        self.saved = None


def worker_main(conn: Connection, name: str, threads: int, parent: int, log_dir: Path | None) -> None:
    """Load the payload, then run trials until told to shut down or the driver is gone."""
    set_process_name("archsmith-work")  # what tests and ``ps -o comm`` find workers by
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's to handle
    start_group_guard()  # first: one thread yet, so forking is safe and cheap
    die_with_parent(parent)
    processes = TrialProcesses()
    if log_dir is not None:
        faulthandler.enable(all_threads=True)  # fd 2: the trial's log while a trial runs
        faulthandler.register(signal.SIGUSR1, all_threads=True)
        if hasattr(sys.stdout, "reconfigure"):
            sys.stdout.reconfigure(line_buffering=True)  # a print before a crash reaches the log
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
        except (EOFError, OSError):
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

        processes.mark()
        with _redirected(log_dir, trial_id):
            event = runner.run(Trial(trial_id, sample, seed), name, on_intermediate, stop_requested)
        processes.end()  # before "finished": a finished trial has no process left
        event.at = time.time()
        conn.send(("finished", event))


if __name__ == "__main__":
    fd, worker_name, thread_count, parent_pid = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    worker_main(
        Connection(int(fd)), worker_name, thread_count, parent_pid, Path(sys.argv[5]) if len(sys.argv) > 5 else None
    )

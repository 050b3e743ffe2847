"""The worker template: a process with torch loaded that forks worker processes on
request, so a worker starts in milliseconds instead of a fresh interpreter's
second or more (importing torch), at the start and when one is replaced.

It is either forked from the driver (``fork``: it has everything the driver
imported, the payload's modules included) or started as a fresh interpreter,
``python -m archsmith.execution._template FD DRIVER_PID`` (``forkserver``). Either
way the user's script is never re-imported: a worker gets the payload pickled by
value, as a spawned worker does (see ``_worker``).

The template dies with the driver (``PR_SET_PDEATHSIG``) and its workers with it.
It never reaps a worker by itself: the driver kills a dead worker's process group
first (an unreaped worker keeps its group id from reuse), then asks.

Protocol over its control socket (the worker's socket follows a "spawn" as
``SCM_RIGHTS``):
driver -> template: ("spawn", name, env, threads, log_dir) | ("reap", pid)
template -> driver: ("spawned", name, pid) | ("exited", pid, returncode)
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import sys
import traceback
from multiprocessing.connection import Connection
from multiprocessing.reduction import recvfds
from pathlib import Path
from typing import Any

from ._forking import pause_openmp
from ._processes import die_with_parent, set_process_name

#: Without a SIGCHLD, exits are still checked this often (seconds).
EXIT_CHECK = 1.0


def _returncode(pid: int) -> int | None:
    """The exit status of child ``pid`` as ``Popen.returncode`` has it, without reaping it."""
    try:
        info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return -signal.SIGKILL  # already gone: nothing better to say
    if info is None:
        return None
    return -info.si_status if info.si_code in (os.CLD_KILLED, os.CLD_DUMPED) else info.si_status


def serve(control: socket.socket) -> None:
    """Fork workers as the driver asks, report their exits, reap them when told;
    return when the driver closes the control socket."""
    set_process_name("archsmith-tmpl")
    conn = Connection(os.dup(control.fileno()))
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_read, False)
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # a handler, so SIGCHLD writes to the wakeup fd
    running: set[int] = set()
    while True:
        select.select([conn.fileno(), wake_read], [], [], EXIT_CHECK)
        with contextlib.suppress(BlockingIOError):
            os.read(wake_read, 4096)
        for pid in list(running):
            code = _returncode(pid)
            if code is not None:
                running.discard(pid)
                conn.send(("exited", pid, code))
        while conn.poll():
            try:
                msg = conn.recv()
            except (EOFError, OSError):
                return
            if msg[0] == "spawn":
                (fd,) = recvfds(control, 1)
                pause_openmp()  # a no-op unless something here ran parallel code
                set_process_name("archsmith-work")  # inherited: named from its first instant
                pid = os.fork()
                if pid == 0:
                    for own in (wake_read, wake_write, conn.fileno(), control.fileno()):
                        os.close(own)
                    _become_worker(fd, *msg[1:])
                set_process_name("archsmith-tmpl")
                os.close(fd)
                running.add(pid)
                conn.send(("spawned", msg[1], pid))
            elif msg[0] == "reap":
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(msg[1], 0)


def _become_worker(fd: int, name: str, env: dict[str, str], threads: int, log_dir: Path | None) -> None:
    """In a child just forked: run as worker ``name``, then exit (never return)."""
    code = 1
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.setsid()  # its own session and process group, as a spawned worker's
        os.environ.update(env)  # before anything touches CUDA: CUDA_VISIBLE_DEVICES takes effect
        from ._worker import worker_main

        worker_main(Connection(fd), name, threads, os.getppid(), log_dir)
        code = 0
    except BaseException:
        with contextlib.suppress(Exception):
            traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(code)  # no interpreter teardown: finalizers of inherited objects never run here


def template_main(fd: int, driver: int) -> None:
    """A fresh template (``forkserver``): load what every worker needs, then serve."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    die_with_parent(driver)
    control = socket.socket(fileno=fd)
    import cloudpickle  # noqa: F401 - loaded once here, not in each worker
    import torch  # noqa: F401

    from . import _run, _worker  # noqa: F401

    serve(control)


def run_forked(control: socket.socket, driver: int) -> Any:
    """The body of a template forked from the driver; never returns."""
    from ._forking import drop_inherited_state

    try:
        die_with_parent(driver)
        os.setsid()  # out of the driver's terminal group: Ctrl-C is the driver's alone
        drop_inherited_state(keep={control.fileno()})
        serve(control)
    except BaseException:
        with contextlib.suppress(Exception):
            traceback.print_exc()
    finally:
        os._exit(0)


if __name__ == "__main__":
    template_main(int(sys.argv[1]), int(sys.argv[2]))

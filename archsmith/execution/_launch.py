"""Starting worker processes: forked from a template (fast) or spawned as fresh
interpreters (portable). The engine sees each worker as a ``Popen``-like handle
(``pid``, ``poll()``, ``wait(timeout)``, ``kill()``, ``returncode``).

``worker_start`` chooses how:

- ``"fork"``: a template forked from the driver, which has torch and the
  payload's modules loaded already: a worker is up in milliseconds. Only where
  forking the driver is safe (Linux, no other thread running, CUDA untouched).
- ``"forkserver"``: a template started as a fresh interpreter (it imports torch
  once); workers are forked from it, so replacing one is fast.
- ``"spawn"``: each worker a fresh interpreter (every platform).
- ``"auto"`` (the default): ``fork`` where it is safe, else ``forkserver``, and
  ``spawn`` off Linux. The environment variable ``ARCHSMITH_WORKER_START`` sets
  the default.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.reduction import sendfds
from pathlib import Path
from typing import Any, Literal, Protocol

from archsmith.space import ArchsmithError

from ._forking import fork_blockers, pause_openmp

logger = logging.getLogger("archsmith.execution")

WorkerStart = Literal["auto", "fork", "forkserver", "spawn"]
WORKER_STARTS: tuple[str, ...] = ("auto", "fork", "forkserver", "spawn")
#: How long a template may take to fork a worker (a fresh one imports torch first).
SPAWN_TIMEOUT = 120.0


class LaunchError(ArchsmithError, RuntimeError):
    """Worker processes cannot be started the way that was asked."""


@dataclass
class LaunchRequest:
    """One worker to start: its name, its end of the socket to the driver, the
    environment it gets on top of the driver's, its torch threads, its log dir."""

    name: str
    sock: socket.socket
    env: dict[str, str]
    threads: int
    log_dir: Path | None


class WorkerProcess(Protocol):
    """What the engine needs of a worker process (``subprocess.Popen`` has it)."""

    pid: int
    returncode: int | None

    def poll(self) -> int | None: ...

    def wait(self, timeout: float | None = None) -> int: ...

    def kill(self) -> None: ...


class Launcher(Protocol):
    method: str  # how workers are started now: "fork", "forkserver" or "spawn"
    note: str | None  # why it is not "fork", where "auto" wanted it

    def launch(self, requests: list[LaunchRequest]) -> list[WorkerProcess]: ...

    def close(self) -> None: ...


def resolve_worker_start(value: str | None) -> str:
    """The ``worker_start`` asked for (``None``: ``$ARCHSMITH_WORKER_START`` or
    ``"auto"``), checked."""
    chosen = value if value is not None else os.environ.get("ARCHSMITH_WORKER_START") or "auto"
    if chosen not in WORKER_STARTS:
        where = "worker_start" if value is not None else "ARCHSMITH_WORKER_START"
        raise LaunchError(f"{where}={chosen!r} is not a way to start workers; use one of {', '.join(WORKER_STARTS)}")
    if chosen in ("fork", "forkserver") and not sys.platform.startswith("linux"):
        raise LaunchError(f"worker_start={chosen!r} needs Linux; use 'spawn' (or 'auto') on {sys.platform}")
    return chosen


def make_launcher(worker_start: str) -> Launcher:
    """A launcher for ``worker_start`` (see the module's docstring)."""
    if worker_start == "spawn" or (worker_start == "auto" and not sys.platform.startswith("linux")):
        return SpawnLauncher()
    if worker_start == "fork":
        blockers = fork_blockers()
        if blockers:
            raise LaunchError(
                f"worker_start='fork' is unsafe here: {'; '.join(blockers)}. "
                "Use worker_start='forkserver' (or 'auto', which falls back to it)"
            )
    return TemplateLauncher(prefer_fork=worker_start != "forkserver")


class SpawnLauncher:
    """Each worker a fresh interpreter: ``python -m archsmith.execution._worker``."""

    method = "spawn"
    note: str | None = None

    def launch(self, requests: list[LaunchRequest]) -> list[WorkerProcess]:
        return [self._popen(request) for request in requests]

    @staticmethod
    def _popen(request: LaunchRequest) -> WorkerProcess:
        fd = request.sock.fileno()
        args = [str(fd), request.name, str(request.threads), str(os.getpid())]
        if request.log_dir is not None:
            args.append(str(request.log_dir))
        return subprocess.Popen(
            [sys.executable, "-m", "archsmith.execution._worker", *args],
            pass_fds=[fd],
            env={**os.environ, **request.env},
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: killed as a whole, never with the driver's
        )

    def close(self) -> None:
        pass


class ForkedWorker:
    """A worker forked by the template, seen from the driver: the template reports
    its exit and reaps it once the driver has waited for it."""

    def __init__(self, template: _Template, pid: int) -> None:
        self.template, self.pid = template, pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        """The exit status if it has exited (not reaped yet), else None."""
        if self.returncode is None:
            self.template.collect(0)
            self.returncode = self.template.exits.get(self.pid)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        """Wait for it to exit, then have it reaped. An exit nobody can report
        (the template died too) reads as SIGKILL."""
        end = time.monotonic() + (SPAWN_TIMEOUT if timeout is None else timeout)
        while self.poll() is None:
            if not self.template.alive:
                self.returncode = -signal.SIGKILL  # the template's death kills its workers
                break
            left = end - time.monotonic()
            if left <= 0:
                raise subprocess.TimeoutExpired(f"worker {self.pid}", timeout or SPAWN_TIMEOUT)
            self.template.collect(min(left, 0.5))
        self.template.reap(self.pid)
        return self.returncode  # type: ignore[return-value]  # set by the loop

    def kill(self) -> None:
        if self.returncode is None:  # unreaped: the pid is still this worker's
            with contextlib.suppress(OSError):
                os.kill(self.pid, signal.SIGKILL)


class _Template:
    """One template process and the driver's end of its control socket."""

    def __init__(self, fork: bool) -> None:
        ours, theirs = socket.socketpair()
        self.process: subprocess.Popen[bytes] | None = None
        if fork:
            driver = os.getpid()
            pause_openmp()  # GNU libgomp's pool deadlocks a forked child that uses it
            for stream in (sys.stdout, sys.stderr):  # or buffered text is printed twice
                with contextlib.suppress(Exception):
                    stream.flush()
            pid = os.fork()
            if pid == 0:
                from ._template import run_forked

                ours.close()
                run_forked(theirs, driver)
            self.pid = pid
        else:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "archsmith.execution._template", str(theirs.fileno()), str(os.getpid())],
                pass_fds=[theirs.fileno()],
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
            self.pid = self.process.pid
        theirs.close()
        self.sock = ours
        self.conn = Connection(os.dup(ours.fileno()))
        self.exits: dict[int, int] = {}
        self.alive = True

    def spawn(self, requests: list[LaunchRequest]) -> list[int]:
        """Have the template fork a worker per request (asked all at once); their pids."""
        try:
            for r in requests:
                self.conn.send(("spawn", r.name, r.env, r.threads, r.log_dir))
                sendfds(self.sock, [r.sock.fileno()])
        except OSError as e:
            self.alive = False
            raise LaunchError(f"the worker template process is gone ({e})") from e
        pids: dict[str, int] = {}
        end = time.monotonic() + SPAWN_TIMEOUT
        while self.alive and len(pids) < len(requests) and time.monotonic() < end:
            msg = self._receive(end - time.monotonic())
            if msg is not None and msg[0] == "spawned":
                pids[msg[1]] = int(msg[2])
        if len(pids) < len(requests):
            reason = "died" if not self.alive else f"did not answer within {SPAWN_TIMEOUT:.0f} s"
            raise LaunchError(f"the worker template process {reason} before it could start the workers")
        return [pids[r.name] for r in requests]

    def _receive(self, timeout: float) -> tuple[Any, ...] | None:
        """One message, bookkeeping exits; None if none came within ``timeout``."""
        try:
            if not self.conn.poll(max(0.0, timeout)):
                return None
            msg: tuple[Any, ...] = self.conn.recv()
        except (EOFError, OSError):
            self.alive = False
            return None
        if msg[0] == "exited":
            self.exits[msg[1]] = msg[2]
        return msg

    def collect(self, timeout: float) -> None:
        """Take in the messages that come within ``timeout`` (at least those waiting now)."""
        if self._receive(timeout) is not None:
            while self._receive(0) is not None:
                pass

    def reap(self, pid: int) -> None:
        self.exits.pop(pid, None)
        with contextlib.suppress(OSError):
            self.conn.send(("reap", pid))

    def close(self) -> None:
        """Close the control socket (the template then exits, killing any worker
        left) and reap the template."""
        self.conn.close()
        self.sock.close()
        if self.process is not None:
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            return
        end = time.monotonic() + 5
        while time.monotonic() < end:
            try:
                if os.waitpid(self.pid, os.WNOHANG)[0]:
                    return
            except ChildProcessError:
                return  # reaped by someone else (SIGCHLD ignored in the driver)
            time.sleep(0.005)
        with contextlib.suppress(OSError):
            os.kill(self.pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.pid, 0)


class TemplateLauncher:
    """Workers forked from a template process, which is forked from the driver
    where that is safe (``prefer_fork``), else started fresh. A template that died
    is restarted on the next launch."""

    def __init__(self, prefer_fork: bool = True) -> None:
        self.prefer_fork = prefer_fork
        self.note: str | None = None
        self.method = "forkserver"
        self._template: _Template | None = None
        self._retired: list[_Template] = []

    def _start(self) -> _Template:
        blockers = fork_blockers() if self.prefer_fork else []
        fork = self.prefer_fork and not blockers
        if blockers:
            self.note = (
                f"worker processes start from a fresh interpreter (slower), not forked from this one: "
                f"{'; '.join(blockers)}"
            )
            logger.info("archsmith: %s", self.note)
        self.method = "fork" if fork else "forkserver"
        return _Template(fork)

    def launch(self, requests: list[LaunchRequest]) -> list[WorkerProcess]:
        if self._template is not None and not self._template.alive:
            self._retired.append(self._template)  # its workers still need their exits read
            self._template = None
        fresh = self._template is None
        if self._template is None:
            self._template = self._start()
        try:
            pids = self._template.spawn(requests)
        except LaunchError:
            if fresh:
                raise
            self._retired.append(self._template)  # it died since: once more with a new one
            self._template = self._start()
            pids = self._template.spawn(requests)
        template = self._template
        return [ForkedWorker(template, pid) for pid in pids]

    def close(self) -> None:
        for template in [*self._retired, *([self._template] if self._template else [])]:
            template.close()
        self._template, self._retired = None, []

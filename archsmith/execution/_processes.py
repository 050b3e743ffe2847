"""Operating-system plumbing for worker processes: dying with the driver, finding
and ending the processes a trial started.

Linux gives the strong guarantees (``prctl`` parent-death signal and child
subreaper, ``/proc`` children lists, pidfds); elsewhere each piece falls back to
something portable (polling ``getppid``) or is skipped.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable

_PR_SET_PDEATHSIG = 1
_PR_SET_NAME = 15
_PR_SET_CHILD_SUBREAPER = 36


def _prctl(option: int, value: int) -> bool:
    """``prctl(option, value)``; False where it is unavailable or refused."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(option, value, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def set_process_name(name: str) -> None:
    """Name this process (``/proc/PID/comm``, what ``top`` and ``ps -o comm`` show;
    15 bytes at most): a forked worker otherwise shows its driver's name."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_NAME, ctypes.c_char_p(name.encode()[:15]), 0, 0, 0)


def pidfd(pid: int) -> int | None:
    """A file descriptor that turns readable when process ``pid`` exits (Linux
    5.3+), or None where pidfds are unavailable."""
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


def wait_for_exit(pid: int, parent_check: int | None = None, poll: float = 0.1) -> None:
    """Block until process ``pid`` has exited: on its pidfd, or by polling (where
    ``pid`` is our parent, ``getppid()`` changes when it dies, even if the pid is
    reused)."""
    fd = pidfd(pid)
    if fd is not None:
        if parent_check is None or os.getppid() == parent_check:  # the pidfd is of the right process
            select.select([fd], [], [])
        os.close(fd)
        return
    while True:
        if parent_check is not None:
            if os.getppid() != parent_check:
                return
        else:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
        time.sleep(poll)


def die_with_parent(parent: int) -> None:
    """End this process (and its process group) when ``parent`` dies.

    Linux: the kernel sends SIGKILL (``PR_SET_PDEATHSIG``); the ``getppid`` check
    closes the race where the parent died before the request took effect.
    Elsewhere a daemon thread polls ``getppid``. (``PR_SET_PDEATHSIG`` follows the
    parent *thread* that started us: start workers from a thread that outlives them.)"""
    armed = _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(1)
    if armed:
        return

    def watch() -> None:
        wait_for_exit(parent, parent_check=parent, poll=0.5)
        kill_group_of_self()

    threading.Thread(target=watch, name="archsmith-driver-watch", daemon=True).start()


def kill_group_of_self() -> None:
    """SIGKILL our whole process group (ourselves last), if we lead it."""
    if os.getpgrp() == os.getpid():
        os.killpg(0, signal.SIGKILL)
    os._exit(1)


def become_subreaper() -> bool:
    """Orphans of our descendants reparent to us (Linux 3.4+), so every process a
    trial starts stays findable as a descendant."""
    return _prctl(_PR_SET_CHILD_SUBREAPER, 1)


#: The guard: a fresh, bare interpreter (``-I -S``: quick to start, nothing of
#: ours loaded) that waits for the worker ``argv[1]`` to exit, then SIGKILLs the
#: process group ``argv[2]``.
_GUARD = """
import os, select, signal, sys, time
worker, group = int(sys.argv[1]), int(sys.argv[2])
signal.signal(signal.SIGINT, signal.SIG_IGN)
try:
    with open("/proc/self/comm", "w") as f:
        f.write("archsmith-guard")
except OSError:
    pass
try:
    fd = os.pidfd_open(worker)
except (AttributeError, OSError):
    fd = None
if fd is not None and os.getppid() == worker:  # the pidfd is of the right process
    select.select([fd], [], [])
else:
    while os.getppid() == worker:
        time.sleep(0.1)
try:
    os.killpg(group, signal.SIGKILL)
except OSError:
    pass
"""
_guards: list[subprocess.Popen[bytes]] = []


def start_group_guard() -> None:
    """Start a tiny guard that kills our process group as soon as we die.

    A worker killed by SIGKILL (its driver died, the OOM killer, a segfault) cannot
    clean up; the processes its trial started live on in its process group. The
    guard sits in a group of its own, waits for the worker to exit and kills that
    group. It is a fresh interpreter (started with ``vfork``), not a fork: forking
    a process with torch loaded costs tens of milliseconds."""
    group = os.getpgrp()
    me = os.getpid()
    if group != me:
        return  # not our own group: killing it could hit the driver
    _guards.append(
        subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", _GUARD, str(me), str(group)],
            stdin=subprocess.DEVNULL,  # hold nothing open: the worker's socket, a caller's output pipe
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    )


# Finding processes ---------------------------------------------------------------------


def _children_lists_work() -> bool:
    pid = os.getpid()
    return os.path.exists(f"/proc/{pid}/task/{pid}/children")


CHILDREN_LISTS = sys.platform.startswith("linux") and _children_lists_work()


def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children", "rb") as f:
                found += [int(p) for p in f.read().split()]
        except OSError:
            pass
    return found


def _scan() -> dict[int, tuple[int, int]]:
    """pid -> (parent pid, process group) of every process (slow: one read per process)."""
    table: dict[int, tuple[int, int]] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return table
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        table[int(entry)] = (int(fields[1]), int(fields[2]))
    return table


def descendants(root: int, *, group: int | None = None) -> set[int]:
    """Pids of the live descendants of ``root`` and, with ``group``, the members of
    that process group (``root`` excluded). Cheap with per-task children lists
    (one small read per thread); otherwise a scan of ``/proc``. Empty off Linux."""
    if CHILDREN_LISTS and group is None:
        found: set[int] = set()
        todo = [root]
        while todo:
            for child in _children(todo.pop()):
                if child not in found:
                    found.add(child)
                    todo.append(child)
        return found
    table = _scan()
    kids: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        kids.setdefault(ppid, []).append(pid)
    found = set()
    todo = [root]
    while todo:
        for child in kids.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    if group is not None:
        found |= {pid for pid, (_, pgid) in table.items() if pgid == group}
    found.discard(root)
    return found


def _running(pid: int) -> bool:
    """Alive and not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return False


def kill_processes(pids: Iterable[int], *, timeout: float = 1.0) -> None:
    """SIGKILL ``pids`` and reap those that are (or become, as orphans reparented
    to this subreaper) our children; wait up to ``timeout`` for them to be gone."""
    pids = set(pids)
    for pid in pids:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    end = time.monotonic() + timeout
    while True:
        reap_children()
        pids = {p for p in pids if _running(p)}
        if not pids or time.monotonic() > end:
            return
        time.sleep(0.002)


def reap_children() -> None:
    """Collect every exited child (orphans reparented to us included)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


class TrialProcesses:
    """Ends, after each trial, the processes that appeared during it: whatever the
    trial started (a ``subprocess``, ``DataLoader`` workers, a forked child...),
    even orphaned ones, since this process is a child subreaper."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.subreaper = become_subreaper()
        # Without a subreaper an orphan leaves our tree; it is then found as a member of our group.
        self.group = None if self.subreaper and CHILDREN_LISTS else os.getpgrp()
        if self.group is not None and self.group != self.pid:
            self.group = None  # not our own group: it holds other processes than the trial's
        self.usable = sys.platform.startswith("linux") and os.path.isdir("/proc")
        self.before: set[int] = set()

    def mark(self) -> None:
        """Call as a trial starts: what exists now is not the trial's."""
        self.before = descendants(self.pid, group=self.group) if self.usable else set()

    def end(self) -> None:
        """Call as the trial ends: kill what it left running."""
        if not self.usable:
            return
        for _ in range(5):  # a process may fork while the previous round is being killed
            left = descendants(self.pid, group=self.group) - self.before
            if not left:
                return
            kill_processes(left)

"""Whether this process can be forked into a worker template, and making the
fork look like a fresh process.

A forked process keeps only the thread that forked, with whatever the others
held (locks, a half-written buffer), and a CUDA driver initialised before the
fork is unusable in the child. So the driver is forked only when no other Python
thread runs and CUDA is untouched; OpenMP's thread pool is retired first (GNU
libgomp deadlocks a forked child that uses its parent's pool), and the child
drops what belongs to the driver: its signal handlers, close-on-exec file
descriptors (the experiment's lock and store among them), its replaced
``sys.stdout``.
"""

from __future__ import annotations

import contextlib
import ctypes
import faulthandler
import gc
import os
import signal
import sys
import threading

_OMP_PAUSE_HARD = 2
#: Threads of archsmith's own that hold no lock between uses, so a fork beside
#: them is safe: the in-process engine's watchdog (it outlives its engine).
FORK_SAFE_THREADS = frozenset({"archsmith-trial-watchdog"})
_OPENMP_RUNTIMES = ("libgomp", "libiomp", "libomp")


def _mapped_libraries() -> list[str]:
    try:
        with open("/proc/self/maps") as f:
            return [line.split()[-1] for line in f if "/" in line and ".so" in line]
    except OSError:
        return []


def cuda_initialised() -> bool:
    """Whether this process has touched the CUDA driver (``torch.cuda`` initialised,
    or ``libcuda`` loaded, e.g. by ``torch.cuda.is_available()``)."""
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_initialized():
        return True
    return any("/libcuda.so" in path for path in _mapped_libraries())


def pause_openmp() -> bool:
    """Retire the thread pools of the OpenMP runtimes loaded in this process
    (``omp_pause_resource_all``; they restart on the next parallel region).
    False if a runtime refused."""
    seen: set[str] = set()
    ok = True
    for path in _mapped_libraries():
        name = os.path.basename(path)
        if path in seen or not name.startswith(_OPENMP_RUNTIMES):
            continue
        seen.add(path)
        try:
            pause = ctypes.CDLL(path).omp_pause_resource_all
        except (OSError, AttributeError):
            continue  # a runtime too old to pause has no pool we could have forked from safely
        pause.restype = ctypes.c_int
        ok = pause(_OMP_PAUSE_HARD) == 0 and ok
    return ok


def fork_blockers() -> list[str]:
    """Why this process must not be forked into a worker template (empty: it may).
    Call it, then ``pause_openmp()``, right before forking."""
    if not sys.platform.startswith("linux") or not hasattr(os, "fork"):
        return [f"forking is only used on Linux (this is {sys.platform})"]
    reasons = []
    others = [
        t.name for t in threading.enumerate() if t is not threading.current_thread() and t.name not in FORK_SAFE_THREADS
    ]
    if others:
        reasons.append(f"other threads run in this process ({', '.join(sorted(others))})")
    if cuda_initialised():
        reasons.append("CUDA is initialised in this process, and a forked process cannot use it")
    return reasons


def drop_inherited_state(keep: set[int]) -> None:
    """In a process just forked from the driver: behave like a fresh interpreter.

    No Python signal handler (Ctrl-C ignored: it is the driver's), no faulthandler,
    stdin from ``/dev/null``, ``sys.std*`` on fds 0-2 again, and the driver's
    close-on-exec descriptors (a fresh process would not have them), except
    ``keep``, pointed at ``/dev/null``. Inherited objects are frozen out of the garbage collector first, so
    no finalizer of the driver's (a file, a database connection) ever runs here."""
    gc.freeze()
    with contextlib.suppress(ValueError):
        signal.set_wakeup_fd(-1)
    for sig in signal.valid_signals():
        if sig in (signal.SIGKILL, signal.SIGSTOP):
            continue
        with contextlib.suppress(OSError, ValueError, RuntimeError):
            faulthandler.unregister(sig)
            if callable(signal.getsignal(sig)):  # as exec does: handlers reset, ignored signals stay ignored
                signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Not faulthandler.cancel_dump_traceback_later(): it waits for the driver's watchdog
    # thread to end, and that thread does not exist here (a deadlock); unarmed, it never fires.
    faulthandler.disable()
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd > 2 and fd not in keep and fd != null:
            with contextlib.suppress(OSError):
                if not os.get_inheritable(fd):
                    # Released (a lock, a socket, a pipe's end), but the number stays taken by
                    # /dev/null: an inherited object still using it (a logging.FileHandler of the
                    # driver's) writes nowhere, never into a socket that reused the number.
                    os.dup2(null, fd, inheritable=False)
    os.close(null)
    # They live as long as the process; ``sys.__std*__`` too (faulthandler and friends fall back on them).
    sys.stdin = open(0, closefd=False)
    sys.stdout = open(1, "w", closefd=False)
    sys.stderr = open(2, "w", buffering=1, errors="backslashreplace", closefd=False)
    for name in ("stdin", "stdout", "stderr"):
        setattr(sys, f"__{name}__", getattr(sys, name))

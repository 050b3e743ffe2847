"""Ray actors kept between runs of one driver, so that the next run starts at once.

A new Ray actor needs a new worker process (Python, ray and torch imported:
seconds), and Ray never hands an actor a worker that ran anything before. When
the Ray session outlives a run (the user's own ``ray.init``), the engine leaves
its idle actors here instead of killing them; a run that starts within
``keep`` seconds, in the same Ray job, with the same resources per trial, takes
them back and only loads its payload into them. Kept actors hold their
resources (``resources_per_trial`` each) while they wait, so they are killed
after ``keep`` seconds, at :func:`release_ray_actors`, or when the Ray session
ends (``ray.shutdown()``, the driver's exit), whichever comes first.
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass
from typing import Any

__all__ = ["KEEP_ACTORS_SECONDS", "keep", "release_ray_actors", "take", "take_inbox"]

#: How long idle trial actors wait for the next run of the same driver (seconds).
KEEP_ACTORS_SECONDS = 60.0


@dataclass
class _Kept:
    actor: Any
    key: tuple[Any, ...]  # (Ray job, what the actor holds); an inbox's: (Ray job, "inbox")
    expires: float


_lock = threading.Lock()
_kept: list[_Kept] = []
_reaper: threading.Timer | None = None


def keep(actor: Any, key: tuple[Any, ...], seconds: float) -> None:
    """Hold ``actor`` for ``seconds`` for a run that asks for ``key``."""
    with _lock:
        _kept.append(_Kept(actor, key, time.monotonic() + seconds))
        _schedule()


def take(key: tuple[Any, ...], count: int) -> list[Any]:
    """Up to ``count`` kept actors for ``key``, no longer kept."""
    with _lock:
        found = [k for k in _kept if k.key == key][:count]
        for k in found:
            _kept.remove(k)
    return [k.actor for k in found]


def take_inbox(job: str) -> Any:
    """The inbox a run of the Ray job ``job`` left, or None."""
    found = take((job, "inbox"), 1)
    return found[0] if found else None


def release_ray_actors() -> int:
    """Kill the Ray actors kept for a next run now (they free their resources);
    how many there were. Safe to call at any time, with or without Ray.

    >>> from archsmith.execution import release_ray_actors
    >>> release_ray_actors()
    0
    """
    with _lock:
        gone = list(_kept)
        _kept.clear()
    _kill(gone)
    return len(gone)


def _reap() -> None:
    """Kill what has waited its time; come back for the rest."""
    now = time.monotonic()
    with _lock:
        gone = [k for k in _kept if k.expires <= now]
        for k in gone:
            _kept.remove(k)
        _schedule()
    _kill(gone)


def _schedule() -> None:
    """One timer, for the soonest expiry (called with the lock held)."""
    global _reaper
    if _reaper is not None:
        _reaper.cancel()
        _reaper = None
    if _kept:
        _reaper = threading.Timer(max(0.0, min(k.expires for k in _kept) - time.monotonic()), _reap)
        _reaper.daemon = True
        _reaper.start()


def _kill(kept: list[_Kept]) -> None:
    if not kept:
        return
    try:
        import ray
    except ImportError:
        return
    if not ray.is_initialized():
        return  # the session ended: its actors are gone with it
    for k in kept:
        with contextlib.suppress(Exception):
            ray.kill(k.actor, no_restart=True)

"""``RayEngine``: trials in persistent Ray actors, on any Ray cluster.

One actor per slot loads the payload (put in the object store once) and runs
trials with the same ``Runner`` as the process workers. While a trial runs, the
actor sends its start, intermediate results and output-log chunks to an *inbox*
actor on the driver's node; the driver waits on the inbox and on the trials'
results together, so an early-stopping rule sees intermediates in time and
``request_stop`` reaches the actor (a threaded actor: a second call runs beside
the trial). The driver alone writes the store and the trials' logs.

Faults:

- a trial that raises, returns NaN, crashes its actor's process (``os._exit``,
  a segfault) or runs past ``trial_timeout`` (its actor is killed) is a failed
  trial; its actor is replaced and the run goes on;
- an actor lost with its node re-runs its trial on another actor, up to
  ``max_retries`` times, then the trial fails with "node lost";
- an actor that died before its trial began (e.g. its node went while idle) is
  not the trial's fault: the trial is resubmitted (``MAX_RESUBMITS`` times).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import math
import os
import shutil
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cloudpickle

from archsmith._os import pid_alive

from ._base import Engine
from ._output import failed_event, log_path, open_log, tail
from ._process import EngineError
from ._ray_pool import KEEP_ACTORS_SECONDS, keep, take, take_inbox
from ._registry import register_engine
from ._trial import Trial, TrialEvent, TrialPayload

#: Trials whose actor died before they began are resubmitted this many times.
MAX_RESUBMITS = 3
#: How often a running trial's new output is shipped to the driver (seconds).
LOG_INTERVAL = 0.5
#: How long ``start`` waits for the first actors to load the payload (seconds).
READY_TIMEOUT = 120.0
#: How long a timed-out trial's actor gets to report where its threads are.
STACK_WAIT = 1.0
#: The resource names ``resources_per_trial`` takes (Ray's spelling: ``CPU``, ``GPU``).
RESOURCE_KEYS = {"cpu": "CPU", "gpu": "GPU"}
#: Tokens name a trial's attempt in the inbox's messages; unique in the process,
#: since an inbox kept for a next run may still hold an earlier run's late messages.
_TOKENS = itertools.count(1)
#: Orders the payload loads this driver asks of its (kept) actors.
_LOADS = itertools.count(1)

_INSTALL = "engine='ray' needs Ray: pip install 'archsmith[ray]'"


def import_ray() -> Any:
    """``ray``, or an error saying how to install it."""
    try:
        import ray
    except ImportError as e:
        raise EngineError(f"{_INSTALL} ({e})") from e
    return ray


# Actor side ------------------------------------------------------------------------
#: What a Ray worker imports before it takes work: the trial's own imports.
#: Clusters started with ``ray start`` get the same with
#: ``RAY_preload_python_modules=torch,archsmith.execution._run`` (docs/scale.md).
PRELOAD_MODULES = ("torch", "archsmith.execution._run")


def _actor_log_root() -> Path:
    """This actor's scratch for its trials' logs (each shipped to the driver, then
    removed): ``<tmp>/archsmith-ray-logs-<uid>/<pid>``. A killed actor cannot clean
    up, so the directories of actors no longer alive are removed first."""
    parent = Path(tempfile.gettempdir()) / f"archsmith-ray-logs-{os.getuid()}"
    parent.mkdir(mode=0o700, exist_ok=True)
    for entry in parent.iterdir():
        if entry.name.isdigit() and not pid_alive(int(entry.name)):
            shutil.rmtree(entry, ignore_errors=True)
    root = parent / str(os.getpid())
    shutil.rmtree(root, ignore_errors=True)  # a dead process's, whose pid this one reuses
    root.mkdir(exist_ok=True)
    return root


class _Inbox:
    """Collects what running trials send (on the driver's node); the driver
    blocks on ``take`` (Ray runs it as an async actor)."""

    def __init__(self) -> None:
        self.items: list[tuple[Any, ...]] = []
        self.arrived = asyncio.Event()

    async def put(self, items: list[tuple[Any, ...]]) -> None:
        self.items.extend(items)
        self.arrived.set()

    async def take(self) -> list[tuple[Any, ...]]:
        await self.arrived.wait()
        return await self.drain()

    async def drain(self) -> list[tuple[Any, ...]]:
        items, self.items = self.items, []
        self.arrived.clear()
        return items


class _TrialActor:
    """Runs trials one at a time; ``stop`` and ``stacks`` run beside a trial."""

    def __init__(self) -> None:
        self.runner: Any = None
        self.inbox: Any = None
        self.name = ""
        self.log_root: Path | None = None
        self.stop_ids: set[int] = set()
        self.running_thread: int | None = None
        self.loading = threading.Lock()
        self.generation = 0

    def load(
        self, generation: int, payload: bytes, inbox: Any, name: str, threads: int, keep_logs: bool
    ) -> dict[str, Any]:
        """Take a run's payload (the space and evaluator: an actor kept from an
        earlier run drops that run's); where this actor runs. ``generation``
        orders loads: a kept actor's load for the run before may still be queued,
        and must not replace this run's."""
        import ray
        import torch

        from ._run import Runner

        with self.loading:
            if generation < self.generation:
                return self._where(ray)
            self.generation = generation
            torch.set_num_threads(max(1, threads))
            self.runner = None  # the earlier run's data set goes before this one's loads
            self.runner = Runner(cloudpickle.loads(payload))
            self.inbox, self.name = inbox, name
            if keep_logs and self.log_root is None:
                self.log_root = _actor_log_root()
            elif not keep_logs:
                self.log_root = None
            self.stop_ids.clear()
        return self._where(ray)

    @staticmethod
    def _where(ray: Any) -> dict[str, Any]:
        context = ray.get_runtime_context()
        return {"node": context.get_node_id(), "pid": os.getpid(), "gpus": [str(g) for g in ray.get_gpu_ids()]}

    def stop(self, trial_id: int) -> None:
        self.stop_ids.add(trial_id)

    def stacks(self) -> str:
        """Where the trial's thread is (for a timed-out trial's error)."""
        frame = sys._current_frames().get(self.running_thread or -1)
        return "".join(traceback.format_stack(frame)) if frame is not None else ""

    def run(self, token: int, trial_id: int, sample: dict[str, Any], seed: int | None) -> tuple[TrialEvent, bytes, int]:
        """Run the trial; its event, the output not yet shipped, and how many
        messages it sent the inbox (the driver waits for them all before the
        event, so an early-stopping rule sees every intermediate)."""
        import ray

        from ._worker import _redirected

        self.running_thread = threading.get_ident()
        sent = itertools.count(1)
        count = 0
        lock = threading.Lock()

        def send(item: tuple[Any, ...]) -> Any:
            nonlocal count
            with lock:  # the log shipper's thread sends too
                count = next(sent)
                return self.inbox.put.remote([item])

        # Awaited: a trial that kills its process at once must still count as started (a crash, not a lost start).
        ray.get(send(("started", token, trial_id, time.time())))

        def on_intermediate(step: int, metric: Any) -> None:
            # Awaited (a round trip of about a millisecond per report): a result the trial reported
            # is the driver's before the trial goes on, so a crash right after it loses nothing.
            ray.get(send(("intermediate", token, trial_id, step, metric, time.time())))

        shipper = _LogShipper(None if self.log_root is None else log_path(self.log_root, trial_id), token, send)
        with _redirected(self.log_root, trial_id):
            shipper.start()
            try:
                event = self.runner.run(
                    Trial(trial_id, sample, seed), self.name, on_intermediate, lambda: trial_id in self.stop_ids
                )
            finally:
                rest = shipper.finish()
        self.stop_ids.discard(trial_id)
        self.running_thread = None
        event.at = time.time()
        return event, rest, count


class _LogShipper:
    """Sends a running trial's new output to the driver every ``LOG_INTERVAL``."""

    def __init__(self, path: Path | None, token: int, send: Any) -> None:
        self.path, self.token, self.send = path, token, send
        self.offset = 0
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def start(self) -> None:
        if self.path is not None:
            self.thread.start()

    def _read(self) -> bytes:
        assert self.path is not None
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except OSError:
            return b""
        self.offset += len(data)
        return data

    def _loop(self) -> None:
        while not self.done.wait(LOG_INTERVAL):
            data = self._read()
            if data:
                self.send(("log", self.token, data))

    def finish(self) -> bytes:
        """Stop shipping; the output not yet sent."""
        if self.path is None:
            return b""
        self.done.set()
        self.thread.join()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
        rest = self._read()
        with contextlib.suppress(OSError):
            shutil.rmtree(self.path.parent)
        return rest


# Driver side -----------------------------------------------------------------------
@dataclass
class _Slot:
    name: str
    actor: Any
    ready_ref: Any
    node: str | None = None
    pid: int | None = None  # the actor's process, once it has loaded the payload
    trial: Trial | None = None
    token: int = 0
    ref: Any = None
    submitted: float = 0.0
    started: float | None = None
    received: int = 0  # messages of the running trial handled so far
    result: tuple[TrialEvent, bytes, int] | None = None  # returned, its last messages still on their way

    @property
    def busy(self) -> bool:
        return self.trial is not None


@dataclass
class _Log:
    """A trial's output log on the driver, created with its first chunk."""

    trial_id: int
    fd: int | None = None
    chunks: list[bytes] = field(default_factory=list)


@register_engine("ray")
class RayEngine(Engine):
    """Trials in persistent actors on a Ray cluster.

    ``address``: ``None`` starts a private Ray on this machine (loopback only,
    no dashboard; stopped at ``shutdown``), ``"auto"`` joins the cluster this
    machine belongs to, ``"ray://host:10001"`` connects through Ray Client,
    ``"host:port"`` joins a cluster's head. ``resources_per_trial`` (``cpu``,
    ``gpu``; fractions allowed) is what each actor asks Ray for: with
    ``{"gpu": 1}`` each trial has its own GPU (``CUDA_VISIBLE_DEVICES``).
    ``concurrency``: actors to start; ``None`` starts as many as the cluster
    holds at ``resources_per_trial``. ``max_retries``: re-runs of a trial whose
    node was lost. ``keep_actors``: on a Ray session that outlives the run (your
    own ``ray.init``), idle actors wait this many seconds for the next run of
    this driver, which then starts at once (see ``archsmith.execution._ray_pool``;
    0: killed at the run's end).

    >>> engine = RayEngine(address="auto", resources_per_trial={"cpu": 2, "gpu": 0.5})  # doctest: +SKIP
    """

    def __init__(
        self,
        concurrency: int | None = None,
        trial_timeout: float | None = None,
        gpus_per_trial: int = 0,
        *,
        address: str | None = None,
        resources_per_trial: dict[str, float] | None = None,
        max_retries: int = 1,
        log_dir: Path | None = None,
        keep_actors: float = KEEP_ACTORS_SECONDS,
    ) -> None:
        super().__init__(trial_timeout)
        self.concurrency = concurrency
        self.address = address
        resources = {"cpu": 1.0, "gpu": float(gpus_per_trial)}
        resources.update(resources_per_trial or {})
        self.resources = resources
        self.max_retries = max_retries
        if isinstance(keep_actors, bool) or not isinstance(keep_actors, (int, float)) or not keep_actors >= 0:
            raise EngineError(
                f"keep_actors must be seconds >= 0 (how long idle actors wait for the next run; 0: none), "
                f"got {keep_actors!r}"
            )
        self.keep_actors = keep_actors
        self.log_dir = None if log_dir is None else Path(log_dir).absolute()
        self._job: str | None = None  # the Ray job: kept actors serve runs of the same one
        self._ray: Any = None
        self._owns_ray = False
        self._connected = False
        self._inbox: Any = None
        self._take: Any = None
        self._payload_ref: Any = None
        self._slots: list[_Slot] = []
        self._spawned = 0
        self._queue: list[Trial] = []  # trials to re-run, ahead of new ones
        self._retries: dict[int, int] = {}
        self._resubmits: dict[int, int] = {}
        self._logs: dict[int, _Log] = {}  # token -> the log being written
        self._stalled_since: float | None = None  # trials queued while no actor is ready

    # Cluster and actors ---------------------------------------------------------
    def start(self, payload: TrialPayload) -> None:
        try:
            data = cloudpickle.dumps(payload)
        except Exception as e:
            raise EngineError(
                f"the model space or evaluator cannot be pickled for Ray actors: {e}. "
                "Keep data sets and models picklable (no open files, locks or live connections)."
            ) from e
        ray = self._ray = import_ray()
        self._connect(ray)
        try:
            count = self.concurrency if self.concurrency is not None else self.cluster_capacity()
            if count < 1:
                raise EngineError(
                    f"no node of the Ray cluster can hold a trial with resources_per_trial={self.resources} "
                    f"(the cluster has {ray.cluster_resources()}); lower resources_per_trial or add nodes"
                )
            with contextlib.suppress(Exception):
                self._job = ray.get_runtime_context().get_job_id()
            self._inbox = (self._job is not None and take_inbox(self._job)) or self._make_inbox(ray)
            self._take = self._inbox.take.remote()
            self._payload_ref = ray.put(data)  # once; every actor reads it from the object store
            if self.log_dir is not None:
                self.log_dir.mkdir(parents=True, exist_ok=True)
            self._slots = [self._spawn() for _ in range(count)]
            self._await_ready()
        except BaseException:
            self.shutdown()
            raise

    def _connect(self, ray: Any) -> None:
        if ray.is_initialized():  # the user's own ray.init(): use it, leave it be
            return
        options: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.WARNING}
        if self.address is None:
            cpus = os.cpu_count() or 1
            if self.concurrency is not None:
                cpus = max(1, math.ceil(self.concurrency * self.resources["cpu"]))
            # "local": a new Ray of our own, never a cluster RAY_ADDRESS or an earlier `ray start` points to
            options.update(address="local", num_cpus=cpus, include_dashboard=False, _node_ip_address="127.0.0.1")
            # Ray's pooled workers import torch while the driver gets ready, so an actor starts in
            # about a second instead of importing torch itself (9 s against 1.3 s measured here).
            options["_system_config"] = {"preload_python_modules": list(PRELOAD_MODULES)}
            self._owns_ray = True
        else:
            options["address"] = self.address
        try:
            ray.init(**options)
        except Exception as e:
            self._owns_ray = False
            where = "start a local Ray" if self.address is None else f"connect to the Ray cluster at {self.address!r}"
            raise EngineError(
                f"could not {where}: {e}. Check that the cluster is up (ray status) and the address is "
                "the head's (host:port of `ray start --head`, or ray://host:10001 for Ray Client)"
            ) from e
        self._connected = True

    def cluster_capacity(self) -> int:
        """How many trials the cluster's live nodes hold at ``resources_per_trial``."""
        total = 0
        for node in self._ray.nodes():
            if not node.get("Alive"):
                continue
            have = node.get("Resources", {})
            fits = [
                math.floor(have.get(RESOURCE_KEYS[key], 0.0) / amount + 1e-9)
                for key, amount in self.resources.items()
                if amount > 0
            ]
            total += min(fits) if fits else 0
        return total

    def _make_inbox(self, ray: Any) -> Any:
        options: dict[str, Any] = {"num_cpus": 0}
        with contextlib.suppress(Exception):  # on the driver's node: it lives as long as the driver
            from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

            node = ray.get_runtime_context().get_node_id()
            options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(node, soft=False)
        return ray.remote(_Inbox).options(**options).remote()

    def _actor_key(self) -> tuple[Any, ...]:
        """What a kept actor must match to serve this run: the Ray job and its resources."""
        return (self._job, self.resources["cpu"], self.resources["gpu"])

    def _spawn(self) -> _Slot:
        ray = self._ray
        self._spawned += 1
        name = f"actor-{self._spawned}"
        cpu, gpu = self.resources["cpu"], self.resources["gpu"]
        kept = take(self._actor_key(), 1) if self._job is not None else []
        if kept:
            actor = kept[0]
        else:
            cls = ray.remote(_TrialActor).options(
                num_cpus=cpu,
                num_gpus=gpu,
                max_concurrency=3,  # the trial, stop requests, stack requests
                max_restarts=0,
                max_task_retries=0,
            )
            actor = cls.remote()
        threads = max(1, math.floor(cpu)) if cpu else 1
        loaded = actor.load.remote(
            next(_LOADS), self._payload_ref, self._inbox, name, threads, self.log_dir is not None
        )
        return _Slot(name, actor, loaded)

    def _await_ready(self) -> None:
        """Wait for the first actor to load the payload: trials start on it while
        the others come up (an actor on a new worker process takes seconds) or wait
        for resources, joining as they are ready. Fail with the load error if the
        payload cannot load."""
        deadline = time.time() + READY_TIMEOUT
        while not any(s.node is not None for s in self._slots):
            pending = {s.ready_ref: s for s in self._slots if s.ready_ref is not None}
            done, _ = self._ray.wait(list(pending), num_returns=1, timeout=max(0.0, deadline - time.time()))
            if not done:
                raise EngineError(
                    f"no Ray actor became ready within {READY_TIMEOUT:.0f} s: the cluster may lack "
                    f"resources_per_trial={self.resources} (ray status shows what it has)"
                )
            for ref in done:
                self._mark_ready(pending[ref], ref)

    def _mark_ready(self, slot: _Slot, ref: Any) -> None:
        ray = self._ray
        try:
            info = ray.get(ref)
        except ray.exceptions.RayActorError:
            self._replace(slot)
            return
        except ray.exceptions.RayTaskError as e:
            raise EngineError(f"a Ray actor could not load the model space and evaluator:\n{e}") from e
        slot.node, slot.pid, slot.ready_ref = info["node"], info["pid"], None

    def _replace(self, slot: _Slot) -> None:
        """Kill ``slot``'s actor; a new one takes its place (it may wait for resources)."""
        with contextlib.suppress(Exception):
            self._ray.kill(slot.actor, no_restart=True)
        new = self._spawn()
        index = self._slots.index(slot)
        self._slots[index] = new

    # Engine interface -----------------------------------------------------------------
    @property
    def capacity(self) -> int:
        # An actor still starting (a replacement) counts: its trial waits in the queue for the first free actor.
        return max(0, sum(1 for s in self._slots if not s.busy) - len(self._queue))

    def submit(self, trial: Trial) -> None:
        self._queue.append(trial)
        self._dispatch_queue()

    def _send(self, slot: _Slot, trial: Trial) -> None:
        slot.trial, slot.token, slot.started, slot.submitted = trial, next(_TOKENS), None, time.time()
        slot.received, slot.result = 0, None
        slot.ref = slot.actor.run.remote(slot.token, trial.id, trial.sample, trial.seed)

    def running(self) -> list[int]:
        return [s.trial.id for s in self._slots if s.trial is not None] + [t.id for t in self._queue]

    def cancel(self, trial_id: int) -> None:
        self._queue = [t for t in self._queue if t.id != trial_id]
        for slot in list(self._slots):
            if slot.trial is not None and slot.trial.id == trial_id:
                self._close_log(slot.token)
                self._replace(slot)

    def request_stop(self, trial_id: int) -> None:
        for slot in self._slots:
            if slot.trial is not None and slot.trial.id == trial_id:
                slot.actor.stop.remote(trial_id)

    def wait(self, timeout: float) -> list[TrialEvent]:
        ray = self._ray
        events: list[TrialEvent] = []
        self._dispatch_queue()
        if self.trial_timeout:
            ends = [(s.started or s.submitted) + self.trial_timeout - time.time() for s in self._slots if s.busy]
            if ends:
                timeout = max(0.0, min(timeout, *ends))
        refs: dict[Any, _Slot | None] = {self._take: None}
        for slot in self._slots:
            if slot.busy and slot.result is None:
                refs[slot.ref] = slot
            elif slot.ready_ref is not None:
                refs[slot.ready_ref] = slot
        ready, _ = ray.wait(list(refs), num_returns=1, timeout=timeout)
        if ready:
            ready, _ = ray.wait(list(refs), num_returns=len(refs), timeout=0)
        ready_set = set(ready)
        if self._take in ready_set:
            self._take_items(events)
        for slot in [s for r in ready if (s := refs[r]) is not None]:
            if slot.busy and slot.ref in ready_set:
                self._returned(slot, events)
            elif slot.ready_ref is not None and slot.ready_ref in ready_set:
                self._mark_ready(slot, slot.ready_ref)
        for slot in self._slots:
            if slot.result is not None and slot.received >= slot.result[2]:
                self._finish(slot, events)
        self._enforce_timeouts(events)
        self._dispatch_queue()
        return events

    def _dispatch_queue(self) -> None:
        while self._queue:
            slot = next((s for s in self._slots if s.node is not None and not s.busy), None)
            if slot is None:
                break
            self._send(slot, self._queue.pop(0))
        if not self._queue or any(s.node is not None for s in self._slots):
            self._stalled_since = None
        elif self._stalled_since is None:
            self._stalled_since = time.time()
        elif time.time() - self._stalled_since > READY_TIMEOUT:
            raise EngineError(
                f"no Ray actor has been able to run a trial for {READY_TIMEOUT:.0f} s (lost nodes, or a cluster "
                f"without resources_per_trial={self.resources}); `ray status` shows what the cluster has"
            )

    def _take_items(self, events: list[TrialEvent], timeout: float = 0.0) -> None:
        """Handle what the inbox's pending ``take`` brought, if it is back within ``timeout``."""
        ready, _ = self._ray.wait([self._take], timeout=timeout)
        if ready:
            self._handle_items(self._ray.get(self._take), events)
            self._take = self._inbox.take.remote()

    def _slot_of(self, token: int) -> _Slot | None:
        return next((s for s in self._slots if s.busy and s.token == token), None)

    def _handle_items(self, items: list[tuple[Any, ...]], events: list[TrialEvent]) -> None:
        for item in items:
            kind, token = item[0], item[1]
            slot = self._slot_of(token)
            if slot is None:
                continue  # from an attempt that was cancelled or timed out
            slot.received += 1
            if kind == "started":
                slot.started = item[3]
                self._resubmits.pop(item[2], None)
                events.append(TrialEvent("started", item[2], slot.name, at=item[3]))
            elif kind == "intermediate":
                _, _, trial_id, step, metric, at = item
                events.append(TrialEvent("intermediate", trial_id, slot.name, step=step, metric=metric, at=at))
            elif kind == "log":
                assert slot.trial is not None
                self._write_log(token, slot.trial.id, item[2])

    def _write_log(self, token: int, trial_id: int, data: bytes) -> None:
        if self.log_dir is None or not data:
            return
        log = self._logs.setdefault(token, _Log(trial_id))
        if log.fd is None:
            log.fd = open_log(self.log_dir, trial_id)  # a re-run trial starts a new log
        with contextlib.suppress(OSError):
            os.write(log.fd, data)

    def _close_log(self, token: int) -> None:
        log = self._logs.pop(token, None)
        if log is not None and log.fd is not None:
            os.close(log.fd)

    def _returned(self, slot: _Slot, events: list[TrialEvent]) -> None:
        """The trial's ``run`` call ended: keep its result until its messages are in."""
        ray = self._ray
        trial = slot.trial
        assert trial is not None
        try:
            slot.result = ray.get(slot.ref)
        except ray.exceptions.RayActorError as e:
            self._take_items(events, timeout=0.5)  # what it sent before dying (did it start?)
            self._handle_items(ray.get(self._inbox.drain.remote()), events)
            self._actor_died(slot, e, events)
        except ray.exceptions.RayError as e:  # e.g. the result could not be unpickled
            slot.result = (self._failed(slot, trial, f"Ray could not return the trial's result: {e}"), b"", 0)

    def _finish(self, slot: _Slot, events: list[TrialEvent]) -> None:
        trial, token, result = slot.trial, slot.token, slot.result
        assert trial is not None and result is not None
        event, rest, _ = result
        self._write_log(token, trial.id, rest)
        self._close_log(token)
        slot.trial, slot.ref, slot.started, slot.result = None, None, None, None
        self._retries.pop(trial.id, None)
        if event.status != "succeeded" and self.log_dir is not None:
            event.output = tail(log_path(self.log_dir, trial.id))
        events.append(event)

    def _actor_died(self, slot: _Slot, error: Exception, events: list[TrialEvent]) -> None:
        trial, started = slot.trial, slot.started
        assert trial is not None
        self._close_log(slot.token)
        node_lost = "node has died" in str(error) or not self._node_alive(slot.node)
        self._replace(slot)
        if started is None:  # it never began: not the trial's fault
            count = self._resubmits[trial.id] = self._resubmits.get(trial.id, 0) + 1
            if count <= MAX_RESUBMITS:
                self._queue.append(trial)
                return
            events.append(
                self._failed(slot, trial, f"{count} Ray actors died before the trial could start (the last: {error})")
            )
            return
        if node_lost:
            count = self._retries[trial.id] = self._retries.get(trial.id, 0) + 1
            if count <= self.max_retries:
                self._queue.append(trial)  # re-run on another actor
                return
            events.append(
                self._failed(
                    slot,
                    trial,
                    f"node lost: the trial's node died {count} times (max_retries={self.max_retries})\n{error}",
                    started,
                )
            )
            return
        events.append(
            self._failed(slot, trial, f"the Ray actor's process died while running the trial:\n{error}", started)
        )

    def _node_alive(self, node: str | None) -> bool:
        if node is None:
            return True
        try:
            nodes = self._ray.nodes()
        except Exception:
            return True
        return any(n.get("NodeID") == node and n.get("Alive") for n in nodes)

    def _failed(self, slot: _Slot, trial: Trial, error: str, started: float | None = None) -> TrialEvent:
        return failed_event(trial.id, slot.name, error, self.log_dir, started)

    def _enforce_timeouts(self, events: list[TrialEvent]) -> None:
        if not self.trial_timeout:
            return
        now = time.time()
        for slot in list(self._slots):
            if not slot.busy or now - (slot.started or slot.submitted) <= self.trial_timeout:
                continue
            trial, started = slot.trial, slot.started
            assert trial is not None
            try:
                stack = self._ray.get(slot.actor.stacks.remote(), timeout=STACK_WAIT)
            except Exception:
                stack = ""
            self._close_log(slot.token)
            self._replace(slot)
            error = f"timed out after {self.trial_timeout} s (trial_timeout); the Ray actor was replaced"
            if stack:
                error += f"\n\nwhere it was:\n{stack}"
            events.append(self._failed(slot, trial, error, started))

    def _settle_inbox(self) -> bool:
        """End this run's pending ``take`` (a next run's must get every message);
        whether the inbox is fit to keep."""
        try:
            self._inbox.put.remote([("end", 0)])  # no trial's token: ignored by whoever reads it
            self._ray.get(self._take, timeout=STACK_WAIT)
        except Exception:
            return False
        return True

    def shutdown(self) -> None:
        ray = self._ray
        if ray is None:
            return
        for token in list(self._logs):
            self._close_log(token)
        if ray.is_initialized():
            # A Ray session that outlives this run: idle actors wait for the next one (_ray_pool).
            keeping = not self._connected and self.keep_actors > 0 and self._job is not None
            for slot in self._slots:
                if keeping and not slot.busy:  # one still starting too: its process is the slow part
                    keep(slot.actor, self._actor_key(), self.keep_actors)
                    continue
                with contextlib.suppress(Exception):
                    ray.kill(slot.actor, no_restart=True)
            if self._inbox is not None:
                if keeping and self._settle_inbox():
                    keep(self._inbox, (self._job, "inbox"), self.keep_actors)
                else:
                    with contextlib.suppress(Exception):
                        ray.kill(self._inbox, no_restart=True)
        self._slots, self._queue, self._inbox, self._take = [], [], None, None
        if self._connected:  # ours to close: a local Ray stops, a joined cluster only loses this driver
            ray.shutdown()
            self._connected = self._owns_ray = False

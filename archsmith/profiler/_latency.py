"""``LatencyProfiler``: a sample's latency as the sum of a lookup table of timed
module calls; and ``frozen_latency``, a plain module's measured latency.

The space is copied once and every module's ``forward`` wrapped; the primitives'
replaced by what their frozen form computes for the current sample (as
``FlopsProfiler`` does). A sample then runs the user's own ``forward`` on real
tensors of the example's shapes. Each module call is an *entry*: the module's
path in the space, what it is (a layer with its chosen arguments), its input
shapes, and for a module that calls others, which ones it called and their
output shapes. An entry new to the table is timed in place: the sample's whole
forward runs ``warmup`` then ``repeats`` times, each call timed less the calls it
makes, so the stem, the head and the glue between primitives are timed too, and
the sum over a sample's entries is its end-to-end latency. Each call's output is
memoised by its input shapes and the decisions inside it, so a sample whose
entries are known costs a walk of lookups."""

from __future__ import annotations

import copy
import platform
import statistics
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from archsmith.nn import Cell, InputChoice, LayerChoice, ModelSpace, NasBench101Cell, Repeat
from archsmith.nn._layers import MutableLayer
from archsmith.nn._mutable_module import MutableModule
from archsmith.space import Sample

from ._base import CallableProfiler, Profiler
from ._check import searching_space
from ._flops import _own_leaves
from ._latency_forwards import FrozenForwards, readable_paths, relative
from ._latency_table import (
    FORMAT,
    check_device,
    check_table,
    describe,
    device_name,
    example_from_spec,
    example_spec,
    read_file,
    rebuild_space,
    space_recipe,
    write_file,
)
from ._terms import ProfilerError, hashable

#: Most memoised calls a LatencyProfiler keeps (meta tensors: a few hundred bytes each).
MAX_MEMO = 200_000

#: Primitives whose searching forward already calls only (replaced) children.
_PASS_THROUGH = ("AutoActivation", "NasBench201Cell")

#: The device a table-only profiler walks on: shapes only, nothing computed.
_META = torch.device("meta")

#: How an entry's repeats become its time: the median, or the quickest run (on a
#: machine shared with other work, which only ever adds time, the steadier one).
_STATISTICS: dict[str, Callable[[list[float]], float]] = {"median": statistics.median, "min": min}

#: How a forward runs: walking (memoised, collecting entries), keying (every call
#: computed, ``_order`` records each call's entry), timing (each call timed in place).
_WALK, _KEYS, _TIME = 0, 1, 2


def frozen_latency(
    model: torch.nn.Module,
    example_input: Any,
    device: str | torch.device = "cpu",
    *,
    warmup: int = 10,
    repeats: int = 20,
    threads: int = 1,
    statistic: str = "median",
) -> float:
    """Milliseconds of a plain module on ``example_input`` end to end (eval mode, no
    grad, on ``threads`` threads): ``warmup`` calls, then the median (or with
    ``statistic="min"`` the quickest) of ``repeats``: what a ``LatencyProfiler``'s
    sum stands for, to check it against (the model is moved to ``device``)."""
    where = check_device(device, "frozen_latency")
    args = tuple(_to(a, where) for a in _check_example(example_input, "frozen_latency"))
    _positive_int(repeats, "repeats", 1, "frozen_latency")
    if statistic not in _STATISTICS:
        raise ProfilerError(f"frozen_latency: statistic must be one of {sorted(_STATISTICS)}, got {statistic!r}")
    model = model.to(where).eval()
    old_threads = torch.get_num_threads()
    torch.set_num_threads(_positive_int(threads, "threads", 1, "frozen_latency"))
    times = []
    try:
        with torch.no_grad():
            for _ in range(_positive_int(warmup, "warmup", 0, "frozen_latency")):
                model(*args)
            for _ in range(repeats):
                if where.type == "cuda":
                    torch.cuda.synchronize(where)
                start = time.perf_counter()
                model(*args)
                if where.type == "cuda":
                    torch.cuda.synchronize(where)
                times.append(time.perf_counter() - start)
    finally:
        torch.set_num_threads(old_threads)
    return _STATISTICS[statistic](times) * 1000.0


def _positive_int(value: Any, what: str, low: int, who: str = "LatencyProfiler") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ProfilerError(f"{who}: {what} must be an int >= {low}, got {value!r}")
    return value


def _check_example(example_input: Any, who: str) -> tuple[Any, ...]:
    if isinstance(example_input, torch.Tensor):
        return (example_input,)
    if isinstance(example_input, tuple) and example_input:
        return example_input
    raise ProfilerError(
        f"{who}: example_input must be a tensor (or a non-empty tuple of the forward's arguments), "
        f"got {type(example_input).__name__}"
    )


def _to(value: Any, device: torch.device) -> Any:
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, list | tuple):
        return type(value)(_to(v, device) for v in value)
    return value


def _move_real_tensors(model: torch.nn.Module, device: torch.device) -> None:
    """Move the model to ``device``, except the ``meta`` weights a searching
    ``MutableLayer`` holds (never run: its forward is replaced)."""
    for module in model.modules():
        if isinstance(module, MutableLayer):
            continue
        for name, param in module._parameters.items():
            if param is not None and param.device.type != "meta":
                module._parameters[name] = torch.nn.Parameter(param.data.to(device), param.requires_grad)
        for name, buffer in module._buffers.items():
            if buffer is not None and buffer.device.type != "meta":
                module._buffers[name] = buffer.to(device)


class LatencyProfiler(FrozenForwards, Profiler):
    """``profile(sample)``: the milliseconds ``space.freeze(sample)`` takes on
    ``example_input`` (inference: eval mode, no grad), as the sum of a lookup table
    of timed entries, each measured once on ``device`` (``warmup`` runs of the
    sample's forward, then the median of ``repeats``, or their minimum with
    ``statistic="min"``, steadier on a machine busy with other work) with torch on
    ``threads`` threads.

    An entry is one module call, keyed by a readable string: the module's path in
    the space (``<space>`` for the space's own forward), what it is (a layer with
    its chosen arguments, e.g. ``Conv2d(in_channels=8, ..., kernel_size=3)``), its
    inputs (``in=float32[1,8,16,16]``) and, for a module that calls others, the
    modules it called with their outputs' shapes (``calls=[stem->float32[...]]``).
    Its time is the module's own work (its glue), the modules it calls not included.
    ``keys(sample)`` lists what a sample needs; ``save``/``load`` keep the table as
    JSON; ``from_table`` takes a table measured elsewhere (a phone), ``from_callable``
    any function. Inputs' values are not part of a key: a forward whose work
    depends on its data (not only shapes) is timed on the example's data.

    >>> import torch, archsmith.nn as nn
    >>> class Net(nn.ModelSpace):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.fc = nn.Linear(4, nn.choice("hidden", [8, 4096]))
    ...     def forward(self, x):
    ...         return self.fc(x).relu()
    >>> latency = LatencyProfiler(Net(), torch.zeros(256, 4), repeats=3)
    >>> latency.profile({"hidden": 8}) < latency.profile({"hidden": 4096})
    True
    >>> latency.keys({"hidden": 8})
    ['<space> Net in=float32[256,4] calls=[fc->float32[256,8]]', 'fc Linear(in_features=4, out_features=8) in=float32[256,4]']
    """

    name = "latency"
    unit = "ms"

    def __init__(
        self,
        space: ModelSpace,
        example_input: Any,
        device: str | torch.device = "cpu",
        *,
        warmup: int = 10,
        repeats: int = 10,
        threads: int = 1,
        statistic: str = "median",
        seed: int = 0,
    ) -> None:
        space = searching_space(space, "LatencyProfiler")
        _check_example(example_input, "LatencyProfiler")
        device = check_device(device, "LatencyProfiler")
        self._setup(space, example_input, device, {}, warmup, repeats, threads, statistic, seed)
        self._first_walk()

    # Other ways in ---------------------------------------------------------------
    @classmethod
    def from_table(
        cls, space: ModelSpace, example_input: Any, table: Mapping[str, float], *, source: str = "external"
    ) -> LatencyProfiler:
        """A profiler that only reads ``table`` (``{key: ms}``, keys as
        :meth:`keys` gives them), measured elsewhere (``source`` names where, for
        the saved record). A sample needing a key the table lacks raises
        :class:`ProfilerError` naming it. Walks on the ``meta`` device: no compute."""
        space = searching_space(space, "LatencyProfiler.from_table")
        _check_example(example_input, "LatencyProfiler.from_table")
        profiler = cls.__new__(cls)
        profiler._setup(
            space, example_input, None, check_table(table, "LatencyProfiler.from_table"), 1, 1, 1, "median", 0
        )
        profiler._record["device"] = profiler._record["device_name"] = source
        profiler._first_walk()
        return profiler

    @staticmethod
    def from_callable(fn: Callable[[Mapping[str, Any]], float], name: str = "latency") -> CallableProfiler:
        """Any function ``sample -> milliseconds`` (a model of a device, a remote
        measurement) as a latency profiler."""
        return CallableProfiler(fn, name=name, unit="ms")

    @classmethod
    def load(
        cls,
        path: str | Path,
        space: ModelSpace | None = None,
        example_input: Any = None,
        *,
        measure_missing: bool | None = None,
    ) -> LatencyProfiler:
        """A profiler over the table saved at ``path``. The space is rebuilt from
        the recorded class and init arguments unless given; the example input from
        the recorded shapes unless given (checked against them). Entries the table
        lacks are measured when ``measure_missing`` (the default when the table
        was measured on this machine's device), else a sample needing one raises."""
        record = read_file(path)
        table = check_table(record.get("table"), str(path))
        recipe = record.get("space", {})
        if space is None:
            space = rebuild_space(recipe, str(path))
        else:
            space = searching_space(space, "LatencyProfiler.load")
            cls_path = f"{type(space).__module__}:{type(space).__qualname__}"
            if cls_path != recipe.get("class"):
                raise ProfilerError(f"{path} was measured on {recipe.get('class')}, not on the given {cls_path}")
        spec = record.get("example_input", [])
        if example_input is None:
            example_input = example_from_spec(spec, int(record.get("seed", 0)))
        else:
            _check_example(example_input, "LatencyProfiler.load")
            if example_spec(example_input) != spec:
                raise ProfilerError(
                    f"{path} was measured on inputs {spec}, not on the given {example_spec(example_input)}; "
                    "latency depends on shapes, so measure a new table for these"
                )
        device = _here(record)
        if measure_missing is None:
            measure_missing = device is not None
        elif measure_missing and device is None:
            raise ProfilerError(
                f"{path} was measured on {record.get('device')} ({record.get('device_name')}, host "
                f"{record.get('host')}, torch {record.get('torch')}), not this machine and torch: its missing entries "
                "cannot be measured here; load it with measure_missing=False"
            )
        profiler = cls.__new__(cls)
        profiler._setup(
            space,
            example_input,
            device if measure_missing else None,
            table,
            int(record.get("warmup", 10)),
            int(record.get("repeats", 10)),
            int(record.get("threads", 1)),
            str(record.get("statistic", "median")),
            int(record.get("seed", 0)),
        )
        for field in ("device", "device_name", "host", "torch"):
            profiler._record[field] = record.get(field)
        profiler._first_walk()
        return profiler

    # Set-up ------------------------------------------------------------------------
    def _setup(
        self,
        space: ModelSpace,
        example_input: Any,
        device: torch.device | None,
        table: dict[str, float],
        warmup: int,
        repeats: int,
        threads: int,
        statistic: str,
        seed: int,
    ) -> None:
        self.space = space
        self.example_input = example_input
        #: The device entries are measured on; ``None`` for a table-only profiler.
        self.device = device
        self.warmup = _positive_int(warmup, "warmup", 0)
        self.repeats = _positive_int(repeats, "repeats", 1)
        self.threads = _positive_int(threads, "threads", 1)
        if statistic not in _STATISTICS:
            raise ProfilerError(f"LatencyProfiler: statistic must be one of {sorted(_STATISTICS)}, got {statistic!r}")
        self.statistic = statistic
        self.seed = seed
        #: ``{key: milliseconds}``: every entry measured or given.
        self.table = table
        #: How many entries this profiler has measured (not loaded).
        self.measurements = 0
        self._record: dict[str, Any] = {
            "device": None if device is None else str(device),
            "device_name": None if device is None else device_name(device),
            "host": platform.node(),
            "torch": torch.__version__,
        }
        self._sample: Mapping[str, Any] = {}
        self._stack: list[list[tuple[str, Any, tuple[str, ...]]]] = []
        self._mode = _WALK
        self._order: list[str] = []
        self._index = 0
        self._child_s: list[float] = []
        self._times: list[list[float]] = []
        self._overhead: list[float] = []
        self._call_s = self._timing_s = 0.0
        self._memo: dict[Any, tuple[Any, tuple[str, ...]]] = {}
        self._layers: dict[Any, torch.nn.Module] = {}
        # Two copies: one on meta to walk (shapes only: keys and lookups cost no
        # compute and no memory), one on the device to time what the table lacks.
        self._meta = self._copy(example_input, _META)
        self._real = None if device is None else self._copy(example_input, device)
        if device is not None:
            self._call_s, self._timing_s = self._calibrate(device)

    def _copy(self, example_input: Any, device: torch.device) -> tuple[torch.nn.Module, tuple[Any, ...]]:
        """The space copied onto ``device`` with every forward wrapped, and the example there."""
        model = copy.deepcopy(self.space).eval()
        if device.type == "meta":
            model.to(device)
        elif device.type != "cpu":
            _move_real_tensors(model, device)
        paths = readable_paths(model)
        for module in model.modules():
            self._wrap(module, paths.get(id(module), "?"), device)
        return model, tuple(_to(a, device) for a in _check_example(example_input, "LatencyProfiler"))

    def _first_walk(self) -> None:
        """Run the default sample: a forward that cannot run on the example input
        fails here, naming it, rather than in the first search step."""
        try:
            self._needed(self.space.validate(self.space.default()))
        except ProfilerError:
            raise
        except Exception as e:
            raise ProfilerError(
                f"LatencyProfiler: {type(self.space).__name__}'s forward failed on the example input "
                f"{describe(self.example_input)} ({type(e).__name__}: {e}); give an input it accepts"
            ) from e

    # Profiling ---------------------------------------------------------------------
    def profile(self, sample: Mapping[str, Any]) -> float:
        """Milliseconds of ``space.freeze(sample)`` on the example input: the sum of
        its entries (measuring those not in the table yet, if this profiler
        measures); a bad sample raises the space's own ``SampleError``."""
        sample = self.space._architecture(sample)
        used = self._needed(sample)
        try:
            return float(sum(self.table[key] for key in used))
        except KeyError:
            missing = [key for key in dict.fromkeys(used) if key not in self.table]
            raise ProfilerError(
                f"the latency table ({self._record['device']}) has no entry for {missing[0]!r}"
                + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
                + f", which sample {dict(sample)} needs; it cannot be measured here: time these on that device "
                "(profiler.keys(sample) lists every entry a sample needs) and add them to the table"
            ) from None

    def keys(self, sample: Mapping[str, Any]) -> list[str]:
        """The table entries ``sample`` needs, each once, in the order its forward
        reaches them (a measuring profiler measures the missing ones first)."""
        return list(dict.fromkeys(self._needed(self.space._architecture(sample))))

    def _needed(self, sample: Sample) -> tuple[str, ...]:
        """The entries of ``sample`` (with repeats: a module called twice counts
        twice), measured first where the table lacks them and this profiler measures."""
        used = self._run(sample, _WALK)
        if self.device is not None and any(key not in self.table for key in used):
            self._measure(sample)
            unmeasured = [key for key in used if key not in self.table]
            if unmeasured:
                raise ProfilerError(
                    f"{type(self.space).__name__}'s forward calls other modules on {self.device} than on the meta "
                    f"device (shapes only), so {unmeasured[0]!r} could not be measured; LatencyProfiler needs a "
                    "forward whose calls depend on shapes and choices only"
                )
        return used

    def _measure(self, sample: Sample) -> None:
        """Time the sample's whole forward, ``warmup`` runs then ``repeats``, each
        call's own work in place (its time less that of the calls it makes), and
        record the median of each entry the table lacks. In place, not in a loop of
        its own: an op run alone keeps its weights and code in cache and would show
        half its time in the model."""
        self._run(sample, _KEYS)
        order = self._order
        self._times = [[] for _ in order]
        for _ in range(self.warmup):
            self._run(sample, _TIME)
        self._times = [[] for _ in order]
        for _ in range(self.repeats):
            self._run(sample, _TIME)
        by_key: dict[str, list[float]] = {}
        for key, times, overhead in zip(order, self._times, self._overhead):
            by_key.setdefault(key, []).extend(max(0.0, t - overhead) for t in times)
        now = {key: _STATISTICS[self.statistic](times) * 1000.0 for key, times in by_key.items()}
        scale = self._drift(now)
        for key, value in now.items():
            if key not in self.table:
                self.table[key] = value * scale
                self.measurements += 1

    def _drift(self, now: Mapping[str, float]) -> float:
        """How much slower the table's entries ran when measured than ``now`` shows
        them: the entries this sample shares with the table (the stem, the head, the
        glue) timed again, summed, against their recorded sum. New entries are scaled
        by it, so a machine whose speed drifts between samples (a busy or virtual
        one) puts every entry on the scale of the first measurement."""
        known = [key for key in now if key in self.table]
        recorded, measured = sum(self.table[k] for k in known), sum(now[k] for k in known)
        if recorded <= 0 or measured <= 0 or recorded < 0.2 * sum(now.values()):
            return 1.0  # too little in common to tell drift from noise
        return min(2.0, max(0.5, recorded / measured))

    def _run(self, sample: Sample, mode: int) -> tuple[str, ...]:
        """One forward of ``sample`` in ``mode``: its entries (walking), or
        ``self._order`` (keying) or ``self._times`` (timing) filled."""
        self._sample, self._mode = sample, mode
        top: list[tuple[str, Any, tuple[str, ...]]] = []
        self._stack, self._index, self._child_s = [top], 0, []
        if mode != _TIME:
            self._order, self._overhead = [], []
        threads = torch.get_num_threads()
        if self.device is not None:
            torch.set_num_threads(self.threads)
        model, args = self._meta if mode == _WALK or self._real is None else self._real
        try:
            with torch.no_grad():
                model(*args)
        finally:
            self._stack = []
            torch.set_num_threads(threads)
        if mode == _TIME and self._index != len(self._order):
            raise ProfilerError(
                f"{type(self.space).__name__}'s forward makes different module calls on each run "
                f"({self._index} now, {len(self._order)} before), so its calls cannot be timed in place"
            )
        return top[-1][2] if top else ()

    # Wrapping modules --------------------------------------------------------------
    def _wrap(self, module: torch.nn.Module, path: str, device: torch.device) -> None:
        dispatch = False  # a call a frozen model does not make (a LayerChoice's)
        leaf_name = f"{type(module).__name__}({module.extra_repr()})"
        what: Callable[[], str] = lambda: type(module).__name__  # noqa: E731
        if isinstance(module, MutableLayer):
            forward, decided, what = self._layer_forward(module, device)
        elif isinstance(module, LayerChoice):
            forward, dispatch = self._choice_forward(module), True
        elif isinstance(module, InputChoice):
            forward, what = self._input_forward(module)
        elif isinstance(module, Repeat):
            forward = self._repeat_forward(module)
        elif isinstance(module, Cell):
            forward = self._cell_forward(module)
        elif isinstance(module, NasBench101Cell):
            forward, what = self._nb101_forward(module, device)
        elif type(module).__name__ in _PASS_THROUGH and isinstance(module, MutableModule):
            forward = module.forward
        elif isinstance(module, MutableModule):
            raise ProfilerError(
                f"{module.describe()}: LatencyProfiler does not know what the frozen form of "
                f"{type(module).__name__} computes; time space.freeze(sample) instead"
            )
        elif type(module).forward is torch.nn.Module.forward:
            return  # a container with no forward of its own (ModuleList) is never called
        else:
            forward = module.forward
            if next(iter(module.children()), None) is None:
                what = lambda: leaf_name  # noqa: E731
        if not isinstance(module, MutableLayer):
            labels = tuple(sorted({leaf.label for m in module.modules() for leaf in _own_leaves(m)}))
            decided = self._sample_key(labels)
        object.__setattr__(module, "forward", self._timed(path, decided, what, forward, device, dispatch))

    def _sample_key(self, labels: tuple[str, ...]) -> Callable[[], Any]:
        def key() -> Any:
            return tuple([hashable(self._sample.get(label)) for label in labels])

        return key

    def _timed(
        self,
        path: str,
        decided: Callable[[], Any],
        what: Callable[[], str],
        forward: Callable[..., Any],
        device: torch.device,
        dispatch: bool = False,
    ) -> Callable[..., Any]:
        """``forward`` keyed, memoised (walking) or timed in place (timing).
        ``dispatch``: the frozen model makes no such call (its time is the
        caller's, less one plain module call)."""
        sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else None
        clock = time.perf_counter

        def call(*args: Any, **kwargs: Any) -> Any:
            if self._mode == _TIME:
                index = self._index
                self._index += 1
                children = self._child_s
                children.append(0.0)
                if sync is not None:
                    sync()
                start = clock()
                out = forward(*args, **kwargs)
                if sync is not None:
                    sync()
                spent = clock() - start
                own = spent - children.pop()
                if children:
                    children[-1] += spent
                self._times[index].append(own)
                return out
            index = len(self._order)
            self._order.append("")
            self._overhead.append(0.0)
            inputs = ", ".join([describe(a) for a in args] + [f"{k}={describe(v)}" for k, v in kwargs.items()])
            memo_key = (path, inputs, decided())
            hit = self._memo.get(memo_key) if self._mode == _WALK else None
            if hit is not None:
                out, used = hit
            else:
                frame: list[tuple[str, Any, tuple[str, ...]]] = []
                self._stack.append(frame)
                try:
                    out = forward(*args, **kwargs)
                finally:
                    self._stack.pop()
                key = f"{path or '<space>'} {what()} in={inputs}"
                if frame:
                    calls = [f"{relative(p, path)}->{describe(o)}" for p, o, _ in frame]
                    key += f" calls=[{', '.join(calls)}]"
                self._order[index] = key
                # What timing in place adds to this call's own time: the timing of each
                # call it makes, and a whole module call where the frozen model makes none.
                self._overhead[index] = len(frame) * self._timing_s + (self._call_s if dispatch else 0.0)
                used = (key,) + tuple(k for _, _, u in frame for k in u)
                if self._mode == _WALK:
                    self._remember(memo_key, out, used)
            if self._stack:
                self._stack[-1].append((path, out, used))
            return out

        return call

    def _calibrate(self, device: torch.device) -> tuple[float, float]:
        """Seconds of a plain module call, and what timing a call in place adds to
        its caller (the quickest of a few rounds: this is overhead, not work)."""
        plain, probe, x, n = torch.nn.Identity(), torch.nn.Identity(), torch.zeros(1), 200
        object.__setattr__(probe, "forward", self._timed("", lambda: None, lambda: "", lambda y: y, device))

        def per_call(module: torch.nn.Module) -> float:
            best = float("inf")
            for _ in range(7):
                self._index, self._child_s, self._times = 0, [0.0], [[] for _ in range(n)]
                start = time.perf_counter()
                for _ in range(n):
                    module(x)
                best = min(best, (time.perf_counter() - start) / n)
            return best

        self._mode = _TIME
        try:
            plain_s, probe_s = per_call(plain), per_call(probe)
        finally:
            self._mode, self._index, self._child_s, self._times = _WALK, 0, [], []
        return plain_s, max(0.0, probe_s - plain_s)

    def _remember(self, key: Any, out: Any, used: tuple[str, ...]) -> None:
        if len(self._memo) >= MAX_MEMO:
            self._memo.clear()  # bounded: a long search meets new shapes and values forever
        self._memo[key] = (out, used)

    # Saving ------------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        """Write the table as JSON, with where and how it was measured, the space's
        class and init arguments, and the example input's shapes and dtypes."""
        write_file(
            path,
            {
                "format": FORMAT,
                "unit": self.unit,
                **self._record,
                "threads": self.threads,
                "warmup": self.warmup,
                "repeats": self.repeats,
                "statistic": self.statistic,
                "seed": self.seed,
                "space": space_recipe(self.space),
                "example_input": example_spec(self.example_input),
                "table": self.table,
            },
        )

    def __repr__(self) -> str:
        where = self._record["device"] if self.device is None else f"{self.device}, {self.threads} thread(s)"
        return f"LatencyProfiler({type(self.space).__name__}, {len(self.table)} entries, {where})"


def _here(record: Mapping[str, Any]) -> torch.device | None:
    """The recorded device if it is this machine's (same host, same device, same
    torch: a kernel's speed changes between releases), else ``None``."""
    if record.get("host") != platform.node() or record.get("torch") != torch.__version__:
        return None
    try:
        device = check_device(record.get("device"), "load")
    except ProfilerError:
        return None
    return device if device_name(device) == record.get("device_name") else None

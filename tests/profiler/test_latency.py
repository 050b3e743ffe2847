"""LatencyProfiler: its table, saved and loaded; tables and functions from elsewhere;
its sums against measured end-to-end latency; and the errors it names."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch
from scipy.stats import kendalltau

import archsmith.nn as nn
from archsmith.profiler import CallableProfiler, LatencyProfiler, ProfilerError, frozen_latency

from ._spaces import AllPrimitives, NB101Space

FAST = {"warmup": 1, "repeats": 3}


class Tiny(nn.ModelSpace):
    """A stem, an op choice and a head; each module is called once."""

    def __init__(self, widths: tuple[int, ...] = (4, 8)) -> None:
        super().__init__()
        width = nn.ValueChoice(list(widths), label="width")
        self.stem = nn.Conv2d(3, width, 3, padding=1)
        self.op = nn.LayerChoice(
            {"c3": nn.Conv2d(width, width, 3, padding=1), "c5": nn.Conv2d(width, width, 5, padding=2)}, label="op"
        )
        self.head = nn.Linear(width, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.op(torch.relu(self.stem(x))).mean((2, 3)))


class Graded(nn.ModelSpace):
    """Latencies spread far apart: width, depth and kernel each change it severalfold."""

    def __init__(self) -> None:
        super().__init__()
        width = nn.ValueChoice([8, 24, 72], label="width")
        kernel = nn.ValueChoice([1, 3, 5], label="kernel")
        self.stem = nn.Conv2d(3, width, 3, padding=1)
        self.body = nn.Repeat(
            lambda i: nn.Conv2d(width, width, kernel, padding="same"), depth=nn.ValueChoice([1, 2, 4], label="depth")
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(torch.relu(self.stem(x))).mean()


class Ladder(nn.ModelSpace):
    """Eight architectures, each at least 1.7x the cost of the next cheaper one: a
    width and a kernel for four convolutions (a busy shared CPU swings timings by
    half as much, so only a clear ladder gives a ranking test that cannot flake)."""

    def __init__(self) -> None:
        super().__init__()
        width = nn.ValueChoice([8, 16, 32, 64], label="width")
        kernel = nn.ValueChoice([1, 3], label="kernel")
        self.stem = nn.Conv2d(3, width, 1)
        self.body = torch.nn.Sequential(*[nn.Conv2d(width, width, kernel, padding="same") for _ in range(4)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(self.stem(x))


class Holder(nn.ModelSpace):
    """A space whose init argument (a module) is not JSON data."""

    def __init__(self, head: torch.nn.Module) -> None:
        super().__init__()
        self.fc = nn.Linear(4, nn.ValueChoice([2, 4], label="n"))
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.fc(x))


def example() -> torch.Tensor:
    return torch.randn(1, 3, 8, 8, generator=torch.Generator().manual_seed(0))


def end_to_end_ms(model: torch.nn.Module, x: torch.Tensor) -> float:
    """The model's quickest run alone on one thread: other work on a shared CPU only
    ever adds to a run (the profilers below take their entries' quickest too)."""
    return frozen_latency(model, x, statistic="min")


# The table, saved and loaded ---------------------------------------------------------
def test_table_round_trip_through_json(tmp_path: Path) -> None:
    space = Tiny()
    profiler = LatencyProfiler(space, example(), **FAST)
    samples = list(space.grid())
    values = [profiler.profile(s) for s in samples]
    assert all(v > 0 and math.isfinite(v) for v in values)
    profiler.save(tmp_path / "t.json")
    record = json.loads((tmp_path / "t.json").read_text())
    assert record["device"] == "cpu" and record["threads"] == 1 and record["unit"] == "ms"
    assert record["statistic"] == "median" and record["repeats"] == 3
    assert record["space"]["init"] == {"args": [], "kwargs": {}}
    assert record["example_input"] == [{"shape": [1, 3, 8, 8], "dtype": "float32"}]

    loaded = LatencyProfiler.load(tmp_path / "t.json")  # the space and the input rebuilt from the file
    assert isinstance(loaded.space, Tiny) and loaded.table == profiler.table
    assert [loaded.profile(s) for s in samples] == values
    assert loaded.measurements == 0  # every entry came from the file


def test_tuple_init_arguments_come_back_as_tuples(tmp_path: Path) -> None:
    profiler = LatencyProfiler(Tiny(widths=(2, 6)), example(), **FAST)
    profiler.save(tmp_path / "t.json")
    loaded = LatencyProfiler.load(tmp_path / "t.json")
    assert loaded.space.init_arguments == ((), {"widths": (2, 6)})


def test_loaded_profiler_measures_only_what_is_new(tmp_path: Path) -> None:
    space = Tiny()
    profiler = LatencyProfiler(space, example(), **FAST)
    before = profiler.measurements
    profiler.profile(space.default())
    assert profiler.measurements == before  # the default sample was timed at construction
    profiler.save(tmp_path / "t.json")
    loaded = LatencyProfiler.load(tmp_path / "t.json")
    new = {"width": 8, "op": "c3"} if space.default() != {"width": 8, "op": "c3"} else {"width": 4, "op": "c5"}
    missing = [k for k in loaded.keys(new) if k not in profiler.table]
    assert missing and loaded.measurements == len(missing)  # measured here: same machine, same device


def test_table_measured_elsewhere_is_not_extended_here(tmp_path: Path) -> None:
    space = Tiny()
    LatencyProfiler(space, example(), **FAST).save(tmp_path / "t.json")
    record = json.loads((tmp_path / "t.json").read_text())
    record["host"], record["device"], record["device_name"] = "pixel-7", "phone", "Tensor G2"
    (tmp_path / "t.json").write_text(json.dumps(record))
    phone = LatencyProfiler.load(tmp_path / "t.json")
    assert phone.device is None  # reads the table only
    assert phone.profile(space.default()) > 0
    other = next(s for s in space.grid() if s != space.default())
    with pytest.raises(ProfilerError, match=r"\(phone\) has no entry for '.*' \(and \d+ more\).*profiler.keys"):
        phone.profile(other)
    with pytest.raises(ProfilerError, match=r"not this machine.*measure_missing=False"):
        LatencyProfiler.load(tmp_path / "t.json", measure_missing=True)


def test_load_checks_the_space_and_the_input(tmp_path: Path) -> None:
    LatencyProfiler(Tiny(), example(), **FAST).save(tmp_path / "t.json")
    with pytest.raises(ProfilerError, match=r"measured on .*Tiny, not on the given .*Graded"):
        LatencyProfiler.load(tmp_path / "t.json", space=Graded())
    with pytest.raises(ProfilerError, match=r"measured on inputs .*\[1, 3, 8, 8\].*measure a new table"):
        LatencyProfiler.load(tmp_path / "t.json", example_input=torch.zeros(2, 3, 8, 8))
    assert LatencyProfiler.load(tmp_path / "t.json", space=Tiny(), example_input=torch.zeros(1, 3, 8, 8)).table
    (tmp_path / "bad.json").write_text('{"format": "something else"}')
    with pytest.raises(ProfilerError, match="not a latency table of format"):
        LatencyProfiler.load(tmp_path / "bad.json")


def test_space_without_json_arguments_must_be_passed(tmp_path: Path) -> None:
    space = Holder(torch.nn.ReLU())
    LatencyProfiler(space, torch.zeros(1, 4), **FAST).save(tmp_path / "t.json")
    with pytest.raises(ProfilerError, match=r"cannot be rebuilt from the file .*LatencyProfiler.load\(path, space="):
        LatencyProfiler.load(tmp_path / "t.json")
    assert LatencyProfiler.load(tmp_path / "t.json", space=space).profile({"n": 2}) > 0


# Plug-ins -----------------------------------------------------------------------------
def test_table_from_elsewhere_is_summed_without_running_anything() -> None:
    space = Tiny()
    blank = LatencyProfiler.from_table(space, example(), {})
    assert blank.device is None and blank.measurements == 0
    sample = {"width": 8, "op": "c5"}
    keys = blank.keys(sample)
    assert keys[0].startswith("<space> Tiny in=float32[1,3,8,8] calls=[stem->float32[1,8,8,8], op->")
    assert "op[c5] Conv2d(in_channels=8, out_channels=8, kernel_size=5, padding=2) in=float32[1,8,8,8]" in keys
    with pytest.raises(ProfilerError, match="has no entry for"):
        blank.profile(sample)
    phone_table = {key: float(i + 1) for i, key in enumerate(keys)}  # as measured on the device
    phone = LatencyProfiler.from_table(space, example(), phone_table, source="pixel-7")
    assert phone.profile(sample) == sum(phone_table.values())  # each module is called once
    assert phone.measurements == 0 and "pixel-7" in repr(phone)
    with pytest.raises(ProfilerError, match="entry 'x' must be a non-negative number"):
        LatencyProfiler.from_table(space, example(), {"x": -1.0})


class Twice(nn.ModelSpace):
    """One layer called twice."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, nn.ValueChoice([4], label="n"))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.fc(x))


def test_a_module_called_twice_counts_twice() -> None:
    space = Twice()
    keys = LatencyProfiler.from_table(space, torch.zeros(1, 4), {}).keys({"n": 4})
    assert len(keys) == 2  # the space's glue, and the layer (once: both calls have one key)
    table = {keys[0]: 1.0, keys[1]: 10.0}
    assert LatencyProfiler.from_table(space, torch.zeros(1, 4), table).profile({"n": 4}) == 21.0


def test_any_function_as_a_latency_profiler() -> None:
    profiler = LatencyProfiler.from_callable(lambda s: 0.5 * s["width"])
    assert isinstance(profiler, CallableProfiler) and profiler.name == "latency" and profiler.unit == "ms"
    fast = profiler <= 3
    assert fast({"width": 4}) and not fast({"width": 8})
    with pytest.raises(ProfilerError, match=r"returned 'slow'.*must return a number"):
        CallableProfiler(lambda s: "slow").profile({})
    with pytest.raises(ProfilerError, match="takes a function"):
        CallableProfiler(3)  # type: ignore[arg-type]


# Against measured latency ------------------------------------------------------------
def test_sum_is_near_end_to_end_latency() -> None:
    space, x = Graded(), torch.randn(1, 3, 16, 16)
    profiler = LatencyProfiler(space, x, statistic="min")  # as measured: the quickest run (a shared CPU)
    for sample in ({"width": 72, "kernel": 3, "depth": 2}, {"width": 24, "kernel": 5, "depth": 4}):
        predicted, measured = profiler.profile(sample), end_to_end_ms(space.freeze(sample), x)
        assert 0.5 < predicted / measured < 2.0, (sample, predicted, measured)  # loose: a shared CPU is noisy


def test_ranks_samples_as_measured_latency_does() -> None:
    space, x = Ladder(), torch.randn(1, 3, 32, 32)
    profiler = LatencyProfiler(space, x, statistic="min")
    samples = list(space.grid())
    predicted = [profiler.profile(s) for s in samples]
    measured = [end_to_end_ms(space.freeze(s), x) for s in samples]
    tau = kendalltau(predicted, measured).statistic
    assert tau >= 0.8, (tau, list(zip(predicted, measured)))


@pytest.mark.parametrize("space_class", [AllPrimitives, NB101Space], ids=lambda c: c.__name__)
def test_every_primitive_profiles(space_class: Any) -> None:
    space = space_class()
    profiler = LatencyProfiler(space, example(), **FAST)
    for seed in range(4):
        sample = space.random(seed)
        value = profiler.profile(sample)
        assert value > 0 and math.isfinite(value)
        assert value == sum(profiler.table[k] for k in profiler._needed(space._architecture(sample)))
    table_only = LatencyProfiler.from_table(space, example(), profiler.table)
    assert table_only.profile(space.random(0)) == profiler.profile(space.random(0))  # keys equal on meta


def test_caller_random_state_is_left_alone() -> None:
    space = Tiny()
    torch.manual_seed(1)
    state = torch.random.get_rng_state()
    profiler = LatencyProfiler(space, example(), **FAST)
    for sample in space.grid():
        profiler.profile(sample)
    assert torch.equal(torch.random.get_rng_state(), state)


# Errors ---------------------------------------------------------------------------------
def test_bad_arguments_named_at_construction() -> None:
    space = Tiny()
    with pytest.raises(ProfilerError, match=r"takes a model space.*got Conv2d"):
        LatencyProfiler(torch.nn.Conv2d(3, 3, 1), example())  # type: ignore[arg-type]
    with pytest.raises(ProfilerError, match="frozen model"):
        LatencyProfiler(space.freeze(space.default()), example())
    with pytest.raises(ProfilerError, match=r"example_input must be a tensor.*got list"):
        LatencyProfiler(space, [example()])
    with pytest.raises(ProfilerError, match="repeats must be an int >= 1, got 0"):
        LatencyProfiler(space, example(), repeats=0)
    with pytest.raises(ProfilerError, match="statistic must be one of"):
        LatencyProfiler(space, example(), statistic="mean")
    with pytest.raises(ProfilerError, match="unknown device 'tpu0'"):
        LatencyProfiler(space, example(), device="tpu0")
    with pytest.raises(ProfilerError, match="forward failed on the example input float32\\[1,5,8,8\\]"):
        LatencyProfiler(space, torch.zeros(1, 5, 8, 8))


def test_frozen_latency_times_a_plain_module() -> None:
    small, large = torch.nn.Linear(4, 4), torch.nn.Linear(4, 4096)
    x = torch.zeros(256, 4)
    assert 0 < frozen_latency(small, x, repeats=5) < frozen_latency(large, x, repeats=5)
    with pytest.raises(ProfilerError, match="frozen_latency: repeats must be an int >= 1"):
        frozen_latency(small, x, repeats=0)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_refused_without_cuda() -> None:
    with pytest.raises(ProfilerError, match="asks for CUDA, which this machine"):
        LatencyProfiler(Tiny(), example(), device="cuda")


def test_new_entries_follow_the_scale_of_the_table_when_the_machine_drifts() -> None:
    x = torch.randn(1, 3, 48, 48, generator=torch.Generator().manual_seed(0))  # ops of ~0.1 ms: above the noise
    latency = LatencyProfiler(Tiny((8, 16)), x, warmup=2, repeats=5, statistic="min")
    first = {"width": 8, "op": "c3"}
    second = {"width": 8, "op": "c5"}
    new = set(latency.keys(second)) - set(latency.keys(first))
    assert new and set(latency.keys(second)) - new  # some entries new, some known (the stem, the head)
    # As if the machine had been twice as slow when the table was started.
    latency.table = {key: 2.0 * ms for key, ms in latency.table.items()}
    latency.profile(second)
    fresh = LatencyProfiler(Tiny((8, 16)), x, warmup=2, repeats=5, statistic="min")
    fresh.profile(second)
    # Scaled like the known entries (about 2x what this machine measures now), within timing noise.
    assert sum(latency.table[k] for k in new) > 1.2 * sum(fresh.table[k] for k in new)
    # The factor comes from the entries in common, and is bounded.
    assert latency._drift({"a": 1.0}) == 1.0  # nothing in common: no scaling
    latency.table.update({"a": 4.0, "b": 4.0})
    assert latency._drift({"a": 1.0, "b": 1.0}) == 2.0  # clamped at 2
    assert latency._drift({"a": 4.0, "b": 4.0, "c": 1.0}) == 1.0

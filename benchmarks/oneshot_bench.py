"""One-shot NAS, measured side by side in one run on scikit-learn's digits.

Prints:
1. training-step time of each algorithm's supernet relative to the plain model it
   stands for: the single sampled subnet for RandomOneShot (SPOS), ENAS and
   Proxyless (target <= 1.15x; NNI 3.0 measured 1.24x on this machine), the sum of
   all candidate paths for DARTS and GumbelDARTS (target <= 1.2x);
2. time per search epoch of DARTS and GumbelDARTS on a space with width and kernel
   choices, in both mixing forms (``mixing="weights"``: one run per layer on the
   mixed sliced weights; ``"outputs"``: one run per combination), and with the
   widths fixed; NNI 3.0's DARTS/GumbelDARTS on the same space and loop when NNI
   can be run (``--nni-python PATH``, or NNI importable here);
3. time per search epoch of every algorithm relative to one epoch of the largest
   subnet of the same space;
4. peak memory of a Proxyless step relative to a single-path step (target <= 2.5x):
   the growth of peak resident memory over 4 steps in fresh processes, after
   warm-up steps on small batches have paid the one-time costs (optimizer state,
   the runtime's lazy set-up; the median of 3 processes each), and the
   steady-state peak allocated per step (the profiler's allocation events);
5. a real search: DARTS and RandomOneShot each export an architecture; retrained
   like 10 random architectures of the same space (test accuracy, mean of 3
   retrainings each), it must beat their median;
6. the per-decision cost model that DARTS, GumbelDARTS and Proxyless penalise
   (``cost=profiler``) on hub spaces: profile calls and seconds to derive it, its
   error against the profiler on 50 random architectures (0 where the cost is
   additive over decisions; a first-order model elsewhere) and the time of one
   differentiable expectation (once per architecture step).

Every time is robust to a loaded machine: the things compared run interleaved
(round-robin, the order rotated each round), after warm-up, repeated, and the
figure is a median (a ratio: the median of the per-round ratios); torch runs on
one thread (``--threads``), since spinning thread pools on oversubscribed cores
inflate times tenfold.

Run: ``.venv/bin/python benchmarks/oneshot_bench.py`` (about 6 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import functools
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import torch
from sklearn.datasets import load_digits

import archsmith.nn as nn
from archsmith import strategy
from archsmith.evaluator import Classification
from archsmith.experiment import Experiment, ExperimentConfig

CHANNELS = 32
LAYERS = 3


def conv_bn(c: int, k: int) -> torch.nn.Module:
    return torch.nn.Sequential(
        torch.nn.Conv2d(c, c, k, padding=k // 2, bias=False), torch.nn.BatchNorm2d(c), torch.nn.ReLU()
    )


def sep_conv(c: int, k: int) -> torch.nn.Module:
    return torch.nn.Sequential(
        torch.nn.Conv2d(c, c, k, padding=k // 2, groups=c, bias=False),
        torch.nn.Conv2d(c, c, 1, bias=False),
        torch.nn.BatchNorm2d(c),
        torch.nn.ReLU(),
    )


def candidates(c: int) -> dict[str, Any]:
    return {
        "conv3": functools.partial(conv_bn, c, 3),
        "conv5": functools.partial(conv_bn, c, 5),
        "sep3": functools.partial(sep_conv, c, 3),
        "maxpool": lambda: torch.nn.MaxPool2d(3, 1, 1),
        "avgpool": lambda: torch.nn.AvgPool2d(3, 1, 1),
        "skip": torch.nn.Identity,
    }


class DigitsSpace(nn.ModelSpace):
    """A stem, ``LAYERS`` chosen ops on 8x8 maps (each followed by a batch norm
    without parameters, so every candidate hands on the same scale, as in DARTS'
    cells), a linear classifier."""

    def __init__(self, channels: int = CHANNELS, layers: int = LAYERS) -> None:
        super().__init__()
        self.stem = torch.nn.Sequential(torch.nn.Conv2d(1, channels, 3, padding=1), torch.nn.ReLU())
        self.ops = torch.nn.ModuleList(nn.LayerChoice(candidates(channels), label=f"op{i}") for i in range(layers))
        self.norms = torch.nn.ModuleList(torch.nn.BatchNorm2d(channels, affine=False) for _ in range(layers))
        self.head = torch.nn.Linear(channels * 64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for op, norm in zip(self.ops, self.norms):
            x = norm(op(x))
        return self.head(x.flatten(1))


def pool_bn(c: int, pool: type[torch.nn.Module]) -> torch.nn.Module:
    return torch.nn.Sequential(pool(3, 1, 1), torch.nn.BatchNorm2d(c, affine=False))  # type: ignore[call-arg]


class SearchSpace(nn.ModelSpace):
    """The real search's space: a stem, ``layers`` chosen ops that each carry their
    own batch norm (the pools too, as in DARTS), global average pooling and a linear
    head. The head sees no positions, so what the ops compute decides the accuracy
    (on ``DigitsSpace``'s flattened head the stem alone reads digits at ~98%, and
    every architecture scores within a few test samples of the others)."""

    def __init__(self, channels: int = CHANNELS, layers: int = LAYERS) -> None:
        super().__init__()
        self.stem = torch.nn.Sequential(
            torch.nn.Conv2d(1, channels, 3, padding=1, bias=False), torch.nn.BatchNorm2d(channels), torch.nn.ReLU()
        )
        ops = {
            "conv3": functools.partial(conv_bn, channels, 3),
            "conv5": functools.partial(conv_bn, channels, 5),
            "sep3": functools.partial(sep_conv, channels, 3),
            "maxpool": functools.partial(pool_bn, channels, torch.nn.MaxPool2d),
            "avgpool": functools.partial(pool_bn, channels, torch.nn.AvgPool2d),
            "skip": torch.nn.Identity,
        }
        self.ops = torch.nn.ModuleList(nn.LayerChoice(ops, label=f"op{i}") for i in range(layers))
        self.head = torch.nn.Linear(channels, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for op in self.ops:
            x = op(x)
        return self.head(x.mean((2, 3)))


class WidthSpace(nn.ModelSpace):
    """Choices in layer arguments (widths, a kernel size): one set of weights,
    sliced per architecture. ``fixed_width``: the widths at their largest, only the
    kernel size chosen."""

    def __init__(self, fixed_width: bool = False) -> None:
        super().__init__()
        c1: Any = 32 if fixed_width else nn.choice("c1", [16, 24, 32])
        c2: Any = 32 if fixed_width else nn.choice("c2", [16, 24, 32])
        self.conv1 = nn.Conv2d(1, c1, nn.choice("k1", [3, 5]), padding="same")
        self.bn1 = nn.BatchNorm2d(c1)
        self.conv2 = nn.Conv2d(c1, c2, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(c2)
        self.head = nn.Linear(c2 * 64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn1(self.conv1(x)))
        x = torch.relu(self.bn2(self.conv2(x)))
        return self.head(x.flatten(1))


class AllPaths(torch.nn.Module):
    """The hand-written model DARTS' supernet stands for: every candidate of every
    layer run and summed."""

    def __init__(self, channels: int = CHANNELS, layers: int = LAYERS) -> None:
        super().__init__()
        self.stem = torch.nn.Sequential(torch.nn.Conv2d(1, channels, 3, padding=1), torch.nn.ReLU())
        self.ops = torch.nn.ModuleList(
            torch.nn.ModuleList(make() for make in candidates(channels).values()) for _ in range(layers)
        )
        self.norms = torch.nn.ModuleList(torch.nn.BatchNorm2d(channels, affine=False) for _ in range(layers))
        self.head = torch.nn.Linear(channels * 64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for layer, norm in zip(self.ops, self.norms):
            outs = [op(x) for op in layer]
            total = outs[0]
            for out in outs[1:]:
                total = total + out
            x = norm(total)
        return self.head(x.flatten(1))


def digits() -> tuple[Any, Any, Any]:
    x, y = load_digits(return_X_y=True)
    x = torch.tensor(x, dtype=torch.float32).reshape(-1, 1, 8, 8) / 16.0
    y = torch.tensor(y)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    x, y = x[order], y[order]
    data = torch.utils.data.TensorDataset
    return data(x[:1000], y[:1000]), data(x[1000:1400], y[1000:1400]), data(x[1400:], y[1400:])


def loader(dataset: Any, shuffle: bool, batch_size: int = 64) -> Any:
    return torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, shuffle=shuffle, generator=torch.Generator().manual_seed(0)
    )


def evaluator(train: Any, val: Any, epochs: int) -> Classification:
    return Classification(
        train_dataloaders=loader(train, True), val_dataloaders=loader(val, False), max_epochs=epochs, learning_rate=3e-3
    )


def algorithms() -> dict[str, Any]:
    """Every one-shot algorithm this checkout has, ready for the bench space."""
    found = {}
    makers = {
        "DARTS": lambda: strategy.DARTS(arc_learning_rate=3e-2),
        "GumbelDARTS": lambda: strategy.GumbelDARTS(arc_learning_rate=3e-2),
        "ENAS": lambda: strategy.ENAS(),
        "RandomOneShot": lambda: strategy.RandomOneShot(bn_calibration_batches=4),
        "Proxyless": lambda: strategy.Proxyless(arc_learning_rate=3e-2),
    }
    for name, make in makers.items():
        if hasattr(strategy, name):
            found[name] = make
    return found


def prepared(algorithm: Any, space: Any, ev: Classification) -> Any:
    """An algorithm with its supernet built and optimizers configured, as its loop would."""
    from archsmith.strategy.oneshot import Supernet

    algorithm.recipe = ev.training_recipe()
    algorithm.supernet = Supernet(space, algorithm.family, algorithm.name)
    algorithm.rng = random.Random(0)
    algorithm.configure()
    algorithm.on_epoch_start(0, 10)
    return algorithm


def plain_step(model: torch.nn.Module, optimizer: Any, batch: Any) -> None:
    optimizer.zero_grad()
    torch.nn.functional.cross_entropy(model(batch[0]), batch[1]).backward()
    optimizer.step()


def timed(fn: Any) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def paths_to_compare(space: Any) -> tuple[list[Any], Classification, list[Any], list[Any], list[Any]]:
    """Training batches, the evaluator, 8 samples with their subnets and optimizers."""
    train, val, _ = digits()
    ev = evaluator(train, val, 1)
    samples = [space.random(seed=i) for i in range(8)]
    subnets = [space.freeze(sample) for sample in samples]
    optimizers = [ev.training_recipe().make_optimizer(net.parameters()) for net in subnets]
    return list(loader(train, True)), ev, samples, subnets, optimizers


def step_ratios(steps: int) -> None:
    print("\n1. training step: supernet vs the plain model it stands for (interleaved medians)")
    space = DigitsSpace()
    batches, ev, samples, subnets, optimizers = paths_to_compare(space)
    for name, make in algorithms().items():
        algo = prepared(make(), space, ev)
        if algo.family == "differentiable":
            all_paths = AllPaths()
            plain_optimizer = ev.training_recipe().make_optimizer(all_paths.parameters())
            ours, theirs, ratio = compare(
                algo.weight_step, functools.partial(plain_step, all_paths, plain_optimizer), batches, steps
            )
            against = "all paths summed"
        else:
            ours, theirs, ratio = compare_paths(algo, space, samples, subnets, optimizers, batches, steps)
            against = "the same sampled subnet"
        target = 1.2 if algo.family == "differentiable" else 1.15
        print(
            f"   {name:14s} {ours * 1e3:7.2f} ms vs {theirs * 1e3:7.2f} ms ({against}): "
            f"{ratio:.2f}x (target <= {target}x)"
        )


def sliced_step_ratios(steps: int) -> None:
    print("\n1b. the same for choices in layer arguments (sliced weights), sampling algorithms")
    space = WidthSpace()
    batches, ev, samples, subnets, optimizers = paths_to_compare(space)
    for name, make in algorithms().items():
        algo = make()
        if algo.family != "sampling":
            continue
        algo = prepared(algo, space, ev)
        ours, theirs, ratio = compare_paths(algo, space, samples, subnets, optimizers, batches, steps)
        print(
            f"   {name:14s} {ours * 1e3:7.2f} ms vs {theirs * 1e3:7.2f} ms (the same sampled subnet): "
            f"{ratio:.2f}x (target <= 1.15x)"
        )


def interleaved(runs: dict[str, Callable[[int], float]], rounds: int, warmup: int = 5) -> dict[str, list[float]]:
    """Seconds of each ``runs[name](i)`` (each times itself), round-robin with the
    order rotated every round so that no one always runs after another; the first
    ``warmup`` rounds are not kept."""
    names = list(runs)
    times: dict[str, list[float]] = {name: [] for name in names}
    for i in range(warmup + rounds):
        shift = i % len(names)
        for name in names[shift:] + names[:shift]:
            seconds = runs[name](i)
            if i >= warmup:
                times[name].append(seconds)
    return times


def paired_ratio(a: list[float], b: list[float]) -> float:
    """The median of the per-round ratios ``a[i] / b[i]``: a burst of load that hits
    one round hits both of its runs."""
    return statistics.median(x / y for x, y in zip(a, b))


def compare_paths(
    algo: Any, space: Any, samples: list[Any], subnets: list[Any], optimizers: list[Any], batches: list[Any], steps: int
) -> tuple[float, float, float]:
    """A weight step of the supernet on path i against the step of subnet i, the
    paths cycling through ``samples``: medians and the paired ratio."""
    gates = getattr(algo, "gates", None)
    if gates is not None:  # Proxyless draws its own paths per step: make it take ours
        gates.resample = lambda: None

    def supernet(i: int) -> float:
        k = i % len(samples)
        if gates is not None:
            gates.paths = {
                label: (space.search_space[label].values.index(samples[k][label]), None)
                for label in gates.paths or samples[k]
            }
        else:
            algo.supernet.set_sample(samples[k])
        return timed(functools.partial(algo.weight_step, batches[i % len(batches)]))

    def plain(i: int) -> float:
        k = i % len(samples)
        return timed(functools.partial(plain_step, subnets[k], optimizers[k], batches[i % len(batches)]))

    times = interleaved({"supernet": supernet, "plain": plain}, steps)
    return statistics.median(times["supernet"]), statistics.median(times["plain"]), paired_ratio(*times.values())


def compare(first: Any, second: Any, batches: list[Any], steps: int) -> tuple[float, float, float]:
    """Median seconds per call of ``first(batch)`` and ``second(batch)``, interleaved,
    and the paired ratio."""
    times = interleaved(
        {
            "first": lambda i: timed(functools.partial(first, batches[i % len(batches)])),
            "second": lambda i: timed(functools.partial(second, batches[i % len(batches)])),
        },
        steps,
    )
    return statistics.median(times["first"]), statistics.median(times["second"]), paired_ratio(*times.values())


# NNI 3.0's side of section 2, run by another interpreter (NNI pins its own
# dependencies): the same space, data, optimizers and loop, one epoch per line read.
_NNI_CHILD = """
import json, sys, time, warnings
warnings.filterwarnings("ignore")
import torch, torch.nn.functional as F
import nni
from nni.nas.nn.pytorch import ModelSpace, MutableConv2d, MutableBatchNorm2d, MutableLinear
from nni.nas.strategy import DARTS, GumbelDARTS
from sklearn.datasets import load_digits

class WidthSpace(ModelSpace):
    def __init__(self, fixed_width):
        super().__init__()
        c1 = 32 if fixed_width else nni.choice("c1", [16, 24, 32])
        c2 = 32 if fixed_width else nni.choice("c2", [16, 24, 32])
        k1 = nni.choice("k1", [3, 5])
        self.conv1 = MutableConv2d(1, c1, k1, padding=k1 // 2)
        self.bn1 = MutableBatchNorm2d(c1)
        self.conv2 = MutableConv2d(c1, c2, 3, padding=1)
        self.bn2 = MutableBatchNorm2d(c2)
        self.head = MutableLinear(c2 * 64, 10)
    def forward(self, x):
        x = torch.relu(self.bn1(self.conv1(x)))
        x = torch.relu(self.bn2(self.conv2(x)))
        return self.head(x.flatten(1))

torch.set_num_threads(int(sys.argv[1]))
torch.manual_seed(0)
x, y = load_digits(return_X_y=True)
x = torch.tensor(x, dtype=torch.float32).reshape(-1, 1, 8, 8) / 16.0
y = torch.tensor(y)
order = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
x, y = x[order], y[order]
train = list(zip(x[:500].split(64), y[:500].split(64)))
arch = list(zip(x[500:1000].split(64), y[500:1000].split(64)))
val = list(zip(x[1000:1400].split(64), y[1000:1400].split(64)))
runs = {}
for name, make in (("DARTS", DARTS), ("GumbelDARTS", GumbelDARTS)):
    for fixed in (False, True):
        strategy = make()
        net = strategy.mutate_model(WidthSpace(fixed))
        alphas = list(strategy._arch_parameters.values())
        ids = {id(a) for a in alphas}
        weights = torch.optim.Adam([p for p in net.parameters() if id(p) not in ids], lr=3e-3)
        arch_optimizer = torch.optim.Adam(alphas, lr=3e-2, betas=(0.5, 0.999), weight_decay=1e-3)
        runs[f"{name} {'fixed' if fixed else 'width'}"] = (net, weights, arch_optimizer)

def epoch(net, weights, arch_optimizer):
    start = time.perf_counter()
    net.train()
    for (xb, yb), (xa, ya) in zip(train, arch):
        arch_optimizer.zero_grad()
        F.cross_entropy(net(xa), ya).backward()
        arch_optimizer.step()
        weights.zero_grad()
        F.cross_entropy(net(xb), yb).backward()
        weights.step()
    net.eval()
    with torch.no_grad():
        for xv, yv in val:
            net(xv)
    return time.perf_counter() - start

print("@@" + json.dumps(sorted(runs)), flush=True)
for line in sys.stdin:
    print("@@" + json.dumps(epoch(*runs[line.strip()])), flush=True)
"""


class NNIRunner:
    """NNI's epochs in a child interpreter, one per ``epoch(name)`` call."""

    def __init__(self, python: str, threads: int) -> None:
        self.errors = tempfile.TemporaryFile("w+")  # a file, not a pipe: NNI's warnings cannot block it
        self.process = subprocess.Popen(
            [python, "-c", _NNI_CHILD, str(threads)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.errors,
            text=True,
        )
        self.names: list[str] = self._read()

    def _read(self) -> Any:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.startswith("@@"):
                return json.loads(line[2:])
        self.errors.seek(0)
        last = (self.errors.read().strip().splitlines() or ["no error output"])[-1]
        raise RuntimeError(f"the NNI child stopped: {last}")

    def epoch(self, name: str) -> float:
        assert self.process.stdin is not None
        self.process.stdin.write(name + "\n")
        self.process.stdin.flush()
        return float(self._read())

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(timeout=30)
        self.errors.close()


def nni_python(given: str | None) -> str | None:
    """The interpreter to run NNI with: ``given``, else this one if NNI imports here."""
    if given is not None:
        return given
    import importlib.util

    return sys.executable if importlib.util.find_spec("nni") is not None else None


def width_epochs(rounds: int, threads: int, nni: str | None) -> None:
    print("\n2. time per search epoch with width choices: both mixing forms, fixed widths, NNI 3.0 (medians)")
    train, val, _ = digits()
    ev = evaluator(train, val, 1)
    x, y = train.tensors
    # DARTS' split: half the training data for the weights, half for the architecture.
    halves = [list(zip(x[a:b].split(64), y[a:b].split(64))) for a, b in ((0, 500), (500, 1000))]
    runs: dict[str, Callable[[int], float]] = {}
    for name in ("DARTS", "GumbelDARTS"):
        for form, fixed in (("weights", False), ("outputs", False), ("fixed", True)):
            mixing = "weights" if fixed else form
            algo = prepared(getattr(strategy, name)(arc_learning_rate=3e-2, mixing=mixing), WidthSpace(fixed), ev)

            def epoch(i: int, algo: Any = algo) -> float:
                start = time.perf_counter()
                algo.supernet.train()
                for batch, arch_batch in zip(*halves):
                    algo.training_step(batch, arch_batch)
                algo.recipe.validate(algo.supernet)
                return time.perf_counter() - start

            runs[f"{name} {form}"] = epoch
    runner = None
    if nni is not None:
        try:
            runner = NNIRunner(nni, threads)
        except (OSError, RuntimeError) as e:
            print(f"   (NNI could not run with {nni}: {e})")
    if runner is not None:
        for key in runner.names:
            runs[f"NNI {key}"] = functools.partial(lambda i, key, nni: nni.epoch(key), key=key, nni=runner)
    times = interleaved(runs, rounds, warmup=2)
    if runner is not None:
        runner.close()
    for name in ("DARTS", "GumbelDARTS"):
        base = times[f"{name} fixed"]
        line = []
        for form in ("weights", "outputs", "fixed"):
            got = times[f"{name} {form}"]
            line.append(f"{form} {statistics.median(got):.3f} s ({paired_ratio(got, base):.2f}x fixed)")
        print(f"   {name:12s} " + ", ".join(line))
        if runner is not None:
            ours, theirs = times[f"{name} weights"], times[f"NNI {name} width"]
            fixed_ours, fixed_theirs = base, times[f"NNI {name} fixed"]
            print(
                f"   {'':12s} NNI 3.0: width {statistics.median(theirs):.3f} s, fixed {statistics.median(fixed_theirs):.3f} s; "
                f"archsmith/NNI with widths {paired_ratio(ours, theirs):.2f}x (target <= 1.0x), "
                f"fixed {paired_ratio(fixed_ours, fixed_theirs):.2f}x"
            )
    if runner is None:
        print("   (NNI 3.0 not measured: pass --nni-python PATH to an interpreter with nni installed)")


def largest_sample(space: Any) -> dict[str, Any]:
    def size(sample: dict[str, Any]) -> int:
        return sum(p.numel() for p in space.freeze(sample).parameters())

    return max(space.grid(), key=size)


def epoch_ratios() -> None:
    print("\n3. time per search epoch vs one epoch of the largest subnet")
    train, val, _ = digits()
    space = DigitsSpace()
    ev = evaluator(train, val, 1)
    recipe = ev.training_recipe()
    model = space.freeze(largest_sample(space))
    optimizer = recipe.make_optimizer(model.parameters())

    def plain_epoch() -> None:
        model.train()
        for batch in recipe.train_data:
            plain_step(model, optimizer, batch)
        recipe.validate(model)

    base = statistics.median(timed(plain_epoch) for _ in range(3))
    print(f"   largest subnet: {base:.2f} s per epoch (training and validation)")
    for name, make in algorithms().items():
        ends: list[float] = []
        start = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:  # the epochs, not the final ranking
            make().search(
                space,
                evaluator(train, val, 3),
                seed=0,
                checkpoint=f"{tmp}/ckpt.pt",
                on_epoch=lambda *_, ends=ends: ends.append(time.perf_counter()),
            )
        seconds = statistics.median(b - a for a, b in zip([start, *ends], ends))
        print(f"   {name:14s} {seconds:6.2f} s per epoch: {seconds / base:.2f}x")


_MEMORY_CHILD = """
import sys, torch, json
sys.path.insert(0, {bench_dir!r})
import oneshot_bench as b
torch.manual_seed(0)
mode = sys.argv[1]
torch.set_num_threads(int(sys.argv[2]))
space = b.DigitsSpace(channels=64)
train, val, _ = b.digits()
batch = next(iter(b.loader(train, True, batch_size=512)))
arch = next(iter(b.loader(val, True, batch_size=512)))
if mode == "single":
    model = space.freeze(space.random(seed=1))
    opt = torch.optim.Adam(model.parameters())
    step = lambda batch, arch: b.plain_step(model, opt, batch)
else:
    algo = b.prepared(b.strategy.Proxyless(), space, b.evaluator(train, val, 1))
    algo.on_epoch_start(5, 10)
    step = lambda batch, arch: algo.training_step(batch, arch)
# Steady state: the one-time costs of a first step (optimizer state, the runtime's
# lazy set-up) are paid on a small batch first; then the growth of the peak is what
# a step on the real batch needs on top of them.
small = [[t[:16] for t in batch], [t[:16] for t in arch]]
for _ in range(3):
    step(*small)
# This process's own peak (VmHWM), reset to the current size: ru_maxrss would carry
# the parent's size at fork over the exec, and hide any growth below it.
def kib(field):
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(field + ":"))
try:
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")
    built = kib("VmRSS")
except OSError:  # no reset allowed: the growth of the peak since the start
    built = kib("VmHWM")
for _ in range(4):
    step(batch, arch)
after = kib("VmHWM")
print(json.dumps({{"built": built, "after": after}}))
"""


def memory_ratio(threads: int, processes: int = 3) -> None:
    print("\n4. peak memory of a Proxyless step vs a single-path step (fresh processes)")
    if "Proxyless" not in algorithms():
        print("   (Proxyless is not in this checkout)")
        return
    import pathlib

    code = _MEMORY_CHILD.format(bench_dir=str(pathlib.Path(__file__).parent))
    growth: dict[str, list[int]] = {"single": [], "proxyless": []}
    for _ in range(processes):  # alternating, so that the machine's state hits both alike
        for mode in growth:
            out = subprocess.run(
                [sys.executable, "-c", code, mode, str(threads)], capture_output=True, text=True, check=True
            )
            result = json.loads(out.stdout.strip().splitlines()[-1])
            # The growth of the process's peak resident size (KiB) over the steps: the
            # steps' peak (activations, gradients) above the model and its state.
            growth[mode].append(result["after"] - result["built"])
    single, proxyless = (statistics.median(growth[mode]) for mode in ("single", "proxyless"))
    ratio = proxyless / max(1, single)
    print(
        f"   peak RSS growth over 4 steps after a warm-up on small batches (median of {processes} processes each): "
        f"single path {single / 1024:.0f} MiB, Proxyless {proxyless / 1024:.0f} MiB: {ratio:.2f}x (target <= 2.5x)"
    )
    steady_state_memory()


def peak_bytes(step: Any) -> int:
    """The peak of the memory allocated during ``step`` above its start (the
    profiler's allocation events, in time order)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        step()
    events = [e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"]  # type: ignore[union-attr]
    live = peak = 0
    for event in sorted(events, key=lambda e: e.start_ns()):
        live += event.nbytes()
        peak = max(peak, live)
    return peak


def steady_state_memory() -> None:
    """The same ratio once the optimizers' state exists (10 warm-up steps each),
    per step, by allocation events: what a step adds on top of the model."""
    torch.manual_seed(0)
    space = DigitsSpace(channels=64)
    train, val, _ = digits()
    batch = next(iter(loader(train, True, batch_size=512)))
    arch = next(iter(loader(val, True, batch_size=512)))
    model = space.freeze(space.random(seed=1))
    optimizer = torch.optim.Adam(model.parameters())
    algo = prepared(strategy.Proxyless(), space, evaluator(train, val, 1))
    single = functools.partial(plain_step, model, optimizer, batch)
    proxyless = functools.partial(algo.training_step, batch, arch)
    for _ in range(10):
        single()
        proxyless()
    a = statistics.median(peak_bytes(single) for _ in range(3))
    b = statistics.median(peak_bytes(proxyless) for _ in range(3))
    print(
        f"   steady state, peak allocated per step: single path {a / 2**20:.0f} MiB, Proxyless (arch + weight step) "
        f"{b / 2**20:.0f} MiB: {b / a:.2f}x (target <= 2.5x)"
    )


RETRAIN_SEEDS = (0, 1, 2)


def retrain(space: Any, sample: dict[str, Any], train: Any, test: Any, epochs: int) -> float:
    """Test accuracy of ``sample`` trained from scratch, the mean over
    ``RETRAIN_SEEDS`` (one retraining is too noisy to rank close architectures)."""
    return statistics.mean(retrain_once(space, sample, train, test, epochs, seed) for seed in RETRAIN_SEEDS)


def retrain_once(space: Any, sample: dict[str, Any], train: Any, test: Any, epochs: int, seed: int) -> float:
    torch.manual_seed(seed)
    model = space.freeze(sample)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(epochs):
        model.train()
        for batch in loader(train, True):
            plain_step(model, optimizer, batch)
    model.eval()
    with torch.no_grad():
        x, y = test.tensors
        return float((model(x).argmax(1) == y).float().mean())


def real_search(search_epochs: int, retrain_epochs: int) -> None:
    print("\n5. real search on digits: exported architectures retrained vs 10 random ones")
    train, val, test = digits()
    space = SearchSpace()
    randoms = [retrain(space, space.random(seed=100 + i), train, test, retrain_epochs) for i in range(10)]
    median = statistics.median(randoms)
    print(
        f"   10 random architectures: median test accuracy {median:.4f} (min {min(randoms):.4f}, max {max(randoms):.4f})"
    )
    for name in ("DARTS", "RandomOneShot"):
        if name not in algorithms():
            print(f"   {name}: not in this checkout")
            continue
        with tempfile.TemporaryDirectory() as tmp:
            exp = Experiment(
                space,
                evaluator(train, val, search_epochs),
                algorithms()[name](),
                ExperimentConfig(workdir=tmp, seed=0),
            )
            start = time.perf_counter()
            exp.run()
            seconds = time.perf_counter() - start
            best = exp.export_top_models(1)[0]
        accuracy = retrain(space, best, train, test, retrain_epochs)
        verdict = "beats" if accuracy > median else "does NOT beat"
        print(f"   {name}: searched {seconds:.1f} s, exported {best}: {accuracy:.4f}, {verdict} the random median")


class _Counted:
    """A profiler that counts its calls."""

    def __init__(self, profiler: Any) -> None:
        self.profiler, self.name, self.calls = profiler, profiler.name, 0

    def profile(self, sample: dict[str, Any]) -> float:
        self.calls += 1
        return float(self.profiler.profile(sample))


def cost_models(samples: int = 50) -> None:
    """Section 6: the per-decision cost model of each profiler on reduced hub spaces."""
    from archsmith.hub import MobileNetV3Space, ProxylessNAS, ShuffleNetSpace
    from archsmith.profiler import FlopsProfiler, NumParamsProfiler
    from archsmith.strategy.oneshot._profiled_cost import concentrated_on, expected_cost_model

    print("\n6. per-decision cost model (cost=profiler) on reduced hub spaces, 32x32 inputs")

    for cls in (ProxylessNAS, MobileNetV3Space, ShuffleNetSpace):
        space = cls(**cls.reduced_kwargs_for(32))
        search_space = space.search_space
        for profiler in (NumParamsProfiler(space), FlopsProfiler(space, torch.randn(1, 3, 32, 32))):
            counted = _Counted(profiler)
            started = time.perf_counter()
            model = expected_cost_model(counted, search_space, list(search_space), "DARTS")
            derive = time.perf_counter() - started
            rng = random.Random(0)
            errors = []
            for _ in range(samples):
                sample = search_space.random(rng=rng)
                true = profiler.profile(sample)
                errors.append(abs(float(model.expected(concentrated_on(search_space, sample))) - true) / true)
            uniform = {label: torch.softmax(torch.zeros(len(search_space[label].values)), -1) for label in search_space}
            times = []
            for _ in range(5):
                started = time.perf_counter()
                for _ in range(20):
                    model.normalised(uniform)
                times.append((time.perf_counter() - started) / 20)
            print(
                f"   {cls.__name__:17s} {profiler.name:6s} {len(search_space):3d} labels  {counted.calls:4d} profile calls "
                f"in {derive:5.2f} s  relative error median {statistics.median(errors):6.2%} max {max(errors):6.2%}  "
                f"expectation {statistics.median(times) * 1e3:.2f} ms"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60, help="interleaved steps per step-time comparison")
    parser.add_argument("--epochs", type=int, default=8, help="interleaved rounds of epochs in section 2")
    parser.add_argument("--search-epochs", type=int, default=10)
    parser.add_argument("--retrain-epochs", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (here and in every child)")
    parser.add_argument("--nni-python", help="an interpreter with NNI 3.0 installed, for section 2's NNI figures")
    parser.add_argument("--only", choices=("steps", "width", "epochs", "memory", "search", "cost"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.only in (None, "steps"):
        step_ratios(args.steps)
        sliced_step_ratios(args.steps)
    if args.only in (None, "width"):
        width_epochs(args.epochs, args.threads, nni_python(args.nni_python))
    if args.only in (None, "epochs"):
        epoch_ratios()
    if args.only in (None, "memory"):
        memory_ratio(args.threads)
    if args.only in (None, "search"):
        real_search(args.search_epochs, args.retrain_epochs)
    if args.only in (None, "cost"):
        cost_models()


if __name__ == "__main__":
    main()

"""One-shot NAS, measured side by side in one run on scikit-learn's digits.

Prints:
1. training-step time of each algorithm's supernet relative to the plain model it
   stands for: the single sampled subnet for RandomOneShot (SPOS), ENAS and
   Proxyless (target <= 1.15x; NNI 3.0 measured 1.24x on this machine), the sum of
   all candidate paths for DARTS and GumbelDARTS (target <= 1.2x). Steps are
   interleaved (supernet, plain, supernet, ...) and the medians compared;
2. time per search epoch of every algorithm relative to one epoch of the largest
   subnet of the same space;
3. peak memory of a Proxyless step relative to a single-path step (target <= 2.5x):
   the growth of peak resident memory over the first steps in fresh processes
   (optimizer state included), and the steady-state peak allocated per step (the
   profiler's allocation events, after warm-up);
4. a real search: DARTS and RandomOneShot each export an architecture; retrained
   like 10 random architectures of the same space (test accuracy, mean of 3
   retrainings each), it must beat their median.

Run: ``.venv/bin/python benchmarks/oneshot_bench.py`` (about 5 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import subprocess
import sys
import tempfile
import time
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


class WidthSpace(nn.ModelSpace):
    """Choices in layer arguments (widths, a kernel size): one set of weights,
    sliced per architecture."""

    def __init__(self) -> None:
        super().__init__()
        c1, c2 = nn.choice("c1", [16, 24, 32]), nn.choice("c2", [16, 24, 32])
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
    import random

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
            ours, theirs = compare(
                algo.weight_step, functools.partial(plain_step, all_paths, plain_optimizer), batches, steps
            )
            against = "all paths summed"
        else:
            ours, theirs = compare_paths(algo, space, samples, subnets, optimizers, batches, steps)
            against = "the same sampled subnet"
        target = 1.2 if algo.family == "differentiable" else 1.15
        print(
            f"   {name:14s} {ours * 1e3:7.2f} ms vs {theirs * 1e3:7.2f} ms ({against}): "
            f"{ours / theirs:.2f}x (target <= {target}x)"
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
        ours, theirs = compare_paths(algo, space, samples, subnets, optimizers, batches, steps)
        print(
            f"   {name:14s} {ours * 1e3:7.2f} ms vs {theirs * 1e3:7.2f} ms (the same sampled subnet): "
            f"{ours / theirs:.2f}x (target <= 1.15x)"
        )


def compare_paths(
    algo: Any, space: Any, samples: list[Any], subnets: list[Any], optimizers: list[Any], batches: list[Any], steps: int
) -> tuple[float, float]:
    """A weight step of the supernet on path i against the step of subnet i, the
    paths cycling through ``samples``."""
    gates = getattr(algo, "gates", None)
    if gates is not None:  # Proxyless draws its own paths per step: make it take ours
        gates.resample = lambda: None
    a, b = [], []
    for i in range(steps):
        k, batch = i % len(samples), batches[i % len(batches)]
        if gates is not None:
            gates.paths = {
                label: (space.search_space[label].values.index(samples[k][label]), None)
                for label in gates.paths or samples[k]
            }
        else:
            algo.supernet.set_sample(samples[k])
        a.append(timed(functools.partial(algo.weight_step, batch)))
        b.append(timed(functools.partial(plain_step, subnets[k], optimizers[k], batch)))
    return statistics.median(a[5:]), statistics.median(b[5:])


def compare(first: Any, second: Any, batches: list[Any], steps: int) -> tuple[float, float]:
    """Median seconds per call of ``first(batch)`` and ``second(batch)``, interleaved
    (the first few calls of each are warm-up and not counted)."""
    a, b = [], []
    for i in range(steps):
        batch = batches[i % len(batches)]
        a.append(timed(functools.partial(first, batch)))
        b.append(timed(functools.partial(second, batch)))
    return statistics.median(a[5:]), statistics.median(b[5:])


def largest_sample(space: Any) -> dict[str, Any]:
    def size(sample: dict[str, Any]) -> int:
        return sum(p.numel() for p in space.freeze(sample).parameters())

    return max(space.grid(), key=size)


def epoch_ratios() -> None:
    print("\n2. time per search epoch vs one epoch of the largest subnet")
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
import resource, sys, torch, json
sys.path.insert(0, {bench_dir!r})
import oneshot_bench as b
torch.manual_seed(0)
mode = sys.argv[1]
space = b.DigitsSpace(channels=64)
train, val, _ = b.digits()
batch = next(iter(b.loader(train, True, batch_size=512)))
if mode == "single":
    model = space.freeze(space.random(seed=1))
    opt = torch.optim.Adam(model.parameters())
    step = lambda: b.plain_step(model, opt, batch)
else:
    algo = b.prepared(b.strategy.Proxyless(), space, b.evaluator(train, val, 1))
    algo.on_epoch_start(5, 10)
    arch = next(iter(b.loader(val, True, batch_size=512)))
    step = lambda: algo.training_step(batch, arch)
built = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
for _ in range(4):
    step()
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({{"built": built, "after": after}}))
"""


def memory_ratio() -> None:
    print("\n3. peak memory of a Proxyless step vs a single-path step (fresh processes)")
    if "Proxyless" not in algorithms():
        print("   (Proxyless is not in this checkout)")
        return
    import pathlib

    code = _MEMORY_CHILD.format(bench_dir=str(pathlib.Path(__file__).parent))
    results = {}
    for mode in ("single", "proxyless"):
        out = subprocess.run([sys.executable, "-c", code, mode], capture_output=True, text=True, check=True)
        results[mode] = json.loads(out.stdout.strip().splitlines()[-1])
    # ru_maxrss (KiB) is the process's peak so far: its growth over the steps is
    # the steps' peak (activations, gradients, optimizer state) above the model.
    growth = {mode: r["after"] - r["built"] for mode, r in results.items()}
    ratio = growth["proxyless"] / max(1, growth["single"])
    print(
        f"   peak RSS growth over the first steps (optimizer state included): single path "
        f"{growth['single'] / 1024:.0f} MiB, Proxyless {growth['proxyless'] / 1024:.0f} MiB: {ratio:.2f}x "
        "(target <= 2.5x)"
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
    print("\n4. real search on digits: exported architectures retrained vs 10 random ones")
    train, val, test = digits()
    space = DigitsSpace()
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60, help="interleaved steps per step-time comparison")
    parser.add_argument("--search-epochs", type=int, default=10)
    parser.add_argument("--retrain-epochs", type=int, default=8)
    parser.add_argument("--only", choices=("steps", "epochs", "memory", "search"))
    args = parser.parse_args()
    torch.set_num_threads(2)
    if args.only in (None, "steps"):
        step_ratios(args.steps)
        sliced_step_ratios(args.steps)
    if args.only in (None, "epochs"):
        epoch_ratios()
    if args.only in (None, "memory"):
        memory_ratio()
    if args.only in (None, "search"):
        real_search(args.search_epochs, args.retrain_epochs)


if __name__ == "__main__":
    main()

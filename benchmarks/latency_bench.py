"""LatencyProfiler against measured end-to-end latency, per space (one thread).

For each space (hub spaces at reduced arguments on 32x32 inputs, and a digits-size
CNN on 1x8x8): build the profiler (the default sample's table), then for N seeded
random samples time ``space.freeze(sample)`` end to end (eval, no grad, warm-up then
the median of repeats, one thread) and ask the profiler. Prints per space: Kendall's
tau between the two rankings; Kendall's tau of the end-to-end timing against the same
timing repeated ("e2e tau": how well this machine ranks the samples against itself,
the ceiling its noise sets); the mean relative error and bias of the prediction; the
range of measured latencies; the table build time and entries; and the mean
``profile()`` time of a new sample (which measures the entries new to it) and of a
sample seen before (a lookup).
``--statistic min`` takes the quickest run for both (steadier on a busy machine).
Run: ``.venv/bin/python benchmarks/latency_bench.py [--samples N] [--spaces a,b] [--repeats R] [--statistic min]
[--batch B] [--rounds R]`` (batch 1 by default; R end-to-end rounds, 20 by default).
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import torch

import archsmith.nn as nn
from archsmith.hub import get_space
from archsmith.profiler import LatencyProfiler, frozen_latency

DEFAULT_SPACES = "digits,darts,mobilenetv3,proxylessnas,nasbench101,autoformer"


class DigitsCNN(nn.ModelSpace):
    """A CNN for 8x8 digits: width, kernel, an op choice and a depth."""

    def __init__(self) -> None:
        super().__init__()
        width = nn.ValueChoice([16, 32, 64], label="width")
        self.stem = nn.Conv2d(1, width, nn.ValueChoice([3, 5], label="stem_k"), padding="same")
        self.body = nn.Repeat(
            lambda i: nn.LayerChoice(
                {
                    "conv3": nn.Conv2d(width, width, 3, padding=1),
                    "conv5": nn.Conv2d(width, width, 5, padding=2),
                    "pool": torch.nn.MaxPool2d(3, 1, 1),
                },
                label=f"op{i}",
            ),
            depth=nn.ValueChoice([1, 2, 3], label="depth"),
            label="body",
        )
        self.head = nn.Linear(width, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.body(torch.relu(self.stem(x)))
        return self.head(x.mean((2, 3)))


def make_space(name: str, batch: int = 1) -> tuple[nn.ModelSpace, torch.Tensor]:
    if name == "digits":
        return DigitsCNN(), torch.randn(batch, 1, 8, 8)
    cls = get_space(name)
    return cls(**cls.reduced_kwargs_for(32)), torch.randn(batch, 3, 32, 32)


def kendall_tau(a: list[float], b: list[float]) -> float:
    """Kendall's tau-b of two score lists."""
    concordant = discordant = ties_a = ties_b = 0
    for i in range(len(a)):
        for j in range(i + 1, len(a)):
            da, db = a[i] - a[j], b[i] - b[j]
            if da == 0 and db == 0:
                continue
            if da == 0:
                ties_a += 1
            elif db == 0:
                ties_b += 1
            elif (da > 0) == (db > 0):
                concordant += 1
            else:
                discordant += 1
    denominator = ((concordant + discordant + ties_a) * (concordant + discordant + ties_b)) ** 0.5
    return (concordant - discordant) / denominator if denominator else 0.0


def interleaved_latency(models: list[torch.nn.Module], example: Any, rounds: int, statistic: str) -> list[float]:
    """End-to-end milliseconds of each model, timed in turns (one call of each per
    round, then the median or minimum per model): a slow spell of the machine then
    slows every model alike instead of whichever was being timed."""
    for model in models:
        frozen_latency(model, example, warmup=5, repeats=1)  # warm-up, eval mode, one thread
    times: list[list[float]] = [[] for _ in models]
    with torch.no_grad():
        for _ in range(rounds):
            for i, model in enumerate(models):
                start = time.perf_counter()
                model(example)
                times[i].append((time.perf_counter() - start) * 1000.0)
    pick = min if statistic == "min" else statistics.median
    return [pick(t) for t in times]


def bench_space(name: str, samples: int, repeats: int, statistic: str, batch: int, rounds: int) -> dict[str, Any]:
    space, example = make_space(name, batch)
    start = time.perf_counter()
    profiler = LatencyProfiler(space, example, repeats=repeats, statistic=statistic)
    build = time.perf_counter() - start
    chosen = [space.random(1000 + i) for i in range(samples)]
    predicted, new_times = [], []
    for sample in chosen:
        start = time.perf_counter()
        predicted.append(profiler.profile(sample))
        new_times.append(time.perf_counter() - start)
    models = [space.freeze(sample) for sample in chosen]
    measured = interleaved_latency(models, example, rounds, statistic)
    # The same measurement again: how well this machine ranks the samples against itself.
    remeasured = interleaved_latency(models, example, rounds, statistic)
    start = time.perf_counter()
    again = [profiler.profile(sample) for sample in chosen]
    seen = (time.perf_counter() - start) / samples
    assert again == predicted
    errors = [abs(p - m) / m for p, m in zip(predicted, measured)]
    return {
        "space": name,
        "tau": kendall_tau(measured, predicted),
        "self_tau": kendall_tau(measured, remeasured),
        "error": statistics.mean(errors),
        "bias": statistics.mean((p - m) / m for p, m in zip(predicted, measured)),
        "build": build,
        "entries": len(profiler.table),
        "new": statistics.mean(new_times),
        "seen": seen,
        "range": (min(measured), max(measured)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=25, help="random samples per space")
    parser.add_argument("--repeats", type=int, default=10, help="timed repeats per table entry")
    parser.add_argument("--spaces", default=DEFAULT_SPACES, help="comma-separated hub space names, or 'digits'")
    parser.add_argument("--batch", type=int, default=1, help="the example input's batch size")
    parser.add_argument("--rounds", type=int, default=20, help="end-to-end rounds (each model once per round)")
    parser.add_argument(
        "--statistic", default="median", choices=["median", "min"], help="of repeats, for the table and end to end"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(
        f"{'space':<13} {'tau':>5} {'e2e tau':>7} {'mean err':>8} {'bias':>7} {'e2e range ms':>15} {'build s':>8} {'entries':>7} "
        f"{'new ms':>8} {'seen ms':>8}"
    )
    for name in args.spaces.split(","):
        r = bench_space(name, args.samples, args.repeats, args.statistic, args.batch, args.rounds)
        low, high = r["range"]
        print(
            f"{r['space']:<13} {r['tau']:>5.2f} {r['self_tau']:>7.2f} {r['error']:>8.1%} {r['bias']:>+7.1%} {low:>7.2f}-{high:<7.2f} "
            f"{r['build']:>8.2f} {r['entries']:>7d} {r['new'] * 1000:>8.1f} {r['seen'] * 1000:>8.2f}",
            flush=True,
        )


if __name__ == "__main__":
    main()

"""Profilers against freezing and counting, per hub space (reduced arguments, 32x32).

For each hub space: samples per second of ``NumParamsProfiler.profile`` and
``FlopsProfiler.profile`` on samples never profiled before, against
``space.freeze(sample)`` followed by counting (parameters: ``sum(p.numel())``;
FLOPs: torch's ``FlopCounterMode`` on the frozen model moved to ``meta``, halved),
the ratio side by side, and whether every value agreed. The profilers are built
(and warmed on ``--warm`` other samples, as a strategy's earlier samples warm them)
before timing. Torch runs on one thread.
Run: ``.venv/bin/python benchmarks/profiler_bench.py [--samples N] [--warm N] [--spaces a,b] [--costs params,flops]``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import torch

from archsmith.hub import get_space, list_spaces
from archsmith.profiler import FlopsProfiler, NumParamsProfiler, ProfilerError, frozen_macs


def rate(fn: Callable[[Any], Any], samples: list[Any]) -> tuple[float, list[Any]]:
    """(samples per second, values) of ``fn`` over ``samples``."""
    start = time.perf_counter()
    values = [fn(s) for s in samples]
    return len(samples) / (time.perf_counter() - start), values


def bench_space(name: str, samples: int, warm: int, costs: list[str]) -> list[str]:
    cls = get_space(name)
    space = cls(**cls.reduced_kwargs_for(32))
    example = torch.zeros(2, 3, 32, 32)
    fresh = [space.random(10_000 + i) for i in range(samples)]
    warmup = [space.random(i) for i in range(warm)]
    rows = []
    profilers: list[tuple[str, Callable[[], Any], Callable[[Any], float]]] = [
        ("params", lambda: NumParamsProfiler(space), lambda s: sum(p.numel() for p in space.freeze(s).parameters())),
        ("flops", lambda: FlopsProfiler(space, example), lambda s: frozen_macs(space.freeze(s), example)),
    ]
    for what, make, slow in profilers:
        if what not in costs:
            continue
        try:
            start = time.perf_counter()
            profiler = make()
            setup = time.perf_counter() - start
        except ProfilerError as e:
            rows.append(f"{name:<12} {what:<6} refused: {str(e)[:90]}...")
            continue
        for s in warmup:
            profiler.profile(s)
        fast_rate, fast_values = rate(profiler.profile, fresh)
        slow_rate, slow_values = rate(slow, fresh)
        exact = "exact" if fast_values == slow_values else "DIFFERS"
        rows.append(
            f"{name:<12} {what:<6} {fast_rate:>10.1f} {slow_rate:>10.1f} {fast_rate / slow_rate:>7.1f}x "
            f"{setup:>7.2f}s  {exact}"
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=10, help="unseen samples timed per space")
    parser.add_argument("--warm", type=int, default=30, help="other samples profiled first")
    parser.add_argument("--spaces", default=",".join(list_spaces()), help="comma-separated hub space names")
    parser.add_argument("--costs", default="params,flops", help="comma-separated: params, flops")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"{'space':<12} {'cost':<6} {'profile/s':>10} {'freeze/s':>10} {'ratio':>8} {'setup':>8}  check")
    for name in args.spaces.split(","):
        for row in bench_space(name, args.samples, args.warm, args.costs.split(",")):
            print(row, flush=True)


if __name__ == "__main__":
    main()

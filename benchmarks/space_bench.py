"""Speed of the search-space core, measured side by side in one run.

Prints:
- random samples per second on a 50-decision model space (target >= 20,000/s);
- freeze time relative to constructing the equivalent hand-written module
  (target <= 1.3x), interleaved so machine noise hits both alike;
- grid enumeration rate.

Run: ``.venv/bin/python benchmarks/space_bench.py`` (or ``make bench``).
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch

import archsmith.nn as nn

BLOCKS = 10
OPS = ("conv3", "conv5", "sep", "skip")


def _op(name: str, c: Any) -> Callable[[], torch.nn.Module]:
    if name == "conv3":
        return lambda: nn.Conv2d(c, c, 3, padding=1)
    if name == "conv5":
        return lambda: nn.Conv2d(c, c, 5, padding=2)
    if name == "sep":
        return lambda: nn.Sequential(nn.Conv2d(c, c, 3, padding=1, groups=c), nn.Conv2d(c, c, 1))
    return nn.Identity


class Space50(nn.ModelSpace):
    """10 blocks x (op, width multiplier, activation, norm, dropout) = 50 decisions."""

    def __init__(self) -> None:
        super().__init__()
        c_in = 8
        self.stem = nn.Conv2d(3, c_in, 3, padding=1)
        blocks = []
        for i in range(BLOCKS):
            c = nn.ValueChoice([8, 16, 24], label=f"b{i}/width")
            blocks.append(nn.Conv2d(c_in, c, 1))
            blocks.append(nn.LayerChoice({name: _op(name, c) for name in OPS}, label=f"b{i}/op"))
            blocks.append(nn.LayerChoice({"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU}, label=f"b{i}/act"))
            blocks.append(
                nn.LayerChoice({"bn": lambda c=c: nn.BatchNorm2d(c), "none": nn.Identity}, label=f"b{i}/norm")
            )
            blocks.append(nn.Dropout(nn.ValueChoice([0.0, 0.1, 0.2], label=f"b{i}/drop")))
            c_in = c
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Linear(c_in, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(x)).mean((2, 3)))


class HandWritten(torch.nn.Module):
    """The same network written by hand for one sample (what freeze must match)."""

    def __init__(self, s: dict[str, Any]) -> None:
        super().__init__()
        c_in = 8
        self.stem = torch.nn.Conv2d(3, c_in, 3, padding=1)
        blocks: list[torch.nn.Module] = []
        for i in range(BLOCKS):
            c = s[f"b{i}/width"]
            blocks.append(torch.nn.Conv2d(c_in, c, 1))
            op = s[f"b{i}/op"]
            if op == "conv3":
                blocks.append(torch.nn.Conv2d(c, c, 3, padding=1))
            elif op == "conv5":
                blocks.append(torch.nn.Conv2d(c, c, 5, padding=2))
            elif op == "sep":
                blocks.append(
                    torch.nn.Sequential(torch.nn.Conv2d(c, c, 3, padding=1, groups=c), torch.nn.Conv2d(c, c, 1))
                )
            else:
                blocks.append(torch.nn.Identity())
            blocks.append({"relu": torch.nn.ReLU, "gelu": torch.nn.GELU, "silu": torch.nn.SiLU}[s[f"b{i}/act"]]())
            blocks.append(torch.nn.BatchNorm2d(c) if s[f"b{i}/norm"] == "bn" else torch.nn.Identity())
            blocks.append(torch.nn.Dropout(s[f"b{i}/drop"]))
            c_in = c
        self.blocks = torch.nn.Sequential(*blocks)
        self.head = torch.nn.Linear(c_in, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(x)).mean((2, 3)))


def rate(fn: Callable[[], Any], seconds: float = 1.0) -> float:
    """Calls per second of ``fn`` over about ``seconds``."""
    n, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for _ in range(200):
            fn()
        n += 200
    return n / elapsed


def main() -> None:
    torch.set_num_threads(1)
    space = Space50()
    decisions = len(space.search_space)
    assert decisions == 50, decisions
    print(f"space: {decisions} decisions, {space.size():,} architectures")

    rng = random.Random(0)
    shared = rate(lambda: space.random(rng=rng))
    seeds = iter(range(10**9))
    seeded = rate(lambda: space.random(seed=next(seeds)))
    print(f"random samples/s (one rng):         {shared:>10,.0f}   target >= 20,000")
    print(f"random samples/s (seed per sample): {seeded:>10,.0f}")

    samples = [space.random(seed=i) for i in range(60)]
    for s in samples[:5]:  # warm up both paths, and check they build the same network
        frozen, hand = space.freeze(s), HandWritten(s)
        assert sum(p.numel() for p in frozen.parameters()) == sum(p.numel() for p in hand.parameters())
    ratios, t_freeze, t_hand = [], [], []
    for s in samples:
        torch.manual_seed(0)
        t0 = time.perf_counter()
        HandWritten(s)
        t1 = time.perf_counter()
        space.freeze(s)
        t2 = time.perf_counter()
        t_hand.append(t1 - t0)
        t_freeze.append(t2 - t1)
        ratios.append((t2 - t1) / (t1 - t0))
    print(
        f"freeze: median {statistics.median(t_freeze) * 1e3:.2f} ms vs hand-written "
        f"{statistics.median(t_hand) * 1e3:.2f} ms -> ratio {statistics.median(ratios):.2f}x   target <= 1.3x"
    )

    small = nn.collect_space(
        nn.Sequential(*[nn.Linear(4, nn.ValueChoice([4, 8, 16], label=f"w{i}")) for i in range(11)])
    )
    start = time.perf_counter()
    count = sum(1 for _ in small.grid())
    elapsed = time.perf_counter() - start
    print(f"grid: {count:,} samples in {elapsed:.2f} s -> {count / elapsed:,.0f} samples/s")


if __name__ == "__main__":
    main()

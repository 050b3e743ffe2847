"""Cost of weight sharing: a sliced Conv2d against the plain Conv2d of one configuration.

Prints, for a few configurations of a supernet convolution (in/out channels and kernel
size are choices), the median forward+backward time of the sliced layer and of the
plain torch layer with the same weights, measured interleaved so that machine noise
hits both alike, and their ratio (target for a whole supernet: <= 1.15x). Then, for the
differentiable family, the same layer mixing all 27 configurations: once on the mixed
weights (``mixed_forward``, DARTS' default) against once per configuration with the
outputs mixed, and against one plain run of the largest configuration.

Run: ``.venv/bin/python benchmarks/sliced_layers_bench.py [--runs 50] [--threads 1] [--device cuda]``.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time
from collections.abc import Callable

import torch

import archsmith.nn as nn
from archsmith.space import Categorical
from archsmith.strategy.oneshot._sliced import SlicedLayer, make_sliced


def step_time(module: torch.nn.Module, x: torch.Tensor, device: torch.device) -> float:
    for parameter in module.parameters():
        parameter.grad = None
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    module(x).sum().backward()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def compare(sliced: Callable[[], float], plain: Callable[[], float], runs: int) -> tuple[float, float]:
    for _ in range(3):  # warm-up
        sliced(), plain()
    sliced_times, plain_times = [], []
    for i in range(runs):  # alternate which goes first
        if i % 2:
            sliced_times.append(sliced())
            plain_times.append(plain())
        else:
            plain_times.append(plain())
            sliced_times.append(sliced())
    return statistics.median(sliced_times), statistics.median(plain_times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    args = parser.parse_args()
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    kernel = Categorical([3, 5, 7], label="k")
    layer = nn.Conv2d(
        Categorical([32, 48, 64], label="in"), Categorical([32, 48, 64], label="out"), kernel, padding=kernel // 2
    )
    sliced = make_sliced(layer).to(device)
    print(f"device={device}, threads={torch.get_num_threads()}, median of {args.runs} interleaved runs")
    print(f"{'configuration':<34} {'batch':>12} {'sliced ms':>10} {'plain ms':>10} {'ratio':>7}")
    for batch, size in [(16, 16), (64, 32)] if device.type == "cuda" else [(16, 16), (4, 8)]:
        for sample in ({"in": 48, "out": 48, "k": 3}, {"in": 32, "out": 64, "k": 5}, {"in": 64, "out": 64, "k": 7}):
            sliced.bind(dict(sample))
            plain = sliced.export_layer(sample)
            x = torch.randn(batch, sample["in"], size, size, device=device)
            sliced_s, plain_s = compare(
                lambda x=x: step_time(sliced, x, device),
                lambda x=x, plain=plain: step_time(plain, x, device),
                args.runs,
            )
            label = ", ".join(f"{k}={v}" for k, v in sample.items())
            print(
                f"{label:<34} {f'{batch}x{size}x{size}':>12} {sliced_s * 1e3:>10.3f} {plain_s * 1e3:>10.3f} "
                f"{sliced_s / plain_s:>6.2f}x"
            )
    mixing_forms(sliced, device, args.runs)


def mixing_forms(sliced: SlicedLayer, device: torch.device, runs: int) -> None:
    """Weight mixing vs output mixing of every configuration of ``sliced``."""
    leaves = sliced.leaves
    combos = [
        sliced.arguments(dict(zip([leaf.label for leaf in leaves], values)))
        for values in itertools.product(*(leaf.grid() for leaf in leaves))
    ]
    logits = torch.zeros(len(combos), device=device, requires_grad=True)
    x = torch.randn(4, max(c["in_channels"] for c in combos), 8, 8, device=device)

    def mixed() -> torch.Tensor:
        return sliced.mixed_forward(x, combinations=combos, weights=torch.softmax(logits, 0))

    def outputs() -> torch.Tensor:
        weights, total = torch.softmax(logits, 0), None
        for w, c in zip(weights, combos):
            out = sliced.sliced_forward(x[:, : c["in_channels"]], **c)
            out = torch.nn.functional.pad(out, (0, 0, 0, 0, 0, x.shape[1] - out.shape[1])) * w
            total = out if total is None else total + out
        assert total is not None
        return total

    largest = {leaf.label: leaf.grid()[-1] for leaf in leaves}
    sliced.bind(dict(largest))
    plain = sliced.export_layer(largest)

    def timed(fn: Callable[[], torch.Tensor]) -> Callable[[], float]:
        def run() -> float:
            logits.grad = None
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            fn().sum().backward()
            if device.type == "cuda":
                torch.cuda.synchronize()
            return time.perf_counter() - start

        return run

    weights_s, outputs_s = compare(timed(mixed), timed(outputs), runs)
    plain_s = compare(timed(lambda: plain(x)), timed(lambda: plain(x)), runs)[0]
    print(
        f"\nmixing all {len(combos)} configurations (batch 4x8x8, forward+backward): weights {weights_s * 1e3:.3f} ms, "
        f"outputs {outputs_s * 1e3:.3f} ms ({outputs_s / weights_s:.1f}x slower), the largest plain layer alone "
        f"{plain_s * 1e3:.3f} ms (weights form {weights_s / plain_s:.2f}x it)"
    )


if __name__ == "__main__":
    main()

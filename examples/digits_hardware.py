"""Hardware-aware search on scikit-learn's digits.

1. The best digits CNN under a FLOPs budget: ``FlopsProfiler(space, x) <= budget``
   is a constraint of the search, so regularized evolution never trains a model
   over it.
2. The accuracy/latency front: a ``LatencyProfiler`` (a lookup table timed on this
   CPU, one thread) is an objective next to accuracy, computed in the driver with
   no training; NSGA-II searches the trade-off and the front is plotted as text.

Run: ``.venv/bin/python examples/digits_hardware.py [TRIALS] [EPOCHS]``.
"""

from __future__ import annotations

import sys
import tempfile

import digits_pareto
import torch
from digits_pareto import train_and_score
from digits_search import DigitsNet

from archsmith import strategy
from archsmith.evaluator import FunctionalEvaluator
from archsmith.experiment import Experiment, ExperimentConfig
from archsmith.profiler import FlopsProfiler, LatencyProfiler

EXAMPLE_INPUT = torch.zeros(1, 1, 8, 8)  # one 8x8 digit: the costs of answering one query


def accuracy(model: torch.nn.Module) -> dict[str, float]:
    """Validation accuracy after a few epochs (``train_and_score`` also counts
    parameters; the costs here come from profilers)."""
    return {"accuracy": train_and_score(model)["accuracy"]}


def best_under_flops(trials: int, workdir: str) -> None:
    space = DigitsNet(search_dropout=False)
    flops = FlopsProfiler(space, EXAMPLE_INPUT)
    costs = sorted(flops.profile(s) for s in (space.random(i) for i in range(200)))
    budget = costs[len(costs) // 3]  # a third of the space fits
    print(f"FLOPs (MACs) of the space: {costs[0]:,.0f} .. {costs[-1]:,.0f}; budget {budget:,.0f}")
    config = ExperimentConfig(
        max_trials=trials,
        engine="inprocess",
        objective="accuracy",
        direction="maximize",
        constraints=[flops <= budget],
        profilers={"flops": flops},
        workdir=f"{workdir}/under-flops",
        seed=0,
    )
    experiment = Experiment(
        space, FunctionalEvaluator(accuracy), strategy.RegularizedEvolution(population_size=4), config
    )
    experiment.run()
    done = [t for t in experiment.trials() if t.status == "succeeded"]
    assert all(t.metric["flops"] <= budget for t in done), "a trial broke the FLOPs budget"
    best = max(done, key=lambda t: t.metric["accuracy"])
    print(f"best under {budget:,.0f} MACs: accuracy {best.metric['accuracy']:.4f} at {best.metric['flops']:,.0f} MACs")
    print(f"  {best.sample}")


def plot(points: list[tuple[float, float]], front: list[tuple[float, float]], width: int = 60, height: int = 14) -> str:
    """A text scatter plot: latency (x) against accuracy (y); ``*`` on the front."""
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    grid = [[" "] * width for _ in range(height)]
    for mark, group in ((".", points), ("*", front)):
        for x, y in group:
            col = round((x - x0) / ((x1 - x0) or 1) * (width - 1))
            row = height - 1 - round((y - y0) / ((y1 - y0) or 1) * (height - 1))
            grid[row][col] = mark
    lines = [f"{y1:6.3f} |" + "".join(grid[0])]
    lines += ["       |" + "".join(row) for row in grid[1:-1]]
    lines += [f"{y0:6.3f} |" + "".join(grid[-1]), "       +" + "-" * width]
    lines.append(f"        {x0 * 1000:.1f} us{' ' * (width - 22)}{x1 * 1000:.1f} us  (latency)")
    return "\n".join(lines)


def accuracy_latency_front(trials: int, workdir: str) -> None:
    space = DigitsNet(search_dropout=False)
    latency = LatencyProfiler(space, EXAMPLE_INPUT, repeats=5, seed=0)
    config = ExperimentConfig(
        max_trials=trials,
        engine="inprocess",
        objective={"accuracy": "maximize", "latency": "minimize"},
        profilers={"latency": latency},
        workdir=f"{workdir}/front",
        seed=0,
    )
    experiment = Experiment(space, FunctionalEvaluator(accuracy), strategy.NSGAII(population_size=4), config)
    experiment.run()
    done = [t for t in experiment.trials() if t.status == "succeeded"]
    front = [t for t in done if t.sample in experiment.pareto_front()]
    print(f"\naccuracy/latency front ({len(front)} of {len(done)} trials; latency predicted from the table):")
    for trial in sorted(front, key=lambda t: t.metric["latency"]):
        print(f"  {trial.metric['accuracy']:.4f}  {trial.metric['latency'] * 1000:7.1f} us  {trial.sample}")
    print(
        plot(
            [(t.metric["latency"], t.metric["accuracy"]) for t in done],
            [(t.metric["latency"], t.metric["accuracy"]) for t in front],
        )
    )


def main(trials: int = 16, epochs: int = 3) -> None:
    digits_pareto.EPOCHS = epochs
    torch.set_num_threads(1)  # the latency table is timed on one thread
    with tempfile.TemporaryDirectory() as workdir:
        best_under_flops(trials, workdir)
        accuracy_latency_front(trials, workdir)


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))

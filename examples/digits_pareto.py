"""Two objectives on scikit-learn's digits: validation accuracy (maximize) and
parameter count (minimize), searched with NSGA-II; prints the Pareto front.

Run: ``.venv/bin/python examples/digits_pareto.py [TRIALS] [EPOCHS]``.
"""

from __future__ import annotations

import sys
import tempfile

import torch
from digits_search import DigitsNet, digits_loaders

from archsmith import strategy
from archsmith.evaluator import FunctionalEvaluator
from archsmith.experiment import Experiment, ExperimentConfig

EPOCHS = 3


def train_and_score(model: torch.nn.Module) -> dict[str, float]:
    """A few epochs of Adam; the validation accuracy and the model's size."""
    torch.manual_seed(0)
    train, val = digits_loaders()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(EPOCHS):
        model.train()
        for x, y in train:
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            optimizer.step()
    model.eval()
    with torch.no_grad():
        right = sum(int((model(x).argmax(1) == y).sum()) for x, y in val)
    return {"accuracy": right / len(val.dataset), "params": float(sum(p.numel() for p in model.parameters()))}


def main(trials: int = 24, epochs: int = 3) -> None:
    global EPOCHS
    EPOCHS = epochs
    with tempfile.TemporaryDirectory() as workdir:
        config = ExperimentConfig(
            max_trials=trials,
            concurrency=2,
            engine="inprocess",
            objective={"accuracy": "maximize", "params": "minimize"},
            workdir=workdir,
            seed=0,
        )
        experiment = Experiment(
            DigitsNet(), FunctionalEvaluator(train_and_score), strategy.NSGAII(population_size=8), config
        )
        experiment.run()
        front = [t for t in experiment.trials() if t.sample in experiment.pareto_front()]
    print(f"\nPareto front ({len(front)} of {trials} trials): accuracy up, parameters down")
    for trial in sorted(front, key=lambda t: t.values[1]):  # type: ignore[index]
        acc, params = trial.values  # type: ignore[misc]
        print(f"  {acc:.4f}  {int(params):>7,} params  {trial.sample}")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))

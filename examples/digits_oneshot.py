"""One-shot search on scikit-learn's digits: the CNN space of ``digits_search.py``
(dropout fixed) trained as one supernet by DARTS (or ``enas``, ``spos``,
``gumbel``), then the best architecture read off it, frozen with the supernet's
weights, and scored on the validation data.

Run: ``.venv/bin/python examples/digits_oneshot.py [darts|gumbel|enas|spos] [EPOCHS]``.
"""

from __future__ import annotations

import sys
import tempfile

import torch
from digits_search import DigitsNet, digits_loaders

from archsmith import strategy
from archsmith.evaluator import Classification
from archsmith.experiment import Experiment, ExperimentConfig

ALGORITHMS = {
    "darts": lambda: strategy.DARTS(arc_learning_rate=3e-2),
    "gumbel": lambda: strategy.GumbelDARTS(arc_learning_rate=3e-2),
    "enas": lambda: strategy.ENAS(ctrl_steps=50, ctrl_lr=1e-2),
    "spos": lambda: strategy.RandomOneShot(search_budget=40),
}


def accuracy(model: torch.nn.Module, loader: torch.utils.data.DataLoader) -> float:
    model.eval()
    with torch.no_grad():
        right = sum(int((model(x).argmax(1) == y).sum()) for x, y in loader)
    return right / len(loader.dataset)  # type: ignore[arg-type]


def main(algorithm: str = "darts", epochs: int = 8) -> None:
    train, val = digits_loaders()
    space = DigitsNet(search_dropout=False)
    evaluator = Classification(train_dataloaders=train, val_dataloaders=val, max_epochs=epochs, learning_rate=3e-3)
    with tempfile.TemporaryDirectory() as workdir:
        experiment = Experiment(space, evaluator, ALGORITHMS[algorithm](), ExperimentConfig(workdir=workdir, seed=0))
        print(f"{algorithm}: one supernet for {space.size():,} architectures, {epochs} epochs")
        experiment.run()
        ranking = experiment.export_top_models(3)
    print("\ntop 3:")
    for rank, sample in enumerate(ranking, 1):
        print(f"  {rank}. {sample}")
    model = space.freeze(ranking[0], weights_from=experiment.supernet)
    print(f"best, with the supernet's weights: validation accuracy {accuracy(model, val):.4f}")


if __name__ == "__main__":
    main(*sys.argv[1:2], *(int(a) for a in sys.argv[2:3]))

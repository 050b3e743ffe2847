"""The main job: a real architecture search on scikit-learn's digits.

A CNN model space (width, depth, the op of each block, dropout, learning rate) is
searched with random search: 12 trials, 2 at a time in worker processes, each
trained with Lightning. A live view shows progress; the best architecture and its
validation accuracy are printed at the end, and the experiment stays on disk for
``archsmith show``.

Run with ``make demo`` (or ``.venv/bin/python examples/digits_search.py``).
"""

from __future__ import annotations

import sys
import time

import torch
from sklearn.datasets import load_digits
from torch.utils.data import DataLoader, TensorDataset

import archsmith.nn as nn
from archsmith import strategy
from archsmith.evaluator import Classification
from archsmith.experiment import Experiment, ExperimentConfig


def digits_loaders(seed: int = 0, batch_size: int = 64) -> tuple[DataLoader, DataLoader]:
    """Train/validation loaders over the 1,797 8x8 digits (80/20 split)."""
    digits = load_digits()
    images = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
    labels = torch.tensor(digits.target, dtype=torch.long)
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    cut = int(0.8 * len(labels))
    train, val = order[:cut], order[cut:]
    return (
        DataLoader(TensorDataset(images[train], labels[train]), batch_size, shuffle=True),
        DataLoader(TensorDataset(images[val], labels[val]), 256),
    )


class DigitsNet(nn.ModelSpace):
    """A small CNN space for 8x8 one-channel images (``search_dropout=False`` fixes
    the dropout, for one-shot search, which cannot share weights across it)."""

    def __init__(self, num_classes: int = 10, search_dropout: bool = True) -> None:
        super().__init__()
        width = nn.ValueChoice([16, 32, 48], label="width")
        self.stem = nn.Sequential(nn.Conv2d(1, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU())
        self.body = nn.Repeat(
            lambda i: nn.LayerChoice(
                {
                    "conv3": lambda: nn.Sequential(nn.Conv2d(width, width, 3, padding=1), nn.ReLU()),
                    "conv5": lambda: nn.Sequential(nn.Conv2d(width, width, 5, padding=2), nn.ReLU()),
                    "sepconv": lambda: nn.Sequential(
                        nn.Conv2d(width, width, 3, padding=1, groups=width), nn.Conv2d(width, width, 1), nn.ReLU()
                    ),
                    "skip": nn.Identity,
                },
                label=f"block{i}",
            ),
            depth=(1, 3),
            label="depth",
        )
        self.pool = nn.LayerChoice({"avg": nn.AdaptiveAvgPool2d(1), "max": nn.AdaptiveMaxPool2d(1)}, label="pool")
        self.drop = nn.Dropout(nn.ValueChoice([0.0, 0.2], label="dropout") if search_dropout else 0.0)
        self.head = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.body(self.stem(x))).flatten(1)
        return self.head(self.drop(x))


def main(trials: int = 12, epochs: int = 6) -> None:
    train, val = digits_loaders()
    evaluator = Classification(
        learning_rate=nn.ValueChoice([1e-3, 3e-3, 1e-2], label="lr"),
        train_dataloaders=train,
        val_dataloaders=val,
        max_epochs=epochs,
        num_classes=10,
        seed=0,
    )
    name = time.strftime("digits-%Y%m%d-%H%M%S")
    config = ExperimentConfig(
        max_trials=trials, concurrency=2, name=name, seed=0, objective="val_acc", direction="maximize"
    )
    experiment = Experiment(DigitsNet(), evaluator, strategy.Random(dedup=True), config)
    print(f"searching {experiment.search_space.size():,} architectures x learning rates, {trials} trials, 2 workers")
    experiment.run()
    best = experiment.trials()
    top = max((t for t in best if t.objective is not None), key=lambda t: t.objective or 0.0, default=None)
    if top is None:
        sys.exit("no trial succeeded")
    print(f"\nbest architecture (trial {top.id}): {top.sample}")
    print(f"validation accuracy: {top.objective:.4f}")
    model = experiment.export_top_models(1, formatter="instance")[0]
    print(f"frozen model: {sum(p.numel() for p in model.parameters()):,} parameters")
    print(f"inspect it with: archsmith show {experiment.directory}")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))

"""The main job until the experiment runner lands: build a model space, show its
decisions and size, then sample, freeze and run three architectures.

Run with ``make demo`` (or ``.venv/bin/python examples/demo_space.py``).
"""

from __future__ import annotations

import textwrap

import torch

import archsmith
import archsmith.nn as nn


class DigitsNet(nn.ModelSpace):
    """A small CNN space for 8x8 one-channel images (scikit-learn's digits)."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        width = nn.ValueChoice([16, 32, 48], label="width")
        self.stem = nn.Sequential(nn.Conv2d(1, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU())
        self.body = nn.Repeat(
            lambda i: nn.LayerChoice(
                {
                    "conv3": lambda: nn.Conv2d(width, width, 3, padding=1),
                    "conv5": lambda: nn.Conv2d(width, width, 5, padding=2),
                    "sepconv": lambda: nn.Sequential(
                        nn.Conv2d(width, width, 3, padding=1, groups=width), nn.Conv2d(width, width, 1)
                    ),
                    "skip": nn.Identity,
                },
                label=f"block{i}_op",
            ),
            depth=(1, 3),
            label="depth",
        )
        self.act = nn.AutoActivation(label="act")
        self.drop = nn.Dropout(nn.ValueChoice([0.0, 0.25, 0.5], label="dropout"))
        self.head = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.body(self.stem(x)))
        return self.head(self.drop(x.mean((2, 3))))


def main() -> None:
    space = DigitsNet()
    print(f"archsmith {archsmith.__version__}: model space {type(space).__name__}")
    print(f"{len(space.search_space)} decisions, {space.size():,} architectures:")
    for label, leaf in space.search_space.items():
        print(f"  {label:<16} {textwrap.shorten(leaf.describe(), 90)}")
    images = torch.randn(4, 1, 8, 8)
    for seed in range(3):
        sample = space.random(seed=seed)
        model = space.freeze(sample)
        params = sum(p.numel() for p in model.parameters())
        logits = model(images)
        print(f"\nsample {seed}: {sample}")
        print(f"  frozen: {params:,} parameters, output {tuple(logits.shape)}")


if __name__ == "__main__":
    main()

"""NNI's documented mutator examples, rewritten for archsmith, on tiny models.

- ``BlockMutator``: fills a ``Placeholder`` with a conv whose kernel is a decision
  (NNI's "mutator on placeholders" example).
- ``ConvReplacer``: replaces every 3x3 conv by one of several ops (op replacement by
  module type).
- ``SkipInserter``: decides, per block, whether to add a skip connection around it.
"""

from __future__ import annotations

import sys

import cloudpickle
import torch
import torch.nn.functional as F

import archsmith.nn as nn

cloudpickle.register_pickle_by_value(sys.modules[__name__])  # worker processes get these classes by value


class MnistNet(torch.nn.Module):
    """NNI's mnist base model at 8x8, with two placeholders for ``BlockMutator``."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = torch.nn.Conv2d(1, 4, 3, padding=1)
        self.block1 = nn.Placeholder("block1", in_channels=4, out_channels=8, kernel_size=[1, 3, 5])
        self.block2 = nn.Placeholder("block2", in_channels=8, out_channels=8, kernel_size=[1, 3])
        self.fc = torch.nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.conv1(x))
        x = F.relu(self.block1(x))
        x = self.block2(x)
        return self.fc(x.mean((2, 3)))


class BlockMutator(nn.Mutator):
    """NNI's example: the placeholder becomes a conv whose kernel size is searched."""

    def __init__(self, target: str) -> None:
        super().__init__()
        self.target = target

    def mutate(self, graph: nn.MutableGraph) -> None:
        nodes = graph.get_nodes_by_label(self.target)
        assert len(nodes) == 1
        node = nodes[0]
        info = node.info
        kernel_size = self.choice(info["kernel_size"])
        node.replace(torch.nn.Conv2d(info["in_channels"], info["out_channels"], kernel_size, padding=kernel_size // 2))


BUILT: list[str] = []  # what the factories built, to check unchosen candidates are never built


class Conv5(torch.nn.Conv2d):
    def __init__(self, c_in: int, c_out: int) -> None:
        BUILT.append("Conv5")
        super().__init__(c_in, c_out, 5, padding=2)


class SepConv(torch.nn.Sequential):
    def __init__(self, c_in: int, c_out: int) -> None:
        BUILT.append("SepConv")
        super().__init__(torch.nn.Conv2d(c_in, c_in, 3, padding=1, groups=c_in), torch.nn.Conv2d(c_in, c_out, 1))


class ConvReplacer(nn.Mutator):
    """Every 3x3 conv becomes a 3x3 conv, a 5x5 conv or a separable conv (classes:
    only the chosen one is built)."""

    def mutate(self, graph: nn.MutableGraph) -> None:
        for node in graph.get_nodes_by_type(torch.nn.Conv2d):
            conv = node.module
            assert isinstance(conv, torch.nn.Conv2d)
            if conv.kernel_size != (3, 3):
                continue
            op = self.choice(["conv3", "conv5", "sep"])
            if op == "conv3":
                continue
            factory = Conv5 if op == "conv5" else SepConv
            node.replace(lambda f=factory, c=conv: f(c.in_channels, c.out_channels))


class ResNetish(torch.nn.Module):
    """Three blocks of the same width: a skip may go around any of them."""

    def __init__(self, width: int = 4) -> None:
        super().__init__()
        self.stem = torch.nn.Conv2d(1, width, 3, padding=1)
        self.blocks = torch.nn.ModuleList(
            torch.nn.Sequential(torch.nn.Conv2d(width, width, 3, padding=1), torch.nn.ReLU()) for _ in range(3)
        )
        self.head = torch.nn.Linear(width, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for block in self.blocks:
            x = block(x)
        return self.head(x.mean((2, 3)))


class SkipInserter(nn.Mutator):
    """Per block (the ReLU that ends it), whether to add its input to its output."""

    def mutate(self, graph: nn.MutableGraph) -> None:
        for i, end in enumerate(graph.get_nodes_by_name(r"blocks\.\d+\.1")):
            start = graph.get_node_by_name(f"blocks.{i}.0")
            assert start is not None
            if self.choice([False, True], label=f"skip_{i}"):
                end.add_skip(start.inputs[0])

"""``NasBench201Space``: the network of NAS-Bench-201 (Dong & Yang, ICLR 2020).

Stem (conv 3x3 + BN), three stages of ``cells_per_stage`` cells (``channels``,
x2, x4) with a residual reduction block between stages, BN + ReLU, global average
pooling and a linear classifier. Every cell is a :class:`~archsmith.nn.NasBench201Cell`
with the same label, so one cell decision (6 edges x 5 operations = 15,625
samples) applies to all of them, as in the benchmark. Operations use the
benchmark's ReLU-Conv-BN ordering.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

import archsmith.nn as nn

from ._table import DEFAULT_LABEL, OPS, sample_to_string, string_to_sample


class ReLUConvBN(torch.nn.Sequential):
    """ReLU, convolution (no bias), batch norm: NB201's convolution block."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int, stride: int = 1, padding: int = 0) -> None:
        super().__init__(
            torch.nn.ReLU(inplace=False),
            torch.nn.Conv2d(c_in, c_out, kernel_size, stride=stride, padding=padding, bias=False),
            torch.nn.BatchNorm2d(c_out),
        )


class Zero(torch.nn.Module):
    """The ``none`` operation: a zero tensor of the output's shape."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.c_in, self.c_out = c_in, c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.c_in == self.c_out:
            return x.mul(0.0)
        shape = list(x.shape)
        shape[1] = self.c_out
        return x.new_zeros(shape)


class AvgPool(torch.nn.Module):
    """3x3 average pooling (padding not counted), after a 1x1 ReLU-Conv-BN if the
    channel count changes."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.preprocess = ReLUConvBN(c_in, c_out, 1) if c_in != c_out else None
        self.pool = torch.nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.preprocess(x) if self.preprocess is not None else x)


def none(c_in: int, c_out: int) -> torch.nn.Module:
    return Zero(c_in, c_out)


def skip_connect(c_in: int, c_out: int) -> torch.nn.Module:
    return torch.nn.Identity() if c_in == c_out else ReLUConvBN(c_in, c_out, 1)


def nor_conv_1x1(c_in: int, c_out: int) -> torch.nn.Module:
    return ReLUConvBN(c_in, c_out, 1)


def nor_conv_3x3(c_in: int, c_out: int) -> torch.nn.Module:
    return ReLUConvBN(c_in, c_out, 3, padding=1)


def avg_pool_3x3(c_in: int, c_out: int) -> torch.nn.Module:
    return AvgPool(c_in, c_out)


OP_FACTORIES = {
    "none": none,
    "skip_connect": skip_connect,
    "nor_conv_1x1": nor_conv_1x1,
    "nor_conv_3x3": nor_conv_3x3,
    "avg_pool_3x3": avg_pool_3x3,
}
assert tuple(OP_FACTORIES) == OPS


class ResidualReduction(torch.nn.Module):
    """NB201's reduction block: a stride-2 ResNet basic block (two ReLU-Conv-BN 3x3)
    with an average-pool + 1x1 conv shortcut."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, stride=2, padding=1)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, padding=1)
        self.downsample = torch.nn.Sequential(
            torch.nn.AvgPool2d(kernel_size=2, stride=2, padding=0),
            torch.nn.Conv2d(c_in, c_out, 1, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(x) + self.conv_b(self.conv_a(x))


class NasBench201Space(nn.ModelSpace):
    """The NB201 network; its search space is the six edges of one cell.

    >>> space = NasBench201Space()
    >>> space.size()
    15625
    >>> s = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
    >>> space.sample_to_string(space.string_to_sample(s)) == s
    True
    """

    label = DEFAULT_LABEL

    def __init__(self, num_classes: int = 10, channels: int = 16, cells_per_stage: int = 5) -> None:
        super().__init__()
        self.stem = torch.nn.Sequential(
            torch.nn.Conv2d(3, channels, 3, padding=1, bias=False), torch.nn.BatchNorm2d(channels)
        )
        layers: list[torch.nn.Module] = []
        c_prev = channels
        for stage in range(3):
            c = channels * 2**stage
            if stage > 0:
                layers.append(ResidualReduction(c_prev, c))
            for _ in range(cells_per_stage):
                layers.append(nn.NasBench201Cell(OP_FACTORIES, c, c, num_tensors=4, label=DEFAULT_LABEL))
            c_prev = c
        self.cells = torch.nn.ModuleList(layers)
        self.lastact = torch.nn.Sequential(torch.nn.BatchNorm2d(c_prev), torch.nn.ReLU(inplace=True))
        self.global_pooling = torch.nn.AdaptiveAvgPool2d(1)
        self.classifier = torch.nn.Linear(c_prev, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for cell in self.cells:
            x = cell(x)
        x = self.global_pooling(self.lastact(x))
        return self.classifier(x.flatten(1))

    @classmethod
    def sample_to_string(cls, sample: Mapping[str, Any]) -> str:
        """The NB201 string of a sample of this space."""
        return sample_to_string(sample, cls.label)

    @classmethod
    def string_to_sample(cls, arch: str) -> dict[str, str]:
        """The sample of this space for an NB201 string (exact inverse of
        :meth:`sample_to_string`; isomorphic cells stay distinct)."""
        return string_to_sample(arch, cls.label)

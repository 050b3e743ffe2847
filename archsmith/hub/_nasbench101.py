"""The NAS-Bench-101 space (Ying et al., *NAS-Bench-101: Towards Reproducible Neural
Architecture Search*, ICML 2019, http://proceedings.mlr.press/v97/ying19a/ying19a.pdf):
a stem, ``num_stacks`` stacks of ``num_modules_per_stack`` cells (a 2x2 max-pool and
doubled widths between stacks), global pooling and a linear classifier.

Arguments and labels follow NNI 3.0's ``nni.nas.hub.pytorch.NasBench101``: every cell
shares one set of decisions under the label ``cell`` (``cell/num_nodes``,
``cell/op{j}``, ``cell/input{j}``), so an NNI sample loads unchanged.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch

import archsmith.nn as nn

from ._base import HubError, HubSpace, SearchedModel, register_space

#: The three ops of NAS-Bench-101, with NNI's names.
OP_NAMES = ("conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3")


class ConvBNReLU(torch.nn.Sequential):
    """Conv (no bias), BN, ReLU, with the original code's initialisation: weights
    from a normal of std ``1 / sqrt(fan_in)`` truncated at two std, BN at (1, 0)."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int = 1) -> None:
        conv = torch.nn.Conv2d(c_in, c_out, kernel_size, padding=kernel_size // 2, bias=False)
        std = math.sqrt(1.0 / (kernel_size * kernel_size * c_in))
        torch.nn.init.trunc_normal_(conv.weight, std=std, a=-2 * std, b=2 * std)
        super().__init__(conv, torch.nn.BatchNorm2d(c_out), torch.nn.ReLU(inplace=True))


def _conv3x3(channels: int) -> torch.nn.Module:
    return ConvBNReLU(channels, channels, 3)


def _conv1x1(channels: int) -> torch.nn.Module:
    return ConvBNReLU(channels, channels, 1)


def _maxpool3x3(channels: int) -> torch.nn.Module:
    return torch.nn.MaxPool2d(3, stride=1, padding=1)


def _projection(c_in: int, c_out: int) -> torch.nn.Module:
    return ConvBNReLU(c_in, c_out, 1)


def _check_positive(name: str, value: Any, low: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise HubError(f"NasBench101: {name} must be an int >= {low}, got {value!r}")


@register_space("nasbench101")
class NasBench101(HubSpace):
    """The NAS-Bench-101 space, with NNI 3.0's arguments and labels.

    ``stem_out_channels``: width of the 3x3 stem and of the first stack;
    ``num_stacks`` stacks of ``num_modules_per_stack`` cells, each stack after the
    first halving the resolution and doubling the width; ``max_num_vertices`` and
    ``max_num_edges`` bound each cell's graph (input and output vertices counted);
    ``bn_eps``/``bn_momentum`` set every BN (the paper's TensorFlow values).

    >>> space = NasBench101(stem_out_channels=8, num_stacks=2, num_modules_per_stack=1)
    >>> sorted(space.search_space)[:3]
    ['cell/input1', 'cell/input2', 'cell/input3']
    >>> space.freeze(space.random(seed=0))(torch.zeros(2, 3, 32, 32)).shape
    torch.Size([2, 10])
    """

    # No published model: NAS-Bench-101's best cells are in its table (not shipped, and
    # no parameter count is stated in the paper), and NNI ships none either.
    searched_models: ClassVar[dict[str, SearchedModel]] = {}
    reduced_kwargs: ClassVar[dict[str, Any]] = {
        "stem_out_channels": 8,
        "num_stacks": 2,
        "num_modules_per_stack": 1,
        "num_labels": 10,
    }

    def __init__(
        self,
        stem_out_channels: int = 128,
        num_stacks: int = 3,
        num_modules_per_stack: int = 3,
        max_num_vertices: int = 7,
        max_num_edges: int = 9,
        num_labels: int = 10,
        bn_eps: float = 1e-5,
        bn_momentum: float = 0.003,
    ) -> None:
        super().__init__()
        _check_positive("stem_out_channels", stem_out_channels)
        _check_positive("num_stacks", num_stacks)
        _check_positive("num_modules_per_stack", num_modules_per_stack)
        _check_positive("max_num_vertices", max_num_vertices, 2)
        _check_positive("max_num_edges", max_num_edges)
        _check_positive("num_labels", num_labels)
        self.num_labels = num_labels
        op_candidates = dict(zip(OP_NAMES, (_conv3x3, _conv1x1, _maxpool3x3)))

        self.stem_conv = ConvBNReLU(3, stem_out_channels, 3)
        layers: list[torch.nn.Module] = []
        in_channels = out_channels = stem_out_channels
        for stack in range(num_stacks):
            if stack > 0:
                layers.append(torch.nn.MaxPool2d(kernel_size=2, stride=2))
                out_channels *= 2
            for _ in range(num_modules_per_stack):
                # One label for all cells: they share their decisions, as in the benchmark.
                cell = nn.NasBench101Cell(
                    op_candidates, in_channels, out_channels, _projection, max_num_vertices, max_num_edges, label="cell"
                )
                layers.append(cell)
                in_channels = out_channels
        self.features = torch.nn.ModuleList(layers)
        self.gap = torch.nn.AdaptiveAvgPool2d(1)
        self.classifier = torch.nn.Linear(out_channels, num_labels)
        for module in self.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.eps, module.momentum = bn_eps, bn_momentum

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.stem_conv(x)
        for layer in self.features:
            out = layer(out)
        return self.classifier(self.gap(out).flatten(1))  # type: ignore[no-any-return]

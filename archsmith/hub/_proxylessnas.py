"""ProxylessNAS (Cai, Zhu & Han, ICLR 2019, https://arxiv.org/abs/1812.00332).

MobileNetV2-style network: a fixed stem and first block, then six searched stages
whose blocks each choose an inverted residual (kernel 3/5/7 x expansion 3/6), the
first five stages also choosing their depth (1-4 blocks). Arguments and labels
follow NNI 3.0's ``nni.nas.hub.pytorch.ProxylessNAS`` (``s2_depth``,
``s2_i0`` = ``"k5e3"``, ...), so an NNI sample loads unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import torch

import archsmith.nn as nn
from archsmith.space import contains_mutable

from ._base import HubError, HubSpace, SearchedModel, register_space

KERNEL_SIZES = (3, 5, 7)
EXPAND_RATIOS = (3, 6)
# Stride 2 at the start of stages 1, 3, 4, 5 and 7 (index 0 is the stem's output).
_DOWNSAMPLES = (True, False, True, True, True, False, True, False)


def conv_bn(
    c_in: Any,
    c_out: Any,
    kernel_size: Any,
    stride: int = 1,
    groups: Any = 1,
    activation: type[torch.nn.Module] | None = torch.nn.ReLU6,
    bn: tuple[float, float] | None = (1e-3, 0.1),
) -> torch.nn.Sequential:
    """Convolution, batch norm (``bn=(eps, momentum)``; None: no norm, the conv gets
    a bias instead) and ``activation`` (None: linear). Widths and kernel may be choices."""
    layers: list[torch.nn.Module] = [
        nn.Conv2d(c_in, c_out, kernel_size, stride, (kernel_size - 1) // 2, groups=groups, bias=bn is None)
    ]
    if bn is not None:
        layers.append(nn.BatchNorm2d(c_out, eps=bn[0], momentum=bn[1]))
    if activation is not None:
        layers.append(activation(inplace=True))
    return torch.nn.Sequential(*layers)


def _has_skip(c_in: Any, c_out: Any, stride: int) -> bool:
    # With choices, only the very same width object is known to match (as in NNI);
    # two equal-looking expressions may still resolve differently.
    same = c_in is c_out if contains_mutable(c_in) or contains_mutable(c_out) else c_in == c_out
    return stride == 1 and bool(same)


class _Residual(torch.nn.Sequential):
    """A sequence of layers, added to its input when shapes allow (stride 1, same width)."""

    def __init__(self, layers: Sequence[torch.nn.Module], has_skip: bool) -> None:
        super().__init__(*layers)
        self.has_skip = has_skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = super().forward(x)
        return x + out if self.has_skip else out


SqueezeExciteFactory = Callable[[Any, Any], torch.nn.Module]


class DepthwiseSeparableConv(_Residual):
    """Depthwise conv-BN-act, optional squeeze-excite, pointwise conv-BN
    (MobileNetV2's block with expansion 1)."""

    def __init__(
        self,
        c_in: Any,
        c_out: Any,
        kernel_size: Any = 3,
        stride: int = 1,
        bn: tuple[float, float] = (1e-3, 0.1),
        squeeze_excite: SqueezeExciteFactory | None = None,
        activation: type[torch.nn.Module] = torch.nn.ReLU6,
    ) -> None:
        layers = [*conv_bn(c_in, c_in, kernel_size, stride, groups=c_in, activation=activation, bn=bn)]
        if squeeze_excite is not None:
            layers.append(squeeze_excite(c_in, c_in))
        layers += conv_bn(c_in, c_out, 1, activation=None, bn=bn)
        super().__init__(layers, has_skip=_has_skip(c_in, c_out, stride))


class InvertedResidual(_Residual):
    """MBConv: pointwise expansion, depthwise ``kernel_size`` conv, optional
    squeeze-excite (built from (hidden, input) widths), pointwise projection.

    >>> block = InvertedResidual(16, 16, expand_ratio=6, kernel_size=5)
    >>> block(torch.zeros(1, 16, 8, 8)).shape
    torch.Size([1, 16, 8, 8])
    """

    def __init__(
        self,
        c_in: Any,
        c_out: Any,
        expand_ratio: Any,
        kernel_size: Any = 3,
        stride: int = 1,
        bn: tuple[float, float] = (1e-3, 0.1),
        squeeze_excite: SqueezeExciteFactory | None = None,
        activation: type[torch.nn.Module] = torch.nn.ReLU6,
    ) -> None:
        hidden = nn.make_divisible(c_in * expand_ratio, 8)
        layers = [
            *conv_bn(c_in, hidden, 1, activation=activation, bn=bn),
            *conv_bn(hidden, hidden, kernel_size, stride, groups=hidden, activation=activation, bn=bn),
        ]
        if squeeze_excite is not None:
            layers.append(squeeze_excite(hidden, c_in))
        layers += conv_bn(hidden, c_out, 1, activation=None, bn=bn)
        super().__init__(layers, has_skip=_has_skip(c_in, c_out, stride))


def _stage_block(
    stage: int, c_in: int, c_out: int, downsample: bool, bn: tuple[float, float]
) -> Callable[[int], nn.LayerChoice]:
    """The factory of block ``index`` of a stage: only the first block changes width
    and stride. Candidates are factories so that freezing builds the chosen one only."""

    def block(index: int) -> nn.LayerChoice:
        first = index == 0
        inp, stride = (c_in, 2 if downsample else 1) if first else (c_out, 1)
        candidates = {
            f"k{k}e{e}": (lambda k=k, e=e: InvertedResidual(inp, c_out, e, k, stride, bn))
            for e in EXPAND_RATIOS
            for k in KERNEL_SIZES
        }
        # One LayerChoice over all (kernel, expansion) pairs, as the official ProxylessNAS
        # (and NNI) do: in weight sharing each pair is its own path.
        return nn.LayerChoice(candidates, label=f"s{stage}_i{index}")

    return block


@register_space("proxylessnas")
class ProxylessNAS(HubSpace):
    """The ProxylessNAS space, with NNI 3.0's arguments and labels.

    ``base_widths``: 9 widths (stem, first block, the six searched stages, the
    feature-mix layer), each scaled by ``width_mult`` and rounded to a multiple of 8.

    >>> space = ProxylessNAS(num_labels=10, base_widths=(8, 8, 8, 8, 8, 8, 8, 8, 16))
    >>> sorted(space.search_space)[:3]
    ['s2_depth', 's2_i0', 's2_i1']
    >>> model = space.freeze(space.random(seed=0))
    >>> model(torch.zeros(2, 3, 32, 32)).shape
    torch.Size([2, 10])
    """

    searched_models: ClassVar[dict[str, SearchedModel]] = {
        # Exact counts of the official architectures (mit-han-lab/proxylessnas net configs,
        # 1000 classes) as rebuilt and asserted in osmr/imgclsmob; usually cited as 4.1M / 7.1M / 4.4M.
        "proxyless-mobile": SearchedModel(
            "proxyless-mobile",
            4_080_512,
            "official proxyless_mobile config; exact count: osmr/imgclsmob proxylessnas_mobile (4.1M)",
        ),
        "proxyless-gpu": SearchedModel(
            "proxyless-gpu",
            7_119_848,
            "official proxyless_gpu config; exact count: osmr/imgclsmob proxylessnas_gpu (7.1M)",
            {"base_widths": (40, 24, 32, 56, 112, 128, 256, 432, 1728)},
        ),
        "proxyless-cpu": SearchedModel(
            "proxyless-cpu",
            4_361_648,
            "official proxyless_cpu config; exact count: osmr/imgclsmob proxylessnas_cpu (4.4M)",
            {"base_widths": (40, 24, 32, 48, 88, 104, 216, 360, 1432)},
        ),
    }
    reduced_kwargs: ClassVar[dict[str, object]] = {"num_labels": 10, "base_widths": (8, 8, 8, 8, 16, 16, 16, 16, 32)}

    def __init__(
        self,
        num_labels: int = 1000,
        base_widths: tuple[int, ...] = (32, 16, 32, 40, 80, 96, 192, 320, 1280),
        dropout_rate: float = 0.0,
        width_mult: float = 1.0,
        bn_eps: float = 1e-3,
        bn_momentum: float = 0.1,
    ) -> None:
        super().__init__()
        if len(base_widths) != 9:
            raise HubError(
                f"ProxylessNAS: base_widths needs 9 widths (stem, first block, 6 stages, head), got {len(base_widths)}"
            )
        widths = [nn.make_divisible(w * width_mult, 8) for w in base_widths]
        bn = (bn_eps, bn_momentum)
        self.num_labels = num_labels
        self.dropout_rate = dropout_rate
        self.bn_eps, self.bn_momentum = bn_eps, bn_momentum

        self.stem = conv_bn(3, widths[0], 3, stride=2, bn=bn)
        blocks: list[torch.nn.Module] = [DepthwiseSeparableConv(widths[0], widths[1], 3, 1, bn)]
        for stage in range(2, 8):
            block = _stage_block(stage, widths[stage - 1], widths[stage], _DOWNSAMPLES[stage], bn)
            # The last stage has a single, depth-fixed block (as in the paper and NNI).
            blocks.append(nn.Repeat(block, (1, 4), label=f"s{stage}_depth") if stage < 7 else block(0))
        self.blocks = torch.nn.Sequential(*blocks)
        self.feature_mix_layer = conv_bn(widths[7], widths[8], 1, bn=bn)
        self.global_avg_pooling = torch.nn.AdaptiveAvgPool2d(1)
        self.dropout_layer = torch.nn.Dropout(dropout_rate)
        self.classifier = torch.nn.Linear(widths[8], num_labels)
        _init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.feature_mix_layer(self.blocks(self.stem(x)))
        x = self.global_avg_pooling(x).flatten(1)
        return self.classifier(self.dropout_layer(x))


def _init_weights(model: torch.nn.Module) -> None:
    """The official initialisation: He (fan-out) convolutions, unit BN, small linear."""
    for m in model.modules():
        if isinstance(m, torch.nn.Conv2d):
            # From the weight's shape, not the layer's arguments: in a space they may be
            # choices, and the weight then has the largest candidate's shape.
            fan_out = m.weight.shape[0] * m.weight.shape[2] * m.weight.shape[3]
            torch.nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / fan_out))
        elif isinstance(m, torch.nn.BatchNorm2d):
            torch.nn.init.ones_(m.weight)
            torch.nn.init.zeros_(m.bias)
        elif isinstance(m, torch.nn.Linear):
            torch.nn.init.normal_(m.weight, 0.0, 0.01)
            if m.bias is not None:
                torch.nn.init.zeros_(m.bias)

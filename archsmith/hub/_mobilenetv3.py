"""MobileNetV3 space: the largest space of TuNAS (Bender et al., CVPR 2020,
https://arxiv.org/abs/2008.06120), which holds MobileNetV3 (Howard et al., ICCV 2019,
https://arxiv.org/abs/1905.02244).

Searched per stage: width multiplier, depth; per block: expansion ratio, kernel
size and (where ``squeeze_excite`` says ``optional``) a squeeze-excite layer.
Arguments and labels follow NNI 3.0's ``nni.nas.hub.pytorch.MobileNetV3Space``
(``stem_ks``, ``s0_i0_ks``, ``s1_depth``, ``s1_i0_exp``, ``s1_i0_ks``,
``s2_i0_se``, ``s3_width_mult``, ...).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Literal

import torch

import archsmith.nn as nn

from ._base import HubError, HubSpace, SearchedModel, register_space
from ._proxylessnas import DepthwiseSeparableConv, InvertedResidual, conv_bn

SqueezeExciteMode = Literal["force", "optional", "none"]
ActivationName = Literal["hswish", "swish", "relu"]

_ACTIVATIONS: dict[str, type[torch.nn.Module]] = {
    "hswish": torch.nn.Hardswish,
    "swish": torch.nn.SiLU,
    "relu": torch.nn.ReLU,
}


class SqueezeExcite(torch.nn.Module):
    """Squeeze-and-excite with a hard-sigmoid gate; the reduced width is a quarter,
    rounded to a multiple of 8 (as timm's MobileNetV3)."""

    def __init__(self, channels: Any, reduction_ratio: float = 0.25) -> None:
        super().__init__()
        reduced = nn.make_divisible(channels * reduction_ratio, 8)
        self.conv_reduce = nn.Conv2d(channels, reduced, 1, bias=True)
        self.act1 = torch.nn.ReLU(inplace=True)
        self.conv_expand = nn.Conv2d(reduced, channels, 1, bias=True)
        self.gate = torch.nn.Hardsigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.conv_expand(self.act1(self.conv_reduce(x.mean((2, 3), keepdim=True))))
        return x * self.gate(scale)


def _squeeze_excite(mode: str, from_expanded: bool, label: str) -> Callable[[Any, Any], torch.nn.Module] | None:
    """The SE factory of a block: (hidden, input) widths -> SE, an SE-or-identity choice, or none."""
    if mode == "none":
        return None

    def build(hidden: Any, inp: Any) -> torch.nn.Module:
        channels = hidden if from_expanded else inp
        if mode == "force":
            return SqueezeExcite(channels)
        return nn.LayerChoice(
            {"identity": torch.nn.Identity, "se": lambda: SqueezeExcite(channels)},
            label=label,
        )

    return build


def _activation(name: str) -> type[torch.nn.Module]:
    if name not in _ACTIVATIONS:
        raise HubError(f"MobileNetV3Space: unknown activation {name!r}; use one of {sorted(_ACTIVATIONS)}")
    return _ACTIVATIONS[name]


@register_space("mobilenetv3")
class MobileNetV3Space(HubSpace):
    """The TuNAS/MobileNetV3 space, with NNI 3.0's arguments and labels.

    ``base_widths``: stem, ``len(base_widths) - 4`` body stages, the two head
    layers (9 by default: ``num_blocks = 8``). ``width_multipliers``: a float
    (fixed) or candidates, one choice per stage (``s{i}_width_mult``; the stem
    shares stage 0's). ``squeeze_excite``: one of ``force``/``optional``/``none``
    per body stage (``num_blocks - 2``). ``depth_range``: (min, max) for every
    searched stage, or one pair per stage (``num_blocks - 3``).

    >>> space = MobileNetV3Space(num_labels=10, base_widths=(8,) * 7 + (16, 16), width_multipliers=1.0,
    ...                          expand_ratios=(1.0, 2.0), depth_range=(1, 2))
    >>> model = space.freeze(space.random(seed=0))
    >>> model(torch.zeros(2, 3, 32, 32)).shape
    torch.Size([2, 10])
    """

    searched_models: ClassVar[dict[str, SearchedModel]] = {
        "mobilenetv3-large-100": SearchedModel(
            "mobilenetv3-large-100",
            5_483_032,
            "MobileNetV3 paper Table 3: 5.4M; exact: torchvision mobilenet_v3_large num_params 5,483,032 (timm 5.5M)",
            {
                "base_widths": (16, 16, 24, 40, 80, 112, 160, 960, 1280),
                "expand_ratios": (1.0, 2.0, 2.3, 2.5, 3.0, 4.0, 6.0),
                "bn_eps": 1e-5,
                "width_multipliers": 1.0,
                "squeeze_excite": ("none", "none", "force", "none", "force", "force"),
            },
        ),
        "mobilenetv3-small-100": SearchedModel(
            "mobilenetv3-small-100",
            2_542_856,
            "MobileNetV3 paper Table 4: 2.5M; exact: torchvision mobilenet_v3_small num_params 2,542,856 (timm 2.5M)",
            {
                "base_widths": (16, 16, 24, 40, 48, 96, 576, 1024),
                "expand_ratios": (3.0, 3.67, 4.0, 4.5, 6.0),
                "bn_eps": 1e-5,
                "width_multipliers": 1.0,
                "squeeze_excite": ("force", "none", "force", "force", "force"),
                "activation": ("hswish", "relu", "relu", "hswish", "hswish", "hswish", "hswish", "hswish"),
                "stride": (2, 2, 2, 2, 1, 2, 1, 1),
                # NNI 3.0 passes (1, 2) here but its own sample has 3-block stages
                # (as MobileNetV3-Small does): (1, 3) makes the sample valid.
                "depth_range": (1, 3),
            },
        ),
    }
    reduced_kwargs: ClassVar[dict[str, Any]] = {
        "num_labels": 10,
        "base_widths": (8, 8, 8, 8, 8, 8, 8, 16, 16),
        "width_multipliers": (0.5, 1.0),
        "expand_ratios": (1.0, 2.0),
        "depth_range": (1, 2),
    }

    def __init__(
        self,
        num_labels: int = 1000,
        base_widths: tuple[int, ...] = (16, 16, 16, 32, 64, 128, 256, 512, 1024),
        width_multipliers: tuple[float, ...] | float = (0.5, 0.625, 0.75, 1.0, 1.25, 1.5, 2.0),
        expand_ratios: tuple[float, ...] = (1.0, 2.0, 3.0, 4.0, 5.0, 6.0),
        squeeze_excite: tuple[SqueezeExciteMode, ...] = ("none", "none", "optional", "none", "optional", "optional"),
        depth_range: Sequence[tuple[int, int]] | tuple[int, int] = (1, 4),
        stride: tuple[int, ...] = (2, 1, 2, 2, 2, 1, 2, 1, 1),
        activation: tuple[ActivationName, ...] = (
            "hswish",
            "relu",
            "relu",
            "relu",
            "hswish",
            "hswish",
            "hswish",
            "hswish",
            "hswish",
        ),
        se_from_exp: bool = True,
        dropout_rate: float = 0.2,
        bn_eps: float = 1e-3,
        bn_momentum: float = 0.1,
    ) -> None:
        super().__init__()
        num_blocks = len(base_widths) - 1
        self.num_blocks = num_blocks
        self._check(num_blocks, base_widths, stride, activation, squeeze_excite)
        self.depth_range = self._depth_ranges(depth_range, num_blocks)
        bn = (bn_eps, bn_momentum)

        widths: list[Any] = []
        for i, base in enumerate(base_widths):
            # A tuple is a choice per stage; the stem and stage 0 share one, as in TuNAS.
            mult = nn.maybe_choice(f"s{max(i - 1, 0)}_width_mult", width_multipliers)
            widths.append(nn.make_divisible(mult * base, 8))
        self.widths = widths
        self.expand_ratios = tuple(expand_ratios)
        self.se_from_exp = se_from_exp

        self.stem = conv_bn(
            3, widths[0], nn.choice("stem_ks", [3, 5]), stride[0], activation=_activation(activation[0]), bn=bn
        )
        blocks: list[torch.nn.Module] = [
            DepthwiseSeparableConv(
                widths[0],
                widths[1],
                nn.choice("s0_i0_ks", [3, 5, 7]),
                stride[1],
                bn,
                squeeze_excite=_squeeze_excite(squeeze_excite[0], se_from_exp, "s0_i0_se"),
                activation=_activation(activation[1]),
            )
        ]
        for i in range(1, num_blocks - 2):
            blocks.append(
                self._make_stage(
                    i, widths[i], widths[i + 1], squeeze_excite[i], stride[i + 1], _activation(activation[i + 1]), bn
                )
            )
        blocks += [
            conv_bn(
                widths[num_blocks - 2],
                widths[num_blocks - 1],
                1,
                stride[num_blocks - 1],
                activation=_activation(activation[num_blocks - 1]),
                bn=bn,
            ),
            torch.nn.AdaptiveAvgPool2d(1),
            # No norm after pooling: the conv carries a bias (a linear layer in other codebases).
            conv_bn(
                widths[num_blocks - 1],
                widths[num_blocks],
                1,
                stride[num_blocks],
                activation=_activation(activation[num_blocks]),
                bn=None,
            ),
        ]
        self.blocks = torch.nn.Sequential(*blocks)
        self.classifier = torch.nn.Sequential(torch.nn.Dropout(dropout_rate), nn.Linear(widths[num_blocks], num_labels))
        _init_weights(self)

    @staticmethod
    def _check(
        num_blocks: int,
        base_widths: Sequence[int],
        stride: Sequence[int],
        activation: Sequence[str],
        squeeze_excite: Sequence[str],
    ) -> None:
        if num_blocks < 4:
            raise HubError(f"MobileNetV3Space: base_widths needs at least 5 widths, got {len(base_widths)}")
        if not len(stride) == len(activation) == num_blocks + 1:
            raise HubError(
                f"MobileNetV3Space: stride ({len(stride)}) and activation ({len(activation)}) need one entry per "
                f"base width ({num_blocks + 1})"
            )
        if len(squeeze_excite) != num_blocks - 2 or any(
            se not in ("force", "optional", "none") for se in squeeze_excite
        ):
            raise HubError(
                f"MobileNetV3Space: squeeze_excite needs {num_blocks - 2} entries of 'force'/'optional'/'none' "
                f"(the two head layers have none), got {tuple(squeeze_excite)!r}"
            )

    @staticmethod
    def _depth_ranges(depth_range: Any, num_blocks: int) -> list[tuple[int, int]]:
        # The first stage and the two head layers have a fixed depth.
        count = num_blocks - 3
        ranges = [tuple(depth_range)] * count if isinstance(depth_range[0], int) else [tuple(d) for d in depth_range]
        if len(ranges) != count or not all(len(d) == 2 and d[1] >= d[0] >= 1 for d in ranges):
            raise HubError(
                f"MobileNetV3Space: depth_range must be one (min, max) with 1 <= min <= max or {count} of them, "
                f"got {depth_range!r}"
            )
        return ranges  # type: ignore[return-value]

    def _make_stage(
        self,
        stage: int,
        inp: Any,
        oup: Any,
        se: str,
        stride: int,
        activation: type[torch.nn.Module],
        bn: tuple[float, float],
    ) -> nn.Repeat:
        def block(index: int) -> torch.nn.Module:
            return InvertedResidual(
                inp if index == 0 else oup,
                oup,
                nn.choice(f"s{stage}_i{index}_exp", list(self.expand_ratios)),
                nn.choice(f"s{stage}_i{index}_ks", [3, 5, 7]),
                stride if index == 0 else 1,  # only a stage's first block changes resolution
                bn,
                squeeze_excite=_squeeze_excite(se, self.se_from_exp, f"s{stage}_i{index}_se"),
                activation=activation,
            )

        return nn.Repeat(block, self.depth_range[stage - 1], label=f"s{stage}_depth")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.blocks(self.stem(x)).flatten(1))


def _init_weights(model: torch.nn.Module) -> None:
    """He (fan-out) convolutions, unit BN, small linear: NNI's initialisation for this space."""
    for m in model.modules():
        if isinstance(m, torch.nn.Conv2d):
            # From the weight's shape, not the layer's arguments: in a space they may be
            # choices, and the weight then has the largest candidate's shape.
            fan_out = m.weight.shape[0] * m.weight.shape[2] * m.weight.shape[3]
            torch.nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / fan_out))
            if m.bias is not None:
                torch.nn.init.zeros_(m.bias)
        elif isinstance(m, torch.nn.BatchNorm2d):
            torch.nn.init.ones_(m.weight)
            torch.nn.init.zeros_(m.bias)
        elif isinstance(m, torch.nn.Linear):
            torch.nn.init.normal_(m.weight, 0.0, 0.01)
            if m.bias is not None:
                torch.nn.init.zeros_(m.bias)

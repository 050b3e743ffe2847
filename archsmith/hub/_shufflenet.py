"""The Single Path One-Shot space (Guo et al., ECCV 2020, https://arxiv.org/abs/1904.00420).

ShuffleNetV2 (Ma et al., ECCV 2018) with each of its 20 blocks searched among four
candidates: the ShuffleNetV2 block with a 3x3, 5x5 or 7x7 depthwise kernel, and the
Xception-like block (three depthwise 3x3 convolutions). Optionally the middle width
of every block is searched too (0.2x to 1.6x). Arguments and labels follow NNI 3.0's
``nni.nas.hub.pytorch.ShuffleNetSpace`` (``layer_1`` ... ``layer_20`` with values
``k3``/``k5``/``k7``/``xcep``; ``channel_1`` ... ``channel_20``), and the module
names are NNI's, so NNI's samples and converted state dicts load unchanged.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch

import archsmith.nn as nn

from ._base import HubError, HubSpace, SearchedModel, register_space

# Blocks per stage (20 in all) and the widths: stem, the four stages, the last conv.
STAGE_REPEATS = (4, 4, 8, 4)
STAGE_WIDTHS = (16, 64, 160, 320, 640, 1024)
#: the multipliers of a block's middle width when ``channel_search`` is on
CHANNEL_SCALES = tuple(0.2 * k for k in range(1, 9))


class ShuffleNetBlock(torch.nn.Module):
    """A ShuffleNetV2 unit. Stride 1: the input's channels are split in two halves
    (by channel shuffle), one passes through, the other goes through the main branch.
    Stride 2: the whole input goes through both a projection branch and the main branch.

    ``sequence`` spells the main branch: ``p`` a pointwise conv-BN-ReLU, ``d`` a
    depthwise conv-BN (``"pdp"``: the ShuffleNetV2 block; ``"dpdpdp"``: Xception).
    ``mid_channels`` may be a choice.

    >>> block = ShuffleNetBlock(32, 32, 16, kernel_size=5, stride=1)
    >>> block(torch.zeros(1, 32, 8, 8)).shape
    torch.Size([1, 32, 8, 8])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        mid_channels: Any,
        *,
        kernel_size: int,
        stride: int,
        sequence: str = "pdp",
        affine: bool = True,
    ) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise HubError(f"ShuffleNetBlock: stride must be 1 or 2, got {stride}")
        if kernel_size not in (3, 5, 7):
            raise HubError(f"ShuffleNetBlock: kernel_size must be 3, 5 or 7, got {kernel_size}")
        if not sequence or set(sequence) - {"p", "d"} or sequence[-1] != "p":
            raise HubError(f"ShuffleNetBlock: sequence must be of 'p' and 'd' and end with 'p', got {sequence!r}")
        # Stride 1 keeps half of the input aside; stride 2 feeds all of it to both branches.
        self.channels = in_channels // 2 if stride == 1 else in_channels
        self.stride = stride
        main_out = out_channels - self.channels
        if main_out <= 0:
            raise HubError(
                f"ShuffleNetBlock: out_channels ({out_channels}) must exceed the channels passed through "
                f"({self.channels})"
            )
        self.branch_main = torch.nn.Sequential(
            *self._main_branch(sequence, mid_channels, main_out, kernel_size, stride, affine)
        )
        pad = kernel_size // 2
        if stride == 2:
            c = self.channels
            self.branch_proj = torch.nn.Sequential(
                nn.Conv2d(c, c, kernel_size, stride, pad, groups=c, bias=False),
                nn.BatchNorm2d(c, affine=affine),
                nn.Conv2d(c, c, 1, 1, 0, bias=False),
                nn.BatchNorm2d(c, affine=affine),
                torch.nn.ReLU(inplace=True),
            )
        else:
            self.branch_proj = torch.nn.Sequential()

    def _main_branch(
        self, sequence: str, mid_channels: Any, main_out: int, kernel_size: int, stride: int, affine: bool
    ) -> list[torch.nn.Module]:
        layers: list[torch.nn.Module] = []
        width: Any = self.channels
        first_pointwise, first_depthwise = True, True
        for i, token in enumerate(sequence):
            if token == "p":
                # The first pointwise conv sets the middle width, the last one the output's.
                out = main_out if i == len(sequence) - 1 else (mid_channels if first_pointwise else width)
                layers += [
                    nn.Conv2d(width, out, 1, 1, 0, bias=False),
                    nn.BatchNorm2d(out, affine=affine),
                    torch.nn.ReLU(inplace=True),
                ]
                first_pointwise, width = False, out
            else:
                layers += [
                    nn.Conv2d(
                        width,
                        width,
                        kernel_size,
                        stride if first_depthwise else 1,
                        kernel_size // 2,
                        groups=width,
                        bias=False,
                    ),
                    nn.BatchNorm2d(width, affine=affine),
                ]
                first_depthwise = False
        return layers

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 2:
            return torch.cat((self.branch_proj(x), self.branch_main(x)), 1)
        # Channel shuffle: even channels pass through, odd ones enter the main branch
        # (the order of the reference code, which trained weights depend on).
        b, c, h, w = x.shape
        pairs = x.reshape(b, c // 2, 2, h, w)
        return torch.cat((pairs[:, :, 0], self.branch_main(pairs[:, :, 1])), 1)


class ShuffleXceptionBlock(ShuffleNetBlock):
    """SPOS's ``choice_x`` block: the main branch is three depthwise 3x3 convs, each
    followed by a pointwise conv."""

    def __init__(
        self, in_channels: int, out_channels: int, mid_channels: Any, *, stride: int, affine: bool = True
    ) -> None:
        super().__init__(
            in_channels, out_channels, mid_channels, kernel_size=3, stride=stride, sequence="dpdpdp", affine=affine
        )


def _choice_block(index: int, c_in: int, c_out: int, mid: Any, stride: int, affine: bool) -> nn.LayerChoice:
    """Block ``index`` (1-based, as NNI's labels): candidates are factories, so that
    freezing builds the chosen one only."""

    def shuffle(k: int) -> Any:
        return lambda: ShuffleNetBlock(c_in, c_out, mid, kernel_size=k, stride=stride, affine=affine)

    candidates = {
        "k3": shuffle(3),
        "k5": shuffle(5),
        "k7": shuffle(7),
        "xcep": lambda: ShuffleXceptionBlock(c_in, c_out, mid, stride=stride, affine=affine),
    }
    return nn.LayerChoice(candidates, label=f"layer_{index}")


@register_space("shufflenet")
class ShuffleNetSpace(HubSpace):
    """The SPOS space, with NNI 3.0's arguments and labels.

    ``channel_search``: also search each block's middle width among 0.2x ... 1.6x
    of half its output width (``channel_1`` ... ``channel_20``); else 1.0x.
    ``affine``: affine batch norms in the blocks and the last conv (the stem's always is).

    >>> space = ShuffleNetSpace(num_labels=10)
    >>> space.search_space["layer_1"].values
    ['k3', 'k5', 'k7', 'xcep']
    >>> model = space.freeze(space.random(seed=0))
    >>> model(torch.zeros(2, 3, 32, 32)).shape
    torch.Size([2, 10])
    """

    searched_models: ClassVar[dict[str, SearchedModel]] = {
        # The paper's searched network (block and channel search), as released by its
        # authors: megvii-model/ShuffleNet-Series, OneShot/network.py (architecture and
        # channel scales), OneShot/README.md (328M FLOPs, 3.4M parameters).
        "spos": SearchedModel(
            "spos",
            3_432_579,
            "official SPOS release megvii-model/ShuffleNet-Series OneShot (README: 3.4M); exact count of that network",
            {"channel_search": True},
        ),
        # NNI 3.0's ShuffleNetSpace.load_searched_model("spos"): block search only, 1.0x
        # widths, a different network from the paper's; no published figure, so the
        # count is of the network NNI builds (same layers, so the same count).
        "spos-nni": SearchedModel(
            "spos-nni",
            3_558_464,
            "NNI 3.0's 'spos' sample (nni/nas/hub/pytorch/shufflenet.py); count of the network NNI builds from it",
        ),
    }
    reduced_kwargs: ClassVar[dict[str, object]] = {"num_labels": 10}
    # Channel search puts width choices in layer arguments, which each family slices its own way.
    oneshot_variants: ClassVar[tuple[dict[str, Any], ...]] = ({"channel_search": True},)

    def __init__(self, num_labels: int = 1000, channel_search: bool = False, affine: bool = True) -> None:
        super().__init__()
        self.num_labels = num_labels
        self.channel_search = channel_search
        self.affine = affine
        self.stage_repeats = list(STAGE_REPEATS)
        self.stage_out_channels = [-1, *STAGE_WIDTHS]

        width = STAGE_WIDTHS[0]
        self.first_conv = torch.nn.Sequential(
            nn.Conv2d(3, width, 3, 2, 1, bias=False),
            nn.BatchNorm2d(width),
            torch.nn.ReLU(inplace=True),
        )
        blocks: list[torch.nn.Module] = []
        index = 0
        for stage, repeats in enumerate(STAGE_REPEATS):
            c_out = STAGE_WIDTHS[stage + 1]
            base_mid = c_out // 2
            for i in range(repeats):
                index += 1
                mid: Any = base_mid
                if channel_search:
                    mid = nn.choice(f"channel_{index}", [int(base_mid * s) for s in CHANNEL_SCALES])
                blocks.append(_choice_block(index, width, c_out, mid, 2 if i == 0 else 1, affine))
                width = c_out
        self.features = torch.nn.Sequential(*blocks)
        last = STAGE_WIDTHS[-1]
        self.conv_last = torch.nn.Sequential(
            nn.Conv2d(width, last, 1, 1, 0, bias=False),
            nn.BatchNorm2d(last, affine=affine),
            torch.nn.ReLU(inplace=True),
        )
        self.globalpool = torch.nn.AdaptiveAvgPool2d(1)
        self.dropout = torch.nn.Dropout(0.1)
        self.classifier = torch.nn.Sequential(torch.nn.Linear(last, num_labels, bias=False))
        _init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv_last(self.features(self.first_conv(x)))
        x = self.dropout(self.globalpool(x).flatten(1))
        return self.classifier(x)


def _init_weights(model: torch.nn.Module) -> None:
    """The reference initialisation: small stem, fan-in scaled convs, BN bias 1e-4."""
    for name, m in model.named_modules():
        if isinstance(m, torch.nn.Conv2d):
            # From the weight's shape: in a space the arguments may be choices.
            std = 0.01 if "first" in name else 1.0 / m.weight.shape[1]
            torch.nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                torch.nn.init.zeros_(m.bias)
        elif isinstance(m, torch.nn.BatchNorm2d):
            if m.weight is not None:
                torch.nn.init.ones_(m.weight)
            if m.bias is not None:
                torch.nn.init.constant_(m.bias, 1e-4)
        elif isinstance(m, torch.nn.Linear):
            torch.nn.init.normal_(m.weight, 0.0, 0.01)

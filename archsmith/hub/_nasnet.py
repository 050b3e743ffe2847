"""The NDS cell spaces (Radosavovic et al., *On Network Design Spaces for Visual
Recognition*, ICCV 2019, https://arxiv.org/abs/1905.13214): NASNet, ENAS,
AmoebaNet, PNAS and DARTS as one macro-architecture with different op sets.

A network is a stem, three stages of cells (the first cell of stages 2 and 3 a
stride-2 reduction cell that doubles the width), global pooling and a linear
classifier. Every normal cell shares one set of decisions (labels ``normal/...``)
and every reduction cell another (``reduce/...``), as in the papers and in NNI
3.0's ``nni.nas.hub.pytorch.nasnet``, whose arguments and labels these follow:
``width`` and ``depth`` where given as tuples, ``normal/op_{node}_{j}`` and
``normal/input_{node}_{j}`` per cell node. An NNI sample loads unchanged (NNI
writes an input decision as ``[0]``, archsmith as ``0``; both are read).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, ClassVar, Literal

import torch

import archsmith.nn as nn
from archsmith.nn._cell import CellBody, run_frozen_nodes
from archsmith.space import Mutable, condition

from ._base import HubError, HubSpace, SearchedModel, register_space

Dataset = Literal["cifar", "imagenet"]
MERGE_OPS = ("all", "loose_end")


class Zero(torch.nn.Module):
    """The ``none`` op: zeros of the (possibly strided) input's shape."""

    def __init__(self, stride: int) -> None:
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            return x.mul(0.0)
        return x[:, :, :: self.stride, :: self.stride].mul(0.0)


class FactorizedReduce(torch.nn.Module):
    """Halves the resolution with two stride-2 1x1 convs on offset grids, concatenated
    (so no pixel is skipped), then BN. ``c_out`` must be even."""

    def __init__(self, c_in: Any, c_out: Any, affine: bool = True) -> None:
        super().__init__()
        if any(v % 2 for v in nn.possible_values(c_out)):
            raise HubError(f"FactorizedReduce: the output width must be even, got {c_out!r}")
        self.relu = torch.nn.ReLU(inplace=False)
        self.conv_1 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, padding=0, bias=False)
        self.conv_2 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, padding=0, bias=False)
        self.bn = nn.BatchNorm2d(c_out, affine=affine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        # The second conv sees the grid shifted by one pixel (padded at the far edge).
        shifted = torch.nn.functional.pad(x, (0, 1, 0, 1))[:, :, 1:, 1:]
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(shifted)], dim=1))  # type: ignore[no-any-return]


def relu_conv_bn(c_in: Any, c_out: Any, kernel_size: Any, stride: Any, padding: Any, affine: bool = True) -> Any:
    """ReLU, convolution (no bias), BN."""
    return torch.nn.Sequential(
        torch.nn.ReLU(inplace=False),
        nn.Conv2d(c_in, c_out, kernel_size, stride=stride, padding=padding, bias=False),
        nn.BatchNorm2d(c_out, affine=affine),
    )


def _dw_pw(c: Any, kernel_size: int, stride: int, padding: int, dilation: int, affine: bool) -> list[torch.nn.Module]:
    # ReLU, depthwise conv, pointwise conv, BN: one half of a separable conv.
    return [
        torch.nn.ReLU(inplace=False),
        nn.Conv2d(c, c, kernel_size, stride=stride, padding=padding, dilation=dilation, groups=c, bias=False),
        nn.Conv2d(c, c, 1, padding=0, bias=False),
        nn.BatchNorm2d(c, affine=affine),
    ]


def dil_conv(c: Any, kernel_size: int, stride: int, padding: int, dilation: int, affine: bool = True) -> Any:
    """One dilated depthwise-separable conv (ReLU, dw, pw, BN)."""
    return torch.nn.Sequential(*_dw_pw(c, kernel_size, stride, padding, dilation, affine))


def sep_conv(c: Any, kernel_size: int, stride: int, padding: int, dilation: int = 1, affine: bool = True) -> Any:
    """Two depthwise-separable convs in a row, the first one strided (the DARTS op)."""
    return torch.nn.Sequential(
        *_dw_pw(c, kernel_size, stride, padding, dilation, affine),
        *_dw_pw(c, kernel_size, 1, padding, dilation, affine),
    )


def _conv_pair(c: Any, k: int, stride: int, affine: bool) -> Any:
    # 1xk then kx1 (the stride split between them), then BN.
    return torch.nn.Sequential(
        torch.nn.ReLU(inplace=False),
        nn.Conv2d(c, c, (1, k), stride=(1, stride), padding=(0, k // 2), bias=False),
        nn.Conv2d(c, c, (k, 1), stride=(stride, 1), padding=(k // 2, 0), bias=False),
        nn.BatchNorm2d(c, affine=affine),
    )


OpFactory = Callable[[Any, int, bool], torch.nn.Module]

#: The op set of NDS (from facebookresearch/unnas ``pycls/models/nas/operations.py``):
#: name -> f(channels, stride, affine). Every op keeps the width.
OPS: dict[str, OpFactory] = {
    "none": lambda c, s, a: Zero(s),
    "avg_pool_2x2": lambda c, s, a: torch.nn.AvgPool2d(2, stride=s, padding=0, count_include_pad=False),
    "avg_pool_3x3": lambda c, s, a: torch.nn.AvgPool2d(3, stride=s, padding=1, count_include_pad=False),
    "avg_pool_5x5": lambda c, s, a: torch.nn.AvgPool2d(5, stride=s, padding=2, count_include_pad=False),
    "max_pool_2x2": lambda c, s, a: torch.nn.MaxPool2d(2, stride=s, padding=0),
    "max_pool_3x3": lambda c, s, a: torch.nn.MaxPool2d(3, stride=s, padding=1),
    "max_pool_5x5": lambda c, s, a: torch.nn.MaxPool2d(5, stride=s, padding=2),
    "max_pool_7x7": lambda c, s, a: torch.nn.MaxPool2d(7, stride=s, padding=3),
    "skip_connect": lambda c, s, a: torch.nn.Identity() if s == 1 else FactorizedReduce(c, c, affine=a),
    "conv_1x1": lambda c, s, a: relu_conv_bn(c, c, 1, s, 0, a),
    "conv_3x3": lambda c, s, a: relu_conv_bn(c, c, 3, s, 1, a),
    "sep_conv_3x3": lambda c, s, a: sep_conv(c, 3, s, 1, affine=a),
    "sep_conv_5x5": lambda c, s, a: sep_conv(c, 5, s, 2, affine=a),
    "sep_conv_7x7": lambda c, s, a: sep_conv(c, 7, s, 3, affine=a),
    "dil_conv_3x3": lambda c, s, a: dil_conv(c, 3, s, 2, 2, a),
    "dil_conv_5x5": lambda c, s, a: dil_conv(c, 5, s, 4, 2, a),
    "dil_sep_conv_3x3": lambda c, s, a: sep_conv(c, 3, s, 2, dilation=2, affine=a),
    "conv_3x1_1x3": lambda c, s, a: _conv_pair(c, 3, s, a),
    "conv_7x1_1x7": lambda c, s, a: _conv_pair(c, 7, s, a),
}


class DropPath(torch.nn.Module):
    """Zeroes a whole sample's path with probability ``drop_prob`` while training,
    scaling the kept ones by ``1 / (1 - drop_prob)`` (FractalNet's drop-path)."""

    def __init__(self, drop_prob: float = 0.0) -> None:
        super().__init__()
        self.drop_prob = drop_prob

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.drop_prob <= 0.0:
            return x
        keep = 1.0 - self.drop_prob
        mask = torch.empty(x.size(0), 1, 1, 1, device=x.device, dtype=x.dtype).bernoulli_(keep)
        return x / keep * mask


class AuxiliaryHead(torch.nn.Module):
    """The auxiliary classifier of NASNet/DARTS, on the first cell of the last stage
    (8x8 maps on CIFAR, 14x14 on ImageNet)."""

    def __init__(self, c: Any, num_labels: int, dataset: Dataset) -> None:
        super().__init__()
        stride = 2 if dataset == "imagenet" else 3
        self.features = torch.nn.Sequential(
            torch.nn.ReLU(inplace=True),
            torch.nn.AvgPool2d(5, stride=stride, padding=0, count_include_pad=False),
            nn.Conv2d(c, 128, 1, bias=False),
            torch.nn.BatchNorm2d(128),
            torch.nn.ReLU(inplace=True),
            torch.nn.Conv2d(128, 768, 2, bias=False),
            torch.nn.BatchNorm2d(768),
            torch.nn.ReLU(inplace=True),
        )
        self.classifier = torch.nn.Linear(768, num_labels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).flatten(1))  # type: ignore[no-any-return]


class CellPreprocessor(torch.nn.Module):
    """Brings a cell's two inputs to its width ``c`` (and the older one to the same
    resolution when the previous cell reduced it)."""

    def __init__(self, c_pprev: Any, c_prev: Any, c: Any, last_cell_reduce: bool) -> None:
        super().__init__()
        self.pre0 = FactorizedReduce(c_pprev, c) if last_cell_reduce else relu_conv_bn(c_pprev, c, 1, 1, 0)
        self.pre1 = relu_conv_bn(c_prev, c, 1, 1, 0)

    def forward(self, cells: list[torch.Tensor]) -> list[torch.Tensor]:
        pprev, prev = cells
        return [self.pre0(pprev), self.pre1(prev)]


class CellStates(tuple):  # type: ignore[type-arg]
    """What a cell passes on: ``(previous cell, this cell)``, and whether this cell is
    the first of its stage. A one-shot depth mixture weights whole pairs
    (``weight * states``), collected in a :class:`StateMixture` that the space
    resolves, since a stage that ends after its first cell passes on its input,
    which has another shape until it is aligned."""

    first: bool

    def __new__(cls, previous: torch.Tensor, this: torch.Tensor, first: bool = False) -> CellStates:
        states = super().__new__(cls, (previous, this))
        states.first = first
        return states

    def __mul__(self, weight: Any) -> StateMixture:  # type: ignore[override]
        return StateMixture([(weight, self)])

    __rmul__ = __mul__  # type: ignore[assignment]


class StateMixture:
    """Weighted stage outputs (one per candidate depth), summed once aligned."""

    def __init__(self, terms: list[tuple[Any, CellStates]]) -> None:
        self.terms = terms

    def __add__(self, other: StateMixture) -> StateMixture:
        return StateMixture(self.terms + other.terms)


class CellPostprocessor(torch.nn.Module):
    """Outputs ``(previous cell, this cell)`` so that cells chain (``first``: the
    stage's first cell)."""

    def __init__(self, first: bool = False) -> None:
        super().__init__()
        self.first = first

    def forward(self, this_cell: torch.Tensor, previous_cells: list[torch.Tensor]) -> CellStates:
        return CellStates(previous_cells[-1], this_cell, self.first)


class NDSCell(torch.nn.Module):
    """A frozen NDS cell as plain PyTorch: ``ops[n][j]`` applied to state
    ``input_indices[n][j]``, summed per node, the ``output_node_indices`` concatenated.
    Its state-dict keys are those of the ``Cell`` it comes from."""

    def __init__(self, body: CellBody) -> None:
        super().__init__()
        self.preprocessor: torch.nn.Module = body.preprocessor  # type: ignore[assignment]
        self.postprocessor: torch.nn.Module = body.postprocessor  # type: ignore[assignment]
        self.ops = body.ops
        self.input_indices = [list(indices) for indices in body.input_indices]
        self.output_node_indices = list(body.output_node_indices)

    def forward(self, inputs: list[torch.Tensor]) -> list[torch.Tensor]:
        states = list(self.preprocessor(list(inputs)))
        run_frozen_nodes(self.ops, self.input_indices, states)
        out = torch.cat([states[k] for k in self.output_node_indices], 1)
        return self.postprocessor(out, list(inputs))  # type: ignore[no-any-return]


class _CellBuilder:
    """``f(i)`` for a stage's ``Repeat``: builds cell ``i``, tracking the widths of
    the two previous cells (which depend on how many nodes each cell outputs)."""

    def __init__(
        self,
        op_candidates: Sequence[str],
        c_pprev: Any,
        c_prev: Any,
        c: Any,
        num_nodes: int,
        merge_op: str,
        first_cell_reduce: bool,
        last_cell_reduce: bool,
        drop_path_prob: float,
    ) -> None:
        self.op_candidates = list(op_candidates)
        self.c_pprev, self.c_prev, self.c = c_pprev, c_prev, c
        self.num_nodes, self.merge_op = num_nodes, merge_op
        self.first_cell_reduce, self.last_cell_reduce = first_cell_reduce, last_cell_reduce
        self.drop_path_prob = drop_path_prob
        self.built = 0
        #: ``(c_pprev, c_prev)`` after each built cell: what a stage passes on when it ends there
        self.after: list[tuple[Any, Any]] = []

    def op_factory(
        self, node_index: int, op_index: int, input_index: int | None, *, op: str, channels: Any, reduction: bool
    ) -> torch.nn.Module:
        # In a reduction cell only ops on the cell's two inputs downsample; None (an
        # op shared by all inputs) never happens with Cell's per-input ops.
        stride = 2 if reduction and (input_index is None or input_index < 2) else 1
        operation = OPS[op](channels, stride, True)
        if self.drop_path_prob > 0 and not isinstance(operation, torch.nn.Identity):
            # No drop-path on an identity, as in DARTS's training code.
            return torch.nn.Sequential(operation, DropPath(self.drop_path_prob))
        return operation

    def __call__(self, index: int) -> torch.nn.Module:
        if index != self.built:
            raise HubError(f"NDS cell builder: cells must be built in order; expected {self.built}, got {index}")
        reduction = index == 0 and self.first_cell_reduce
        factories = {
            op: partial(self.op_factory, op=op, channels=self.c, reduction=reduction) for op in self.op_candidates
        }
        cell = nn.Cell(
            factories,
            self.num_nodes,
            num_ops_per_node=2,
            num_predecessors=2,
            merge_op=self.merge_op,
            preprocessor=CellPreprocessor(self.c_pprev, self.c_prev, self.c, self.last_cell_reduce),
            postprocessor=CellPostprocessor(first=index == 0),
            label="reduce" if reduction else "normal",
        )
        built: torch.nn.Module = cell if isinstance(cell, nn.Cell) else NDSCell(cell)  # type: ignore[arg-type]
        self.c_pprev = self.c_prev
        # Searching a loose-end cell, its width is an expression over its input choices.
        self.c_prev = self.c * cell.num_output_nodes
        self.last_cell_reduce = reduction
        self.built += 1
        self.after.append((self.c_pprev, self.c_prev))
        # Frozen, the cell becomes plain PyTorch (same weights and keys).
        return built


def _width_or_depth(value: Any, label: str, what: str) -> Any:
    # NNI's convention (a tuple or list is a choice, an int is fixed), on positive ints.
    values = value if isinstance(value, (tuple, list)) else [value]
    if not values or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in values):
        raise HubError(f"NDS: {what} must be a positive int or a tuple of them, got {value!r}")
    return nn.maybe_choice(label, value)


class NDS(HubSpace):
    """The NDS cell space over ``op_candidates`` (names from :data:`OPS`).

    ``width``: channels of the first stage's ops (a tuple: choice ``width``);
    ``num_cells``: cells in all (a tuple: choice ``depth``), split into three
    stages; ``dataset``: ``cifar`` (a 3x3 stem) or ``imagenet`` (three stride-2
    stem convs), which also sets 10 or 1000 labels; ``auxiliary_loss``: while
    training, the forward returns ``(logits, aux_logits)`` (needs a fixed
    ``num_cells``); ``drop_path_prob``: drop-path on every non-identity op.
    ``num_labels`` (not in NNI): the classifier's outputs, 10 (cifar) or 1000 by
    default. ``merge_op``: a cell outputs all its nodes (``all``) or the ones no node reads
    (``loose_end``).

    Where a ``num_cells`` choice lets a stage hold one cell or more, the stage's input,
    which a one-cell stage passes on, is brought to its cells' output shape
    (``aligners``), so that one-shot supernets can mix or sample the depths.
    """

    def __init__(
        self,
        op_candidates: Sequence[str],
        merge_op: str = "all",
        num_nodes_per_cell: int = 4,
        width: int | tuple[int, ...] = 16,
        num_cells: int | tuple[int, ...] = 20,
        dataset: Dataset = "imagenet",
        auxiliary_loss: bool = False,
        drop_path_prob: float = 0.0,
        num_labels: int | None = None,
    ) -> None:
        super().__init__()
        unknown = [op for op in op_candidates if op not in OPS]
        if unknown or not op_candidates:
            raise HubError(f"NDS: unknown ops {unknown} in op_candidates; use names of OPS: {sorted(OPS)}")
        if merge_op not in MERGE_OPS:
            raise HubError(f"NDS: merge_op must be one of {list(MERGE_OPS)}, got {merge_op!r}")
        if dataset not in ("cifar", "imagenet"):
            raise HubError(f"NDS: dataset must be 'cifar' or 'imagenet', got {dataset!r}")
        if not 0.0 <= drop_path_prob < 1.0:
            raise HubError(f"NDS: drop_path_prob must be in [0, 1), got {drop_path_prob!r}")
        c = _width_or_depth(width, "width", "width")
        depth = _width_or_depth(num_cells, "depth", "num_cells")
        if auxiliary_loss and isinstance(depth, Mutable):
            raise HubError("NDS: auxiliary_loss needs a fixed num_cells (an int), as the head sits on a chosen cell")
        if not isinstance(depth, Mutable) and depth < 3:
            raise HubError(f"NDS: num_cells must be at least 3 (one cell per stage), got {depth}")
        if isinstance(depth, Mutable) and min(nn.possible_values(depth)) < 3:
            raise HubError(f"NDS: every num_cells candidate must be at least 3, got {num_cells!r}")

        self.op_candidates = list(op_candidates)
        self.merge_op, self.num_nodes_per_cell = merge_op, num_nodes_per_cell
        self.width, self.num_cells, self.dataset = width, num_cells, dataset
        if num_labels is not None and (
            isinstance(num_labels, bool) or not isinstance(num_labels, int) or num_labels < 1
        ):
            raise HubError(f"NDS: num_labels must be a positive int, got {num_labels!r}")
        # NNI fixes the labels by dataset; num_labels (an archsmith extra) overrides that.
        self.num_labels = num_labels if num_labels is not None else (10 if dataset == "cifar" else 1000)
        self.auxiliary_loss, self.drop_path_prob = auxiliary_loss, drop_path_prob

        # Cells per stage: depth split into three near-equal parts (NNI's formula).
        per_stage = [(i + 1) * depth // 3 - i * depth // 3 for i in range(3)]
        if dataset == "imagenet":
            self.stem0 = torch.nn.Sequential(
                nn.Conv2d(3, c // 2, 3, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(c // 2),
                torch.nn.ReLU(inplace=True),
                nn.Conv2d(c // 2, c, 3, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(c),
            )
            self.stem1 = torch.nn.Sequential(
                torch.nn.ReLU(inplace=True),
                nn.Conv2d(c, c, 3, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(c),
            )
            c_pprev = c_prev = c_curr = c
            last_cell_reduce = True
        else:
            self.stem = torch.nn.Sequential(nn.Conv2d(3, 3 * c, 3, padding=1, bias=False), nn.BatchNorm2d(3 * c))
            c_pprev = c_prev = 3 * c
            c_curr = c
            last_cell_reduce = False

        self.stages = torch.nn.ModuleList()
        #: per stage that may hold one cell or more (a searched depth): the op that
        #: brings its input to its output's shape when it holds one (see _aligner)
        self.aligners = torch.nn.ModuleDict()
        for stage_idx in range(3):
            if stage_idx > 0:
                c_curr = c_curr * 2
            builder = _CellBuilder(
                self.op_candidates,
                c_pprev,
                c_prev,
                c_curr,
                num_nodes_per_cell,
                merge_op,
                stage_idx > 0,
                last_cell_reduce,
                drop_path_prob,
            )
            stage = nn.Repeat(builder, per_stage[stage_idx], label=f"stage{stage_idx}")
            self.stages.append(stage)
            aligned = _may_end_after_one_cell(num_cells, stage_idx)
            if aligned:
                self.aligners[str(stage_idx)] = _aligner(
                    per_stage[stage_idx], c_prev, c_curr * num_nodes_per_cell, stage_idx > 0, stage_idx
                )
            # The widths the next stage reads: its pprev is this stage's second-last
            # cell, or the previous stage's last when this stage has one cell (aligned
            # to the stage's output where the depth is searched).
            # Loose-end cells differ in width (a reduction cell outputs its own loose
            # ends), so where the depth is searched the widths are chosen by it.
            pprevs = [c_curr * num_nodes_per_cell if aligned else c_prev] + [p for _, p in builder.after[:-1]]
            if len(stage) > 1:
                c_pprev, last_cell_reduce = _at_depth(per_stage[stage_idx], pprevs), builder.last_cell_reduce
            elif aligned:
                c_pprev, last_cell_reduce = c_curr * num_nodes_per_cell, False
            else:
                c_pprev, last_cell_reduce = c_prev, builder.last_cell_reduce
            c_prev = _at_depth(per_stage[stage_idx], [p for _, p in builder.after])

        if auxiliary_loss:
            # On the first cell of the last stage, whose width is c_curr times its outputs.
            self.auxiliary_head = AuxiliaryHead(_first_cell_width(self.stages[2], c_curr), self.num_labels, dataset)
        self.global_pooling = torch.nn.AdaptiveAvgPool2d((1, 1))
        self.classifier = nn.Linear(c_prev, self.num_labels)

    def forward(self, inputs: torch.Tensor) -> Any:
        if self.dataset == "imagenet":
            s0 = self.stem0(inputs)
            s1 = self.stem1(s0)
        else:
            s0 = s1 = self.stem(inputs)
        logits_aux = None
        for stage_idx, stage in enumerate(self.stages):
            if stage_idx == 2 and self.auxiliary_loss and self.training:
                for block_idx, block in enumerate(_blocks(stage)):
                    s0, s1 = block([s0, s1])
                    if block_idx == 0:
                        logits_aux = self.auxiliary_head(s1)
            else:
                s0, s1 = self._stage_output(stage_idx, stage([s0, s1]))
        logits = self.classifier(self.global_pooling(s1).flatten(1))
        if logits_aux is not None:
            return logits, logits_aux
        return logits

    def _stage_output(self, stage_idx: int, out: Any) -> tuple[Any, Any]:
        """The pair a stage passes on, its ``previous`` aligned where the stage ended
        after its first cell; a one-shot mixture over depths is summed here."""
        aligner = self.aligners[str(stage_idx)] if str(stage_idx) in self.aligners else None

        def passed_on(states: CellStates) -> tuple[Any, Any]:
            if aligner is not None and states.first:
                return _blocks(aligner)[0](states[0]), states[1]
            return states[0], states[1]

        if not isinstance(out, StateMixture):
            return passed_on(out)
        pprev = prev = None
        for weight, states in out.terms:
            a, b = passed_on(states)
            pprev = weight * a if pprev is None else pprev + weight * a
            prev = weight * b if prev is None else prev + weight * b
        return pprev, prev

    @classmethod
    def reduced_kwargs_for(cls, input_size: int) -> dict[str, Any]:
        """The reduced space with the stem of the data set of that size (CIFAR's up to 64 pixels, else ImageNet's)."""
        return {**cls.reduced_kwargs, "dataset": "cifar" if input_size <= 64 else "imagenet"}

    @classmethod
    def labels_kwargs(cls, name: str) -> dict[str, Any]:
        """The reduced space: with ``width`` and ``num_cells`` fixed, labels depend only on the cells' nodes."""
        kwargs = cls.searched_models[name].kwargs
        if any(isinstance(kwargs.get(key), (tuple, list)) for key in ("width", "num_cells")):
            return dict(kwargs)
        return dict(cls.reduced_kwargs)

    def set_drop_path_prob(self, drop_prob: float) -> None:
        """Set the drop-path probability of every ``DropPath`` (a schedule changes it per epoch)."""
        for module in self.modules():
            if isinstance(module, DropPath):
                module.drop_prob = drop_prob


def _blocks(stage: torch.nn.Module) -> list[torch.nn.Module]:
    # A frozen stage is a Sequential; a searching one (or its one-shot op) holds blocks.
    blocks = getattr(stage, "blocks", None)
    return list(blocks) if isinstance(blocks, torch.nn.ModuleList) else list(stage.children())


def _may_end_after_one_cell(num_cells: Any, stage_idx: int) -> bool:
    """Whether a searched depth gives stage ``stage_idx`` one cell for some values and
    more for others (its output pair then changes shape with the depth)."""
    if not isinstance(num_cells, (tuple, list)):
        return False
    depths = {(stage_idx + 1) * n // 3 - stage_idx * n // 3 for n in num_cells}
    return 1 in depths and max(depths) > 1


def _aligner(stage_depth: Any, c_in: Any, c_out: Any, reduces: bool, stage_idx: int) -> torch.nn.Module:
    """The op that brings a stage's input (which a one-cell stage passes on as its
    ``previous``) to the shape of its cells' outputs, as NNI 3.0's
    ``NDSStage.first_cell_transformation_factory``: a FactorizedReduce where the stage
    halves the resolution, else a 1x1 ReLU-conv-BN. A ``Repeat`` of it, one block deep
    where the stage holds one cell and empty otherwise, so that a frozen model (and the
    weights a supernet exports for it) holds it only where it runs."""

    def build(index: int) -> torch.nn.Module:
        return FactorizedReduce(c_in, c_out) if reduces else relu_conv_bn(c_in, c_out, 1, 1, 0)

    is_one: Any = stage_depth < 2  # an expression where the depth is searched
    depth = condition(is_one, 1, 0) if isinstance(stage_depth, Mutable) else int(is_one)
    return nn.Repeat(build, depth, label=f"stage{stage_idx}_align")


def _at_depth(depth: Any, values: list[Any]) -> Any:
    """``values[depth - 1]``, as an expression where ``depth`` is searched (the
    last value where every value reads the same)."""
    if not isinstance(depth, Mutable) or len({repr(v) for v in values}) == 1:
        return values[-1]
    chosen = values[-1]
    for k in range(len(values) - 1, 0, -1):
        chosen = condition(depth <= k, values[k - 1], chosen)  # type: ignore[operator]
    return chosen


def _first_cell_width(stage: torch.nn.Module, c: Any) -> Any:
    cell = _blocks(stage)[0]
    return c * len(cell.output_node_indices)  # type: ignore[arg-type]


#: Tiny spaces for quick checks (a fixed width builds twice as fast).
_REDUCED: dict[str, Any] = {"width": 8, "num_cells": 3, "dataset": "cifar", "num_labels": 10}


class _PaperSpace(NDS):
    """An NDS space of one paper's cell: ``cell_spec`` is its (ops, merge_op, nodes per
    cell); CIFAR-10 and NNI 3.0's width and depth choices by default."""

    cell_spec: ClassVar[tuple[list[str], str, int]]
    reduced_kwargs: ClassVar[dict[str, Any]] = dict(_REDUCED)

    def __init__(
        self,
        width: int | tuple[int, ...] = (16, 24, 32),
        num_cells: int | tuple[int, ...] = (4, 8, 12, 16, 20),
        dataset: Dataset = "cifar",
        auxiliary_loss: bool = False,
        drop_path_prob: float = 0.0,
        num_labels: int | None = None,
    ) -> None:
        ops, merge_op, nodes = self.cell_spec
        super().__init__(ops, merge_op, nodes, width, num_cells, dataset, auxiliary_loss, drop_path_prob, num_labels)


@register_space("nasnet")
class NASNet(_PaperSpace):
    """Zoph et al., *Learning Transferable Architectures for Scalable Image
    Recognition*, CVPR 2018 (https://arxiv.org/abs/1707.07012): 13 ops, 5 nodes,
    cells output their loose ends."""

    NASNET_OPS: ClassVar[list[str]] = [
        "skip_connect",
        "conv_3x1_1x3",
        "conv_7x1_1x7",
        "dil_conv_3x3",
        "avg_pool_3x3",
        "max_pool_3x3",
        "max_pool_5x5",
        "max_pool_7x7",
        "conv_1x1",
        "conv_3x3",
        "sep_conv_3x3",
        "sep_conv_5x5",
        "sep_conv_7x7",
    ]
    searched_models: ClassVar[dict[str, SearchedModel]] = {
        "nasnet-a": SearchedModel(
            "nasnet-a",
            3_274_102,
            "Zoph et al. 2018, CIFAR-10 NASNet-A (6 @ 768): 3.3M; width/cells set in NDS to that count (docs/hub.md)",
            {"width": 36, "num_cells": 18},
            num_labels=10,
            input_size=32,
        ),
    }
    cell_spec: ClassVar[tuple[list[str], str, int]] = (NASNET_OPS, "loose_end", 5)


@register_space("enas")
class ENAS(_PaperSpace):
    """Pham et al., *Efficient Neural Architecture Search via Parameter Sharing*,
    ICML 2018 (https://arxiv.org/abs/1802.03268): 5 ops, 5 nodes, loose ends."""

    ENAS_OPS: ClassVar[list[str]] = ["skip_connect", "sep_conv_3x3", "sep_conv_5x5", "avg_pool_3x3", "max_pool_3x3"]
    searched_models: ClassVar[dict[str, SearchedModel]] = {
        "enas": SearchedModel(
            "enas",
            4_582_370,
            "Pham et al. 2018, CIFAR-10 ENAS (micro search space): 4.6M; width/cells set in NDS to that count (docs/hub.md)",
            {"width": 40, "num_cells": 19},
            num_labels=10,
            input_size=32,
        ),
    }
    cell_spec: ClassVar[tuple[list[str], str, int]] = (ENAS_OPS, "loose_end", 5)


@register_space("amoebanet")
class AmoebaNet(_PaperSpace):
    """Real et al., *Regularized Evolution for Image Classifier Architecture
    Search*, AAAI 2019 (https://arxiv.org/abs/1802.01548): 8 ops, 5 nodes, loose ends."""

    AMOEBA_OPS: ClassVar[list[str]] = [
        "skip_connect",
        "sep_conv_3x3",
        "sep_conv_5x5",
        "sep_conv_7x7",
        "avg_pool_3x3",
        "max_pool_3x3",
        "dil_sep_conv_3x3",
        "conv_7x1_1x7",
    ]
    searched_models: ClassVar[dict[str, SearchedModel]] = {
        "amoebanet-a": SearchedModel(
            "amoebanet-a",
            3_167_686,
            "Real et al. 2019, CIFAR-10 AmoebaNet-A (N=6, F=36): 3.2M; width/cells set in NDS to that count (docs/hub.md)",
            {"width": 36, "num_cells": 21},
            num_labels=10,
            input_size=32,
        ),
    }
    cell_spec: ClassVar[tuple[list[str], str, int]] = (AMOEBA_OPS, "loose_end", 5)


@register_space("pnas")
class PNAS(_PaperSpace):
    """Liu et al., *Progressive Neural Architecture Search*, ECCV 2018
    (https://arxiv.org/abs/1712.00559): 8 ops, 5 nodes, cells output every node."""

    PNAS_OPS: ClassVar[list[str]] = [
        "sep_conv_3x3",
        "sep_conv_5x5",
        "sep_conv_7x7",
        "conv_7x1_1x7",
        "skip_connect",
        "avg_pool_3x3",
        "max_pool_3x3",
        "dil_conv_3x3",
    ]
    searched_models: ClassVar[dict[str, SearchedModel]] = {
        "pnas": SearchedModel(
            "pnas",
            3_176_602,
            "Liu et al. 2018, CIFAR-10 PNASNet-5 (N=3, F=48): 3.2M; width/cells set in NDS to that count (docs/hub.md)",
            {"width": 48, "num_cells": 9},
            num_labels=10,
            input_size=32,
        ),
    }
    cell_spec: ClassVar[tuple[list[str], str, int]] = (PNAS_OPS, "all", 5)


@register_space("darts")
class DARTS(_PaperSpace):
    """Liu, Simonyan & Yang, *DARTS: Differentiable Architecture Search*, ICLR 2019
    (https://arxiv.org/abs/1806.09055): 7 ops (no ``none``, as in NNI), 4 nodes,
    cells output every node."""

    DARTS_OPS: ClassVar[list[str]] = [
        "max_pool_3x3",
        "avg_pool_3x3",
        "skip_connect",
        "sep_conv_3x3",
        "sep_conv_5x5",
        "dil_conv_3x3",
        "dil_conv_5x5",
    ]
    searched_models: ClassVar[dict[str, SearchedModel]] = {
        "darts-v2": SearchedModel(
            "darts-v2",
            3_349_342,
            "Liu et al. 2019, Table 1, DARTS (second order), 20 cells, 36 channels: 3.3M; no auxiliary head, as DARTS counts",
            {"width": 36, "num_cells": 20},
            num_labels=10,
            input_size=32,
        ),
    }
    cell_spec: ClassVar[tuple[list[str], str, int]] = (DARTS_OPS, "all", 4)

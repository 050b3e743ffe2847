"""Small spaces holding every primitive of archsmith.nn, for the profilers' tests."""

from __future__ import annotations

from typing import Any

import torch

import archsmith.nn as nn


def conv_op(node: int, op: int, input_index: int) -> torch.nn.Module:
    # Per-input ops: stride and width depend on which state the op reads.
    return nn.Conv2d(4, 4, 3, padding=1, bias=input_index == 0)


class AllPrimitives(nn.ModelSpace):
    """Widths by choices and expressions, a LayerChoice, a Repeat with an expression
    depth, a loose-end Cell with per-input ops, an InputChoice, AutoActivation and a
    NAS-Bench-201 cell."""

    def __init__(self) -> None:
        super().__init__()
        width = nn.ValueChoice([4, 8], label="width")
        self.stem = nn.Conv2d(3, width, 3, padding=1)
        self.to4 = nn.Conv2d(width, 4, 1)
        self.op = nn.LayerChoice(
            {
                "conv": nn.Conv2d(4, 4, 3, padding=1),
                "pool": torch.nn.MaxPool2d(3, 1, 1),
                "sized": nn.Conv2d(4, 4, nn.ValueChoice([1, 3], label="opk"), padding="same"),
            },
            label="op",
        )
        self.body = nn.Repeat(
            lambda i: nn.Conv2d(4, 4, nn.ValueChoice([1, 3], label=f"k{i}"), padding="same"),
            depth=nn.ValueChoice([0, 1, 2], label="depth") + 1,
            label="body",
        )
        self.cell = nn.Cell(
            {"conv": conv_op, "id": torch.nn.Identity},
            num_nodes=3,
            num_ops_per_node=2,
            num_predecessors=2,
            merge_op="loose_end",
            label="cell",
        )
        self.pick = nn.InputChoice(2, 1, label="pick")
        self.act = nn.AutoActivation(label="act")
        self.nb201 = nn.NasBench201Cell(
            {"conv": lambda a, b: nn.Conv2d(a, b, 1), "skip": lambda a, b: torch.nn.Identity()}, 4, 4, label="nb201"
        )
        self.head = nn.Linear(self.cell.num_output_nodes * 4, nn.ValueChoice([3, 5], label="classes"))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.to4(self.stem(x))
        y = self.body(self.op(x))
        x = self.pick([x, y])
        x = self.nb201(self.act(x))
        x = self.cell(x, y)
        return self.head(x.mean((2, 3)))


def nb101_op(channels: int) -> torch.nn.Module:
    return torch.nn.Conv2d(channels, channels, 3, padding=1)


class NB101Space(nn.ModelSpace):
    """A NAS-Bench-101 cell between two layers."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__()
        self.cell = nn.NasBench101Cell(
            {"conv": nb101_op, "pool": lambda c: torch.nn.MaxPool2d(3, 1, 1)},
            3,
            8,
            lambda a, b: torch.nn.Conv2d(a, b, 1),
            max_num_nodes=5,
            max_num_edges=7,
            label="nb",
        )
        self.head = torch.nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.cell(x).mean((2, 3)))


class TokenSpace(nn.ModelSpace):
    """A parameter built at the widest width in the space and at the chosen one when
    frozen (as AutoFormer's class token)."""

    def __init__(self) -> None:
        super().__init__()
        width = nn.ValueChoice([4, 6, 8], label="width")
        self.token = torch.nn.Parameter(torch.zeros(1, nn.largest(width)))
        self.fc = nn.Linear(3, width)
        self.other = nn.Linear(3, nn.ValueChoice([2, 5], label="other"))


class JointSized(nn.ModelSpace):
    """A parameter whose frozen size depends on two decisions together (8 only when
    both are 1), which no change of one decision from the default shows."""

    def __init__(self) -> None:
        super().__init__()
        a = nn.ValueChoice([0, 1], label="a")
        b = nn.ValueChoice([0, 1], label="b")
        both = isinstance(a, int) and isinstance(b, int) and a == b == 1
        self.extra = torch.nn.Parameter(torch.zeros(8 if both else 4))
        self.fa = nn.Linear(2, a + 2)
        self.fb = nn.Linear(2, b + 2)


class GlueSpace(nn.ModelSpace):
    """Glue between layers that a memo of torch calls must not get wrong: a batched
    matmul on shapes the width decides, an in-place reshape of a call's output,
    int and float scalars, and a layer with a forward hook that computes."""

    def __init__(self) -> None:
        super().__init__()
        width = nn.ValueChoice([4, 8], label="width")
        self.conv = nn.Conv2d(3, width, 3, padding=1)
        self.fc = nn.Linear(width, 3)
        self.hooked = torch.nn.Linear(3, 3)
        self.hooked.register_forward_hook(lambda module, args, out: out @ torch.ones(3, 3, device=out.device))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.conv(x).flatten(2)
        a = torch.bmm(z, z.transpose(1, 2))  # (batch, width, width)
        a.unsqueeze_(0)
        a = a.squeeze(0)
        h = a.mean(2) * 2 + a.mean(2) * 2.0
        return self.hooked(self.fc(h))  # type: ignore[no-any-return]


class WidestLayer(nn.ModelSpace):
    """A plain layer built at the widest width in the space (at the chosen one when
    frozen): the searching form cannot run a narrower sample."""

    def __init__(self) -> None:
        super().__init__()
        width = nn.ValueChoice([4, 8], label="width")
        self.fc = nn.Linear(3, width)
        self.head = torch.nn.Linear(nn.largest(width), 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.fc(x))  # type: ignore[no-any-return]

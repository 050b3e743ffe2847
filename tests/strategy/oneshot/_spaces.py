"""Small model spaces, synthetic tasks and the support matrix for the one-shot tests.

``unsupported(space, family)`` reads which primitives a family can turn into mixed
ops off ``MIXED_OPS`` (and ``SLICED_LAYERS`` for layers with choices), so the tests
follow whatever families and algorithms are registered.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import DataLoader, TensorDataset

import archsmith.nn as nn
from archsmith.nn import ModelSpace, MutableLayer, MutableModule
from archsmith.strategy import Random
from archsmith.strategy.oneshot import FAMILY_ALGORITHMS, MIXED_OPS, ONESHOT_STRATEGIES, SLICED_LAYERS

D = 4  # feature width of the primitive spaces


# Support, read off the registries ----------------------------------------------------------
def mixed_op(family: str, module: torch.nn.Module) -> Any:
    """The factory ``family`` registers for ``module``'s type (or a base), else ``None``."""
    ops = MIXED_OPS.get(family, {})
    if isinstance(module, MutableLayer):
        return ops.get(MutableLayer) if module._torch_class in SLICED_LAYERS else None
    return next((ops[cls] for cls in type(module).__mro__ if cls in ops), None)


def refusal(family: str, module: torch.nn.Module) -> str | None:
    """Why ``family`` cannot handle this primitive itself (``None``: it can, or the
    primitive is a plain container of other primitives)."""
    factory = mixed_op(family, module)
    if factory is not None:
        check = getattr(factory, "unsupported_reason", None)
        return check(module) if check is not None else None
    if module.own_leaves():
        return f"the {family!r} family has no mixed op for {type(module).__name__}"
    return None


def unsupported(space: ModelSpace, family: str) -> dict[str, str]:
    """``{module path: reason}`` for every outermost primitive of ``space`` that
    ``family`` cannot handle."""
    found: dict[str, str] = {}

    def walk(module: torch.nn.Module, path: str) -> None:
        for name, child in module.named_children():
            where = f"{path}.{name}" if path else name
            if isinstance(child, MutableModule) and not isinstance(child, ModelSpace):
                why = refusal(family, child)
                if why is not None:
                    found[where] = why
                    continue
            walk(child, where)

    walk(space, "")
    return found


def supporters(module: torch.nn.Module, family: str) -> list[str]:
    """The algorithms of other families that handle ``module``."""
    return sorted(
        algorithm
        for other, algorithms in FAMILY_ALGORITHMS.items()
        if other != family and mixed_op(other, module) is not None and refusal(other, module) is None
        for algorithm in algorithms
    )


# Modules ----------------------------------------------------------------------------------------
def rotation(seed: int, d: int) -> torch.Tensor:
    q, _ = torch.linalg.qr(torch.randn(d, d, generator=torch.Generator().manual_seed(seed)))
    return q


class Project(torch.nn.Module):
    """A fixed (untrained) random rotation."""

    def __init__(self, d: int, seed: int) -> None:
        super().__init__()
        self.register_buffer("w", rotation(seed, d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.w


class Zero(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * 0


# Primitive spaces (one or a few primitives each) -------------------------------------------
class LayerChoiceList(nn.ModelSpace):
    def __init__(self) -> None:
        super().__init__()
        self.op = nn.LayerChoice(
            [nn.Linear(D, D), nn.Identity(), lambda: nn.Sequential(nn.Linear(D, D), nn.Tanh())], label="op"
        )
        self.fc = nn.Linear(D, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.op(x))


class LayerChoiceDict(nn.ModelSpace):
    def __init__(self) -> None:
        super().__init__()
        self.op = nn.LayerChoice(
            {"lin": nn.Linear(D, D), "id": nn.Identity(), "act": lambda: nn.Sequential(nn.Linear(D, D), nn.Tanh())},
            label="op",
        )
        self.fc = nn.Linear(D, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.op(x))


class Inputs(nn.ModelSpace):
    def __init__(self, n_chosen: int | None, reduction: str) -> None:
        super().__init__()
        self.a, self.b, self.c = nn.Linear(D, D), nn.Linear(D, D), nn.Linear(D, D)
        self.pick = nn.InputChoice(3, n_chosen, reduction, label="in")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pick([self.a(x), torch.tanh(self.b(x)), self.c(x)])


class Repeats(nn.ModelSpace):
    """A depth range from 0, a depth choice, a fixed depth with a choice per block, and
    a fixed depth whose blocks share one width label."""

    def __init__(self) -> None:
        super().__init__()
        self.r0 = nn.Repeat(lambda i: nn.Sequential(nn.Linear(D, D), nn.Tanh()), depth=(0, 2), label="d0")
        self.r1 = nn.Repeat(nn.Linear(D, D), depth=nn.choice("d1", [1, 3]), label="r1")
        self.r2 = nn.Repeat(
            lambda i: nn.LayerChoice({"lin": nn.Linear(D, D), "id": nn.Identity()}, label=f"blk{i}"),
            depth=2,
            label="r2",
        )
        width = nn.choice("w", [D, 2 * D])
        self.r3 = nn.Repeat([nn.Linear(D, width), nn.Linear(width, D)], depth=2, label="r3")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.r3(self.r2(self.r1(self.r0(x))))


class Layers(nn.ModelSpace):
    """Conv2d, BatchNorm2d, Linear, LayerNorm with value choices; ``c`` and ``h`` are
    each shared by three layers."""

    def __init__(self) -> None:
        super().__init__()
        c, h = nn.choice("c", [2, 4]), nn.choice("h", [3, 6])
        self.conv1 = nn.Conv2d(3, c, nn.choice("k", [1, 3]), padding="same")
        self.bn = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, 4, 3, padding=1)
        self.fc1 = nn.Linear(4, h)
        self.ln = nn.LayerNorm(h)
        self.fc2 = nn.Linear(h, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv2(torch.relu(self.bn(self.conv1(x)))).mean((2, 3))
        return self.fc2(self.ln(self.fc1(x)))


class Cells(nn.ModelSpace):
    def __init__(self, merge_op: str = "all") -> None:
        super().__init__()
        self.cell = nn.Cell(
            {"id": nn.Identity(), "lin": lambda: nn.Linear(D, D)},
            num_nodes=3,
            num_ops_per_node=2,
            num_predecessors=2,
            merge_op=merge_op,
            label="cell",
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cell([x, torch.tanh(x)])


def reduction_op(kind: str) -> Callable[[int, int, int | None], torch.nn.Module]:
    """A reduction cell's op factory: stride 2 on the cell's inputs 0 and 1 (full
    size), stride 1 on its nodes (already halved)."""

    def make(node: int, op: int, input_index: int | None) -> torch.nn.Module:
        stride = 2 if input_index is not None and input_index < 2 else 1
        if kind == "conv":
            return nn.Conv2d(2, 2, 3, stride=stride, padding=1)
        return nn.AvgPool2d(3, stride=stride, padding=1)

    return make


class ExpressionDepths(nn.ModelSpace):
    """Depth ``d + 1``, and (``joint``) a depth over two choices."""

    def __init__(self, joint: bool = False) -> None:
        super().__init__()
        d = nn.choice("d", [0, 1, 2])
        self.r0 = nn.Repeat(lambda i: nn.Linear(D, D), depth=d + 1, label="r0")
        self.r1 = nn.Repeat(
            lambda i: nn.LayerChoice([nn.Linear(D, D), nn.Tanh()], label=f"op{i}"), depth=d * 2, label="r1"
        )
        if joint:
            self.r2 = nn.Repeat(lambda i: nn.Linear(D, D), depth=d + nn.choice("e", [0, 1]), label="r2")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.r1(self.r0(x))
        return self.r2(x) if hasattr(self, "r2") else x


class ReductionCell(nn.ModelSpace):
    """A stride-2 reduction cell: each (node, input) needs its own op."""

    def __init__(self) -> None:
        super().__init__()
        self.cell = nn.Cell(
            {"conv": reduction_op("conv"), "pool": reduction_op("pool")},
            num_nodes=2,
            num_ops_per_node=2,
            num_predecessors=2,
            label="cell",
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cell([x, torch.tanh(x)]).mean((2, 3))


class NB201(nn.ModelSpace):
    def __init__(self) -> None:
        super().__init__()
        self.cell = nn.NasBench201Cell(
            {
                "skip": lambda ci, co: nn.Identity(),
                "conv": lambda ci, co: nn.Conv2d(ci, co, 1),
                "zero": lambda ci, co: Zero(),
            },
            2,
            2,
            label="nb",
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cell(x)


class Inner(nn.ModelSpace):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.op = nn.LayerChoice({"lin": nn.Linear(D, width), "id": nn.Identity()}, label="inner_op")
        self.fc = nn.Linear(width, nn.choice("inner_width", [2, 3]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.op(x))


class Nested(nn.ModelSpace):
    def __init__(self) -> None:
        super().__init__()
        self.pre = nn.LayerChoice([nn.Linear(D, D), nn.Identity()], label="pre")
        self.inner = Inner(D)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(self.pre(x))


class Activation(nn.ModelSpace):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(D, D)
        self.act = nn.AutoActivation(unit_num=1, label="act")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.fc(x))


class Shared(nn.ModelSpace):
    """Labels shared across primitives: two layer choices ``op``, a width ``w`` in
    three layers, a depth ``d`` in two repeats."""

    def __init__(self) -> None:
        super().__init__()
        w = nn.choice("w", [2, D])
        self.op1 = nn.LayerChoice({"lin": nn.Linear(D, D), "act": nn.Tanh()}, label="op")
        self.fc1 = nn.Linear(D, w)
        self.ln = nn.LayerNorm(w)
        self.fc2 = nn.Linear(w, D)
        self.op2 = nn.LayerChoice({"lin": nn.Linear(D, D), "act": nn.Tanh()}, label="op")
        depth = nn.choice("d", [1, 2])
        self.rep1 = nn.Repeat(lambda i: nn.Linear(D, D), depth=depth, label="rep1")
        self.rep2 = nn.Repeat(lambda i: nn.Linear(D, D), depth=depth, label="rep2")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.fc2(self.ln(self.fc1(self.op1(x))))
        return self.rep2(self.rep1(self.op2(x)))


@dataclass
class Case:
    make: Callable[[], ModelSpace]
    input_shape: tuple[int, ...]


CASES: dict[str, Case] = {
    "layer_choice_list": Case(LayerChoiceList, (3, D)),
    "layer_choice_dict": Case(LayerChoiceDict, (3, D)),
    **{
        f"input_choice_{n}_{reduction}": Case(lambda n=n, r=reduction: Inputs(n, r), (3, D))
        for n in (1, 2, None)
        for reduction in ("sum", "mean", "concat")
    },
    "repeat": Case(Repeats, (3, D)),
    "repeat_expression": Case(ExpressionDepths, (3, D)),
    "repeat_joint_depth": Case(lambda: ExpressionDepths(joint=True), (3, D)),
    "layers": Case(Layers, (3, 3, 5, 5)),
    "cell_all": Case(Cells, (3, D)),
    "cell_loose_end": Case(lambda: Cells("loose_end"), (3, D)),
    "cell_reduction": Case(ReductionCell, (3, 2, 8, 8)),
    "nasbench201": Case(NB201, (3, 2, 3, 3)),
    "nested": Case(Nested, (3, D)),
    "shared": Case(Shared, (3, D)),
    "auto_activation": Case(Activation, (3, D)),
}


# Synthetic tasks with one clearly right decision -------------------------------------------------
F, CLASSES = 8, 4  # input width; the class is the argmax of the first CLASSES features of the target


class Head(torch.nn.Module):
    """Logits = a trained scale times the first ``CLASSES`` features."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * x[:, :CLASSES]


class PickLayer(nn.ModelSpace):
    """Right: ``identity`` (the last candidate, not the default)."""

    def __init__(self) -> None:
        super().__init__()
        self.op = nn.LayerChoice({"zero": Zero(), "project": Project(F, 1), "identity": nn.Identity()}, label="op")
        self.head = Head()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.op(x))


class PickInput(nn.ModelSpace):
    """Right: input 2 (the untouched one)."""

    def __init__(self) -> None:
        super().__init__()
        self.project, self.zero = Project(F, 1), Zero()
        self.pick = nn.InputChoice(3, 1, label="input")
        self.head = Head()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.pick([self.zero(x), self.project(x), x]))


class PickDepth(nn.ModelSpace):
    """Right: depth 1 (the target rotates the input once)."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Repeat(Project(F, 2), depth=(0, 2), label="depth")
        self.head = Head()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


class PickWidth(nn.ModelSpace):
    """Right: the widest hidden layer (narrower ones cannot separate the classes)."""

    def __init__(self) -> None:
        super().__init__()
        width = nn.choice("width", [1, 2, F])
        self.fc1 = nn.Linear(F, width)
        self.fc2 = nn.Linear(width, CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.fc1(x))


@dataclass
class Task:
    make: Callable[[], ModelSpace]
    teacher: Callable[[torch.Tensor], torch.Tensor]
    label: str
    right: Any


TASKS: dict[str, Task] = {
    "layer_choice": Task(PickLayer, lambda x: x, "op", "identity"),
    "input_choice": Task(PickInput, lambda x: x, "input", 2),
    "repeat": Task(PickDepth, lambda x: x @ rotation(2, F), "depth", 1),
    "value_choice": Task(PickWidth, lambda x: x, "width", F),
}


def evaluator(task: Task, epochs: int = 3, learning_rate: float = 0.05, **kwargs: Any) -> Any:
    from archsmith.evaluator import Classification

    x = torch.randn(384, F, generator=torch.Generator().manual_seed(0))
    y = task.teacher(x)[:, :CLASSES].argmax(1)
    train, val = TensorDataset(x[:256], y[:256]), TensorDataset(x[256:], y[256:])
    return Classification(
        train_dataloaders=DataLoader(train, batch_size=32, shuffle=True),
        val_dataloaders=DataLoader(val, batch_size=128),
        max_epochs=epochs,
        learning_rate=learning_rate,
        **kwargs,
    )


# Algorithms ----------------------------------------------------------------------------------------
#: Small, fast settings per registered algorithm; any other one is built with ``cls()``.
TEST_KWARGS: dict[str, Callable[[], dict[str, Any]]] = {
    "darts": lambda: {"arc_learning_rate": 0.1},
    "gumbeldarts": lambda: {"arc_learning_rate": 0.1},
    "proxyless": lambda: {"arc_learning_rate": 0.1},
    "enas": lambda: {
        "ctrl_lr": 0.05,
        "ctrl_steps": 20,
        "ctrl_steps_aggregate": 5,
        "hidden_size": 16,
        "ranking_samples": 3,
    },
    "randomoneshot": lambda: {"search": Random(), "search_budget": 10},
}

ALGORITHMS = sorted(ONESHOT_STRATEGIES)


def make(name: str, **overrides: Any) -> Any:
    return ONESHOT_STRATEGIES[name](**{**TEST_KWARGS.get(name, dict)(), **overrides})


class Costly(torch.nn.Module):
    """The identity, at the price of a linear layer (parameters and FLOPs)."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + 0 * self.lin(x)

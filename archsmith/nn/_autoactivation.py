"""``AutoActivation``: a searched activation function (Ramachandran et al., 2017,
"Searching for Activation Functions"), as NNI's ``AutoActivation``.

``unit_num`` units: ``out = unary_0(x)``, then per unit
``out = binary_i(out, unary_{i+1}(x))``. Decisions ``<label>/unary_<k>`` and
``<label>/binary_<i>`` choose op names from ``UNARY_OPS`` and ``BINARY_OPS``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import torch

from archsmith.space import SpaceError, auto_label

from ._choice import LayerChoice
from ._primitive import Primitive

_EPS = 1e-7

UNARY_OPS: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "identity": lambda x, b: x,
    "neg": lambda x, b: -x,
    "abs": lambda x, b: x.abs(),
    "square": lambda x, b: x * x,
    "cube": lambda x, b: x * x * x,
    "sqrt": lambda x, b: torch.sqrt(x.abs() + _EPS),
    "mul_beta": lambda x, b: b * x,
    "add_beta": lambda x, b: x + b,
    "log": lambda x, b: torch.log(x.abs() + _EPS),
    "exp": lambda x, b: torch.exp(x.clamp(max=20.0)),
    "sin": lambda x, b: torch.sin(x),
    "cos": lambda x, b: torch.cos(x),
    "tanh": lambda x, b: torch.tanh(x),
    "asinh": lambda x, b: torch.asinh(x),
    "atan": lambda x, b: torch.atan(x),
    "sinc": lambda x, b: torch.sinc(x),
    "relu": lambda x, b: torch.relu(x),
    "min0": lambda x, b: torch.clamp(x, max=0.0),
    "sigmoid": lambda x, b: torch.sigmoid(x),
    "softplus": lambda x, b: torch.nn.functional.softplus(x),
    "gauss": lambda x, b: torch.exp(-x * x),
    "erf": lambda x, b: torch.erf(x),
}

BINARY_OPS: dict[str, Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "add": lambda x, y, b: x + y,
    "mul": lambda x, y, b: x * y,
    "sub": lambda x, y, b: x - y,
    "div": lambda x, y, b: x / (y + _EPS),
    "max": lambda x, y, b: torch.maximum(x, y),
    "min": lambda x, y, b: torch.minimum(x, y),
    "sigmoid_mul": lambda x, y, b: torch.sigmoid(x) * y,
    "exp_sq_diff": lambda x, y, b: torch.exp(-b * (x - y) ** 2),
    "exp_abs_diff": lambda x, y, b: torch.exp(-b * (x - y).abs()),
    "mix": lambda x, y, b: b * x + (1 - b) * y,
}


class UnaryOp(torch.nn.Module):
    """One of ``UNARY_OPS``, with a learnable ``beta`` for the ops that use one."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name
        self.beta = torch.nn.Parameter(torch.ones(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return UNARY_OPS[self.name](x, self.beta)

    def extra_repr(self) -> str:
        return self.name


class BinaryOp(torch.nn.Module):
    """One of ``BINARY_OPS``, with a learnable ``beta`` for the ops that use one."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name
        self.beta = torch.nn.Parameter(torch.ones(1))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return BINARY_OPS[self.name](x, y, self.beta)

    def extra_repr(self) -> str:
        return self.name


def _factory(cls: type, name: str) -> Callable[[], torch.nn.Module]:
    return lambda: cls(name)


class AutoActivationBody(torch.nn.Module):
    """The computation of a searched activation; a frozen ``AutoActivation`` is one."""

    def __init__(self, unit_num: int = 1, *, label: str) -> None:
        super().__init__()
        if isinstance(unit_num, bool) or not isinstance(unit_num, int) or unit_num < 1:
            raise SpaceError(f"AutoActivation {label!r}: unit_num must be a positive integer, got {unit_num!r}")
        self.label = label
        unary = {name: _factory(UnaryOp, name) for name in UNARY_OPS}
        binary = {name: _factory(BinaryOp, name) for name in BINARY_OPS}
        self.unaries = torch.nn.ModuleList(
            [LayerChoice(unary, label=f"{label}/unary_{k}") for k in range(unit_num + 1)]
        )
        self.binaries = torch.nn.ModuleList([LayerChoice(binary, label=f"{label}/binary_{i}") for i in range(unit_num)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.unaries[0](x)
        for unary, binary in zip(self.unaries[1:], self.binaries):
            out = binary(out, unary(x))
        return out


class AutoActivation(Primitive, AutoActivationBody):
    """A searched activation function of ``unit_num`` units (see module docstring)."""

    kind: ClassVar[str] = "auto_activation"

    @classmethod
    def create_frozen(cls, unit_num: int = 1, *, label: str | None = None) -> AutoActivationBody:
        return AutoActivationBody(unit_num, label=auto_label(label, cls.kind))

    def __init__(self, unit_num: int = 1, *, label: str | None = None) -> None:
        AutoActivationBody.__init__(self, unit_num, label=auto_label(label, self.kind))

    def forward(self, x: torch.Tensor) -> Any:
        return AutoActivationBody.forward(self, x)

    def describe(self) -> str:
        return f"AutoActivation({self.label!r})"

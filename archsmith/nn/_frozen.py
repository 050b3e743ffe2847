"""Plain modules that frozen primitives become. They hold no choices and need
nothing of archsmith at run time beyond their own class."""

from __future__ import annotations

from typing import Any

import torch

REDUCTIONS = ("sum", "mean", "concat", "none")


def reduce_tensors(reduction: str, tensors: list[torch.Tensor], dim: int = 1) -> Any:
    """NNI's input reduction: ``none`` gives the list; a single tensor is itself."""
    if reduction == "none":
        return tensors
    if not tensors:
        return None
    if len(tensors) == 1:
        return tensors[0]
    if reduction == "concat":
        return torch.cat(tensors, dim=dim)
    total = tensors[0]
    for t in tensors[1:]:
        total = total + t
    return total / len(tensors) if reduction == "mean" else total


class ChosenInputs(torch.nn.Module):
    """What a frozen ``InputChoice`` becomes: picks ``chosen`` inputs and reduces them."""

    def __init__(self, chosen: list[int], reduction: str) -> None:
        super().__init__()
        self.chosen = list(chosen)
        self.reduction = reduction

    def forward(self, candidate_inputs: list[torch.Tensor]) -> Any:
        return reduce_tensors(self.reduction, [candidate_inputs[i] for i in self.chosen])

    def extra_repr(self) -> str:
        return f"chosen={self.chosen}, reduction={self.reduction!r}"

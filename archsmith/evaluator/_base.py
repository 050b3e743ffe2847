"""``Evaluator``: how one architecture is trained and scored."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import torch

from archsmith.space import Leaf, evaluate, leaves_of

from ._trial import current_trial


class Evaluator(ABC):
    """Trains and scores a frozen model. Must be picklable (cloudpickle is used, so
    functions and classes from a script's ``__main__`` are fine).

    Arguments may hold choices: they join the experiment's search space (joint
    architecture and hyper-parameter search) and are resolved per trial by
    :meth:`resolved`.
    """

    def preferred_direction(self, objective: str) -> str | None:
        """``"maximize"``/``"minimize"`` if this evaluator knows which way its metric
        ``objective`` is better (e.g. accuracy vs. MSE), else ``None``."""
        return None

    @abstractmethod
    def evaluate(self, model: torch.nn.Module) -> Any:
        """Train and score ``model``; return the final metric (or report it with
        ``archsmith.report_final_result`` and return ``None``)."""

    def arguments(self) -> dict[str, Any]:
        """The arguments that may hold choices (resolved per trial)."""
        return {}

    def search_space_leaves(self) -> list[Leaf]:
        """The choices in this evaluator's arguments."""
        return leaves_of(self.arguments())

    def resolved(self) -> dict[str, Any]:
        """The arguments with every choice replaced by the running trial's value."""
        ctx = current_trial()
        args = self.arguments()
        if ctx is None:
            defaults = {leaf.label: leaf.default() for leaf in leaves_of(args)}
            return evaluate(args, defaults)
        return evaluate(args, ctx.sample)

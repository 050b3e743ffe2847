"""``Proxyless`` (ProxylessNAS; Cai et al., ICLR 2019): binarized paths.

The ``proxyless`` family gates each choice with *binary gates*
(``_proxyless_gates``). Every step samples two distinct options of a label from
the softmax of its architecture parameters, renormalises their two
probabilities ``q`` and draws the active one from them; a gated op's output is

    y = g_a * o_a + g_b * o_b,    g = hard + (q - q.detach())

with ``hard`` one-hot on the active option ``a``. Its value is exactly ``o_a``
(``g`` is ``[1, 0]``), and the gradient to the parameters is the paper's
binary-gate estimator restricted to the two paths:
``dL/dalpha_i = sum_j (dL/dy . o_j) q_j (delta_ij - q_i)``. The other path ``b``
runs without autograd (its gradient is multiplied by ``g_b = 0``), so an
architecture step holds the activations of one path plus the output of a second;
a weight step runs the active path only. In eval mode a choice runs its most
probable option.

Ops sharing a label share one gate per step (:class:`BinaryGates`, one per
supernet). The family gates (``_proxyless_ops``) ``LayerChoice``,
``InputChoice`` with ``n_chosen=1``, ``Cell`` made of them (but for
``merge_op='loose_end'`` and per-input ops), choices in the arguments of the
sliced layers (one gate per label; the other value's output is cut or
zero-padded to the active one's width) and ``Repeat`` depths (a gate per choice
the depth reads, over two depths each). Every other primitive is named by ``check_supported`` before any
training, with the algorithms that support it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from archsmith.space import Constraint

from ._base import OneShotStrategy, Ranking, check_architecture_training
from ._hooks import OneShotCallback
from ._profiled_cost import (
    CostModel,
    ExpectedDecisionCost,
    checked_cost,
    checked_cost_weight,
    describe_cost,
    expected_cost_model,
)
from ._proxyless_cost import Cost, ExpectedCost
from ._proxyless_gates import BinaryGates, gates_of
from ._proxyless_ops import FAMILY, GatedCellFactory, GatedInputChoice, GatedLayer, GatedLayerChoice, GatedRepeat
from ._ranking import most_probable

__all__ = [
    "FAMILY",
    "BinaryGates",
    "Cost",
    "GatedCellFactory",
    "GatedInputChoice",
    "GatedLayer",
    "GatedLayerChoice",
    "GatedRepeat",
    "Proxyless",
    "gates_of",
]


def _measured_on_modules(cost: Any) -> bool:
    """Whether ``cost`` is one of the forms measured on the supernet's modules
    (``"params"``, ``"flops"``, ``cost(module)``), not a cost model of samples."""
    if isinstance(cost, str):
        return cost in ("params", "flops")
    if isinstance(cost, Constraint):  # callable, but a bound: checked_cost says so
        return False
    return callable(cost) and not callable(getattr(cost, "profile", None))


class Proxyless(OneShotStrategy):
    """ProxylessNAS: binary gates over two sampled paths per step.

    Each training step is an architecture step on an architecture batch (two
    paths per choice, Adam on the architecture parameters with the paper's
    betas ``(0, 0.999)``; afterwards the two updated parameters are shifted so the
    unsampled options keep their probabilities) and a weight step on the training
    batch (the active path only); both resample the gates.

    - ``arc_learning_rate``: the architecture optimizer's learning rate;
    - ``gradient_clip_val``: clip the weights' gradient norm (``None``: no clipping);
    - ``warmup_epochs``: epochs of weight training (paths sampled from the
      near-uniform initial distribution) before architecture steps start;
    - ``cost``: penalise the expected cost of the architecture, measured on the
      supernet's modules: ``"params"`` (parameter counts), ``"flops"`` (measured
      once per op, on the inputs of its first forward) or ``cost(module) -> float``
      (called on each ``LayerChoice`` candidate, each ``Repeat`` block a depth
      choice may drop, and the plain torch layer of each value of a layer with
      choices in its arguments; a candidate's nested choices are swapped for
      ``Identity`` there and costed on their own; see ``_proxyless_cost``); or
      from a cost model of whole architectures: a profiler
      (``LatencyProfiler(space, x)``, ``FlopsProfiler``, ``CallableProfiler(fn)``
      for a function ``sample -> float``), a ``CostTable`` or a table
      ``{label: {value: cost}}`` (a per-decision model, see ``_profiled_cost``);
      ``None``: no penalty;
    - ``cost_weight``: the architecture loss adds ``cost_weight`` times the expected
      cost under the softmax of the architecture parameters (the sum over the
      parts or decisions of ``sum over values of p(value) * cost at that value``)
      divided by the most it can be, so the term lies in ``[0, 1]``;
    - ``callbacks``: ``OneShotCallback``s (see ``OneShotStrategy``).

    ``LayerChoice``, ``InputChoice(n_chosen=1)`` (also inside a ``Cell`` with
    ``merge_op='all'``), choices in the arguments of the sliced layers (widths,
    kernel sizes, expansion ratios) and ``Repeat`` depths are searched; the
    ranking is by the product of the chosen options' probabilities.
    """

    family = FAMILY
    uses_arch_data = True

    def __init__(
        self,
        arc_learning_rate: float = 1e-3,
        gradient_clip_val: float | None = None,
        warmup_epochs: int = 0,
        cost: Cost | CostModel | None = None,
        cost_weight: float = 0.1,
        *,
        arch_data: str = "split",
        top_k: int = 10,
        callbacks: Sequence[OneShotCallback] | None = None,
    ) -> None:
        super().__init__(arch_data=arch_data, top_k=top_k, callbacks=callbacks)
        check_architecture_training(arc_learning_rate, gradient_clip_val, warmup_epochs)
        if not _measured_on_modules(cost):
            checked_cost(cost, self.name)
        cost_weight = checked_cost_weight(cost_weight)
        self.arc_learning_rate, self.gradient_clip_val, self.warmup_epochs = (
            arc_learning_rate,
            gradient_clip_val,
            warmup_epochs,
        )
        self.cost, self.cost_weight = cost, float(cost_weight)
        self._epoch = 0

    # Set-up ------------------------------------------------------------------------------
    def configure(self) -> None:
        super().configure()
        self.arch_optimizer = torch.optim.Adam(
            self.supernet.architecture_parameters(), lr=self.arc_learning_rate, betas=(0.0, 0.999), eps=1e-8
        )
        self.gates = gates_of(self.supernet.decisions)
        self.gates.generator.manual_seed(self.rng.randrange(2**62))
        self.costs: ExpectedCost | ExpectedDecisionCost | None = None
        if _measured_on_modules(self.cost):
            self.costs = ExpectedCost(self.supernet.model, self.supernet.decisions, self.cost)  # type: ignore[arg-type]
        elif self.cost is not None:
            decisions = self.supernet.decisions
            self.costs = expected_cost_model(
                self.cost, self.supernet.search_space, decisions.labels_with_alphas(), self.name
            )

    def expected_cost(self) -> torch.Tensor | None:
        """The expected cost under the architecture parameters' softmax, divided by the
        most it can be (``None`` without a cost, or until a module-measured term is
        measured); differentiable."""
        if self.costs is None:
            return None
        if isinstance(self.costs, ExpectedCost):
            return self.costs.expected()
        decisions = self.supernet.decisions
        return self.costs.normalised(
            {label: torch.softmax(decisions.alpha(label), dim=-1) for label in self.costs.labels}
        )

    def on_epoch_start(self, epoch: int, max_epochs: int) -> None:
        self._epoch = epoch

    # Steps -------------------------------------------------------------------------------
    def training_step(self, batch: Any, arch_batch: Any) -> dict[str, float]:
        shown = {}
        if self._epoch >= self.warmup_epochs:
            shown.update(self.architecture_step(arch_batch))
        shown["train_loss"] = self.weight_step(batch)
        return shown

    def architecture_step(self, arch_batch: Any) -> dict[str, float]:
        """Resample the gates, set the architecture parameters' gradient (binary-gate
        estimator plus the cost term) on ``arch_batch`` and step them."""
        self.gates.resample()
        alphas = self.supernet.architecture_parameters()
        self.arch_optimizer.zero_grad()
        _, _, loss = self.recipe.loss(self.supernet, arch_batch)
        shown = {"arch_loss": float(loss.detach())}
        total = loss
        cost = self.expected_cost() if self.cost is not None else None
        if cost is not None:
            shown["arch_cost"] = float(cost.detach())
            total = total + self.cost_weight * cost
        if not total.requires_grad:  # no choice with two options ran: nothing to learn
            return shown
        # Only the architecture parameters: the weights' gradients are left alone.
        grads = torch.autograd.grad(total, alphas, allow_unused=True)
        for alpha, grad in zip(alphas, grads):
            alpha.grad = torch.zeros_like(alpha) if grad is None else grad
        pairs = {label: [active, other] for label, (active, other) in self.gates.paths.items() if other is not None}
        before = {
            label: torch.logsumexp(self.supernet.decisions.alpha(label).detach()[pair], dim=-1)
            for label, pair in pairs.items()
        }
        self.arch_optimizer.step()
        with torch.no_grad():  # keep the sum of exp(alpha) of each pair: unsampled options keep their share
            for label, pair in pairs.items():
                alpha = self.supernet.decisions.alpha(label)
                alpha[pair] -= torch.logsumexp(alpha[pair], dim=-1) - before[label]
        return shown

    def weight_step(self, batch: Any) -> float:
        """Resample the gates and train the weights of the active paths on ``batch``."""
        self.gates.resample()
        with self.gates.single_path():
            self.weight_optimizer.zero_grad()
            _, _, loss = self.recipe.loss(self.supernet, batch)
            if not loss.requires_grad:  # the active paths have no weights (identity ops only)
                return float(loss.detach())
            loss.backward()
        if self.gradient_clip_val is not None:
            torch.nn.utils.clip_grad_norm_(self.supernet.weight_parameters(), self.gradient_clip_val)
        self.weight_optimizer.step()
        return float(loss.detach())

    # Results and state -------------------------------------------------------------------
    def ranking(self, k: int) -> Ranking:
        return most_probable(self.supernet.decisions, self.supernet.search_space, k, self.supernet.active_labels)

    def state_dict(self) -> dict[str, Any]:
        return {
            **super().state_dict(),
            "arch_optimizer": self.arch_optimizer.state_dict(),
            "gates": self.gates.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.arch_optimizer.load_state_dict(state["arch_optimizer"])
        self.gates.load_state_dict(state["gates"])

    def __repr__(self) -> str:
        if self.cost is None or isinstance(self.cost, str):
            cost = repr(self.cost)
        elif _measured_on_modules(self.cost):
            cost = getattr(self.cost, "__name__", repr(self.cost))
        else:
            cost = describe_cost(self.cost)
        return (
            f"Proxyless(arc_learning_rate={self.arc_learning_rate}, gradient_clip_val={self.gradient_clip_val}, "
            f"warmup_epochs={self.warmup_epochs}, cost={cost}, cost_weight={self.cost_weight})"
        )

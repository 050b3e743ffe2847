"""``DARTS`` (Liu et al., 2019) and ``GumbelDARTS`` (FBNet; Wu et al., 2019).

Every choice becomes a softmax over its options (Gumbel-softmax for FBNet); the
architecture parameters and the weights are trained in alternation: an
architecture step on an architecture batch, then a weight step on a training
batch. The ranking is by the product of the chosen options' probabilities.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from archsmith.space import SpaceError

from ._base import OneShotStrategy, Ranking, check_architecture_training
from ._differentiable import check_mixing, set_mixing
from ._hooks import OneShotCallback
from ._profiled_cost import (
    CostModel,
    ExpectedDecisionCost,
    checked_cost,
    checked_cost_weight,
    describe_cost,
    expected_cost_model,
)
from ._ranking import most_probable


class DARTS(OneShotStrategy):
    """Differentiable architecture search.

    - ``arc_learning_rate``: Adam's learning rate for the architecture parameters
      (betas 0.5/0.999, weight decay 1e-3, as in the paper);
    - ``unrolled``: second-order approximation (one virtual weight step, Hessian by
      finite differences); first-order otherwise;
    - ``gradient_clip_val``: clip the weights' gradient norm (``None``: no clipping);
    - ``warmup_epochs``: epochs of weight training before architecture steps start;
    - ``mixing``: how a layer with choices in its arguments (a width, a kernel size)
      mixes its candidates: ``"weights"`` runs it once on the weighted sum of their
      zero-padded weight slices (exact for convolutions, linear layers and batch
      norm; the others fall back to outputs), ``"outputs"`` runs each candidate and
      sums the outputs;
    - ``cost``: penalise the expected cost of the architecture: a profiler
      (``FlopsProfiler(space, x)``, ``LatencyProfiler``, ``CallableProfiler(fn)``
      for a function ``sample -> float``), a ``CostTable`` or a table
      ``{label: {value: cost}}`` (turned into a per-decision model; see
      ``_profiled_cost``); ``None``: no penalty;
    - ``cost_weight``: the architecture loss adds ``cost_weight`` times the expected
      cost under the choice weights' softmax divided by the most it can be (so in
      ``[0, 1]``; logged as ``arch_cost``), as Proxyless does;
    - ``callbacks``: ``OneShotCallback``s (see ``OneShotStrategy``).
    """

    family = "differentiable"
    uses_arch_data = True

    def __init__(
        self,
        arc_learning_rate: float = 3e-4,
        unrolled: bool = False,
        gradient_clip_val: float | None = None,
        warmup_epochs: int = 0,
        *,
        mixing: str = "weights",
        cost: CostModel | None = None,
        cost_weight: float = 0.1,
        arch_data: str = "split",
        top_k: int = 10,
        callbacks: Sequence[OneShotCallback] | None = None,
    ) -> None:
        super().__init__(arch_data=arch_data, top_k=top_k, callbacks=callbacks)
        check_architecture_training(arc_learning_rate, gradient_clip_val, warmup_epochs)
        self.mixing = check_mixing(mixing)
        self.cost, self.cost_weight = checked_cost(cost, self.name), checked_cost_weight(cost_weight)
        self.arc_learning_rate, self.unrolled = arc_learning_rate, unrolled
        self.gradient_clip_val, self.warmup_epochs = gradient_clip_val, warmup_epochs
        self._epoch = 0

    def configure(self) -> None:
        super().configure()
        set_mixing(self.supernet.decisions, self.mixing)
        self.arch_optimizer = torch.optim.Adam(
            self.supernet.architecture_parameters(), lr=self.arc_learning_rate, betas=(0.5, 0.999), weight_decay=1e-3
        )
        self.costs: ExpectedDecisionCost | None = None
        if self.cost is not None:
            labels = self.supernet.decisions.labels_with_alphas()
            self.costs = expected_cost_model(self.cost, self.supernet.search_space, labels, self.name)

    def cost_probabilities(self, label: str) -> torch.Tensor:
        """The distribution over ``label``'s options the cost is expected under: the
        softmax of its architecture parameters."""
        return torch.softmax(self.supernet.decisions.alpha(label), dim=-1)

    def expected_cost(self) -> torch.Tensor | None:
        """The expected cost divided by the most it can be (``None`` without a
        cost); differentiable in the architecture parameters."""
        if self.costs is None:
            return None
        return self.costs.normalised({label: self.cost_probabilities(label) for label in self.costs.labels})

    def _add_cost(self, shown: dict[str, float]) -> None:
        """Add ``cost_weight`` times the expected cost's gradient to the architecture
        parameters' gradients, and show the cost."""
        cost = self.expected_cost()
        if cost is None:
            return
        shown["arch_cost"] = float(cost.detach())
        if self.cost_weight:
            (self.cost_weight * cost).backward()

    def on_epoch_start(self, epoch: int, max_epochs: int) -> None:
        self._epoch = epoch

    def training_step(self, batch: Any, arch_batch: Any) -> dict[str, float]:
        shown = {}
        if self._epoch >= self.warmup_epochs:
            self.arch_optimizer.zero_grad()
            if self.unrolled:
                shown["arch_loss"] = self._unrolled_arch_gradient(batch, arch_batch)
            else:
                _, _, arch_loss = self.recipe.loss(self.supernet, arch_batch)
                arch_loss.backward()
                shown["arch_loss"] = float(arch_loss.detach())
            self._add_cost(shown)
            self.arch_optimizer.step()
        self.weight_optimizer.zero_grad()
        _, _, loss = self.recipe.loss(self.supernet, batch)
        loss.backward()
        if self.gradient_clip_val is not None:
            torch.nn.utils.clip_grad_norm_(self.supernet.weight_parameters(), self.gradient_clip_val)
        self.weight_optimizer.step()
        shown["train_loss"] = float(loss.detach())
        return shown

    def _unrolled_arch_gradient(self, batch: Any, arch_batch: Any) -> float:
        """Set the architecture gradient of L_val(w - xi * grad_w L_train(w, a), a)."""
        weights = [w for w in self.supernet.weight_parameters() if w.requires_grad]  # frozen ones take no step
        alphas = self.supernet.architecture_parameters()
        xi = float(self.weight_optimizer.param_groups[0]["lr"])
        backup = [w.detach().clone() for w in weights]
        _, _, train_loss = self.recipe.loss(self.supernet, batch)
        grads = torch.autograd.grad(train_loss, weights, allow_unused=True)
        with torch.no_grad():  # the virtual step
            for w, g in zip(weights, grads):
                if g is not None:
                    w.sub_(xi * g)
        _, _, val_loss = self.recipe.loss(self.supernet, arch_batch)
        d_alpha_and_w = torch.autograd.grad(val_loss, [*alphas, *weights], allow_unused=True)
        d_alpha, d_w = d_alpha_and_w[: len(alphas)], d_alpha_and_w[len(alphas) :]
        with torch.no_grad():
            for w, b in zip(weights, backup):
                w.copy_(b)
        hessian = self._hessian_vector(batch, weights, alphas, d_w)
        for alpha, da, h in zip(alphas, d_alpha, hessian):
            grad = torch.zeros_like(alpha) if da is None else da
            alpha.grad = grad - xi * h
        return float(val_loss.detach())

    def _hessian_vector(self, batch: Any, weights: list[Any], alphas: list[Any], vector: Any) -> list[torch.Tensor]:
        """(grad_a L_train(w + eps v) - grad_a L_train(w - eps v)) / 2 eps."""
        norm = torch.sqrt(sum((v**2).sum() for v in vector if v is not None))  # type: ignore[arg-type]
        eps = 0.01 / max(float(norm), 1e-12)
        grads: list[list[torch.Tensor]] = []
        for sign in (1.0, -2.0, 1.0):  # w + eps v, then w - eps v, then back to w
            with torch.no_grad():
                for w, v in zip(weights, vector):
                    if v is not None:
                        w.add_(sign * eps * v)
            if len(grads) < 2:
                _, _, loss = self.recipe.loss(self.supernet, batch)
                found = torch.autograd.grad(loss, alphas, allow_unused=True)
                grads.append([torch.zeros_like(a) if g is None else g for a, g in zip(alphas, found)])
        return [(p - m) / (2 * eps) for p, m in zip(*grads)]

    def ranking(self, k: int) -> Ranking:
        return most_probable(self.supernet.decisions, self.supernet.search_space, k, self.supernet.active_labels)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "arch_optimizer": self.arch_optimizer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.arch_optimizer.load_state_dict(state["arch_optimizer"])

    def __repr__(self) -> str:
        return (
            f"{self.name}(arc_learning_rate={self.arc_learning_rate}, unrolled={self.unrolled}, "
            f"gradient_clip_val={self.gradient_clip_val}, warmup_epochs={self.warmup_epochs}, mixing={self.mixing!r}"
            f"{self._cost_repr()})"
        )

    def _cost_repr(self) -> str:
        return "" if self.cost is None else f", cost={describe_cost(self.cost)}, cost_weight={self.cost_weight}"


class GumbelDARTS(DARTS):
    """FBNet's search: DARTS with Gumbel-softmax sampling of the choice weights,
    the temperature annealed exponentially from ``temperature[0]`` to
    ``temperature[1]`` over the epochs (a single number: constant). Validation
    uses the noiseless softmax."""

    def __init__(
        self,
        temperature: float | tuple[float, float] = (5.0, 0.2),
        arc_learning_rate: float = 3e-4,
        gradient_clip_val: float | None = None,
        warmup_epochs: int = 0,
        *,
        mixing: str = "weights",
        cost: CostModel | None = None,
        cost_weight: float = 0.1,
        arch_data: str = "split",
        top_k: int = 10,
        callbacks: Sequence[OneShotCallback] | None = None,
    ) -> None:
        super().__init__(
            arc_learning_rate,
            False,
            gradient_clip_val,
            warmup_epochs,
            mixing=mixing,
            cost=cost,
            cost_weight=cost_weight,
            arch_data=arch_data,
            top_k=top_k,
            callbacks=callbacks,
        )
        start, end = (temperature, temperature) if isinstance(temperature, (int, float)) else temperature
        if not (start > 0 and end > 0):
            raise SpaceError(f"temperature must be positive (start, end), got {temperature!r}")
        self.temperature = (float(start), float(end))
        self.tau = float(start)

    def configure(self) -> None:
        super().configure()
        self.supernet.decisions.weight_function = self._weights
        # One draw per label per forward: the ops sharing a label see one sample, and
        # a layer reading a label several times pays for one draw.
        self._drawn: dict[str, torch.Tensor] = {}
        self.supernet.register_forward_pre_hook(lambda module, args: self._drawn.clear())

    def _weights(self, label: str, alpha: torch.Tensor) -> torch.Tensor:
        if not self.supernet.training:
            return torch.softmax(alpha, dim=-1)
        drawn = self._drawn.get(label)
        if drawn is None:
            drawn = self._drawn[label] = torch.nn.functional.gumbel_softmax(alpha, tau=self.tau, hard=False)
        return drawn

    def cost_probabilities(self, label: str) -> torch.Tensor:
        return torch.softmax(self.supernet.decisions.alpha(label) / self.tau, dim=-1)

    def on_epoch_start(self, epoch: int, max_epochs: int) -> None:
        super().on_epoch_start(epoch, max_epochs)
        start, end = self.temperature
        progress = epoch / max(1, max_epochs - 1)
        self.tau = start * math.exp(progress * math.log(end / start))

    def __repr__(self) -> str:
        return (
            f"GumbelDARTS(temperature={self.temperature}, arc_learning_rate={self.arc_learning_rate}, "
            f"mixing={self.mixing!r}{self._cost_repr()})"
        )

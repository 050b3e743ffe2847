"""``Proxyless`` (ProxylessNAS; Cai et al., ICLR 2019): binarized paths.

The ``proxyless`` family gates each choice with *binary gates*. Every step samples
two distinct candidates of a label from the softmax of its architecture
parameters, renormalises their two probabilities ``q`` and draws the active one
from them; the op's output is

    y = g_a * o_a + g_b * o_b,    g = hard + (q - q.detach())

with ``hard`` one-hot on the active candidate ``a``. Its value is exactly ``o_a``
(``g`` is ``[1, 0]``), and the gradient to the parameters is the paper's
binary-gate estimator restricted to the two paths:
``dL/dalpha_i = sum_j (dL/dy . o_j) q_j (delta_ij - q_i)``. The other path ``b``
runs without autograd (its gradient is multiplied by ``g_b = 0``), so an
architecture step holds the activations of one path plus the output of a second;
a weight step runs the active path only. In eval mode a choice runs its most
probable candidate.

Ops sharing a label share one gate per step (:class:`BinaryGates`, one per
supernet). The family gates ``LayerChoice`` and ``InputChoice`` with
``n_chosen=1`` (and so a ``Cell`` made of them, but for ``merge_op='loose_end'``);
every other primitive is named by ``check_supported`` before any training, with
the algorithms that support it.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Union

import torch

from archsmith.nn import Cell, InputChoice, LayerChoice
from archsmith.nn._cell import PerInputOps
from archsmith.nn._frozen import reduce_tensors
from archsmith.space import SpaceError

from ._base import OneShotStrategy, Ranking, check_architecture_training
from ._ranking import most_probable
from ._sampling import CellFactory, ChoiceOp, InputOp
from ._supernet import Decisions, register_mixed_op

FAMILY = "proxyless"

#: ``"params"``, ``"flops"`` or ``cost(candidate_module) -> float``.
Cost = Union[str, Callable[[torch.nn.Module], float]]


class BinaryGates:
    """The binary gates of one supernet: per label, the ``(active, other)``
    candidates of the current step (``other`` is ``None`` for a single option).

    ``resample()`` draws every label afresh (the algorithm calls it before each
    forward); a label not drawn yet is drawn on first use. ``single_path()``
    makes the ops run the active candidate only (weight steps).
    """

    def __init__(self, decisions: Decisions) -> None:
        self._decisions = weakref.ref(decisions)
        self.paths: dict[str, tuple[int, int | None]] = {}
        self.active_only = False
        # Seeded from the global generator (seeded by the loop); the algorithm reseeds it.
        self.generator = torch.Generator().manual_seed(int(torch.randint(2**62, ()).item()))

    @property
    def decisions(self) -> Decisions:
        decisions = self._decisions()
        if decisions is None:  # pragma: no cover - the supernet holds its decisions
            raise RuntimeError("the supernet of these gates is gone")
        return decisions

    def resample(self) -> None:
        """Draw the two paths and the active one of every label with parameters."""
        for label in self.decisions.labels_with_alphas():
            self.paths[label] = self._draw(label)

    def path(self, label: str) -> tuple[int, int | None]:
        if label not in self.paths:
            self.paths[label] = self._draw(label)
        return self.paths[label]

    def _draw(self, label: str) -> tuple[int, int | None]:
        probs = torch.softmax(self.decisions.alpha(label).detach().double().cpu(), dim=-1)
        if probs.numel() == 1:
            return 0, None
        # Every option stays drawable: multinomial without replacement needs two non-zero weights.
        first, second = torch.multinomial(probs.clamp_min(1e-30), 2, replacement=False, generator=self.generator)
        i, j = int(first), int(second)
        q_i = probs[i] / (probs[i] + probs[j])
        return (i, j) if float(torch.rand((), dtype=torch.float64, generator=self.generator)) < q_i else (j, i)

    def gate(self, label: str) -> torch.Tensor:
        """``[g_active, g_other]``: value ``[1, 0]``, gradient that of the two paths'
        renormalised probabilities."""
        active, other = self.path(label)
        assert other is not None
        alpha = self.decisions.alpha(label)
        q = torch.softmax(alpha[[active, other]], dim=-1)
        hard = torch.tensor([1.0, 0.0], dtype=q.dtype, device=q.device)
        return hard + (q - q.detach())  # exactly [1, 0]: (hard + q) - q would round

    def most_probable(self, label: str) -> int:
        return int(torch.argmax(self.decisions.alpha(label).detach()))

    @contextlib.contextmanager
    def single_path(self) -> Iterator[None]:
        """Within: every gated op runs its active candidate only."""
        before, self.active_only = self.active_only, True
        try:
            yield
        finally:
            self.active_only = before

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])


def gates_of(decisions: Decisions) -> BinaryGates:
    """The binary gates of the supernet that owns ``decisions`` (made on first use)."""
    gates = decisions.state.get("binary_gates")
    if gates is None:
        gates = decisions.state["binary_gates"] = BinaryGates(decisions)
    return gates  # type: ignore[no-any-return]


def _gated(gate: torch.Tensor, active: Any, other: Any) -> Any:
    """``gate[0] * active + gate[1] * other`` (through tuples and lists of tensors)."""
    if isinstance(active, torch.Tensor):
        g = gate.to(active.dtype) if active.is_floating_point() else gate
        return g[0] * active + g[1] * other
    if isinstance(active, (tuple, list)) and type(active) is type(other) and len(active) == len(other):
        return type(active)(_gated(gate, a, o) for a, o in zip(active, other))
    raise TypeError(
        f"a gated choice mixes tensors (or tuples/lists of them); its candidates returned {type(active).__name__}"
    )


@register_mixed_op(FAMILY, LayerChoice)
class GatedLayerChoice(ChoiceOp):
    """A layer choice with binary gates (see the module's docstring)."""

    #: The cost of each candidate, set by the algorithm when it penalises cost.
    costs: list[float] | None = None

    def create_parameters(self) -> None:
        self.decisions.alpha(self.label)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        gates = gates_of(self.decisions)
        if not self.training:
            return self.candidates[gates.most_probable(self.label)](*args, **kwargs)
        active, other = gates.path(self.label)
        if other is None or gates.active_only:
            return self.candidates[active](*args, **kwargs)
        out = self.candidates[active](*args, **kwargs)
        with torch.no_grad():  # its weights' gradient is multiplied by g_other = 0
            rest = self.candidates[other](*args, **kwargs)
        return _gated(gates.gate(self.label), out, rest)


@register_mixed_op(FAMILY, InputChoice)
class GatedInputChoice(InputOp):
    """An input choice of one input with binary gates over the candidate inputs."""

    @classmethod
    def unsupported_reason(cls, primitive: InputChoice) -> str | None:
        if primitive.n_chosen == 1:
            return None
        return f"binary gates choose one input, not n_chosen={primitive.n_chosen}"

    def create_parameters(self) -> None:
        self.decisions.alpha(self.label)

    def forward(self, candidate_inputs: Sequence[torch.Tensor]) -> Any:
        gates = gates_of(self.decisions)
        if not self.training:
            return reduce_tensors(self.reduction, [candidate_inputs[gates.most_probable(self.label)]])
        active, other = gates.path(self.label)
        if other is None or gates.active_only:
            return reduce_tensors(self.reduction, [candidate_inputs[active]])
        rest = candidate_inputs[other].detach()
        return reduce_tensors(self.reduction, [_gated(gates.gate(self.label), candidate_inputs[active], rest)])


class GatedCellFactory(CellFactory):
    """A ``Cell`` keeps its body, its choices gated; ``merge_op='loose_end'`` is
    refused (its output nodes follow the chosen inputs, and two run at once)."""

    def unsupported_reason(self, cell: Cell) -> str | None:
        if cell.merge_op == "loose_end":
            return "merge_op='loose_end' makes the output nodes depend on the sample, and binary gates run two at once"
        if any(isinstance(m, PerInputOps) for m in cell.modules()):
            return (
                "its op factories take the input index, so each input has its own op, and binary gates "
                "over the inputs would run ops of different inputs at once"
            )
        return None


register_mixed_op(FAMILY, Cell)(GatedCellFactory(loose_end=False))  # type: ignore[arg-type]


def _parameter_count(module: torch.nn.Module) -> float:
    return float(sum(p.numel() for p in module.parameters()))


def _flops(op: GatedLayerChoice, args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[float]:
    """Each candidate's FLOPs on these inputs (eval mode, no autograd; modes restored)."""
    from torch.utils.flop_counter import FlopCounterMode

    modes = [(m, m.training) for m in op.modules()]
    op.eval()
    costs = []
    try:
        with torch.no_grad():
            for candidate in op.candidates:
                with FlopCounterMode(display=False) as counter:
                    candidate(*args, **kwargs)
                costs.append(float(counter.get_total_flops()))
    finally:
        for module, training in modes:
            module.training = training
    return costs


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
    - ``cost``: penalise the expected cost of the architecture: ``"params"`` (each
      candidate's parameter count), ``"flops"`` (measured once per candidate, on the
      inputs of the op's first forward) or ``cost(candidate_module) -> float``;
      ``None``: no penalty;
    - ``cost_weight``: the architecture loss adds ``cost_weight`` times the expected
      cost (sum over choices of ``sum_j p_j cost_j``) divided by the cost of the
      costliest architecture, so the term lies in ``[0, 1]``.

    Only ``LayerChoice`` and ``InputChoice(n_chosen=1)`` are searched (also inside
    a ``Cell`` with ``merge_op='all'``); the ranking
    is by the product of the chosen options' probabilities.
    """

    family = FAMILY
    uses_arch_data = True

    def __init__(
        self,
        arc_learning_rate: float = 1e-3,
        gradient_clip_val: float | None = None,
        warmup_epochs: int = 0,
        cost: Cost | None = None,
        cost_weight: float = 0.1,
        *,
        arch_data: str = "split",
        top_k: int = 10,
    ) -> None:
        super().__init__(arch_data=arch_data, top_k=top_k)
        check_architecture_training(arc_learning_rate, gradient_clip_val, warmup_epochs)
        if cost is not None and cost not in ("params", "flops") and not callable(cost):
            raise SpaceError(f"cost must be 'params', 'flops', a function cost(module) -> float, or None, got {cost!r}")
        if isinstance(cost_weight, bool) or not isinstance(cost_weight, (int, float)) or not cost_weight >= 0:
            raise SpaceError(f"cost_weight must be a number >= 0, got {cost_weight!r}")
        self.arc_learning_rate, self.gradient_clip_val, self.warmup_epochs = (
            arc_learning_rate,
            gradient_clip_val,
            warmup_epochs,
        )
        self.cost, self.cost_weight = cost, float(cost_weight)
        self._epoch = 0
        self._measuring = False

    # Set-up ------------------------------------------------------------------------------
    def configure(self) -> None:
        super().configure()
        self.arch_optimizer = torch.optim.Adam(
            self.supernet.architecture_parameters(), lr=self.arc_learning_rate, betas=(0.0, 0.999), eps=1e-8
        )
        self.gates = gates_of(self.supernet.decisions)
        self.gates.generator.manual_seed(self.rng.randrange(2**62))
        self.choices = [op for op in self.supernet.mixed_ops if isinstance(op, GatedLayerChoice)]
        for op in self.choices:
            op.costs = None
        if self.cost == "flops":
            for op in self.choices:
                self._measure_on_first_call(op)
        elif self.cost is not None:
            measure = _parameter_count if self.cost == "params" else self.cost
            assert callable(measure)
            for op in self.choices:
                op.costs = [float(measure(candidate)) for candidate in op.candidates]

    def _measure_on_first_call(self, op: GatedLayerChoice) -> None:
        def hook(module: torch.nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
            if self._measuring:  # a choice inside a candidate being measured: measured on its own call
                return
            self._measuring = True
            try:
                op.costs = _flops(op, args, kwargs)
            finally:
                self._measuring = False
            handle.remove()

        handle = op.register_forward_pre_hook(hook, with_kwargs=True)

    def expected_cost(self) -> torch.Tensor | None:
        """The expected cost under the architecture parameters' softmax, divided by the
        costliest architecture's (``None`` until a choice has costs); differentiable."""
        terms, worst = [], 0.0
        for op in self.choices:
            if op.costs is None:
                continue
            probs = torch.softmax(self.supernet.decisions.alpha(op.label), dim=-1)
            terms.append((probs * torch.tensor(op.costs, dtype=probs.dtype, device=probs.device)).sum())
            worst += max(op.costs)
        if not terms or worst <= 0:
            return None
        return torch.stack(terms).sum() / worst

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
        cost = getattr(self.cost, "__name__", repr(self.cost)) if callable(self.cost) else repr(self.cost)
        return (
            f"Proxyless(arc_learning_rate={self.arc_learning_rate}, gradient_clip_val={self.gradient_clip_val}, "
            f"warmup_epochs={self.warmup_epochs}, cost={cost}, cost_weight={self.cost_weight})"
        )

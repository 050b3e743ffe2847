"""The binary gates of a Proxyless supernet, and how a gated op mixes its two paths.

Per label and step, :class:`BinaryGates` holds the ``(active, other)`` options
drawn from the softmax of the label's architecture parameters. ``gate(label)`` is
``hard + (q - q.detach())``: the value ``[1, 0]`` exactly, the gradient that of
the two options' renormalised probabilities ``q``. A gated op returns

    y = o_active + sum over its labels l of (g_l[0] - 1) * o_active + g_l[1] * o_l

where ``o_l`` is the output with ``l`` at its other option (the op's other labels
at their active ones): the value is exactly ``o_active``, and the gradient to the
parameters of each label is the binary-gate estimator over its two paths.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F

from ._supernet import Decisions


class BinaryGates:
    """The binary gates of one supernet: per label, the ``(active, other)``
    options of the current step (``other`` is ``None`` for a single option).

    ``resample()`` draws every label afresh (the algorithm calls it before each
    forward); a label not drawn yet is drawn on first use. ``single_path()``
    makes the ops run the active option only (weight steps, and inside the
    second path of another op, which runs without autograd).
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
        """``(active, other)`` option indices of ``label`` in this step."""
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
    def second_path(self) -> Iterator[None]:
        """Within: no autograd, and nested gated ops run their active option only
        (their value is that option's output either way)."""
        with torch.no_grad(), self.single_path():
            yield

    @contextlib.contextmanager
    def single_path(self) -> Iterator[None]:
        """Within: every gated op runs its active option only."""
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


def gated(gate: torch.Tensor, active: Any, other: Any) -> Any:
    """``gate[0] * active + gate[1] * other`` (through tuples and lists of tensors)."""
    if isinstance(active, torch.Tensor):
        g = gate.to(active.dtype) if active.is_floating_point() else gate
        return g[0] * active + g[1] * other
    if isinstance(active, (tuple, list)) and type(active) is type(other) and len(active) == len(other):
        return type(active)(gated(gate, a, o) for a, o in zip(active, other))
    raise TypeError(
        f"a gated choice mixes tensors (or tuples/lists of them); its candidates returned {type(active).__name__}"
    )


class _GatedSum(torch.autograd.Function):
    """Value: a copy of ``main`` (so that in-place ops downstream leave the saved
    tensors alone). Gradient: ``grad`` to ``main``, and to row ``l`` of ``gates``
    ``[grad . main, grad . others[l]]``, each other output seen at ``main``'s shape
    (cut, or zero-padded: the padding adds nothing to the dot product)."""

    @staticmethod
    def forward(ctx: Any, main: torch.Tensor, gates: torch.Tensor, *others: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(main, *others)
        return main.clone()

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> Any:
        main, *others = ctx.saved_tensors
        on_main = (grad * main).sum()
        rows = [torch.stack([on_main, _overlap_dot(grad, other)]) for other in others]
        return grad, torch.stack(rows), *([None] * len(others))


def _overlap_dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    common = tuple(slice(0, min(x, y)) for x, y in zip(a.shape, b.shape))
    return (a[common] * b[common]).sum()


def _cut(x: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """``x`` cut to at most ``shape`` in each dimension, in memory of its own."""
    if x.dim() != len(shape):
        raise ValueError(
            f"cannot mix the two paths of a gated choice: outputs of shapes {tuple(x.shape)} and {tuple(shape)} "
            "differ in their number of dimensions"
        )
    if all(have <= want for have, want in zip(x.shape, shape)):
        return x
    return x[tuple(slice(0, want) for want in shape)].contiguous()  # the wider rest is freed


def gated_sum(main: Any, gates: list[torch.Tensor], others: list[Any]) -> Any:
    """``main + sum_l (gates[l][0] - 1) * main + gates[l][1] * fit(others[l], main.shape)``:
    the value of ``main`` (every gate is ``[1, 0]``), and the binary-gate gradient of
    each label to its gate; keeps only ``main`` and the other outputs (cut to
    ``main``'s shape where wider) for the backward pass. Tuples and lists of
    tensors are gated element by element (their dot products add up)."""
    if not gates:
        return main
    if type(main) in (tuple, list) and all(type(o) is type(main) and len(o) == len(main) for o in others):
        return type(main)(gated_sum(m, gates, [o[k] for o in others]) for k, m in enumerate(main))
    if not isinstance(main, torch.Tensor) or not all(isinstance(o, torch.Tensor) for o in others):
        raise TypeError(
            "a gated choice mixes tensors (or plain tuples/lists of them); its options returned "
            f"{type(main).__name__} and {', '.join(type(o).__name__ for o in others)}"
        )
    stacked = torch.stack(gates)
    if not torch.is_grad_enabled() or not (stacked.requires_grad or main.requires_grad):
        return main
    others = [_cut(other.detach(), main.shape) for other in others]
    return _GatedSum.apply(main, stacked.to(main.dtype), *others)  # type: ignore[no-any-return]


def fit(x: torch.Tensor, shape: torch.Size | tuple[int, ...]) -> torch.Tensor:
    """``x`` cut to, or zero-padded up to, ``shape`` in each dimension (the leading
    part kept): the other path of a width or depth choice, seen at the active
    path's shape."""
    if x.shape == shape:
        return x
    if x.dim() != len(shape):
        raise ValueError(
            f"cannot mix the two paths of a gated choice: outputs of shapes {tuple(x.shape)} and {tuple(shape)} "
            "differ in their number of dimensions"
        )
    pad: list[int] = []
    for dim in reversed(range(x.dim())):
        if x.shape[dim] > shape[dim]:
            x = x.narrow(dim, 0, shape[dim])
        pad += [0, max(0, shape[dim] - x.shape[dim])]
    return F.pad(x, pad) if any(pad) else x

"""Proxyless on ``Repeat``: a fixed depth exports under the frozen model's keys,
and a depth choice has a binary gate over two sampled depths (value, gradient,
the blocks that run, a search end to end)."""

from __future__ import annotations

import random
from typing import Any

import torch

import archsmith.nn as nn
from archsmith.evaluator import Classification
from archsmith.strategy import DARTS, Proxyless, RandomOneShot
from archsmith.strategy.oneshot import Supernet
from archsmith.strategy.oneshot._base import recipe_of
from archsmith.strategy.oneshot._proxyless import GatedRepeat, gates_of

from .test_proxyless import estimator, set_alpha


class FixedDepth(nn.ModelSpace):
    """A layer choice, then a fixed-depth ``Repeat`` (the frozen model holds it as
    a ``Sequential``: keys ``blocks.0.weight``, not ``blocks.blocks.0.weight``)."""

    def __init__(self) -> None:
        super().__init__()
        self.op = nn.LayerChoice({"lin": torch.nn.Linear(4, 4), "id": torch.nn.Identity()}, label="op")
        self.blocks = nn.Repeat(lambda i: torch.nn.Linear(4, 4), depth=2, label="blocks")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.op(x))


class Depth(nn.ModelSpace):
    """``depth`` in 0..3 over tanh-linear blocks, each block a layer choice."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Repeat(
            lambda i: torch.nn.Sequential(
                nn.LayerChoice({"lin": torch.nn.Linear(4, 4), "id": torch.nn.Identity()}, label=f"op{i}"),
                torch.nn.Tanh(),
            ),
            depth=(0, 3),
            label="depth",
        )
        self.head = torch.nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def one_epoch(n: int = 64, epochs: int = 1) -> Classification:
    x = torch.randn(n, 4, generator=torch.Generator().manual_seed(0))
    y = x.argmax(1)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=16)
    return Classification(train_dataloaders=loader, val_dataloaders=loader, max_epochs=epochs, learning_rate=1e-2)


def test_fixed_depth_repeat_freezes_with_the_supernets_weights_as_under_darts_and_spos() -> None:
    x = torch.randn(5, 4)
    for strategy in (Proxyless(arc_learning_rate=0.1), DARTS(), RandomOneShot(search_budget=4)):
        space = FixedDepth()
        ranking = strategy.search(space, one_epoch(), seed=0)
        best = ranking[0][0]
        model = space.freeze(best, weights_from=strategy.supernet).eval()
        state = model.state_dict()
        assert "blocks.0.weight" in state and "blocks.1.bias" in state
        if isinstance(strategy, Proxyless):
            assert_supernet_computes(strategy.supernet, best, model, x)


def gated(supernet: Supernet) -> GatedRepeat:
    (op,) = [m for m in supernet.mixed_ops if isinstance(m, GatedRepeat) and m.labels()]
    return op


def prefix_outputs(op: GatedRepeat, x: torch.Tensor) -> list[torch.Tensor]:
    """The output after each depth 0..max with every block's choice at its active option."""
    outputs = [x]
    for block in op.blocks:
        outputs.append(block(outputs[-1]))
    return outputs


def test_the_value_is_the_active_depth_and_eval_runs_the_most_probable() -> None:
    torch.manual_seed(0)
    supernet = Supernet(Depth(), "proxyless")
    op, gates = gated(supernet), gates_of(supernet.decisions)
    set_alpha(supernet, "depth", [0.1, -0.3, 0.8, 0.2])
    x = torch.randn(3, 4)
    seen = set()
    for _ in range(15):
        gates.resample()
        active, other = gates.paths["depth"]
        assert other is not None and other != active
        seen.add(active)
        with torch.no_grad(), gates.single_path():
            expected = prefix_outputs(op, x)[active]  # depth values are 0..3: index = depth
        assert torch.equal(op(x), expected)
    assert len(seen) > 2
    supernet.eval()
    with torch.no_grad():
        assert torch.equal(op(x), prefix_outputs(op, x)[2])


def test_depth_gradient_is_the_binary_gate_estimator_and_the_blocks_that_run() -> None:
    torch.manual_seed(1)
    supernet = Supernet(Depth(), "proxyless")
    op, gates = gated(supernet), gates_of(supernet.decisions)
    alpha = supernet.decisions.alpha("depth")
    set_alpha(supernet, "depth", [0.4, -0.5, 0.3, 1.0])
    x, w = torch.randn(3, 4), torch.randn(3, 4)
    calls: list[int] = []
    for i, block in enumerate(op.blocks):
        block.register_forward_hook(lambda m, a, o, i=i: calls.append(i))
    for _ in range(8):
        gates.resample()
        active, other = gates.paths["depth"]
        assert other is not None
        calls.clear()
        alpha.grad = None
        y = op(x)
        assert calls == list(range(max(active, other)))  # up to the deeper of the two, once each
        (y * w).sum().backward()
        with torch.no_grad(), gates.single_path():
            outputs = prefix_outputs(op, x)
        assert alpha.grad is not None
        torch.testing.assert_close(alpha.grad, estimator(alpha, active, other, outputs, w))
        # Blocks beyond the active depth ran without autograd.
        for block in op.blocks[active:]:
            assert all(p.grad is None or torch.all(p.grad == 0) for p in block.parameters())
        supernet.zero_grad()
        calls.clear()
        with gates.single_path():
            op(x)
        assert calls == list(range(active))


def test_a_search_moves_the_depth_and_exports_what_the_supernet_computes() -> None:
    space = Depth()
    strategy = Proxyless(arc_learning_rate=0.1)
    evaluator = one_epoch(96, epochs=2)
    strategy.recipe = recipe_of(evaluator, strategy.name)
    torch.manual_seed(0)
    strategy.rng = random.Random(0)
    strategy.supernet = Supernet(space, strategy.family, strategy.name)
    strategy.configure()
    alpha = strategy.supernet.decisions.alpha("depth")
    before = alpha.detach().clone()
    batch = next(iter(strategy.recipe.train_data))
    strategy.architecture_step(batch)
    assert alpha.grad is not None and alpha.grad.abs().sum() > 0
    assert not torch.equal(alpha.detach(), before)

    search = Proxyless(arc_learning_rate=0.1)
    ranking = search.search(space, evaluator, seed=0)
    best: dict[str, Any] = ranking[0][0]
    probabilities = search.supernet.decisions.probabilities()
    assert probabilities["depth"] != [0.25] * 4
    model = space.freeze(best, weights_from=search.supernet).eval()
    x = torch.randn(6, 4)
    assert_supernet_computes(search.supernet, best, model, x)


def assert_supernet_computes(supernet: Supernet, sample: dict[str, Any], model: torch.nn.Module, x: Any) -> None:
    """The supernet in eval mode runs the most probable options: made ``sample``'s,
    it computes what ``model`` (``sample`` frozen with its weights) does."""
    for label in supernet.decisions.labels_with_alphas():
        options = supernet.decisions.options(label)
        set_alpha(supernet, label, [5.0 if value == sample[label] else 0.0 for value in options])
    supernet.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(x), supernet(x))


class JointDepth(nn.ModelSpace):
    """A depth that reads two choices: ``a + b`` blocks (0 to 3)."""

    def __init__(self) -> None:
        super().__init__()
        depth = nn.ValueChoice([0, 1, 2], label="a") + nn.ValueChoice([0, 1], label="b")
        self.body = nn.Repeat(lambda i: torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Tanh()), depth, label="r")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def test_a_depth_over_two_choices_has_a_gate_per_choice() -> None:
    torch.manual_seed(4)
    supernet = Supernet(JointDepth(), "proxyless").train()
    op, gates = gated(supernet), gates_of(supernet.decisions)
    alphas = {label: supernet.decisions.alpha(label) for label in ("a", "b")}
    x, w = torch.randn(3, 4), torch.randn(3, 4)
    with torch.no_grad():
        prefixes = prefix_outputs(op, x)  # index = depth
    for _ in range(8):
        gates.resample()
        (aa, ab), (ba, bb) = gates.paths["a"], gates.paths["b"]
        assert ab is not None and bb is not None
        for alpha in alphas.values():
            alpha.grad = None
        y = op(x)
        assert torch.equal(y, prefixes[aa + ba])  # a's values are 0, 1, 2 and b's 0, 1: index = value
        (y * w).sum().backward()
        by_a = [prefixes[a + ba] for a in range(3)]
        by_b = [prefixes[aa + b] for b in range(2)]
        torch.testing.assert_close(alphas["a"].grad, estimator(alphas["a"], aa, ab, by_a, w))
        torch.testing.assert_close(alphas["b"].grad, estimator(alphas["b"], ba, bb, by_b, w))
    space, search = JointDepth(), Proxyless(arc_learning_rate=0.1)
    best = search.search(space, one_epoch(), seed=0)[0][0]
    model = space.freeze(best, weights_from=search.supernet).eval()
    assert len(model.body) == best["a"] + best["b"]
    assert_supernet_computes(search.supernet, best, model, x)


class PairBlock(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(4, 4)

    def forward(self, pair: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        a, b = pair
        return torch.tanh(self.lin(a)), a + b


class Pairs(nn.ModelSpace):
    """Blocks that pass a pair of tensors on (as a cell passes its two states)."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Repeat(PairBlock(), depth=(1, 3), label="depth")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.body((x, x))
        return a + b


def test_blocks_passing_tuples_are_gated_element_by_element() -> None:
    torch.manual_seed(5)
    supernet = Supernet(Pairs(), "proxyless").train()
    op, gates = gated(supernet), gates_of(supernet.decisions)
    alpha = supernet.decisions.alpha("depth")
    x, w = torch.randn(3, 4), torch.randn(3, 4)
    for _ in range(4):
        gates.resample()
        active, other = gates.paths["depth"]
        assert other is not None
        alpha.grad = None
        a, b = op((x, x))
        with torch.no_grad():
            outputs = [(x, x)]
            for block in op.blocks:
                outputs.append(block(outputs[-1]))
        assert torch.equal(a, outputs[active + 1][0]) and torch.equal(b, outputs[active + 1][1])
        ((a + b) * w).sum().backward()
        summed = [sum(pair) for pair in outputs[1:]]  # dL/da = dL/db = w: the dot products add up
        torch.testing.assert_close(alpha.grad, estimator(alpha, active, other, summed, w))

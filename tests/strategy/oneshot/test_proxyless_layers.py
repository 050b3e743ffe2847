"""Proxyless on choices in layer arguments: one binary gate per label over two
values on the shared sliced weights (value, gradient, shapes through layers that
share labels, BatchNorm statistics), a search end to end, the hub spaces with
width choices, and the expected cost against a brute-force expectation."""

from __future__ import annotations

import itertools
import math
import random
from typing import Any

import pytest
import torch
import torch.nn.functional as F

import archsmith.nn as nn
from archsmith.evaluator import Classification
from archsmith.strategy import Proxyless
from archsmith.strategy.oneshot import Supernet
from archsmith.strategy.oneshot._base import recipe_of
from archsmith.strategy.oneshot._proxyless import GatedLayer, gates_of
from archsmith.strategy.oneshot._proxyless_gates import fit

from .test_proxyless import estimator, set_alpha
from .test_proxyless_repeat import assert_supernet_computes


class ConvChain(nn.ModelSpace):
    """conv(w1, kernel k) -> bn(w1) -> conv(in=w1, out=w2) -> bn(w2) -> linear(w2):
    ``w1`` is read by three layers, ``w2`` by three."""

    def __init__(self) -> None:
        super().__init__()
        w1, w2 = nn.choice("w1", [2, 4]), nn.choice("w2", [3, 6])
        self.conv1 = nn.Conv2d(3, w1, nn.choice("k", [1, 3]), padding="same")
        self.bn1 = nn.BatchNorm2d(w1)
        self.conv2 = nn.Conv2d(w1, w2, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(w2)
        self.fc = nn.Linear(w2, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn1(self.conv1(x)))
        x = torch.relu(self.bn2(self.conv2(x)))
        return self.fc(x.mean((2, 3)))


def active_sample(supernet: Supernet) -> dict[str, Any]:
    gates = gates_of(supernet.decisions)
    return {label: supernet.decisions.options(label)[gates.path(label)[0]] for label in supernet.search_space}


def test_shapes_compose_the_value_is_the_active_subnet_and_running_statistics_follow_it() -> None:
    torch.manual_seed(0)
    space = ConvChain()
    supernet = Supernet(space, "proxyless").train()
    assert len(supernet.architecture_parameters()) == 3  # w1, w2, k: one gate each, however many layers read it
    gates, x = gates_of(supernet.decisions), torch.randn(5, 3, 6, 6)
    widths: list[int] = []
    supernet.model.conv2.register_forward_hook(lambda m, a, out: widths.append(out.shape[1]))
    drawn = set()
    for _ in range(8):
        gates.resample()
        assert all(other is not None for _, other in gates.paths.values())
        sample = active_sample(supernet)
        drawn.add((sample["w1"], sample["w2"]))
        before = {k: v.clone() for k, v in supernet.state_dict().items()}
        out = supernet(x)  # two paths per label
        assert out.shape == (5, 4) and widths[-1] == sample["w2"]
        after = {k: v.clone() for k, v in supernet.state_dict().items()}
        supernet.load_state_dict(before)
        with gates.single_path():
            single = supernet(x)
        assert torch.equal(out, single)
        for key, value in supernet.state_dict().items():  # the second paths left the statistics alone
            assert torch.equal(value, after[key]), key
        frozen = space.freeze(sample, weights_from=supernet).train()
        supernet.load_state_dict(before)
        torch.testing.assert_close(frozen(x), out)
    assert len(drawn) > 1


def test_runs_per_step_one_per_layer_plus_one_per_second_value_of_each_label_it_reads() -> None:
    space = ConvChain()
    strategy = Proxyless()
    strategy.recipe = recipe_of(tiny_images(), strategy.name)
    torch.manual_seed(0)
    strategy.rng = random.Random(0)
    strategy.supernet = Supernet(space, strategy.family, strategy.name)
    strategy.configure()
    runs: list[tuple[str, bool]] = []
    for name in ("conv1", "bn1", "conv2", "bn2", "fc"):
        layer = getattr(strategy.supernet.model, name).layer
        original = layer.sliced_forward

        def counted(*args: Any, _run: Any = original, _name: str = name, **kwargs: Any) -> Any:
            runs.append((_name, torch.is_grad_enabled()))
            return _run(*args, **kwargs)

        layer.sliced_forward = counted
    batch = next(iter(strategy.recipe.train_data))
    strategy.architecture_step(batch)
    # conv1 reads w1 and k, bn1 w1, conv2 w1 and w2, bn2 w2, fc w2: 5 active runs, 7 second ones.
    assert sorted(name for name, grad in runs if grad) == ["bn1", "bn2", "conv1", "conv2", "fc"]
    assert sorted(name for name, grad in runs if not grad) == ["bn1", "bn2", "conv1", "conv1", "conv2", "conv2", "fc"]
    runs.clear()
    strategy.weight_step(batch)
    assert sorted(runs) == [("bn1", True), ("bn2", True), ("conv1", True), ("conv2", True), ("fc", True)]
    runs.clear()
    strategy.supernet.eval()
    strategy.supernet(batch[0])
    assert len(runs) == 5


def test_width_gradient_is_the_binary_gate_estimator_on_fitted_outputs() -> None:
    """One label: the outputs of the other widths enter cut or zero-padded to the
    active width."""

    class Wide(nn.ModelSpace):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, nn.choice("w", [2, 3, 5]))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(x)

    torch.manual_seed(1)
    supernet = Supernet(Wide(), "proxyless").train()
    (op,) = [m for m in supernet.mixed_ops if isinstance(m, GatedLayer)]
    gates, alpha = gates_of(supernet.decisions), supernet.decisions.alpha("w")
    set_alpha(supernet, "w", [0.3, -0.4, 0.6])
    x = torch.randn(6, 4)
    for _ in range(6):
        gates.resample()
        active, other = gates.paths["w"]
        assert other is not None
        alpha.grad = None
        y = op(x)
        width = [2, 3, 5][active]
        assert y.shape == (6, width)
        grad_y = torch.randn_like(y)
        (y * grad_y).sum().backward()
        weight, bias = op.layer.weight.detach(), op.layer.bias.detach()
        outputs = [fit(F.linear(x, weight[:w], bias[:w]), y.shape) for w in (2, 3, 5)]
        assert alpha.grad is not None
        torch.testing.assert_close(alpha.grad, estimator(alpha, active, other, outputs, grad_y))


def test_a_layer_reading_two_labels_has_a_gate_for_each() -> None:
    """``Linear(in=u, out=w)``: each label's gradient is its estimator with the
    other label at its active value; the input is cut or padded to ``u``."""

    class TwoLabels(nn.ModelSpace):
        def __init__(self) -> None:
            super().__init__()
            u, w = nn.choice("u", [2, 4]), nn.choice("w", [3, 5])
            self.first = nn.Linear(4, u)
            self.second = nn.Linear(u, w)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.second(self.first(x))

    torch.manual_seed(2)
    supernet = Supernet(TwoLabels(), "proxyless").train()
    op = supernet.model.second
    gates = gates_of(supernet.decisions)
    alphas = {label: supernet.decisions.alpha(label) for label in ("u", "w")}
    us, ws = [2, 4], [3, 5]
    for _ in range(4):
        gates.resample()
        (ua, ub), (wa, wb) = gates.paths["u"], gates.paths["w"]
        assert ub is not None and wb is not None
        x = torch.randn(5, us[ua])  # what the layer before gives under the active u
        for alpha in alphas.values():
            alpha.grad = None
        y = op(x)
        assert y.shape == (5, ws[wa])
        grad_y = torch.randn_like(y)
        (y * grad_y).sum().backward()
        weight, bias = op.layer.weight.detach(), op.layer.bias.detach()

        def run(u: int, w: int) -> torch.Tensor:
            return fit(F.linear(fit(x, (5, u)), weight[:w, :u], bias[:w]), y.shape)

        by_u = [run(u, ws[wa]) for u in us]
        by_w = [run(us[ua], w) for w in ws]
        torch.testing.assert_close(alphas["u"].grad, estimator(alphas["u"], ua, ub, by_u, grad_y))
        torch.testing.assert_close(alphas["w"].grad, estimator(alphas["w"], wa, wb, by_w, grad_y))


def tiny_images(n: int = 48, epochs: int = 2) -> Classification:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 3, 6, 6, generator=g)
    y = (x[:, 0].mean((1, 2)) > 0).long() + 2 * (x[:, 1].mean((1, 2)) > 0).long()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=12)
    return Classification(train_dataloaders=loader, val_dataloaders=loader, max_epochs=epochs, learning_rate=1e-2)


def test_a_search_trains_the_widths_and_exports_what_the_supernet_computes() -> None:
    space, evaluator = ConvChain(), tiny_images()
    strategy = Proxyless(arc_learning_rate=0.1)
    strategy.recipe = recipe_of(evaluator, strategy.name)
    torch.manual_seed(0)
    strategy.rng = random.Random(0)
    strategy.supernet = Supernet(space, strategy.family, strategy.name)
    strategy.configure()
    before = {label: strategy.supernet.decisions.alpha(label).detach().clone() for label in ("w1", "w2", "k")}
    strategy.architecture_step(next(iter(strategy.recipe.train_data)))
    for label, value in before.items():
        alpha = strategy.supernet.decisions.alpha(label)
        assert alpha.grad is not None and alpha.grad.abs().sum() > 0, label
        assert not torch.equal(alpha.detach(), value), label

    search = Proxyless(arc_learning_rate=0.1)
    ranking = search.search(space, evaluator, seed=0)
    best = ranking[0][0]
    assert all(
        probs != pytest.approx([0.5, 0.5], abs=1e-3) for probs in search.supernet.decisions.probabilities().values()
    )
    model = space.freeze(best, weights_from=search.supernet).eval()
    assert_supernet_computes(search.supernet, best, model, torch.randn(4, 3, 6, 6))


#: A hub space and the kind of label that must be searched (MobileNetV3Space, widths,
#: kernels, expansions and depths, was run by hand: ~10 s here, too slow for the suite).
HUB = {"shufflenet": "channel_", "proxylessnas": "_depth"}


@pytest.mark.parametrize("name", sorted(HUB))
def test_hub_spaces_with_width_and_depth_choices_train(name: str) -> None:
    from archsmith.hub import ProxylessNAS, ShuffleNetSpace

    space = {
        "shufflenet": lambda: ShuffleNetSpace(num_labels=4, channel_search=True),
        "proxylessnas": lambda: ProxylessNAS(**{**ProxylessNAS.reduced_kwargs, "num_labels": 4}),
    }[name]()
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, torch.arange(4)), batch_size=2)
    evaluator = Classification(train_dataloaders=loader, val_dataloaders=loader, max_epochs=1)
    # The cost penalty once: the full-width ShuffleNet is the slow one.
    strategy = Proxyless(arc_learning_rate=0.1, cost="params" if name == "proxylessnas" else None)
    ranking = strategy.search(space, evaluator, seed=0)
    searched = [label for label in space.search_space if HUB[name] in label]
    probabilities = strategy.supernet.decisions.probabilities()
    assert searched and any(
        probabilities[label] != pytest.approx([1 / len(probabilities[label])] * len(probabilities[label]), abs=1e-4)
        for label in searched
    )
    model = space.freeze(ranking[0][0], weights_from=strategy.supernet).eval()
    assert model(x[:2]).shape == (2, 4)


# The expected cost -------------------------------------------------------------------------------
class CostNet(nn.ModelSpace):
    """Width ``w`` everywhere; a candidate holding a width-``h`` layer; a depth
    choice over blocks holding a ``Repeat`` of fixed layers whose depth reads two
    choices. Every parameter is decided by the architecture, so the expected cost
    is that of the frozen subnets."""

    def __init__(self) -> None:
        super().__init__()
        w, h = nn.choice("w", [2, 4]), nn.choice("h", [3, 6])
        self.stem = nn.Linear(4, w)
        self.op = nn.LayerChoice(
            {
                "mlp": torch.nn.Sequential(nn.Linear(w, h), torch.nn.Tanh(), nn.Linear(h, w)),
                "lin": nn.Linear(w, w),
                "id": torch.nn.Identity(),
            },
            label="op",
        )
        inner = nn.ValueChoice([0, 1], label="a") + nn.ValueChoice([0, 1], label="b")  # a depth over two choices
        self.body = nn.Repeat(
            lambda i: torch.nn.Sequential(
                nn.Linear(w, 5), nn.Repeat(torch.nn.Linear(5, 5, bias=False), inner, label=f"inner{i}"), nn.Linear(5, w)
            ),
            depth=(0, 2),
            label="d",
        )
        self.head = nn.Linear(w, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(self.op(self.stem(x))))


def flops(model: torch.nn.Module, x: torch.Tensor) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    return float(counter.get_total_flops())


MEASURES: dict[str, Any] = {
    "params": lambda model, x: float(sum(p.numel() for p in model.parameters())),
    "flops": flops,
    "callable": lambda model, x: float(sum(isinstance(m, torch.nn.Linear) for m in model.modules())),
}


@pytest.mark.parametrize("cost", sorted(MEASURES))
def test_expected_cost_is_the_expectation_over_the_frozen_subnets(cost: str) -> None:
    space, x = CostNet(), torch.randn(7, 4)
    measure = MEASURES[cost]
    strategy = Proxyless(cost=(lambda m: measure(m, x)) if cost == "callable" else cost)
    strategy.recipe = recipe_of(tiny_images(), strategy.name)
    torch.manual_seed(0)
    strategy.rng = random.Random(0)
    strategy.supernet = supernet = Supernet(space, strategy.family, strategy.name)
    strategy.configure()
    assert strategy.costs is not None
    labels = list(space.search_space)
    for label in labels:
        set_alpha(supernet, label, torch.randn(len(supernet.decisions.options(label))).tolist())
    gates = gates_of(supernet.decisions)
    for _ in range(40):  # "flops" are measured on each op's first call
        if all(term.costs is not None for term in strategy.costs.terms):
            break
        gates.resample()
        supernet(x)
    assert all(term.costs is not None for term in strategy.costs.terms)
    probabilities = supernet.decisions.probabilities()
    expected = 0.0
    for values in itertools.product(*(supernet.decisions.options(label) for label in labels)):
        sample = dict(zip(labels, values))
        p = math.prod(probabilities[label][supernet.decisions.options(label).index(v)] for label, v in sample.items())
        expected += p * measure(space.freeze(sample), x)
    worst = sum(float(term.costs.max()) for term in strategy.costs.terms if term.costs is not None)
    got = strategy.expected_cost()
    assert got is not None
    assert float(got.detach()) * worst == pytest.approx(expected, rel=1e-5)
    got.backward()
    assert all(supernet.decisions.alpha(label).grad is not None for label in labels)


# Memory ---------------------------------------------------------------------------------------------
class WideMLP(nn.ModelSpace):
    """Four linear layers; the middle two read both width labels."""

    def __init__(self) -> None:
        super().__init__()
        w, h = nn.choice("w", [64, 128, 256]), nn.choice("h", [64, 128, 256])
        self.fc1, self.fc2, self.fc3, self.fc4 = nn.Linear(128, w), nn.Linear(w, h), nn.Linear(h, w), nn.Linear(w, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for fc in (self.fc1, self.fc2, self.fc3):
            x = torch.relu(fc(x))
        return self.fc4(x)


def test_peak_memory_of_a_step_against_the_widest_single_path() -> None:
    from .test_proxyless import peak_bytes

    space = WideMLP()
    x = torch.randn(512, 128, generator=torch.Generator().manual_seed(0))
    y = torch.randint(0, 10, (512,), generator=torch.Generator().manual_seed(1))
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=512)
    evaluator = Classification(train_dataloaders=loader, val_dataloaders=loader, max_epochs=1)
    strategy = Proxyless()
    strategy.recipe = recipe_of(evaluator, strategy.name)
    torch.manual_seed(0)
    strategy.rng = random.Random(0)
    strategy.supernet = Supernet(space, strategy.family, strategy.name)
    strategy.configure()
    model = space.freeze({"w": 256, "h": 256})
    optimizer = torch.optim.Adam(model.parameters())

    def single() -> None:
        optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optimizer.step()

    for step in (single, lambda: strategy.training_step((x, y), (x, y))):
        step()  # optimizer state and gradients exist before measuring
    single_peak = peak_bytes(single)
    arch_peak = max(peak_bytes(lambda: strategy.architecture_step((x, y))) for _ in range(4))
    weight_peak = max(peak_bytes(lambda: strategy.weight_step((x, y))) for _ in range(4))
    print(
        f"\npeak memory (MiB): widest single path {single_peak / 2**20:.2f}, Proxyless architecture step "
        f"{arch_peak / 2**20:.2f} ({arch_peak / single_peak:.2f}x), weight step {weight_peak / 2**20:.2f} "
        f"({weight_peak / single_peak:.2f}x)"
    )
    assert weight_peak <= 1.1 * single_peak
    assert arch_peak <= 2.5 * single_peak

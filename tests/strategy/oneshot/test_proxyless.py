"""Proxyless (binary gates over two sampled paths): the gated ops' values and
gradients, the paths that run, the cost penalty, the search end to end, and
its memory against a single path."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

import archsmith.nn as nn
from archsmith.evaluator import Classification, Regression
from archsmith.experiment import Experiment, ExperimentConfig
from archsmith.strategy import Proxyless
from archsmith.strategy.oneshot import ONESHOT_STRATEGIES, Supernet, UnsupportedSpaceError
from archsmith.strategy.oneshot._base import recipe_of
from archsmith.strategy.oneshot._proxyless import GatedInputChoice, GatedLayerChoice, gates_of

from ._spaces import Costly


class Zero(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * 0


class ChoiceNet(nn.ModelSpace):
    """x -> one of ``candidates`` -> a linear head."""

    def __init__(self, kind: str = "linears", width: int = 4) -> None:
        super().__init__()
        candidates: dict[str, Callable[[], torch.nn.Module]]
        if kind == "linears":
            candidates = {f"lin{i}": (lambda: torch.nn.Linear(width, width)) for i in range(4)}
        elif kind == "identity":
            candidates = {"zero": Zero, "identity": torch.nn.Identity, "relu": torch.nn.ReLU}
        else:  # "cost": two candidates computing the same thing at different costs
            candidates = {"costly": lambda: Costly(width), "cheap": torch.nn.Identity}
        self.op = nn.LayerChoice(candidates, label="op")
        self.head = torch.nn.Linear(width, width)
        if kind == "identity":  # the identity path is right from the start
            torch.nn.init.eye_(self.head.weight)
            torch.nn.init.zeros_(self.head.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.op(x))


class InputNet(nn.ModelSpace):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b, self.c = torch.nn.Linear(3, 3), torch.nn.Linear(3, 3), torch.nn.Linear(3, 3)
        self.pick = nn.InputChoice(3, 1, label="pick")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pick([self.a(x), self.b(x), self.c(x)])


def regression(x: torch.Tensor, y: torch.Tensor, epochs: int = 3, lr: float = 1e-2) -> Regression:
    data = torch.utils.data.TensorDataset(x, y)
    return Regression(
        train_dataloaders=torch.utils.data.DataLoader(data, batch_size=32, shuffle=True),
        val_dataloaders=torch.utils.data.DataLoader(data, batch_size=128),
        max_epochs=epochs,
        learning_rate=lr,
    )


def identity_task(width: int = 4, n: int = 256, epochs: int = 3) -> Regression:
    x = torch.randn(n, width, generator=torch.Generator().manual_seed(0))
    return regression(x, x.clone(), epochs)


def prepared(strategy: Proxyless, space: nn.ModelSpace, evaluator: Any, seed: int = 0) -> Proxyless:
    """The strategy as ``search`` sets it up, before the first epoch."""
    strategy.recipe = recipe_of(evaluator, strategy.name)
    torch.manual_seed(seed)
    strategy.rng = random.Random(seed)
    strategy.supernet = Supernet(space, strategy.family, strategy.name)
    strategy.configure()
    return strategy


def choice_op(supernet: Supernet) -> GatedLayerChoice:
    (op,) = [m for m in supernet.mixed_ops if isinstance(m, GatedLayerChoice)]
    return op


def set_alpha(supernet: Supernet, label: str, values: list[float]) -> None:
    with torch.no_grad():
        supernet.decisions.alpha(label).copy_(torch.tensor(values))


# The gated ops ----------------------------------------------------------------------------
def test_registered_and_repr() -> None:
    assert ONESHOT_STRATEGIES["proxyless"] is Proxyless
    assert "cost='flops'" in repr(Proxyless(cost="flops"))


def test_forward_is_exactly_the_active_path_and_eval_runs_the_most_probable() -> None:
    torch.manual_seed(0)
    supernet = Supernet(ChoiceNet(), "proxyless")
    op, gates = choice_op(supernet), gates_of(supernet.decisions)
    set_alpha(supernet, "op", [0.3, -0.2, 0.9, 0.1])
    x = torch.randn(5, 4)
    seen = set()
    for _ in range(20):
        gates.resample()
        active, other = gates.paths["op"]
        assert other is not None and other != active
        seen.add(active)
        out = supernet(x)
        assert torch.equal(out, supernet.model.head(op.candidates[active](x)))
        with gates.single_path():
            assert torch.equal(supernet(x), out)
    assert len(seen) > 1
    supernet.eval()
    assert torch.equal(supernet(x), supernet.model.head(op.candidates[2](x)))  # argmax of alpha


def estimator(alpha: torch.Tensor, active: int, other: int, outputs: list[torch.Tensor], grad_y: torch.Tensor) -> Any:
    """The paper's binary-gate gradient over the two sampled paths, by hand."""
    pair = [active, other]
    q = torch.softmax(alpha.detach()[pair], dim=-1)
    d_gate = [float((grad_y * outputs[j]).sum()) for j in pair]
    expected = torch.zeros_like(alpha)
    for i_pos, i in enumerate(pair):
        expected[i] = sum(d_gate[j_pos] * q[j_pos] * (float(i_pos == j_pos) - q[i_pos]) for j_pos in range(2))
    return expected


def test_alpha_gradient_is_the_binary_gate_estimator() -> None:
    torch.manual_seed(1)
    supernet = Supernet(ChoiceNet(), "proxyless")
    op, gates = choice_op(supernet), gates_of(supernet.decisions)
    alpha = supernet.decisions.alpha("op")
    set_alpha(supernet, "op", [0.5, -1.0, 0.2, 1.5])
    x, w = torch.randn(3, 4), torch.randn(3, 4)
    for _ in range(5):
        gates.resample()
        active, other = gates.paths["op"]
        assert other is not None
        alpha.grad = None
        y = op(x)  # the op alone: dL/dy = w
        (y * w).sum().backward()
        with torch.no_grad():
            outputs = [c(x) for c in op.candidates]
        assert alpha.grad is not None
        torch.testing.assert_close(alpha.grad, estimator(alpha, active, other, outputs, w))
        unsampled = [i for i in range(4) if i not in (active, other)]
        assert torch.all(alpha.grad[unsampled] == 0)


def test_input_choice_gates_one_input() -> None:
    torch.manual_seed(2)
    supernet = Supernet(InputNet(), "proxyless")
    (op,) = [m for m in supernet.mixed_ops if isinstance(m, GatedInputChoice)]
    gates, alpha = gates_of(supernet.decisions), supernet.decisions.alpha("pick")
    x, w = torch.randn(2, 3), torch.randn(2, 3)
    gates.resample()
    active, other = gates.paths["pick"]
    assert other is not None
    model = supernet.model
    inputs = [model.a(x), model.b(x), model.c(x)]
    y = op(inputs)
    assert torch.equal(y, inputs[active])
    (y * w).sum().backward()
    assert alpha.grad is not None
    torch.testing.assert_close(alpha.grad, estimator(alpha, active, other, [t.detach() for t in inputs], w))
    assert model.b.weight.grad is None or active == 1 or torch.all(model.b.weight.grad == 0)


class SharedNet(nn.ModelSpace):
    def __init__(self) -> None:
        super().__init__()
        self.first = nn.LayerChoice([torch.nn.Linear(4, 4) for _ in range(3)], label="shared")
        self.second = nn.LayerChoice([torch.nn.Linear(4, 4) for _ in range(3)], label="shared")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.second(self.first(x))


def test_ops_sharing_a_label_share_the_gate() -> None:
    torch.manual_seed(3)
    supernet = Supernet(SharedNet(), "proxyless")
    first, second = (m for m in supernet.mixed_ops if isinstance(m, GatedLayerChoice))
    calls = [count_calls(first), count_calls(second)]
    gates = gates_of(supernet.decisions)
    for _ in range(5):
        gates.resample()
        for c in calls:
            c.clear()
        supernet(torch.randn(2, 4))
        assert calls[0] == calls[1] == list(p for p in gates.paths["shared"] if p is not None)
    assert len(supernet.architecture_parameters()) == 1


def count_calls(op: GatedLayerChoice) -> list[int]:
    calls = []
    for i, candidate in enumerate(op.candidates):
        candidate.register_forward_hook(lambda m, a, o, i=i: calls.append(i))
    return calls


def test_two_paths_run_in_an_architecture_step_one_in_a_weight_step() -> None:
    strategy = prepared(Proxyless(), ChoiceNet(), identity_task())
    op = choice_op(strategy.supernet)
    calls = count_calls(op)
    batch = next(iter(strategy.recipe.train_data))
    for _ in range(6):
        calls.clear()
        strategy.architecture_step(batch)
        assert len(calls) == 2 and len(set(calls)) == 2
        assert set(calls) == set(p for p in strategy.gates.paths["op"] if p is not None)
        calls.clear()
        strategy.weight_step(batch)
        assert calls == [strategy.gates.paths["op"][0]]


def test_architecture_step_moves_only_the_sampled_pair_and_keeps_the_others_share() -> None:
    strategy = prepared(Proxyless(arc_learning_rate=0.1), ChoiceNet(), identity_task())
    alpha = strategy.supernet.decisions.alpha("op")
    batch = next(iter(strategy.recipe.train_data))
    before = torch.softmax(alpha.detach(), -1).clone()
    strategy.architecture_step(batch)
    after = torch.softmax(alpha.detach(), -1)
    active, other = strategy.gates.paths["op"]
    pair = [active, other]
    rest = [i for i in range(4) if i not in pair]
    torch.testing.assert_close(after[rest], before[rest])
    assert not torch.allclose(after[pair], before[pair])
    assert all(p.grad is None or torch.all(p.grad == 0) for p in strategy.supernet.weight_parameters())


# The cost penalty -------------------------------------------------------------------------
COSTS: list[Any] = ["params", "flops", lambda module: float(isinstance(module, Costly))]


@pytest.mark.parametrize("cost", COSTS, ids=["params", "flops", "callable"])
def test_cost_penalty_reaches_alpha_and_picks_the_cheaper_candidate(cost: Any) -> None:
    space, evaluator = ChoiceNet("cost"), identity_task(epochs=4)
    strategy = prepared(Proxyless(cost=cost, cost_weight=1.0), space, evaluator)
    strategy.supernet(torch.randn(2, 4))  # the first forward measures FLOPs
    assert strategy.costs is not None
    costs = [term.costs for term in strategy.costs.terms]
    conditions = [[(labels, mask.tolist()) for labels, mask in term.conditions] for term in strategy.costs.terms]
    assert conditions == [[(("op",), [1.0, 0.0])], [(("op",), [0.0, 1.0])]]
    assert costs[0] is not None and costs[1] is not None and float(costs[0]) > float(costs[1]) == 0
    expected = strategy.expected_cost()
    assert expected is not None
    expected.backward()
    grad = strategy.supernet.decisions.alpha("op").grad
    assert grad is not None and grad[0] > 0 > grad[1]  # more "costly" costs more

    strategy = Proxyless(arc_learning_rate=0.2, cost=cost, cost_weight=1.0)
    ranking = strategy.search(space, evaluator, seed=0)
    assert ranking[0][0] == {"op": "cheap"} and ranking[0][1] > 0.9


def test_without_a_cost_equal_losses_leave_the_choice_alone() -> None:
    strategy = Proxyless(arc_learning_rate=0.05)
    strategy.search(ChoiceNet("cost"), identity_task(epochs=2), seed=0)
    probabilities = strategy.supernet.decisions.probabilities()["op"]
    assert abs(probabilities[0] - 0.5) < 0.05


# Searches ---------------------------------------------------------------------------------
def test_identity_task_exports_the_identity_with_its_weights() -> None:
    space, evaluator = ChoiceNet("identity"), identity_task(epochs=8)
    strategy = Proxyless(arc_learning_rate=0.1)
    ranking = strategy.search(space, evaluator, seed=0)
    best = ranking[0][0]
    assert best == {"op": "identity"} and ranking[0][1] > 0.5
    model = space.freeze(best, weights_from=strategy.supernet)
    x = torch.randn(8, 4)
    strategy.supernet.eval()
    torch.testing.assert_close(model(x), strategy.supernet(x))


def test_same_seed_same_search_and_resume_continues_it(tmp_path: Path) -> None:
    space = ChoiceNet()
    x = torch.randn(128, 4, generator=torch.Generator().manual_seed(3))
    y = x @ torch.randn(4, 4, generator=torch.Generator().manual_seed(4))

    def search(seed: int, epochs: int = 2, checkpoint: Path | None = None) -> Any:
        return Proxyless(arc_learning_rate=0.05).search(
            space, regression(x, y, epochs), seed=seed, checkpoint=checkpoint
        )

    first = search(0)
    assert search(0) == first
    assert search(1) != first
    search(0, 1, tmp_path / "ck.pt")  # one epoch, then resumed for the second
    assert search(0, 2, tmp_path / "ck.pt") == first


def test_state_dict_holds_the_architecture_optimizer_and_the_gates() -> None:
    strategy = prepared(Proxyless(), ChoiceNet(), identity_task())
    strategy.architecture_step(next(iter(strategy.recipe.train_data)))
    state = strategy.state_dict()
    assert {"weight_optimizer", "arch_optimizer", "gates"} <= set(state)
    draws = [strategy.gates._draw("op") for _ in range(5)]
    strategy.load_state_dict(state)
    assert [strategy.gates._draw("op") for _ in range(5)] == draws


def test_experiment_exports_the_top_two(tmp_path: Path) -> None:
    g = torch.Generator().manual_seed(5)
    x = torch.randn(192, 4, generator=g)
    labels = (x[:, 0] > 0).long() + 2 * (x[:, 1] > 0).long()
    data = torch.utils.data.TensorDataset(x, labels)
    evaluator = Classification(
        train_dataloaders=torch.utils.data.DataLoader(data, batch_size=32, shuffle=True),
        val_dataloaders=torch.utils.data.DataLoader(data, batch_size=192),
        max_epochs=2,
        learning_rate=1e-2,
    )
    space = ChoiceNet("identity")
    exp = Experiment(space, evaluator, Proxyless(), ExperimentConfig(workdir=tmp_path, seed=0))
    exp.run()
    top = exp.export_top_models(2)
    assert len(top) == 2 and top[0] != top[1]
    assert {s["op"] for s in top} <= {"zero", "identity", "relu"}
    model = space.freeze(top[0], weights_from=exp.supernet)
    assert model(x[:3]).shape == (3, 4)


# What the family does not support ----------------------------------------------------------
class TwoInputsNet(nn.ModelSpace):
    def __init__(self) -> None:
        super().__init__()
        self.pick = nn.InputChoice(3, 2, label="pick2")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pick([x, x, x])


@pytest.mark.parametrize(
    ("space", "named"),
    [(TwoInputsNet, ["pick", "n_chosen=2", "DARTS"])],
)
def test_unsupported_primitives_are_named_before_training(tmp_path: Path, space: Any, named: list[str]) -> None:
    with pytest.raises(UnsupportedSpaceError) as info:
        Experiment(space(), identity_task(), Proxyless(), ExperimentConfig(workdir=tmp_path))
    message = str(info.value)
    assert "Proxyless" in message
    for word in named:
        assert word in message
    assert not (tmp_path / "supernet.pt").exists()


def test_bad_arguments() -> None:
    from archsmith.space import SpaceError

    for kwargs in ({"arc_learning_rate": 0}, {"cost": "latency"}, {"cost_weight": -1}, {"warmup_epochs": 1.5}):
        with pytest.raises(SpaceError):
            Proxyless(**kwargs)


# Memory --------------------------------------------------------------------------------------
def peak_bytes(step: Callable[[], Any]) -> int:
    """The peak of the CPU memory allocated during ``step`` (the profiler's allocation events)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        step()
    try:
        events = [e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"]
    except AttributeError:  # pragma: no cover - another torch release
        pytest.skip("this torch's profiler exposes no allocation events")
    live = peak = 0
    for event in sorted(events, key=lambda e: e.start_ns()):
        live += event.nbytes()
        peak = max(peak, live)
    return peak


class HeavyNet(nn.ModelSpace):
    def __init__(self, width: int = 128) -> None:
        super().__init__()

        def mlp() -> torch.nn.Module:
            return torch.nn.Sequential(*(m for _ in range(4) for m in (torch.nn.Linear(width, width), torch.nn.GELU())))

        self.op = nn.LayerChoice([mlp for _ in range(4)], label="op")
        self.head = torch.nn.Linear(width, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.op(x))


def test_peak_memory_of_a_step_against_a_single_path() -> None:
    space = HeavyNet()
    x = torch.randn(256, 128, generator=torch.Generator().manual_seed(0))
    y = torch.randint(0, 10, (256,), generator=torch.Generator().manual_seed(1))
    data = torch.utils.data.TensorDataset(x, y)
    loader = torch.utils.data.DataLoader(data, batch_size=256)
    evaluator = Classification(train_dataloaders=loader, val_dataloaders=loader, max_epochs=1)
    strategy = prepared(Proxyless(), space, evaluator)
    batch = (x, y)
    model = space.freeze({"op": 0})
    optimizer = torch.optim.Adam(model.parameters())

    def single() -> None:
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()

    darts = Supernet(space, "differentiable")

    def weighted() -> None:
        darts.zero_grad()
        torch.nn.functional.cross_entropy(darts(x), y).backward()

    for step in (single, weighted, lambda: strategy.training_step(batch, batch)):
        step()  # optimizer state and gradients exist before measuring
    single_peak = peak_bytes(single)
    arch_peak = peak_bytes(lambda: strategy.architecture_step(batch))
    weight_peak = peak_bytes(lambda: strategy.weight_step(batch))
    darts_peak = peak_bytes(weighted)
    print(
        f"\npeak memory (MiB): single path {single_peak / 2**20:.2f}, Proxyless architecture step "
        f"{arch_peak / 2**20:.2f} ({arch_peak / single_peak:.2f}x), weight step {weight_peak / 2**20:.2f} "
        f"({weight_peak / single_peak:.2f}x), DARTS step {darts_peak / 2**20:.2f} ({darts_peak / single_peak:.2f}x)"
    )
    assert max(arch_peak, weight_peak) <= 2.5 * single_peak
    assert darts_peak > max(arch_peak, weight_peak)

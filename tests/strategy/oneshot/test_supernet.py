"""Supernets: every family on every primitive builds (or is refused before anything
runs, with every problem named), sampling supernets compute exactly their frozen
subnets, differentiable ones the weighted mix, and exports match ``freeze``.

Which family supports which primitive is read off ``MIXED_OPS`` (``_spaces.unsupported``).
"""

from __future__ import annotations

from typing import Any

import pytest
import torch

import archsmith.nn as nn
from archsmith.experiment import Experiment, ExperimentConfig
from archsmith.nn import ModelSpace, MutableModule
from archsmith.space import Sample, SpaceError
from archsmith.strategy.oneshot import (
    FAMILY_ALGORITHMS,
    MIXED_OPS,
    Supernet,
    UnsupportedSpaceError,
    check_supported,
)

from ._spaces import (
    ALGORITHMS,
    CASES,
    TASKS,
    Cells,
    D,
    ExpressionDepths,
    Inner,
    Inputs,
    LayerChoiceDict,
    Shared,
    evaluator,
    make,
    mixed_op,
    supporters,
    unsupported,
)

FAMILIES = sorted(MIXED_OPS)


def build(case: str, family: str) -> tuple[ModelSpace, Supernet, torch.Tensor]:
    """The space, its supernet (skipped if the family does not support it) and an input."""
    torch.manual_seed(0)
    space = CASES[case].make()
    problems = unsupported(space, family)
    if problems:
        pytest.skip(f"the {family!r} family does not support {case}: {problems}")
    x = torch.randn(CASES[case].input_shape, generator=torch.Generator().manual_seed(1))
    return space, Supernet(space, family), x


def samples(space: ModelSpace, n: int = 6) -> list[Sample]:
    return [space.default()] + [space.random(seed) for seed in range(n)]


def tensors(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def assert_same_tensors(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert a[key].shape == b[key].shape, key
        if a[key].device.type != "meta":
            assert torch.equal(a[key], b[key]), key


# Building, and the support check -----------------------------------------------------------
@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("family", FAMILIES)
def test_builds_or_names_every_unsupported_primitive(family: str, case: str) -> None:
    space = CASES[case].make()
    problems = unsupported(space, family)
    if not problems:
        check_supported(space, family, "X")
        assert Supernet(space, family).mixed_ops
        return
    with pytest.raises(UnsupportedSpaceError) as raised:
        Supernet(space, family, "Algo")
    message = str(raised.value)
    assert message.startswith(f"Algo cannot build a supernet of {type(space).__name__}:")
    for path in problems:
        assert f"\n  - {path}: " in message
    assert message.count("\n  - ") == len(problems)


@pytest.mark.parametrize("family", FAMILIES)
def test_loose_end_cells_are_handled_or_refused(family: str) -> None:
    """A family without a Cell op would run the searching cell, which concatenates
    every node, while the frozen cell concatenates only the loose ends."""
    space = Cells("loose_end")
    if mixed_op(family, space.cell) is None:
        with pytest.raises(UnsupportedSpaceError, match=r"cell: Cell\('cell'"):
            Supernet(space, family)


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("family", FAMILIES)
def test_the_space_is_left_as_it_was(family: str, case: str) -> None:
    space = CASES[case].make()
    modules = [(name, type(m), id(m)) for name, m in space.named_modules()]
    before, labels = tensors(space), list(space.search_space)
    _, supernet, x = build(case, family)
    supernet.train()
    optimizer = torch.optim.SGD(supernet.parameters(), lr=0.5)
    for sample in samples(space, 2):
        supernet.set_sample(sample)
        out = supernet(x)
        optimizer.zero_grad()
        if out.requires_grad:  # not when the sample's path has no weights
            (out * torch.randn_like(out)).sum().backward()
            optimizer.step()
    assert [(name, type(m), id(m)) for name, m in space.named_modules()] == modules
    assert_same_tensors(tensors(space), before)
    assert list(space.search_space) == labels
    assert not space.is_frozen
    space.freeze(space.default())  # still a space


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("family", FAMILIES)
def test_supernet_freeze_is_freeze_with_weights_from(family: str, case: str) -> None:
    space, supernet, x = build(case, family)
    for sample in samples(space, 4):
        mine, theirs = supernet.freeze(sample), space.freeze(sample, weights_from=supernet)
        assert not any(isinstance(m, MutableModule) for m in mine.modules())
        assert_same_tensors(tensors(mine), tensors(theirs))
        assert torch.equal(mine.eval()(x), theirs.eval()(x))


# The sampling family: a supernet under a sample is that subnet ----------------------------------
@pytest.mark.parametrize("case", sorted(CASES))
def test_sampling_supernet_computes_the_frozen_subnet(case: str) -> None:
    space, supernet, x = build(case, "sampling")
    supernet.train()
    with torch.no_grad():  # move batch-norm running statistics off their initial values
        for sample in samples(space, 3):
            supernet.set_sample(sample)
            supernet(x * 3 + 1)
    supernet.eval()
    for sample in samples(space):
        supernet.set_sample(sample)
        expected = space.freeze(sample, weights_from=supernet).eval()(x)
        got = supernet(x)
        assert got.shape == expected.shape, sample
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6, msg=f"sample {sample}")


def test_sampling_supernet_follows_set_sample_of_shared_labels() -> None:
    space, supernet, x = build("shared", "sampling")
    supernet.eval()
    outputs = set()
    for op in ("lin", "act"):
        for width in (2, D):
            for depth in (1, 2):
                sample = {"op": op, "w": width, "d": depth}
                supernet.set_sample(sample)
                got = supernet(x)
                torch.testing.assert_close(got, space.freeze(sample, weights_from=supernet).eval()(x))
                outputs.add(tuple(got.flatten().tolist()))
    assert len(outputs) == 8  # every sample runs a different path


# The differentiable family: the weighted mix ---------------------------------------------------
def _set_alpha(supernet: Supernet, label: str, values: list[float]) -> torch.Tensor:
    with torch.no_grad():
        supernet.decisions.alpha(label).copy_(torch.tensor(values))
    return torch.softmax(torch.tensor(values), dim=-1)


def test_layer_choice_is_the_softmax_weighted_sum_of_its_candidates() -> None:
    space = LayerChoiceDict()
    supernet = Supernet(space, "differentiable")
    weights = _set_alpha(supernet, "op", [1.0, -0.5, 0.25])
    x = torch.randn(5, D)
    names = space.op.names
    # By hand: each candidate is the frozen subnet's op (with the supernet's weights).
    candidates = [space.freeze({"op": name}, weights_from=supernet) for name in names]
    mixed = sum(w * c.op(x) for w, c in zip(weights, candidates))
    torch.testing.assert_close(supernet.model.op(x), mixed)
    # The head is affine and the weights sum to 1: the whole net is the mix of the subnets.
    torch.testing.assert_close(supernet(x), sum(w * c(x) for w, c in zip(weights, candidates)))


def test_input_choice_is_the_softmax_weighted_sum_of_its_inputs() -> None:
    space = Inputs(1, "sum")
    supernet = Supernet(space, "differentiable")
    weights = _set_alpha(supernet, "in", [0.3, -1.0, 2.0])
    x = torch.randn(5, D)
    frozen = [space.freeze({"in": i}, weights_from=supernet) for i in range(3)]
    torch.testing.assert_close(supernet(x), sum(w * f(x) for w, f in zip(weights, frozen)))


def test_layer_widths_are_mixed_zero_padded_to_the_widest() -> None:
    class Wide(nn.ModelSpace):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(D, nn.choice("w", [2, 3, D]))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(x)

    space = Wide()
    supernet = Supernet(space, "differentiable")
    weights = _set_alpha(supernet, "w", [0.5, 0.0, -0.5])
    x = torch.randn(5, D)
    padded = [torch.nn.functional.pad(space.freeze({"w": w}, weights_from=supernet)(x), (0, D - w)) for w in (2, 3, D)]
    torch.testing.assert_close(supernet(x), sum(w * p for w, p in zip(weights, padded)))


def test_an_expression_depth_is_weighted_by_its_choice() -> None:
    """Depth ``d + 1`` / ``d * 2``: all weight on one value of ``d`` runs that value's depths."""
    space = ExpressionDepths()
    supernet = Supernet(space, "differentiable")
    x = torch.randn(5, D)
    for d in (0, 1, 2):
        sample = {**space.default(), "d": d, "op0": 1, "op1": 0, "op2": 1, "op3": 0}
        for label in supernet.decisions.labels_with_alphas():
            values = supernet.decisions.options(label)
            _set_alpha(supernet, label, [1e4 if v == sample[label] else -1e4 for v in values])
        torch.testing.assert_close(supernet(x), space.freeze(sample, weights_from=supernet)(x))


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("family", [f for f in FAMILIES if f != "sampling"])
def test_one_architecture_parameter_per_label(family: str, case: str) -> None:
    """Ops that share a label share one parameter vector."""
    space, supernet, _ = build(case, family)
    alphas = supernet.architecture_parameters()
    assert len({id(a) for a in alphas}) == len(alphas) == len(space.search_space)
    for label, leaf in space.search_space.items():
        assert supernet.decisions.alpha(label).shape == (len(leaf.values),)
    weights = {id(p) for p in supernet.weight_parameters()}
    assert not weights & {id(a) for a in alphas}
    assert len(weights) + len(alphas) == len(list(supernet.parameters()))


def test_shared_labels_share_one_parameter() -> None:
    space = Shared()
    supernet = Supernet(space, "differentiable")
    # op (2 layer choices), w (3 layers), d (2 repeats): 3 labels, 3 parameter vectors
    assert sorted(supernet.decisions.labels_with_alphas()) == ["d", "op", "w"]
    assert len(supernet.architecture_parameters()) == 3
    # Both layer choices follow the one "op" vector: all weight on "act" makes both Tanh.
    _set_alpha(supernet, "op", [-1e4, 1e4])
    _set_alpha(supernet, "w", [-1e4, 1e4])
    _set_alpha(supernet, "d", [1e4, -1e4])
    x = torch.randn(3, D)
    expected = space.freeze({"op": "act", "w": D, "d": 1}, weights_from=supernet)(x)
    torch.testing.assert_close(supernet(x), expected)


@pytest.mark.parametrize("case", sorted(CASES))
def test_gradients_reach_every_parameter(case: str) -> None:
    _, supernet, x = build(case, "differentiable")
    supernet.train()
    out = supernet(x)
    (out * torch.randn(out.shape, generator=torch.Generator().manual_seed(2))).sum().backward()
    for label in supernet.decisions.labels_with_alphas():
        grad = supernet.decisions.alpha(label).grad
        assert grad is not None and grad.abs().sum() > 0, label
    for name, parameter in supernet.named_parameters():
        if parameter.grad is None:  # only AutoActivation has ops that ignore their parameter
            assert case == "auto_activation" and name.endswith(".beta"), name
        else:
            assert torch.isfinite(parameter.grad).all(), name


# Errors ------------------------------------------------------------------------------------------
class Unsupported(nn.ModelSpace):
    """Primitives no family handles (NasBench101Cell, a choice in plain Python code, a
    layer that cannot share weights), next to ones only some families handle, and
    ones every family handles (a LayerChoice; AutoActivation, made of LayerChoices)."""

    def __init__(self) -> None:
        super().__init__()
        self.fine = nn.LayerChoice([nn.Linear(D, D), nn.Identity()], label="fine")
        self.act = nn.AutoActivation(label="act")
        self.nb101 = nn.NasBench101Cell(
            {"lin": lambda n: nn.Linear(n, n)}, D, D, lambda i, o: nn.Linear(i, o), max_num_nodes=3, label="nb101"
        )
        self.loops = nn.choice("loops", [1, 2])  # read by plain Python in forward: no weights to share
        self.loose = Cells("loose_end")
        self.concat = nn.InputChoice(3, 2, "concat", label="concat")
        self.drop = nn.Dropout(nn.choice("p", [0.0, 0.5]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # never run
        raise NotImplementedError


@pytest.mark.parametrize("family", [f for f in FAMILIES if FAMILY_ALGORITHMS.get(f)])
def test_every_problem_is_named_with_who_supports_it(family: str) -> None:
    space = Unsupported()
    algorithm = FAMILY_ALGORITHMS[family][0]
    expected = unsupported(space, family)
    assert {"nb101", "drop"} <= set(expected)  # no family handles these
    with pytest.raises(UnsupportedSpaceError) as raised:
        check_supported(space, family, algorithm)
    message = str(raised.value)
    assert message.startswith(f"{algorithm} cannot build a supernet of Unsupported:\n")
    lines = message.split("\n")[1:]
    assert len(lines) == len(expected) + 1  # and one for the choice made in plain code
    modules = dict(space.named_modules())
    for path in expected:
        [line] = [line for line in lines if line.startswith(f"  - {path}: ")]
        able = supporters(modules[path], family)
        assert (f"supported by {', '.join(able)}" if able else "no one-shot algorithm supports it") in line, line
    [loose] = [line for line in lines if "'loops'" in line]
    assert "own code" in loose and "multi-trial" in loose
    assert not any("fine" in line or "act" in line for line in lines)
    if family == "differentiable":  # the two cases that only weighting cannot handle
        assert {"loose.cell", "concat"} <= set(expected)


@pytest.mark.parametrize("name", ALGORITHMS)
def test_experiment_refuses_before_anything_runs(name: str, tmp_path: Any) -> None:
    workdir = tmp_path / "exp"
    strategy = make(name)
    ran = []
    strategy.search = lambda *a, **k: ran.append(1)  # type: ignore[method-assign]
    with pytest.raises(UnsupportedSpaceError) as raised:
        Experiment(Unsupported(), evaluator(TASKS["layer_choice"]), strategy, ExperimentConfig(workdir=workdir, seed=0))
    message = str(raised.value)
    for path in ("nb101", "drop"):
        assert f"\n  - {path}: " in message
    assert "'loops'" in message
    assert not ran
    assert not workdir.exists() or not any(workdir.iterdir())


def test_darts_refuses_concat_of_several_inputs_and_loose_end_cells() -> None:
    for space, path in ((Inputs(2, "concat"), "pick"), (Inputs(None, "concat"), "pick"), (Cells("loose_end"), "cell")):
        with pytest.raises(UnsupportedSpaceError, match=rf"DARTS cannot build .*\n  - {path}: "):
            Supernet(space, "differentiable", "DARTS")


def test_weights_from_must_be_a_supernet_of_this_space() -> None:
    space = LayerChoiceDict()
    sample = space.default()
    with pytest.raises(SpaceError, match=r"weights_from must be a one-shot supernet.*got Linear"):
        space.freeze(sample, weights_from=torch.nn.Linear(2, 2))
    with pytest.raises(SpaceError, match=r"supernet of Inner \(is weights_from the supernet of another space"):
        space.freeze(sample, weights_from=Supernet(Inner(D), "sampling"))
    with pytest.raises(SpaceError, match="'op': extra label"):
        Supernet(Inner(D), "sampling").subnet_state_dict(sample)


def test_a_supernet_is_built_from_a_space() -> None:
    space = LayerChoiceDict()
    with pytest.raises(SpaceError, match="built from a model space"):
        Supernet(space.freeze(space.default()), "sampling")  # type: ignore[arg-type]
    with pytest.raises(SpaceError, match="built from a model space"):
        Supernet(torch.nn.Linear(2, 2), "sampling")  # type: ignore[arg-type]

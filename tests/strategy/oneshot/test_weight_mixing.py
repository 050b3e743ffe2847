"""Weight mixing: a layer with choices in its arguments run once on the weighted sum of
its candidates' zero-padded weight slices computes exactly the weighted sum of their
outputs (conv, linear, batch norm); the others fall back to the output mixture, with
the reason; DARTS and GumbelDARTS train in both forms and refuse an unknown one."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest
import torch
import torch.nn.functional as F

import archsmith.nn as nn
from archsmith.evaluator import Classification
from archsmith.space import Categorical, SpaceError
from archsmith.strategy.oneshot import DARTS, GumbelDARTS, Supernet
from archsmith.strategy.oneshot._differentiable import WeightedLayer, set_mixing
from archsmith.strategy.oneshot._sliced import SlicedLayer, make_sliced


def C(*values: Any, label: str) -> Any:
    return Categorical(list(values), label=label)


def combinations(layer: SlicedLayer) -> list[dict[str, Any]]:
    labels = [leaf.label for leaf in layer.leaves]
    grids = [leaf.grid() for leaf in layer.leaves]
    return [layer.arguments(dict(zip(labels, combo))) for combo in itertools.product(*grids)]


def output_mixture(
    layer: SlicedLayer, x: torch.Tensor, combos: list[dict[str, Any]], weights: torch.Tensor, width: str, dim: int
) -> torch.Tensor:
    """The mixture written out: each configuration on its input prefix, outputs
    zero-padded to the largest, summed by weight."""
    outputs = [layer.sliced_forward(x.narrow(dim, 0, c[width]), **c) for c in combos]
    shape = [max(o.shape[i] for o in outputs) for i in range(outputs[0].dim())]
    total = torch.zeros(shape)
    for w, out in zip(weights, outputs):
        pad: list[int] = []
        for have, want in zip(reversed(out.shape), reversed(shape)):
            pad += [0, want - have]
        total = total + w * F.pad(out, pad)
    return total


# (layer, input shape at the widest input, name of the input width argument, its dim)
CASES: dict[str, Callable[[], tuple[Any, tuple[int, ...], str, int]]] = {
    "conv2d widths and kernel": lambda: (
        nn.Conv2d(C(4, 6, label="i"), C(3, 5, 8, label="o"), C(1, 3, 5, label="k"), padding=C(1, 3, 5, label="k") // 2),
        (2, 6, 7, 7),
        "in_channels",
        1,
    ),
    "conv2d same padding, no bias": lambda: (
        nn.Conv2d(5, C(2, 4, label="o"), C(3, 5, label="k"), padding="same", bias=False),
        (2, 5, 6, 6),
        "in_channels",
        1,
    ),
    "conv1d stride 2": lambda: (
        nn.Conv1d(C(2, 3, label="i"), 4, C(3, 5, label="k"), stride=2, padding=C(3, 5, label="k") // 2),
        (2, 3, 11),
        "in_channels",
        1,
    ),
    "conv3d": lambda: (
        nn.Conv3d(3, C(2, 4, label="o"), C(1, 3, label="k"), padding=C(1, 3, label="k") // 2),
        (1, 3, 5, 5, 5),
        "in_channels",
        1,
    ),
    "depthwise conv, width sets groups": lambda: (
        nn.Conv2d(C(4, 8, label="w"), C(4, 8, label="w"), 3, padding=1, groups=C(4, 8, label="w")),
        (2, 8, 5, 5),
        "in_channels",
        1,
    ),
    "conv reflect padding": lambda: (
        nn.Conv2d(3, C(2, 4, label="o"), C(3, 5, label="k"), padding=C(3, 5, label="k") // 2, padding_mode="reflect"),
        (2, 3, 6, 6),
        "in_channels",
        1,
    ),
    "linear": lambda: (nn.Linear(C(3, 5, label="i"), C(2, 6, 7, label="o")), (4, 5), "in_features", -1),
    "linear sharing one label": lambda: (nn.Linear(C(3, 5, label="w"), C(3, 5, label="w")), (4, 5), "in_features", -1),
    "batchnorm2d": lambda: (nn.BatchNorm2d(C(3, 5, 8, label="w")), (4, 8, 3, 3), "num_features", 1),
    "batchnorm1d without affine": lambda: (
        nn.BatchNorm1d(C(2, 5, label="w"), affine=False),
        (6, 5),
        "num_features",
        1,
    ),
}


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("case", sorted(CASES))
def test_weight_mixing_equals_the_output_mixture(case: str, training: bool) -> None:
    torch.manual_seed(0)
    build, shape, width, dim = CASES[case]()
    layer = make_sliced(build).train(training)
    if not training:  # running statistics that are not the identity
        for name in ("running_mean", "running_var"):
            buffer = getattr(layer, name, None)
            if buffer is not None:
                buffer.copy_(torch.rand_like(buffer) + 0.5)
    combos = combinations(layer)
    assert layer.weight_mixing_problem(combos) is None
    x = torch.randn(shape)
    # Any weights, not only a softmax: the identity is linear in them.
    weights = torch.randn(len(combos))
    expected = output_mixture(layer, x, combos, weights, width, dim)
    torch.testing.assert_close(layer.mixed_forward(x, combinations=combos, weights=weights), expected)


def test_gradients_of_both_forms_agree() -> None:
    torch.manual_seed(0)
    layer = make_sliced(
        nn.Conv2d(C(4, 6, label="i"), C(3, 8, label="o"), C(3, 5, label="k"), padding=C(3, 5, label="k") // 2)
    )
    combos = combinations(layer)
    x = torch.randn(2, 6, 5, 5)
    logits = torch.randn(len(combos), requires_grad=True)
    grads = []
    for mixed in (True, False):
        layer.zero_grad()
        logits.grad = None
        weights = torch.softmax(logits, 0)
        if mixed:
            out = layer.mixed_forward(x, combinations=combos, weights=weights)
        else:
            out = output_mixture(layer, x, combos, weights, "in_channels", 1)
        (out * torch.linspace(-1, 1, out.numel()).view(out.shape)).sum().backward()
        tensors: list[Any] = [logits, layer.weight, layer.bias]
        grads.append([t.grad.clone() for t in tensors])
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize(
    ("build", "reason"),
    [
        (lambda: nn.LayerNorm(C(3, 5, label="w")), "statistics over each width"),
        (lambda: nn.MultiheadAttention(C(4, 8, label="e"), 2), "softmax"),
        (lambda: nn.Conv2d(C(4, 8, label="w"), 8, 3, groups=2), "groups and widths"),
        (lambda: nn.Conv2d(3, 4, C(3, 5, label="k"), padding=1), "centred"),
        (lambda: nn.Conv2d(3, 4, 3, stride=C(1, 2, label="s")), "stride"),
        (lambda: nn.BatchNorm2d(4, eps=C(1e-5, 1e-3, label="eps")), "eps"),
    ],
)
def test_layers_without_an_exact_weight_mixture_say_why(build: Callable[[], Any], reason: str) -> None:
    layer = make_sliced(build())
    assert reason in str(layer.weight_mixing_problem(combinations(layer)))


class WidthNet(nn.ModelSpace):
    """A width choice through conv, batch norm, a kernel choice and a linear head,
    plus a LayerNorm (which keeps the output mixture)."""

    def __init__(self) -> None:
        super().__init__()
        width, kernel, features = nn.choice("w", [2, 3, 4]), nn.choice("k", [1, 3]), nn.choice("n", [2, 4])
        self.conv = nn.Conv2d(1, width, kernel, padding=kernel // 2)
        self.bn = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, features, 3, padding=1)
        self.norm = nn.LayerNorm(features)
        self.head = nn.Linear(features, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn(self.conv(x)))
        x = self.norm(self.conv2(x).permute(0, 2, 3, 1))
        return self.head(x.mean((1, 2)))


def test_a_supernet_computes_the_same_in_both_forms() -> None:
    torch.manual_seed(0)
    supernet = Supernet(WidthNet(), "differentiable")
    with torch.no_grad():
        for alpha in supernet.architecture_parameters():
            alpha.copy_(torch.randn_like(alpha))
    # Each combination weighs the product of its values' weights.
    for op in supernet.mixed_ops:
        if isinstance(op, WeightedLayer):
            expected = [
                torch.stack(
                    [
                        supernet.decisions.weights(label)[supernet.decisions.options(label).index(v)]
                        for label, v in combo.items()
                    ]
                ).prod()
                for combo in op.combinations()
            ]
            torch.testing.assert_close(op._combination_weights(), torch.stack(expected))
    x = torch.randn(4, 1, 4, 4)
    results = {}
    for mixing in ("weights", "outputs"):
        set_mixing(supernet.decisions, mixing)
        supernet.zero_grad()
        out = supernet(x)
        out.square().sum().backward()
        alphas = [a.grad.clone() for a in supernet.architecture_parameters()]  # type: ignore[union-attr]
        results[mixing] = (out.detach(), alphas)
    torch.testing.assert_close(results["weights"][0], results["outputs"][0])
    for a, b in zip(results["weights"][1], results["outputs"][1]):
        assert a.abs().sum() > 0  # the gradients reach every architecture parameter
        torch.testing.assert_close(a, b)
    set_mixing(supernet.decisions, "weights")
    layers = {op.layer.torch_class.__name__: op for op in supernet.mixed_ops if isinstance(op, WeightedLayer)}
    assert {name: op.form for name, op in layers.items()} == {
        "Conv2d": "weights",
        "BatchNorm2d": "weights",
        "LayerNorm": "outputs",
        "Linear": "weights",
    }
    # The frozen subnet of the argmax is a plain model that runs.
    sample = {"w": 3, "k": 3, "n": 2}
    assert WidthNet().freeze(sample, weights_from=supernet)(x).shape == (4, 3)


def digits_evaluator(epochs: int = 1) -> Classification:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(48, 1, 4, 4, generator=generator)
    y = (x.mean((1, 2, 3)) > 0).long() + (x[:, 0, 0, 0] > 1).long()
    data = torch.utils.data.TensorDataset(x, y)
    return Classification(
        train_dataloaders=torch.utils.data.DataLoader(data, batch_size=16),
        val_dataloaders=torch.utils.data.DataLoader(data, batch_size=16),
        max_epochs=epochs,
        learning_rate=1e-2,
    )


@pytest.mark.parametrize("algorithm", [DARTS, GumbelDARTS])
@pytest.mark.parametrize("mixing", ["weights", "outputs"])
def test_darts_trains_in_each_form(algorithm: type[DARTS], mixing: str) -> None:
    strategy = algorithm(arc_learning_rate=0.1, mixing=mixing)
    ranking = strategy.search(WidthNet(), digits_evaluator(2), seed=0)
    assert strategy.supernet.decisions.state["mixing"] == mixing
    probabilities = strategy.supernet.decisions.probabilities()
    assert set(probabilities) == {"w", "k", "n"}
    assert any(abs(p - 1 / len(ps)) > 1e-3 for ps in probabilities.values() for p in ps)
    assert ranking and set(ranking[0][0]) == {"w", "k", "n"}
    assert f"mixing={mixing!r}" in repr(strategy)


@pytest.mark.parametrize("algorithm", [DARTS, GumbelDARTS])
def test_an_unknown_mixing_form_is_refused(algorithm: type[DARTS]) -> None:
    with pytest.raises(SpaceError, match=r"mixing must be 'weights' .* or 'outputs' .*got 'both'"):
        algorithm(mixing="both")


def test_gumbel_draws_once_per_label_per_forward() -> None:
    strategy = GumbelDARTS(arc_learning_rate=0.1)
    strategy.search(WidthNet(), digits_evaluator(1), seed=0)
    supernet, decisions = strategy.supernet.train(), strategy.supernet.decisions
    draws = []
    for _ in range(2):
        supernet(torch.randn(2, 1, 4, 4))
        # conv, bn and conv2 all read "w": within one forward they saw this one draw
        assert decisions.weights("w") is decisions.weights("w")
        draws.append(decisions.weights("w").detach())
    assert not torch.equal(draws[0], draws[1])  # a new forward draws anew

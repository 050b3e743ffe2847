"""``Cell``: nodes that each sum ``num_ops_per_node`` chosen ops applied to chosen
earlier tensors (NNI's ``Cell``), checked against a direct computation."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
import torch

import archsmith
import archsmith.nn as nn
from archsmith.nn._cell import CellBody

from ._helpers import assert_plain, count_params


class Scale(nn.Module):
    def __init__(self, factor: float) -> None:
        super().__init__()
        self.factor = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.factor


FACTORS = {"one": 1.0, "neg": -1.0, "triple": 3.0}
OPS = {"one": Scale(1.0), "neg": lambda: Scale(-1.0), "triple": Scale(3.0)}


class CellSpace(nn.ModelSpace):
    def __init__(
        self,
        num_nodes: int,
        num_ops_per_node: int = 1,
        num_predecessors: int = 1,
        merge_op: str = "all",
        ops: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        self.cell = nn.Cell(
            OPS if ops is None else ops,
            num_nodes,
            num_ops_per_node,
            num_predecessors,
            merge_op,
            label="cell",
            **kwargs,
        )

    def forward(self, *xs: torch.Tensor) -> Any:
        return self.cell(*xs)


def reference(sample: dict[str, Any], inputs: list[torch.Tensor], num_nodes: int, ops_per_node: int, merge_op: str):
    """The cell computed by hand from the sample (NNI semantics)."""
    states = list(inputs)
    used: set[int] = set()
    for node in range(len(inputs), len(inputs) + num_nodes):
        total = 0
        for j in range(ops_per_node):
            source = sample[f"cell/input_{node}_{j}"]
            used.add(source)
            total = total + FACTORS[sample[f"cell/op_{node}_{j}"]] * states[source]
        states.append(total)
    nodes = range(len(inputs), len(inputs) + num_nodes)
    outputs = [n for n in nodes if merge_op == "all" or n not in used]
    return torch.cat([states[n] for n in outputs], 1), outputs


VARIANTS = [
    (nodes, per_node, preds, merge)
    for nodes, per_node, preds, merge in itertools.product([1, 2, 4], [1, 2, 3], [1, 2, 3], ["all", "loose_end"])
    if nodes * per_node <= 8
]


@pytest.mark.parametrize(("num_nodes", "per_node", "preds", "merge_op"), VARIANTS)
def test_cell_matches_the_hand_computation(num_nodes: int, per_node: int, preds: int, merge_op: str) -> None:
    space = CellSpace(num_nodes, per_node, preds, merge_op)
    labels = list(space.search_space)
    expected_labels = [
        label
        for node in range(preds, preds + num_nodes)
        for j in range(per_node)
        for label in (f"cell/input_{node}_{j}", f"cell/op_{node}_{j}")
    ]
    assert labels == expected_labels
    input_choices = 1
    for node in range(preds, preds + num_nodes):
        input_choices *= node**per_node
    assert space.size() == input_choices * 3 ** (num_nodes * per_node)

    inputs = [torch.full((2, 3), float(i + 1)) + torch.arange(3.0) / 10 for i in range(preds)]
    for seed in range(6):
        sample = space.random(seed=seed)
        model = space.freeze(sample)
        assert isinstance(model.cell, CellBody) and not isinstance(model.cell, nn.Cell)
        expected, outputs = reference(sample, inputs, num_nodes, per_node, merge_op)
        assert model.cell.output_node_indices == outputs
        out = model(*inputs)
        assert out.shape == (2, 3 * len(outputs))
        assert torch.allclose(out, expected)
        assert torch.allclose(model(inputs), expected)  # a list works as well as *args
        assert_plain(model)


def test_loose_end_outputs_only_unused_nodes() -> None:
    space = CellSpace(3, 1, 1, "loose_end")
    # node 1 <- input 0, node 2 <- node 1, node 3 <- input 0: nodes 2 and 3 are loose ends
    sample = {
        "cell/input_1_0": 0,
        "cell/op_1_0": "triple",
        "cell/input_2_0": 1,
        "cell/op_2_0": "neg",
        "cell/input_3_0": 0,
        "cell/op_3_0": "one",
    }
    model = space.freeze(sample)
    assert model.cell.output_node_indices == [2, 3]
    x = torch.ones(1, 2)
    assert model(x).tolist() == [[-3.0, -3.0, 1.0, 1.0]]
    all_model = CellSpace(3, 1, 1, "all").freeze(sample)
    assert all_model.cell.output_node_indices == [1, 2, 3]
    assert all_model(x).tolist() == [[3.0, 3.0, -3.0, -3.0, 1.0, 1.0]]


@pytest.mark.parametrize("merge_op", ["all", "loose_end"])
def test_output_channels_with_convolutions(merge_op: str) -> None:
    ops = [lambda: nn.Conv2d(4, 4, 3, padding=1), nn.Conv2d(4, 4, 1), nn.Identity()]
    space = CellSpace(3, 2, 2, merge_op, ops=ops)
    for seed in range(8):
        sample = space.random(seed=seed)
        model = space.freeze(sample)
        out = model(torch.zeros(1, 4, 3, 3), torch.zeros(1, 4, 3, 3))
        n_out = len(model.cell.output_node_indices)
        assert out.shape == (1, 4 * n_out, 3, 3)
        if merge_op == "all":
            assert n_out == 3
        chosen_ops = [sample[f"cell/op_{n}_{j}"] for n in (2, 3, 4) for j in (0, 1)]
        params = {0: 4 * 4 * 9 + 4, 1: 4 * 4 + 4, 2: 0}
        assert count_params(model) == sum(params[op] for op in chosen_ops)


def test_concat_dim() -> None:
    space = CellSpace(2, 1, 1, "all", concat_dim=0)
    model = space.freeze({"cell/input_1_0": 0, "cell/op_1_0": "one", "cell/input_2_0": 1, "cell/op_2_0": "neg"})
    assert model(torch.ones(2, 3)).shape == (4, 3)


def test_preprocessor_and_postprocessor() -> None:
    class Pre(nn.Module):
        """Maps inputs of different widths to width 2."""

        def __init__(self) -> None:
            super().__init__()
            self.a = nn.Linear(5, 2)
            self.b = nn.Linear(7, 2)

        def forward(self, inputs: list[torch.Tensor]) -> list[torch.Tensor]:
            return [self.a(inputs[0]), self.b(inputs[1])]

    seen: list[Any] = []

    def post(this_cell: torch.Tensor, inputs: list[torch.Tensor]) -> torch.Tensor:
        seen.append([t.shape[1] for t in inputs])
        return this_cell.sum(1, keepdim=True)

    space = CellSpace(2, 1, 2, "all", preprocessor=Pre(), postprocessor=post)
    model = space.freeze(space.random(seed=0))
    assert isinstance(model.cell.preprocessor, Pre)
    assert count_params(model) == (5 * 2 + 2) + (7 * 2 + 2)  # the ops are parameter-free
    out = model(torch.zeros(3, 5), torch.zeros(3, 7))
    assert out.shape == (3, 1)
    assert seen == [[5, 7]]  # the postprocessor gets the raw inputs


def test_wrong_number_of_inputs() -> None:
    model = CellSpace(1, 1, 2).freeze({"cell/input_2_0": 0, "cell/op_2_0": "one"})
    with pytest.raises(ValueError, match="'cell' expects 2 inputs, got 1"):
        model(torch.zeros(1, 1))


def test_factory_with_node_op_input_arguments() -> None:
    calls: list[tuple[Any, ...]] = []

    def factory(node_index: int, op_index: int, input_index: int | None) -> nn.Module:
        calls.append((node_index, op_index, input_index))
        return Scale(node_index * 100 + op_index * 10 + (input_index or 0))

    class Space(nn.ModelSpace):
        def __init__(self) -> None:
            super().__init__()
            self.cell = nn.Cell({"f": factory, "one": Scale(1.0)}, 2, 2, 1, label="cell")

    space = Space()
    # while searching the input is undecided: every (node, op) gets one op per input
    assert calls == [(1, 0, 0), (1, 1, 0), (2, 0, 0), (2, 0, 1), (2, 1, 0), (2, 1, 1)]
    calls.clear()
    sample = {
        "cell/input_1_0": 0,
        "cell/op_1_0": "f",
        "cell/input_1_1": 0,
        "cell/op_1_1": "one",
        "cell/input_2_0": 1,
        "cell/op_2_0": "one",
        "cell/input_2_1": 0,
        "cell/op_2_1": "f",
    }
    model = space.freeze(sample)
    assert calls == [(1, 0, 0), (2, 1, 0)]  # only the chosen, with the chosen input
    assert model.cell.ops[0][0].factor == 100
    assert model.cell.ops[1][1].factor == 210
    node1 = 100 + 1  # x = 1
    node2 = node1 * 1 + 210
    assert model.cell(torch.ones(1, 1)).tolist() == [[node1, node2]]


def test_zero_argument_factories_and_classes() -> None:
    zero_calls: list[int] = []

    def zero() -> nn.Module:
        zero_calls.append(1)
        return Scale(5.0)

    class Space(nn.ModelSpace):
        def __init__(self) -> None:
            super().__init__()
            self.cell = nn.Cell([zero, nn.Identity, nn.ReLU()], 1, 1, 1, label="cell")

    space = Space()
    assert zero_calls == [1]
    zero_calls.clear()
    model = space.freeze({"cell/input_1_0": 0, "cell/op_1_0": 1})
    assert zero_calls == []
    assert type(model.cell.ops[0][0]) is torch.nn.Identity
    model = space.freeze({"cell/input_1_0": 0, "cell/op_1_0": 0})
    assert zero_calls == [1]
    assert model.cell(torch.ones(1, 1)).item() == 5.0


def test_module_candidates_are_copied_per_op() -> None:
    shared = nn.Linear(2, 2)

    class Space(nn.ModelSpace):
        def __init__(self) -> None:
            super().__init__()
            self.cell = nn.Cell([shared], 2, 1, 1, label="cell")

    model = Space().freeze({"cell/input_1_0": 0, "cell/op_1_0": 0, "cell/input_2_0": 1, "cell/op_2_0": 0})
    a, b = model.cell.ops[0][0], model.cell.ops[1][0]
    assert a is not shared and b is not shared and a is not b
    assert count_params(model) == 2 * 6


def test_auto_label_and_nni_style_usage() -> None:
    class DartsLike(nn.ModelSpace):
        def __init__(self) -> None:
            super().__init__()
            self.stem = nn.Conv2d(3, 4, 1)
            self.normal = nn.Cell(
                {"conv": lambda n, o, i: nn.Conv2d(4, 4, 3, padding=1), "pool": nn.MaxPool2d(3, 1, 1)},
                num_nodes=2,
                num_ops_per_node=2,
                num_predecessors=2,
                merge_op="loose_end",
            )
            self.head = nn.LazyLinear(5)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            s = self.stem(x)
            return self.head(self.normal(s, s).mean((2, 3)))

    space = DartsLike()
    assert list(space.search_space)[:2] == ["cell_1/input_2_0", "cell_1/op_2_0"]
    assert space.search_space["cell_1/op_3_1"].values == ["conv", "pool"]
    for seed in range(4):
        assert space.freeze(space.random(seed=seed))(torch.zeros(2, 3, 4, 4)).shape == (2, 5)


def test_unfrozen_cell_cannot_run() -> None:
    with pytest.raises(archsmith.NotFrozenError, match="unfrozen_cell/"):
        nn.Cell([nn.Identity()], 1, label="unfrozen_cell")(torch.zeros(1, 1))


_SEEN: list[tuple[int, int, int | None]] = []  # the conv factory's calls (freeze copies init arguments)


class _Reduction(nn.ModelSpace):
    def __init__(self) -> None:
        super().__init__()

        def conv(node: int, op: int, input_index: int | None) -> torch.nn.Module:
            _SEEN.append((node, op, input_index))
            stride = 2 if input_index is not None and input_index < 2 else 1
            return nn.Conv2d(2, 2, 3, stride=stride, padding=1)

        self.cell = nn.Cell(
            {"conv": conv, "pool": lambda n, o, i: nn.AvgPool2d(3, 2 if i is not None and i < 2 else 1, 1)},
            num_nodes=2,
            num_ops_per_node=2,
            num_predecessors=2,
            label="cell",
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cell([x, x])


def test_reduction_cell_builds_one_op_per_input() -> None:
    """A factory taking the input index is called once per (node, op, input) while
    searching, under the one op label, and only for the chosen input when frozen."""
    seen = _SEEN
    seen.clear()
    space = _Reduction()
    assert sorted(seen) == sorted((n, j, i) for n in (2, 3) for j in (0, 1) for i in range(n))
    assert list(space.search_space) == [f"cell/{k}_{n}_{j}" for n in (2, 3) for j in (0, 1) for k in ("input", "op")]
    for seed in range(8):
        seen.clear()
        sample = space.random(seed)
        model = space.freeze(sample)
        out = model(torch.randn(1, 2, 8, 8))
        assert out.shape == (1, 4, 4, 4)
        conv_inputs = [(n, j, sample[f"cell/input_{n}_{j}"]) for n in (2, 3) for j in (0, 1)]
        assert seen == [c for c in conv_inputs if sample[f"cell/op_{c[0]}_{c[1]}"] == "conv"]


def test_loose_end_width_is_an_expression_that_matches_every_frozen_cell() -> None:
    import random as _random

    from archsmith.space._expression import bounded_leaves

    cell = nn.Cell([torch.nn.Identity], 4, num_ops_per_node=2, num_predecessors=2, merge_op="loose_end", label="c")
    count = cell.num_output_nodes
    # Eight input choices: their combinations are many; the call lists its values.
    assert [leaf.label for leaf in bounded_leaves(count)] == [count.bound_label]
    assert bounded_leaves(count)[0].grid() == [1, 2, 3, 4]
    rng = _random.Random(0)
    for _ in range(20):
        sample = {f"c/input_{n}_{j}": rng.randrange(n) for n in range(2, 6) for j in range(2)}
        sample.update({f"c/op_{n}_{j}": 0 for n in range(2, 6) for j in range(2)})
        with nn.fixed_arch(sample):
            frozen = nn.Cell(
                [torch.nn.Identity], 4, num_ops_per_node=2, num_predecessors=2, merge_op="loose_end", label="c"
            )
        assert count.evaluate(sample) == len(frozen.output_node_indices) == frozen.num_output_nodes
    all_cell = nn.Cell([torch.nn.Identity], 3, num_predecessors=2, label="a")
    assert all_cell.num_output_nodes == 3

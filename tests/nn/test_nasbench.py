"""``NasBench101Cell`` and ``NasBench201Cell`` against the benchmarks' semantics."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
import torch

import archsmith
import archsmith.nn as nn
from archsmith.nn._nasbench101 import NasBench101Body
from archsmith.nn._nasbench201 import NasBench201Body

from ._helpers import assert_plain, count_params


class Scale(nn.Module):
    def __init__(self, factor: float, channels: int | None = None) -> None:
        super().__init__()
        self.factor, self.channels = factor, channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.factor


def ones_projection(c_in: int, c_out: int) -> nn.Module:
    """A 1x1 convolution with unit weights: every output channel is the sum of the inputs."""
    conv = nn.Conv2d(c_in, c_out, 1, bias=False)
    nn.init.ones_(conv.weight)
    return conv


# NAS-Bench-101 --------------------------------------------------------------------

built_ops: list[tuple[str, int]] = []


def op(name: str, factor: float):
    def factory(channels: int) -> nn.Module:
        built_ops.append((name, channels))
        return Scale(factor, channels)

    return factory


NB101_OPS = {"id": op("id", 1.0), "x2": op("x2", 2.0), "neg": op("neg", -1.0)}


class NB101(nn.ModelSpace):
    def __init__(self, max_num_nodes: int = 7, max_num_edges: int = 9, in_features: int = 3, out_features: int = 10):
        super().__init__()
        self.cell = nn.NasBench101Cell(
            NB101_OPS, in_features, out_features, ones_projection, max_num_nodes, max_num_edges, label="nb"
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cell(x)


def nb101_sample(max_nodes: int, num_nodes: int, inputs: dict[int, list[int]], ops: dict[int, str] | None = None):
    """A full sample: the given decisions, the rest at harmless values."""
    ops = ops or {}
    sample: dict[str, Any] = {"nb/num_nodes": num_nodes}
    for j in range(1, max_nodes - 1):
        sample[f"nb/op{j}"] = ops.get(j, "id")
    for j in range(1, max_nodes):
        sample[f"nb/input{j}"] = inputs.get(j, [])
    return sample


@pytest.fixture(autouse=True)
def _reset() -> None:
    built_ops.clear()


def test_nb101_decisions() -> None:
    space = NB101(max_num_nodes=5)
    assert list(space.search_space) == [
        "nb/num_nodes",
        "nb/op1",
        "nb/op2",
        "nb/op3",
        "nb/input1",
        "nb/input2",
        "nb/input3",
        "nb/input4",
    ]
    assert space.search_space["nb/num_nodes"].values == [2, 3, 4, 5]
    assert space.search_space["nb/op2"].values == ["id", "x2", "neg"]
    assert space.search_space["nb/input3"].values == [0, 1, 2]
    assert space.default()["nb/num_nodes"] == 5
    assert built_ops == []  # ops are built only when frozen


def test_nb101_every_vertex_on_a_path_channels_split_over_the_output() -> None:
    # 0->1->2->4, 0->3->4, 1->4: nothing to prune; three vertices feed the output
    space = NB101(max_num_nodes=5, out_features=10)
    sample = nb101_sample(5, 5, {1: [0], 2: [1], 3: [0], 4: [1, 2, 3]}, {1: "x2", 2: "id", 3: "neg"})
    cell = space.freeze(sample).cell
    assert type(cell) is NasBench101Body
    assert cell.matrix == [[0, 1, 0, 1, 0], [0, 0, 1, 0, 1], [0, 0, 0, 0, 1], [0, 0, 0, 0, 1], [0, 0, 0, 0, 0]]
    # 10 channels over 3 vertices: 4 + 3 + 3, the remainder to the first
    assert cell.channels == [3, 4, 3, 3, 10]
    assert built_ops == [("x2", 4), ("id", 3), ("neg", 3)]
    assert {k: (p.in_channels, p.out_channels) for k, p in cell.projections.items()} == {"1": (3, 4), "3": (3, 3)}
    out = cell(torch.ones(1, 3, 1, 1))  # projection of ones: 3 in every channel
    assert out.flatten().tolist() == [6.0] * 4 + [6.0] * 3 + [-3.0] * 3


def test_nb101_vertices_not_feeding_the_output_take_their_successors_channels() -> None:
    cell = NB101(max_num_nodes=4, out_features=8).freeze(nb101_sample(4, 4, {1: [0], 2: [1], 3: [2]})).cell
    assert cell.channels == [3, 8, 8, 8]
    assert list(cell.projections) == ["1"]
    assert cell(torch.ones(2, 3, 2, 2)).shape == (2, 8, 2, 2)


def test_nb101_prunes_vertices_off_every_input_output_path() -> None:
    # vertex 2 is a dead end, vertex 3 has no input: kept 0, 1, 4, 5
    sample = nb101_sample(6, 6, {1: [0], 2: [0], 3: [], 4: [0, 3], 5: [1, 4]}, {1: "x2", 2: "neg", 3: "neg", 4: "id"})
    cell = NB101(max_num_nodes=6, out_features=8).freeze(sample).cell
    assert cell.matrix == [[0, 1, 1, 0], [0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 0, 0]]
    assert cell.channels == [3, 4, 4, 8]
    assert built_ops == [("x2", 4), ("id", 4)]  # the pruned vertices' ops are never built
    assert cell(torch.ones(1, 3, 1, 1)).flatten().tolist() == [6.0] * 4 + [3.0] * 4


def test_nb101_input_straight_to_output() -> None:
    for sample in (
        nb101_sample(5, 2, {1: [0]}),
        nb101_sample(5, 5, {1: [0], 2: [1], 3: [2], 4: [0]}),  # the interior reaches no output
    ):
        cell = NB101(max_num_nodes=5, out_features=6).freeze(sample).cell
        assert cell.matrix == [[0, 1], [0, 0]]
        assert cell.channels == [3, 6]
        assert list(cell.ops) == []
        assert cell(torch.ones(1, 3, 1, 1)).flatten().tolist() == [3.0] * 6


def test_nb101_input_to_output_edge_adds_the_projection() -> None:
    cell = NB101(max_num_nodes=3, out_features=6).freeze(nb101_sample(3, 3, {1: [0], 2: [0, 1]}, {1: "x2"})).cell
    assert cell.channels == [3, 6, 6]
    assert sorted(cell.projections) == ["1", "2"]
    assert cell(torch.ones(1, 3, 1, 1)).flatten().tolist() == [9.0] * 6  # 2 * 3 + 3


def test_nb101_truncates_wider_predecessors() -> None:
    # 0->1, 0->2, 1->2, 1->3, 2->3: vertices 1 and 2 feed the output with 5 + 4 channels,
    # and vertex 2 reads vertex 1 truncated to its 4 channels
    sample = nb101_sample(4, 4, {1: [0], 2: [0, 1], 3: [1, 2]}, {1: "x2", 2: "id"})
    cell = NB101(max_num_nodes=4, out_features=9).freeze(sample).cell
    assert cell.channels == [3, 5, 4, 9]
    out = cell(torch.ones(1, 3, 1, 1)).flatten().tolist()
    assert out == [6.0] * 5 + [9.0] * 4  # vertex 2: 6 (truncated vertex 1) + 3 (projection)


def count_nb101_samples(max_nodes: int, max_edges: int, n_ops: int) -> int:
    """Architectures of the NB101 space by brute force: every adjacency of the
    used vertices, times the ops of its inner vertices (the inputs and ops of
    vertices beyond ``num_nodes`` are unused: they make no other architecture)."""
    total = 0
    for n in range(2, max_nodes + 1):
        bits = n * (n - 1) // 2
        masks = np.arange(2**bits, dtype=np.int64)
        reach = np.ones_like(masks)
        for j in range(1, n):
            inputs = (masks >> (j * (j - 1) // 2)) & ((1 << j) - 1)
            reach |= ((inputs & reach) != 0).astype(np.int64) << j
        valid = (np.bitwise_count(masks) <= max_edges) & (((reach >> (n - 1)) & 1) == 1)
        total += int(valid.sum()) * n_ops ** (n - 2)
    return total


@pytest.mark.parametrize(("max_nodes", "max_edges"), [(3, 9), (4, 2), (4, 9), (5, 4), (7, 9)])
def test_nb101_size_counts_valid_samples_exactly(max_nodes: int, max_edges: int) -> None:
    space = NB101(max_num_nodes=max_nodes, max_num_edges=max_edges)
    assert space.size() == count_nb101_samples(max_nodes, max_edges, 3)
    assert space.size(constrained=False) == sum(3 ** (n - 2) * 2 ** sum(range(n)) for n in range(2, max_nodes + 1))


def test_nb101_grid_yields_exactly_the_valid_samples() -> None:
    space = NB101(max_num_nodes=4, max_num_edges=3)
    grid = list(space.grid())
    assert len(grid) == space.size() == count_nb101_samples(4, 3, 3)
    assert len({json.dumps(s, sort_keys=True) for s in grid}) == len(grid)
    for sample in grid[::7]:
        assert space.freeze(sample)(torch.zeros(1, 3, 1, 1)).shape == (1, 10, 1, 1)


def test_nb101_edge_limit_is_a_constraint() -> None:
    space = NB101(max_num_nodes=4, max_num_edges=2)
    too_many = nb101_sample(4, 4, {1: [0], 2: [0, 1], 3: [2]})  # 4 edges, all on paths
    with pytest.raises(archsmith.SampleError, match="at most 2 edges"):
        space.validate(too_many)
    with pytest.raises(archsmith.SampleError, match="at most 2 edges"):
        space.freeze(too_many)
    for seed in range(30):
        sample = space.random(seed=seed)
        n = sample["nb/num_nodes"]
        assert sum(len(sample[f"nb/input{j}"]) for j in range(1, n)) <= 2


def test_nb101_unreachable_output_is_rejected() -> None:
    space = NB101(max_num_nodes=4)
    with pytest.raises(archsmith.SampleError, match="reachable"):
        space.validate(nb101_sample(4, 4, {1: [0], 2: [1], 3: []}))


def test_nb101_random_samples_freeze_and_run() -> None:
    space = NB101()  # the benchmark's 7 vertices and 9 edges
    for seed in range(25):
        sample = space.random(seed=seed)
        n = sample["nb/num_nodes"]
        assert sum(len(sample[f"nb/input{j}"]) for j in range(1, n)) <= 9
        cell = space.freeze(sample).cell
        m = len(cell.matrix)
        # every kept vertex is on an input -> output path
        for v in range(1, m - 1):
            assert any(cell.matrix[u][v] for u in range(v)) and any(cell.matrix[v][w] for w in range(v + 1, m))
        # channels: the output's fan-in splits out_features; the others take their successors' max
        feeding = [v for v in range(1, m - 1) if cell.matrix[v][m - 1]]
        assert sum(cell.channels[v] for v in feeding) == (10 if feeding else 0)
        for v in range(1, m - 1):
            if v not in feeding:
                assert cell.channels[v] == max(cell.channels[w] for w in range(v + 1, m - 1) if cell.matrix[v][w])
        assert cell(torch.ones(2, 3, 2, 2)).shape == (2, 10, 2, 2)
        assert_plain(cell)


def test_nb101_in_a_model_with_fixed_arch_and_auto_label() -> None:
    class Net(nn.ModelSpace):
        def __init__(self) -> None:
            super().__init__()
            self.cell = nn.NasBench101Cell([lambda c: nn.Conv2d(c, c, 3, padding=1)], 2, 4, ones_projection)

    space = Net()
    assert next(iter(space.search_space)) == "nb101_cell_1/num_nodes"
    sample = space.random(seed=1)
    with archsmith.fixed_arch(sample):
        model = Net()
    assert repr(model) == repr(space.freeze(sample))
    assert model.cell(torch.zeros(1, 2, 3, 3)).shape == (1, 4, 3, 3)


def test_nb101_unfrozen_cannot_run() -> None:
    with pytest.raises(archsmith.NotFrozenError, match="'nb'"):
        NB101(max_num_nodes=3).cell(torch.zeros(1, 3, 1, 1))


# NAS-Bench-201 --------------------------------------------------------------------

NB201_FACTORS = {"none": 0.0, "skip_connect": 1.0, "x2": 2.0, "x5": 5.0}
nb201_calls: list[tuple[str, int, int]] = []


def nb201_op(name: str):
    def factory(c_in: int, c_out: int) -> nn.Module:
        nb201_calls.append((name, c_in, c_out))
        return Scale(NB201_FACTORS[name])

    return factory


class NB201(nn.ModelSpace):
    def __init__(self, num_tensors: int = 4) -> None:
        super().__init__()
        self.cell = nn.NasBench201Cell(
            {name: nb201_op(name) for name in NB201_FACTORS}, 3, 3, num_tensors=num_tensors, label="c201"
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cell(x)


def nb201_reference(sample: dict[str, str], x: torch.Tensor, num_tensors: int) -> torch.Tensor:
    tensors = [x]
    for j in range(1, num_tensors):
        tensors.append(sum(NB201_FACTORS[sample[f"c201/{j}_{i}"]] * tensors[i] for i in range(j)))
    return tensors[-1]


@pytest.mark.parametrize("num_tensors", [2, 3, 4, 5])
def test_nb201_matches_the_hand_computation(num_tensors: int) -> None:
    space = NB201(num_tensors)
    edges = [(j, i) for j in range(1, num_tensors) for i in range(j)]
    assert list(space.search_space) == [f"c201/{j}_{i}" for j, i in edges]
    assert space.size() == 4 ** len(edges)
    assert space.search_space["c201/1_0"].values == list(NB201_FACTORS)
    x = torch.arange(6.0).reshape(2, 3)
    for seed in range(10):
        sample = space.random(seed=seed)
        nb201_calls.clear()
        model = space.freeze(sample)
        assert type(model.cell) is NasBench201Body
        assert [name for name, _, _ in nb201_calls] == [sample[f"c201/{j}_{i}"] for j, i in edges]
        assert torch.allclose(model(x), nb201_reference(sample, x, num_tensors))
        assert_plain(model)


def test_nb201_the_benchmark_cell_by_hand() -> None:
    sample = {
        "c201/1_0": "x2",
        "c201/2_0": "skip_connect",
        "c201/2_1": "x5",
        "c201/3_0": "none",
        "c201/3_1": "skip_connect",
        "c201/3_2": "x2",
    }
    x = torch.ones(1, 3)
    # n1 = 2x; n2 = x + 5 n1 = 11x; n3 = 0 + n1 + 2 n2 = 24x
    assert NB201().freeze(sample)(x).tolist() == [[24.0, 24.0, 24.0]]


def test_nb201_channels_from_the_input_and_between_nodes() -> None:
    class Wide(nn.ModelSpace):
        def __init__(self) -> None:
            super().__init__()
            self.cell = nn.NasBench201Cell(
                [lambda c_in, c_out: nn.Linear(c_in, c_out), lambda c_in, c_out: nn.Linear(c_in, c_out, bias=False)],
                in_features=3,
                out_features=5,
                label="wide",
            )

    space = Wide()
    assert space.size() == 2**6
    model = space.freeze({label: 1 for label in space.search_space})
    widths = [(edge.in_features, edge.out_features) for node in model.cell.layers for edge in node]
    assert widths == [(3, 5), (3, 5), (5, 5), (3, 5), (5, 5), (5, 5)]
    assert count_params(model) == 3 * (3 * 5) + 3 * (5 * 5)
    assert model.cell(torch.zeros(2, 3)).shape == (2, 5)
    model = space.freeze({label: 0 for label in space.search_space})
    assert count_params(model) == 3 * (3 * 5 + 5) + 3 * (5 * 5 + 5)


def test_nb201_list_candidates_are_indices_and_auto_label() -> None:
    class Listed(nn.ModelSpace):
        def __init__(self) -> None:
            super().__init__()
            self.cell = nn.NasBench201Cell([lambda a, b: nn.Identity(), lambda a, b: Scale(0.0)], 2, 2, num_tensors=3)

    space = Listed()
    assert list(space.search_space) == ["nb201_cell_1/1_0", "nb201_cell_1/2_0", "nb201_cell_1/2_1"]
    assert space.search_space["nb201_cell_1/2_1"].values == [0, 1]
    for sample in space.grid():
        assert space.freeze(sample).cell(torch.ones(1, 2)).shape == (1, 2)
    assert len(list(space.grid())) == 8


def test_nb201_unfrozen_cannot_run() -> None:
    with pytest.raises(archsmith.NotFrozenError, match="c201/1_0"):
        NB201().cell(torch.zeros(1, 3))


def test_nb201_builds_only_the_chosen_ops_when_frozen() -> None:
    nb201_calls.clear()
    space = NB201()
    assert len(nb201_calls) == 6 * 4  # the space builds every op of every edge once
    nb201_calls.clear()
    space.freeze(dict.fromkeys(space.search_space, "x5"))
    assert nb201_calls == [("x5", 3, 3)] * 6

"""The NAS-Bench-101 hub space: NNI 3.0's arguments and labels, an NNI sample that
loads unchanged, the shared cell decisions, and the errors of a bad sample or
argument. Sampling, freezing and running go through the registry
(tests/hub/test_spaces.py)."""

from __future__ import annotations

import pytest
import torch

import archsmith.nn as nn
from archsmith.hub import HubError, NasBench101, get_space
from archsmith.hub._nasbench101 import OP_NAMES, ConvBNReLU
from archsmith.nn._nasbench101 import NasBench101Body
from archsmith.space import SpaceError

pytestmark = pytest.mark.usefixtures("one_thread")  # small models: extra threads only contend

#: A sample as NNI 3.0 writes it for ``NasBench101()``: every label, inputs as lists.
NNI_SAMPLE = {
    "cell/num_nodes": 5,
    "cell/op1": "conv3x3-bn-relu",
    "cell/op2": "maxpool3x3",
    "cell/op3": "conv1x1-bn-relu",
    "cell/op4": "conv3x3-bn-relu",
    "cell/op5": "conv3x3-bn-relu",
    "cell/input1": [0],
    "cell/input2": [1],
    "cell/input3": [0, 2],
    "cell/input4": [1, 3],
    "cell/input5": [0],
    "cell/input6": [5],
}


def _small(**kwargs: int) -> NasBench101:
    return NasBench101(stem_out_channels=8, num_stacks=2, num_modules_per_stack=2, **kwargs)


def test_registered_with_nni_labels() -> None:
    assert get_space("nasbench101") is NasBench101
    space = _small().search_space
    assert list(space) == (
        ["cell/num_nodes"] + [f"cell/op{j}" for j in range(1, 6)] + [f"cell/input{j}" for j in range(1, 7)]
    )
    assert space["cell/num_nodes"].values == [2, 3, 4, 5, 6, 7]
    assert space["cell/op3"].values == list(OP_NAMES)
    assert space["cell/input4"].values == [0, 1, 2, 3]


def test_an_nni_sample_loads_unchanged_and_every_cell_shares_it() -> None:
    space = _small(num_labels=5)
    space.validate(NNI_SAMPLE)
    model = space.freeze(NNI_SAMPLE).eval()
    cells = [m for m in model.features if isinstance(m, NasBench101Body)]
    assert len(cells) == 4
    # vertices 0..4: 0 -> 1 -> 2 -> 3 -> 4 plus 0 -> 3 and 1 -> 4 (the inputs of vertices 5, 6 are unused)
    expected = [[0, 1, 0, 1, 0], [0, 0, 1, 0, 1], [0, 0, 0, 1, 0], [0, 0, 0, 0, 1], [0, 0, 0, 0, 0]]
    assert all(cell.matrix == expected for cell in cells)
    assert [type(cells[0].ops[k]).__name__ for k in ("1", "2", "3")] == ["ConvBNReLU", "MaxPool2d", "ConvBNReLU"]
    assert [c.channels[-1] for c in cells] == [8, 8, 16, 16]
    with torch.no_grad():
        assert model(torch.randn(2, 3, 16, 16)).shape == (2, 5)
    with nn.fixed_arch(NNI_SAMPLE):
        again = _small(num_labels=5)
    assert sum(p.numel() for p in again.parameters()) == sum(p.numel() for p in model.parameters())


def test_bn_settings_and_initialisation() -> None:
    model = _small(bn_eps=1e-3, bn_momentum=0.1).freeze(NNI_SAMPLE)
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert norms and all(m.eps == 1e-3 and m.momentum == 0.1 for m in norms)
    conv = ConvBNReLU(16, 16, 3)[0]
    std = (1.0 / (9 * 16)) ** 0.5
    assert conv.weight.abs().max() <= 2 * std + 1e-6  # truncated at two std


def test_invalid_samples_are_named() -> None:
    space = _small()
    too_many_edges = dict(NNI_SAMPLE, **{"cell/num_nodes": 7, "cell/input6": [0, 1, 2, 3, 4, 5]})
    with pytest.raises(SpaceError, match="at most 9 edges"):
        space.validate(too_many_edges)
    cut = dict(NNI_SAMPLE, **{"cell/input5": [], "cell/input4": [], "cell/input6": [], "cell/num_nodes": 7})
    with pytest.raises(SpaceError, match="reachable"):
        space.validate(cut)


def test_bad_arguments_are_named() -> None:
    with pytest.raises(HubError, match="num_stacks must be an int >= 1"):
        NasBench101(num_stacks=0)
    with pytest.raises(HubError, match="max_num_vertices must be an int >= 2"):
        NasBench101(max_num_vertices=1)

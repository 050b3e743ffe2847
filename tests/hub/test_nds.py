"""The NDS cell spaces (NASNet, ENAS, AmoebaNet, PNAS, DARTS): tiny spaces that
sample, freeze and run, NNI's labels, the published CIFAR-10 networks' parameter
counts, and the argument errors. Sizes stay small: a full-width space has
thousands of ops and takes seconds to build."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import pytest
import torch

import archsmith
import archsmith.nn as nn
from archsmith.hub import DARTS, ENAS, NDS, PNAS, AmoebaNet, HubError, NASNet
from archsmith.hub._base import load_arch_file
from archsmith.hub._nasnet import NDSCell, _may_end_after_one_cell

FAMILIES = [NASNet, ENAS, AmoebaNet, PNAS, DARTS]

pytestmark = pytest.mark.usefixtures("one_thread")  # small models: extra threads only contend


@functools.cache
def _space(cls: type[NDS], width: int | tuple[int, ...] = 8, num_cells: int | tuple[int, ...] = 3) -> NDS:
    # Built once per worker: searching spaces are the slow part of these tests.
    return cls(width=width, num_cells=num_cells, num_labels=10)


def _params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _archsmith_modules(model: torch.nn.Module) -> list[str]:
    return [
        name
        for name, m in model.named_modules()
        if type(m).__module__.startswith("archsmith.") and not type(m).__module__.startswith("archsmith.hub.")
    ]


@pytest.mark.parametrize("cls", FAMILIES, ids=lambda c: c.__name__)
def test_frozen_cells_are_plain_nds_cells(cls: type[NDS]) -> None:
    # Sampling, freezing, running and published counts are checked through the registry
    # (tests/hub/test_spaces.py); here, what is particular to the cell spaces.
    assert cls.reduced_kwargs == {"width": 8, "num_cells": 3, "dataset": "cifar", "num_labels": 10}
    assert cls.reduced_kwargs_for(224)["dataset"] == "imagenet"
    assert all(v.num_labels == 10 and v.input_size == 32 for v in cls.searched_models.values())
    model = _space(cls).freeze(_space(cls).random(seed=0))
    assert not _archsmith_modules(model)
    assert all(isinstance(cell, NDSCell) for stage in model.stages for cell in stage)


def test_nni_labels_and_choices() -> None:
    space = _space(DARTS, (4, 8), (3, 6)).search_space
    assert space["width"].values == [4, 8] and space["depth"].values == [3, 6]
    assert space["normal/op_2_0"].values == DARTS.DARTS_OPS
    assert space["reduce/input_5_1"].values == [0, 1, 2, 3, 4]
    cells = {label.split("/")[0] for label in space if "/" in label}
    assert cells == {"normal", "reduce"}  # every normal cell shares one set of decisions
    assert len(space) == 2 + 2 * 4 * 2 * 2  # width, depth; 2 cell types x 4 nodes x 2 ops x (op, input)
    nasnet = _space(NASNet).search_space
    assert "normal/op_6_1" in nasnet and nasnet["normal/op_6_1"].values == NASNet.NASNET_OPS
    assert "width" not in nasnet and "depth" not in nasnet  # ints are fixed


def test_depth_and_width_choices_freeze() -> None:
    space = _space(DARTS, (4, 8), (3, 6))
    sample = space.random(seed=0) | {"width": 8, "depth": 6}
    model = space.freeze(sample)
    assert [len(stage) for stage in model.stages] == [2, 2, 2]
    assert model.stem[0].out_channels == 24
    with torch.no_grad():
        assert model.eval()(torch.randn(1, 3, 32, 32)).shape == (1, 10)


def test_darts_v2_with_the_auxiliary_head() -> None:
    sample = load_arch_file("darts-v2")
    with nn.fixed_arch(sample):
        full = DARTS(width=36, num_cells=20, auxiliary_loss=True)
    assert _params(full) == 3_825_768
    assert sum(p.numel() for n, p in full.named_parameters() if not n.startswith("auxiliary")) == 3_349_342
    with nn.fixed_arch(sample):
        small = DARTS(width=8, num_cells=3, auxiliary_loss=True, drop_path_prob=0.2)
    logits, aux = small.train()(torch.randn(2, 3, 32, 32))
    assert logits.shape == aux.shape == (2, 10)
    small.set_drop_path_prob(0.0)
    assert small.eval()(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_an_nni_sample_with_list_inputs_loads_unchanged(tmp_path: Path) -> None:
    # NNI 3.0 writes each input decision as a one-element list; the published sample in
    # that form builds the same network.
    ours = load_arch_file("darts-v2")
    nni = {label: [v] if "/input_" in label else v for label, v in ours.items()}
    path = tmp_path / "darts-v2-nni.json"
    path.write_text(json.dumps(nni))
    space = _space(DARTS)
    assert space.validate(archsmith.load_arch(path)) == space.validate(ours)
    with nn.fixed_arch(archsmith.load_arch(path)):
        model = DARTS(width=36, num_cells=20)
    assert _params(model) == DARTS.searched_models["darts-v2"].params
    bad = dict(nni, **{"normal/input_3_0": [7]})
    with pytest.raises(archsmith.SampleError, match=r"'normal/input_3_0': in \[7\]: 7 is out of range"):
        space.validate(bad)


def _depth_space() -> NDS:
    # Depth 3 or 6: one or two cells per stage, so every stage's output pair changes shape.
    return _space(DARTS, 4, (3, 6))


def _one_epoch() -> object:
    from archsmith.evaluator import Classification

    x = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, torch.arange(4)), batch_size=4)
    return Classification(train_dataloaders=loader, val_dataloaders=loader, max_epochs=1)


#: Small settings so that one epoch (and ENAS's controller, RandomOneShot's ranking) stays quick.
ONESHOT_KWARGS: dict[str, dict[str, object]] = {
    "darts": {"arc_learning_rate": 0.1, "top_k": 2},
    "gumbeldarts": {"arc_learning_rate": 0.1, "top_k": 2},
    "enas": {"ctrl_steps": 5, "ctrl_steps_aggregate": 5, "hidden_size": 16, "ranking_samples": 3},
    "randomoneshot": {"search_budget": 4},
}


@pytest.mark.parametrize("name", sorted(ONESHOT_KWARGS))
def test_a_num_cells_choice_trains_in_one_shot(name: str) -> None:
    from archsmith.strategy.oneshot import ONESHOT_STRATEGIES

    # A tiny NDS space (3 of DARTS's ops, 2 nodes per cell) of depth 3 or 6: every
    # stage holds one cell or two, so each stage's output pair changes shape with it.
    space = NDS(["sep_conv_3x3", "max_pool_3x3", "skip_connect"], "all", 2, 4, (3, 6), "cifar", num_labels=4)
    strategy = ONESHOT_STRATEGIES[name](**ONESHOT_KWARGS[name])
    ranking = strategy.search(space, _one_epoch(), seed=0)
    assert ranking and ranking[0][0]["depth"] in (3, 6)
    # Both depths' subnets take the supernet's weights (the same keys as their frozen models).
    for depth in (3, 6):
        sample = dict(ranking[0][0], depth=depth)
        model = space.freeze(sample, weights_from=strategy.supernet).eval()
        with torch.no_grad():
            assert model(torch.randn(2, 3, 8, 8)).shape == (2, 4)


def test_a_sampling_supernet_with_a_depth_choice_computes_the_frozen_subnet() -> None:
    from archsmith.strategy.oneshot import Supernet

    torch.manual_seed(0)
    space = _depth_space()
    supernet = Supernet(space, "sampling")
    x = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    supernet.eval()
    for seed, depth in ((0, 3), (1, 6)):
        sample = dict(space.random(seed=seed), depth=depth)
        supernet.set_sample(sample)
        frozen = space.freeze(sample, weights_from=supernet).eval()
        with torch.no_grad():
            assert torch.allclose(supernet(x), frozen(x), atol=1e-5)


def test_a_one_cell_stage_passes_on_its_input_aligned() -> None:
    # Where a searched depth may leave one cell in a stage, that stage passes on its
    # input through an aligning op (only in models where it holds one cell); a fixed
    # depth has none, so the published networks are unchanged.
    space = _depth_space()
    assert sorted(space.aligners) == ["0", "1", "2"]
    short, deep = (space.freeze(dict(space.random(seed=0), depth=d)) for d in (3, 6))
    assert [len(short.aligners[k]) for k in "012"] == [1, 1, 1]
    assert [len(deep.aligners[k]) for k in "012"] == [0, 0, 0]
    assert type(short.aligners["1"][0]).__name__ == "FactorizedReduce"  # stages 2 and 3 halve the resolution
    assert not any(k.startswith("aligners") for k in deep.state_dict())
    assert len(_space(DARTS).aligners) == 0
    # (9, 12): stages of 3 or 4 cells never hold one, so nothing to align; (3, 4): only the last stage.
    assert not any(_may_end_after_one_cell((9, 12), stage) for stage in range(3))
    assert [_may_end_after_one_cell((3, 4), stage) for stage in range(3)] == [False, False, True]


def test_a_loose_end_space_with_a_depth_choice_freezes_at_every_depth() -> None:
    # The aligned input is as wide as every node; loose-end cells output fewer, and the
    # next stage reads both right.
    space = ENAS(width=4, num_cells=(3, 6), num_labels=4)
    for seed, depth in ((0, 3), (1, 6), (2, 3)):
        model = space.freeze(dict(space.random(seed=seed), depth=depth)).eval()
        with torch.no_grad():
            assert model(torch.randn(2, 3, 16, 16)).shape == (2, 4)


def test_bad_arguments_are_named() -> None:
    with pytest.raises(HubError, match="dataset must be 'cifar' or 'imagenet'"):
        DARTS(width=8, num_cells=3, dataset="mnist")  # type: ignore[arg-type]
    with pytest.raises(HubError, match=r"unknown ops \['conv_9x9'\]"):
        NDS(["conv_9x9"], width=8, num_cells=3)
    with pytest.raises(HubError, match="merge_op"):
        NDS(["skip_connect"], merge_op="sum", width=8, num_cells=3)
    with pytest.raises(HubError, match="num_cells must be at least 3"):
        DARTS(width=8, num_cells=2)
    with pytest.raises(HubError, match="width must be a positive int"):
        DARTS(width=0, num_cells=3)
    with pytest.raises(HubError, match="auxiliary_loss needs a fixed num_cells"):
        DARTS(width=8, num_cells=(3, 6), auxiliary_loss=True)
    with pytest.raises(HubError, match="must be even"):
        DARTS(width=5, num_cells=3, dataset="imagenet")
    with pytest.raises(HubError, match="drop_path_prob"):
        DARTS(width=8, num_cells=3, drop_path_prob=1.0)

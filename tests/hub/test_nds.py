"""The NDS cell spaces (NASNet, ENAS, AmoebaNet, PNAS, DARTS): tiny spaces that
sample, freeze and run, NNI's labels, the published CIFAR-10 networks' parameter
counts, and the argument errors. Sizes stay small: a full-width space has
thousands of ops and takes seconds to build."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
import torch

import archsmith.nn as nn
from archsmith.hub import DARTS, ENAS, NDS, PNAS, AmoebaNet, HubError, NASNet
from archsmith.hub._base import load_arch_file
from archsmith.hub._nasnet import NDSCell

FAMILIES = [NASNet, ENAS, AmoebaNet, PNAS, DARTS]
VARIANTS = [(cls, name) for cls in FAMILIES for name in sorted(cls.searched_models)]


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
def test_reduced_space_samples_freeze_and_run(cls: type[NDS]) -> None:
    assert cls.reduced_kwargs == {"width": 8, "num_cells": 3, "dataset": "cifar", "num_labels": 10}
    space = _space(cls)
    for seed in range(2):
        model = space.freeze(space.random(seed=seed))
        assert not _archsmith_modules(model)
        assert all(isinstance(cell, NDSCell) for stage in model.stages for cell in stage)
        with torch.no_grad():
            out = model.eval()(torch.randn(2, 3, 32, 32))
        assert out.shape == (2, 10) and torch.isfinite(out).all()


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


@pytest.mark.parametrize(("cls", "name"), VARIANTS, ids=lambda v: getattr(v, "__name__", v))
def test_searched_model_has_the_published_parameter_count(cls: type[NDS], name: str) -> None:
    model = cls.load_searched_model(name)
    assert _params(model) == cls.searched_models[name].params
    assert not _archsmith_modules(model)
    # The sample is a complete sample of the space (labels do not depend on width or depth).
    sample = load_arch_file(name)
    _space(cls).validate(sample)
    assert all(isinstance(v, (str, int)) for v in sample.values())


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


def test_labels_are_stable_across_constructions() -> None:
    first, second = _space(DARTS), DARTS(width=8, num_cells=3, num_labels=10)
    assert list(first.search_space) == list(second.search_space)
    assert first.random(seed=3) == second.random(seed=3)


def test_imagenet_stem() -> None:
    space = DARTS(width=8, num_cells=3, dataset="imagenet")
    model = space.freeze(space.random(seed=1))
    with torch.no_grad():
        assert model.eval()(torch.randn(1, 3, 64, 64)).shape == (1, 1000)


def test_weights_round_trip(tmp_path: Path) -> None:
    source = PNAS.load_searched_model("pnas")
    path = tmp_path / "pnas.pt"
    torch.save(source.state_dict(), path)
    loaded = PNAS.load_searched_model("pnas", pretrained=True, weights=path)
    for (key, a), b in zip(source.state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(a, b), key
    with pytest.raises(HubError, match="downloads nothing"):
        DARTS.load_searched_model("darts-v2", pretrained=True)


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

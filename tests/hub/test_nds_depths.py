"""NDS spaces whose depth is searched: what a stage passes on follows the chosen depth."""

from __future__ import annotations

import pytest
import torch

from archsmith.hub import NASNet
from archsmith.profiler import FlopsProfiler, NumParamsProfiler


@pytest.mark.parametrize("cls", [NASNet])
def test_a_loose_end_stage_passes_on_the_width_of_its_chosen_last_cell(cls) -> None:
    # With num_cells 3 the last stage ends on its reduction cell (its own loose ends),
    # with 4 on a normal cell: the classifier's width must follow.
    space = cls(width=(8, 12), num_cells=(3, 4), num_labels=10, dataset="cifar")
    x = torch.zeros(1, 3, 32, 32)
    widths = set()
    for seed in range(8):
        sample = space.random(seed)
        model = space.freeze(sample).eval()
        with torch.no_grad():
            assert model(x).shape == (1, 10)
        widths.add(model.classifier.in_features)
    assert len(widths) > 2
    # the searching space shows the same model: profilers, checked against freezing, agree
    NumParamsProfiler(space, check_samples=8)
    FlopsProfiler(space, x, check_samples=4)

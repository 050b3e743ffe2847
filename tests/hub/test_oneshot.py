"""The DARTS cell space under every registered one-shot algorithm: one epoch of a
tiny space (width 4 or 8, one cell per stage, 8x8 inputs) where the algorithm's family
supports its primitives, an up-front refusal with the reason where it does not."""

from __future__ import annotations

import pytest
import torch

from archsmith.hub import DARTS
from archsmith.strategy.oneshot import ONESHOT_STRATEGIES, UnsupportedSpaceError
from archsmith.strategy.oneshot._supernet import check_supported
from tests.strategy.oneshot._spaces import make

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny supernets: extra threads only add overhead


def _one_epoch() -> object:
    from archsmith.evaluator import Classification

    x = torch.randn(16, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    y = torch.arange(16) % 4
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=8)
    return Classification(train_dataloaders=loader, val_dataloaders=loader, max_epochs=1)


#: Families that must train the DARTS space (Proxyless refuses Cell's per-input ops).
TRAINS = {"differentiable", "sampling"}


@pytest.mark.parametrize("name", sorted(ONESHOT_STRATEGIES))
def test_darts_space_trains_or_is_refused_with_the_reason(name: str) -> None:
    # A width choice too: one-shot slices the widths (a depth choice it cannot yet, see docs/hub.md).
    space, strategy = DARTS(width=(4, 8), num_cells=3, num_labels=4), make(name)
    try:
        check_supported(space, strategy.family, name)
    except UnsupportedSpaceError as refusal:
        assert strategy.family not in TRAINS, str(refusal)
        reason = str(refusal).splitlines()[1]
        with pytest.raises(UnsupportedSpaceError) as raised:
            strategy.search(space, _one_epoch(), seed=0)
        assert reason in str(raised.value)
        return
    assert strategy.family in TRAINS, f"{name} now supports the DARTS space: add its family to TRAINS"
    ranking = strategy.search(space, _one_epoch(), seed=0)
    assert ranking
    sample = ranking[0][0]
    space.validate(sample)
    model = space.freeze(sample, weights_from=strategy.supernet).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 3, 8, 8)).shape == (2, 4)

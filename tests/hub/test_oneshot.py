"""Every registered hub space under every registered one-shot algorithm, read off
the registries: a supported pair trains one epoch on the reduced space (8x8 inputs
where the space takes them, four samples) and exports an architecture that freezes
with the supernet's weights and runs; a refused pair is refused up front, with the
reason, before any training step. Which pairs are supported is never written here:
``check_supported`` says, and docs/hub_support.md shows it."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from archsmith.nn import ModelSpace
from archsmith.strategy.oneshot import ONESHOT_STRATEGIES, UnsupportedSpaceError
from archsmith.strategy.oneshot._supernet import check_supported
from archsmith.strategy.oneshot._support import SpaceCase, refusal
from tests.hub._oneshot_cases import CASES, built
from tests.strategy.oneshot._spaces import make

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny supernets: extra threads only add overhead

#: Input sizes for spaces that need more than 8x8 (AutoFormer's patch grid is fixed by img_size).
INPUT_SIZE = {"autoformer": 32}
#: Arguments laid over a case's for training here. The DARTS cell space gets a width
#: choice (one-shot slices the widths; a depth choice it cannot yet, see docs/hub.md).
TRAIN_KWARGS: dict[str, dict[str, Any]] = {"darts": {"width": (4, 8)}}
SAMPLES = 4
#: Faster than the shared test settings: fewer sampled architectures to rank.
FASTER = {
    "enas": {"ranking_samples": 2, "ctrl_steps": 4, "ctrl_steps_aggregate": 2},
    "randomoneshot": {"search_budget": 2},
}
PAIRS = [pytest.param(case, name, id=f"{case.id}-{name}") for case in CASES for name in sorted(ONESHOT_STRATEGIES)]


def _labels(case: SpaceCase) -> int:
    return int(case.kwargs.get("num_labels", 10))


def _inputs(case: SpaceCase, n: int, seed: int = 0) -> torch.Tensor:
    size = INPUT_SIZE.get(case.name, 8)
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


class _Untouchable(torch.utils.data.Dataset[Any]):
    """Data that fails the test if a refused search reads any of it."""

    def __len__(self) -> int:
        return SAMPLES

    def __getitem__(self, index: int) -> Any:
        raise AssertionError("a refused search read training data")


def _evaluator(dataset: torch.utils.data.Dataset[Any]) -> Any:
    from archsmith.evaluator import Classification

    loader = torch.utils.data.DataLoader(dataset, batch_size=SAMPLES)
    return Classification(train_dataloaders=loader, val_dataloaders=loader, max_epochs=1)


def _strategy(name: str) -> Any:
    return make(name, **FASTER.get(name, {}))


def _space(case: SpaceCase) -> ModelSpace:
    extra = TRAIN_KWARGS.get(case.id)
    if extra:
        case = SpaceCase(case.name, case.space_class, {**case.kwargs, **extra}, {**case.variant, **extra})
    return built(case)


@pytest.mark.parametrize(("case", "name"), PAIRS)
def test_trains_one_epoch_or_is_refused_up_front(case: SpaceCase, name: str) -> None:
    space, strategy = _space(case), _strategy(name)
    try:
        check_supported(space, strategy.family, strategy.name)
    except UnsupportedSpaceError as full:
        assert refusal(space, type(strategy)) is not None
        # The check an Experiment runs before anything: the same reasons, primitive by
        # primitive, and not one batch read.
        with pytest.raises(UnsupportedSpaceError) as raised:
            strategy.check(space, _evaluator(_Untouchable()))
        for line in str(full).splitlines()[1:]:
            assert line in str(raised.value)
        return
    assert refusal(space, type(strategy)) is None
    x, y = _inputs(case, SAMPLES), torch.arange(SAMPLES) % _labels(case)
    ranking = strategy.search(space, _evaluator(torch.utils.data.TensorDataset(x, y)), seed=0)
    assert ranking
    sample = ranking[0][0]
    space.validate(sample)
    model = space.freeze(sample, weights_from=strategy.supernet).eval()
    with torch.no_grad():
        out = model(_inputs(case, 2, seed=1))
    assert out.shape == (2, _labels(case))
    assert torch.isfinite(out).all()


def test_every_registered_space_and_algorithm_is_covered() -> None:
    from archsmith.hub import list_spaces

    assert {case.name for case in CASES} == set(list_spaces())
    assert {p.values[1] for p in PAIRS} == set(ONESHOT_STRATEGIES)

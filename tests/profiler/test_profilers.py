"""Both profilers equal freezing and counting, on every primitive and hub space."""

from __future__ import annotations

from typing import Any

import pytest
import torch

import archsmith.nn as nn
from archsmith.hub import get_space, list_spaces
from archsmith.profiler import FlopsProfiler, NumParamsProfiler, ProfilerError, frozen_macs
from archsmith.space import SampleError

from ._spaces import AllPrimitives, GlueSpace, JointSized, NB101Space, TokenSpace, WidestLayer


def frozen_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def check_exact(space: nn.ModelSpace, example: torch.Tensor, seeds: range, params: bool = True) -> None:
    flops = FlopsProfiler(space, example, check_samples=0)
    counter = NumParamsProfiler(space, check_samples=0) if params else None
    for seed in seeds:
        sample = space.random(seed)
        model = space.freeze(sample)
        assert flops.profile(sample) == frozen_macs(model, example), sample
        if counter is not None:
            assert counter.profile(sample) == frozen_params(model), sample


@pytest.mark.parametrize("space_class", [AllPrimitives, NB101Space], ids=lambda c: c.__name__)
def test_every_primitive_exact(space_class: Any) -> None:
    check_exact(space_class(), torch.zeros(2, 3, 8, 8), range(12))


@pytest.mark.parametrize("name", list_spaces())
def test_hub_space_exact(name: str) -> None:
    """Exact on samples the profilers never saw, after others filled their tables."""
    cls = get_space(name)
    space = cls(**cls.reduced_kwargs_for(32))
    example = torch.zeros(2, 3, 32, 32)
    flops, params = FlopsProfiler(space, example, check_samples=0), NumParamsProfiler(space, check_samples=0)
    for seed in range(2):
        warm = space.random(seed)
        flops.profile(warm), params.profile(warm)
    for seed in (1000, 1001):
        sample = space.random(seed)
        model = space.freeze(sample)
        assert flops.profile(sample) == frozen_macs(model, example), sample
        assert params.profile(sample) == frozen_params(model), sample


def test_autoformer_params_exact_on_many_samples() -> None:
    """Its class token and position embedding, built at the widest width in the
    space, are counted at the chosen width as in the frozen model."""
    cls = get_space("autoformer")
    space = cls(**cls.reduced_kwargs_for(32))
    params = NumParamsProfiler(space)
    values = set()
    for seed in range(12):
        sample = space.random(seed)
        values.add(params.profile(sample))
        assert params.profile(sample) == frozen_params(space.freeze(sample)), sample
    assert len(values) > 4


def test_parameter_sized_by_a_decision_outside_the_searching_form() -> None:
    space = TokenSpace()
    params = NumParamsProfiler(space)
    for width in (4, 6, 8):
        for other in (2, 5):
            sample = {"width": width, "other": other}
            assert params.profile(sample) == frozen_params(space.freeze(sample)), sample


def test_parameter_sized_by_decisions_together_refused() -> None:
    with pytest.raises(ProfilerError, match=r"JointSized's frozen model differs.*freeze"):
        NumParamsProfiler(JointSized(), check_samples=8)


def test_searching_form_that_fails_where_the_frozen_model_runs_refused() -> None:
    with pytest.raises(ProfilerError, match=r"WidestLayer's frozen model differs.*searching form fails.*freeze"):
        FlopsProfiler(WidestLayer(), torch.zeros(1, 3))


def test_glue_memo_exact_when_reused() -> None:
    space, example = GlueSpace(), torch.zeros(2, 3, 8, 8)
    flops = FlopsProfiler(space, example)
    for _ in range(3):  # hits after the first round; the in-place reshape must not leak into them
        for width in (4, 8):
            sample = {"width": width}
            assert flops.profile(sample) == frozen_macs(space.freeze(sample), example), sample


def test_memoised_values_match_fresh_profilers() -> None:
    space, example = AllPrimitives(), torch.zeros(2, 3, 8, 8)
    warm_flops, warm_params = FlopsProfiler(space, example), NumParamsProfiler(space)
    samples = [space.random(seed) for seed in range(20)]
    first = [(warm_flops.profile(s), warm_params.profile(s)) for s in samples]
    again = [(warm_flops.profile(s), warm_params.profile(s)) for s in reversed(samples)][::-1]
    fresh_flops, fresh_params = FlopsProfiler(space, example), NumParamsProfiler(space)
    fresh = [(fresh_flops.profile(s), fresh_params.profile(s)) for s in samples]
    assert first == again == fresh
    assert len({f for f, _ in first}) > 1 and len({p for _, p in first}) > 1  # the samples differ in cost


def test_nni_one_element_input_index_accepted() -> None:
    space = AllPrimitives()
    sample = space.random(3)
    nni_style = {**sample, "pick": [sample["pick"]]}
    example = torch.zeros(2, 3, 8, 8)
    assert FlopsProfiler(space, example).profile(nni_style) == FlopsProfiler(space, example).profile(sample)
    assert NumParamsProfiler(space).profile(nni_style) == NumParamsProfiler(space).profile(sample)


def test_bad_sample_raises_the_space_validation_error() -> None:
    space = AllPrimitives()
    bad = {**space.random(0), "width": 5}
    for profiler in (NumParamsProfiler(space), FlopsProfiler(space, torch.zeros(2, 3, 8, 8))):
        with pytest.raises(SampleError, match="width"):
            profiler.profile(bad)


class Opaque(nn.MutableModule):
    """A primitive no profiler knows."""

    def own_leaves(self) -> list[Any]:
        return [nn.ValueChoice([1, 2], label="opaque")]


class WithOpaque(nn.ModelSpace):
    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(2, 2)
        self.opaque = Opaque()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.opaque(self.fc(x))


def test_unknown_primitive_named() -> None:
    with pytest.raises(ProfilerError, match=r"Opaque\(opaque\): .*does not know what the frozen form of Opaque"):
        NumParamsProfiler(WithOpaque())
    with pytest.raises(
        ProfilerError, match=r"Opaque\(opaque\): FlopsProfiler does not know what the frozen form of Opaque"
    ):
        FlopsProfiler(WithOpaque(), torch.zeros(1, 2))


def test_frozen_model_and_non_space_refused() -> None:
    space = AllPrimitives()
    with pytest.raises(ProfilerError, match="frozen model"):
        NumParamsProfiler(space.freeze(space.random(0)))  # type: ignore[arg-type]
    with pytest.raises(ProfilerError, match="model space"):
        FlopsProfiler(torch.nn.Linear(2, 2), torch.zeros(1, 2))  # type: ignore[arg-type]
    with pytest.raises(ProfilerError, match="example_input must be a tensor"):
        FlopsProfiler(space, [torch.zeros(2, 3, 8, 8)])
    with pytest.raises(ProfilerError, match="check_samples"):
        NumParamsProfiler(space, check_samples=-1)

"""``LayerChoice``: one module out of a list (sample: index) or dict (sample: key)."""

from __future__ import annotations

import functools
import random
from collections import Counter
from typing import Any

import pytest
import torch

import archsmith
import archsmith.nn as nn
from archsmith.space import SpaceError
from archsmith.strategy import Random, RegularizedEvolution

from ._helpers import assert_plain, count_params

calls: Counter[str] = Counter()


def counted(name: str, in_features: int = 4, out_features: int = 4) -> nn.Module:
    calls[name] += 1
    return nn.Linear(in_features, out_features)


class ListSpace(nn.ModelSpace):
    def __init__(self) -> None:
        super().__init__()
        self.op = nn.LayerChoice(
            [
                functools.partial(counted, "a", 4, 2),
                functools.partial(counted, "b", 4, 3),
                functools.partial(counted, "c", 4, 5),
            ],
            label="op",
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class DictSpace(nn.ModelSpace):
    def __init__(self) -> None:
        super().__init__()
        self.op = nn.LayerChoice(
            {"relu": nn.ReLU(), "tanh": nn.Tanh, "wide": lambda: nn.Linear(3, 6), "id": nn.Identity()},
            label="act",
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


@pytest.fixture(autouse=True)
def _reset_calls() -> None:
    calls.clear()


def test_list_candidates_are_chosen_by_index() -> None:
    space = ListSpace()
    leaf = space.search_space["op"]
    assert leaf.values == [0, 1, 2]
    assert space.size() == 3
    assert isinstance(space.op, nn.LayerChoice)
    assert space.op.names == [0, 1, 2]
    assert len(space.op) == 3
    assert [c.out_features for c in space.op.candidates] == [2, 3, 5]
    assert space.op[1].out_features == 3
    for index, width in enumerate([2, 3, 5]):
        model = space.freeze({"op": index})
        assert type(model.op) is torch.nn.Linear
        assert model(torch.zeros(2, 4)).shape == (2, width)
        assert count_params(model) == 4 * width + width
        assert_plain(model)


def test_dict_candidates_are_chosen_by_key() -> None:
    space = DictSpace()
    assert space.search_space["act"].values == ["relu", "tanh", "wide", "id"]
    assert space.default() == {"act": "relu"}
    expected = {"relu": torch.nn.ReLU, "tanh": torch.nn.Tanh, "wide": torch.nn.Linear, "id": torch.nn.Identity}
    for key, cls in expected.items():
        model = space.freeze({"act": key})
        assert type(model.op) is cls
        assert_plain(model)
    x = torch.tensor([[-1.0, 0.5, 2.0]])
    assert torch.equal(space.freeze({"act": "relu"})(x), torch.relu(x))
    assert torch.equal(space.freeze({"act": "id"})(x), x)
    assert space.freeze({"act": "wide"})(x).shape == (1, 6)


@pytest.mark.parametrize("key", ["double", "train", "forward", "label", "names", "choice", "conv.3x3"])
def test_any_string_key_names_a_candidate(key: str) -> None:
    # Keys are sample values chosen by the user; they must not clash with the
    # attributes of torch.nn.Module / LayerChoice or with torch's module-name rules.
    class Keyed(nn.ModelSpace):
        def __init__(self) -> None:
            super().__init__()
            self.op = nn.LayerChoice({key: nn.Tanh(), "other": nn.ReLU()}, label="keyed")

    space = Keyed()
    assert space.search_space["keyed"].values == [key, "other"]
    assert type(space.op[key]) is torch.nn.Tanh
    assert type(space.freeze({"keyed": key}).op) is torch.nn.Tanh
    assert type(space.freeze({"keyed": "other"}).op) is torch.nn.ReLU


def test_dict_sample_by_index_and_list_sample_by_key_are_rejected() -> None:
    with pytest.raises(archsmith.SampleError, match="'act'"):
        DictSpace().freeze({"act": 0})
    with pytest.raises(archsmith.SampleError, match="'op'"):
        ListSpace().freeze({"op": "a"})
    with pytest.raises(archsmith.SampleError, match=r"'op'.*out of range"):
        ListSpace().freeze({"op": 3})


def test_factories_are_called_once_in_the_space_and_only_the_chosen_when_frozen() -> None:
    space = ListSpace()
    assert calls == {"a": 1, "b": 1, "c": 1}
    calls.clear()
    space.freeze({"op": 2})
    assert calls == {"c": 1}
    calls.clear()
    with archsmith.fixed_arch({"op": 0}):
        ListSpace()
    assert calls == {"a": 1}


def test_standalone_layer_choice_in_fixed_arch_is_the_candidate() -> None:
    with archsmith.fixed_arch({"solo": "b"}):
        chosen = nn.LayerChoice({"a": lambda: counted("a"), "b": lambda: counted("b")}, label="solo")
    assert type(chosen) is torch.nn.Linear
    assert calls == {"b": 1}


def test_candidate_choices_are_decisions_of_the_space() -> None:
    class Inner(nn.ModelSpace):
        def __init__(self) -> None:
            super().__init__()
            self.op = nn.LayerChoice(
                [
                    nn.Linear(4, nn.choice("lin_w", [2, 3])),
                    lambda: nn.Sequential(nn.Linear(4, nn.choice("seq_w", [5, 6])), nn.ReLU()),
                ],
                label="op",
            )

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.op(x)

    space = Inner()
    assert list(space.search_space) == ["lin_w", "op", "seq_w"]
    assert space.size() == 2 + 2  # lin_w is used by candidate 0 only, seq_w by candidate 1
    assert space.search_space.active_labels({"lin_w": 2, "op": 1, "seq_w": 5}) == {"op", "seq_w"}
    model = space.freeze({"lin_w": 3, "op": 1, "seq_w": 6})
    assert type(model.op) is torch.nn.Sequential
    assert model(torch.zeros(1, 4)).shape == (1, 6)
    model = space.freeze({"lin_w": 3, "op": 0, "seq_w": 6})
    assert model(torch.zeros(1, 4)).shape == (1, 3)


def test_nested_layer_choices() -> None:
    class Nested(nn.ModelSpace):
        def __init__(self) -> None:
            super().__init__()
            self.op = nn.LayerChoice(
                [lambda: nn.LayerChoice([nn.ReLU(), nn.Tanh()], label="inner"), nn.Identity()], label="outer"
            )

    space = Nested()
    assert list(space.search_space) == ["outer", "inner"]
    assert type(space.freeze({"outer": 0, "inner": 1}).op) is torch.nn.Tanh
    assert type(space.freeze({"outer": 1, "inner": 1}).op) is torch.nn.Identity


def test_layer_choice_inside_plain_containers_and_modules() -> None:
    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.seq = nn.Sequential(nn.Linear(3, 3), nn.LayerChoice([nn.ReLU(), nn.Sigmoid()], label="blk_act"))
            self.items = nn.ModuleList([nn.LayerChoice([nn.Identity(), nn.Linear(3, 3)], label="blk_item")])

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.items[0](self.seq(x))

    class Holder(nn.ModelSpace):
        def __init__(self) -> None:
            super().__init__()
            self.block = Block()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.block(x)

    space = Holder()
    assert list(space.search_space) == ["blk_act", "blk_item"]
    model = space.freeze({"blk_act": 1, "blk_item": 1})
    assert type(model.block) is Block
    assert type(model.block.seq[1]) is torch.nn.Sigmoid
    assert type(model.block.items[0]) is torch.nn.Linear
    out = model(torch.zeros(2, 3))
    assert out.shape == (2, 3)
    assert_plain(model)


def test_unfrozen_layer_choice_cannot_run() -> None:
    op = nn.LayerChoice([nn.Identity(), nn.ReLU()], label="unfrozen_op")
    with pytest.raises(archsmith.NotFrozenError, match="unfrozen_op"):
        op(torch.zeros(1))
    assert "unfrozen_op" in op.describe()


def test_single_candidate() -> None:
    class One(nn.ModelSpace):
        def __init__(self) -> None:
            super().__init__()
            self.op = nn.LayerChoice([nn.ReLU()], label="one")

    space = One()
    assert space.size() == 1
    assert type(space.freeze({"one": 0}).op) is torch.nn.ReLU


# prior= ----------------------------------------------------------------------------------------
class _Priors(nn.ModelSpace):
    def __init__(self) -> None:
        super().__init__()
        self.op = nn.LayerChoice([nn.Identity(), nn.ReLU(), nn.Tanh()], label="p_op", prior=[0.1, 0.6, 0.3])
        self.pick = nn.InputChoice(3, 1, label="p_in", prior=[0.7, 0.2, 0.1])
        self.fc = nn.Linear(4, nn.ValueChoice([2, 3], label="p_w", prior=[0.8, 0.2]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.op(x)
        return self.fc(self.pick([y, y * 2, y * 3]))


_PRIORS = {"p_op": ([0, 1, 2], [0.1, 0.6, 0.3]), "p_in": ([0, 1, 2], [0.7, 0.2, 0.1]), "p_w": ([2, 3], [0.8, 0.2])}


def _assert_follows_priors(samples: list[dict[str, Any]]) -> None:
    """Each label's frequencies within 1.5% of its prior (20,000 draws: > 4 sigma)."""
    for label, (values, prior) in _PRIORS.items():
        counts = Counter(s[label] for s in samples)
        for value, p in zip(values, prior):
            assert abs(counts[value] / len(samples) - p) < 0.015, (label, value, counts[value] / len(samples), p)


def test_priors_of_the_primitives_drive_random_samples() -> None:
    space = _Priors()
    rng = random.Random(0)
    _assert_follows_priors([space.search_space.random(rng=rng) for _ in range(20_000)])
    model = space.freeze(space.random(seed=3))  # a prior changes nothing in the frozen model
    assert model(torch.zeros(2, 4)).shape[0] == 2


@pytest.mark.parametrize("make", [lambda: Random(dedup=False), lambda: RegularizedEvolution(20_000, dedup=False)])
def test_sampling_strategies_draw_by_the_priors(make: Any) -> None:
    """Random, and RegularizedEvolution's initial population, sample the space by its priors."""
    strategy = make()
    strategy.attach(_Priors().search_space, seed=0)
    _assert_follows_priors([strategy.ask() for _ in range(20_000)])


def test_bad_priors_on_primitives_name_the_label() -> None:
    with pytest.raises(SpaceError, match=r"choice 'lc_prior': prior has 1 probabilities for 2 candidates"):
        nn.LayerChoice([nn.Identity(), nn.ReLU()], label="lc_prior", prior=[1.0])
    with pytest.raises(SpaceError, match=r"choice 'ic_prior': prior .* sums to 0.5"):
        nn.InputChoice(2, 1, label="ic_prior", prior=[0.25, 0.25])
    with pytest.raises(SpaceError, match=r"choice 'vc_prior': prior .* negative"):
        nn.ValueChoice([1, 2], label="vc_prior", prior=[1.5, -0.5])
    with pytest.raises(SpaceError, match=r"InputChoice 'ic_multi': prior= needs n_chosen=1, got n_chosen=2"):
        nn.InputChoice(3, 2, label="ic_multi", prior=[0.2, 0.3, 0.5])


def test_a_shared_label_with_another_prior_is_a_conflict() -> None:
    class TwoPriors(nn.ModelSpace):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.LayerChoice([nn.Identity(), nn.ReLU()], label="two_priors", prior=[0.9, 0.1])
            self.b = nn.LayerChoice([nn.Identity(), nn.ReLU()], label="two_priors", prior=[0.1, 0.9])

    with pytest.raises(
        archsmith.LabelConflictError, match=r"'two_priors' .*prior=\[0.9, 0.1\].*same candidates \(and prior\)"
    ):
        TwoPriors()

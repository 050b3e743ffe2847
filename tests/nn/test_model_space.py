"""``ModelSpace``, ``@model_wrapper`` and ``fixed_arch``: the space API of a model."""

from __future__ import annotations

import copy
import json
import math
import pickle

import pytest
import torch

import archsmith
import archsmith.nn as nn
from archsmith.space import Categorical, Space

from ._helpers import assert_plain, count_params


class Net(nn.ModelSpace):
    def __init__(self, in_features: int = 4, num_classes: int = 3, *, hidden: int = 8) -> None:
        super().__init__()
        width = nn.ValueChoice([4, 8], label="width")
        self.stem = nn.Linear(in_features, width)
        self.body = nn.LayerChoice({"fc": nn.Linear(width, width), "id": nn.Identity()}, label="op")
        self.drop = nn.Dropout(nn.choice("drop", [0.0, 0.5]))
        self.head = nn.Linear(width, num_classes)
        self.hidden = hidden

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.drop(torch.relu(self.body(self.stem(x)))))


@archsmith.model_wrapper
class WrappedNet(nn.Module):
    """An NNI-style model space: a plain ``nn.Module`` class, decorated."""

    def __init__(self, in_features: int, out_features: int = 2) -> None:
        super().__init__()
        self.fc = nn.Linear(in_features, nn.choice("hidden", [3, 6]))
        self.act = nn.LayerChoice([nn.ReLU(), nn.Tanh()], label="act")
        self.out = nn.Linear(nn.choice("hidden", [3, 6]), out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.act(self.fc(x)))


class Base(nn.ModelSpace):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.fc = nn.Linear(2, nn.choice("base", [width, width * 2]))


class Derived(Base):
    def __init__(self, width: int, extra: int) -> None:
        super().__init__(width)
        self.extra = nn.Linear(2, nn.choice("derived", [extra, extra + 1]))


def test_search_space_lists_every_decision_in_order() -> None:
    space = Net()
    assert isinstance(space.search_space, Space)
    assert list(space.search_space) == ["width", "op", "drop"]
    assert space.search_space["width"].values == [4, 8]
    assert space.search_space["op"].values == ["fc", "id"]
    assert space.search_space["drop"].values == [0.0, 0.5]
    assert space.size() == 8
    assert not space.is_frozen


def test_init_arguments_are_recorded() -> None:
    space = Net(5, num_classes=7, hidden=2)
    assert space.init_arguments == ((5,), {"num_classes": 7, "hidden": 2})
    args, kwargs = space.init_arguments
    rebuilt = type(space)(*args, **kwargs)
    assert list(rebuilt.search_space) == list(space.search_space)
    assert rebuilt.stem.in_features == 5 and rebuilt.head.out_features == 7


def test_init_arguments_with_choices_are_part_of_the_space() -> None:
    classes = nn.choice("classes", [2, 3])
    space = Net(num_classes=classes)
    assert space.init_arguments[1]["num_classes"] is classes
    assert list(space.search_space) == ["width", "op", "drop", "classes"]
    model = space.freeze({"width": 4, "op": "id", "drop": 0.0, "classes": 3})
    assert model.head.out_features == 3
    assert model.init_arguments == ((), {"num_classes": 3})
    assert model(torch.zeros(2, 4)).shape == (2, 3)


def test_random_is_seeded_and_valid() -> None:
    space = Net()
    samples = [space.random(seed=s) for s in range(30)]
    assert space.random(seed=3) == samples[3]
    for sample in samples:
        assert set(sample) == {"width", "op", "drop"}
        assert space.validate(sample) == sample
    assert len({json.dumps(s, sort_keys=True) for s in samples}) > 3


def test_grid_enumerates_every_sample_once() -> None:
    space = Net()
    grid = list(space.grid())
    assert len(grid) == space.size() == 8
    assert len({json.dumps(s, sort_keys=True) for s in grid}) == 8
    assert {"width": 8, "op": "id", "drop": 0.5} in grid


def test_default_takes_each_first_candidate() -> None:
    assert Net().default() == {"width": 4, "op": "fc", "drop": 0.0}


def test_validate_returns_the_canonical_sample() -> None:
    space = Net()
    assert space.validate({"width": 8, "op": "id", "drop": 0.5}) == {"width": 8, "op": "id", "drop": 0.5}
    with pytest.raises(archsmith.SampleError, match="'width'"):
        space.validate({"width": 5, "op": "id", "drop": 0.5})


def test_freeze_builds_the_chosen_model() -> None:
    space = Net()
    model = space.freeze({"width": 8, "op": "fc", "drop": 0.5})
    assert type(model) is Net
    assert model.is_frozen
    assert len(model.search_space) == 0
    assert model.stem.out_features == 8
    assert type(model.body) is torch.nn.Linear and model.body.in_features == 8
    assert model.drop.p == 0.5
    assert model.hidden == 8
    assert model(torch.zeros(3, 4)).shape == (3, 3)
    assert_plain(model)
    # 4*8+8 + 8*8+8 + 8*3+3
    assert count_params(model) == 40 + 72 + 27


def test_freeze_leaves_the_space_untouched() -> None:
    space = Net()
    space.freeze({"width": 8, "op": "fc", "drop": 0.5})
    assert not space.is_frozen
    assert space.size() == 8
    assert isinstance(space.body, nn.LayerChoice)
    assert isinstance(space.stem.out_features, Categorical)


def test_fixed_arch_builds_the_same_model_as_freeze() -> None:
    sample = {"width": 4, "op": "id", "drop": 0.5}
    with archsmith.fixed_arch(sample) as arch:
        assert arch == sample
        model = Net(num_classes=2)
    frozen = Net(num_classes=2).freeze(sample)
    assert repr(model) == repr(frozen)
    assert model.is_frozen
    assert model(torch.zeros(1, 4)).shape == (1, 2)
    assert_plain(model)


def test_fixed_arch_reads_a_json_file(tmp_path) -> None:
    path = tmp_path / "arch.json"
    archsmith.save_arch({"width": 8, "op": "fc", "drop": 0.0}, path)
    with archsmith.fixed_arch(path):
        model = Net()
    with archsmith.fixed_arch(str(path)):
        again = Net()
    assert model.stem.out_features == 8 == again.stem.out_features
    assert type(model.body) is torch.nn.Linear


def test_fixed_arch_rejects_other_arguments() -> None:
    with pytest.raises(archsmith.SampleError, match="list"), archsmith.fixed_arch([1, 2]):  # type: ignore[arg-type]
        pass


def test_freezing_a_frozen_model_is_an_error() -> None:
    model = Net().freeze({"width": 8, "op": "fc", "drop": 0.5})
    with pytest.raises(archsmith.SpaceError, match="already a frozen model"):
        model.freeze({"width": 8, "op": "fc", "drop": 0.5})


def test_model_wrapper_makes_a_module_class_a_space() -> None:
    assert issubclass(WrappedNet, nn.ModelSpace)
    assert issubclass(WrappedNet, torch.nn.Module)
    assert WrappedNet.__name__ == "WrappedNet"
    assert WrappedNet.__doc__ and "NNI-style" in WrappedNet.__doc__
    space = WrappedNet(5)
    assert space.init_arguments == ((5,), {})
    assert list(space.search_space) == ["hidden", "act"]
    assert space.size() == 4
    assert len(list(space.grid())) == 4
    model = space.freeze({"hidden": 6, "act": 1})
    assert type(model) is WrappedNet
    assert type(model.act) is torch.nn.Tanh
    assert (model.fc.out_features, model.out.in_features) == (6, 6)
    assert model(torch.zeros(2, 5)).shape == (2, 2)
    assert count_params(model) == 5 * 6 + 6 + 6 * 2 + 2
    assert_plain(model)


def test_model_wrapper_twice_and_on_a_space_is_harmless() -> None:
    assert archsmith.model_wrapper(Net) is Net
    assert archsmith.model_wrapper(WrappedNet) is WrappedNet


def test_model_wrapper_rejects_non_modules() -> None:
    with pytest.raises(archsmith.SpaceError, match="model_wrapper"):
        archsmith.model_wrapper(int)


def test_inherited_space_records_the_outermost_arguments() -> None:
    space = Derived(3, extra=5)
    assert space.init_arguments == ((3,), {"extra": 5})
    assert list(space.search_space) == ["base", "derived"]
    model = space.freeze({"base": 6, "derived": 6})
    assert (model.fc.out_features, model.extra.out_features) == (6, 6)
    assert type(model) is Derived


def test_nested_spaces_share_one_search_space() -> None:
    class Inner(nn.ModelSpace):
        def __init__(self, width: int) -> None:
            super().__init__()
            self.fc = nn.Linear(width, nn.choice("inner", [1, 2]))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(x)

    class Outer(nn.ModelSpace):
        def __init__(self) -> None:
            super().__init__()
            self.a = Inner(3)
            self.op = nn.LayerChoice([nn.Identity(), nn.ReLU()], label="outer_op")

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.op(self.a(x))

    space = Outer()
    assert list(space.search_space) == ["inner", "outer_op"]
    assert list(space.a.search_space) == ["inner"]
    model = space.freeze({"inner": 2, "outer_op": 1})
    assert type(model.a) is Inner and model.a.is_frozen
    assert model(torch.zeros(1, 3)).shape == (1, 2)
    assert_plain(model)


def test_a_space_without_choices() -> None:
    class Plain(nn.ModelSpace):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(2, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(x)

    space = Plain()
    assert len(space.search_space) == 0
    assert space.size() == 1
    assert list(space.grid()) == [{}]
    assert space.random(seed=0) == {}
    assert type(space.fc) is torch.nn.Linear
    assert space(torch.zeros(1, 2)).shape == (1, 2)
    assert space.freeze({})(torch.zeros(1, 2)).shape == (1, 2)


def test_continuous_space_has_infinite_size_and_a_grid_with_granularity() -> None:
    class Continuous(nn.ModelSpace):
        def __init__(self) -> None:
            super().__init__()
            self.drop = nn.Dropout(nn.uniform("p", 0.0, 0.5))

    space = Continuous()
    assert space.size() == math.inf
    assert [s["p"] for s in space.grid(granularity=1)] == [0.25]
    model = space.freeze({"p": 0.125})
    assert type(model.drop) is torch.nn.Dropout and model.drop.p == 0.125
    with pytest.raises(archsmith.SampleError, match="'p'"):
        space.freeze({"p": 0.75})


def test_calling_an_unfrozen_space_raises() -> None:
    space = Net()
    with pytest.raises(archsmith.NotFrozenError, match="freeze"):
        space(torch.zeros(1, 4))
    with pytest.raises(archsmith.NotFrozenError):
        WrappedNet(3)(torch.zeros(1, 3))


def test_an_unfrozen_space_survives_pickle_and_deepcopy() -> None:
    space = Net(num_classes=4)
    for again in (pickle.loads(pickle.dumps(space)), copy.deepcopy(space)):
        assert type(again) is Net
        assert list(again.search_space) == list(space.search_space)
        assert again.init_arguments == ((), {"num_classes": 4})
        model = again.freeze({"width": 8, "op": "fc", "drop": 0.0})
        assert model(torch.zeros(2, 4)).shape == (2, 4)
        assert_plain(model)


def test_every_public_name_resolves() -> None:
    for name in nn.__all__:
        assert getattr(nn, name) is not None, name
    for name in archsmith.__all__:
        assert getattr(archsmith, name) is not None, name


def test_building_pauses_garbage_collection_and_always_restores_it() -> None:
    import gc

    seen: list[bool] = []

    class Inner(nn.ModelSpace):
        def __init__(self) -> None:
            super().__init__()
            seen.append(gc.isenabled())
            self.fc = nn.Linear(2, nn.choice("w", [2, 4]))

    class Outer(nn.ModelSpace):
        def __init__(self, fail: bool = False) -> None:
            super().__init__()
            seen.append(gc.isenabled())
            self.inner = Inner()
            if fail:
                raise RuntimeError("broken space")

        def _construct(self) -> None:  # a method of the user's own: must not be taken for the metaclass's
            raise AssertionError("never called")

    assert gc.isenabled()
    space = Outer()
    space.freeze({"w": 4})
    assert seen == [False, False, False, False] and gc.isenabled()
    with pytest.raises(RuntimeError, match="broken space"):
        Outer(fail=True)
    assert gc.isenabled()
    gc.disable()
    try:
        Outer()  # a caller who turned collection off keeps it off
        assert not gc.isenabled()
    finally:
        gc.enable()

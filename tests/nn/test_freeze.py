"""``freeze``: the plain model a sample describes, built by re-running ``__init__``."""

from __future__ import annotations

import copy
import pickle
from collections import Counter
from typing import Any

import pytest
import torch

import archsmith
import archsmith.nn as nn

from ._helpers import assert_plain, count_params, search_types_left

built: Counter[str] = Counter()


def factory(name: str, make):
    def build(*args: Any) -> nn.Module:
        built[name] += 1
        return make(*args)

    return build


@pytest.fixture(autouse=True)
def _reset() -> None:
    built.clear()


class Block(nn.Module):
    """A plain module (not a ModelSpace) with a choice of its own inside."""

    def __init__(self, width: Any) -> None:
        super().__init__()
        hidden = nn.choice("hidden", [2, 6])
        self.conv1 = nn.Conv2d(width, hidden, 1)
        self.conv2 = nn.Conv2d(hidden, width, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(torch.relu(self.conv1(x)))


class ConvNet(nn.ModelSpace):
    def __init__(self, in_channels: int = 3, num_classes: int = 5) -> None:
        super().__init__()
        width = nn.choice("width", [4, 8])
        k = nn.choice("k", [1, 3])
        self.stem = nn.Conv2d(in_channels, width, k, padding=k // 2)
        self.bn = nn.BatchNorm2d(width)
        self.block = Block(width)
        self.body = nn.Repeat(
            lambda i: nn.LayerChoice(
                {
                    "conv": factory("conv", lambda: nn.Conv2d(width, width, 3, padding=1)),
                    "pool": factory("pool", lambda: nn.MaxPool2d(3, 1, 1)),
                    "id": nn.Identity,
                },
                label=f"op{i}",
            ),
            (0, 2),
            label="depth",
        )
        self.skip = nn.InputChoice(2, 1, label="skip")
        self.expand = nn.Conv2d(width, width * 2, 1)
        self.drop = nn.Dropout(nn.choice("p", [0.0, 0.5]))
        self.head = nn.Linear(width * 2, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn(self.stem(x)))
        x = self.skip([x, self.body(self.block(x))])
        return self.head(self.drop(self.expand(x).mean((2, 3))))


class HandBlock(torch.nn.Module):
    def __init__(self, width: int, hidden: int) -> None:
        super().__init__()
        self.conv1 = torch.nn.Conv2d(width, hidden, 1)
        self.conv2 = torch.nn.Conv2d(hidden, width, 1)


class HandWritten(torch.nn.Module):
    """``ConvNet`` for one sample, written by hand with plain torch."""

    def __init__(self, s: dict[str, Any], in_channels: int = 3, num_classes: int = 5) -> None:
        super().__init__()
        w = s["width"]
        self.stem = torch.nn.Conv2d(in_channels, w, s["k"], padding=s["k"] // 2)
        self.bn = torch.nn.BatchNorm2d(w)
        self.block = HandBlock(w, s["hidden"])
        ops = {
            "conv": lambda: torch.nn.Conv2d(w, w, 3, padding=1),
            "pool": lambda: torch.nn.MaxPool2d(3, 1, 1),
            "id": torch.nn.Identity,
        }
        self.body = torch.nn.Sequential(*(ops[s[f"op{i}"]]() for i in range(s["depth"])))
        self.expand = torch.nn.Conv2d(w, 2 * w, 1)
        self.drop = torch.nn.Dropout(s["p"])
        self.head = torch.nn.Linear(2 * w, num_classes)


def test_conv_net_space() -> None:
    space = ConvNet()
    assert list(space.search_space) == ["width", "k", "hidden", "depth", "op0", "op1", "skip", "p"]
    # depth 0, 1 or 2 uses no op, op0, or op0 and op1: 1 + 3 + 3 * 3 bodies
    assert space.size() == 2 * 2 * 2 * (1 + 3 + 3 * 3) * 2 * 2


def test_frozen_models_have_the_right_shapes_over_many_samples() -> None:
    space = ConvNet(in_channels=2, num_classes=7)
    x = torch.randn(2, 2, 4, 4)
    for seed in range(30):
        sample = space.random(seed=seed)
        model = space.freeze(sample)
        assert model(x).shape == (2, 7)
        assert model.stem.out_channels == sample["width"]
        assert model.stem.kernel_size == (sample["k"], sample["k"])
        assert model.block.conv1.out_channels == sample["hidden"]
        assert len(model.body) == sample["depth"]
        assert model.skip.chosen == [sample["skip"]]
        assert model.head.in_features == 2 * sample["width"]
        assert_plain(model)


def test_frozen_model_equals_the_hand_written_one() -> None:
    space = ConvNet()
    for seed in range(20):
        sample = space.random(seed=seed)
        model, hand = space.freeze(sample), HandWritten(sample)
        assert count_params(model) == count_params(hand)
        assert {k: v.shape for k, v in model.state_dict().items()} == {k: v.shape for k, v in hand.state_dict().items()}
        for name, module in list(hand.named_modules())[1:]:
            assert type(model.get_submodule(name)).__name__ == type(module).__name__.replace("Hand", "")


def test_nested_plain_module_stays_its_class() -> None:
    model = ConvNet().freeze(ConvNet().default())
    assert type(model.block) is Block
    assert type(model.block.conv1) is torch.nn.Conv2d


def test_unchosen_factories_are_never_called() -> None:
    space = ConvNet()
    assert built == {"conv": 2, "pool": 2}  # the space builds every candidate once
    built.clear()
    sample = {"width": 4, "k": 3, "hidden": 2, "depth": 2, "op0": "pool", "op1": "id", "skip": 1, "p": 0.0}
    model = space.freeze(sample)
    assert built == {"pool": 1}
    built.clear()
    space.freeze({**sample, "depth": 1, "op1": "conv"})  # op1 is past the depth: not built
    assert built == {"pool": 1}
    assert [type(m) for m in model.body] == [torch.nn.MaxPool2d, torch.nn.Identity]


def test_frozen_model_trains() -> None:
    model = ConvNet().freeze(
        {"width": 4, "k": 3, "hidden": 2, "depth": 1, "op0": "conv", "op1": "id", "skip": 1, "p": 0.5}
    )
    model.train()
    loss = model(torch.randn(3, 3, 4, 4)).square().mean()
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())
    assert all(p.device.type == "cpu" for p in model.parameters())


class ExprNet(nn.ModelSpace):
    def __init__(self) -> None:
        super().__init__()
        w = nn.choice("w", [2, 4, 6])
        k = nn.choice("k", [3, 5])
        self.a = nn.Linear(3, w * 2)
        self.b = nn.Linear(w * 2, w // 2 + 1)
        self.c = nn.Linear(w // 2 + 1, nn.ValueChoice.max(w, 3))
        self.conv = nn.Conv1d(1, 1, k, padding=nn.condition(k == 3, 1, 2))
        self.d = nn.Linear(nn.ValueChoice.max(w, 3), nn.switch_case(k, {3: 7, 5: 9}))
        self.e = nn.Linear(3, nn.to_int(nn.uniform("f", 1.0, 4.0)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.c(self.b(self.a(x)))
        x = self.conv(x.unsqueeze(1)).squeeze(1)
        return self.d(x)


def test_expressions_as_layer_arguments() -> None:
    space = ExprNet()
    assert list(space.search_space) == ["w", "k", "f"]
    for w in (2, 4, 6):
        for k in (3, 5):
            model = space.freeze({"w": w, "k": k, "f": 2.5})
            assert (model.a.out_features, model.b.in_features) == (2 * w, 2 * w)
            assert (model.b.out_features, model.c.in_features) == (w // 2 + 1, w // 2 + 1)
            assert model.c.out_features == max(w, 3)
            assert model.conv.padding == ((1,) if k == 3 else (2,))
            assert model.d.out_features == {3: 7, 5: 9}[k]
            assert model.e.out_features == 2
            assert model(torch.zeros(2, 3)).shape == (2, {3: 7, 5: 9}[k])
            assert_plain(model)


def test_tuple_candidates_from_json(tmp_path) -> None:
    class Kernel(nn.ModelSpace):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(1, 1, nn.choice("ks", [(1, 3), (3, 1)]))

    space = Kernel()
    path = tmp_path / "arch.json"
    archsmith.save_arch({"ks": (3, 1)}, path)
    with archsmith.fixed_arch(path):
        from_file = Kernel()
    assert from_file.conv.kernel_size == (3, 1)
    # a hand-written JSON sample has a list where the candidate is a tuple
    path.write_text('{"ks": [1, 3]}')
    assert space.freeze(archsmith.load_arch(path)).conv.kernel_size == (1, 3)
    with archsmith.fixed_arch(path):
        assert Kernel().conv.kernel_size == (1, 3)


# Module-level spaces for pickling ----------------------------------------------------


class Scale(nn.Module):
    def __init__(self, factor: float) -> None:
        super().__init__()
        self.factor = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.factor


def conv_op(c: int) -> nn.Module:
    return nn.Conv2d(c, c, 1)


def projection(c_in: int, c_out: int) -> nn.Module:
    return nn.Conv2d(c_in, c_out, 1)


class Everything(nn.ModelSpace):
    def __init__(self) -> None:
        super().__init__()
        self.nb101 = nn.NasBench101Cell(
            {"conv": conv_op, "id": lambda c: nn.Identity()}, 4, 4, projection, 4, label="nb1"
        )
        self.nb201 = nn.NasBench201Cell(
            {"conv": lambda i, o: nn.Conv2d(i, o, 3, padding=1), "shrink": lambda i, o: Scale(0.5)},
            4,
            4,
            3,
            label="nb2",
        )
        self.cell = nn.Cell([nn.Conv2d(4, 4, 1), Scale(2.0)], 2, 2, 1, "all", label="cell")
        self.act = nn.AutoActivation(label="act")
        self.pick = nn.InputChoice(2, None, "mean", label="pick")
        self.head = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.cell(self.nb201(self.nb101(x)))
        y = self.pick([y, torch.cat([x, x], 1)])
        return self.head(self.act(y).mean((2, 3)))


def _roundtrip_equal(model: torch.nn.Module, again: torch.nn.Module) -> None:
    assert type(again) is type(model)
    assert repr(again) == repr(model)
    x = torch.randn(2, 4, 3, 3)
    model.eval()
    again.eval()
    assert torch.equal(model(x), again(x))
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))
    assert_plain(again)


@pytest.mark.parametrize("seed", range(5))
def test_pickle_and_deepcopy_of_frozen_models(seed: int) -> None:
    space = Everything()
    model = space.freeze(space.random(seed=seed))
    assert model(torch.zeros(1, 4, 3, 3)).shape == (1, 3)
    assert_plain(model)
    _roundtrip_equal(model, pickle.loads(pickle.dumps(model)))
    _roundtrip_equal(model, copy.deepcopy(model))


def test_pickle_of_a_frozen_conv_net() -> None:
    model = ConvNet(in_channels=4).freeze(ConvNet().random(seed=3))
    _roundtrip_equal(model, pickle.loads(pickle.dumps(model)))


def test_search_types_left_finds_them() -> None:
    # the checker used everywhere above does see search types
    left = search_types_left(ConvNet())
    assert any("MutableModule" in line for line in left)
    assert any("Categorical" in line for line in left)

    class HoldsChoice(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.kept = {"deep": [nn.choice("kept_choice", [1, 2]) * 2]}

    assert search_types_left(HoldsChoice()) == ["<root>.kept['deep'][0]: Categorical([1, 2], label='kept_choice') * 2"]


def test_freeze_rejects_a_bad_sample_before_building_anything() -> None:
    space = ConvNet()
    built.clear()
    with pytest.raises(archsmith.SampleError):
        space.freeze({**space.default(), "op0": "nope"})
    assert built == {}

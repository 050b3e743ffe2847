"""``Repeat``: a block stacked a chosen number of times."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
import torch

import archsmith
import archsmith.nn as nn

from ._helpers import assert_plain, count_params

built: Counter[int] = Counter()


class AddConst(nn.Module):
    """Adds ``value``: a stack of them shows its depth and order in the output."""

    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * 10 + self.value


def add_block(i: int) -> nn.Module:
    built[i] += 1
    return AddConst(i + 1)


class FactoryStack(nn.ModelSpace):
    def __init__(self, depth) -> None:
        super().__init__()
        self.body = nn.Repeat(add_block, depth, label="depth")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


@pytest.fixture(autouse=True)
def _reset() -> None:
    built.clear()


@pytest.mark.parametrize("depth", [0, 1, 2, 3])
def test_every_depth_of_a_range_with_a_factory(depth: int) -> None:
    space = FactoryStack((0, 3))
    assert space.search_space["depth"].values == [0, 1, 2, 3]
    assert space.size() == 4
    assert built == {0: 1, 1: 1, 2: 1}  # the space builds the deepest stack once
    built.clear()
    model = space.freeze({"depth": depth})
    assert built == {i: 1 for i in range(depth)}  # only the blocks that are used
    assert type(model.body) is torch.nn.Sequential
    assert len(model.body) == depth
    assert [block.value for block in model.body] == [i + 1 for i in range(depth)]
    out = model(torch.zeros(1))
    expected = 0.0
    for i in range(depth):
        expected = expected * 10 + (i + 1)
    assert out.item() == expected  # 0, 1, 12, 123
    assert_plain(model)


def test_depth_zero_is_the_identity() -> None:
    model = FactoryStack((0, 2)).freeze({"depth": 0})
    x = torch.randn(2, 3)
    assert torch.equal(model(x), x)


def test_a_range_without_zero_never_allows_zero() -> None:
    space = FactoryStack((1, 3))
    assert space.search_space["depth"].values == [1, 2, 3]
    with pytest.raises(archsmith.SampleError, match="'depth'"):
        space.freeze({"depth": 0})


def test_a_fixed_depth_is_no_decision() -> None:
    space = FactoryStack(2)
    assert len(space.search_space) == 0
    assert isinstance(space.body, nn.Repeat)
    assert space(torch.zeros(1)).item() == 12.0  # a stack of plain blocks can run
    model = space.freeze({})
    assert len(model.body) == 2 and model(torch.zeros(1)).item() == 12.0


def test_a_depth_choice() -> None:
    space = FactoryStack(nn.choice("depth", [1, 3]))
    assert space.search_space["depth"].values == [1, 3]
    assert len(space.freeze({"depth": 3}).body) == 3
    assert len(space.freeze({"depth": 1}).body) == 1
    with pytest.raises(archsmith.SampleError, match="'depth'"):
        space.freeze({"depth": 2})


@pytest.mark.parametrize("depth", [0, 1, 2, 3])
def test_a_list_of_blocks_uses_the_first_depth_blocks(depth: int) -> None:
    class ListStack(nn.ModelSpace):
        def __init__(self) -> None:
            super().__init__()
            self.body = nn.Repeat([nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 4)], (0, 3), label="ls")

    space = ListStack()
    assert space.size() == 4
    model = space.freeze({"ls": depth})
    types = [torch.nn.Linear, torch.nn.ReLU, torch.nn.Linear][:depth]
    assert [type(b) for b in model.body] == types
    assert model.body(torch.zeros(1, 2)).shape == (1, [2, 3, 3, 4][depth])
    assert count_params(model) == [0, 9, 9, 25][depth]


def test_a_list_of_factories() -> None:
    class FactoryList(nn.ModelSpace):
        def __init__(self) -> None:
            super().__init__()
            self.body = nn.Repeat([lambda: add_block(0), lambda: add_block(1)], (1, 2), label="fl")

    space = FactoryList()
    built.clear()
    model = space.freeze({"fl": 1})
    assert built == {0: 1}
    assert len(model.body) == 1


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_a_module_block_is_copied_and_its_choices_are_shared(depth: int) -> None:
    class Shared(nn.ModelSpace):
        def __init__(self) -> None:
            super().__init__()
            hidden = nn.choice("hidden", [2, 5])
            block = nn.Sequential(nn.Linear(4, hidden), nn.ReLU(), nn.Linear(hidden, 4))
            self.body = nn.Repeat(block, (1, 3), label="shared_depth")

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.body(x)

    space = Shared()
    assert list(space.search_space) == ["hidden", "shared_depth"]
    assert space.size() == 2 * 3
    model = space.freeze({"hidden": 5, "shared_depth": depth})
    assert len(model.body) == depth
    assert all(block[0].out_features == 5 for block in model.body)
    # copies, not one module stacked: their weights are separate tensors
    weights = {id(block[0].weight) for block in model.body}
    assert len(weights) == depth
    assert count_params(model) == depth * (4 * 5 + 5 + 5 * 4 + 4)
    assert model(torch.zeros(3, 4)).shape == (3, 4)
    assert_plain(model)


def test_a_factory_makes_choices_per_block() -> None:
    class PerBlock(nn.ModelSpace):
        def __init__(self) -> None:
            super().__init__()
            self.body = nn.Repeat(
                lambda i: nn.Sequential(nn.Linear(3, nn.choice(None, [1, 2])), nn.Linear(nn.choice(None, [1, 2]), 3)),
                (1, 2),
                label="pb",
            )

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.body(x)

    space = PerBlock()
    assert list(space.search_space) == ["pb", "pb/0/choice_1", "pb/0/choice_2", "pb/1/choice_1", "pb/1/choice_2"]
    assert space.size() == 4 + 16  # depth 1 uses block 0's two choices, depth 2 both blocks'


def test_a_factory_with_explicit_labels_per_block() -> None:
    class PerBlock(nn.ModelSpace):
        def __init__(self) -> None:
            super().__init__()
            self.body = nn.Repeat(
                lambda i: nn.Sequential(
                    nn.Linear(3, nn.choice(f"h{i}", [1, 2])), nn.Linear(nn.choice(f"h{i}", [1, 2]), 3)
                ),
                (1, 3),
                label="pb",
            )

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.body(x)

    space = PerBlock()
    assert list(space.search_space) == ["pb", "h0", "h1", "h2"]
    assert space.size() == 2 + 4 + 8  # depth d uses h0 .. h(d-1)
    model = space.freeze({"pb": 2, "h0": 1, "h1": 2, "h2": 1})
    assert [block[0].out_features for block in model.body] == [1, 2]
    assert model(torch.zeros(2, 3)).shape == (2, 3)
    for seed in range(10):
        sample = space.random(seed=seed)
        assert space.freeze(sample)(torch.zeros(1, 3)).shape == (1, 3)


def test_a_factory_sharing_a_label_across_blocks() -> None:
    class SharedLabel(nn.ModelSpace):
        def __init__(self) -> None:
            super().__init__()
            self.body = nn.Repeat(lambda i: nn.Linear(3, nn.choice("w", [3])), (1, 2), label="sl")

    space = SharedLabel()
    assert list(space.search_space) == ["sl", "w"]


def test_repeat_labels_and_nesting() -> None:
    class Nested(nn.ModelSpace):
        def __init__(self) -> None:
            super().__init__()
            self.outer = nn.Repeat(lambda i: nn.Repeat(nn.Identity(), (1, 2)), (1, 2))

    space = Nested()
    assert list(space.search_space) == ["repeat_1", "repeat_1/0/repeat_1", "repeat_1/1/repeat_1"]
    model = space.freeze({"repeat_1": 2, "repeat_1/0/repeat_1": 1, "repeat_1/1/repeat_1": 2})
    assert [len(inner) for inner in model.outer] == [1, 2]


def test_unfrozen_repeat_cannot_run() -> None:
    with pytest.raises(archsmith.NotFrozenError, match="'rep_unfrozen'"):
        nn.Repeat(nn.Identity(), (1, 2), label="rep_unfrozen")(torch.zeros(1))


# Depths given as expressions over choices ----------------------------------------------------
def _architectures(space: nn.ModelSpace) -> tuple[set[Any], set[str]]:
    """By brute force over every sample: the distinct active projections, and the
    distinct architecture keys."""
    import itertools

    leaves = dict(space.search_space.items())
    projections, keys = set(), set()
    for values in itertools.product(*(leaf.grid() for leaf in leaves.values())):
        sample = dict(zip(leaves, values))
        active = space.search_space.active_labels(sample)
        projections.add(tuple(sorted((label, sample[label]) for label in active)))
        keys.add(space.search_space.architecture_key(sample))
    return projections, keys


class ExpressionDepth(nn.ModelSpace):
    """Depth ``d + 1`` (2 to 4 blocks), each block with a choice of its own."""

    def __init__(self) -> None:
        super().__init__()
        depth = nn.ValueChoice([1, 2, 3], label="d") + 1
        self.body = nn.Repeat(
            lambda i: nn.LayerChoice([nn.Linear(3, 3), nn.Identity()], label=f"op{i}"), depth=depth, label="rep"
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def test_an_expression_depth_builds_the_deepest_stack_and_freezes_the_chosen_one() -> None:
    space = ExpressionDepth()
    assert space.body.depths == [2, 3, 4]
    assert len(space.body) == 4 and isinstance(space.body[3], nn.LayerChoice)
    assert [b.label for b in space.body] == ["op0", "op1", "op2", "op3"]  # type: ignore[attr-defined]
    assert list(space.search_space) == ["d", "op0", "op1", "op2", "op3"]
    for seed in range(6):
        sample = space.random(seed)
        model = space.freeze(sample)
        assert len(model.body) == sample["d"] + 1
        assert model(torch.zeros(2, 3)).shape == (2, 3)


def test_an_expression_depth_keeps_size_grid_and_keys_exact() -> None:
    space = ExpressionDepth()
    projections, keys = _architectures(space)
    assert space.size() == len(projections) == len(keys) == 4 + 8 + 16
    assert len(list(space.grid())) == space.size()
    assert "op3" not in space.search_space.active_labels({"d": 2, "op0": 0, "op1": 0, "op2": 0, "op3": 0})


def test_a_depth_over_two_choices() -> None:
    class Product(nn.ModelSpace):
        def __init__(self) -> None:
            super().__init__()
            a, b = nn.ValueChoice([1, 2], label="a"), nn.ValueChoice([1, 2], label="b")
            self.body = nn.Repeat(lambda i: nn.Linear(3, 3), depth=a * b, label="rep")

    space = Product()
    assert space.body.depths == [1, 2, 4] and len(space.body) == 4
    for a, b in [(1, 1), (1, 2), (2, 2)]:
        assert len(space.freeze({"a": a, "b": b}).body) == a * b


def test_a_depth_over_two_choices_with_choices_in_the_blocks() -> None:
    """``max(a, b) > 1`` is "a is 2 or b is 2": one condition per choice suffices."""

    class Deeper(nn.ModelSpace):
        def __init__(self) -> None:
            super().__init__()
            a, b = nn.ValueChoice([1, 2], label="a"), nn.ValueChoice([1, 2], label="b")
            block = lambda i: nn.LayerChoice([nn.Linear(3, 3), nn.Identity()], label=f"op{i}")  # noqa: E731
            self.body = nn.Repeat(block, depth=archsmith.space.max(a, b), label="rep")

    space = Deeper()
    projections, keys = _architectures(space)
    assert space.size() == len(projections) == len(keys) == 2 + 3 * 4
    assert len(list(space.grid())) == space.size()


def test_a_joint_depth_the_space_cannot_record_is_refused() -> None:
    class Joint(nn.ModelSpace):
        def __init__(self) -> None:
            super().__init__()
            a, b = nn.ValueChoice([1, 2], label="a"), nn.ValueChoice([1, 2], label="b")
            block = lambda i: nn.LayerChoice([nn.Linear(3, 3), nn.Identity()], label=f"op{i}")  # noqa: E731
            self.body = nn.Repeat(block, depth=a * b, label="joint")

    with pytest.raises(archsmith.SpaceError, match=r"Repeat 'joint': block 2 holds choices.*give the depth as one"):
        Joint()


@pytest.mark.parametrize(
    ("depth", "match"),
    [
        (lambda: nn.ValueChoice([1, 2], label="n") - 2, r"'bad'.*gives -1 at \{'n': 1\}.*non-negative int"),
        (lambda: nn.ValueChoice([1, 2], label="n") / 2, r"'bad'.*gives 0.5 .*non-negative int"),
    ],
)
def test_a_depth_expression_giving_no_depth_is_refused(depth: Any, match: str) -> None:
    with pytest.raises(archsmith.SpaceError, match=match):
        nn.Repeat(nn.Identity(), depth=depth(), label="bad")

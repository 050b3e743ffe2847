"""Labels: explicit ones are kept; automatic ones are deterministic and readable;
one label is one decision; a conflicting label is an error at construction."""

from __future__ import annotations

import inspect
import re

import pytest
import torch

import archsmith
import archsmith.nn as nn


class AutoLabelled(nn.ModelSpace):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(4, nn.choice(None, [2, 4]))
        self.b = nn.Dropout(nn.ValueChoice([0.0, 0.5]))
        self.op = nn.LayerChoice([nn.Identity(), lambda: nn.Linear(4, nn.choice(None, [4, 8]))])
        self.op2 = nn.LayerChoice([nn.Identity(), nn.ReLU()])
        self.inp = nn.InputChoice(2)
        self.rep = nn.Repeat(lambda i: nn.Linear(4, nn.choice(None, [4, 5])), (1, 2))
        self.cell = nn.Cell([nn.Identity()], num_nodes=1)
        self.nb201 = nn.NasBench201Cell([lambda i, o: nn.Identity()], 4, 4, num_tensors=2)
        self.nb101 = nn.NasBench101Cell([lambda c: nn.Identity()], 4, 4, lambda i, o: nn.Identity(), max_num_nodes=3)
        self.act = nn.AutoActivation()


EXPECTED_AUTO_LABELS = [
    "choice_1",
    "choice_2",
    "layer_choice_1",
    "layer_choice_1/1/choice_1",
    "layer_choice_2",
    "input_choice_1",
    "repeat_1",
    "repeat_1/0/choice_1",
    "repeat_1/1/choice_1",
    "cell_1/input_1_0",
    "cell_1/op_1_0",
    "nb201_cell_1/1_0",
    "nb101_cell_1/num_nodes",
    "nb101_cell_1/op1",
    "nb101_cell_1/input1",
    "nb101_cell_1/input2",
    "auto_activation_1/unary_0",
    "auto_activation_1/unary_1",
    "auto_activation_1/binary_0",
]


def test_automatic_labels_are_readable_and_scoped() -> None:
    assert list(AutoLabelled().search_space) == EXPECTED_AUTO_LABELS
    assert all(re.fullmatch(r"[a-z0-9_/]+", label) for label in EXPECTED_AUTO_LABELS)


def test_building_twice_gives_the_same_labels() -> None:
    first, second = AutoLabelled(), AutoLabelled()
    assert list(first.search_space) == list(second.search_space)
    assert [leaf.describe() for leaf in first.search_space.values()] == [
        leaf.describe() for leaf in second.search_space.values()
    ]


def test_other_spaces_built_in_between_do_not_shift_labels() -> None:
    first = list(AutoLabelled().search_space)
    for _ in range(3):
        AutoLabelled()
        nn.choice(None, [1, 2])  # a choice outside any space
    assert list(AutoLabelled().search_space) == first


def test_explicit_labels_are_kept_as_given() -> None:
    class Explicit(nn.ModelSpace):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.Linear(4, nn.choice("stem/width", [2, 4]))
            self.op = nn.LayerChoice([nn.Identity(), nn.ReLU()], label="the op")
            self.inp = nn.InputChoice(2, label="skip")
            self.rep = nn.Repeat(nn.Identity(), (0, 1), label="depth")
            self.cell = nn.Cell([nn.Identity()], 1, label="normal")
            self.act = nn.AutoActivation(label="act")

    labels = list(Explicit().search_space)
    assert labels[:4] == ["stem/width", "the op", "skip", "depth"]
    assert labels[4:6] == ["normal/input_1_0", "normal/op_1_0"]
    assert labels[6:] == ["act/unary_0", "act/unary_1", "act/binary_0"]


def test_nested_space_labels_get_its_name_as_prefix() -> None:
    class Block(nn.ModelSpace):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(2, nn.choice(None, [1, 2]))
            self.named = nn.Linear(2, nn.choice("kept", [1, 2]))

    class Body(nn.ModelSpace):
        def __init__(self) -> None:
            super().__init__()
            self.b1 = Block()
            self.b2 = Block()
            self.fc = nn.Linear(2, nn.choice(None, [3, 4]))

    assert list(Body().search_space) == ["block_1/choice_1", "kept", "block_2/choice_1", "choice_1"]


def test_nested_space_prefix_is_snake_case_of_acronym_class_names() -> None:
    class MLPBlock(nn.ModelSpace):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(2, nn.choice(None, [1, 2]))

    class CNN(nn.ModelSpace):
        def __init__(self) -> None:
            super().__init__()
            self.block = MLPBlock()

    assert list(CNN().search_space) == ["mlp_block_1/choice_1"]


def test_plain_submodules_share_the_space_scope() -> None:
    class Plain(nn.Module):  # not a ModelSpace: its choices count in the parent's scope
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(2, nn.choice(None, [1, 2]))

    class Holder(nn.ModelSpace):
        def __init__(self) -> None:
            super().__init__()
            self.p1 = Plain()
            self.p2 = Plain()

    assert list(Holder().search_space) == ["choice_1", "choice_2"]


def test_unchosen_factories_do_not_shift_labels_when_frozen() -> None:
    class Space(nn.ModelSpace):
        def __init__(self) -> None:
            super().__init__()
            self.op = nn.LayerChoice(
                [lambda: nn.Linear(2, nn.choice(None, [1, 3])), lambda: nn.Linear(2, nn.choice(None, [5, 7]))],
                label="op",
            )
            self.after = nn.Linear(2, nn.choice(None, [9, 11]))

    space = Space()
    assert list(space.search_space) == ["op", "op/0/choice_1", "op/1/choice_1", "choice_1"]
    model = space.freeze({"op": 1, "op/0/choice_1": 1, "op/1/choice_1": 7, "choice_1": 11})
    assert model.op.out_features == 7
    assert model.after.out_features == 11


def test_same_choice_object_used_twice_is_one_decision() -> None:
    class Shared(nn.ModelSpace):
        def __init__(self) -> None:
            super().__init__()
            width = nn.choice(None, [2, 4, 8])
            self.a = nn.Linear(3, width)
            self.b = nn.Linear(width, width)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.b(self.a(x))

    space = Shared()
    assert list(space.search_space) == ["choice_1"]
    assert space.size() == 3
    model = space.freeze({"choice_1": 4})
    assert (model.a.out_features, model.b.in_features, model.b.out_features) == (4, 4, 4)


def test_same_label_and_candidates_is_one_decision() -> None:
    class Twice(nn.ModelSpace):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.Linear(3, nn.choice("w", [2, 4]))
            self.b = nn.Linear(nn.ValueChoice([2, 4], label="w"), 1)
            self.op1 = nn.LayerChoice([nn.Identity(), nn.ReLU()], label="op")
            self.op2 = nn.LayerChoice([nn.Tanh(), nn.Sigmoid()], label="op")

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.b(self.op2(self.op1(self.a(x))))

    space = Twice()
    assert list(space.search_space) == ["w", "op"]
    assert space.size() == 4
    model = space.freeze({"w": 2, "op": 1})
    assert (model.a.out_features, model.b.in_features) == (2, 2)
    assert (type(model.op1), type(model.op2)) == (torch.nn.ReLU, torch.nn.Sigmoid)
    assert model(torch.zeros(1, 3)).shape == (1, 1)


def _line_of(fn, text: str) -> int:
    lines, start = inspect.getsourcelines(fn)
    return start + next(i for i, line in enumerate(lines) if text in line)


class Conflicting(nn.ModelSpace):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(3, nn.choice("dup", [2, 4]))  # first place
        self.b = nn.Linear(3, nn.choice("dup", [2, 4, 8]))  # second place


def test_same_label_different_candidates_is_an_error_naming_both_places() -> None:
    with pytest.raises(archsmith.LabelConflictError) as info:
        Conflicting()
    message = str(info.value)
    assert "'dup'" in message
    assert "[2, 4]" in message and "[2, 4, 8]" in message
    first, second = _line_of(Conflicting.__init__, "# first place"), _line_of(Conflicting.__init__, "# second place")
    assert f"{__file__}:{first}" in message
    assert f"{__file__}:{second}" in message


def test_conflict_between_a_layer_choice_and_a_value_choice() -> None:
    class Mixed(nn.ModelSpace):
        def __init__(self) -> None:
            super().__init__()
            self.op = nn.LayerChoice([nn.Identity(), nn.ReLU()], label="x")
            self.fc = nn.Linear(2, nn.choice("x", [3, 4]))

    with pytest.raises(archsmith.LabelConflictError, match="'x'"):
        Mixed()


def test_conflict_with_a_choice_passed_as_init_argument() -> None:
    class Takes(nn.ModelSpace):
        def __init__(self, width) -> None:
            super().__init__()
            self.fc = nn.Linear(2, width)
            self.other = nn.Linear(2, nn.choice("arg_w", [1, 2, 3]))

    with pytest.raises(archsmith.LabelConflictError, match="'arg_w'"):
        Takes(nn.choice("arg_w", [1, 2]))


def test_conflicting_labels_inside_a_repeat_factory() -> None:
    class Rep(nn.ModelSpace):
        def __init__(self) -> None:
            super().__init__()
            # every block makes "blk" with other candidates: a conflict
            self.rep = nn.Repeat(lambda i: nn.Linear(2, nn.choice("blk", [i + 1, i + 2])), 2, label="rep")

    with pytest.raises(archsmith.LabelConflictError, match="'blk'"):
        Rep()

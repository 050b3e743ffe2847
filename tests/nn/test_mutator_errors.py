"""What a mutated space says when the model or a mutator is wrong."""

from __future__ import annotations

import re

import pytest
import torch

import archsmith.nn as nn
from archsmith.space import LabelConflictError, SpaceError

from ._mutator_models import BlockMutator, MnistNet

pytestmark = pytest.mark.usefixtures("one_thread")


class DataDependent(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.sum() > 0:  # control flow on a tensor: fx cannot trace it
            return x
        return -x


class WithBranch(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(2, 2)
        self.branch = DataDependent()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.branch(self.fc(x))


class Widen(nn.Mutator):
    def mutate(self, graph: nn.MutableGraph) -> None:
        node = graph.get_node_by_name("fc")
        node.replace(torch.nn.Linear(2, self.choice([2, 3])))


def test_an_untraceable_model_names_the_module_the_line_and_the_fix() -> None:
    with pytest.raises(nn.UntraceableModelError) as info:
        nn.mutate(WithBranch(), [Widen()])
    message = str(info.value)
    assert "DataDependent at 'branch'" in message
    assert re.search(r"test_mutator_errors\.py:\d+", message)  # the line of the `if`
    assert "leaf_modules=[ItsClass]" in message and "inline primitives" in message
    # the fix it names works
    space = nn.mutate(WithBranch(), [Widen()], leaf_modules=[DataDependent])
    assert space.size() == 2


def test_one_label_with_different_candidates_names_both_mutators() -> None:
    class A(nn.Mutator):
        def mutate(self, graph: nn.MutableGraph) -> None:
            self.choice([1, 2], label="shared")

    class B(nn.Mutator):
        def mutate(self, graph: nn.MutableGraph) -> None:
            self.choice([1, 2, 3], label="shared")

    with pytest.raises(LabelConflictError, match=r"mutator B asks decision 'shared' .* but A asked it"):
        nn.mutate(torch.nn.Linear(1, 1), [A(), B()])
    # the same candidates are one shared decision
    assert list(nn.mutate(torch.nn.Linear(1, 1), [A(), A()]).search_space) == ["shared"]


def test_a_label_of_the_base_model_with_other_candidates_is_a_conflict() -> None:
    class Net(nn.ModelSpace):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(2, nn.choice("width", [2, 4]))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(x)

    class Same(nn.Mutator):
        def mutate(self, graph: nn.MutableGraph) -> None:
            width = self.choice([2, 4], label="width")  # reads the base model's decision
            assert graph.get_node_by_name("fc").module.out_features == width

    class Other(nn.Mutator):
        def mutate(self, graph: nn.MutableGraph) -> None:
            self.choice([8, 16], label="width")

    assert list(nn.mutate(Net(), [Same()]).search_space) == ["width"]
    with pytest.raises(LabelConflictError, match="base model's choice 'width'"):
        nn.mutate(Net(), [Other()])


def test_removing_a_node_that_still_has_users_names_the_mutator_and_the_node() -> None:
    class Dangling(nn.Mutator):
        def mutate(self, graph: nn.MutableGraph) -> None:
            graph.fx.erase_node(graph.get_node_by_name("fc").fx)  # fx's own call, users left behind

    with pytest.raises(nn.MutationError, match=r"mutator Dangling \('dangling'\) failed: .*fc"):
        nn.mutate(WithBranch(), [Dangling()], leaf_modules=[DataDependent])


def test_a_shape_breaking_replacement_is_caught_on_the_example_input() -> None:
    class Breaks(nn.Mutator):
        def mutate(self, graph: nn.MutableGraph) -> None:
            (node,) = graph.get_nodes_by_label("block1")
            channels = self.choice([8, 5], label="channels")  # 5 does not fit block2's 8 inputs
            node.replace(torch.nn.Conv2d(4, channels, 3, padding=1))

    x = torch.zeros(1, 1, 8, 8)
    with pytest.raises(nn.MutationError) as info:
        nn.mutate(MnistNet(), [Breaks(), BlockMutator("block2")], example_input=x)
    message = str(info.value)
    assert "after mutator BlockMutator ('block_mutator')" in message and "node 'block2'" in message
    # without an example input the space is made; the model fails when run
    space = nn.mutate(MnistNet(), [Breaks(), BlockMutator("block2")])
    with pytest.raises(RuntimeError):
        space.freeze({"channels": 5, "block_mutator/choice_1": 1})(x)


def test_a_placeholder_left_unfilled_is_named() -> None:
    with pytest.raises(nn.MutationError, match=r"placeholders \['block2'\] \(nodes \['block2'\]\) are left"):
        nn.mutate(MnistNet(), [BlockMutator("block1")])
    with pytest.raises(SpaceError, match="before a mutator replaced it"):
        MnistNet()(torch.zeros(1, 1, 8, 8))


def test_a_mutator_failing_is_named_with_its_error() -> None:
    class Fails(nn.Mutator):
        def mutate(self, graph: nn.MutableGraph) -> None:
            raise KeyError("no such node")

    with pytest.raises(nn.MutationError, match=r"mutator Fails \('fails'\) failed: KeyError"):
        nn.mutate(torch.nn.Linear(1, 1), [Fails()])


def test_bad_arguments_to_mutate() -> None:
    with pytest.raises(SpaceError, match=r"must be a torch\.nn\.Module"):
        nn.mutate("model", [Widen()])  # type: ignore[arg-type]
    with pytest.raises(SpaceError, match=r"not archsmith\.nn\.Mutator instances"):
        nn.mutate(torch.nn.Linear(1, 1), [lambda g: None])  # type: ignore[list-item]
    with pytest.raises(SpaceError, match=r"must be a list"):
        nn.mutate(torch.nn.Linear(1, 1), Widen())  # type: ignore[arg-type]
    with pytest.raises(SpaceError, match=r"leaf_modules takes torch\.nn\.Module classes"):
        nn.mutate(torch.nn.Linear(1, 1), [], leaf_modules=["Linear"])  # type: ignore[list-item]
    plain = torch.nn.Sequential(nn.LayerChoice([nn.ReLU(), nn.Tanh()], label="act"))
    with pytest.raises(SpaceError, match=r"holds inline primitives .* derive it from archsmith\.nn\.ModelSpace"):
        nn.mutate(plain, [])


def test_bad_graph_edits_say_what_is_wrong() -> None:
    class Late(nn.Mutator):
        def mutate(self, graph: nn.MutableGraph) -> None:
            first, *_, last = graph.nodes
            first.set_inputs(last)

    with pytest.raises(SpaceError, match="a node reads earlier nodes only"):
        nn.mutate(torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.ReLU()), [Late()])

    class NotAModule(nn.Mutator):
        def mutate(self, graph: nn.MutableGraph) -> None:
            graph.nodes[0].replace(lambda: 3)  # type: ignore[arg-type,return-value]

    with pytest.raises(SpaceError, match="returned int"):
        nn.mutate(torch.nn.Sequential(torch.nn.Linear(2, 2)), [NotAModule()])

    class BadChoice(nn.Mutator):
        def mutate(self, graph: nn.MutableGraph) -> None:
            self.choice([])

    with pytest.raises(SpaceError, match="non-empty list of candidates"):
        nn.mutate(torch.nn.Linear(1, 1), [BadChoice()])


def test_a_sample_outside_the_space_is_refused_before_building() -> None:
    space = nn.mutate(MnistNet(), [BlockMutator("block1"), BlockMutator("block2")])
    with pytest.raises(SpaceError, match=r"'block_mutator/choice_1': 4 is out of range"):
        space.freeze({"block_mutator/choice_1": 4, "block_mutator_2/choice_1": 1})
    with pytest.raises(SpaceError, match="a mutated space is not a model"):
        space(torch.zeros(1, 1, 8, 8))


def test_an_unlabelled_conditional_choice_that_shifts_later_labels_says_to_label_it() -> None:
    class Shifting(nn.Mutator):
        def mutate(self, graph: nn.MutableGraph) -> None:
            if self.choice([False, True]):
                self.choice(["a", "b"])  # asked only sometimes, and unlabelled
            self.choice([1, 2, 3])

    with pytest.raises(LabelConflictError, match="label the conditional one"):
        nn.mutate(torch.nn.Linear(1, 1), [Shifting()])

    class Labelled(nn.Mutator):
        def mutate(self, graph: nn.MutableGraph) -> None:
            if self.choice([False, True]):
                self.choice(["a", "b"], label="letter")
            self.choice([1, 2, 3])

    space = nn.mutate(torch.nn.Linear(1, 1), [Labelled()])
    assert space.search_space.conditions == {"letter": {"labelled/choice_1": [True]}}
    assert space.size() == 9


def test_a_mutated_space_is_frozen_by_freeze_not_inside_fixed_arch() -> None:
    space = nn.mutate(MnistNet(), [BlockMutator("block1"), BlockMutator("block2")])
    args, kwargs = space.init_arguments
    with nn.fixed_arch(space.random(seed=0)), pytest.raises(SpaceError, match=r"space\.freeze\(sample\)"):
        type(space)(*args, **kwargs)

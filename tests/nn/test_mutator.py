"""Graph mutators: the search space they make, freezing, and the graph operations."""

from __future__ import annotations

import operator

import cloudpickle
import pytest
import torch
import torch.fx

import archsmith
import archsmith.nn as nn
from archsmith.space import SpaceError

from ._mutator_models import BUILT, BlockMutator, ConvReplacer, MnistNet, ResNetish, SkipInserter

pytestmark = pytest.mark.usefixtures("one_thread")

X = torch.randn(2, 1, 8, 8)


def mnist_space() -> nn.MutatedSpace:
    return nn.mutate(MnistNet(), [BlockMutator("block1"), BlockMutator("block2")], example_input=X)


def test_block_mutator_fills_placeholders_with_searched_kernels() -> None:
    space = mnist_space()
    assert {label: space.search_space[label].grid() for label in space.search_space} == {
        "block_mutator/choice_1": [1, 3, 5],
        "block_mutator_2/choice_1": [1, 3],
    }
    assert space.size() == 6 and len(list(space.grid())) == 6
    model = space.freeze({"block_mutator/choice_1": 5, "block_mutator_2/choice_1": 1})
    assert isinstance(model, torch.fx.GraphModule)
    assert model.get_submodule("block1").kernel_size == (5, 5)
    assert model.get_submodule("block2").kernel_size == (1, 1)
    assert model(X).shape == (2, 3)
    assert not [m for m in model.modules() if type(m).__module__.startswith("archsmith")]


def test_labels_are_the_same_in_every_build_and_after_pickling() -> None:
    first = mnist_space()
    again = cloudpickle.loads(cloudpickle.dumps(first))
    assert list(first.search_space) == list(mnist_space().search_space) == list(again.search_space)
    sample = first.random(seed=3)
    assert again.freeze(sample).code == first.freeze(sample).code
    # the recipe a worker rebuilds the space from
    args, kwargs = first.init_arguments
    rebuilt = type(first)(*cloudpickle.loads(cloudpickle.dumps(args)), **kwargs)
    assert repr(rebuilt.search_space) == repr(first.search_space)


class HandWritten(torch.nn.Module):
    """The mnist network with kernels 3 and 1, written by hand."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = torch.nn.Conv2d(1, 4, 3, padding=1)
        self.block1 = torch.nn.Conv2d(4, 8, 3, padding=1)
        self.block2 = torch.nn.Conv2d(8, 8, 1)
        self.fc = torch.nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.conv1(x))
        x = torch.relu(self.block1(x))
        return self.fc(self.block2(x).mean((2, 3)))


def test_a_frozen_mutated_model_is_the_network_written_by_hand() -> None:
    model = mnist_space().freeze({"block_mutator/choice_1": 3, "block_mutator_2/choice_1": 1})
    by_hand = HandWritten()
    assert {k: v.shape for k, v in model.state_dict().items()} == {k: v.shape for k, v in by_hand.state_dict().items()}
    model.load_state_dict(by_hand.state_dict())  # strict: the same parameters, by name
    x = torch.randn(5, 1, 8, 8)
    assert torch.equal(model(x), by_hand(x))
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in by_hand.parameters())


def test_unchosen_candidates_given_as_classes_are_never_built_by_freeze() -> None:
    space = nn.mutate(ResNetish(), [ConvReplacer()], example_input=X)
    assert len(space.search_space) == 4  # stem + three blocks, one decision per 3x3 conv
    BUILT.clear()
    model = space.freeze(
        {
            "conv_replacer/choice_1": "conv3",
            "conv_replacer/choice_2": "sep",
            **{f"conv_replacer/choice_{i}": "conv3" for i in (3, 4)},
        }
    )
    assert BUILT == ["SepConv"]
    assert type(model.get_submodule("blocks.0.0")).__name__ == "SepConv"
    assert model(X).shape == (2, 3)


def test_conditional_decisions_are_asked_only_where_an_earlier_one_allows() -> None:
    class Depth(nn.Mutator):
        def mutate(self, graph: nn.MutableGraph) -> None:
            (node,) = graph.get_nodes_by_type(torch.nn.Identity)
            depth = self.choice([0, 1, 2], label="depth")
            if depth:
                width = self.choice([4, 8], label="width")
                node.replace(
                    lambda: torch.nn.Sequential(
                        *[torch.nn.Linear(4 if i == 0 else width, width) for i in range(depth)],
                        torch.nn.Linear(width, 4),
                    )
                )

    base = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Identity(), torch.nn.Linear(4, 2))
    space = nn.mutate(base, [Depth()], example_input=torch.zeros(1, 3))
    assert space.search_space.conditions == {"width": {"depth": [1, 2]}}
    assert space.size() == 5  # depth 0, and depth 1 or 2 with either width
    assert sorted((s["depth"], s["width"]) for s in space.grid()) == [(0, 4), (1, 4), (1, 8), (2, 4), (2, 8)]
    model = space.freeze({"depth": 0})  # an unused decision may be left out
    assert isinstance(model.get_submodule("1"), torch.nn.Identity)
    assert space.freeze({"depth": 2, "width": 8})(torch.zeros(1, 3)).shape == (1, 2)


def test_a_decision_asked_under_several_earlier_ones_is_used_under_any_of_them() -> None:
    space = nn.mutate(MnistNet(), [BlockMutator("block1"), BlockMutator("block2"), ConvReplacer()], example_input=X)
    assert space.search_space.conditions["conv_replacer/choice_2"] == {
        "block_mutator_2/choice_1": [3],
        "block_mutator/choice_1": [3],
    }
    for seed in range(20):  # every sample freezes: every decision a run asks is in the space
        assert space.freeze(space.random(seed=seed))(X).shape == (2, 3)


def test_inline_primitives_and_mutators_in_one_model() -> None:
    class Net(nn.ModelSpace):
        def __init__(self) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(1, nn.choice("width", [4, 6]), 3, padding=1)
            self.act = nn.LayerChoice([nn.ReLU(), nn.Tanh()], label="act")
            self.block = nn.Placeholder("block")
            self.fc = nn.Linear(nn.choice("width", [4, 6]), 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(self.block(self.act(self.conv1(x))).mean((2, 3)))

    class Fill(nn.Mutator):
        def mutate(self, graph: nn.MutableGraph) -> None:
            (node,) = graph.get_nodes_by_label("block")
            width = graph.get_node_by_name("conv1").module.out_channels  # what the base model's decision built
            node.replace(torch.nn.Conv2d(width, width, self.choice([1, 3]), padding="same"))

    space = nn.mutate(Net(), [Fill()], example_input=X)
    assert list(space.search_space) == ["width", "act", "fill/choice_1"]
    model = space.freeze({"width": 6, "act": 1, "fill/choice_1": 3})
    assert isinstance(model.get_submodule("act"), torch.nn.Tanh)
    assert model.get_submodule("block").weight.shape == (6, 6, 3, 3)
    assert model(X).shape == (2, 3)


def test_save_and_load_an_architecture(tmp_path) -> None:
    space = mnist_space()
    sample = space.random(seed=1)
    archsmith.save_arch(sample, tmp_path / "arch.json")
    loaded = archsmith.load_arch(tmp_path / "arch.json")
    assert loaded == sample
    assert space.freeze(loaded).code == space.freeze(sample).code


def test_skip_connections_inserted_per_block() -> None:
    space = nn.mutate(ResNetish(), [SkipInserter()], example_input=X)
    assert list(space.search_space) == ["skip_0", "skip_1", "skip_2"]
    model = space.freeze({"skip_0": False, "skip_1": True, "skip_2": False})
    adds = [n for n in model.graph.nodes if n.target is operator.add]
    assert len(adds) == 1 and [a.name for a in adds[0].args] == ["blocks_1_1", "blocks_0_1"]
    base = ResNetish()
    model = nn.mutate(base, [SkipInserter()]).freeze({"skip_0": False, "skip_1": True, "skip_2": False})
    model.load_state_dict(base.state_dict())
    x = torch.randn(2, 1, 8, 8)
    h = base.stem(x)
    h = base.blocks[0](h)
    h = base.blocks[1](h) + h
    expected = base.head(base.blocks[2](h).mean((2, 3)))
    assert torch.allclose(model(x), expected)


def test_node_operations_insert_remove_and_rewire() -> None:
    class Edit(nn.Mutator):
        def mutate(self, graph: nn.MutableGraph) -> None:
            first, act, second = graph.nodes
            assert graph.get_nodes_by_name(r"\d") == [first, act, second]
            assert act.inputs == [first] and act.users == [second]
            if self.choice(["drop act", "norm before"], label="edit") == "drop act":
                act.remove()
            else:
                act.insert_before(torch.nn.LayerNorm(4))
            second.insert_after(torch.nn.Tanh)
            second.set_inputs(first)  # whatever came between is skipped

    base = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    space = nn.mutate(base, [Edit()], example_input=torch.zeros(1, 3))
    x = torch.randn(4, 3)
    for edit in ("drop act", "norm before"):
        model = space.freeze({"edit": edit})
        assert torch.allclose(model(x), torch.tanh(model.get_submodule("2")(model.get_submodule("0")(x))))
    # what the rewiring left unread is gone, parameters included
    assert [type(m).__name__ for m in space.freeze({"edit": "norm before"}).modules()][1:] == [
        "Linear",
        "Linear",
        "Tanh",
    ]
    graph_fn = nn.mutate(base, []).freeze({})
    assert torch.allclose(graph_fn(x), base(x))


def test_functions_are_found_by_type_and_can_become_modules() -> None:
    class Act(nn.Mutator):
        def mutate(self, graph: nn.MutableGraph) -> None:
            for node in graph.get_nodes_by_type(torch.relu):
                node.replace(self.choice([torch.nn.ReLU, torch.nn.GELU, torch.nn.SiLU]))

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = torch.nn.Linear(3, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.relu(self.fc(torch.relu(x)))

    space = nn.mutate(Net(), [Act()])
    assert space.size() == 9
    model = space.freeze({"act/choice_1": 1, "act/choice_2": 2})
    assert [type(m).__name__ for m in model.children()] == ["Linear", "GELU", "SiLU"]


def test_choice_outside_a_search_and_a_mutator_without_mutate() -> None:
    with pytest.raises(SpaceError, match="no search runs it"):
        BlockMutator("x").choice([1, 2])
    with pytest.raises(SpaceError, match=r"\['Mutator'\] do not implement mutate"):
        nn.mutate(torch.nn.Linear(1, 1), [nn.Mutator()])


def test_module_types_may_be_named_by_strings_as_nni_did() -> None:
    base = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.ReLU(), torch.nn.Conv2d(2, 2, 1))
    graph = nn.MutableGraph(torch.fx.symbolic_trace(base))
    by_class = graph.get_nodes_by_type(torch.nn.Conv2d)
    assert len(by_class) == 2
    for name in ("Conv2d", "torch.nn.Conv2d", "torch.nn.modules.conv.Conv2d"):
        assert graph.get_nodes_by_type(name) == by_class
    assert graph.get_nodes_by_type("Conv") == []


def test_replacing_one_call_of_a_shared_module_leaves_the_other_calls_alone() -> None:
    class Twice(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = torch.nn.Linear(3, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(self.fc(x))

    class FirstCall(nn.Mutator):
        def mutate(self, graph: nn.MutableGraph) -> None:
            if self.choice([False, True], label="swap"):
                graph.nodes[0].replace(torch.nn.Identity())

    base = Twice()
    model = nn.mutate(base, [FirstCall()]).freeze({"swap": True})
    model.get_submodule("fc").load_state_dict(base.fc.state_dict())
    x = torch.randn(2, 3)
    assert torch.allclose(model(x), base.fc(x))
    assert isinstance(model.get_submodule("fc_1"), torch.nn.Identity)


def test_a_mutator_that_skips_super_init_and_one_with_a_label() -> None:
    class NoSuper(nn.Mutator):
        def __init__(self, k: int) -> None:
            self.k = k  # no super().__init__(), as some NNI mutators

        def mutate(self, graph: nn.MutableGraph) -> None:
            self.choice([self.k, self.k + 1])

    class Named(nn.Mutator):
        def mutate(self, graph: nn.MutableGraph) -> None:
            self.choice([1, 2])

    space = nn.mutate(torch.nn.Linear(1, 1), [NoSuper(1), Named(label="mine"), Named(label="mine")])
    assert list(space.search_space) == ["no_super/choice_1", "mine/choice_1", "mine_2/choice_1"]
    with pytest.raises(SpaceError, match="label must be a non-empty string"):
        Named(label="")


def test_candidate_modules_kept_on_the_mutator_are_not_shared_between_models() -> None:
    class Kept(nn.Mutator):
        def __init__(self) -> None:
            super().__init__()
            self.candidates = [torch.nn.Linear(3, 3), torch.nn.Tanh()]

        def mutate(self, graph: nn.MutableGraph) -> None:
            graph.nodes[0].replace(self.choice(self.candidates, label="op"))

    space = nn.mutate(torch.nn.Sequential(torch.nn.Identity()), [Kept()])
    one, two = space.freeze({"op": 0}), space.freeze({"op": 0})
    assert one.get_submodule("0").weight is not two.get_submodule("0").weight
    assert torch.equal(one.get_submodule("0").weight, two.get_submodule("0").weight)  # copies of the candidate

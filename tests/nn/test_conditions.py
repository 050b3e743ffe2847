"""The primitives record when each decision is used, so a model space counts,
lists and names architectures, not assignments: a decision inside an unchosen
candidate, a block beyond the chosen depth or a nested model space in a candidate
makes no other model."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import archsmith.nn as nn
from archsmith.space import SampleError


class Stack(nn.ModelSpace):
    """A depth-(1, 2) Repeat whose block holds an ``ops``-way choice."""

    def __init__(self, ops: int = 2) -> None:
        super().__init__()
        widths = [4, 5, 6][:ops]
        self.body = nn.Repeat(
            lambda i: nn.LayerChoice(
                [nn.Linear(4, 4) if w == 4 else nn.Sequential(nn.Linear(4, w), nn.Linear(w, 4)) for w in widths],
                label=f"op{i}",
            ),
            depth=(1, 2),
            label="depth",
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def every_assignment(space: nn.ModelSpace) -> list[dict[str, Any]]:
    s = space.search_space
    labels = list(s)
    return [
        dict(zip(labels, v))
        for v in itertools.product(*(s[label].grid() for label in labels))
        if s.satisfies(dict(zip(labels, v)))
    ]


@pytest.mark.parametrize(("ops", "architectures"), [(2, 2 + 4), (3, 3 + 9)])
def test_a_repeat_counts_the_models_it_builds(ops: int, architectures: int) -> None:
    space = Stack(ops)
    assert len(every_assignment(space)) == 2 * ops * ops  # what size() reported before
    assert space.size() == architectures
    models = {str(space.freeze(s)) for s in every_assignment(space)}
    assert len(models) == architectures
    grid = list(space.grid())
    assert len(grid) == architectures and {str(space.freeze(s)) for s in grid} == models
    assert space.search_space.conditions == {"op0": {"depth": [1, 2]}, "op1": {"depth": [2]}}


class Nested(nn.ModelSpace):
    def __init__(self) -> None:
        super().__init__()
        self.op = nn.LayerChoice(
            {
                "plain": nn.Identity(),
                "inner": lambda: Inner(),
                "act": lambda: nn.LayerChoice([nn.ReLU(), nn.Tanh()], label="act"),
            },
            label="outer",
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class Inner(nn.ModelSpace):
    """A model space used as a candidate; ``scale`` is read in its own code."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.choice("scale", [1.0, 2.0])
        self.fc = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x) * self.scale


def test_a_nested_model_space_in_a_candidate_is_used_only_when_chosen() -> None:
    space = Nested()
    assert space.size() == 1 + 2 + 2
    s = space.search_space
    assert s.active_labels({"outer": "plain", "scale": 2.0, "act": 1}) == {"outer"}
    assert s.active_labels({"outer": "inner", "scale": 2.0, "act": 1}) == {"outer", "scale"}
    # what NNI exports: the unused decisions left out
    model = space.freeze({"outer": "act", "act": 1})
    assert isinstance(model.op, torch.nn.Tanh)


def test_a_decision_used_outside_a_candidate_too_is_always_used() -> None:
    class Shared(nn.ModelSpace):
        def __init__(self) -> None:
            super().__init__()
            w = nn.choice("w", [4, 8])
            self.stem = nn.Linear(4, w)
            self.op = nn.LayerChoice([lambda: nn.Linear(w, w), nn.Identity()], label="op")

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.op(self.stem(x))

    space = Shared()
    assert space.search_space.conditions == {}
    assert space.size() == 4


def test_a_shared_block_is_used_from_depth_one() -> None:
    class Shared(nn.ModelSpace):
        def __init__(self) -> None:
            super().__init__()
            self.body = nn.Repeat(nn.LayerChoice([nn.ReLU(), nn.Tanh()], label="op"), depth=(0, 2), label="d")

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.body(x)

    space = Shared()
    assert space.search_space.conditions == {"op": {"d": [1, 2]}}
    assert space.size() == 1 + 2 + 2


def test_a_label_in_two_candidates_is_used_if_either_is_chosen() -> None:
    class Two(nn.ModelSpace):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.LayerChoice([lambda: nn.Linear(4, nn.choice("h", [2, 3])), nn.Identity()], label="a")
            self.b = nn.LayerChoice([nn.Identity(), lambda: nn.Linear(4, nn.choice("h", [2, 3]))], label="b")

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x

    space = Two()
    assert space.search_space.conditions == {"h": {"a": [0], "b": [1]}}
    assert space.size() == 1 + 3 * 2  # (a=1, b=0) leaves h unused
    assert space.size() == len({space.search_space.architecture_key(s) for s in every_assignment(space)})


class NB101(nn.ModelSpace):
    def __init__(self, inside: bool = False) -> None:
        super().__init__()
        ops = {"id": lambda c: nn.Identity(), "relu": lambda c: nn.ReLU()}

        def cell() -> torch.nn.Module:
            return nn.NasBench101Cell(ops, 3, 3, lambda a, b: nn.Conv2d(a, b, 1), 4, 4, label="nb")

        self.cell = nn.LayerChoice({"none": nn.Identity(), "cell": cell}, label="which") if inside else cell()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cell(x)


def test_nasbench101_uses_the_vertices_of_its_node_count() -> None:
    space = NB101()
    s = space.search_space
    assert s.conditions["nb/op2"] == {"nb/num_nodes": [4]}
    assert s.conditions["nb/input3"] == {"nb/num_nodes": [4]}
    assert s.active_labels({**space.default(), "nb/num_nodes": 3}) == {
        "nb/num_nodes",
        "nb/op1",
        "nb/input1",
        "nb/input2",
    }
    keys = {s.architecture_key(x) for x in every_assignment(space)}
    assert space.size() == len(keys)
    inside = NB101(inside=True)  # the cell's counter still counts it once its candidate is chosen
    assert inside.size() == 1 + space.size()


def test_freeze_sets_aside_what_is_not_a_decision() -> None:
    space = Stack()
    exported = {"depth": 1, "op0": 1, "lr": 0.01, "batch_size": 32}  # export_top_models: arch + hyper-parameters
    model = space.freeze(exported)
    assert len(model.body) == 1
    with pytest.raises(SampleError, match=r"'op0': missing(.|\n)*set aside as not decisions of this space: \['opO'\]"):
        space.freeze({"depth": 1, "opO": 1})  # a misspelt label cannot slip through


def test_freeze_with_weights_from_sets_aside_hyper_parameters_too() -> None:
    from archsmith.strategy.oneshot import Supernet

    space = Stack()
    supernet = Supernet(space, "sampling")
    sample = {"depth": 2, "op0": 1, "op1": 0, "lr": 0.1}
    model = space.freeze(sample, weights_from=supernet)
    assert len(model.body) == 2


# Random nested spaces: one architecture per key, one key per architecture ---------------------

_WIDTHS = iter(range(5, 10**6))


def _tree(draw: Any, depth: int) -> Any:
    """A factory of a random nested module (LayerChoice / Repeat / a plain layer);
    each leaf layer gets a width of its own, so a frozen model's text names its
    architecture."""
    kind = draw(st.sampled_from(["layer", "choice", "repeat"] if depth < 2 else ["layer"]))
    if kind == "layer":
        width = next(_WIDTHS)
        return lambda: nn.Sequential(nn.Linear(4, width), nn.Linear(width, 4))
    label = f"d{next(_WIDTHS)}"
    children = [_tree(draw, depth + 1) for _ in range(draw(st.integers(1, 3 if kind == "choice" else 2)))]
    if kind == "choice":
        return lambda: nn.LayerChoice([c for c in children], label=label)
    low = draw(st.integers(0, len(children)))
    mark = next(_WIDTHS)  # so that even an empty stack names its place in the model
    return lambda: nn.Sequential(
        nn.Linear(4, mark),
        nn.Linear(mark, 4),
        nn.Repeat(lambda i: children[i](), depth=(low, len(children)), label=label),
    )


@settings(max_examples=25, deadline=None)
@given(st.data())
def test_keys_match_the_models_built(data: st.DataObject) -> None:
    factories = [_tree(data.draw, 0) for _ in range(data.draw(st.integers(1, 2)))]

    class Random(nn.ModelSpace):
        def __init__(self) -> None:
            super().__init__()
            self.parts = nn.ModuleList([f() for f in factories])

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x

    space = Random()
    samples = every_assignment(space)
    if len(samples) > 300:
        return
    by_key: dict[str, set[str]] = {}
    for sample in samples:
        by_key.setdefault(space.search_space.architecture_key(sample), set()).add(str(space.freeze(sample)))
    assert all(len(models) == 1 for models in by_key.values())  # one key: one model
    models = [next(iter(m)) for m in by_key.values()]
    assert len(set(models)) == len(models)  # one model: one key
    assert space.size() == len(by_key) == len(list(space.grid()))

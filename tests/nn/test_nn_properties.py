"""Properties over randomly generated model spaces.

A *recipe* (drawn by hypothesis) describes a stack of stages over a feature vector:
Linear layers with choice widths (auto, explicit or shared labels), LayerChoices,
Repeats (module, factory or list blocks), InputChoices and Dropouts with choices.
``RecipeNet(recipe)`` builds the space; ``expected_params`` computes the frozen
model's parameter count by arithmetic, independently of archsmith.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import archsmith
import archsmith.nn as nn
from archsmith.space import Leaf

from ._helpers import assert_plain, count_params

IN_FEATURES = 3
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

widths = st.lists(st.integers(1, 5), min_size=1, max_size=3, unique=True)
linear_stage = st.tuples(st.just("linear"), widths, st.sampled_from(["auto", "explicit", "shared"]))
layer_choice_stage = st.tuples(st.just("layer_choice"), st.integers(1, 4), st.booleans())
repeat_stage = st.tuples(
    st.just("repeat"), st.integers(0, 2), st.integers(0, 2), st.sampled_from(["module", "factory", "list"])
).map(lambda s: (s[0], min(s[1], s[2]), max(s[1], s[2]), s[3]))
input_stage = st.tuples(
    st.just("input"), st.integers(1, 3), st.integers(0, 3), st.sampled_from(["sum", "mean", "concat"])
)
dropout_stage = st.tuples(st.just("dropout"))
stage = st.one_of(linear_stage, layer_choice_stage, repeat_stage, input_stage, dropout_stage)
recipes = st.tuples(st.lists(stage, max_size=5).map(tuple), widths.map(tuple))

LAYER_KEYS = ["id", "relu", "lin", "tanh"]


def input_arguments(stage: tuple[Any, ...]) -> tuple[int, int | None, str]:
    _, n, k, reduction = stage
    n_chosen = None if k == 0 else min(k, n)
    if n_chosen is None and reduction == "concat":
        reduction = "sum"  # concat of any number of inputs has no static width
    return n, n_chosen, reduction


def label_of(value: Any) -> str | None:
    return value.label if isinstance(value, Leaf) else None


class RecipeNet(nn.ModelSpace):
    def __init__(self, recipe: tuple[Any, ...]) -> None:
        super().__init__()
        stages, out_widths = recipe
        cur: Any = IN_FEATURES
        self.kinds: list[tuple[Any, ...]] = []
        self.labels: list[str | None] = []  # the label of each stage's decision (in the space)
        self.stages = nn.ModuleList()
        for idx, st_ in enumerate(stages):
            kind = st_[0]
            if kind == "linear":
                _, cands, mode = st_
                if mode == "shared":
                    w = nn.choice("shared", [2, 3])
                else:
                    w = nn.ValueChoice(list(cands), label=f"lin{idx}" if mode == "explicit" else None)
                module = nn.Linear(cur, w)
                self.labels.append(label_of(w))
                cur = w
            elif kind == "layer_choice":
                _, n, as_dict = st_
                width = cur
                cands = [nn.Identity(), nn.ReLU(), lambda width=width: nn.Linear(width, width), nn.Tanh][:n]
                module = nn.LayerChoice(
                    dict(zip(LAYER_KEYS, cands)) if as_dict else cands, label=f"lc{idx}" if idx % 2 else None
                )
                self.labels.append(label_of(getattr(module, "choice", None)))
            elif kind == "repeat":
                _, low, high, blocks = st_
                width = cur
                if blocks == "module":
                    block: Any = nn.Linear(width, width)
                elif blocks == "factory":

                    def block(i: int, width: Any = width) -> nn.Module:
                        hidden = nn.choice(None, [1, 2])
                        return nn.Sequential(nn.Linear(width, hidden), nn.ReLU(), nn.Linear(hidden, width))

                else:
                    block = [nn.Linear(width, width) if i % 2 == 0 else nn.ReLU() for i in range(high)]
                module = nn.Repeat(block, (low, high), label=f"rep{idx}" if idx % 2 else None)
                self.labels.append(getattr(module, "label", None))
            elif kind == "input":
                n, n_chosen, reduction = input_arguments(st_)
                module = nn.InputChoice(n, n_chosen, reduction, label=f"in{idx}" if idx % 2 else None)
                self.labels.append(getattr(module, "label", None))
                if reduction == "concat":
                    cur = cur * n_chosen
            else:
                p = nn.choice(None, [0.0, 0.5])
                module = nn.Dropout(p)
                self.labels.append(label_of(p))
            self.kinds.append(st_)
            self.stages.append(module)
        self.head = nn.Linear(cur, nn.choice("out", list(out_widths)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for st_, module in zip(self.kinds, self.stages):
            if st_[0] == "input":
                x = module([x * (i + 1) for i in range(st_[1])])
            else:
                x = module(x)
        return self.head(x)


def expected_params(recipe: tuple[Any, ...], labels: list[str | None], sample: dict[str, Any]) -> int:
    stages, _ = recipe
    cur, params = IN_FEATURES, 0
    for st_, label in zip(stages, labels):
        kind = st_[0]
        if kind == "linear":
            w = sample[label]
            params += cur * w + w
            cur = w
        elif kind == "layer_choice":
            if sample[label] in (2, "lin"):
                params += cur * cur + cur
        elif kind == "repeat":
            depth = sample[label]
            for i in range(depth):
                if st_[3] == "module" or (st_[3] == "list" and i % 2 == 0):
                    params += cur * cur + cur
                elif st_[3] == "factory":
                    h = sample[f"{label}/{i}/choice_1"]
                    params += 2 * cur * h + h + cur
        elif kind == "input":
            _, n_chosen, reduction = input_arguments(st_)
            if reduction == "concat":
                cur *= n_chosen
    out = sample["out"]
    return params + cur * out + out


@SETTINGS
@given(recipe=recipes, seed=st.integers(0, 2**16))
def test_random_samples_validate_freeze_and_run(recipe: tuple[Any, ...], seed: int) -> None:
    space = RecipeNet(recipe)
    sample = space.random(seed=seed)
    assert set(sample) == set(space.search_space)
    assert space.validate(sample) == sample
    assert json.loads(json.dumps(sample)) == sample  # a sample is plain JSON
    model = space.freeze(sample)
    out = model(torch.randn(2, IN_FEATURES))
    assert out.shape == (2, sample["out"])
    assert_plain(model)
    assert count_params(model) == expected_params(recipe, space.labels, sample)


GRID_LIMIT = 400


@SETTINGS
@given(recipe=recipes)
def test_grid_yields_exactly_size_distinct_valid_samples(recipe: tuple[Any, ...]) -> None:
    space = RecipeNet(recipe)
    size = space.size()
    assert isinstance(size, int) and size >= 1
    grid = list(itertools.islice(space.grid(), GRID_LIMIT + 1))
    if size <= GRID_LIMIT:  # small spaces: the whole grid
        assert len(grid) == size
    else:
        assert len(grid) == GRID_LIMIT + 1
    assert len({json.dumps(s, sort_keys=True) for s in grid}) == len(grid)
    for sample in grid:
        assert space.validate(sample) == sample
    for sample in grid[:: max(1, len(grid) // 3)]:
        assert space.freeze(sample)(torch.zeros(1, IN_FEATURES)).shape == (1, sample["out"])


@SETTINGS
@given(recipe=recipes)
def test_labels_are_deterministic(recipe: tuple[Any, ...]) -> None:
    first, second = RecipeNet(recipe), RecipeNet(recipe)
    assert list(first.search_space) == list(second.search_space)
    assert [leaf.describe() for leaf in first.search_space.values()] == [
        leaf.describe() for leaf in second.search_space.values()
    ]
    assert first.labels == second.labels
    assert first.size() == second.size()


@SETTINGS
@given(recipe=recipes, seed=st.integers(0, 2**16))
def test_fixed_arch_and_freeze_agree(recipe: tuple[Any, ...], seed: int) -> None:
    space = RecipeNet(recipe)
    sample = space.random(seed=seed)
    with archsmith.fixed_arch(sample):
        built = RecipeNet(recipe)
    frozen = space.freeze(sample)
    assert repr(built) == repr(frozen)
    assert count_params(built) == count_params(frozen)


@SETTINGS
@given(recipe=recipes)
def test_default_sample_is_valid_and_freezes(recipe: tuple[Any, ...]) -> None:
    space = RecipeNet(recipe)
    default = space.default()
    assert space.validate(default) == default
    assert space.freeze(default)(torch.zeros(1, IN_FEATURES)).shape == (1, default["out"])

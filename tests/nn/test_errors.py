"""Bad input: every error is raised where the mistake is made and names the label
or argument at fault."""

from __future__ import annotations

import pytest
import torch

import archsmith
import archsmith.nn as nn
from archsmith import ExpressionError, LabelConflictError, NotFrozenError, SampleError, SpaceError


def identity_factory(c: int) -> nn.Module:
    return nn.Identity()


def projection(c_in: int, c_out: int) -> nn.Module:
    return nn.Conv2d(c_in, c_out, 1)


# Empty candidate lists ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "pattern"),
    [
        (lambda: nn.LayerChoice([], label="empty_lc"), r"LayerChoice 'empty_lc'.*empty"),
        (lambda: nn.LayerChoice({}, label="empty_lc"), r"LayerChoice 'empty_lc'.*empty"),
        (lambda: nn.choice("empty_c", []), r"'empty_c'.*empty"),
        (lambda: nn.ValueChoice([], label="empty_vc"), r"'empty_vc'.*empty"),
        (lambda: nn.Cell([], 2, label="empty_cell"), r"Cell 'empty_cell'.*empty"),
        (lambda: nn.NasBench201Cell({}, 2, 2, label="empty_201"), r"NasBench201Cell 'empty_201'.*empty"),
        (
            lambda: nn.NasBench101Cell([], 2, 2, projection, label="empty_101"),
            r"NasBench101Cell 'empty_101'.*candidate list is empty",
        ),
        (lambda: nn.Repeat([], (1, 2), label="empty_rep"), r"Repeat 'empty_rep'.*0 blocks"),
    ],
)
def test_empty_candidates(build, pattern: str) -> None:
    with pytest.raises(SpaceError, match=pattern):
        build()


# Bad candidates -----------------------------------------------------------------------


def test_layer_choice_candidates_must_be_modules_or_factories() -> None:
    with pytest.raises(SpaceError, match=r"LayerChoice 'bad_lc': candidate 1 is 3"):
        nn.LayerChoice([nn.Identity(), 3], label="bad_lc")
    with pytest.raises(SpaceError, match=r"LayerChoice 'bad_f'.*returned 'x', not a torch.nn.Module"):
        nn.LayerChoice([lambda: "x"], label="bad_f")
    with pytest.raises(SpaceError, match=r"LayerChoice 'bad_keys'.*strings.*\[1\]"):
        nn.LayerChoice({1: nn.Identity()}, label="bad_keys")
    with pytest.raises(SpaceError, match=r"LayerChoice 'bad_type'.*list or a dict"):
        nn.LayerChoice(nn.Identity(), label="bad_type")


def test_layer_choice_factory_errors_also_when_frozen() -> None:
    with (
        pytest.raises(SpaceError, match=r"LayerChoice 'frozen_bad'.*not a torch.nn.Module"),
        archsmith.fixed_arch({"frozen_bad": 0}),
    ):
        nn.LayerChoice([lambda: 42], label="frozen_bad")


def test_non_json_value_choice_candidates() -> None:
    with pytest.raises(SpaceError, match=r"'modules'.*not a JSON value.*LayerChoice"):
        nn.choice("modules", [nn.Identity(), nn.ReLU()])


def test_nb101_and_nb201_need_factories() -> None:
    with pytest.raises(SpaceError, match=r"NasBench101Cell 'nb1_mod'.*factories"):
        nn.NasBench101Cell([nn.Identity()], 2, 2, projection, label="nb1_mod")
    with pytest.raises(SpaceError, match=r"NasBench101Cell 'nb1_proj'.*projection"):
        nn.NasBench101Cell([identity_factory], 2, 2, None, label="nb1_proj")
    with pytest.raises(SpaceError, match=r"NasBench201Cell 'nb2_mod'.*factory"):
        nn.NasBench201Cell([nn.Identity()], 2, 2, label="nb2_mod")


# Duplicate labels -----------------------------------------------------------------------


def test_conflicting_labels() -> None:
    class Conflict(nn.ModelSpace):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.LayerChoice([nn.Identity(), nn.ReLU()], label="same")
            self.b = nn.LayerChoice([nn.Identity(), nn.ReLU(), nn.Tanh()], label="same")

    with pytest.raises(LabelConflictError, match=r"label 'same' is used by two different choices") as info:
        Conflict()
    assert str(info.value).count(__file__) == 2
    assert isinstance(info.value, SpaceError)


def test_empty_label() -> None:
    with pytest.raises(SpaceError, match="label must be a non-empty string"):
        nn.LayerChoice([nn.Identity()], label="")
    with pytest.raises(SpaceError, match="label must be a non-empty string"):
        nn.InputChoice(2, label="")


# InputChoice ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "pattern"),
    [
        ((3, 4), r"InputChoice 'ic': n_chosen=4 with n_candidates=3"),
        ((3, 0), r"InputChoice 'ic': n_chosen=0"),
        ((0, 1), r"InputChoice 'ic': n_candidates must be a positive integer, got 0"),
        ((2.0, 1), r"InputChoice 'ic': n_candidates must be a positive integer, got 2.0"),
    ],
)
def test_input_choice_counts(args, pattern: str) -> None:
    with pytest.raises(SpaceError, match=pattern):
        nn.InputChoice(*args, label="ic")


def test_unknown_reduction() -> None:
    with pytest.raises(
        SpaceError, match=r"InputChoice 'red': unknown reduction 'max'.*'sum', 'mean', 'concat', 'none'"
    ):
        nn.InputChoice(3, 2, reduction="max", label="red")
    with (
        pytest.raises(SpaceError, match=r"InputChoice 'red_frozen': unknown reduction 'prod'"),
        archsmith.fixed_arch({"red_frozen": 0}),
    ):
        nn.InputChoice(3, 1, reduction="prod", label="red_frozen")


# Repeat ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("depth", "pattern"),
    [
        ((3, 1), r"Repeat 'rep': depth range \(3, 1\) is invalid"),
        ((-1, 2), r"Repeat 'rep': depth range \(-1, 2\) is invalid"),
        (-1, r"Repeat 'rep': depth must be >= 0, got -1"),
        ((1, 2, 3), r"Repeat 'rep': depth must be an int, a \(min, max\) pair"),
        ("3", r"Repeat 'rep': depth must be an int"),
        (2.5, r"Repeat 'rep': depth must be an int"),
        ([1, 2], r"Repeat 'rep': depth must be an int"),
    ],
)
def test_invalid_depth(depth, pattern: str) -> None:
    with pytest.raises(SpaceError, match=pattern):
        nn.Repeat(nn.Identity(), depth, label="rep")


def test_invalid_depth_choices() -> None:
    with pytest.raises(SpaceError, match=r"Repeat 'rep_c': a depth choice must have non-negative integer candidates"):
        nn.Repeat(nn.Identity(), nn.choice("d_neg", [-1, 2]), label="rep_c")
    with pytest.raises(SpaceError, match=r"Repeat 'rep_c': a depth choice"):
        nn.Repeat(nn.Identity(), nn.uniform("d_float", 1, 3), label="rep_c")
    with pytest.raises(SpaceError, match=r"Repeat 'rep_e': a depth expression must read discrete choices only"):
        nn.Repeat(nn.Identity(), archsmith.space.to_int(nn.uniform("d_expr", 1, 3)) + 1, label="rep_e")
    many = [nn.choice(f"d{k}", list(range(10))) for k in range(5)]
    with pytest.raises(SpaceError, match=r"Repeat 'rep_many': .* 100,000 combinations .*give the depth as one choice"):
        nn.Repeat(nn.Identity(), many[0] + many[1] + many[2] + many[3] + many[4], label="rep_many")


def test_repeat_with_too_few_blocks() -> None:
    with pytest.raises(SpaceError, match=r"Repeat 'short': 2 blocks given but the depth can reach 3"):
        nn.Repeat([nn.Identity(), nn.Identity()], (1, 3), label="short")


def test_repeat_blocks_of_the_wrong_type() -> None:
    with pytest.raises(SpaceError, match=r"Repeat 'wrong_blocks': blocks must be"):
        nn.Repeat(3, 2, label="wrong_blocks")


# Cells and AutoActivation ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"num_nodes": 0}, r"Cell 'c': num_nodes must be a positive integer, got 0"),
        ({"num_nodes": 2, "num_ops_per_node": 0}, r"Cell 'c': num_ops_per_node must be a positive integer"),
        ({"num_nodes": 2, "num_predecessors": 0}, r"Cell 'c': num_predecessors must be a positive integer"),
        ({"num_nodes": 2, "merge_op": "sum"}, r"Cell 'c': unknown merge_op 'sum'.*'all', 'loose_end'"),
    ],
)
def test_cell_arguments(kwargs, pattern: str) -> None:
    with pytest.raises(SpaceError, match=pattern):
        nn.Cell([nn.Identity()], label="c", **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"max_num_nodes": 1}, r"'nb1': max_num_nodes must be an integer >= 2, got 1"),
        ({"max_num_edges": 0}, r"'nb1': max_num_edges must be an integer >= 1, got 0"),
        ({"in_features": 0}, r"'nb1': in_features must be an integer >= 1, got 0"),
    ],
)
def test_nb101_arguments(kwargs, pattern: str) -> None:
    args = {"in_features": 2, "out_features": 2, **kwargs}
    with pytest.raises(SpaceError, match=pattern):
        nn.NasBench101Cell([identity_factory], projection=projection, label="nb1", **args)


def test_nb201_and_autoactivation_arguments() -> None:
    with pytest.raises(SpaceError, match=r"NasBench201Cell 'nb2': num_tensors must be an integer >= 2, got 1"):
        nn.NasBench201Cell([lambda i, o: nn.Identity()], 2, 2, num_tensors=1, label="nb2")
    with pytest.raises(SpaceError, match=r"AutoActivation 'aa': unit_num must be a positive integer, got 0"):
        nn.AutoActivation(0, label="aa")


# Samples -----------------------------------------------------------------------------------


class Net(nn.ModelSpace):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(2, nn.choice("width", [4, 8]))
        self.op = nn.LayerChoice({"relu": nn.ReLU(), "tanh": nn.Tanh()}, label="op")
        self.inp = nn.InputChoice(3, 2, label="inp")
        self.rep = nn.Repeat(nn.Identity(), (0, 2), label="depth")
        self.drop = nn.Dropout(nn.uniform("p", 0.0, 0.5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.op(self.fc(x)))


def test_freeze_reports_every_problem_at_once() -> None:
    bad = {"width": 5, "op": 0, "inp": [0], "p": 0.9, "extra": 1}  # "depth" is missing
    with pytest.raises(SampleError) as info:
        Net().freeze(bad)
    problems = info.value.problems
    assert len(problems) == 6
    text = "\n".join(problems)
    assert "'width': 5 is out of range" in text
    assert "'op': wrong type int" in text
    assert "'inp': 1 chosen; expected" in text
    assert "'depth': missing" in text
    assert "'p': 0.9 is out of range" in text
    assert "set aside as not decisions of this space: ['extra'] (is one of them misspelt?)" in text
    assert "(6 problems)" in str(info.value)
    with pytest.raises(SampleError, match="'extra': extra label"):
        Net().validate(bad)  # validate itself still names labels outside the space


def test_validate_reports_wrong_types() -> None:
    space = Net()
    sample = {"width": "8", "op": "relu", "inp": 1, "depth": 1.5, "p": "0.1"}
    with pytest.raises(SampleError) as info:
        space.validate(sample)
    assert [p.split(":")[0] for p in info.value.problems] == ["'width'", "'inp'", "'depth'", "'p'"]
    assert all("wrong type" in p or "out of range" in p for p in info.value.problems)


def test_a_sample_that_is_not_a_dict() -> None:
    with pytest.raises(SampleError, match="dict of label -> value"):
        Net().freeze([("width", 4)])  # type: ignore[arg-type]


def test_fixed_arch_names_the_missing_or_wrong_label() -> None:
    with pytest.raises(SampleError, match=r"'op': missing"), archsmith.fixed_arch({"width": 4}):
        Net()
    with pytest.raises(SampleError, match=r"'width': 5 is out of range"), archsmith.fixed_arch({"width": 5}):
        Net()


def test_fixed_arch_file_errors(tmp_path) -> None:
    missing = tmp_path / "missing.json"
    with pytest.raises(SpaceError, match=r"missing\.json' does not exist"), archsmith.fixed_arch(missing):
        pass
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(SpaceError, match=r"broken\.json' is not valid JSON"), archsmith.fixed_arch(broken):
        pass


# Running and freezing at the wrong time -------------------------------------------------------


def test_calling_an_unfrozen_space() -> None:
    with pytest.raises(NotFrozenError, match=r"Linear\(out_features=Categorical\(\[4, 8\], label='width'\)\)"):
        Net()(torch.zeros(1, 2))
    assert issubclass(NotFrozenError, RuntimeError)


def test_freezing_a_frozen_model() -> None:
    model = Net().freeze({"width": 4, "op": "relu", "inp": [0, 1], "depth": 0, "p": 0.0})
    with pytest.raises(SpaceError, match="Net is already a frozen model"):
        model.freeze({})


# Choices used as values in __init__ -------------------------------------------------------------


def _space_with(statement):
    class Misused(nn.ModelSpace):
        def __init__(self) -> None:
            super().__init__()
            statement(nn.choice("misused", [1, 2]))

    return Misused


def _in_if(c) -> None:
    if c > 1:
        pass


def _in_range(c) -> None:
    for _ in range(c):
        pass


@pytest.mark.parametrize(
    ("statement", "pattern"),
    [
        (_in_if, r"no truth value.*`if`.*condition"),
        (_in_range, r"is a choice, not a int.*range\(\)"),
        (lambda c: int(c), r"is a choice, not a int"),
        (lambda c: float(c), r"is a choice, not a float"),
        (lambda c: list(c), r"cannot be iterated"),
        (lambda c: len(c), r"has no length"),
        (lambda c: max(c, 2), r"no truth value"),
        (lambda c: [0, 1][c], r"is a choice, not a int"),
        (lambda c: torch.nn.Linear(2, c) if c == 2 else None, r"no truth value"),
    ],
)
def test_choice_used_as_a_value_in_init(statement, pattern: str) -> None:
    with pytest.raises(ExpressionError, match=pattern) as info:
        _space_with(statement)()
    assert "Categorical([1, 2], label='misused')" in str(info.value)
    assert isinstance(info.value, TypeError)


def test_the_same_code_runs_once_frozen() -> None:
    Misused = _space_with(_in_range)
    with archsmith.fixed_arch({"misused": 2}):
        Misused()  # the choice is a plain 2 here

"""``LayerChoice`` (one module out of several) and ``InputChoice`` (some of the
candidate input tensors)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Union

import torch

from archsmith.space import (
    Categorical,
    CategoricalMultiple,
    Constraint,
    Leaf,
    SpaceError,
    auto_label,
    fixed_context,
)

from ._frozen import REDUCTIONS, ChosenInputs
from ._mutable_module import Branch, build_candidate, split_candidates
from ._primitive import Primitive

Candidate = Union[torch.nn.Module, Callable[[], torch.nn.Module]]


def _keys_and_candidates(candidates: Any, label: str) -> tuple[list[Any], list[Any]]:
    what = f"LayerChoice {label!r}"
    names, cands = split_candidates(candidates, what, "modules (or module factories)")
    if names is not None and not all(isinstance(k, str) for k in names):
        bad = [k for k in names if not isinstance(k, str)]
        raise SpaceError(f"{what}: dict keys name the candidates in samples and must be strings, got {bad!r}")
    for k, c in zip(names or range(len(cands)), cands):
        if not isinstance(c, torch.nn.Module) and not callable(c):
            raise SpaceError(f"{what}: candidate {k!r} is {c!r}, not a module or a function returning one")
    return (names if names is not None else list(range(len(cands)))), cands


class LayerIndex(Categorical):
    """The decision of a ``LayerChoice`` over a list: the index of the chosen
    candidate. NNI 2.x wrote it as the candidate's name, the index as a string
    (``"1"``); that form is accepted and read as the index.

    >>> leaf = LayerIndex([0, 1, 2], label="op")
    >>> leaf.resolve("1"), leaf.resolve(2)
    (1, 2)
    """

    def check(self, value: Any) -> str | None:
        return super().check(_index_from_name(value))

    def canonical(self, value: Any) -> Any:
        return super().canonical(_index_from_name(value))


def _index_from_name(value: Any) -> Any:
    return int(value) if isinstance(value, str) and value.isdigit() and value == str(int(value)) else value


def _layer_leaf(keys: list[Any], label: str, prior: Sequence[float] | None) -> Categorical:
    if keys == list(range(len(keys))):  # a list of candidates: the sample holds the index
        return LayerIndex(keys, label=label, prior=prior)
    return Categorical(keys, label=label, prior=prior)


class LayerChoice(Primitive):
    """One module out of ``candidates`` (a list: the sample holds the index; a dict:
    the key). A candidate may be a module or a zero-argument factory; factories of
    unchosen candidates are never called when the space is frozen. ``prior``: one
    probability per candidate, what random sampling draws by.

    >>> import archsmith.nn as nn
    >>> op = nn.LayerChoice({"conv": nn.Conv2d(8, 8, 3, padding=1), "id": nn.Identity()}, label="op")
    >>> op.choice.values
    ['conv', 'id']
    """

    kind: ClassVar[str] = "layer_choice"

    @classmethod
    def create_frozen(
        cls, candidates: Any, *, label: str | None = None, prior: Sequence[float] | None = None
    ) -> torch.nn.Module:
        label = auto_label(label, cls.kind)
        keys, cands = _keys_and_candidates(candidates, label)
        key = _layer_leaf(keys, label, prior)  # resolves to the sample's value here
        return build_candidate(cands[keys.index(key)], f"{label}/{key}", f"LayerChoice {label!r}")

    def __init__(self, candidates: Any, *, label: str | None = None, prior: Sequence[float] | None = None) -> None:
        super().__init__()
        self.label = auto_label(label, self.kind)
        self.names, cands = _keys_and_candidates(candidates, self.label)
        self.choice = _layer_leaf(self.names, self.label, prior)
        # Submodules are named by position: a key may be any string ("train", "a.b").
        for i, (key, cand) in enumerate(zip(self.names, cands)):
            self.add_module(str(i), build_candidate(cand, f"{self.label}/{key}", f"LayerChoice {self.label!r}"))

    def own_leaves(self) -> list[Leaf]:
        return [self.choice]

    def branches(self) -> list[Branch]:
        return [(candidate, self.label, [key]) for key, candidate in zip(self.names, self.candidates)]

    @property
    def candidates(self) -> list[torch.nn.Module]:
        return [self._modules[str(i)] for i in range(len(self.names))]  # type: ignore[misc]

    def __getitem__(self, key: Any) -> torch.nn.Module:
        """The candidate with this key (dict) or index (list)."""
        if key not in self.names:
            raise KeyError(f"LayerChoice {self.label!r} has no candidate {key!r}; candidates: {self.names!r}")
        return self._modules[str(self.names.index(key))]  # type: ignore[return-value]

    def __len__(self) -> int:
        return len(self.names)

    def describe(self) -> str:
        return f"LayerChoice({self.label!r}, candidates={self.names!r})"


def _check_input_choice(n_candidates: Any, n_chosen: Any, reduction: Any, label: str) -> None:
    if isinstance(n_candidates, bool) or not isinstance(n_candidates, int) or n_candidates < 1:
        raise SpaceError(f"InputChoice {label!r}: n_candidates must be a positive integer, got {n_candidates!r}")
    if n_chosen is not None and (
        isinstance(n_chosen, bool) or not isinstance(n_chosen, int) or not 1 <= n_chosen <= n_candidates
    ):
        raise SpaceError(
            f"InputChoice {label!r}: n_chosen={n_chosen!r} with n_candidates={n_candidates}; "
            f"use an integer between 1 and {n_candidates}, or None for any number"
        )
    if reduction not in REDUCTIONS:
        raise SpaceError(f"InputChoice {label!r}: unknown reduction {reduction!r}; use one of {list(REDUCTIONS)}")


class InputIndex(Categorical):
    """The decision of an ``InputChoice`` with ``n_chosen=1``: the index of the chosen
    input. NNI writes it as a one-element list (``[1]``); that form is accepted and
    read as the index, so an NNI sample validates, freezes and loads unchanged.

    >>> leaf = InputIndex([0, 1, 2], label="inp")
    >>> leaf.resolve([1]), leaf.resolve(2)
    (1, 2)
    """

    def check(self, value: Any) -> str | None:
        if isinstance(value, (list, tuple)):
            if len(value) != 1:
                return (
                    f"{value!r} names {len(value)} inputs but this InputChoice chooses one (n_chosen=1); "
                    f"give one index of {self.values!r} (or NNI's one-element list)"
                )
            problem = super().check(value[0])
            return None if problem is None else f"in {value!r}: {problem}"
        return super().check(value)

    def canonical(self, value: Any) -> Any:
        if isinstance(value, (list, tuple)) and len(value) == 1:
            value = value[0]
        return super().canonical(value)


def _input_leaf(n_candidates: int, n_chosen: int | None, label: str, prior: Sequence[float] | None = None) -> Any:
    if n_chosen == 1:
        return InputIndex(list(range(n_candidates)), label=label, prior=prior)
    if prior is not None:  # a prior over subsets is not one probability per input
        raise SpaceError(f"InputChoice {label!r}: prior= needs n_chosen=1, got n_chosen={n_chosen!r}")
    return CategoricalMultiple(
        list(range(n_candidates)),
        n_chosen=n_chosen,
        label=label,
        default=[n_candidates - 1] if n_chosen is None else None,
    )


class InputChoice(Primitive):
    """Choose ``n_chosen`` of ``n_candidates`` input tensors (any non-empty subset if
    ``None``) and reduce them with ``sum``, ``mean``, ``concat`` or ``none``.
    Call it with the list of candidate tensors. ``prior`` (``n_chosen=1`` only): one
    probability per input, what random sampling draws by."""

    kind: ClassVar[str] = "input_choice"

    @classmethod
    def create_frozen(
        cls,
        n_candidates: int,
        n_chosen: int | None = 1,
        reduction: str = "sum",
        *,
        label: str | None = None,
        prior: Sequence[float] | None = None,
    ) -> ChosenInputs:
        label = auto_label(label, cls.kind)
        _check_input_choice(n_candidates, n_chosen, reduction, label)
        value = _input_leaf(n_candidates, n_chosen, label, prior)
        chosen = [value] if n_chosen == 1 else list(value)
        if not chosen:
            raise SpaceError(f"InputChoice {label!r}: the sample chooses no input; choose at least one")
        assert fixed_context() is not None
        return ChosenInputs(chosen, reduction)

    def __init__(
        self,
        n_candidates: int,
        n_chosen: int | None = 1,
        reduction: str = "sum",
        *,
        label: str | None = None,
        prior: Sequence[float] | None = None,
    ) -> None:
        super().__init__()
        self.label = auto_label(label, self.kind)
        _check_input_choice(n_candidates, n_chosen, reduction, self.label)
        self.n_candidates, self.n_chosen, self.reduction = n_candidates, n_chosen, reduction
        self.choice = _input_leaf(n_candidates, n_chosen, self.label, prior)

    def own_leaves(self) -> list[Leaf]:
        return [self.choice]

    def own_constraints(self) -> list[Constraint]:
        if self.n_chosen is not None:
            return []
        label = self.label
        return [Constraint(lambda s: len(s[label]) > 0, name=f"{label} chooses at least one input", labels=[label])]

    def describe(self) -> str:
        return f"InputChoice({self.label!r}, n_candidates={self.n_candidates}, n_chosen={self.n_chosen})"

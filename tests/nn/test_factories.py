"""``wants_arguments``: whether a candidate factory takes NNI's indices. Its answers
are cached by what a signature depends on, so equal answers must come from equal
signatures only."""

from __future__ import annotations

import functools
from typing import Any

import torch

from archsmith.nn._mutable_module import wants_arguments


def _three(node: int, op: int, inp: int | None) -> torch.nn.Module:
    return torch.nn.Identity()


def _none() -> torch.nn.Module:
    return torch.nn.Identity()


class _Builder:
    def build(self, node: int, op: int, inp: int | None, *, channels: int) -> torch.nn.Module:
        return torch.nn.Identity()


def test_plain_functions_and_classes() -> None:
    assert wants_arguments(_three) and wants_arguments(_three)  # the second answer from the cache
    assert not wants_arguments(_none) and not wants_arguments(_none)
    assert not wants_arguments(torch.nn.Identity)
    assert wants_arguments(torch.nn.Linear)


def test_lambdas_sharing_code_but_not_defaults() -> None:
    made = [(lambda c: lambda x=c: torch.nn.Identity())(c) for c in range(3)]
    assert not any(wants_arguments(f) for f in made)
    required = [(lambda c: lambda x: torch.nn.Identity())(c) for c in range(3)]
    assert all(wants_arguments(f) for f in required)


def test_partials_by_what_they_bind() -> None:
    builder = _Builder()
    assert wants_arguments(functools.partial(builder.build, channels=8))
    assert wants_arguments(functools.partial(_Builder().build, channels=16))  # another bound method
    assert not wants_arguments(functools.partial(_three, 0, 1, 2))
    assert wants_arguments(functools.partial(_three, 0))


def test_wrapped_functions_read_the_wrapped_signature() -> None:
    def decorate(fn: Any) -> Any:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            return fn(*args, **kwargs)

        return wrapper

    assert not wants_arguments(decorate(_none))
    assert wants_arguments(decorate(_three))

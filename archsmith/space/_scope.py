"""Label scopes and the fixed-sample context.

Auto labels are ``<prefix><kind>_<n>``: a per-scope, per-kind counter, so building
the same space twice gives the same labels, and a factory that is not called in one
build (an unchosen candidate) cannot shift the labels made elsewhere, because every
candidate is built in a scope of its own.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ._errors import LabelConflictError, SpaceError

if TYPE_CHECKING:
    from ._leaf import Leaf


@dataclass
class LabelScope:
    """A namespace for automatic labels; children share the root's registry."""

    prefix: str = ""
    registry: dict[str, Leaf] | None = None
    counters: dict[str, int] = field(default_factory=dict)

    def next_label(self, kind: str) -> str:
        n = self.counters.get(kind, 0) + 1
        self.counters[kind] = n
        return f"{self.prefix}{kind}_{n}"

    def child(self, name: str) -> LabelScope:
        return LabelScope(prefix=f"{self.prefix}{name}/", registry=self.registry)

    def at(self, prefix: str) -> LabelScope:
        """A scope whose labels start with ``prefix/`` (an absolute path)."""
        return LabelScope(prefix=f"{prefix}/", registry=self.registry)

    def register(self, leaf: Leaf) -> None:
        if self.registry is None:
            return
        known = self.registry.get(leaf.label)
        if known is None:
            self.registry[leaf.label] = leaf
        elif known is not leaf and not known.same_decision(leaf):
            raise label_conflict(known, leaf)


def label_conflict(a: Leaf, b: Leaf) -> LabelConflictError:
    return LabelConflictError(
        f"label {a.label!r} is used by two different choices: {a!r} (created at "
        f"{a.created_at}) and {b!r} (created at {b.created_at}). Give one of them "
        "another label, or give both the same candidates (and prior) to share one decision."
    )


# The module-level scope labels choices made outside any model space.
_GLOBAL_SCOPE = LabelScope(prefix="global/")
_scope: contextvars.ContextVar[LabelScope | None] = contextvars.ContextVar("archsmith_label_scope", default=None)


@dataclass
class FixedContext:
    """The sample a frozen build resolves its choices from."""

    sample: Mapping[str, Any]
    used: set[str] = field(default_factory=set)


_fixed: contextvars.ContextVar[FixedContext | None] = contextvars.ContextVar("archsmith_fixed_sample", default=None)


def current_scope() -> LabelScope | None:
    return _scope.get()


def auto_label(label: str | None, kind: str) -> str:
    """Return ``label`` checked, or the next automatic label of ``kind``."""
    if label is None:
        return (_scope.get() or _GLOBAL_SCOPE).next_label(kind)
    if not isinstance(label, str) or not label:
        raise SpaceError(f"label must be a non-empty string, got {label!r}")
    return label


@contextlib.contextmanager
def label_scope(name: str | None = None, *, root: bool = False) -> Iterator[LabelScope]:
    """Enter a label scope.

    ``root=True`` (or no enclosing scope) starts a fresh namespace with its own
    registry; otherwise a child scope ``<parent prefix><name>/`` is entered.
    """
    parent = _scope.get()
    if root or parent is None:
        prefix = f"{name}/" if name else ""
        scope = LabelScope(prefix=prefix, registry={})
    else:
        scope = parent.child(name) if name else parent
    token = _scope.set(scope)
    try:
        yield scope
    finally:
        _scope.reset(token)


class sub_scope:
    """``with sub_scope(prefix):`` labels made inside get the absolute prefix
    ``prefix/`` (e.g. the label of the primitive building a candidate, plus the
    candidate's key)."""

    __slots__ = ("prefix", "token")

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def __enter__(self) -> LabelScope:
        parent = _scope.get()
        scope = parent.at(self.prefix) if parent is not None else LabelScope(prefix=f"{self.prefix}/")
        self.token = _scope.set(scope)
        return scope

    def __exit__(self, *exc: object) -> None:
        _scope.reset(self.token)


def fixed_context() -> FixedContext | None:
    return _fixed.get()


@contextlib.contextmanager
def fixed_sample(sample: Mapping[str, Any]) -> Iterator[FixedContext]:
    """Resolve every choice built inside the block from ``sample``."""
    ctx = FixedContext(sample)
    token = _fixed.set(ctx)
    try:
        yield ctx
    finally:
        _fixed.reset(token)


@contextlib.contextmanager
def unfixed() -> Iterator[None]:
    """Build a real space inside a frozen build (used by wrappers that need both)."""
    token = _fixed.set(None)
    try:
        yield
    finally:
        _fixed.reset(token)


_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


def caller_site() -> str:
    """``file:line`` of the first frame outside archsmith (for error messages)."""
    frame = sys._getframe(1)
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame = frame.f_back  # type: ignore[assignment]
    if frame is None:
        return "<unknown>"
    return f"{frame.f_code.co_filename}:{frame.f_lineno}"

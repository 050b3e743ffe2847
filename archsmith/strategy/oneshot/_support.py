"""Which one-shot algorithm can search which hub space: the support table, read off
the registries (hub spaces, one-shot algorithms, mixed ops), never written by hand.

``python -m archsmith.strategy.oneshot._support`` rewrites ``docs/hub_support.md``
from it; ``--check`` only says whether that page is stale.

A hub space is checked at its ``reduced_kwargs`` and, as extra rows, at each entry of
its optional ``oneshot_variants`` class attribute (keyword arguments laid over the
reduced ones), e.g. ``ShuffleNetSpace``'s ``channel_search=True``, whose
width choices change what an algorithm must handle.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from archsmith.nn import ModelSpace

from ._supernet import UnsupportedSpaceError, check_supported, family_factory, unsupported_reason

#: The class attribute a hub space may set to have more argument sets checked.
VARIANTS_ATTRIBUTE = "oneshot_variants"


#: Where ``main`` writes the page, relative to the repository root.
DOC_PATH = Path("docs") / "hub_support.md"


@dataclass(frozen=True)
class SpaceCase:
    """One row of the table: the hub space ``name`` built with ``kwargs``."""

    name: str
    space_class: type[ModelSpace]
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    #: the keyword arguments that differ from the space's ``reduced_kwargs``
    variant: Mapping[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        """``name`` plus the variant's arguments, e.g. ``shufflenet[channel_search=True]``."""
        if not self.variant:
            return self.name
        return f"{self.name}[{','.join(f'{k}={v!r}' for k, v in self.variant.items())}]"

    def build(self) -> ModelSpace:
        return self.space_class(**dict(self.kwargs))


def variants_of(space_class: type) -> tuple[dict[str, Any], ...]:
    """The extra argument sets declared for ``space_class`` (see ``VARIANTS_ATTRIBUTE``)."""
    declared = getattr(space_class, VARIANTS_ATTRIBUTE, None)
    if declared is not None:
        if isinstance(declared, Mapping) or not all(isinstance(v, Mapping) for v in declared):
            raise TypeError(
                f"{space_class.__name__}.{VARIANTS_ATTRIBUTE} must be a sequence of dicts of keyword arguments, "
                f"got {declared!r}"
            )
        return tuple(dict(v) for v in declared)
    return ()


def hub_cases() -> list[SpaceCase]:
    """A case per registered hub space at its ``reduced_kwargs``, then one per variant."""
    # Imported here, not at the top: the hub is a sibling layer, needed only for its table.
    from archsmith.hub import get_space, list_spaces

    cases = []
    for name in list_spaces():
        space_class = get_space(name)
        reduced = dict(space_class.reduced_kwargs)
        cases.append(SpaceCase(name, space_class, reduced))
        for variant in variants_of(space_class):
            cases.append(SpaceCase(name, space_class, {**reduced, **variant}, variant))
    return cases


def algorithms() -> dict[str, type]:
    """Every registered one-shot algorithm, by registry name, sorted."""
    from archsmith.strategy.oneshot import ONESHOT_STRATEGIES  # the package registers them as it loads

    return {name: ONESHOT_STRATEGIES[name] for name in sorted(ONESHOT_STRATEGIES)}


def refusal(space: ModelSpace, algorithm: type) -> str | None:
    """``None`` when ``algorithm`` (a one-shot strategy class) can build a supernet of
    ``space``; else a short reason: each kind of primitive it refuses, how many, and why."""
    try:
        check_supported(space, algorithm.family, algorithm.__name__)  # type: ignore[attr-defined]
    except UnsupportedSpaceError as error:
        return _summary(space, algorithm.family, str(error))  # type: ignore[attr-defined]
    return None


def _summary(space: ModelSpace, family: str, message: str) -> str:
    # check_supported's full message names every module path; the table groups them by kind.
    counts: dict[str, int] = {}
    for line in message.splitlines()[1:]:
        if not line.startswith("  - "):
            continue
        path = line[4:].split(": ", 1)[0]
        try:
            module = space.get_submodule(path)
        except AttributeError:
            kind = "a choice in the model's own code (no layer holds it)"
        else:
            kind = _kind(module, family)
        counts[kind] = counts.get(kind, 0) + 1
    return "; ".join(f"{kind} (x{n})" if n > 1 else kind for kind, n in counts.items()) or message


def _kind(module: torch.nn.Module, family: str) -> str:
    name = type(module).__name__
    reason = unsupported_reason(family, module)
    if reason is not None:
        return f"{name}: {reason}"
    if family_factory(family, module) is None:
        return f"{name}: the algorithm's family has no mixed op for it"
    return name


def support_table(
    cases: Sequence[SpaceCase] | None = None,
    strategies: Mapping[str, type] | None = None,
    build: Callable[[SpaceCase], ModelSpace] = SpaceCase.build,
) -> dict[str, dict[str, str | None]]:
    """``{case id: {algorithm name: None (supported) or the reason it is refused}}``,
    for the hub's cases and the registered algorithms unless given; ``build`` makes
    a case's space (a cache can stand in: checking never changes the space)."""
    cases = hub_cases() if cases is None else cases
    strategies = algorithms() if strategies is None else strategies
    table: dict[str, dict[str, str | None]] = {}
    for case in cases:
        space = build(case)
        table[case.id] = {name: refusal(space, cls) for name, cls in strategies.items()}
    return table


def render_markdown(
    cases: Sequence[SpaceCase] | None = None,
    strategies: Mapping[str, type] | None = None,
    build: Callable[[SpaceCase], ModelSpace] = SpaceCase.build,
) -> str:
    """The whole ``docs/hub_support.md`` page for the current registries."""
    cases = hub_cases() if cases is None else cases
    strategies = algorithms() if strategies is None else strategies
    table = support_table(cases, strategies, build)
    notes: list[str] = []
    header = ["space", "arguments"] + [cls.__name__ for cls in strategies.values()]
    rows = []
    for case in cases:
        cells = [f"`{case.id}`", _arguments(case.kwargs)]
        for name in strategies:
            reason = table[case.id][name]
            if reason is None:
                cells.append("yes")
                continue
            if reason not in notes:
                notes.append(reason)
            cells.append(f"no [{notes.index(reason) + 1}]")
        rows.append(cells)
    lines = [_INTRO.strip(), "", _row(header), _row(["---"] * len(header)), *map(_row, rows), ""]
    if notes:
        lines += ["Why a pair is refused (what `check_supported` names, grouped by kind of primitive):", ""]
        lines += [f"{i}. {_escape(note)}" for i, note in enumerate(notes, 1)]
        lines.append("")
    lines += [_OUTRO.strip(), ""]
    return "\n".join(lines)


def _arguments(kwargs: Mapping[str, Any]) -> str:
    return "<br>".join(f"`{k}={v!r}`" for k, v in kwargs.items()) or "(defaults)"


def _escape(text: str) -> str:
    return text.replace("|", "\\|")


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(_escape(c) for c in cells) + " |"


_INTRO = """
# One-shot algorithms on the hub spaces

Which one-shot algorithm can search which `archsmith.hub` space. This page is
generated from the registries (the hub's spaces, `ONESHOT_STRATEGIES`, and the mixed
ops each algorithm's family registers), never edited by hand: after adding a space,
an algorithm or a mixed op, run

    python -m archsmith.strategy.oneshot._support

(a test fails while the page is stale). Each space is checked at its `reduced_kwargs`
and at the variants it declares in `oneshot_variants` (arguments laid over the
reduced ones). "yes" means `check_supported` accepts the pair: the supernet is built
and trained (`tests/hub/test_oneshot.py` trains every such pair for one epoch and
freezes the exported architecture with the supernet's weights). "no" means the
algorithm refuses the space before any training step, naming each primitive it
cannot handle and the algorithms that can.
"""

_OUTRO = """
The same check, on any space, before a search:

```python
from archsmith.hub import ShuffleNetSpace
from archsmith.strategy.oneshot import Proxyless
from archsmith.strategy.oneshot._support import refusal

space = ShuffleNetSpace(num_labels=10, channel_search=True)
print(refusal(space, Proxyless))   # None: supported; else why not, in short
```
"""


def main(argv: Sequence[str] | None = None) -> int:
    """Write (or with ``--check``, compare) the support page; 1 when stale."""
    parser = argparse.ArgumentParser(description="Regenerate the one-shot x hub support table.")
    parser.add_argument("--output", type=Path, default=DOC_PATH, help=f"the page to write (default: {DOC_PATH})")
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 when the page is stale")
    args = parser.parse_args(argv)
    text = render_markdown()
    current = args.output.read_text(encoding="utf-8") if args.output.exists() else None
    if args.check:
        if current != text:
            print(f"{args.output} is stale: run python -m archsmith.strategy.oneshot._support", file=sys.stderr)
            return 1
        return 0
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

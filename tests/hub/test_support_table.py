"""The one-shot x hub support table: docs/hub_support.md is what the registries
generate now, and the table's parts (variants, short reasons, rendering) on small
spaces."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, ClassVar

import pytest

from archsmith.hub import ShuffleNetSpace
from archsmith.strategy.oneshot import DARTS, ONESHOT_STRATEGIES, RandomOneShot
from archsmith.strategy.oneshot._support import (
    SpaceCase,
    hub_cases,
    refusal,
    render_markdown,
    support_table,
    variants_of,
)
from tests.hub._oneshot_cases import CASES, built
from tests.strategy.oneshot._spaces import Cells, LayerChoiceList

DOC = Path(__file__).resolve().parents[2] / "docs" / "hub_support.md"
REGENERATE = "python -m archsmith.strategy.oneshot._support"


def test_doc_page_is_what_the_registries_generate() -> None:
    expected = render_markdown(CASES, build=built)
    current = DOC.read_text(encoding="utf-8") if DOC.exists() else ""
    diff = "".join(
        difflib.unified_diff(
            current.splitlines(True), expected.splitlines(True), "docs/hub_support.md", "generated", n=1
        )
    )
    assert current == expected, f"docs/hub_support.md is stale: run `{REGENERATE}` to regenerate it.\n{diff}"


def test_cases_cover_every_registered_space_and_algorithm() -> None:
    from archsmith.hub import list_spaces

    cases = hub_cases()
    assert [c.name for c in cases if not c.variant] == list_spaces()
    shufflenet = [c for c in cases if c.name == "shufflenet"]
    assert [c.id for c in shufflenet] == ["shufflenet", "shufflenet[channel_search=True]"]
    assert shufflenet[1].kwargs == {**ShuffleNetSpace.reduced_kwargs, "channel_search": True}
    header = next(line for line in render_markdown(cases[:0]).splitlines() if line.startswith("| space"))
    assert all(ONESHOT_STRATEGIES[name].__name__ in header for name in ONESHOT_STRATEGIES)


class _Declared(ShuffleNetSpace):
    oneshot_variants: ClassVar[Any] = ({"affine": False},)


class _Malformed(ShuffleNetSpace):
    oneshot_variants: ClassVar[Any] = {"affine": False}  # a dict, not a sequence of dicts


def test_variants_come_from_the_class_attribute_else_the_defaults() -> None:
    assert variants_of(_Declared) == ({"affine": False},)
    assert variants_of(ShuffleNetSpace) == ({"channel_search": True},)
    assert variants_of(Cells) == ()
    with pytest.raises(TypeError, match=r"_Malformed.oneshot_variants must be a sequence of dicts"):
        variants_of(_Malformed)


def test_refusal_is_short_grouped_by_kind_and_none_when_supported() -> None:
    loose = Cells("loose_end")
    reason = refusal(loose, DARTS)
    assert reason is not None
    assert reason.startswith("Cell: merge_op='loose_end'")
    assert "\n" not in reason and "cell" not in reason.split(":")[0]  # the kind, not the module path
    assert refusal(loose, RandomOneShot) is None
    assert refusal(LayerChoiceList(), DARTS) is None


def test_rendered_table_marks_refusals_with_shared_notes() -> None:
    cases = [
        SpaceCase("loose", Cells, {"merge_op": "loose_end"}),
        SpaceCase("all", Cells, {"merge_op": "all"}, {"merge_op": "all"}),
    ]
    strategies = {"darts": DARTS, "randomoneshot": RandomOneShot}
    assert support_table(cases, strategies) == {
        "loose": {"darts": refusal(Cells("loose_end"), DARTS), "randomoneshot": None},
        "all[merge_op='all']": {"darts": None, "randomoneshot": None},
    }
    lines = render_markdown(cases, strategies).splitlines()
    assert "| `loose` | `merge_op='loose_end'` | no [1] | yes |" in lines
    assert "| `all[merge_op='all']` | `merge_op='all'` | yes | yes |" in lines
    assert any(line.startswith("1. Cell: merge_op='loose_end'") for line in lines)
    assert not any(line.startswith("2. ") for line in lines)

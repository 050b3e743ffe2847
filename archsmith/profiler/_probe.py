"""Parameters a searching space shows at one size and its frozen models at another.

A plain module built from a plain number that came from a choice (AutoFormer's
class token, built at ``nn.largest(embed_dim)`` in the space and at the chosen
width when frozen) looks constant to the term compiler. Here such parameters are
found by freezing, their decisions found by changing one decision at a time from
the default sample, and each becomes a term tabulated by freezing once per
combination of those decisions. The profiler's self-check then decides whether
the result is exact.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch

from archsmith.nn import ModelSpace
from archsmith.space import ArchsmithError, Categorical, CategoricalMultiple

from ._terms import Group, Term

#: Most freezes a repair may take; a space needing more is refused as before.
MAX_PROBES = 200


def _counts(model: torch.nn.Module) -> dict[str, int]:
    return {name: p.numel() for name, p in model.named_parameters()}


def repair_constants(
    space: ModelSpace, root: Group, root_params: Mapping[int, torch.nn.Parameter], samples: list[dict[str, Any]]
) -> bool:
    """Turn the root's constant parameters whose frozen size differs (in any of
    ``samples`` or under a one-decision change from the default) into terms over
    the decisions that change them; ``False`` where none differs or the probes
    would take more than :data:`MAX_PROBES` freezes."""
    names = {id(p): name for name, p in space.named_parameters()}
    shown = {names[i]: p.numel() for i, p in root_params.items() if i in names}
    default = space.validate(space.default())
    base = _counts(space.freeze(default))
    differing = {name for name, count in shown.items() if base.get(name, 0) != count}
    for sample in samples:
        counts = _counts(space.freeze(sample))
        differing |= {name for name, count in shown.items() if counts.get(name, 0) != count}
    if not differing:
        return False
    decisions = space.search_space
    probes = [
        (label, value)
        for label, leaf in decisions.items()
        if isinstance(leaf, Categorical) and not isinstance(leaf, CategoricalMultiple)
        for value in leaf.values
        if value != default[label]
    ]
    if len(probes) > MAX_PROBES:
        return False
    depends: dict[str, list[str]] = {name: [] for name in differing}
    for label, value in probes:
        try:
            sample = space.validate({**default, label: value})
        except ArchsmithError:  # a value other decisions rule out at the default
            continue
        counts = _counts(space.freeze(sample))
        for name in differing:
            if counts.get(name, 0) != base.get(name, 0) and label not in depends[name]:
                depends[name].append(label)
    for name in sorted(differing):
        root.constant -= shown[name]
        if not depends[name]:
            root.constant += base.get(name, 0)
        else:
            root.terms.append(Term(tuple(depends[name]), _frozen_count(space, default, name)))
    return True


def _frozen_count(space: ModelSpace, default: Mapping[str, Any], name: str) -> Callable[[dict[str, Any]], float]:
    """The size of parameter ``name`` in the model frozen from the default sample
    with ``values`` changed (0 where that model lacks it)."""

    def build(values: dict[str, Any]) -> float:
        model = space.freeze(space.validate({**default, **values}))
        return float(_counts(model).get(name, 0))

    return build

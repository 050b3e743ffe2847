"""Rankings of architectures read off architecture parameters: the most probable
samples first, where a sample's probability is the product of its choices'."""

from __future__ import annotations

import math
from collections.abc import Callable

from archsmith.space import CategoricalMultiple, Sample, Space
from archsmith.strategy._dedup import sample_key

from ._supernet import Decisions


def _options(decisions: Decisions, label: str) -> list[tuple[object, float]]:
    """``(value, log-probability)`` per option of ``label``, most likely first."""
    leaf = decisions.leaves[label]
    probs = decisions.probabilities()[label]
    if isinstance(leaf, CategoricalMultiple):
        # A subset of inputs: the n_chosen most likely (any number: those above uniform).
        order = sorted(range(len(probs)), key=lambda i: -probs[i])
        count = leaf.n_chosen or max(1, sum(p >= 1.0 / len(probs) for p in probs))
        chosen = sorted(order[:count])
        return [([leaf.values[i] for i in chosen], sum(math.log(max(probs[i], 1e-30)) for i in chosen))]
    values = decisions.options(label)
    pairs = [(values[i], math.log(max(p, 1e-30))) for i, p in enumerate(probs)]
    return sorted(pairs, key=lambda pair: -pair[1])


def most_probable(
    decisions: Decisions, space: Space, k: int, active: Callable[[Sample], set[str]] | None = None
) -> list[tuple[Sample, float]]:
    """The ``k`` most probable architectures that meet the space's constraints,
    best first, with their probabilities (labels without parameters keep their
    default).

    ``active(sample)``: the labels that sample's subnet uses (see
    ``Supernet.active_labels``); an architecture's probability is then the product
    over those only, and samples that differ in unused decisions alone count once.
    Without it the search is exact for independent choices: the top ``k`` of a
    product are among the products of each factor's top ``k``; with it (or with
    constraints) the beam is widened.
    """
    labels = decisions.labels_with_alphas()
    beam_width = k * 8 if space.constraints or active is not None else k
    beam: list[tuple[dict[str, object], float]] = [({}, 0.0)]
    for label in labels:
        options = _options(decisions, label)[:beam_width]
        beam = sorted(
            ((dict(partial, **{label: value}), logp + lp) for partial, logp in beam for value, lp in options),
            key=lambda item: -item[1],
        )[:beam_width]
    logps = {label: dict((_value_key(v), lp) for v, lp in _options(decisions, label)) for label in labels}
    found: dict[str, tuple[Sample, float]] = {}
    base = space.default()
    for partial, logp in beam:
        sample = {**base, **partial}
        if not space.satisfies(sample):
            continue
        if active is not None:
            used = active(sample)
            logp = sum(logps[label][_value_key(sample[label])] for label in labels if label in used)
            key = sample_key({label: value for label, value in sample.items() if label in used})
        else:
            key = sample_key(sample)
        if key not in found:
            found[key] = (sample, math.exp(logp))
    return sorted(found.values(), key=lambda item: -item[1])[:k]


def _value_key(value: object) -> str:
    return repr(value)

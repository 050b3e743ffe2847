"""Decision importance: Optuna's evaluator over the stored trials.

The succeeded trials become Optuna ``FrozenTrial`` s whose distributions come from
the stored decisions (a categorical decision's candidates as their JSON text), and
``optuna.importance.get_param_importances`` scores them per objective with
PED-ANOVA (``PedAnovaImportanceEvaluator``): how much each decision matters for
reaching the best trials. It is deterministic and fast (under a second for
thousands of trials, where fANOVA's forest took 20 s for 50 trials on the
development machine); beyond ``MAX_TRIALS`` a seeded random subset is scored.
"""

from __future__ import annotations

import functools
import json
import logging
import random
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from optuna.trial import FrozenTrial

    from ._data import ExperimentData

#: Fewer succeeded trials than this give no importance: PED-ANOVA compares the best
#: trials (at least 5 of them) with the rest.
MIN_TRIALS = 10
#: At most this many trials (a seeded random subset) are scored, so that a page
#: answers in about a second (about 1.5 ms a trial on the development machine).
MAX_TRIALS = 600
SEED = 0
#: The share of trials counted as "the best" (raised for small experiments so that
#: at least 5 are, as PED-ANOVA's authors advise).
TARGET_QUANTILE = 0.1


def _distribution(decision: dict[str, Any], seen: list[Any]) -> tuple[Any, Any] | None:
    """The Optuna distribution of a decision and how a value maps into it; ``None``
    for a decision with a single value (nothing to attribute to it)."""
    import optuna.distributions as od

    if decision["kind"] == "numerical":
        low, high = decision["values"]
        if not low < high:
            return None
        if isinstance(low, int) and isinstance(high, int) and all(isinstance(v, int) for v in seen):
            return od.IntDistribution(low, high), int
        return od.FloatDistribution(float(low), float(high)), float
    choices = [json.dumps(v, sort_keys=True) for v in decision["values"]]
    for value in seen:
        key = json.dumps(value, sort_keys=True)
        if key not in choices:
            choices.append(key)
    if len(choices) < 2:
        return None
    return od.CategoricalDistribution(choices), lambda v: json.dumps(v, sort_keys=True)


def importances(data: ExperimentData) -> tuple[dict[str, dict[str, float]], str | None]:
    """``({objective: {label: importance}}, message)``; empty with the reason when
    there are too few trials or decisions."""
    import optuna
    from optuna.study import StudyDirection
    from optuna.trial import TrialState, create_trial

    names = [n for n, _ in data.objectives]
    rows = [r for r in data.trials.values() if all(r["objectives"].get(n) is not None for n in names)]
    if len(rows) < MIN_TRIALS:
        return {}, f"decision importance needs at least {MIN_TRIALS} succeeded trials; this experiment has {len(rows)}"
    message = None
    if len(rows) > MAX_TRIALS:
        rows = random.Random(SEED).sample(rows, MAX_TRIALS)
        message = f"computed on a random sample of {MAX_TRIALS} of the succeeded trials"
    distributions, encoders = {}, {}
    for decision in data.decisions():
        label = decision["label"]
        seen = [r["sample"][label] for r in rows if label in r["sample"]]
        found = _distribution(decision, seen)
        if found is not None and len(seen) == len(rows):
            distributions[label], encoders[label] = found
    if not distributions:
        return {}, "no decision takes more than one value in every trial: nothing to attribute the objective to"
    trials = []
    for r in rows:
        params = {label: encode(r["sample"][label]) for label, encode in encoders.items()}
        trials.append(
            create_trial(
                state=TrialState.COMPLETE,
                values=[r["objectives"][n] for n in names],
                params=params,
                distributions=distributions,
            )
        )
    directions = [StudyDirection.MAXIMIZE if d == "maximize" else StudyDirection.MINIMIZE for _, d in data.objectives]
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(logging.WARNING)  # no "study created" line per request
    try:
        study = optuna.create_study(directions=directions)
    finally:
        optuna.logging.set_verbosity(verbosity)
    study.add_trials(trials)
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the evaluators are "experimental" in some Optuna versions
        quantile = min(0.5, max(TARGET_QUANTILE, 5 / len(rows)))
        for i, (name, direction) in enumerate(data.objectives):
            evaluator = optuna.importance.PedAnovaImportanceEvaluator(target_quantile=quantile)
            # PED-ANOVA takes lower as better: a maximized objective is negated
            target: Callable[[FrozenTrial], float] = functools.partial(
                _value, i, -1.0 if direction == "maximize" else 1.0
            )
            scores = optuna.importance.get_param_importances(study, evaluator=evaluator, target=target)
            out[name] = {label: float(v) for label, v in scores.items()}
    return out, message


def _value(i: int, sign: float, trial: FrozenTrial) -> float:
    return sign * float(trial.values[i])

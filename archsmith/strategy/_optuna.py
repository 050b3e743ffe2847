"""``OptunaStrategy``: any Optuna sampler over an archsmith space, and ``TPE``.

Optuna runs an in-memory study through its ask/tell interface. Each leaf of the
space becomes Optuna parameters:

- ``Categorical`` -> one categorical over the candidate *indices* (candidates may
  be any JSON value; Optuna's categoricals may not);
- ``CategoricalMultiple`` -> one categorical ``[False, True]`` per candidate
  (parameter ``"<label>#<i>"``). With ``n_chosen`` set, a proposal choosing the
  wrong number is *repaired* with the strategy's seeded generator (random extra
  choices dropped, missing ones added); Optuna learns from its raw proposal, the
  trial runs the repaired subset;
- ``Numerical`` -> a float (``log``, ``step`` = ``quantize``) or, when low, high
  and quantize are integers, an int. Optuna cannot combine ``log`` with a step, so
  a quantized log-uniform leaf is a log float snapped to the grid.

Failed trials are told ``FAIL``. A proposal that breaks one of the space's
constraints is told ``PRUNED``, with by how much it breaks each one as Optuna's
constraint values (so TPE learns the feasible region: Optuna's constrained TPE),
and Optuna is asked again. With ``dedup`` (the default) a proposal of an architecture
already proposed is not run either: Optuna is told the earlier trial's result if
it has one (so the sampler learns the region is known), ``FAIL`` while it is still
running, and asked again. After ``max_rejections`` rejections in a row a random
valid (and unseen) sample is enqueued instead; once every architecture of a finite
space was proposed, ``ask`` returns ``None`` and the strategy is exhausted.

Optuna is imported only when a strategy is built, so ``import archsmith`` does not
load it.
"""

from __future__ import annotations

import contextlib
import functools
import math
import warnings
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from archsmith.space import (
    Categorical,
    CategoricalMultiple,
    Numerical,
    Sample,
    SampleError,
    Space,
    SpaceError,
    loads_arch,
)
from archsmith.space._leaf import value_key

from ._base import Directions, FinishedTrial, Strategy
from ._dedup import SWEEP_LIMIT, countable_size
from ._registry import register_strategy

#: Random draws the fallback of ``ask`` tries for an unseen architecture before it
#: sweeps a small space in grid order.
_FALLBACK_TRIES = 100

_STATES = ("COMPLETE", "FAIL", "PRUNED", "RUNNING")
#: Repeated architectures told back to the sampler before one unseen is run instead.
MAX_DUPLICATES = 5


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Optuna logs every finished trial at INFO and warns about experimental
    options; keep both out of the experiment's output without touching the
    global settings for good."""
    import optuna

    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            yield
    finally:
        optuna.logging.set_verbosity(level)


@register_strategy("optuna")
class OptunaStrategy(Strategy):
    """Runs an Optuna sampler over the search space.

    ``sampler``: a function ``seed -> optuna sampler`` called with the keyword
    ``seed=`` (an Optuna sampler class works, e.g. ``optuna.samplers.RandomSampler``),
    or a sampler instance. A function is called again before every proposal with
    a seed derived from the experiment's seed and the number of trials so far, so
    a run (and a resumed run) is reproducible; an instance is used as is and its
    random stream is its own (a resumed run then continues the same search, not
    the same proposals). ``None``: Optuna's default TPE.

    With several objectives the study is multi-objective; the sampler must
    support that (TPE, NSGA-II, NSGA-III, random, GP do; CMA-ES does not).
    ``dedup``: never run one architecture twice (see the module docstring).
    """

    multi_objective = True

    def __init__(self, sampler: Any = None, *, max_rejections: int = 100, dedup: bool = True) -> None:
        import optuna

        if sampler is not None and not isinstance(sampler, optuna.samplers.BaseSampler) and not callable(sampler):
            raise SpaceError(f"sampler must be an Optuna sampler or a function seed -> sampler, got {sampler!r}")
        if isinstance(max_rejections, bool) or not isinstance(max_rejections, int) or max_rejections < 1:
            raise SpaceError(f"max_rejections must be a positive integer, got {max_rejections!r}")
        self.sampler = sampler
        self.max_rejections = max_rejections
        self.dedup = bool(dedup)
        self._seed = 0
        self._study: Any = None
        # per Optuna trial number: [params, value, state, architecture key, the trial's system attributes]
        self._records: list[list[Any]] = []
        self._pending: dict[str, list[int]] = {}  # architecture key -> asked, untold trial numbers
        # architecture key -> the Optuna trial that ran it first (None: known from the history only)
        self._proposed: dict[str, int | None] = {}
        self._size: float = math.inf

    # Binding -------------------------------------------------------------------------
    def attach(self, space: Space, *, seed: int, direction: Directions = "maximize") -> None:
        super().attach(space, seed=seed, direction=direction)
        self._seed = int(seed)
        self._distributions = self._make_distributions(space)
        self._size = countable_size(space) if self.dedup else math.inf
        self._reset_study()

    def check_space(self, space: Space) -> None:
        for label, leaf in space.items():
            if not isinstance(leaf, (Categorical, CategoricalMultiple, Numerical)):
                raise SpaceError(f"{self!r} cannot search {label!r}: unsupported choice type {type(leaf).__name__}")

    def _make_sampler(self, n: int) -> Any:
        import optuna

        if self.sampler is None:
            return optuna.samplers.TPESampler(seed=self._derived_seed(n))
        if isinstance(self.sampler, optuna.samplers.BaseSampler):
            return self.sampler
        with _quiet():
            return self.sampler(seed=self._derived_seed(n))

    def _derived_seed(self, n: int) -> int:
        return (self._seed * 1_000_003 + n * 7_919 + 12_345) % 2**31

    def _reset_study(self) -> None:
        import optuna

        with _quiet():
            self._study = optuna.create_study(directions=list(self.directions), sampler=self._make_sampler(0))
        self._records, self._pending, self._proposed = [], {}, {}

    @staticmethod
    def _make_distributions(space: Space) -> dict[str, Any]:
        from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

        dists: dict[str, Any] = {}
        for label, leaf in space.items():
            if isinstance(leaf, Categorical):
                dists[label] = CategoricalDistribution(list(range(len(leaf.values))))
            elif isinstance(leaf, CategoricalMultiple):
                for i in range(len(leaf.values)):
                    dists[f"{label}#{i}"] = CategoricalDistribution([False, True])
            elif isinstance(leaf, Numerical):
                q = leaf.quantize
                if q is None:
                    dists[label] = FloatDistribution(leaf.low, leaf.high, log=leaf.log)
                elif leaf.log:  # Optuna has no log + step: a log float, snapped to the grid
                    dists[label] = FloatDistribution(leaf.low, leaf.high, log=True)
                else:
                    top = leaf.low + math.floor((leaf.high - leaf.low) / q + 1e-9) * q
                    if leaf.integer:
                        dists[label] = IntDistribution(int(leaf.low), int(top), step=int(q))
                    else:
                        dists[label] = FloatDistribution(leaf.low, top, step=q)
        return dists

    # Parameters <-> samples ----------------------------------------------------------------
    def _to_sample(self, params: Mapping[str, Any]) -> Sample:
        sample: Sample = {}
        for label, leaf in self.space.items():
            if isinstance(leaf, Categorical):
                sample[label] = leaf.values[int(params[label])]
            elif isinstance(leaf, CategoricalMultiple):
                chosen = [i for i in range(len(leaf.values)) if params[f"{label}#{i}"]]
                if leaf.n_chosen is not None and len(chosen) != leaf.n_chosen:
                    chosen = self._repair(chosen, len(leaf.values), leaf.n_chosen)
                sample[label] = [leaf.values[i] for i in chosen]
            else:
                sample[label] = leaf.canonical(params[label])
        return sample

    def _repair(self, chosen: list[int], n: int, k: int) -> list[int]:
        if len(chosen) > k:
            return sorted(self.rng.sample(chosen, k))
        rest = [i for i in range(n) if i not in chosen]
        return sorted(chosen + self.rng.sample(rest, k - len(chosen)))

    def _to_params(self, sample: Mapping[str, Any]) -> dict[str, Any]:
        params: dict[str, Any] = {}
        for label, leaf in self.space.items():
            value = sample[label]
            if isinstance(leaf, Categorical):
                index = leaf.index_of(value)
                if index is None:
                    raise SpaceError(f"{label!r}: {value!r} is not a candidate")
                params[label] = index
            elif isinstance(leaf, CategoricalMultiple):
                on = {index for v in value if (index := leaf._index.get(value_key(v))) is not None}
                params.update({f"{label}#{i}": i in on for i in range(len(leaf.values))})
            elif isinstance(leaf, Numerical):
                params[label] = int(value) if leaf.integer and leaf.quantize is not None and not leaf.log else value
        return params

    # Ask / tell ------------------------------------------------------------------------
    def ask(self) -> Sample | None:
        if self.is_exhausted():
            return None
        with _quiet():
            duplicates = 0
            for _ in range(self.max_rejections):
                trial = self._new_trial()
                sample = self._to_sample(trial.params)
                if not self.space.satisfies(sample):
                    self._mark_infeasible(trial, sample)
                    self._finish(trial.number, None, "PRUNED")  # rejected by a constraint: learn, re-ask
                elif self.dedup and (key := self.space.architecture_key(sample)) in self._proposed:
                    self._answer_duplicate(trial.number, self._proposed[key])
                    duplicates += 1
                    if duplicates >= MAX_DUPLICATES:
                        # A sampler that has converged repeats itself; each repeat grows the study
                        # (and the cost of the next proposal): explore an unseen architecture instead.
                        break
                else:
                    return self._issued(trial, sample)
            # The sampler keeps proposing infeasible or known samples: run a random valid, unseen one instead.
            fallback = self._fallback()
            if fallback is None:
                return None
            self._study.enqueue_trial(self._to_params(fallback), skip_if_exists=False)
            trial = self._new_trial()
            return self._issued(trial, fallback)

    def _mark_infeasible(self, trial: Any, sample: Sample) -> None:
        """Tell Optuna by how much ``sample`` breaks each constraint: its TPE then
        models the feasible region (constrained TPE, Optuna >= 5; older ones only
        see the pruned trial)."""
        if not hasattr(trial, "set_constraint"):
            return
        for constraint in self.space.constraints:
            violation = constraint.violation(sample)
            if violation > 0:
                trial.set_constraint(constraint.name, violation)

    def _answer_duplicate(self, number: int, earlier: int | None) -> None:
        """Tell Optuna trial ``number``, a repeat of trial ``earlier``'s architecture,
        what that one gave (so the sampler learns), or FAIL while it has no result."""
        record = None if earlier is None else self._records[earlier]
        if record is not None and record[2] == "COMPLETE":
            self._finish(number, record[1], "COMPLETE")
        else:
            self._finish(number, None, "FAIL")

    def _fallback(self) -> Sample | None:
        for _ in range(_FALLBACK_TRIES):
            sample = self.space.random(rng=self.rng)
            if not self.dedup or self.space.architecture_key(sample) not in self._proposed:
                return sample
        if self._size <= SWEEP_LIMIT:  # a small space nearly used up: the first unseen one in grid order
            for sample in self.space.grid():
                if self.space.architecture_key(sample) not in self._proposed:
                    return sample
        return None

    def can_exhaust(self, space: Space) -> bool:
        return self.dedup and countable_size(space) != math.inf

    def is_exhausted(self) -> bool:
        return self.dedup and len(self._proposed) >= self._size

    def restore_history(self, samples: Iterable[Sample]) -> None:
        """Remember the architectures of ``samples`` (every trial in the experiment)
        as proposed; the study itself is rebuilt from the state."""
        if not self.dedup:
            return
        for sample in samples:
            try:
                self._proposed.setdefault(self.space.architecture_key(self.space.validate(sample)), None)
            except SampleError:
                continue  # not an architecture of this space: it cannot collide with a proposal

    def _new_trial(self) -> Any:
        self._study.sampler = self._make_sampler(len(self._records))
        trial = self._study.ask(fixed_distributions=self._distributions)
        assert trial.number == len(self._records), "the Optuna study is shared with someone else"
        self._records.append([dict(trial.params), None, "RUNNING", None, self._system_attrs(trial.number)])
        return trial

    def _system_attrs(self, number: int) -> dict[str, Any]:
        """What the sampler noted on trial ``number`` (e.g. NSGA-II's generation): kept
        in the state, so the rebuilt study of a resumed search is the same study."""
        storage = self._study._storage
        trial_id = storage.get_trial_id_from_study_id_trial_number(self._study._study_id, number)
        return dict(storage.get_trial_system_attrs(trial_id))

    def _issued(self, trial: Any, sample: Sample) -> Sample:
        key = self.space.architecture_key(sample)
        self._pending.setdefault(key, []).append(trial.number)
        self._records[trial.number][3] = key
        if self._proposed.get(key) is None:
            self._proposed[key] = trial.number
        return sample

    def _finish(self, number: int, value: Any, state: str) -> None:
        from optuna.trial import TrialState

        if state == "COMPLETE":
            self._study.tell(number, value)
        else:
            self._study.tell(number, state=getattr(TrialState, state))
        self._records[number][1:3] = [value, state]
        self._records[number][4] = self._system_attrs(number)

    def tell(self, trial: FinishedTrial) -> None:
        values = trial.objective_values() if trial.status == "succeeded" else None
        value: Any = None
        if values is not None and all(math.isfinite(v) for v in values):
            # one float for one objective, a list for several (as Optuna takes them)
            value = [float(v) for v in values] if self.is_multi_objective else float(values[0])
        state = "COMPLETE" if value is not None else "FAIL"
        try:
            sample = self.space.validate(trial.sample)
        except SampleError:
            return  # not an architecture of this space (an earlier run's, of another space): nothing to learn
        key = self.space.architecture_key(sample)
        numbers = self._pending.get(key)
        with _quiet():
            if numbers:
                self._finish(numbers.pop(0), value, state)
                if not numbers:
                    del self._pending[key]
            else:  # a trial this study did not propose (an earlier run's, or added by hand): learn from it too
                self._add_finished(self._to_params(sample), value, state)
                self._records[-1][3] = key
                if self._proposed.get(key) is None:
                    self._proposed[key] = len(self._records) - 1

    def _add_finished(
        self, params: dict[str, Any], value: Any, state: str, system_attrs: dict[str, Any] | None = None
    ) -> None:
        """Add a trial to the study without asking the sampler: a finished one, or
        (resuming) one still running."""
        import optuna

        dists = self._distributions
        self._study.add_trial(
            optuna.trial.create_trial(
                state=getattr(optuna.trial.TrialState, state),
                values=None if value is None else (value if isinstance(value, list) else [value]),
                params=params,
                distributions={name: dists[name] for name in params},
                system_attrs=system_attrs,
            )
        )
        self._records.append([params, value, state, None, dict(system_attrs or {})])

    # State -------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        study_attrs = self._study._storage.get_study_system_attrs(self._study._study_id)
        return {**super().state_dict(), "trials": [list(r) for r in self._records], "study_attrs": dict(study_attrs)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Rebuild the study: every trial is re-added in its original order (same
        trial numbers), asked-but-untold ones as running, each with what the sampler
        noted on it and on the study (NSGA-II's generations and parents), so the
        sampler continues the very same search."""
        super().load_state_dict(state)
        self._reset_study()
        with _quiet():
            for record in state.get("trials", []):
                params, value, status, key = record[:4]
                system_attrs = dict(record[4]) if len(record) > 4 else {}  # older states have none
                if status not in _STATES:
                    raise SpaceError(f"OptunaStrategy state: unknown trial state {status!r}")
                self._add_finished(dict(params), value, status, system_attrs)
                number = len(self._records) - 1
                if key is None:
                    continue
                # older states keyed whole samples: the same text read as an architecture
                key = self.space.architecture_key(loads_arch(key))
                self._records[number][3] = key
                if status == "RUNNING":
                    self._pending.setdefault(key, []).append(number)
                if self.dedup and self._proposed.get(key) is None:
                    self._proposed[key] = number
            for name, attr in state.get("study_attrs", {}).items():
                self._study._storage.set_study_system_attr(self._study._study_id, name, attr)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(sampler={_name(self.sampler)}, dedup={self.dedup})"


def _name(sampler: Any) -> str:
    if sampler is None:
        return "TPE"
    if isinstance(sampler, functools.partial):
        return _name(sampler.func)
    return getattr(sampler, "__name__", type(sampler).__name__)


@register_strategy("tpe")
class TPE(OptunaStrategy):
    """Tree-structured Parzen Estimator (Optuna's ``TPESampler``).

    ``multivariate`` models the decisions jointly (better on coupled cells);
    ``n_startup_trials`` random trials come first; ``constant_liar`` makes
    concurrent proposals avoid each other (the running trials count as bad
    results until they finish). Seeded by the experiment's seed.
    """

    def __init__(
        self,
        *,
        n_startup_trials: int = 10,
        multivariate: bool = True,
        constant_liar: bool = True,
        n_ei_candidates: int = 24,
        max_rejections: int = 100,
        dedup: bool = True,
    ) -> None:
        self.n_startup_trials = n_startup_trials
        self.multivariate = multivariate
        self.constant_liar = constant_liar
        self.n_ei_candidates = n_ei_candidates
        super().__init__(self._sampler, max_rejections=max_rejections, dedup=dedup)

    def _sampler(self, seed: int) -> Any:
        import optuna

        return optuna.samplers.TPESampler(
            n_startup_trials=self.n_startup_trials,
            n_ei_candidates=self.n_ei_candidates,
            multivariate=self.multivariate,
            constant_liar=self.constant_liar,
            seed=seed,
        )

    def __repr__(self) -> str:
        return (
            f"TPE(n_startup_trials={self.n_startup_trials}, multivariate={self.multivariate}, "
            f"constant_liar={self.constant_liar}, dedup={self.dedup})"
        )


@register_strategy("nsga2")
class NSGAII(OptunaStrategy):
    """NSGA-II (Deb et al., 2002) through Optuna's ``NSGAIISampler``: generations of
    ``population_size``, parents by Pareto rank and crowding distance, uniform
    crossover and mutation. Made for several objectives (one works too).
    Seeded by the experiment's seed."""

    def __init__(
        self,
        *,
        population_size: int = 50,
        mutation_prob: float | None = None,
        crossover_prob: float = 0.9,
        max_rejections: int = 100,
        dedup: bool = True,
    ) -> None:
        if isinstance(population_size, bool) or not isinstance(population_size, int) or population_size < 2:
            raise SpaceError(f"population_size must be an integer >= 2, got {population_size!r}")
        if mutation_prob is not None and not 0.0 <= mutation_prob <= 1.0:
            raise SpaceError(
                f"mutation_prob must be in [0, 1] or None (1 / number of decisions), got {mutation_prob!r}"
            )
        if not 0.0 <= crossover_prob <= 1.0:
            raise SpaceError(f"crossover_prob must be in [0, 1], got {crossover_prob!r}")
        self.population_size, self.mutation_prob, self.crossover_prob = population_size, mutation_prob, crossover_prob
        super().__init__(self._sampler, max_rejections=max_rejections, dedup=dedup)

    def _sampler(self, seed: int) -> Any:
        import optuna

        return optuna.samplers.NSGAIISampler(
            population_size=self.population_size,
            mutation_prob=self.mutation_prob,
            crossover_prob=self.crossover_prob,
            seed=seed,
        )

    def __repr__(self) -> str:
        return (
            f"NSGAII(population_size={self.population_size}, mutation_prob={self.mutation_prob}, "
            f"crossover_prob={self.crossover_prob}, dedup={self.dedup})"
        )

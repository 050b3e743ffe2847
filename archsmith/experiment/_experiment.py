"""``Experiment``: the multi-trial search loop.

The strategy proposes samples, the engine runs them, every event lands in the
store, and the strategy learns from finished trials. Each step that changes the
search (a trial added, a trial finished) is one store transaction together with
the strategy's state, so a run killed at any moment resumes exactly.
"""

from __future__ import annotations

import contextlib
import inspect
import math
import os
import random
import shutil
import socket
import time
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from archsmith.evaluator import Evaluator, FunctionalEvaluator, MetricError, objective_value, objective_values
from archsmith.evaluator._metric import resolve_objectives
from archsmith.execution import ENGINES, Engine, Trial, TrialEvent, TrialPayload
from archsmith.nn import ModelSpace, Mutator, mutate
from archsmith.space import ArchsmithError, Condition, Constraint, Space, SpaceError, pareto_front
from archsmith.strategy import EarlyStopping, FinishedTrial, OneShotStrategy, Strategy

from ._config import ExperimentConfig
from ._lock import DriverLock, DriverLockError
from ._progress import ProgressView, Snapshot
from ._ray_config import check_engine_fields
from ._results import pareto_trials, top_trials
from ._store import STORE_FILE, TRIALS_DIR, Store, StoreError, TrialRecord, find_store

POLL_SECONDS = 0.25
HEARTBEAT_SECONDS = 2.0


#: ``export_top_models(top_k=...)`` not given.
_UNSET: Any = object()


class ExperimentError(ArchsmithError, RuntimeError):
    """The experiment cannot run as set up (e.g. its directory holds another run)."""


def build_search_space(space: ModelSpace, evaluator: Evaluator, constraints: Iterable[Constraint] = ()) -> Space:
    """The model's decisions, the evaluator's hyper-parameter choices, and the
    model's constraints with ``constraints`` (the config's) added."""
    model = space.search_space
    conditions = [
        Condition(label, parent, values)
        for label, alternatives in model.conditions.items()
        for parent, values in alternatives.items()
    ]
    full = Space(model.values(), model.constraints, conditions)  # the model's unused decisions stay unused
    for leaf in evaluator.search_space_leaves():
        full.add(leaf)
    for constraint in constraints:
        try:
            full.add_constraint(constraint)
        except SpaceError as e:
            raise ExperimentError(
                f"{e}: a constraint's profiler must be built on this experiment's model space "
                f"({type(space).__name__} with the same arguments)"
            ) from None
    return full


def check_profilers(config: ExperimentConfig, space: Space) -> None:
    """Each profiler of ``config.profilers`` reads decisions of ``space`` (one built
    on another model space would fail on every trial)."""
    for name, profiler in config.profilers.items():
        model = getattr(profiler, "space", None)
        labels = set(getattr(model, "search_space", ()) or ())
        unknown = sorted(labels - set(space))
        if unknown:
            raise ExperimentError(
                f"profilers[{name!r}] was built on another model space (its decisions {unknown[:5]} are not "
                f"in this search); build it on the experiment's space"
            )


def resolve_directions(config: ExperimentConfig, evaluator: Evaluator) -> tuple[str, ...]:
    """Each objective's configured direction, else the evaluator's; warn when they
    disagree."""
    out = []
    for objective, direction in zip(config.objectives, config.directions):
        preferred = evaluator.preferred_direction(objective)
        if direction is None and objective in config.profilers:
            direction = "minimize"  # a cost: nobody searches for a dearer model
        if direction is None:
            if preferred is None:
                if len(config.objectives) > 1:
                    example = ", ".join(f"{name!r}: 'maximize' or 'minimize'" for name in config.objectives)
                    how = f"give each objective its direction: ExperimentConfig(objective={{{example}}})"
                else:
                    how = "ExperimentConfig(direction='maximize') or direction='minimize'"
                raise ExperimentError(
                    f"say whether a higher {objective!r} is better: {how} "
                    "(the evaluator does not know, and archsmith never assumes)"
                )
            direction = preferred
        elif preferred is not None and preferred != direction:
            warnings.warn(
                f"direction={direction!r} but {type(evaluator).__name__}'s {objective!r} is usually "
                f"{preferred}d; check ExperimentConfig(direction=...)",
                stacklevel=3,
            )
        out.append(direction)
    return tuple(out)


def trial_seed(experiment_seed: int, trial_id: int) -> int:
    """A trial's own seed: a re-run of the same trial gets the same one."""
    return (experiment_seed * 1_000_003 + trial_id) % 2**31


def check_gpus(config: ExperimentConfig) -> None:
    """Fail before any trial if ``gpus_per_trial`` asks for GPUs that are not there."""
    if not config.gpus_per_trial or config.engine == "ray":  # Ray places GPUs across its nodes itself
        return
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    need = config.gpus_per_trial * (1 if config.engine == "inprocess" else config.concurrency or 1)
    if count < need:
        raise ExperimentError(
            f"gpus_per_trial={config.gpus_per_trial} (x concurrency) needs {need} GPUs but {count} are visible; "
            "lower it, or use gpus_per_trial=0 to train on the CPU"
        )


def make_engine(config: ExperimentConfig, log_dir: Path | None = None) -> Engine:
    """The configured engine; trials' output goes under ``log_dir`` where the engine can."""
    check_engine_fields(config)  # fields may have been assigned one by one since the config was built
    cls = ENGINES[config.engine]
    if config.engine == "inprocess":
        kwargs: dict[str, Any] = {"trial_timeout": config.trial_timeout}
    elif config.engine == "ray":
        kwargs = {
            "concurrency": config.concurrency,  # None: as many trials as the cluster holds
            "trial_timeout": config.trial_timeout,
            "address": config.ray_address,
            "resources_per_trial": config.resources_per_trial,
            "max_retries": config.max_retries,
        }
    else:
        kwargs = {
            "concurrency": config.concurrency,
            "trial_timeout": config.trial_timeout,
            "gpus_per_trial": config.gpus_per_trial,
        }
    if log_dir is not None and "log_dir" in inspect.signature(cls).parameters:
        kwargs["log_dir"] = log_dir
    return cls(**kwargs)  # type: ignore[no-any-return]


def remove_store_files(path: Path) -> None:
    """Delete a store and its WAL side files."""
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f"{path}{suffix}")


def holds_results(store: Store, directory: Path) -> bool:
    """Whether a store holds anything a run produced: trials, or one-shot epochs
    (a store of a run that never started a trial holds nothing worth keeping)."""
    from ._oneshot import CHECKPOINT_FILE

    return bool(
        sum(store.counts().values()) or store.get_meta("oneshot_history") or (directory / CHECKPOINT_FILE).exists()
    )


def _short(value: Any, limit: int = 120) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass
class _Tally:
    """Counts, the best trial and the Pareto front, kept in memory so the loop
    never re-queries them."""

    created: int
    done: int
    failed: int
    best: float | None
    best_trial: int | None
    directions: tuple[str, ...]
    front: list[tuple[float, ...]]
    stopped: int = 0

    @classmethod
    def of(cls, store: Store, directions: tuple[str, ...]) -> _Tally:
        counts, best = store.counts(), store.best(directions[0])
        tally = cls(
            sum(counts.values()),
            counts["succeeded"] + counts["failed"] + counts["stopped"],
            counts["failed"],
            best[0].objective if best else None,
            best[0].id if best else None,
            directions,
            [],
            counts["stopped"],
        )
        if len(directions) > 1:
            values = [t.values for t in store.trials("succeeded") if t.values is not None]
            tally.front = [values[i] for i in pareto_front(values, directions)]
        return tally

    def finished(self, trial_id: int, values: tuple[float, ...] | None, status: str | None = None) -> None:
        """``status`` "stopped": counted, not ranked; else ``values`` None means failed."""
        self.done += 1
        if status == "stopped":
            self.stopped += 1
            return
        if values is None:
            self.failed += 1
            return
        value, direction = values[0], self.directions[0]
        if self.best is None or (value > self.best if direction == "maximize" else value < self.best):
            self.best, self.best_trial = value, trial_id
        if len(self.directions) > 1:
            candidates = [*self.front, values]
            self.front = [candidates[i] for i in pareto_front(candidates, self.directions)]


class Experiment:
    """A search: ``Experiment(space, evaluator, strategy, config).run()``.

    ``evaluator`` may be an ``Evaluator`` or a plain function ``fn(model)`` (wrapped
    in ``FunctionalEvaluator``). ``mutators`` (NNI's spelling): graph mutators applied
    to ``space``, any traceable module; the same as passing ``nn.mutate(space, mutators)``.
    """

    def __init__(
        self,
        space: ModelSpace,
        evaluator: Evaluator | Any,
        strategy: Strategy,
        config: ExperimentConfig | None = None,
        early_stopping: EarlyStopping | None = None,
        mutators: Sequence[Mutator] | None = None,
    ) -> None:
        if mutators is not None:  # NNI's Experiment(base_model, ..., mutators=[...]): the space mutate() makes
            space = mutate(space, mutators)
        if not isinstance(space, ModelSpace):
            raise ExperimentError(
                f"the model space must be an archsmith.nn.ModelSpace (or an @archsmith.model_wrapper class) instance, got {type(space).__name__}"
            )
        if space.is_frozen:
            raise ExperimentError("the model space is a frozen model; pass the space it was frozen from")
        if not isinstance(evaluator, Evaluator):
            if not callable(evaluator):
                raise ExperimentError(f"evaluator must be an Evaluator or a function fn(model), got {evaluator!r}")
            evaluator = FunctionalEvaluator(evaluator)
        if not isinstance(strategy, (Strategy, OneShotStrategy)):
            raise ExperimentError(
                f"strategy must be an archsmith.strategy.Strategy or a one-shot strategy (DARTS(), ...), got {strategy!r}"
            )
        if early_stopping is not None and not isinstance(early_stopping, EarlyStopping):
            raise ExperimentError(
                f"early_stopping must be an archsmith.strategy.EarlyStopping (MedianStop, SuccessiveHalving, "
                f"Hyperband), got {early_stopping!r}"
            )
        self.space, self.evaluator, self.strategy = space, evaluator, strategy
        self.early_stopping = early_stopping
        #: the trained supernet, after a one-shot run (``space.freeze(sample, weights_from=exp.supernet)``)
        self.supernet: Any = None
        self._stopping: set[int] = set()
        self._recorded_architectures: set[str] = set()  # keys whose module tree is in the store
        self.config = config or ExperimentConfig()
        if isinstance(strategy, OneShotStrategy):
            # unsupported primitives (and constraints it cannot honour) are named before anything runs
            strategy.check(space, evaluator, self.config.constraints)
        # "default" (the config's default, NNI's name) is the evaluator's primary metric: val_acc for Classification
        self.objectives = resolve_objectives(self.config.objectives, evaluator)
        self.directions = resolve_directions(self.config, evaluator)
        self.direction = self.directions[0]
        if isinstance(strategy, OneShotStrategy):
            if len(self.objectives) > 1 or early_stopping is not None:
                raise ExperimentError(
                    f"{strategy.name} trains one supernet on the evaluator's loss: it takes neither several "
                    "objectives nor early_stopping; use a multi-trial strategy for those"
                )
            if self.config.max_trials is not None:
                raise ExperimentError(
                    f"{strategy.name} runs no trials: it trains one supernet for the evaluator's max_epochs; "
                    "drop max_trials (max_duration still bounds it, and top_k sets how many architectures it ranks)"
                )
        else:
            try:
                strategy.check_objectives(self.directions)
            except SpaceError as e:
                raise ExperimentError(str(e)) from None
        if early_stopping is not None and len(self.objectives) > 1:
            raise ExperimentError(
                f"early stopping ranks trials by one objective, but {len(self.objectives)} were given "
                f"{list(self.objectives)}; drop early_stopping or search one objective"
            )
        #: Without the config's constraints (an earlier run's trials may break them).
        self._unconstrained = build_search_space(space, evaluator)
        self.search_space = build_search_space(space, evaluator, self.config.constraints)
        check_profilers(self.config, self.search_space)
        if len(self.search_space) == 0:
            raise ExperimentError("the search space has no decisions: there is nothing to search")

    # Where it lives ------------------------------------------------------------------
    @property
    def directory(self) -> Path:
        return self.config.directory

    @property
    def store_path(self) -> Path:
        return self.directory / STORE_FILE

    # Running -------------------------------------------------------------------------
    def run(self, resume: bool = False) -> Experiment:
        """Run until the budget is spent, the strategy is exhausted, or Ctrl-C.

        ``resume=True`` continues the run stored in this experiment's directory:
        finished trials are kept, unfinished ones re-run, the strategy's state
        restored, and the (possibly raised) budget completed. It is refused, with
        each difference named, when the stored run searched another space,
        objective, direction, seed or strategy.

        One driver at a time: a second ``run()`` on the same directory (in this
        process or any other) is refused with the running one's pid and host.
        """
        if isinstance(self.strategy, OneShotStrategy):
            return self._run_oneshot(resume)
        config = self.config
        if (
            config.max_trials is None
            and config.max_duration_seconds is None
            and not self.strategy.can_exhaust(self.search_space)
        ):
            raise ExperimentError(
                f"nothing would end this run: set ExperimentConfig(max_trials=...) or max_duration=... "
                f"({self.strategy!r} never runs out of samples on this space by itself)"
            )
        with self._driving():
            existing = self._inspect_store(resume)
            warm = self._read_warm_start() if not existing else None
            check_gpus(config)
            # Workers start before the store is written: a refused start leaves nothing behind.
            engine = make_engine(config, self.directory / TRIALS_DIR)
            store: Store | None = None
            self._started_any = False
            try:
                args, kwargs = self.space.init_arguments
                engine.start(TrialPayload(type(self.space), args, kwargs, self.evaluator))
                store = self._open_store(existing)
                pending = self._prepare(store, existing, warm)
                return self._loop(store, engine, pending)
            except BaseException:
                if not existing and not self._started_any:
                    self._remove_run(store)  # a run that never started a trial leaves nothing
                    store = None
                raise
            finally:
                engine.shutdown()
                if store is not None:
                    store.close()

    @contextlib.contextmanager
    def _driving(self) -> Iterator[bool]:
        """Hold the experiment's driver lock for the run; yields whether the
        directory was created for this run."""
        fresh = not self.directory.exists()
        try:
            lock = DriverLock(self.directory).acquire()
        except DriverLockError as e:
            raise ExperimentError(str(e)) from None
        try:
            yield fresh
        finally:
            lock.release(remove=True)
            if fresh:
                with contextlib.suppress(OSError):
                    self.directory.rmdir()  # only if the run left nothing in it

    def _inspect_store(self, resume: bool) -> bool:
        """Whether this run continues a stored one (checked to be the same search);
        a store that holds nothing (a run that never started) is replaced."""
        if not self.store_path.exists():
            if resume:
                self._check_nothing_was_lost()
            return False
        store = Store(self.store_path, readonly=True)
        try:
            if not holds_results(store, self.directory):
                return False
            if not resume:
                raise ExperimentError(
                    f"{self.directory} already holds an experiment; pass run(resume=True) to continue it, "
                    "or choose another ExperimentConfig(name=...) / workdir"
                )
            self._check_resumable(store)
            return True
        finally:
            store.close()

    def _check_nothing_was_lost(self) -> None:
        """``resume=True`` where the store is missing but a run left traces: its store
        was deleted or moved, and starting afresh would silently lose it."""
        from ._oneshot import CHECKPOINT_FILE

        rescued = sorted(self.directory.glob(f"{STORE_FILE}.rescued-*"))
        traces = [p for p in (self.directory / TRIALS_DIR, self.directory / CHECKPOINT_FILE) if p.exists()]
        if rescued:
            raise ExperimentError(
                f"cannot resume {self.directory}: it has no {STORE_FILE}, but a rescued store {rescued[-1].name}; "
                f"move it to {self.store_path} to continue, or run() without resume to start a new search"
            )
        if traces:
            raise ExperimentError(
                f"cannot resume {self.directory}: a run was here ({traces[0].name} exists) but {STORE_FILE} is "
                "missing (deleted or moved?); put it back to continue, or run() without resume to start a new search"
            )

    def identity(self) -> dict[str, Any]:
        """What a resumed run must share with the stored one (see :meth:`run`)."""
        objectives, directions = list(self.objectives), list(self.directions)
        if isinstance(self.strategy, OneShotStrategy):  # it ranks by its own score
            objectives, directions = [self.strategy.score_name], [self.strategy.score_direction]
        return {
            # the class name, not its module: a script's classes live in __main__ or in a module
            "space_class": type(self.space).__qualname__,
            "labels": list(self.search_space),
            "decisions": {label: leaf.describe() for label, leaf in self.search_space.items()},
            "objectives": objectives,
            "directions": directions,
            "strategy": repr(self.strategy),
            "early_stopping": None if self.early_stopping is None else repr(self.early_stopping),
            "constraints": [c.name for c in self.config.constraints],
        }

    def _check_resumable(self, store: Store) -> None:
        stored = {key: store.get_meta(key) for key in self.identity()}
        if stored["labels"] is None:
            return  # a store of an archsmith that recorded no identity: nothing to compare
        differences = []
        for key, now in self.identity().items():
            before = stored[key]
            if before is None and key in ("space_class", "decisions", "early_stopping", "constraints"):
                continue  # not recorded by older stores
            if key == "objectives" and isinstance(before, list):
                # older stores recorded "default" for the primary metric (their metrics carry both names)
                before = list(resolve_objectives(tuple(before), self.evaluator))
            if before != now:
                differences.append(f"{key}: stored {_short(before)}, now {_short(now)}")
        seed = store.get_meta("seed")
        if self.config.seed is not None and seed is not None and self.config.seed != seed:
            differences.append(f"seed: stored {seed}, now {self.config.seed}")
        if differences:
            listed = "".join(f"\n  - {d}" for d in differences)
            raise ExperimentError(
                f"cannot resume {self.directory}: it holds a run of another search:{listed}\n"
                "Resume with the same space, objective, direction, constraints, seed and strategy (the budget, concurrency, "
                "engine and timeouts may change). To go on with another strategy or objective, start a new run "
                f"from its finished trials: ExperimentConfig(name=..., warm_start={str(self.directory)!r})."
            )

    def _read_warm_start(self) -> list[TrialRecord] | None:
        """The finished trials of ``config.warm_start``'s run, checked to fit this search."""
        source = self.config.warm_start
        if source is None:
            return None
        try:
            store = Store(find_store(source), readonly=True)
        except StoreError as e:
            raise ExperimentError(f"warm_start: {e}") from None
        try:
            labels = store.get_meta("labels", [])
            if labels != list(self.search_space):
                raise ExperimentError(
                    f"warm_start={str(source)!r} searched another space (labels {labels[:6]}... vs "
                    f"{list(self.search_space)[:6]}...); warm-start from a run of the same model space and evaluator"
                )
            trials = [t for t in store.trials() if t.status in ("succeeded", "failed", "stopped")]
        finally:
            store.close()
        for trial in trials:
            problems = self._unconstrained.check(trial.sample)
            if problems:
                raise ExperimentError(
                    f"warm_start={str(source)!r} searched another space: trial {trial.id}'s sample does not fit "
                    f"this one ({'; '.join(problems[:3])}); warm-start from a run of the same model space"
                )
            if trial.status in ("succeeded", "stopped"):
                try:
                    if self.config.profilers:
                        trial.metric = self._with_costs(trial.sample, trial.metric)
                    objective_values(trial.metric, self.objectives)
                except MetricError as e:
                    raise ExperimentError(
                        f"warm_start={str(source)!r}: trial {trial.id}'s metric does not hold this run's "
                        f"objectives: {e}"
                    ) from None
        # An earlier run's architectures this run's constraints rule out are not this search's.
        kept = [t for t in trials if self.search_space.satisfies(t.sample)]
        if len(kept) < len(trials):
            warnings.warn(
                f"warm_start: {len(trials) - len(kept)} of {len(trials)} earlier trials break this run's "
                f"constraints {[c.name for c in self.config.constraints]} and are left out",
                stacklevel=3,
            )
        return kept

    def _open_store(self, existing: bool) -> Store:
        """The resumed store, or a new one created with its identity in one step."""
        if existing:
            return Store(self.store_path)
        remove_store_files(self.store_path)  # a store that held nothing
        seed = self.config.seed if self.config.seed is not None else random.SystemRandom().randrange(2**31)
        meta = {**self.identity(), "seed": seed, "created_at": time.time(), "config": self.config.to_dict()}
        meta["space"] = f"{type(self.space).__module__}.{type(self.space).__qualname__}"
        meta.update(objective=meta["objectives"][0], direction=meta["directions"][0])
        return Store.create(self.store_path, meta)

    def _remove_run(self, store: Store | None) -> None:
        if store is not None:
            store.close()
        remove_store_files(self.store_path)
        shutil.rmtree(self.directory / TRIALS_DIR, ignore_errors=True)

    def begin(self, store: Store) -> int:
        """The run's seed; the configuration is stored afresh (a resumed run may
        raise the budget)."""
        store.set_meta("config", self.config.to_dict())
        return int(store.get_meta("seed"))

    def _prepare(self, store: Store, existing: bool, warm: list[TrialRecord] | None = None) -> list[int]:
        self._seed = self.begin(store)
        self.strategy.attach(self.search_space, seed=self._seed, direction=self.directions)  # type: ignore[arg-type]
        state = store.get_meta("strategy_state")
        if state is not None:
            self.strategy.load_state_dict(state)
        if existing:
            self.strategy.restore_history([t.sample for t in store.trials()])
            self._fail_crashing_trials(store)
        pending = store.requeue_unfinished()
        if warm:
            self._copy_warm_start(store, warm)
        self._warm_trials = int(store.get_meta("warm_start_trials", 0))
        if self.early_stopping is not None:
            self.early_stopping.attach(self.direction)  # type: ignore[arg-type]
            stopping_state = store.get_meta("early_stopping_state")
            if stopping_state is not None:
                self.early_stopping.load_state_dict(stopping_state)
            for trial_id in pending:  # re-run from the start: forget their partial curves
                self.early_stopping.forget(trial_id)
        return pending

    def _fail_crashing_trials(self, store: Store) -> None:
        """A trial that was running inside the driver when it died took the driver
        down with it (or was there when it was killed): after ``max_attempts`` such
        attempts it is recorded as failed instead of re-run first on every resume."""
        limit = self.config.max_attempts
        for trial in store.trials("running"):
            if trial.worker == "main" and trial.attempts >= limit:
                error = (
                    f"the driver process ended while this trial ran in it, {trial.attempts} times "
                    f"(max_attempts={limit}); it probably crashes the process (segfault, out of memory, os._exit): "
                    "run it with engine='process' to contain it, or raise max_attempts"
                )
                with store.transaction():
                    store.finish_trial(trial.id, "failed", error=error, worker=trial.worker, at=time.time())
                    self.strategy.tell(FinishedTrial(trial.id, trial.sample, "failed", None))
                    store.set_meta("strategy_state", self.strategy.state_dict())

    def _copy_warm_start(self, store: Store, trials: list[TrialRecord]) -> None:
        """An earlier run's finished trials join this one (copied, told to the
        strategy, not re-run, not counted in ``max_trials``)."""
        several = len(self.objectives) > 1
        self.strategy.restore_history([t.sample for t in trials])
        with store.transaction():
            for trial in trials:
                scored = trial.status in ("succeeded", "stopped")
                values = objective_values(trial.metric, self.objectives) if scored else None
                sample = self.search_space.validate(trial.sample)
                trial_id = store.add_trial(sample, arch_key=self.search_space.architecture_key(sample))
                store.finish_trial(
                    trial_id,
                    trial.status,
                    metric=trial.metric,
                    objective=None if values is None else values[0],
                    error=trial.error,
                    worker=f"warm-start:{trial.id}",
                    at=trial.ended_at,
                    values=values if several else None,
                    stopped_early=trial.status == "stopped",
                )
                # The strategy hears of a stopped trial as of a succeeded one stopped early (as in a run).
                status = "succeeded" if trial.status == "stopped" else trial.status
                status = status if values is None or all(map(math.isfinite, values)) else "failed"
                self.strategy.tell(
                    FinishedTrial(
                        trial_id,
                        sample,
                        status,
                        None if values is None else values[0],
                        trial.metric,
                        trial.status == "stopped",
                        values if several else None,
                    )
                )
            store.set_meta("warm_start_trials", len(trials))
            store.set_meta("warm_start", str(self.config.warm_start))
            store.set_meta("strategy_state", self.strategy.state_dict())

    def _loop(self, store: Store, engine: Engine, pending: list[int]) -> Experiment:
        config = self.config
        view = ProgressView(config.name or str(self.directory), self.objectives, directions=self.directions)
        started_at = time.time()
        running: dict[int, dict[str, Any]] = {}
        asked_out = False
        reason: str | None = None
        lost: str | None = None  # what happened to a store deleted or replaced under the run
        self._recorded_architectures = set()  # this store's, as far as this run knows
        store.set_meta("status", "running")
        store.set_meta("driver", {"pid": os.getpid(), "host": socket.gethostname()})
        heartbeat = time.time()
        store.set_meta("heartbeat", heartbeat)
        tally = self._tally = _Tally.of(store, self.directions)
        tally.created -= self._warm_trials  # max_trials counts this search's own trials
        engine.listener = lambda event: self._record(store, engine, event, running, view, started_at)
        view.start()
        try:
            while True:
                if config.max_duration_seconds is not None and time.time() - started_at >= config.max_duration_seconds:
                    reason = f"max_duration ({config.max_duration}) reached"
                    break
                while engine.capacity > 0 and not asked_out:
                    if pending:
                        trial_id = pending.pop(0)
                        sample = store.trial(trial_id).sample
                    else:
                        if config.max_trials is not None and tally.created >= config.max_trials:
                            asked_out = True
                            break
                        sample = self.strategy.ask()  # type: ignore[assignment]
                        if sample is None:
                            asked_out = self.strategy.is_exhausted() or not running
                            break
                        sample = self.search_space.validate(sample)
                        with store.transaction():
                            trial_id = store.add_trial(sample, arch_key=self.search_space.architecture_key(sample))
                            store.set_meta("strategy_state", self.strategy.state_dict())
                        tally.created += 1
                    running[trial_id] = sample
                    engine.submit(Trial(trial_id, sample, seed=trial_seed(self._seed, trial_id)))
                if not running:
                    if config.max_trials is not None and tally.created >= config.max_trials:
                        reason = f"max_trials ({config.max_trials}) reached"
                    elif self.strategy.is_exhausted():
                        reason = "the strategy is exhausted"
                    else:
                        reason = "the strategy proposed nothing more"
                    break
                for event in engine.wait(POLL_SECONDS):
                    self._record(store, engine, event, running, view, started_at)
                view.update(self._snapshot(store, running, started_at))
                if time.time() - heartbeat >= HEARTBEAT_SECONDS:  # lets readers tell a dead driver
                    heartbeat = time.time()
                    lost = store.check_identity()
                    if lost is not None:
                        break
                    store.set_meta("heartbeat", heartbeat)
                if asked_out and running and not self.strategy.is_exhausted():
                    asked_out = False  # a waiting strategy may propose again after results
            if lost is None:
                lost = store.check_identity()  # deleted in the last seconds: do not report success
        except KeyboardInterrupt:
            reason = "interrupted (Ctrl-C); running trials were cancelled and will re-run on resume"
        except StoreError as e:
            lost = store.check_identity()  # writing to a file that was replaced fails: report the cause
            if lost is None:
                self._stop_on_error(store, engine, view, e)
                raise
        except BaseException as e:
            self._stop_on_error(store, engine, view, e)
            raise
        engine.shutdown()
        if lost is not None:
            view.stop(f"stopped: {lost}")
            raise ExperimentError(self._rescue(store, lost))
        self._close_run(store, reason or "stopped", view)
        return self

    def _stop_on_error(self, store: Store, engine: Engine, view: ProgressView, e: BaseException) -> None:
        """End a run that an error stops: its trials requeued, the real cause shown."""
        reason = f"stopped by an error: {type(e).__name__}: {e}"
        engine.shutdown()
        try:
            self._close_run(store, reason, view)
        except Exception:  # a broken store: the original error is the one to see
            view.stop(f"finished: {reason}")

    def _close_run(self, store: Store, reason: str, view: ProgressView) -> None:
        """The run's last words, in the store and on the terminal."""
        store.requeue_unfinished(cancelled=True)  # this run cancelled them: that attempt does not count
        counts = store.counts()
        store.set_meta("status", "done" if not counts["waiting"] else "interrupted")
        store.set_meta("ended_at", time.time())
        best = store.best(self.direction)
        summary = f"finished: {reason}. {counts['succeeded']} succeeded, {counts['failed']} failed"
        if counts["stopped"]:
            summary += f", {counts['stopped']} stopped early"
        if len(self.objectives) > 1:
            summary += f"; the Pareto front of {', '.join(self.objectives)} holds {len(self._tally.front)} trials"
        elif best:
            summary += f"; best {self.objectives[0]} = {best[0].objective:.6g} (trial {best[0].id}): {best[0].sample}"
        view.stop(summary)

    def _rescue(self, store: Store, lost: str) -> str:
        """Save what a run whose store vanished had recorded; the error's text."""
        self.directory.mkdir(parents=True, exist_ok=True)
        target = self.directory / f"{STORE_FILE}.rescued-{time.strftime('%Y%m%d-%H%M%S')}"
        store.rescue(target)
        store.close()
        return (
            f"{lost}; the run stopped (its running trials were cancelled). Everything it had recorded "
            f"({self._tally.created + self._warm_trials} trials) is saved in {target}: move it to {self.store_path} "
            "and call run(resume=True) to continue"
        )

    def _record_architecture(self, store: Store, sample: dict[str, Any], event: TrialEvent) -> None:
        """The trial's module tree, in the store once per architecture: viewers (the
        dashboard) show it without rebuilding the space."""
        if event.architecture is None:
            return
        key = self.search_space.architecture_key(sample)
        if key in self._recorded_architectures:
            return
        try:
            store.record_architecture(key, event.architecture)
        except (TypeError, ValueError):  # a tree that is no JSON (never from module_summary): the trial is kept
            return
        self._recorded_architectures.add(key)

    def _record(
        self,
        store: Store,
        engine: Engine,
        event: TrialEvent,
        running: dict[int, Any],
        view: ProgressView,
        started_at: float,
    ) -> None:
        if event.trial_id not in running:
            return  # an event of a trial cancelled meanwhile
        if event.kind == "started":
            self._started_any = True
            store.mark_running(event.trial_id, event.worker, event.at)
            return
        if event.kind == "intermediate":
            try:
                value: float | None = objective_value(event.metric, self.objectives[0])
            except MetricError:
                value = None
            store.add_intermediate(event.trial_id, event.step or 0, event.metric, value, event.at)
            stopper = self.early_stopping
            if stopper is not None and value is not None and event.trial_id not in self._stopping:
                if stopper.should_stop(event.trial_id, event.step or 0, value):
                    self._stopping.add(event.trial_id)
                    engine.request_stop(event.trial_id)
            return
        status, error, values = event.status or "failed", event.error, None
        metric = event.metric
        if status == "succeeded" and self.config.profilers:
            try:
                metric = self._with_costs(running[event.trial_id], metric)
            except MetricError as e:
                status, error = "failed", str(e)
        if status == "succeeded":
            try:
                values = objective_values(metric, self.objectives)
            except MetricError as e:
                status, error = "failed", str(e)
            else:
                bad = [(name, v) for name, v in zip(self.objectives, values) if not math.isfinite(v)]
                if bad:
                    status, error, values = "failed", f"the objective {bad[0][0]!r} is {bad[0][1]}", None
        value = None if values is None else values[0]
        several = len(self.objectives) > 1
        sample = running.pop(event.trial_id)
        stopped = event.trial_id in self._stopping
        self._stopping.discard(event.trial_id)
        # Stored as "stopped" (not ranked); the strategy is told "succeeded, stopped early" as before.
        stored_status = "stopped" if stopped and status == "succeeded" else status
        with store.transaction():
            store.finish_trial(
                event.trial_id,
                stored_status,
                metric=metric,
                objective=value,
                error=error,
                worker=event.worker,
                at=event.at,
                stopped_early=stopped,
                values=values if several else None,
                output=event.output,
            )
            self._record_architecture(store, sample, event)
            self.strategy.tell(
                FinishedTrial(event.trial_id, sample, status, value, metric, stopped, values if several else None)
            )
            store.set_meta("strategy_state", self.strategy.state_dict())
            if self.early_stopping is not None:
                store.set_meta("early_stopping_state", self.early_stopping.state_dict())
        self._tally.finished(event.trial_id, values if status == "succeeded" else None, stored_status)
        view.trial_finished(
            event.trial_id,
            stored_status,
            values,
            error,
            self._snapshot(store, running, started_at),
            sample=sample,
            duration=event.duration,
        )

    def _with_costs(self, sample: Any, metric: Any) -> Any:
        """``metric`` with each of ``config.profilers``' costs of ``sample`` added
        (a plain number becomes ``{"default": number, ...}``)."""
        merged = dict(metric) if isinstance(metric, dict) else {"default": metric}
        for name, profiler in self.config.profilers.items():
            if name in merged:
                raise MetricError(
                    f"the evaluator reported {name!r} and profilers[{name!r}] computes it too; rename one of them"
                )
            measure = profiler.profile if hasattr(profiler, "profile") else profiler
            try:
                merged[name] = float(measure(sample))
            except Exception as e:  # a profiler's failure fails this trial, not the search
                raise MetricError(f"profilers[{name!r}] failed on this sample: {type(e).__name__}: {e}") from e
        return merged

    def _snapshot(self, store: Store, running: dict[int, Any], started_at: float) -> Snapshot:
        tally = self._tally
        return Snapshot(
            done=tally.done,
            running=len(running),
            failed=tally.failed,
            budget=self.config.max_trials,
            best=tally.best,
            best_trial=tally.best_trial,
            elapsed=time.time() - started_at,
            max_duration=self.config.max_duration_seconds,
            front=len(tally.front) if len(self.objectives) > 1 else None,
            stopped=tally.stopped,
        )

    def _run_oneshot(self, resume: bool) -> Experiment:
        from ._oneshot import run_oneshot

        with self._driving():
            existing = self._inspect_store(resume)
            check_gpus(self.config)
            store = self._open_store(existing)
            try:
                run_oneshot(self, store)
            finally:
                store.close()
        return self

    # Results -------------------------------------------------------------------------
    def _read(self) -> Store:
        if not self.store_path.exists():
            raise ExperimentError(f"{self.directory} holds no run yet; call run() first")
        return Store(self.store_path, readonly=True)

    def trials(self) -> list[TrialRecord]:
        """Every trial of this experiment's store."""
        store = self._read()
        try:
            return store.trials()
        finally:
            store.close()

    def export_top_models(self, k: int | None = 1, formatter: str = "dict", *, top_k: Any = _UNSET) -> list[Any]:
        """The ``k`` best architectures, best first, by the objective's direction:
        as samples (``formatter="dict"``) or frozen models (``"instance"``).
        ``top_k=`` is NNI's name for ``k``.

        With several objectives "best" is NSGA-II's order (Pareto front first,
        spread-out trials first within a front); ``k=None`` gives exactly the
        Pareto front, ordered by the first objective (see :meth:`pareto_front`).
        """
        if top_k is not _UNSET:
            if k != 1:
                raise ExperimentError(f"give k or top_k (NNI's name), not both: k={k!r}, top_k={top_k!r}")
            k = top_k  # type: ignore[assignment]
        if k is not None and (isinstance(k, bool) or not isinstance(k, int) or k < 1):
            raise ExperimentError(f"k must be a positive integer (how many top models) or None (the front), got {k!r}")
        if formatter not in ("dict", "instance"):
            raise ExperimentError(f"formatter must be 'dict' or 'instance', got {formatter!r}")
        store = self._read()
        try:
            top = pareto_trials(store) if k is None else top_trials(store, k)
        finally:
            store.close()
        if formatter == "dict":
            return [t.sample for t in top]
        labels = set(self.space.search_space)
        return [self.space.freeze({k: v for k, v in t.sample.items() if k in labels}) for t in top]

    def pareto_front(self, formatter: str = "dict") -> list[Any]:
        """The trials no other trial beats on every objective (with one objective:
        those sharing the best value), ordered by the first objective; the
        samples, or frozen models with ``formatter="instance"``."""
        return self.export_top_models(None, formatter)

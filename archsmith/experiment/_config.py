"""``ExperimentConfig``: every knob of a run, checked when it is built."""

from __future__ import annotations

import copy
import difflib
import functools
import math
import os
import re
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from archsmith.space import ArchsmithError

from ._ray_config import DEFAULT_RESOURCES, check_engine_fields, check_max_retries, check_ray_address, check_resources

DEFAULT_ROOT = Path("archsmith-experiments")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


class ConfigError(ArchsmithError, ValueError):
    """An experiment setting is invalid."""


def parse_duration(value: float | str | None) -> float | None:
    """Seconds from a number or a string like ``"90s"``, ``"10m"``, ``"2h"``, ``"1d"``."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ConfigError(f"max_duration must be seconds or a string like '10m', got {value!r}")
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise ConfigError(f"max_duration {value!r} is not a duration; use seconds or e.g. '90s', '10m', '2h'")
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if not seconds > 0 or math.isinf(seconds):  # also rejects NaN
        raise ConfigError(f"max_duration must be a positive, finite duration, got {value!r}")
    return seconds


def _positive_int(name: str, value: Any, allow_none: bool = False, minimum: int = 1) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}{' or None' if allow_none else ''}, got {value!r}")


#: NNI's ``RetiariiExeConfig`` / ``ExperimentConfig`` names -> archsmith's field
#: (``None``: no such setting here, with the reason).
NNI_NAMES: dict[str, tuple[str | None, str]] = {
    "max_trial_number": ("max_trials", ""),
    "trial_concurrency": ("concurrency", ""),
    "max_experiment_duration": ("max_duration", ""),
    "max_trial_duration": ("trial_timeout", ""),
    "trial_gpu_number": ("gpus_per_trial", ""),
    "execution_engine": ("engine", "'process' (local worker processes), 'inprocess', 'benchmark', ..."),
    "training_service": ("engine", "'process' runs trials on this machine, like NNI's 'local'"),
    "experiment_name": ("name", ""),
    "experiment_working_directory": ("workdir", ""),
    "random_seed": ("seed", ""),
    "debug": ("engine", "engine='inprocess' runs trials in this process, where pdb works"),
    "trial_command": (None, "archsmith runs the evaluator function itself; there is no trial command"),
    "trial_code_directory": (None, "workers receive the evaluator and space by value; there is no code directory"),
    "use_active_gpu": (None, "GPUs are given per trial with gpus_per_trial"),
    "search_space": (None, "the search space is the model space's choices"),
    "tuner": (None, "pass a strategy to Experiment(...)"),
}


def _check_max_trials(value: Any) -> None:
    _positive_int("max_trials", value, allow_none=True)


def _check_concurrency(value: Any) -> None:
    _positive_int("concurrency", value, allow_none=True)


def _check_gpus(value: Any) -> None:
    _positive_int("gpus_per_trial", value, minimum=0)


def _check_max_attempts(value: Any) -> None:
    _positive_int("max_attempts", value)


def _check_engine(value: Any) -> None:
    from archsmith.execution import ENGINES

    if not isinstance(value, str) or value not in ENGINES:
        raise ConfigError(f"unknown engine {value!r}; the registered engines are {sorted(ENGINES)}")


def _check_timeout(value: Any) -> None:
    if value is not None and (
        isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0  # also rejects NaN
    ):
        raise ConfigError(f"trial_timeout must be a positive number of seconds or None, got {value!r}")


def _check_seed(value: Any) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise ConfigError(f"seed must be an integer or None, got {value!r}")


def _check_name(value: Any) -> None:
    if value is not None and (not isinstance(value, str) or not re.fullmatch(r"[\w.-]+", value) or set(value) == {"."}):
        raise ConfigError(f"name must be letters, digits, '.', '_' or '-' (it names a directory), got {value!r}")


def _check_path(name: str) -> Any:
    def check(value: Any) -> None:
        if value is not None and not isinstance(value, (str, os.PathLike)):
            raise ConfigError(f"{name} must be a directory path or None, got {value!r}")

    return check


def _check_constraints(value: Any) -> None:
    from archsmith.space import Constraint

    if not isinstance(value, (list, tuple)):
        raise ConfigError(
            f"constraints must be a list of constraints, e.g. [FlopsProfiler(space, x) <= 300e6], got {value!r}"
        )
    for c in value:
        if not isinstance(c, Constraint):
            hint = (
                " (a chained comparison 100 <= p <= 300 keeps one side: write p.between(100, 300))"
                if isinstance(c, bool)
                else ""
            )
            raise ConfigError(
                f"constraints holds {c!r}, which is not a constraint{hint}: compare a profiler with a bound "
                "(FlopsProfiler(space, x) <= 300e6) or wrap a predicate: archsmith.space.Constraint(fn, name=...)"
            )


def _check_profilers(value: Any) -> None:
    if not isinstance(value, dict):
        raise ConfigError(
            f"profilers must be a dict of metric name -> profiler, e.g. {{'flops': FlopsProfiler(space, x)}}, got {value!r}"
        )
    for name, profiler in value.items():
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_][\w.-]*", name):
            raise ConfigError(f"profilers: {name!r} is not a metric name (letters, digits, '_', '.', '-')")
        if not callable(getattr(profiler, "profile", None)) and not callable(profiler):
            raise ConfigError(
                f"profilers[{name!r}] must be a profiler (FlopsProfiler, NumParamsProfiler, LatencyProfiler) "
                f"or a function sample -> float, got {profiler!r}"
            )


#: One check per plain field, run on every assignment.
_CHECKS = {
    "max_trials": _check_max_trials,
    "max_duration": parse_duration,
    "concurrency": _check_concurrency,
    "engine": _check_engine,
    "trial_timeout": _check_timeout,
    "seed": _check_seed,
    "name": _check_name,
    "workdir": _check_path("workdir"),
    "gpus_per_trial": _check_gpus,
    "max_attempts": _check_max_attempts,
    "warm_start": _check_path("warm_start"),
    "constraints": _check_constraints,
    "profilers": _check_profilers,
    "ray_address": check_ray_address,
    "resources_per_trial": check_resources,
    "max_retries": check_max_retries,
}
_DERIVED = ("max_duration_seconds", "objectives", "directions")


@dataclass
class ExperimentConfig:
    """How an experiment runs. Every field is checked when the config is built
    and again on every assignment; an unknown name (NNI's ``max_trial_number``,
    a typo) is refused with the right one.

    - ``max_trials``, ``max_duration`` (seconds or ``"10m"``): the budget; the run
      also ends when the strategy is exhausted, or on Ctrl-C;
    - ``concurrency``: trials at once (``None``: 1, or with ``engine="ray"`` as
      many as the cluster holds); ``engine``: ``"process"`` (default),
      ``"inprocess"``, ``"ray"``, or another registered engine; ``trial_timeout``
      (seconds); ``gpus_per_trial``;
    - with ``engine="ray"``: ``ray_address`` (``None`` starts a local Ray,
      ``"auto"``, ``"ray://host:10001"`` or ``"host:port"`` join a cluster),
      ``resources_per_trial`` (``{"cpu": 1, "gpu": 0}``; fractional GPUs allowed)
      and ``max_retries`` (re-runs of a trial whose node was lost); see docs/scale.md;
    - ``objective``: the metric name to optimise (``"default"`` for a plain number)
      and ``direction``: ``"maximize"`` or ``"minimize"`` (``None``: the evaluator's
      own, e.g. maximize accuracy, minimize MSE; there is no silent default).
      Several objectives: a list of names with a list of directions
      (``objective=["accuracy", "params"], direction=["maximize", "minimize"]``),
      or a dict ``{"accuracy": "maximize", "params": "minimize"}``; the search
      then finds a Pareto front;
    - ``seed``: every random decision of the search derives from it (chosen at
      random and recorded if ``None``);
    - ``name`` and ``workdir``: where the store lives (default
      ``./archsmith-experiments/<name>``);
    - ``max_attempts``: how many times a trial may take the driver down with it
      (in-process engine) before it is recorded as failed instead of re-run on resume;
    - ``warm_start``: the directory of an earlier run of the same space; its
      finished trials are copied into this run and told to the strategy, not re-run
      (how to go on with another strategy);
    - ``constraints``: bounds every proposed architecture must meet, e.g.
      ``[FlopsProfiler(space, x) <= 300e6]`` (any ``archsmith.space.Constraint``);
      strategies propose only architectures that meet them, and a run they leave
      nothing to ends with an error naming them and the smallest cost seen;
    - ``profilers``: metric name -> profiler (or function ``sample -> float``),
      computed in the driver for every finished trial and recorded with its metrics,
      so a cost can be an objective without training:
      ``objective={"accuracy": "maximize", "flops": "minimize"},
      profilers={"flops": FlopsProfiler(space, x)}`` (a profiler objective with no
      direction is minimised).

    >>> cfg = ExperimentConfig(max_trials=10, direction="maximize")
    >>> cfg.max_trial_number = 3
    Traceback (most recent call last):
    ...
    archsmith.experiment._config.ConfigError: ExperimentConfig has no field 'max_trial_number' (NNI's name): use max_trials
    """

    max_trials: int | None = None
    max_duration: float | str | None = None
    concurrency: int | None = None
    engine: str = "process"
    trial_timeout: float | None = None
    objective: str | list[str] | dict[str, str] = "default"
    direction: str | list[str | None] | None = None
    seed: int | None = None
    name: str | None = None
    workdir: str | Path | None = None
    gpus_per_trial: int = 0
    max_attempts: int = 2
    warm_start: str | Path | None = None
    constraints: list[Any] = field(default_factory=list)
    profilers: dict[str, Any] = field(default_factory=dict)
    ray_address: str | None = None
    resources_per_trial: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_RESOURCES))
    max_retries: int = 1
    max_duration_seconds: float | None = field(init=False, default=None, repr=False)
    #: ``objective`` as a tuple of names, and one direction (or ``None``) per name.
    objectives: tuple[str, ...] = field(init=False, default=("default",), repr=False)
    directions: tuple[str | None, ...] = field(init=False, default=(None,), repr=False)

    def __post_init__(self) -> None:
        for name, check in _CHECKS.items():
            check(getattr(self, name))
        self._set("max_duration_seconds", parse_duration(self.max_duration))
        self._resolve_concurrency()
        check_engine_fields(self)
        names, directions = _objectives(self.objective, self.direction, self.profilers)
        self._set("objectives", names)
        self._set("directions", directions)
        if self.name is None and self.workdir is None:
            self._set("name", time.strftime("exp-%Y%m%d-%H%M%S"))
        self._set("_checked", True)

    def _set(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: Any) -> None:
        if name not in _CHECKS and name not in ("objective", "direction"):
            raise ConfigError(_unknown_field(name))
        if not self.__dict__.get("_checked"):  # __init__ assigns; __post_init__ checks them together
            self._set(name, value)
            return
        if name in ("objective", "direction"):
            objective = value if name == "objective" else self.objective
            direction = value if name == "direction" else self.direction
            if name == "objective" and isinstance(value, dict):
                direction = None  # a dict carries the directions
            names, directions = _objectives(objective, direction, self.profilers)
            self._set("objective", objective)
            self._set("direction", direction)
            self._set("objectives", names)
            self._set("directions", directions)
            return
        _CHECKS[name](value)
        self._set(name, value)
        if name in ("engine", "concurrency"):
            self._resolve_concurrency()
        if name == "max_duration":
            self._set("max_duration_seconds", parse_duration(value))

    def _resolve_concurrency(self) -> None:
        # None means "the engine's default": the Ray engine sizes itself to the cluster, the others run one.
        if self.concurrency is None and self.engine != "ray":
            self._set("concurrency", 1)

    @property
    def directory(self) -> Path:
        """The experiment's directory (holds ``experiment.db``)."""
        if self.workdir is not None:
            return Path(self.workdir)
        return DEFAULT_ROOT / str(self.name)

    def to_dict(self) -> dict[str, Any]:
        """The settings as JSON-able values (constraints and profilers by name)."""
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in _DERIVED}
        data["constraints"] = [c.name for c in self.constraints]
        data["profilers"] = {name: _describe(p) for name, p in self.profilers.items()}
        data = copy.deepcopy(data)
        for path in ("workdir", "warm_start"):
            data[path] = None if data[path] is None else str(data[path])
        return data


def _describe(profiler: Any) -> str:
    return repr(profiler) if hasattr(profiler, "profile") else getattr(profiler, "__qualname__", repr(profiler))


def _unknown_field(name: str) -> str:
    if name in _DERIVED:
        source = "max_duration" if name == "max_duration_seconds" else "objective/direction"
        return f"ExperimentConfig.{name} is derived from {source}; set that instead"
    if name in NNI_NAMES:
        ours, note = NNI_NAMES[name]
        if ours is None:
            return f"ExperimentConfig has no field {name!r} (NNI's name): {note}"
        return f"ExperimentConfig has no field {name!r} (NNI's name): use {ours}" + (f" ({note})" if note else "")
    close = difflib.get_close_matches(name, [*_CHECKS, "objective", "direction"], n=1)
    hint = (
        f"; did you mean {close[0]!r}?" if close else f"; the fields are {sorted([*_CHECKS, 'objective', 'direction'])}"
    )
    return f"ExperimentConfig has no field {name!r}{hint}"


_generated_init = ExperimentConfig.__init__


@functools.wraps(_generated_init)
def _init(self: ExperimentConfig, *args: Any, **kwargs: Any) -> None:
    # The dataclass' own __init__ would say "unexpected keyword argument"; name the right field.
    for name in kwargs:
        if name not in _CHECKS and name not in ("objective", "direction"):
            raise ConfigError(_unknown_field(name))
    _generated_init(self, *args, **kwargs)


ExperimentConfig.__init__ = _init  # type: ignore[method-assign]


def _direction(value: Any) -> str | None:
    if value not in ("maximize", "minimize", None):
        raise ConfigError(f"direction must be 'maximize' or 'minimize', got {value!r}")
    return value  # type: ignore[no-any-return]


def _objectives(objective: Any, direction: Any, profilers: Any = ()) -> tuple[tuple[str, ...], tuple[str | None, ...]]:
    """``(names, directions)`` from the config's ``objective`` and ``direction``
    (``profilers``: the names the driver adds to a trial's metric)."""
    if isinstance(objective, dict):
        if direction is not None:
            raise ConfigError("objective is a dict of name -> direction; leave direction=None")
        names, directions = list(objective), list(objective.values())
    elif isinstance(objective, (list, tuple)):
        names = list(objective)
        if direction is None or isinstance(direction, str):
            if len(names) > 1 and direction is not None:
                raise ConfigError(
                    f"{len(names)} objectives {names} need one direction each, e.g. direction=['maximize', 'minimize']"
                )
            directions = [direction] * len(names)
        elif isinstance(direction, (list, tuple)):
            directions = list(direction)
        else:
            raise ConfigError(f"direction must be 'maximize', 'minimize', a list of them, or None; got {direction!r}")
    else:
        names = [objective]
        if isinstance(direction, (list, tuple)):
            if len(direction) != 1:
                raise ConfigError(f"one objective {objective!r} takes one direction, got {direction!r}")
            direction = direction[0]
        directions = [direction]
    if not names:
        raise ConfigError("objective is empty; name at least one metric (or use 'default' for a plain number)")
    for name in names:
        if not isinstance(name, str) or not name:
            raise ConfigError(f"objective must be a metric name (use 'default' for a plain number), got {name!r}")
    if len(set(names)) != len(names):
        raise ConfigError(f"objective names repeat: {names}; name each metric once")
    if len(directions) != len(names):
        raise ConfigError(
            f"{len(names)} objectives {names} but {len(directions)} directions {directions}; give one each"
        )
    if len(names) > 1 and "default" in names and any(n != "default" and n not in profilers for n in names):
        raise ConfigError(
            "'default' names a plain-number metric; several objectives need a dict metric with named values "
            "(or, next to 'default', only profilers' names)"
        )
    return tuple(names), tuple(_direction(d) for d in directions)

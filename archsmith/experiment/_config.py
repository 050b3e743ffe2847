"""``ExperimentConfig``: every knob of a run, checked when it is built."""

from __future__ import annotations

import math
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from archsmith.space import ArchsmithError

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


@dataclass
class ExperimentConfig:
    """How an experiment runs.

    - ``max_trials``, ``max_duration`` (seconds or ``"10m"``): the budget; the run
      also ends when the strategy is exhausted, or on Ctrl-C;
    - ``concurrency``: trials at once; ``engine``: ``"process"`` (default),
      ``"inprocess"``, or another registered engine; ``trial_timeout`` (seconds);
      ``gpus_per_trial``;
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
      ``./archsmith-experiments/<name>``).
    """

    max_trials: int | None = None
    max_duration: float | str | None = None
    concurrency: int = 1
    engine: str = "process"
    trial_timeout: float | None = None
    objective: str | list[str] | dict[str, str] = "default"
    direction: str | list[str | None] | None = None
    seed: int | None = None
    name: str | None = None
    workdir: str | Path | None = None
    gpus_per_trial: int = 0
    max_duration_seconds: float | None = field(init=False, default=None, repr=False)
    #: ``objective`` as a tuple of names, and one direction (or ``None``) per name.
    objectives: tuple[str, ...] = field(init=False, default=("default",), repr=False)
    directions: tuple[str | None, ...] = field(init=False, default=(None,), repr=False)

    def __post_init__(self) -> None:
        _positive_int("max_trials", self.max_trials, allow_none=True)
        self.max_duration_seconds = parse_duration(self.max_duration)
        _positive_int("concurrency", self.concurrency)
        _positive_int("gpus_per_trial", self.gpus_per_trial, minimum=0)
        from archsmith.execution import ENGINES

        if self.engine not in ENGINES:
            raise ConfigError(f"unknown engine {self.engine!r}; choose one of {sorted(ENGINES)}")
        if self.trial_timeout is not None and (
            isinstance(self.trial_timeout, bool)
            or not isinstance(self.trial_timeout, (int, float))
            or not self.trial_timeout > 0  # also rejects NaN
        ):
            raise ConfigError(f"trial_timeout must be a positive number of seconds or None, got {self.trial_timeout!r}")
        self.objectives, self.directions = _objectives(self.objective, self.direction)
        if self.seed is not None and (isinstance(self.seed, bool) or not isinstance(self.seed, int)):
            raise ConfigError(f"seed must be an integer or None, got {self.seed!r}")
        if self.name is not None and (
            not isinstance(self.name, str) or not re.fullmatch(r"[\w.-]+", self.name) or set(self.name) == {"."}
        ):
            raise ConfigError(
                f"name must be letters, digits, '.', '_' or '-' (it names a directory), got {self.name!r}"
            )
        if self.name is None and self.workdir is None:
            self.name = time.strftime("exp-%Y%m%d-%H%M%S")

    @property
    def directory(self) -> Path:
        """The experiment's directory (holds ``experiment.db``)."""
        if self.workdir is not None:
            return Path(self.workdir)
        return DEFAULT_ROOT / str(self.name)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for derived in ("max_duration_seconds", "objectives", "directions"):
            data.pop(derived)
        data["workdir"] = None if self.workdir is None else str(self.workdir)
        return data


def _direction(value: Any) -> str | None:
    if value not in ("maximize", "minimize", None):
        raise ConfigError(f"direction must be 'maximize' or 'minimize', got {value!r}")
    return value  # type: ignore[no-any-return]


def _objectives(objective: Any, direction: Any) -> tuple[tuple[str, ...], tuple[str | None, ...]]:
    """``(names, directions)`` from the config's ``objective`` and ``direction``."""
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
    if len(names) > 1 and "default" in names:
        raise ConfigError(
            "'default' names a plain-number metric; several objectives need a dict metric with named values"
        )
    return tuple(names), tuple(_direction(d) for d in directions)

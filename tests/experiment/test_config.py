"""``ExperimentConfig``: every invalid value fails at construction, with a message
naming the field; durations parse."""

from __future__ import annotations

import pytest

from archsmith.execution import ENGINES
from archsmith.experiment import ConfigError, ExperimentConfig, parse_duration

INVALID = [
    ("max_trials", 0),
    ("max_trials", -1),
    ("max_trials", 1.5),
    ("max_trials", True),
    ("max_trials", "10"),
    ("max_duration", "ten minutes"),
    ("max_duration", "10 min"),
    ("max_duration", "10x"),
    ("max_duration", "m"),
    ("max_duration", ""),
    ("max_duration", "-5m"),
    ("max_duration", "0s"),
    ("max_duration", 0),
    ("max_duration", -1),
    ("max_duration", True),
    ("max_duration", float("nan")),
    ("concurrency", 0),
    ("concurrency", -2),
    ("concurrency", 1.5),
    ("concurrency", True),
    ("engine", "threads"),
    ("engine", ""),
    ("engine", None),
    ("trial_timeout", 0),
    ("trial_timeout", -1),
    ("trial_timeout", True),
    ("trial_timeout", "10"),
    ("trial_timeout", float("nan")),
    ("direction", "max"),
    ("direction", "Maximize"),
    ("seed", 1.5),
    ("seed", "1"),
    ("seed", True),
    ("name", "a/b"),
    ("name", ""),
    ("name", "has space"),
    ("name", "."),
    ("name", ".."),
    ("name", 5),
    ("objective", ""),
    ("objective", 5),
    ("gpus_per_trial", -1),
    ("gpus_per_trial", 1.5),
]


@pytest.mark.parametrize(("field", "value"), INVALID, ids=[f"{f}={v!r}" for f, v in INVALID])
def test_invalid_value_fails_at_construction_naming_the_field(field: str, value: object) -> None:
    with pytest.raises(ConfigError) as excinfo:
        ExperimentConfig(**{field: value})  # type: ignore[arg-type]
    assert field in str(excinfo.value), f"the message does not name {field!r}: {excinfo.value}"


def test_config_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="max_trials"):
        ExperimentConfig(max_trials=0)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("10m", 600), ("2h", 7200), ("1d", 86400), ("1.5m", 90), ("45", 45), (" 10m ", 600), (30, 30)],
)
def test_durations_parse(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == seconds
    assert ExperimentConfig(max_duration=text).max_duration_seconds == seconds


def test_valid_values_are_kept() -> None:
    config = ExperimentConfig(
        max_trials=5,
        max_duration="10m",
        concurrency=3,
        engine="inprocess",
        trial_timeout=2.5,
        objective="acc",
        direction="minimize",
        seed=-7,
        name="run_1.a-b",
    )
    data = config.to_dict()
    assert data["max_trials"] == 5 and data["max_duration"] == "10m" and data["trial_timeout"] == 2.5
    assert data["direction"] == "minimize" and data["objective"] == "acc" and data["seed"] == -7
    assert config.max_duration_seconds == 600
    assert config.directory.name == "run_1.a-b"


@pytest.mark.parametrize("engine", sorted(ENGINES))
def test_every_registered_engine_is_accepted(engine: str) -> None:
    assert ExperimentConfig(engine=engine).engine == engine


def test_defaults() -> None:
    config = ExperimentConfig()
    assert config.max_trials is None and config.max_duration_seconds is None
    assert config.engine == "process" and config.concurrency == 1
    assert config.objective == "default"
    assert config.gpus_per_trial == 0


@pytest.mark.parametrize(("field", "value"), INVALID, ids=[f"{f}={v!r}" for f, v in INVALID])
def test_invalid_value_fails_on_assignment_too(field: str, value: object) -> None:
    config = ExperimentConfig(max_trials=3, direction="maximize")
    before = config.to_dict()
    with pytest.raises(ConfigError) as excinfo:
        setattr(config, field, value)
    assert field in str(excinfo.value), f"the message does not name {field!r}: {excinfo.value}"
    assert config.to_dict() == before, "a refused assignment must leave the config as it was"


NNI_FIELDS = [
    ("max_trial_number", "max_trials"),
    ("trial_concurrency", "concurrency"),
    ("max_experiment_duration", "max_duration"),
    ("trial_gpu_number", "gpus_per_trial"),
    ("execution_engine", "engine"),
    ("max_trial_duration", "trial_timeout"),
    ("experiment_name", "name"),
    ("training_service", "engine"),
]


@pytest.mark.parametrize(("nni", "ours"), NNI_FIELDS)
def test_nni_names_are_refused_naming_ours(nni: str, ours: str) -> None:
    config = ExperimentConfig(max_trials=3)
    with pytest.raises(ConfigError, match=f"{nni}.*NNI's name.*use {ours}"):
        setattr(config, nni, 3)
    assert config.max_trials == 3
    with pytest.raises(ConfigError, match=f"use {ours}"):
        ExperimentConfig(**{nni: 3})  # type: ignore[arg-type]


def test_unknown_and_derived_fields_are_refused() -> None:
    config = ExperimentConfig()
    with pytest.raises(ConfigError, match="did you mean 'concurrency'"):
        config.concurency = 2  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match="derived from max_duration"):
        config.max_duration_seconds = 5
    with pytest.raises(ConfigError, match=r"has no field .trial_command.*evaluator"):
        ExperimentConfig(trial_command="python train.py")  # type: ignore[call-arg]


def test_valid_assignments_take_effect_with_derived_fields() -> None:
    config = ExperimentConfig()
    config.max_trials = 7
    config.max_duration = "2m"
    config.engine = "inprocess"
    config.objective = {"acc": "maximize", "params": "minimize"}
    assert config.max_duration_seconds == 120
    assert config.objectives == ("acc", "params") and config.directions == ("maximize", "minimize")
    config.objective = "loss"
    config.direction = "minimize"
    assert config.objectives == ("loss",) and config.directions == ("minimize",)
    with pytest.raises(ConfigError, match="one direction each"):
        config.objective = ["a", "b"]  # a list needs a list of directions: assign a dict instead
    assert config.objectives == ("loss",)


def test_an_unknown_engine_lists_the_registered_ones() -> None:
    config = ExperimentConfig()
    with pytest.raises(ConfigError) as info:
        config.engine = "no-such-engine"
    assert "unknown engine 'no-such-engine'" in str(info.value) and str(sorted(ENGINES)) in str(info.value)

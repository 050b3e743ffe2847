"""Experiments: the search loop, its configuration, the SQLite store, export."""

from typing import TYPE_CHECKING, Any

from ._config import DEFAULT_ROOT, ConfigError, ExperimentConfig, parse_duration
from ._results import (
    ExperimentSummary,
    direction_of,
    dumps_samples,
    error_summary,
    export_samples,
    export_text,
    list_experiments,
    load_samples,
    loads_samples,
    objectives_of,
    pareto_trials,
    read_experiment,
    resolve_experiment,
    run_status,
    summarize,
    top_samples,
    top_trials,
    trial_log,
    trial_row,
)
from ._store import STATUSES, STORE_FILE, Store, StoreError, TrialRecord, find_store, iter_experiments

if TYPE_CHECKING:
    from ._experiment import Experiment, ExperimentError


def __getattr__(name: str) -> Any:
    # The run loop needs torch; the store, config and results (what the CLI reads) do not.
    if name in ("Experiment", "ExperimentError"):
        from . import _experiment

        return getattr(_experiment, name)
    raise AttributeError(f"module 'archsmith.experiment' has no attribute {name!r}")


__all__ = [
    "DEFAULT_ROOT",
    "STATUSES",
    "STORE_FILE",
    "ConfigError",
    "Experiment",
    "ExperimentConfig",
    "ExperimentError",
    "ExperimentSummary",
    "Store",
    "StoreError",
    "TrialRecord",
    "direction_of",
    "dumps_samples",
    "error_summary",
    "export_samples",
    "export_text",
    "find_store",
    "iter_experiments",
    "list_experiments",
    "load_samples",
    "loads_samples",
    "objectives_of",
    "pareto_trials",
    "parse_duration",
    "read_experiment",
    "resolve_experiment",
    "run_status",
    "summarize",
    "top_samples",
    "top_trials",
    "trial_log",
    "trial_row",
]

"""Experiments: the search loop, its configuration, the SQLite store, export."""

from ._config import ConfigError, ExperimentConfig, parse_duration
from ._experiment import Experiment, ExperimentError
from ._store import STORE_FILE, Store, StoreError, TrialRecord, find_store, iter_experiments

__all__ = [
    "STORE_FILE",
    "ConfigError",
    "Experiment",
    "ExperimentConfig",
    "ExperimentError",
    "Store",
    "StoreError",
    "TrialRecord",
    "find_store",
    "iter_experiments",
    "parse_duration",
]

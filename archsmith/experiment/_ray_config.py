"""Checks of the Ray engine's settings (``ray_address``, ``resources_per_trial``,
``max_retries``) and of how they go with the other fields."""

from __future__ import annotations

import importlib.util
import math
import re
from typing import Any

#: What ``resources_per_trial`` takes, and what a trial asks for when a key is left out.
DEFAULT_RESOURCES: dict[str, float] = {"cpu": 1, "gpu": 0}
_HOST_PORT = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[\w.-]+):(\d{1,5})$")


def _error(message: str) -> Exception:
    from ._config import ConfigError

    return ConfigError(message)


def check_ray_address(value: Any) -> None:
    """``None`` (a local Ray), ``"auto"``, ``"ray://host:port"`` or ``"host:port"``."""
    if value is None or value == "auto":
        return
    hint = "use None (start a local Ray), 'auto', 'ray://host:10001' (Ray Client) or 'host:port' (the head's GCS)"
    if not isinstance(value, str):
        raise _error(f"ray_address must be a string or None, got {value!r}; {hint}")
    rest = value[len("ray://") :] if value.startswith("ray://") else value
    match = _HOST_PORT.match(rest)
    if not match or not 0 < int(match.group(2)) < 65536:
        raise _error(f"ray_address {value!r} is not an address; {hint}")


def check_resources(value: Any) -> None:
    """A dict of ``cpu``/``gpu`` -> non-negative numbers (fractional GPUs below 1,
    whole ones above), not all zero."""
    if not isinstance(value, dict):
        raise _error(f"resources_per_trial must be a dict like {{'cpu': 1, 'gpu': 0}}, got {value!r}")
    for key, amount in value.items():
        if key not in DEFAULT_RESOURCES:
            raise _error(
                f"resources_per_trial has an unknown resource {key!r}; the known ones are {sorted(DEFAULT_RESOURCES)}"
            )
        if (
            isinstance(amount, bool)
            or not isinstance(amount, (int, float))
            or not (math.isfinite(amount) and amount >= 0)
        ):
            raise _error(f"resources_per_trial[{key!r}] must be a non-negative number, got {amount!r}")
    gpu = value.get("gpu", DEFAULT_RESOURCES["gpu"])
    if gpu > 1 and gpu != int(gpu):
        raise _error(f"resources_per_trial['gpu'] = {gpu}: a fraction of a GPU is below 1; above 1, ask for whole GPUs")
    if not any({**DEFAULT_RESOURCES, **value}.values()):
        raise _error("resources_per_trial asks for nothing (cpu and gpu are 0); each trial needs a CPU or a GPU share")


def check_max_retries(value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _error(f"max_retries must be an integer >= 0 (re-runs of a trial whose node was lost), got {value!r}")


def check_engine_fields(config: Any) -> None:
    """The Ray settings apply to ``engine='ray'`` only, and Ray must be installed
    for it; ``gpus_per_trial`` is the local engines' way to ask for GPUs."""
    if config.engine == "ray":
        try:
            installed = importlib.util.find_spec("ray") is not None
        except (ImportError, ValueError):  # a broken or blocked install
            installed = False
        if not installed:
            raise _error("engine='ray' needs Ray, which is not installed: pip install 'archsmith[ray]'")
        if config.gpus_per_trial:
            raise _error(
                f"engine='ray' takes GPUs through resources_per_trial={{'gpu': {config.gpus_per_trial}}}, "
                "not gpus_per_trial"
            )
        return
    given = [name for name, default in (("ray_address", None), ("max_retries", 1)) if getattr(config, name) != default]
    if config.resources_per_trial != DEFAULT_RESOURCES:
        given.append("resources_per_trial")
    if given:
        raise _error(f"{', '.join(given)} apply to engine='ray' only (this config has engine={config.engine!r})")

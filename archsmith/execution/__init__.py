"""Engines that run trials: in-process, local processes (the default), a Ray cluster, ..."""

from ._base import Engine
from ._inprocess import InProcessEngine
from ._process import EngineError, ProcessEngine
from ._ray_pool import release_ray_actors
from ._registry import ENGINES, register_engine
from ._run import Runner
from ._trial import Trial, TrialEvent, TrialPayload

__all__ = [
    "ENGINES",
    "Engine",
    "EngineError",
    "InProcessEngine",
    "ProcessEngine",
    "Runner",
    "Trial",
    "TrialEvent",
    "TrialPayload",
    "register_engine",
    "release_ray_actors",
]

# The table-lookup engine lives with its benchmark (a higher layer): listed here,
# imported the first time it is asked for.
ENGINES.lazy("benchmark", "archsmith.benchmarks.nasbench201._engine")
# Ray is an optional extra: its engine is imported (and imports ray) only when chosen.
ENGINES.lazy("ray", "archsmith.execution._ray")

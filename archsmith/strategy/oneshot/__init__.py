"""One-shot NAS: supernets whose candidates share weights, and the algorithms
that train them (``Experiment(space, evaluator, strategy.DARTS(), config)``).

Importing this package registers each family's mixed ops and each algorithm in
``ONESHOT_STRATEGIES`` (tests run every registered one).
"""

from archsmith._registry import Registry

from . import _differentiable, _proxyless, _sampling  # noqa: F401 - register the mixed ops
from ._base import OneShotStrategy, Ranking
from ._checkpoint import SupernetCheckpoint
from ._darts import DARTS, GumbelDARTS
from ._enas import ENAS
from ._hooks import MetricEarlyStopping, OneShotCallback, OneShotState
from ._profiled_cost import CostTable, ExpectedDecisionCost, profiled_table
from ._proxyless import Proxyless
from ._sliced import SLICED_LAYERS, SlicedLayer, SlicingError, make_sliced
from ._spos import RandomOneShot
from ._supernet import (
    FAMILY_ALGORITHMS,
    MIXED_OPS,
    Decisions,
    MixedOp,
    Supernet,
    UnsupportedSpaceError,
    check_supported,
    register_mixed_op,
)

ONESHOT_STRATEGIES = Registry("one-shot strategy")
for _cls in (DARTS, GumbelDARTS, ENAS, RandomOneShot, Proxyless):
    ONESHOT_STRATEGIES.register(_cls.__name__.lower())(_cls)

__all__ = [
    "CostTable",
    "DARTS",
    "ENAS",
    "FAMILY_ALGORITHMS",
    "MIXED_OPS",
    "MetricEarlyStopping",
    "ONESHOT_STRATEGIES",
    "OneShotCallback",
    "OneShotState",
    "SLICED_LAYERS",
    "Decisions",
    "ExpectedDecisionCost",
    "GumbelDARTS",
    "MixedOp",
    "OneShotStrategy",
    "Proxyless",
    "RandomOneShot",
    "Ranking",
    "SlicedLayer",
    "SlicingError",
    "Supernet",
    "SupernetCheckpoint",
    "UnsupportedSpaceError",
    "check_supported",
    "make_sliced",
    "profiled_table",
    "register_mixed_op",
]

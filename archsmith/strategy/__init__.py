"""Search strategies. Multi-trial strategies follow ask/tell (see ``Strategy``)."""

from ._base import Direction, FinishedTrial, Strategy
from ._dedup import sample_key
from ._evolution import RegularizedEvolution
from ._grid import GridSearch
from ._optuna import TPE, OptunaStrategy
from ._random import Random
from ._registry import STRATEGIES, register_strategy
from ._rl import PolicyBasedRL

__all__ = [
    "STRATEGIES",
    "Direction",
    "FinishedTrial",
    "GridSearch",
    "OptunaStrategy",
    "PolicyBasedRL",
    "Random",
    "RegularizedEvolution",
    "Strategy",
    "TPE",
    "register_strategy",
    "sample_key",
]
